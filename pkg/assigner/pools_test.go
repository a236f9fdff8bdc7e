package assigner

import (
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

const testNS = "metallb-system"

func pool(name string, addrs ...string) v1beta1.IPAddressPool {
	return v1beta1.IPAddressPool{
		ObjectMeta: metav1.ObjectMeta{Namespace: testNS, Name: name},
		Spec:       v1beta1.IPAddressPoolSpec{Addresses: addrs},
	}
}

func noAuto(p v1beta1.IPAddressPool) v1beta1.IPAddressPool {
	p.Spec.AutoAssign = ptr.To(false)
	return p
}

func buggy(p v1beta1.IPAddressPool) v1beta1.IPAddressPool {
	p.Spec.AvoidBuggyIPs = true
	return p
}

func allocate(sa v1beta1.ServiceAllocation) func(v1beta1.IPAddressPool) v1beta1.IPAddressPool {
	return func(p v1beta1.IPAddressPool) v1beta1.IPAddressPool {
		p.Spec.AllocateTo = &sa
		return p
	}
}

func buildConfig(t *testing.T, pools ...v1beta1.IPAddressPool) *config.Config {
	t.Helper()
	r := config.Build(config.Resources{Pools: pools}, config.Options{Namespace: testNS})
	if r.Config == nil {
		t.Fatalf("test configuration invalid: %v", r.Err())
	}
	return r.Config
}

func index(t *testing.T, pools ...v1beta1.IPAddressPool) *poolIndex {
	t.Helper()
	return newPoolIndex(buildConfig(t, pools...))
}

func TestChoosePools(t *testing.T) {
	web := map[string]string{"team": "web"}
	x := index(t,
		pool("b-open", "203.0.113.0/28"),
		pool("a-open", "203.0.113.16/28"),
		noAuto(pool("manual", "192.0.2.0/24")),
		allocate(v1beta1.ServiceAllocation{Priority: 10, Namespaces: []string{"ns"}})(pool("ns-p10", "203.0.113.32/28")),
		allocate(v1beta1.ServiceAllocation{Priority: 5, Namespaces: []string{"ns"}})(pool("ns-p5", "203.0.113.48/28")),
		allocate(v1beta1.ServiceAllocation{Namespaces: []string{"ns"}})(pool("ns-unset", "203.0.113.64/28")),
		allocate(v1beta1.ServiceAllocation{Priority: 1, Namespaces: []string{"other"}})(pool("other-ns", "203.0.113.80/28")),
		allocate(v1beta1.ServiceAllocation{Priority: 1, ServiceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"tier": "gold"}}}})(pool("gold", "203.0.113.96/28")),
		allocate(v1beta1.ServiceAllocation{Priority: 2, NamespaceSelectors: []metav1.LabelSelector{{MatchLabels: web}}})(pool("web-ns", "203.0.113.112/28")),
		noAuto(allocate(v1beta1.ServiceAllocation{Priority: 1, Namespaces: []string{"ns"}})(pool("ns-manual", "203.0.113.128/28"))),
	)
	if !x.nsSelectors {
		t.Error("nsSelectors = false with a namespace selector present")
	}
	cases := []struct {
		name     string
		svc      func() intent
		nsLabels map[string]string
		want     []string
		pinned   string
		note     string
		err      string
	}{
		{name: "serviceAllocation by priority, unset last, then open pools by name",
			svc:  func() intent { in, _ := parseIntent(svc("s")); return in },
			want: []string{"ns-p5", "ns-p10", "ns-unset", "a-open", "b-open"}},
		{name: "service selector",
			svc: func() intent {
				in, _ := parseIntent(svc("s", func(s *corev1.Service) { s.Labels = map[string]string{"tier": "gold"} }))
				return in
			},
			want: []string{"gold", "ns-p5", "ns-p10", "ns-unset", "a-open", "b-open"}},
		{name: "namespace selector",
			svc:      func() intent { in, _ := parseIntent(svc("s")); return in },
			nsLabels: web,
			want:     []string{"web-ns", "ns-p5", "ns-p10", "ns-unset", "a-open", "b-open"}},
		{name: "other namespace: only open pools",
			svc: func() intent {
				in, _ := parseIntent(svc("s", func(s *corev1.Service) { s.Namespace = "elsewhere" }))
				return in
			},
			want: []string{"a-open", "b-open"}},
		{name: "pool annotation allocates from an autoAssign: false pool",
			svc: func() intent {
				in, _ := parseIntent(svc("s", annotate(lbservice.AnnotationAddressPool, "manual")))
				return in
			},
			want:   []string{"manual"},
			pinned: "manual"},
		{name: "legacy annotation IPPool-B finds ippool-b ignoring case, with a note",
			svc: func() intent {
				in, _ := parseIntent(svc("s", annotate(lbservice.AnnotationAddressPoolLegacy, "MANUAL")))
				return in
			},
			want:   []string{"manual"},
			pinned: "manual",
			note:   `metallb.universe.tf/address-pool "MANUAL" names no pool exactly; using ipaddresspool "manual"`},
		{name: "unknown pool",
			svc: func() intent {
				in, _ := parseIntent(svc("s", annotate(lbservice.AnnotationAddressPool, "nope")))
				return in
			},
			err: `metallb.io/address-pool names ipaddresspool "nope", which does not exist`},
		{name: "pinned pool whose serviceAllocation does not admit the Service",
			svc: func() intent {
				in, _ := parseIntent(svc("s", annotate(lbservice.AnnotationAddressPool, "other-ns")))
				return in
			},
			err: `ipaddresspool "other-ns" (metallb.io/address-pool) does not serve this Service: its serviceAllocation admits only Services in namespaces other`},
		{name: "explicit addresses choose their own pool",
			svc: func() intent {
				in, _ := parseIntent(svc("s", annotate(lbservice.AnnotationLoadBalancerIPs, "192.0.2.5")))
				return in
			},
			want: nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := tc.svc()
			ch, err := x.choose(&in, tc.nsLabels)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(ch.Alloc, tc.want) || ch.Pinned != tc.pinned {
				t.Errorf("alloc %v pinned %q, want %v %q", ch.Alloc, ch.Pinned, tc.want, tc.pinned)
			}
			if !strings.HasPrefix(ch.Note, tc.note) || (tc.note == "") != (ch.Note == "") {
				t.Errorf("note %q, want %q", ch.Note, tc.note)
			}
		})
	}
}

func TestResolveAmbiguous(t *testing.T) {
	// Cannot happen with Kubernetes names; the rule still refuses to guess.
	x := &poolIndex{cfg: &config.Config{Pools: map[string]*config.Pool{"ab": {}, "aB": {}}, PoolNames: []string{"aB", "ab"}}}
	if _, _, err := x.resolve("AB", lbservice.AnnotationAddressPool); err == nil || !strings.Contains(err.Error(), "matches ipaddresspools aB, ab ignoring case") {
		t.Errorf("err = %v", err)
	}
}

func TestAllocationChanged(t *testing.T) {
	a := pool("a", "203.0.113.0/28")
	base := buildConfig(t, a)
	labelled := a
	labelled.Labels = map[string]string{"x": "y"}
	if allocationChanged(base, buildConfig(t, labelled)) {
		t.Error("a label change counts as an allocation change")
	}
	for name, p := range map[string]v1beta1.IPAddressPool{
		"autoAssign":        noAuto(a),
		"avoidBuggyIPs":     buggy(a),
		"ranges":            pool("a", "203.0.113.0/27"),
		"serviceAllocation": allocate(v1beta1.ServiceAllocation{Priority: 1})(a),
		"renamed":           pool("b", "203.0.113.0/28"),
	} {
		if !allocationChanged(base, buildConfig(t, p)) {
			t.Errorf("%s change not seen", name)
		}
	}
}
