// Package lbservice is what every lbstack component reads from a
// LoadBalancer Service, its EndpointSlices and its Node, written once: the
// Service's key, its ingress addresses, whether it belongs to this stack's
// load-balancer class, MetalLB's Service annotations, whether it has a
// serving endpoint, and whether a node may carry its traffic. It is a leaf:
// it imports only the Kubernetes API types, so the address assigner, the
// speaker, layer 2 and the symmetric-routing checks can all use it without
// importing one another.
package lbservice

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// Service annotations, MetalLB's names. Each setting is read from the
// metallb.io spelling and from the older metallb.universe.tf one; when both
// are set they must agree (see Annotation).
const (
	// AnnotationLoadBalancerIPs asks for explicit addresses, a comma list
	// of at most one address per family.
	AnnotationLoadBalancerIPs       = "metallb.io/loadBalancerIPs"
	AnnotationLoadBalancerIPsLegacy = "metallb.universe.tf/loadBalancerIPs"
	// AnnotationAddressPool names the pool to allocate from, even when that
	// pool has autoAssign: false.
	AnnotationAddressPool       = "metallb.io/address-pool"
	AnnotationAddressPoolLegacy = "metallb.universe.tf/address-pool"
	// AnnotationAllowSharedIP is the sharing key: Services with the same
	// non-empty key may share an address.
	AnnotationAllowSharedIP       = "metallb.io/allow-shared-ip"
	AnnotationAllowSharedIPLegacy = "metallb.universe.tf/allow-shared-ip"
	// AnnotationIPAllocatedFromPool is written by the address assigner:
	// the pool the Service's addresses come from.
	AnnotationIPAllocatedFromPool = "metallb.io/ip-allocated-from-pool"
)

// ExcludeLabel on a node keeps it from announcing any LoadBalancer address
// (the Kubernetes well-known label; its value does not matter).
const ExcludeLabel = "node.kubernetes.io/exclude-from-external-load-balancers"

// Key is "namespace/name".
func Key(svc *corev1.Service) string { return svc.Namespace + "/" + svc.Name }

// IngressAddrs returns the IP addresses of the Service's
// status.loadBalancer.ingress: parsed, IPv4-mapped IPv6 taken as IPv4,
// without duplicates, sorted (IPv4 first). Hostnames, zoned addresses and
// anything that does not parse are ignored: no component may act on them.
func IngressAddrs(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(ing.IP); err == nil && a.Zone() == "" {
			out = append(out, a.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}

// ClassMatches reports whether the Service's spec.loadBalancerClass is the
// one this stack serves: no class when lbClass is empty, else exactly
// lbClass. Services of another class belong to another implementation.
func ClassMatches(svc *corev1.Service, lbClass string) bool {
	if svc.Spec.LoadBalancerClass == nil {
		return lbClass == ""
	}
	return *svc.Spec.LoadBalancerClass == lbClass
}

// Served reports whether this stack manages the Service: type LoadBalancer
// and the class it serves.
func Served(svc *corev1.Service, lbClass string) bool {
	return svc.Spec.Type == corev1.ServiceTypeLoadBalancer && ClassMatches(svc, lbClass)
}

// AnnotationConflictError is returned by Annotation when the two spellings
// of a setting disagree: a mistake of the user's, to report on the Service.
type AnnotationConflictError struct {
	Key, KeyValue, Legacy, LegacyValue string
}

func (e *AnnotationConflictError) Error() string {
	return fmt.Sprintf("annotations %s (%q) and %s (%q) disagree; keep one of them", e.Key, e.KeyValue, e.Legacy, e.LegacyValue)
}

// Annotation reads a setting written under key or its legacy spelling,
// trimmed; from names the annotation it came from ("" when unset). Both set
// to different non-empty values is an *AnnotationConflictError.
func Annotation(ann map[string]string, key, legacy string) (value, from string, err error) {
	v, lv := strings.TrimSpace(ann[key]), strings.TrimSpace(ann[legacy])
	switch {
	case v != "" && lv != "" && v != lv:
		return "", "", &AnnotationConflictError{Key: key, KeyValue: v, Legacy: legacy, LegacyValue: lv}
	case v != "":
		return v, key, nil
	case lv != "":
		return lv, legacy, nil
	}
	return "", "", nil
}

// EndpointServing reports whether an endpoint can take traffic: Serving
// when set (a terminating pod may still serve its connections), else Ready,
// and an unset Ready means ready (EndpointSlice API semantics).
func EndpointServing(ep *discoveryv1.Endpoint) bool {
	if len(ep.Addresses) == 0 {
		return false
	}
	if ep.Conditions.Serving != nil {
		return *ep.Conditions.Serving
	}
	return ep.Conditions.Ready == nil || *ep.Conditions.Ready
}

// HasEndpoints reports whether the Service has a serving endpoint anywhere
// (node == "") or on the named node, looking at the slices of the Service
// (namespace and kubernetes.io/service-name label).
func HasEndpoints(svc *corev1.Service, slices []*discoveryv1.EndpointSlice, node string) bool {
	for _, s := range slices {
		if s.Namespace != svc.Namespace || s.Labels[discoveryv1.LabelServiceName] != svc.Name {
			continue
		}
		for i := range s.Endpoints {
			ep := &s.Endpoints[i]
			if !EndpointServing(ep) {
				continue
			}
			if node == "" || (ep.NodeName != nil && *ep.NodeName == node) {
				return true
			}
		}
	}
	return false
}

// NodeExcluded reports why a node never announces, or "" when it may:
// NetworkUnavailable=True (its network is not set up) or ExcludeLabel.
func NodeExcluded(n *corev1.Node) string {
	if _, ok := n.Labels[ExcludeLabel]; ok {
		return "node is labelled " + ExcludeLabel
	}
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeNetworkUnavailable && c.Status == corev1.ConditionTrue {
			return "node has condition NetworkUnavailable=True"
		}
	}
	return ""
}
