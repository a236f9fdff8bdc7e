package assigner

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/lbstack/lbstack/pkg/ipam"
)

// Service annotations, MetalLB's names. Each setting is read from the
// metallb.io spelling and from the older metallb.universe.tf one; when both
// are set they must agree.
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
	// non-empty key may share an address (see ipam.Service).
	AnnotationAllowSharedIP       = "metallb.io/allow-shared-ip"
	AnnotationAllowSharedIPLegacy = "metallb.universe.tf/allow-shared-ip"
	// AnnotationIPAllocatedFromPool is written by the controller: the pool
	// the Service's addresses come from.
	AnnotationIPAllocatedFromPool = "metallb.io/ip-allocated-from-pool"
)

// intent is what a Service asks of the controller, read from its spec and
// annotations. It holds no Kubernetes object, so pool choice and allocation
// are testable without one.
type intent struct {
	// Key is "namespace/name".
	Key       string
	Namespace string
	Labels    map[string]string
	// IPs are the explicit addresses (annotation or spec.loadBalancerIP),
	// in the order written; IPsFrom names where they were read.
	IPs     []netip.Addr
	IPsFrom string
	// Pool is the pool annotation's value as written ("" when unset);
	// PoolFrom is the annotation it was read from.
	Pool     string
	PoolFrom string
	// Sharing is what ipam needs to decide sharing.
	Sharing ipam.Service
	// Families wanted, in spec.ipFamilies order, cut down by
	// spec.ipFamilyPolicy; Required for RequireDualStack.
	Families []ipam.Family
	Required bool
}

// request returns the ipam request for the intent, without pools.
func (in *intent) request() ipam.Request {
	return ipam.Request{Service: in.Sharing, Families: in.Families, Required: in.Required}
}

// wants reports whether the intent asks for an address of a's family.
func (in *intent) wants(a netip.Addr) bool {
	f := ipam.IPv4
	if a.Is6() {
		f = ipam.IPv6
	}
	return slices.Contains(in.Families, f)
}

// userError is a problem with the Service as written or with what it asks
// of the configuration; its message tells the user what to change. kind,
// when set, is the ipam sentinel it corresponds to (for errors.Is and the
// metrics' reason label).
type userError struct {
	msg  string
	kind error
}

func (e *userError) Error() string { return e.msg }
func (e *userError) Unwrap() error { return e.kind }

func userErrorf(format string, args ...any) error {
	return &userError{msg: fmt.Sprintf(format, args...)}
}

func kindErrorf(kind error, format string, args ...any) error {
	return &userError{msg: fmt.Sprintf(format, args...), kind: kind}
}

// annotation reads one setting from its two spellings. Surrounding spaces
// are ignored; an empty value is unset.
func annotation(ann map[string]string, key, legacy string) (value, from string, err error) {
	v, ok := ann[key]
	lv, lok := ann[legacy]
	v, lv = strings.TrimSpace(v), strings.TrimSpace(lv)
	switch {
	case ok && lok && v != "" && lv != "" && v != lv:
		return "", "", userErrorf("annotations %s (%q) and %s (%q) disagree; keep one of them", key, v, legacy, lv)
	case v != "":
		return v, key, nil
	case lv != "":
		return lv, legacy, nil
	}
	return "", "", nil
}

// parseAddrs parses a comma-separated address list. Spaces and empty
// entries are ignored; IPv4-mapped IPv6 addresses are taken as the IPv4
// address.
func parseAddrs(s, from string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" {
			return nil, userErrorf("%s: %q is not an IP address", from, f)
		}
		out = append(out, a.Unmap())
	}
	return out, nil
}

// families returns the families a Service wants, in its order, and whether
// both are required. SingleStack (or no policy) keeps the first family of
// spec.ipFamilies; PreferDualStack and RequireDualStack keep all of them.
func families(spec *corev1.ServiceSpec) ([]ipam.Family, bool) {
	var fams []ipam.Family
	for _, f := range spec.IPFamilies {
		switch f {
		case corev1.IPv4Protocol:
			fams = append(fams, ipam.IPv4)
		case corev1.IPv6Protocol:
			fams = append(fams, ipam.IPv6)
		}
	}
	fams = slices.Compact(fams)
	policy := corev1.IPFamilyPolicySingleStack
	if spec.IPFamilyPolicy != nil {
		policy = *spec.IPFamilyPolicy
	}
	switch policy {
	case corev1.IPFamilyPolicyPreferDualStack:
		return fams, false
	case corev1.IPFamilyPolicyRequireDualStack:
		return fams, true
	}
	if len(fams) > 1 {
		fams = fams[:1]
	}
	return fams, false
}

// backendKey is the sharing BackendKey: the selector for
// externalTrafficPolicy Local (both Services must then be announced from
// the same nodes), "" for Cluster.
func backendKey(spec *corev1.ServiceSpec) string {
	if spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		return labels.Set(spec.Selector).String()
	}
	return ""
}

// parseIntent reads a LoadBalancer Service. The error, a *userError, says
// what to fix.
func parseIntent(svc *corev1.Service) (intent, error) {
	in := intent{
		Key:       svc.Namespace + "/" + svc.Name,
		Namespace: svc.Namespace,
		Labels:    svc.Labels,
	}
	ann := svc.Annotations

	ips, from, err := annotation(ann, AnnotationLoadBalancerIPs, AnnotationLoadBalancerIPsLegacy)
	if err != nil {
		return in, err
	}
	specIP := strings.TrimSpace(svc.Spec.LoadBalancerIP)
	switch {
	case ips != "" && specIP != "":
		return in, userErrorf("both spec.loadBalancerIP (%s) and the %s annotation (%s) are set; keep only the annotation (spec.loadBalancerIP is deprecated)", specIP, from, ips)
	case ips != "":
		if in.IPs, err = parseAddrs(ips, from); err != nil {
			return in, err
		}
		in.IPsFrom = from
	case specIP != "":
		if in.IPs, err = parseAddrs(specIP, "spec.loadBalancerIP"); err != nil {
			return in, err
		}
		in.IPsFrom = "spec.loadBalancerIP"
	}

	if in.Pool, in.PoolFrom, err = annotation(ann, AnnotationAddressPool, AnnotationAddressPoolLegacy); err != nil {
		return in, err
	}
	key, _, err := annotation(ann, AnnotationAllowSharedIP, AnnotationAllowSharedIPLegacy)
	if err != nil {
		return in, err
	}

	in.Sharing = ipam.Service{Key: in.Key, SharingKey: key, BackendKey: backendKey(&svc.Spec)}
	for _, p := range svc.Spec.Ports {
		in.Sharing.Ports = append(in.Sharing.Ports, ipam.Port{Protocol: string(p.Protocol), Port: p.Port})
	}

	in.Families, in.Required = families(&svc.Spec)
	if len(in.Families) == 0 && len(in.IPs) == 0 {
		// The API server always fills spec.ipFamilies; be safe anyway.
		in.Families = []ipam.Family{ipam.IPv4}
	}
	return in, nil
}

// serves reports whether the controller manages the Service: type
// LoadBalancer and the configured load-balancer class (no class when
// lbClass is empty).
func serves(svc *corev1.Service, lbClass string) bool {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return false
	}
	if svc.Spec.LoadBalancerClass == nil {
		return lbClass == ""
	}
	return *svc.Spec.LoadBalancerClass == lbClass
}

// ingressIPs returns the addresses of the Service's status, IPv4 first,
// ignoring hostnames and anything that does not parse.
func ingressIPs(svc *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, ing := range svc.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(ing.IP); err == nil && a.Zone() == "" {
			out = append(out, a.Unmap())
		}
	}
	slices.SortFunc(out, netip.Addr.Compare)
	return slices.Compact(out)
}
