package assigner

import (
	"encoding/json"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lbstack/lbstack/pkg/lbservice"
)

// serviceState is what the controller writes on a Service: its ingress
// addresses (IPv4 first) and the pool annotation. The zero value is a
// Service with nothing from us.
type serviceState struct {
	IPs  []netip.Addr
	Pool string
}

func (s serviceState) equal(o serviceState) bool {
	return s.Pool == o.Pool && sameAddrs(s.IPs, o.IPs)
}

// stateOf reads what a Service currently shows. ok is false when its
// ingress holds something the controller would never write (a hostname,
// ports, an IP mode other than VIP, an unparsable or duplicate entry, or
// entries out of order), so that the next write replaces it.
func stateOf(svc *corev1.Service) (st serviceState, ok bool) {
	st.Pool = svc.Annotations[lbservice.AnnotationIPAllocatedFromPool]
	ok = true
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		a, err := netip.ParseAddr(ing.IP)
		if err != nil || a.Zone() != "" || a.Is4In6() || ing.Hostname != "" || len(ing.Ports) > 0 ||
			(ing.IPMode != nil && *ing.IPMode != corev1.LoadBalancerIPModeVIP) {
			ok = false
			continue
		}
		if n := len(st.IPs); n > 0 && st.IPs[n-1].Compare(a) >= 0 {
			ok = false
		}
		st.IPs = append(st.IPs, a)
	}
	return st, ok
}

// statusPatch is the JSON merge patch that makes a Service show st. It is
// sent to the status subresource: a Service's status strategy keeps
// metadata changes, so the annotation and the addresses go in one write
// (the reconciler checks the answer and falls back to a second write should
// an API server drop the annotation). metadata.uid makes the patch fail
// rather than touch a Service recreated under the same name, and
// metadata.resourceVersion (when known) rather than overwrite a status
// written since the Service was read: a controller acting on a stale view
// (say, the old pod of a rollout that has not yet noticed it lost the
// lease) gets a conflict, never the last word.
func statusPatch(uid types.UID, resourceVersion string, st serviceState) ([]byte, error) {
	var pool any // JSON null removes the annotation
	if st.Pool != "" {
		pool = st.Pool
	}
	var ingress any // JSON null clears the list
	if len(st.IPs) > 0 {
		vip := corev1.LoadBalancerIPModeVIP
		list := make([]corev1.LoadBalancerIngress, len(st.IPs))
		for i, ip := range st.IPs {
			list[i] = corev1.LoadBalancerIngress{IP: ip.String(), IPMode: &vip}
		}
		ingress = list
	}
	meta := map[string]any{
		"uid":         uid,
		"annotations": map[string]any{lbservice.AnnotationIPAllocatedFromPool: pool},
	}
	if resourceVersion != "" {
		meta["resourceVersion"] = resourceVersion
	}
	return json.Marshal(map[string]any{
		"metadata": meta,
		"status":   map[string]any{"loadBalancer": map[string]any{"ingress": ingress}},
	})
}
