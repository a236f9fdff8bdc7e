package election

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

func node(name string, lbls map[string]string, mods ...func(*corev1.Node)) *corev1.Node {
	l := map[string]string{"kubernetes.io/hostname": name}
	for k, v := range lbls {
		l[k] = v
	}
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: l}}
	for _, m := range mods {
		m(n)
	}
	return n
}

func networkUnavailable(n *corev1.Node) {
	n.Status.Conditions = append(n.Status.Conditions, corev1.NodeCondition{
		Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue,
	})
}

func excludeLabel(n *corev1.Node) { n.Labels[lbservice.ExcludeLabel] = "" }

func svc(name string, etp corev1.ServiceExternalTrafficPolicy) *corev1.Service {
	return &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: etp},
	}
}

// endpoints is one slice of the Service "default/<svc>" with a serving
// endpoint on each named node, and a not-serving one on each node prefixed
// with "!".
func endpoints(svcName string, nodes ...string) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{
		Name: svcName + "-x", Namespace: "default",
		Labels: map[string]string{discoveryv1.LabelServiceName: svcName},
	}}
	for i, n := range nodes {
		serving := true
		if n[0] == '!' {
			n, serving = n[1:], false
		}
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{fmt.Sprintf("198.18.128.%d", i+1)},
			NodeName:   ptr.To(n),
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(serving), Serving: ptr.To(serving)},
		})
	}
	return s
}

func sel(kv ...string) labels.Selector {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return labels.SelectorFromSet(m)
}

func TestCandidates(t *testing.T) {
	nodes := []*corev1.Node{
		node("n3", map[string]string{"zone": "b", "ssd": "yes"}),
		node("n1", map[string]string{"zone": "a"}),
		node("n2", map[string]string{"zone": "b"}),
	}
	all := &config.L2Advertisement{Name: "all"}
	zoneB := &config.L2Advertisement{Name: "zone-b", NodeSelectors: []labels.Selector{sel("zone", "b")}}
	preferSSD := &config.L2Advertisement{Name: "ssd", PreferredNodes: []config.WeightedSelector{
		{Weight: 50, Selector: sel("ssd", "yes")},
		{Weight: 20, Selector: sel("zone", "b")},
	}}
	preferA := &config.L2Advertisement{Name: "a", PreferredNodes: []config.WeightedSelector{{Weight: 10, Selector: sel("zone", "a")}}}
	otherSvc := &config.L2Advertisement{Name: "other", ServiceSelectors: []labels.Selector{sel("app", "other")}}

	tests := []struct {
		name  string
		advs  []*config.L2Advertisement
		etp   corev1.ServiceExternalTrafficPolicy
		nodes []*corev1.Node
		eps   []*discoveryv1.EndpointSlice
		want  []Candidate
	}{
		{
			name: "cluster policy: every node, sorted by name",
			advs: []*config.L2Advertisement{all}, etp: corev1.ServiceExternalTrafficPolicyCluster,
			nodes: nodes, eps: []*discoveryv1.EndpointSlice{endpoints("web", "n1")},
			want: []Candidate{{"n1", 0}, {"n2", 0}, {"n3", 0}},
		},
		{
			name: "cluster policy without a serving endpoint anywhere: nobody",
			advs: []*config.L2Advertisement{all}, etp: corev1.ServiceExternalTrafficPolicyCluster,
			nodes: nodes, eps: []*discoveryv1.EndpointSlice{endpoints("web", "!n1"), endpoints("other", "n1")},
			want: nil,
		},
		{
			name: "local policy: only nodes with a serving local endpoint",
			advs: []*config.L2Advertisement{all}, etp: corev1.ServiceExternalTrafficPolicyLocal,
			nodes: nodes, eps: []*discoveryv1.EndpointSlice{endpoints("web", "n2", "!n3")},
			want: []Candidate{{"n2", 0}},
		},
		{
			name: "node selectors limit the candidates",
			advs: []*config.L2Advertisement{zoneB}, etp: corev1.ServiceExternalTrafficPolicyCluster,
			nodes: nodes, eps: []*discoveryv1.EndpointSlice{endpoints("web", "n1")},
			want: []Candidate{{"n2", 0}, {"n3", 0}},
		},
		{
			name: "excluded nodes are never candidates",
			advs: []*config.L2Advertisement{all}, etp: corev1.ServiceExternalTrafficPolicyCluster,
			nodes: []*corev1.Node{
				node("n1", nil, networkUnavailable),
				node("n2", nil, excludeLabel),
				node("n3", nil),
			},
			eps:  []*discoveryv1.EndpointSlice{endpoints("web", "n1")},
			want: []Candidate{{"n3", 0}},
		},
		{
			name: "an advertisement for other Services selects nobody",
			advs: []*config.L2Advertisement{otherSvc}, etp: corev1.ServiceExternalTrafficPolicyCluster,
			nodes: nodes, eps: []*discoveryv1.EndpointSlice{endpoints("web", "n1")},
			want: nil,
		},
		{
			name: "weights are the sum of the matched preferred terms",
			advs: []*config.L2Advertisement{preferSSD}, etp: corev1.ServiceExternalTrafficPolicyCluster,
			nodes: nodes, eps: []*discoveryv1.EndpointSlice{endpoints("web", "n1")},
			want: []Candidate{{"n1", 0}, {"n2", 20}, {"n3", 70}},
		},
		{
			name: "several advertisements: union of nodes, highest weight of those selecting the node",
			advs: []*config.L2Advertisement{zoneB, preferA, otherSvc}, etp: corev1.ServiceExternalTrafficPolicyCluster,
			nodes: nodes, eps: []*discoveryv1.EndpointSlice{endpoints("web", "n1")},
			want: []Candidate{{"n1", 10}, {"n2", 0}, {"n3", 0}},
		},
		{
			name: "no advertisement: nobody",
			advs: nil, etp: corev1.ServiceExternalTrafficPolicyCluster,
			nodes: nodes, eps: []*discoveryv1.EndpointSlice{endpoints("web", "n1")},
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Candidates(tt.advs, svc("web", tt.etp), tt.nodes, tt.eps)
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Candidates = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestCandidatesFromBuiltConfig feeds Candidates from config.Build, the way
// the speaker will: the address's pool carries its L2 advertisements with
// the preferredNodeSelectors parsed.
func TestCandidatesFromBuiltConfig(t *testing.T) {
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: "metallb-system"} }
	res := config.Build(config.Resources{
		Pools: []v1beta1.IPAddressPool{{ObjectMeta: meta("l2pool"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/28"}}}},
		L2Advs: []v1beta1.L2Advertisement{{ObjectMeta: meta("l2"), Spec: v1beta1.L2AdvertisementSpec{
			IPAddressPools: []string{"l2pool"},
			NodeSelectors:  []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "zone", Operator: metav1.LabelSelectorOpExists}}}},
			PreferredNodeSelectors: []v1beta1.PreferredNodeSelector{
				{Weight: 30, Preference: metav1.LabelSelector{MatchLabels: map[string]string{"zone": "b"}}},
			},
		}}},
	}, config.Options{Namespace: "metallb-system"})
	if err := res.Err(); err != nil {
		t.Fatalf("config.Build: %v", err)
	}
	addr := netip.MustParseAddr("203.0.113.5")
	pool := res.Config.PoolFor(addr)
	if pool == nil {
		t.Fatalf("no pool for %s", addr)
	}
	nodes := []*corev1.Node{
		node("n1", map[string]string{"zone": "a"}),
		node("n2", map[string]string{"zone": "b"}),
		node("n3", nil), // no zone label: not selected
	}
	got := Candidates(pool.L2Advertisements, svc("web", corev1.ServiceExternalTrafficPolicyCluster), nodes,
		[]*discoveryv1.EndpointSlice{endpoints("web", "n3")})
	want := []Candidate{{"n1", 0}, {"n2", 30}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Candidates = %v, want %v", got, want)
	}
	if n, ok := Elect(addr, got, map[string]bool{"n1": true, "n2": true, "n3": true}); !ok || n != "n2" {
		t.Errorf("Elect = %q, %v; want the preferred node n2", n, ok)
	}
}

func TestElect(t *testing.T) {
	three := []Candidate{{"n1", 0}, {"n2", 0}, {"n3", 0}}
	allLive := map[string]bool{"n1": true, "n2": true, "n3": true}
	addr := netip.MustParseAddr("203.0.113.10")
	// The equal-weight winner for addr, whatever the hash makes it; the
	// cases below are stated relative to it.
	ranked := Rank(addr, three)
	first, second := ranked[0].Name, ranked[1].Name

	tests := []struct {
		name       string
		addr       netip.Addr
		candidates []Candidate
		live       map[string]bool
		want       string
		wantOK     bool
	}{
		{name: "equal weights: the hash decides", addr: addr, candidates: three, live: allLive, want: first, wantOK: true},
		{name: "winner's speaker dead: the runner-up takes over", addr: addr, candidates: three,
			live: without(allLive, first), want: second, wantOK: true},
		{name: "a higher weight beats the hash", addr: addr,
			candidates: []Candidate{{"n1", 0}, {"n2", 0}, {"n3", 0}, {"heavy", 1}},
			live:       map[string]bool{"n1": true, "n2": true, "n3": true, "heavy": true}, want: "heavy", wantOK: true},
		{name: "the heavier node dead: back to the hash among the rest", addr: addr,
			candidates: []Candidate{{"n1", 0}, {"n2", 0}, {"n3", 0}, {"heavy", 1}},
			live:       allLive, want: first, wantOK: true},
		{name: "live nodes that are not candidates never win", addr: addr,
			candidates: []Candidate{{"n1", 0}}, live: map[string]bool{"n2": true, "n3": true}, wantOK: false},
		{name: "no candidates", addr: addr, live: allLive, wantOK: false},
		{name: "an IPv4-mapped address elects like the IPv4 one", addr: netip.MustParseAddr("::ffff:203.0.113.10"),
			candidates: three, live: allLive, want: first, wantOK: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Elect(tt.addr, tt.candidates, tt.live)
			if got != tt.want || ok != tt.wantOK {
				t.Errorf("Elect = %q, %v; want %q, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}

func without(m map[string]bool, k string) map[string]bool {
	out := map[string]bool{}
	for kk, v := range m {
		if kk != k {
			out[kk] = v
		}
	}
	return out
}

// TestElectIgnoresInputOrder: every speaker lists nodes in whatever order
// its informer gives, and must still agree.
func TestElectIgnoresInputOrder(t *testing.T) {
	cands := []Candidate{{"a", 5}, {"b", 5}, {"c", 0}, {"d", 5}, {"e", 2}}
	live := map[string]bool{"a": true, "b": true, "c": true, "d": true, "e": true}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 50 {
		addr := netip.AddrFrom4([4]byte{203, 0, 113, byte(i)})
		want := Rank(addr, cands)
		shuffled := slices.Clone(cands)
		r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		if got := Rank(addr, shuffled); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Rank(shuffled) = %v, want %v", addr, got, want)
		}
		if n, _ := Elect(addr, shuffled, live); n != want[0].Name {
			t.Fatalf("%s: Elect(shuffled) = %s, want %s", addr, n, want[0].Name)
		}
	}
}

// TestSpreadTenServicesOverThreeNodes pins the election of ten addresses
// over three equal nodes. It proves the spread (every node gets some), and
// pins the exact answer because speakers of different versions run side by
// side during an upgrade: a change of the hash would make two nodes answer
// for the same address. Change the golden table only with a migration
// story. The golden values were cross-checked outside Go: the winner is the
// node with the lowest `printf 'node-a#203.0.113.10' | sha256sum`.
func TestSpreadTenServicesOverThreeNodes(t *testing.T) {
	cands := []Candidate{{"node-a", 0}, {"node-b", 0}, {"node-c", 0}}
	live := map[string]bool{"node-a": true, "node-b": true, "node-c": true}
	golden := map[string]string{
		"203.0.113.10":     "node-c",
		"203.0.113.11":     "node-a",
		"203.0.113.12":     "node-a",
		"203.0.113.13":     "node-a",
		"203.0.113.14":     "node-b",
		"198.51.100.7":     "node-a",
		"198.51.100.8":     "node-a",
		"2001:db8:1::10":   "node-a",
		"2001:db8:1::11":   "node-c",
		"2001:db8:1::abcd": "node-b",
	}
	perNode := map[string]int{}
	for a, want := range golden {
		got, ok := Elect(netip.MustParseAddr(a), cands, live)
		if !ok {
			t.Fatalf("%s: nobody elected", a)
		}
		perNode[got]++
		if got != want {
			t.Errorf("%s: elected %s, golden says %s", a, got, want)
		}
	}
	for _, c := range cands {
		if perNode[c.Name] == 0 {
			t.Errorf("node %s announces none of the ten addresses: %v", c.Name, perNode)
		}
	}
	t.Logf("addresses per node: %v", perNode)
}
