package assigner

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/lbstack/lbstack/pkg/ipam"
	"github.com/lbstack/lbstack/pkg/lbservice"
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

// annotation reads one setting from its two spellings (lbservice.Annotation);
// a disagreement is the user's to fix.
func annotation(ann map[string]string, key, legacy string) (value, from string, err error) {
	value, from, err = lbservice.Annotation(ann, key, legacy)
	if err != nil {
		return "", "", userErrorf("%s", err.Error())
	}
	return value, from, nil
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

	ips, from, err := annotation(ann, lbservice.AnnotationLoadBalancerIPs, lbservice.AnnotationLoadBalancerIPsLegacy)
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

	if in.Pool, in.PoolFrom, err = annotation(ann, lbservice.AnnotationAddressPool, lbservice.AnnotationAddressPoolLegacy); err != nil {
		return in, err
	}
	key, _, err := annotation(ann, lbservice.AnnotationAllowSharedIP, lbservice.AnnotationAllowSharedIPLegacy)
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
