package assigner

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/ipam"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

// world is an allocator with a configuration, as the controller holds them.
type world struct {
	t     *testing.T
	alloc *ipam.Allocator
	x     *poolIndex
}

func newWorld(t *testing.T, pools ...v1beta1.IPAddressPool) *world {
	w := &world{t: t, alloc: ipam.New()}
	w.setPools(pools...)
	return w
}

func (w *world) setPools(pools ...v1beta1.IPAddressPool) {
	w.x = index(w.t, pools...)
	w.alloc.SetPools(ipamPools(w.x.cfg))
}

// decide runs the controller's decision for s, whose status shows status.
func (w *world) decide(s *corev1.Service, status ...string) outcome {
	w.t.Helper()
	in, err := parseIntent(s)
	if err != nil {
		w.t.Fatalf("parse %s: %v", s.Name, err)
	}
	return decide(w.alloc, w.x, &in, nil, addrs(status...))
}

// want checks a successful outcome.
func (w *world) want(out outcome, pool string, ips ...string) {
	w.t.Helper()
	if out.Err != nil {
		w.t.Fatalf("unexpected failure: %v", out.Err)
	}
	if out.Assignment.Pool != pool || !reflect.DeepEqual(out.Assignment.IPs, addrs(ips...)) {
		w.t.Fatalf("got %s %v, want %s %v", out.Assignment.Pool, out.Assignment.IPs, pool, ips)
	}
}

func wantErr(t *testing.T, out outcome, substr ...string) {
	t.Helper()
	if out.Err == nil {
		t.Fatalf("got %v, want an error", out.Assignment)
	}
	for _, s := range substr {
		if !strings.Contains(out.Err.Error(), s) {
			t.Errorf("error %q does not contain %q", out.Err, s)
		}
	}
}

func loadBalancerIP(ip string) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Spec.LoadBalancerIP = ip }
}

func ports(ps ...corev1.ServicePort) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Spec.Ports = ps }
}

func TestLowestFirstAndAvoidBuggyIPs(t *testing.T) {
	w := newWorld(t, buggy(pool("a", "198.51.100.0/24")))
	w.want(w.decide(svc("one")), "a", "198.51.100.1")
	w.want(w.decide(svc("two")), "a", "198.51.100.2")
	wantErr(t, w.decide(svc("zero", loadBalancerIP("198.51.100.0"))), "198.51.100.0", "avoidBuggyIPs")
	w.want(w.decide(svc("explicit", loadBalancerIP("198.51.100.254"))), "a", "198.51.100.254")
	// Idempotent: deciding again changes nothing.
	w.want(w.decide(svc("one"), "198.51.100.1"), "a", "198.51.100.1")
}

// The seed bgp-pools-sharing/services.yaml: three DNS Services share
// 198.51.100.10; a fourth on TCP 53 is refused, saying why.
func TestSeedDNSSharing(t *testing.T) {
	w := newWorld(t, buggy(pool("ippool-a", "198.51.100.0/24")), noAuto(buggy(pool("ippool-b", "192.0.2.0/24"))))
	dns := func(name string, proto corev1.Protocol, port int32) *corev1.Service {
		return svc(name, loadBalancerIP("198.51.100.10"), annotate(lbservice.AnnotationAllowSharedIPLegacy, "key-to-share-198.51.100.10"),
			ports(corev1.ServicePort{Protocol: proto, Port: port}))
	}
	w.want(w.decide(dns("dns-service-tcp-53", corev1.ProtocolTCP, 53)), "ippool-a", "198.51.100.10")
	w.want(w.decide(dns("dns-service-udp", corev1.ProtocolUDP, 53)), "ippool-a", "198.51.100.10")
	w.want(w.decide(dns("dns-service-tcp-63", corev1.ProtocolTCP, 63)), "ippool-a", "198.51.100.10")
	out := w.decide(dns("dns-service-tcp-53-again", corev1.ProtocolTCP, 53))
	wantErr(t, out, "198.51.100.10 is already used by ns/dns-service-tcp-53 on port TCP/53")
	msg := failureMessage("ns/dns-service-tcp-53-again", out.Err)
	if !strings.Contains(msg, "must use different ports") {
		t.Errorf("failure message gives no next step: %s", msg)
	}
	if got := w.alloc.Owner(netip.MustParseAddr("198.51.100.10")); len(got) != 3 {
		t.Errorf("owners %v", got)
	}
	// websvc2 says IPPool-B (legacy ConfigMap name): ippool-b, with a note.
	out = w.decide(svc("websvc2", annotate(lbservice.AnnotationAddressPoolLegacy, "IPPool-B")))
	w.want(out, "ippool-b", "192.0.2.1")
	if !strings.Contains(out.Note, `using ipaddresspool "ippool-b"`) {
		t.Errorf("note %q", out.Note)
	}
	// autoAssign false: ippool-b is never used unasked.
	w.want(w.decide(svc("svc1")), "ippool-a", "198.51.100.1")
}

func TestSharingRules(t *testing.T) {
	w := newWorld(t, pool("a", "203.0.113.0/28"))
	local := func(name string, sel string, port int32) *corev1.Service {
		return svc(name, annotate(lbservice.AnnotationAllowSharedIP, "k"), ports(corev1.ServicePort{Port: port}), func(s *corev1.Service) {
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Spec.Selector = map[string]string{"app": sel}
		})
	}
	// Without explicit addresses, a sharing Service joins the address held
	// under its key.
	w.want(w.decide(local("web-80", "web", 80)), "a", "203.0.113.0")
	w.want(w.decide(local("web-443", "web", 443)), "a", "203.0.113.0")
	// A different selector with externalTrafficPolicy Local cannot share.
	w.want(w.decide(local("api-8080", "api", 8080)), "a", "203.0.113.1")
	o2 := w.decide(svc("api-explicit", annotate(lbservice.AnnotationAllowSharedIP, "k"), loadBalancerIP("203.0.113.0"), ports(corev1.ServicePort{Port: 9090}), func(s *corev1.Service) {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		s.Spec.Selector = map[string]string{"app": "api"}
	}))
	wantErr(t, o2, "different backends")
	// No key: no sharing.
	wantErr(t, w.decide(svc("nokey", loadBalancerIP("203.0.113.0"), ports(corev1.ServicePort{Port: 1}))), "does not allow sharing")
}

func TestKeepsAddressesAcrossRestart(t *testing.T) {
	// A fresh allocator (restart) sees the status: the Service keeps .9
	// although .1 is free, also from an autoAssign: false pool.
	w := newWorld(t, buggy(pool("a", "198.51.100.0/24")), noAuto(pool("manual", "192.0.2.0/24")))
	out := w.decide(svc("s"), "198.51.100.9")
	w.want(out, "a", "198.51.100.9")
	if len(out.Dropped) != 0 {
		t.Errorf("dropped %v", out.Dropped)
	}
	w.want(w.decide(svc("m"), "192.0.2.77"), "manual", "192.0.2.77")
	w.want(w.decide(svc("new")), "a", "198.51.100.1")
}

func TestPoolDeletedMovesOrClears(t *testing.T) {
	w := newWorld(t, pool("a", "203.0.113.0/28"), pool("b", "198.51.100.0/28"))
	w.want(w.decide(svc("s"), "203.0.113.5"), "a", "203.0.113.5")

	w.setPools(pool("b", "198.51.100.0/28")) // a deleted
	out := w.decide(svc("s"), "203.0.113.5")
	w.want(out, "b", "198.51.100.0")
	if !reflect.DeepEqual(out.Dropped, addrs("203.0.113.5")) || !strings.Contains(out.DropReason, "203.0.113.5 is not in any ipaddresspool") {
		t.Errorf("dropped %v: %q", out.Dropped, out.DropReason)
	}
	evs := out.events("ns/s", addrs("203.0.113.5"))
	if len(evs) != 2 || evs[0].Reason != ReasonClearAssignment || evs[1].Reason != ReasonIPAllocated {
		t.Errorf("events %+v", evs)
	}

	w.setPools() // every pool deleted
	out = w.decide(svc("s"), "198.51.100.0")
	wantErr(t, out, "there is no IPAddressPool")
	if !reflect.DeepEqual(out.Dropped, addrs("198.51.100.0")) {
		t.Errorf("dropped %v", out.Dropped)
	}
	evs = out.events("ns/s", addrs("198.51.100.0"))
	if len(evs) != 2 || evs[0].Reason != ReasonClearAssignment || evs[1].Reason != ReasonAllocationFailed {
		t.Errorf("events %+v", evs)
	}
}

func TestServiceAllocationNarrowedMovesTheService(t *testing.T) {
	w := newWorld(t, pool("a", "203.0.113.0/28"), pool("b", "198.51.100.0/28"))
	w.want(w.decide(svc("s"), "203.0.113.5"), "a", "203.0.113.5")
	w.setPools(allocate(v1beta1.ServiceAllocation{Namespaces: []string{"other"}})(pool("a", "203.0.113.0/28")), pool("b", "198.51.100.0/28"))
	out := w.decide(svc("s"), "203.0.113.5")
	w.want(out, "b", "198.51.100.0")
	if !strings.Contains(out.DropReason, `which may no longer serve this Service: its serviceAllocation admits only Services in namespaces other`) {
		t.Errorf("drop reason %q", out.DropReason)
	}
}

func TestPinnedPoolMovesTheService(t *testing.T) {
	w := newWorld(t, pool("a", "203.0.113.0/28"), noAuto(pool("b", "198.51.100.0/28")))
	w.want(w.decide(svc("s"), "203.0.113.5"), "a", "203.0.113.5")
	out := w.decide(svc("s", annotate(lbservice.AnnotationAddressPool, "b")), "203.0.113.5")
	w.want(out, "b", "198.51.100.0")
	if !strings.Contains(out.DropReason, `the Service asks for ipaddresspool "b" with metallb.io/address-pool`) {
		t.Errorf("drop reason %q", out.DropReason)
	}
	// Explicit address outside the pinned pool.
	wantErr(t, w.decide(svc("e", annotate(lbservice.AnnotationAddressPool, "b"), loadBalancerIP("203.0.113.9"))),
		`203.0.113.9 (spec.loadBalancerIP) is in ipaddresspool "a", which may not serve this Service: the Service asks for ipaddresspool "b"`)
}

func TestExplicitAddressErrors(t *testing.T) {
	w := newWorld(t, pool("a", "203.0.113.0/28"), allocate(v1beta1.ServiceAllocation{Namespaces: []string{"other"}})(pool("b", "198.51.100.0/28")))
	wantErr(t, w.decide(svc("s", loadBalancerIP("192.0.2.1"))), "192.0.2.1 is not in any ipaddresspool")
	wantErr(t, w.decide(svc("s", loadBalancerIP("198.51.100.1"))), `is in ipaddresspool "b", which may not serve this Service: its serviceAllocation admits only Services in namespaces other`)
	wantErr(t, w.decide(svc("s", annotate(lbservice.AnnotationLoadBalancerIPs, "203.0.113.1,203.0.113.2"))), "two IPv4 addresses")
	// The user changes the requested address: the old one is dropped.
	w.want(w.decide(svc("s", loadBalancerIP("203.0.113.1"))), "a", "203.0.113.1")
	out := w.decide(svc("s", loadBalancerIP("203.0.113.2")), "203.0.113.1")
	w.want(out, "a", "203.0.113.2")
	if !strings.Contains(out.DropReason, "the Service now asks for 203.0.113.2 (spec.loadBalancerIP)") {
		t.Errorf("drop reason %q", out.DropReason)
	}
	if owners := w.alloc.Owner(netip.MustParseAddr("203.0.113.1")); len(owners) != 0 {
		t.Errorf("203.0.113.1 still held by %v", owners)
	}
}

func TestNoCandidatePool(t *testing.T) {
	w := newWorld(t, noAuto(pool("manual", "203.0.113.0/28")))
	out := w.decide(svc("s"))
	wantErr(t, out, "every pool (manual) has autoAssign: false", "metallb.io/address-pool")
	if errorReason(out.Err) != "no_pool" {
		t.Errorf("reason %q", errorReason(out.Err))
	}
	w = newWorld(t, pool("tiny", "203.0.113.0/32"))
	w.want(w.decide(svc("one")), "tiny", "203.0.113.0")
	out = w.decide(svc("two"))
	wantErr(t, out, `address pool "tiny" has no free IPv4 address`)
	if !strings.Contains(failureMessage("ns/two", out.Err), "add addresses to the pool") {
		t.Errorf("no next step: %s", failureMessage("ns/two", out.Err))
	}
}

func TestDualStack(t *testing.T) {
	v4, v6 := corev1.IPv4Protocol, corev1.IPv6Protocol
	w := newWorld(t, pool("a-v4", "203.0.113.0/28"), pool("b-dual", "198.51.100.0/28", "2001:db8::/64"), pool("c-v6", "2001:db8:1::/64"))
	w.want(w.decide(svc("single6", dual(corev1.IPFamilyPolicySingleStack, v6))), "b-dual", "2001:db8::")
	// PreferDualStack prefers a pool holding both families over name order.
	w.want(w.decide(svc("prefer", dual(corev1.IPFamilyPolicyPreferDualStack, v6, v4))), "b-dual", "198.51.100.0", "2001:db8::1")
	w.want(w.decide(svc("require", dual(corev1.IPFamilyPolicyRequireDualStack, v4, v6))), "b-dual", "198.51.100.1", "2001:db8::2")

	only4 := newWorld(t, pool("a-v4", "203.0.113.0/28"))
	w2 := only4
	w2.want(w2.decide(svc("prefer", dual(corev1.IPFamilyPolicyPreferDualStack, v4, v6))), "a-v4", "203.0.113.0")
	wantErr(t, w2.decide(svc("require", dual(corev1.IPFamilyPolicyRequireDualStack, v4, v6))), "no IPv6 range")

	// Dual to single: the IPv4 address stays, the IPv6 one is dropped.
	out := w.decide(svc("prefer", dual(corev1.IPFamilyPolicySingleStack, v4)), "198.51.100.0", "2001:db8::1")
	w.want(out, "b-dual", "198.51.100.0")
	if !reflect.DeepEqual(out.Dropped, addrs("2001:db8::1")) || !strings.Contains(out.DropReason, "no longer asks for an IPv6 address") {
		t.Errorf("dropped %v: %q", out.Dropped, out.DropReason)
	}
	if owners := w.alloc.Owner(netip.MustParseAddr("2001:db8::1")); len(owners) != 0 {
		t.Errorf("2001:db8::1 still held by %v", owners)
	}
}

func TestEventsOnlyOnChange(t *testing.T) {
	w := newWorld(t, pool("a", "203.0.113.0/28"))
	out := w.decide(svc("s"))
	evs := out.events("ns/s", nil)
	if len(evs) != 1 || evs[0].Reason != ReasonIPAllocated || evs[0].Message != `Assigned IP ["203.0.113.0"] from ipaddresspool "a"` {
		t.Errorf("events %+v", evs)
	}
	out = w.decide(svc("s"), "203.0.113.0")
	if evs := out.events("ns/s", addrs("203.0.113.0")); len(evs) != 0 {
		t.Errorf("events on a no-op: %+v", evs)
	}
}

func TestNamespaceSelectorUsesLiveLabels(t *testing.T) {
	x := index(t, allocate(v1beta1.ServiceAllocation{NamespaceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"team": "web"}}}})(pool("web", "203.0.113.0/28")))
	alloc := ipam.New()
	alloc.SetPools(ipamPools(x.cfg))
	in, _ := parseIntent(svc("s"))
	if out := decide(alloc, x, &in, map[string]string{"team": "web"}, nil); out.Err != nil || out.Assignment.Pool != "web" {
		t.Fatalf("labelled namespace: %+v", out)
	}
	out := decide(alloc, x, &in, map[string]string{"team": "db"}, addrs("203.0.113.0"))
	if out.Err == nil || len(out.Dropped) != 1 || !strings.Contains(out.DropReason, `namespaces labelled "team=web"`) {
		t.Fatalf("relabelled namespace: %+v", out)
	}
}
