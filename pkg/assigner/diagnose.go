package assigner

import (
	"fmt"

	corev1 "k8s.io/api/core/v1"

	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/ipam"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

// DiagnoseInput is a snapshot of the cluster, as must-gather reads it.
type DiagnoseInput struct {
	// Config is the built configuration; nil when it does not build
	// (ConfigError then says why).
	Config      *config.Config
	ConfigError string
	// LBClass is the MetalLB object's spec.loadBalancerClass.
	LBClass string
	// Services are every Service of the cluster.
	Services []*corev1.Service
	// NamespaceLabels are the labels of every namespace, by name (for
	// pools' serviceAllocation.namespaceSelectors).
	NamespaceLabels map[string]map[string]string
}

// Diagnose says why each LoadBalancer Service without an address has none,
// keyed by "namespace/name", by replaying the controller's own allocation
// policy (the same decide, pool choice and ipam) on the snapshot: the
// Services that hold addresses claim them first, oldest first, as after a
// controller restart; then each Service without one is decided alone. The
// message is the one the controller's AllocationFailed event carries, or
// names what keeps the controller from trying (class, configuration).
func Diagnose(in DiagnoseInput) map[string]string {
	out := map[string]string{}
	var waiting, holding []*corev1.Service
	for _, s := range in.Services {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		key := s.Namespace + "/" + s.Name
		if !lbservice.Served(s, in.LBClass) {
			if len(s.Status.LoadBalancer.Ingress) == 0 {
				out[key] = classMismatch(s, in.LBClass)
			}
			continue
		}
		if len(s.Status.LoadBalancer.Ingress) > 0 {
			holding = append(holding, s)
		} else {
			waiting = append(waiting, s)
		}
	}
	if len(waiting) == 0 {
		return out
	}
	if in.Config == nil {
		why := "the configuration is refused"
		if in.ConfigError != "" {
			why += ": " + in.ConfigError
		}
		for _, s := range waiting {
			out[s.Namespace+"/"+s.Name] = why + "; the controller allocates with the last valid configuration, fix the objects the error names"
		}
		return out
	}
	x := newPoolIndex(in.Config)
	alloc := ipam.New()
	alloc.SetPools(ipamPools(in.Config))
	held := make([]heldService, len(holding))
	for i, s := range holding {
		held[i] = heldOf(s)
	}
	_, _ = claimHeld(alloc, x, held, func(ns string) (map[string]string, error) {
		return in.NamespaceLabels[ns], nil
	})
	for _, s := range waiting {
		key := s.Namespace + "/" + s.Name
		it, err := parseIntent(s)
		if err != nil {
			out[key] = failureMessage(key, err)
			continue
		}
		res := decide(alloc, x, &it, in.NamespaceLabels[s.Namespace], nil)
		// Decided alone: what it would get is given back, so the next
		// waiting Service sees the same cluster the controller sees.
		alloc.Release(key)
		if res.Err != nil {
			out[key] = failureMessage(key, res.Err)
			continue
		}
		out[key] = fmt.Sprintf("the controller would assign %s now: it is not running, not the leader, or has not reconciled this Service (see its log)", joinAddrs(res.Assignment.IPs))
	}
	return out
}

func classMismatch(s *corev1.Service, lbClass string) string {
	served := "Services without spec.loadBalancerClass"
	if lbClass != "" {
		served = fmt.Sprintf("spec.loadBalancerClass %q", lbClass)
	}
	have := "no spec.loadBalancerClass"
	if s.Spec.LoadBalancerClass != nil {
		have = fmt.Sprintf("spec.loadBalancerClass %q", *s.Spec.LoadBalancerClass)
	}
	return fmt.Sprintf("wrong loadBalancerClass: the Service has %s, this stack serves %s (MetalLB spec.loadBalancerClass); another load balancer must serve it, or change the class", have, served)
}
