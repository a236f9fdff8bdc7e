package controller_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	assigner "github.com/lbstack/lbstack/pkg/assigner"
	"github.com/lbstack/lbstack/pkg/configstate"
	"github.com/lbstack/lbstack/pkg/lbservice"
	"github.com/lbstack/lbstack/test/envtest"
)

// applySeed creates the documents of a seed scenario file, in file order;
// namespaced non-metallb.io objects go to ns. Returns the created objects.
func applySeed(t *testing.T, scenario, file, ns string) []*unstructured.Unstructured {
	t.Helper()
	dir, err := envtest.ScenariosDir()
	if err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(filepath.Join(dir, scenario, file))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	docs, err := envtest.SplitYAML(f)
	if err != nil {
		t.Fatal(err)
	}
	var out []*unstructured.Unstructured
	for _, d := range docs {
		u := &unstructured.Unstructured{}
		if err := yaml.Unmarshal([]byte(d.Text), &u.Object); err != nil {
			t.Fatalf("%s/%s: %v", scenario, file, err)
		}
		if !strings.HasPrefix(d.APIVersion, "metallb.io/") {
			u.SetNamespace(ns)
		}
		create(t, u)
		out = append(out, u)
	}
	return out
}

// TestSeedBGPPoolsSharing is bgp-pools-sharing/expect.md, items 2, 4 and 5,
// for the controller: the seed configuration and Services as written.
func TestSeedBGPPoolsSharing(t *testing.T) {
	cleanConfig(t)
	ns := newNamespace(t, nil)
	run := startController(t, assigner.Options{})
	applySeed(t, "bgp-pools-sharing", "metallb-config.yaml", ns)
	waitPoolsSeen(t, "ippool-a", "ippool-b")

	dir, _ := envtest.ScenariosDir()
	raw, err := os.ReadFile(filepath.Join(dir, "bgp-pools-sharing", "services.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	docs, _ := envtest.SplitYAML(strings.NewReader(string(raw)))
	want := map[string][]string{
		"svc1":               {"ippool-a", "198.51.100.1"}, // avoidBuggyIPs skips .0
		"websvc1":            {"ippool-a", "198.51.100.2"},
		"websvc2":            {"ippool-b", "192.0.2.1"}, // asks for IPPool-B
		"dns-service-tcp-53": {"ippool-a", "198.51.100.10"},
		"dns-service-udp":    {"ippool-a", "198.51.100.10"},
		"dns-service-tcp-63": {"ippool-a", "198.51.100.10"},
	}
	// One at a time, so lowest-first decides svc1 and websvc1.
	for _, d := range docs {
		var s corev1.Service
		if err := yaml.UnmarshalStrict([]byte(d.Text), &s); err != nil {
			t.Fatal(err)
		}
		s.Namespace = ns
		create(t, &s)
		w := want[s.Name]
		waitIngress(t, ns, s.Name, w[0], w[1])
	}
	ev := waitEvent(t, ns, "websvc2", assigner.ReasonPoolNameMatchedIgnoringCase, `metallb.universe.tf/address-pool "IPPool-B"`, `using ipaddresspool "ippool-b"`)
	if ev.Type != corev1.EventTypeNormal {
		t.Errorf("event type %s", ev.Type)
	}
	waitEvent(t, ns, "websvc2", assigner.ReasonIPAllocated, `Assigned IP ["192.0.2.1"] from ipaddresspool "ippool-b"`)
	waitEvent(t, ns, "svc1", assigner.ReasonIPAllocated, `["198.51.100.1"]`)

	// A fourth DNS Service with the same key and a clashing port.
	clash := mkSvc(ns, "dns-service-tcp-53-clash", annotate(lbservice.AnnotationAllowSharedIPLegacy, "key-to-share-198.51.100.10"), func(s *corev1.Service) {
		s.Spec.LoadBalancerIP = "198.51.100.10"
		s.Spec.Ports = []corev1.ServicePort{{Name: "dnstcp", Protocol: corev1.ProtocolTCP, Port: 53}}
		s.Spec.Selector = map[string]string{"app": "dns"}
	})
	create(t, clash)
	ev = waitEvent(t, ns, clash.Name, assigner.ReasonAllocationFailed,
		"198.51.100.10 is already used by "+ns+"/dns-service-tcp-53 on port TCP/53", "must use different ports")
	if ev.Type != corev1.EventTypeWarning {
		t.Errorf("event type %s", ev.Type)
	}
	if s := getSvc(t, ns, clash.Name); len(s.Status.LoadBalancer.Ingress) != 0 {
		t.Errorf("clashing service got %v", ingress(s))
	}

	// Pool counters and metrics (ippool-a: .1, .2 and the shared .10).
	eventually(t, waitTimeout, func() error {
		a, b := poolStatus(t, "ippool-a"), poolStatus(t, "ippool-b")
		wa := v1beta1.IPAddressPoolStatus{AssignedIPv4: 3, AvailableIPv4: 251}
		wb := v1beta1.IPAddressPoolStatus{AssignedIPv4: 1, AvailableIPv4: 253}
		if a != wa || b != wb {
			return fmt.Errorf("pool status a=%+v b=%+v, want %+v %+v", a, b, wa, wb)
		}
		if v, err := gauge(t, "metallb_allocator_addresses_in_use_total", map[string]string{"pool": "ippool-a"}); err != nil || v != 3 {
			return fmt.Errorf("in use gauge %v %v", v, err)
		}
		if v, err := gauge(t, "metallb_allocator_addresses_total", map[string]string{"pool": "ippool-b"}); err != nil || v != 254 {
			return fmt.Errorf("total gauge %v %v", v, err)
		}
		return nil
	})
	if v, err := gauge(t, "lbstack_controller_allocation_errors_total", map[string]string{"reason": "sharing_conflict"}); err != nil || v < 1 {
		t.Errorf("allocation errors metric %v %v", v, err)
	}
	cs := configurationState(t)
	if cs == nil || cs.Status.Result != v1beta1.ConfigurationValid || cs.Status.ErrorSummary != "" {
		t.Errorf("configurationstate %+v", cs)
	}
	_ = run
}

func TestExplicitAddresses(t *testing.T) {
	cleanConfig(t)
	ns := newNamespace(t, nil)
	startController(t, assigner.Options{})
	create(t, mkPool("a", "203.0.113.0/28"), func() client.Object {
		p := mkPool("manual", "192.0.2.0/28")
		p.Spec.AutoAssign = ptr.To(false)
		return p
	}())
	create(t,
		mkSvc(ns, "by-annotation", annotate(lbservice.AnnotationLoadBalancerIPs, "203.0.113.7")),
		mkSvc(ns, "by-legacy-annotation", annotate(lbservice.AnnotationLoadBalancerIPsLegacy, "203.0.113.8")),
		mkSvc(ns, "by-spec", func(s *corev1.Service) { s.Spec.LoadBalancerIP = "203.0.113.9" }),
		// Explicit addresses may come from an autoAssign: false pool.
		mkSvc(ns, "from-manual-pool", annotate(lbservice.AnnotationLoadBalancerIPs, "192.0.2.3")),
		mkSvc(ns, "outside-pools", annotate(lbservice.AnnotationLoadBalancerIPs, "198.51.100.1")),
		mkSvc(ns, "both-set", annotate(lbservice.AnnotationLoadBalancerIPs, "203.0.113.10"), func(s *corev1.Service) { s.Spec.LoadBalancerIP = "203.0.113.10" }),
	)
	waitIngress(t, ns, "by-annotation", "a", "203.0.113.7")
	waitIngress(t, ns, "by-legacy-annotation", "a", "203.0.113.8")
	waitIngress(t, ns, "by-spec", "a", "203.0.113.9")
	waitIngress(t, ns, "from-manual-pool", "manual", "192.0.2.3")
	waitEvent(t, ns, "outside-pools", assigner.ReasonAllocationFailed, "198.51.100.1 is not in any ipaddresspool")
	waitEvent(t, ns, "both-set", assigner.ReasonAllocationFailed,
		"both spec.loadBalancerIP (203.0.113.10) and the metallb.io/loadBalancerIPs annotation (203.0.113.10) are set", "keep only the annotation")
	for _, n := range []string{"outside-pools", "both-set"} {
		if s := getSvc(t, ns, n); len(s.Status.LoadBalancer.Ingress) != 0 {
			t.Errorf("%s got %v", n, ingress(s))
		}
	}
	// Fixing the Service gives it its address.
	s := getSvc(t, ns, "both-set")
	s.Spec.LoadBalancerIP = ""
	if err := k8s.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, ns, "both-set", "a", "203.0.113.10")
}

func TestPoolAnnotationAndAutoAssign(t *testing.T) {
	cleanConfig(t)
	ns := newNamespace(t, nil)
	startController(t, assigner.Options{})
	manual := mkPool("manual", "192.0.2.0/28")
	manual.Spec.AutoAssign = ptr.To(false)
	create(t, manual)
	// Only an autoAssign: false pool: a plain Service gets nothing.
	create(t, mkSvc(ns, "plain"))
	waitEvent(t, ns, "plain", assigner.ReasonAllocationFailed, "every pool (manual) has autoAssign: false", "metallb.io/address-pool")
	// Naming it allocates from it, with either spelling and any case.
	create(t,
		mkSvc(ns, "named", annotate(lbservice.AnnotationAddressPool, "manual")),
		mkSvc(ns, "named-upper", annotate(lbservice.AnnotationAddressPoolLegacy, "Manual")),
		mkSvc(ns, "named-missing", annotate(lbservice.AnnotationAddressPool, "gold")),
	)
	a := waitAssigned(t, ns, "named")
	b := waitAssigned(t, ns, "named-upper")
	got := []string{ingress(a)[0], ingress(b)[0]}
	slices.Sort(got)
	if !slices.Equal(got, []string{"192.0.2.0", "192.0.2.1"}) {
		t.Errorf("named services got %v", got)
	}
	waitEvent(t, ns, "named-upper", assigner.ReasonPoolNameMatchedIgnoringCase, `"Manual"`, `using ipaddresspool "manual"`)
	noEvent(t, ns, "named", assigner.ReasonPoolNameMatchedIgnoringCase)
	waitEvent(t, ns, "named-missing", assigner.ReasonAllocationFailed, `metallb.io/address-pool names ipaddresspool "gold", which does not exist`)

	// An autoAssign pool appears: the waiting plain Service is retried.
	create(t, mkPool("open", "203.0.113.0/28"))
	waitIngress(t, ns, "plain", "open", "203.0.113.0")
}

func TestServiceAllocation(t *testing.T) {
	cleanConfig(t)
	nsA := newNamespace(t, nil)
	nsWeb := newNamespace(t, map[string]string{"team": "web"})
	nsOther := newNamespace(t, nil)
	startController(t, assigner.Options{})
	sa := func(p *v1beta1.IPAddressPool, a v1beta1.ServiceAllocation) *v1beta1.IPAddressPool {
		p.Spec.AllocateTo = &a
		return p
	}
	create(t,
		mkPool("z-open", "198.51.100.0/28"),
		sa(mkPool("ns-p20", "203.0.113.0/28"), v1beta1.ServiceAllocation{Priority: 20, Namespaces: []string{nsA}}),
		sa(mkPool("ns-p10", "203.0.113.16/28"), v1beta1.ServiceAllocation{Priority: 10, Namespaces: []string{nsA}}),
		sa(mkPool("web-ns", "203.0.113.32/28"), v1beta1.ServiceAllocation{Priority: 5, NamespaceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"team": "web"}}}}),
		sa(mkPool("gold", "203.0.113.48/28"), v1beta1.ServiceAllocation{Priority: 1, ServiceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"tier": "gold"}}}}),
	)
	waitPoolsSeen(t, "z-open", "ns-p20", "ns-p10", "web-ns", "gold")
	create(t,
		mkSvc(nsA, "in-a"),
		mkSvc(nsWeb, "in-web"),
		mkSvc(nsOther, "elsewhere"),
		mkSvc(nsOther, "gold", func(s *corev1.Service) { s.Labels = map[string]string{"tier": "gold"} }),
		// A pinned pool must still admit the Service.
		mkSvc(nsOther, "pinned-refused", annotate(lbservice.AnnotationAddressPool, "ns-p10")),
	)
	waitIngress(t, nsA, "in-a", "ns-p10", "203.0.113.16") // priority 10 before 20
	waitIngress(t, nsWeb, "in-web", "web-ns", "203.0.113.32")
	waitIngress(t, nsOther, "elsewhere", "z-open", "198.51.100.0")
	waitIngress(t, nsOther, "gold", "gold", "203.0.113.48")
	waitEvent(t, nsOther, "pinned-refused", assigner.ReasonAllocationFailed,
		`ipaddresspool "ns-p10" (metallb.io/address-pool) does not serve this Service: its serviceAllocation admits only Services in namespaces `+nsA)

	// The namespace loses its label: its Service leaves web-ns.
	var n corev1.Namespace
	if err := k8s.Get(context.Background(), client.ObjectKey{Name: nsWeb}, &n); err != nil {
		t.Fatal(err)
	}
	n.Labels = map[string]string{"team": "db"}
	if err := k8s.Update(context.Background(), &n); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, nsWeb, "in-web", "z-open", "198.51.100.1")
	waitEvent(t, nsWeb, "in-web", assigner.ReasonClearAssignment, `Cleared ["203.0.113.32"]`, `namespaces labelled "team=web"`)
}

func TestLowestFirstAndAvoidBuggyIPs(t *testing.T) {
	cleanConfig(t)
	ns := newNamespace(t, nil)
	startController(t, assigner.Options{})
	p := mkPool("edge", "198.51.100.254-198.51.101.2")
	p.Spec.AvoidBuggyIPs = true
	create(t, p)
	for i, want := range []string{"198.51.100.254", "198.51.101.1", "198.51.101.2"} {
		name := fmt.Sprintf("s%d", i)
		create(t, mkSvc(ns, name))
		waitIngress(t, ns, name, "edge", want)
	}
	create(t, mkSvc(ns, "full"))
	waitEvent(t, ns, "full", assigner.ReasonAllocationFailed, `address pool "edge" has no free IPv4 address`, "add addresses to the pool")
	create(t, mkSvc(ns, "buggy", annotate(lbservice.AnnotationLoadBalancerIPs, "198.51.100.255")))
	waitEvent(t, ns, "buggy", assigner.ReasonAllocationFailed, "198.51.100.255", "avoidBuggyIPs")
	// Freeing the lowest address gives it to the waiting Service.
	if err := k8s.Delete(context.Background(), mkSvc(ns, "s0")); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, ns, "full", "edge", "198.51.100.254")
	eventually(t, waitTimeout, func() error {
		if st := poolStatus(t, "edge"); st != (v1beta1.IPAddressPoolStatus{AssignedIPv4: 3, AvailableIPv4: 0}) {
			return fmt.Errorf("pool status %+v", st)
		}
		return nil
	})
}

func TestDualStack(t *testing.T) {
	cleanConfig(t)
	ns := newNamespace(t, nil)
	startController(t, assigner.Options{})
	create(t,
		mkPool("a-v4", "203.0.113.0/28"),
		mkPool("b-dual", "198.51.100.0/28", "2001:db8::/64"),
		mkPool("c-v6", "2001:db8:1::/120"),
	)
	waitPoolsSeen(t, "a-v4", "b-dual", "c-v6")
	fam := func(policy corev1.IPFamilyPolicy, fams ...corev1.IPFamily) func(*corev1.Service) {
		return func(s *corev1.Service) {
			s.Spec.IPFamilyPolicy = &policy
			s.Spec.IPFamilies = fams
		}
	}
	v4, v6 := corev1.IPv4Protocol, corev1.IPv6Protocol
	create(t, mkSvc(ns, "single-v6", fam(corev1.IPFamilyPolicySingleStack, v6)))
	waitIngress(t, ns, "single-v6", "b-dual", "2001:db8::")
	// IPv6 listed first: the ingress is still IPv4 first.
	create(t, mkSvc(ns, "prefer", fam(corev1.IPFamilyPolicyPreferDualStack, v6, v4)))
	waitIngress(t, ns, "prefer", "b-dual", "198.51.100.0", "2001:db8::1")
	create(t, mkSvc(ns, "require", fam(corev1.IPFamilyPolicyRequireDualStack, v4, v6)))
	waitIngress(t, ns, "require", "b-dual", "198.51.100.1", "2001:db8::2")
	create(t, mkSvc(ns, "single-v4", fam(corev1.IPFamilyPolicySingleStack, v4)))
	waitIngress(t, ns, "single-v4", "a-v4", "203.0.113.0")
	// PreferDualStack in a single-family pool: one address.
	create(t, mkSvc(ns, "prefer-in-v4", fam(corev1.IPFamilyPolicyPreferDualStack, v4, v6), annotate(lbservice.AnnotationAddressPool, "a-v4")))
	waitIngress(t, ns, "prefer-in-v4", "a-v4", "203.0.113.1")
	// RequireDualStack in a single-family pool: refused, saying why.
	create(t, mkSvc(ns, "require-in-v4", fam(corev1.IPFamilyPolicyRequireDualStack, v4, v6), annotate(lbservice.AnnotationAddressPool, "a-v4")))
	waitEvent(t, ns, "require-in-v4", assigner.ReasonAllocationFailed, `address pool "a-v4" has no IPv6 range`, "spec.ipFamilyPolicy")

	// Back to single stack: the IPv4 address stays, the IPv6 one goes.
	s := getSvc(t, ns, "require")
	s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
	s.Spec.IPFamilies = []corev1.IPFamily{v4}
	s.Spec.ClusterIPs = s.Spec.ClusterIPs[:1]
	if err := k8s.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, ns, "require", "b-dual", "198.51.100.1")
	waitEvent(t, ns, "require", assigner.ReasonClearAssignment, `Cleared ["2001:db8::2"]`, "no longer asks for an IPv6 address")
	eventually(t, waitTimeout, func() error {
		st := poolStatus(t, "b-dual")
		if st.AssignedIPv4 != 2 || st.AssignedIPv6 != 2 || st.AvailableIPv6 != 1<<63-1 || st.AvailableIPv4 != 14 {
			return fmt.Errorf("b-dual status %+v", st)
		}
		if st := poolStatus(t, "c-v6"); st.AvailableIPv6 != 256 {
			return fmt.Errorf("c-v6 status %+v", st)
		}
		return nil
	})
}

func TestLoadBalancerClass(t *testing.T) {
	cleanConfig(t)
	ns := newNamespace(t, nil)
	create(t, mkPool("a", "203.0.113.0/28"))
	classed := mkSvc(ns, "classed", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("example.com/other") })
	create(t, classed)
	run := startController(t, assigner.Options{})
	create(t, mkSvc(ns, "plain"))
	waitIngress(t, ns, "plain", "a", "203.0.113.0")
	eventually(t, waitTimeout, func() error {
		if reconciles(t, assigner.ServiceControllerName) == 0 {
			return fmt.Errorf("no reconcile yet")
		}
		return nil
	})
	if s := getSvc(t, ns, "classed"); len(s.Status.LoadBalancer.Ingress) != 0 || len(events(t, ns, "classed")) != 0 {
		t.Errorf("a Service of another class was touched: %v %v", ingress(s), events(t, ns, "classed"))
	}
	run.stop()

	// --lb-class example.com/other serves it and leaves the plain one be.
	startController(t, assigner.Options{LBClass: "example.com/other"})
	waitIngress(t, ns, "classed", "a", "203.0.113.0")
	s := getSvc(t, ns, "plain")
	if !slices.Equal(ingress(s), []string{"203.0.113.0"}) {
		t.Errorf("plain Service changed to %v", ingress(s))
	}
}

func TestPoolDeletionMovesThenClears(t *testing.T) {
	cleanConfig(t)
	ns := newNamespace(t, nil)
	startController(t, assigner.Options{})
	create(t, mkPool("a", "203.0.113.0/28"), mkPool("b", "198.51.100.0/28"))
	waitPoolsSeen(t, "a", "b")
	create(t, mkSvc(ns, "s1"))
	waitIngress(t, ns, "s1", "a", "203.0.113.0")
	create(t, mkSvc(ns, "s2"))
	waitIngress(t, ns, "s2", "a", "203.0.113.1")

	if err := k8s.Delete(context.Background(), mkPool("a")); err != nil {
		t.Fatal(err)
	}
	var s1, s2 *corev1.Service
	eventually(t, waitTimeout, func() error {
		s1, s2 = getSvc(t, ns, "s1"), getSvc(t, ns, "s2")
		for _, s := range []*corev1.Service{s1, s2} {
			if ips := ingress(s); len(ips) != 1 || !strings.HasPrefix(ips[0], "198.51.100.") {
				return fmt.Errorf("%s shows %v", s.Name, ips)
			}
		}
		return nil
	})
	got := []string{ingress(s1)[0], ingress(s2)[0]}
	slices.Sort(got)
	if !slices.Equal(got, []string{"198.51.100.0", "198.51.100.1"}) {
		t.Errorf("moved to %v", got)
	}
	waitIngress(t, ns, "s1", "b", ingress(s1)...)
	waitEvent(t, ns, "s1", assigner.ReasonClearAssignment, `Cleared ["203.0.113.0"]: 203.0.113.0 is not in any ipaddresspool`)
	waitEvent(t, ns, "s1", assigner.ReasonIPAllocated, `from ipaddresspool "b"`)

	if err := k8s.Delete(context.Background(), mkPool("b")); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, ns, "s1", "")
	waitIngress(t, ns, "s2", "")
	waitEvent(t, ns, "s2", assigner.ReasonClearAssignment, `Cleared ["`+ingress(s2)[0]+`"]`)
	waitEvent(t, ns, "s2", assigner.ReasonAllocationFailed, "there is no IPAddressPool; create one")
}

func TestNonLoadBalancerReleases(t *testing.T) {
	cleanConfig(t)
	ns := newNamespace(t, nil)
	startController(t, assigner.Options{})
	create(t, mkPool("a", "203.0.113.0/28"))
	create(t, mkSvc(ns, "was-lb"))
	waitIngress(t, ns, "was-lb", "a", "203.0.113.0")
	s := getSvc(t, ns, "was-lb")
	s.Spec.Type = corev1.ServiceTypeClusterIP
	if err := k8s.Update(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	waitIngress(t, ns, "was-lb", "") // status cleared, annotation removed
	waitEvent(t, ns, "was-lb", assigner.ReasonClearAssignment, `Released ["203.0.113.0"]: the Service is no longer of type LoadBalancer`)
	// The address is free again.
	create(t, mkSvc(ns, "next"))
	waitIngress(t, ns, "next", "a", "203.0.113.0")
	create(t, mkSvc(ns, "never-lb", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort }))
	create(t, mkSvc(ns, "after"))
	waitIngress(t, ns, "after", "a", "203.0.113.1")
	if s := getSvc(t, ns, "never-lb"); len(s.Annotations) != 0 || len(events(t, ns, "never-lb")) != 0 {
		t.Errorf("a NodePort Service was touched: %v", s.Annotations)
	}
}

func TestConfigurationState(t *testing.T) {
	cleanConfig(t)
	ns := newNamespace(t, nil)
	startController(t, assigner.Options{})
	create(t, mkPool("a", "203.0.113.0/28"))
	create(t, mkSvc(ns, "s1"))
	waitIngress(t, ns, "s1", "a", "203.0.113.0")
	waitState := func(result v1beta1.ConfigurationResult, substrs ...string) *v1beta1.ConfigurationState {
		t.Helper()
		var cs *v1beta1.ConfigurationState
		eventually(t, waitTimeout, func() error {
			cs = configurationState(t)
			if cs == nil {
				return fmt.Errorf("no ConfigurationState %q yet", assigner.ConfigurationStateName)
			}
			if cs.Status.Result != result {
				return fmt.Errorf("result %s (%s), want %s", cs.Status.Result, cs.Status.ErrorSummary, result)
			}
			for _, s := range substrs {
				if !strings.Contains(cs.Status.ErrorSummary, s) {
					return fmt.Errorf("summary %q lacks %q", cs.Status.ErrorSummary, s)
				}
			}
			return nil
		})
		return cs
	}
	cs := waitState(v1beta1.ConfigurationValid)
	if cs.Status.ErrorSummary != "" || !meta.IsStatusConditionTrue(cs.Status.Conditions, configstate.ConditionValid) {
		t.Errorf("valid state %+v", cs.Status)
	}

	// An unresolved reference: valid, with the warning listed until it resolves.
	create(t, &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "adv"}, Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"later"}}})
	cs = waitState(v1beta1.ConfigurationValid, "warnings:", `ipaddresspool "later"`)
	if !meta.IsStatusConditionTrue(cs.Status.Conditions, configstate.ConditionWarnings) {
		t.Errorf("no Warnings condition: %+v", cs.Status.Conditions)
	}
	create(t, mkPool("later", "192.0.2.0/28"))
	eventually(t, waitTimeout, func() error {
		cs = configurationState(t)
		if cs.Status.ErrorSummary != "" || meta.IsStatusConditionTrue(cs.Status.Conditions, configstate.ConditionWarnings) {
			return fmt.Errorf("warning still reported: %+v", cs.Status)
		}
		return nil
	})

	// An overlapping pool (stored while no webhook watched): Invalid, and
	// the controller keeps serving with the last valid configuration.
	create(t, mkPool("overlap", "203.0.113.8/29"))
	cs = waitState(v1beta1.ConfigurationInvalid, `ipaddresspool "overlap"`, "overlaps", "keeps using the last valid configuration")
	if c := meta.FindStatusCondition(cs.Status.Conditions, configstate.ConditionStale); c == nil || c.Status != metav1.ConditionTrue || c.Reason != "LastValidConfigurationInUse" {
		t.Errorf("Stale condition %+v", c)
	}
	create(t, mkSvc(ns, "s2"))
	waitIngress(t, ns, "s2", "a", "203.0.113.1")
	if v, err := gauge(t, "metallb_k8s_client_config_stale_bool", nil); err != nil || v != 1 {
		t.Errorf("stale gauge %v %v", v, err)
	}
	if err := k8s.Delete(context.Background(), mkPool("overlap")); err != nil {
		t.Fatal(err)
	}
	waitState(v1beta1.ConfigurationValid)
	waitIngress(t, ns, "s1", "a", "203.0.113.0")

	// A BGPPeer whose password Secret turns bad (no webhook sees a Secret):
	// only that peer is refused, reported once on the BGPPeer; addresses
	// keep coming from the current configuration.
	pw := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "pw"}, Type: corev1.SecretTypeBasicAuth,
		Data: map[string][]byte{"password": []byte("s3cret")}}
	create(t, pw, &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "edge"},
		Spec: v1beta2.BGPPeerSpec{MyASN: 64512, ASN: 64513, Address: "198.18.0.254", PasswordSecret: corev1.SecretReference{Name: "pw"}}})
	pw.Data["password"] = []byte("s3cret\nneighbor 6.6.6.6 remote-as 1")
	if err := k8s.Update(context.Background(), pw); err != nil {
		t.Fatal(err)
	}
	cs = waitState(v1beta1.ConfigurationInvalid, `bgppeer "edge": spec.passwordSecret`, "every other object is in use")
	if meta.IsStatusConditionTrue(cs.Status.Conditions, configstate.ConditionStale) {
		t.Errorf("a refused peer made the configuration stale: %+v", cs.Status.Conditions)
	}
	waitEvent(t, stackNS, "edge", "PeerRefused", `the password in secret "pw" contains the control character`, "every other session keeps announcing")
	create(t, mkPool("after", "198.51.100.0/28"))
	create(t, mkSvc(ns, "s3", annotate("metallb.io/address-pool", "after")))
	waitIngress(t, ns, "s3", "after", "198.51.100.0")
	if n := len(slices.DeleteFunc(events(t, stackNS, "edge"), func(e corev1.Event) bool { return e.Reason != "PeerRefused" })); n != 1 {
		t.Errorf("%d PeerRefused events, want 1 (once per reason)", n)
	}
}

// TestNoOpReconcileMakesNoWrites: once everything is settled, reconciling
// every Service and the configuration again writes nothing at all (no
// status, annotation, event, pool status or ConfigurationState write).
func TestNoOpReconcileMakesNoWrites(t *testing.T) {
	cleanConfig(t)
	ns := newNamespace(t, nil)
	run := startController(t, assigner.Options{})
	create(t, mkPool("a", "203.0.113.0/28"), mkPool("b", "198.51.100.0/28", "2001:db8::/120"))
	waitPoolsSeen(t, "a", "b")
	share := annotate(lbservice.AnnotationAllowSharedIP, "k")
	create(t,
		mkSvc(ns, "plain"),
		mkSvc(ns, "pinned", annotate(lbservice.AnnotationAddressPool, "b")),
		mkSvc(ns, "share-80", share),
		mkSvc(ns, "share-443", share, func(s *corev1.Service) { s.Spec.Ports[0].Port = 443 }),
		mkSvc(ns, "dual", func(s *corev1.Service) {
			s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicyRequireDualStack)
			s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
		}),
		mkSvc(ns, "failing", annotate(lbservice.AnnotationLoadBalancerIPs, "192.0.2.1")),
	)
	for _, n := range []string{"plain", "pinned", "share-80", "share-443", "dual"} {
		waitAssigned(t, ns, n)
	}
	waitEvent(t, ns, "failing", assigner.ReasonAllocationFailed, "192.0.2.1 is not in any ipaddresspool")
	// Settle: pool status and ConfigurationState written, events sent.
	eventually(t, waitTimeout, func() error {
		if st := poolStatus(t, "b"); st.AssignedIPv4 != 2 || st.AssignedIPv6 != 1 {
			return fmt.Errorf("pool b status %+v", st)
		}
		if cs := configurationState(t); cs == nil || cs.Status.Result != v1beta1.ConfigurationValid {
			return fmt.Errorf("configurationstate %+v", cs)
		}
		return nil
	})
	time.Sleep(time.Second)

	// Touch every Service and a pool (labels): every Service and the
	// configuration are reconciled again.
	ctx := context.Background()
	var list corev1.ServiceList
	if err := k8s.List(ctx, &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	before := run.writes.count()
	svcReconciles := reconciles(t, assigner.ServiceControllerName)
	cfgReconciles := reconciles(t, assigner.ConfigControllerName)
	eventsBefore := map[string]int32{}
	for _, e := range events(t, ns, "failing") {
		eventsBefore[e.Reason] += e.Count
	}
	rv := map[string]string{}
	for i := range list.Items {
		s := &list.Items[i]
		s.Labels = map[string]string{"touched": "yes"}
		if err := k8s.Update(ctx, s); err != nil {
			t.Fatal(err)
		}
		rv[s.Name] = s.ResourceVersion
	}
	var pool v1beta1.IPAddressPool
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: stackNS, Name: "a"}, &pool); err != nil {
		t.Fatal(err)
	}
	pool.Labels = map[string]string{"touched": "yes"}
	if err := k8s.Update(ctx, &pool); err != nil {
		t.Fatal(err)
	}
	poolRV, csRV := pool.ResourceVersion, configurationState(t).ResourceVersion
	var poolB v1beta1.IPAddressPool
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: stackNS, Name: "b"}, &poolB); err != nil {
		t.Fatal(err)
	}
	eventually(t, waitTimeout, func() error {
		if got := reconciles(t, assigner.ServiceControllerName) - svcReconciles; got < float64(len(list.Items)) {
			return fmt.Errorf("%v service reconciles, want %d", got, len(list.Items))
		}
		if reconciles(t, assigner.ConfigControllerName) <= cfgReconciles {
			return fmt.Errorf("no configuration reconcile")
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond) // longer than the pool status interval
	if w := run.writes.since(before); len(w) > 0 {
		t.Errorf("no-op reconciles wrote %d times: %q", len(w), w)
	}
	for _, s := range list.Items {
		if got := getSvc(t, ns, s.Name).ResourceVersion; got != rv[s.Name] {
			t.Errorf("service %s was written (resourceVersion %s -> %s)", s.Name, rv[s.Name], got)
		}
	}
	var after v1beta1.IPAddressPool
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: stackNS, Name: "a"}, &after); err != nil || after.ResourceVersion != poolRV {
		t.Errorf("pool a was written: %v %s -> %s", err, poolRV, after.ResourceVersion)
	}
	if err := k8s.Get(ctx, client.ObjectKey{Namespace: stackNS, Name: "b"}, &after); err != nil || after.ResourceVersion != poolB.ResourceVersion {
		t.Errorf("pool b was written: %v", err)
	}
	if got := configurationState(t).ResourceVersion; got != csRV {
		t.Errorf("configurationstate was written (%s -> %s)", csRV, got)
	}
	eventsAfter := map[string]int32{}
	for _, e := range events(t, ns, "failing") {
		eventsAfter[e.Reason] += e.Count
	}
	if eventsAfter[assigner.ReasonAllocationFailed] != eventsBefore[assigner.ReasonAllocationFailed] {
		t.Errorf("AllocationFailed recorded again: %v -> %v", eventsBefore, eventsAfter)
	}
}

// TestEventsAfterABurst: 150 Services pending when the controller starts
// make a burst of address writes, during which the controller holds its
// Events back (pkg/assigner eventPacer); every Service still ends with
// exactly one IPAllocated Event naming its address.
func TestEventsAfterABurst(t *testing.T) {
	cleanConfig(t)
	ns := newNamespace(t, nil)
	create(t, mkPool("burst", "198.51.100.0/24"))
	const n = 150
	for i := range n {
		create(t, mkSvc(ns, fmt.Sprintf("b%03d", i)))
	}
	startController(t, assigner.Options{})
	ips := map[string]string{}
	eventually(t, waitTimeout, func() error {
		var list corev1.ServiceList
		if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		for _, s := range list.Items {
			if len(s.Status.LoadBalancer.Ingress) == 0 {
				return fmt.Errorf("%s has no address yet", s.Name)
			}
			ips[s.Name] = s.Status.LoadBalancer.Ingress[0].IP
		}
		return nil
	})
	eventually(t, waitTimeout, func() error {
		var list corev1.EventList
		if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
			return err
		}
		got := map[string][]string{}
		for _, e := range list.Items {
			if e.Reason == assigner.ReasonIPAllocated {
				got[e.InvolvedObject.Name] = append(got[e.InvolvedObject.Name], e.Message)
			}
		}
		for name, ip := range ips {
			msgs := got[name]
			if len(msgs) != 1 || !strings.Contains(msgs[0], `"`+ip+`"`) {
				return fmt.Errorf("%s (address %s): IPAllocated events %q, want one naming its address (%d of %d Services have theirs)", name, ip, msgs, len(got), n)
			}
		}
		return nil
	})
}
