package election

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/config"
)

// electorAddrs are the addresses random Services draw from: few, so that
// they are shared; in the pools with L2Advertisements (a, b), in one
// without (bgp), and in none.
var electorAddrs = []string{
	"203.0.113.1", "203.0.113.2", "203.0.113.3", "2001:db8:1::1", "2001:db8:1::2", // pool a
	"198.51.100.1", "198.51.100.2", // pool b
	"192.0.2.1",    // pool bgp, no L2Advertisement
	"198.18.99.99", // no pool
}

// electorConfigs are advertisement sets that exercise every way Decide
// merges and selects: interfaces named, not named and both for one
// address; node, Service and preferred node selectors; two pools.
var electorConfigs = map[string][]v1beta1.L2Advertisement{
	"one advertisement for both pools": {
		{ObjectMeta: electorMeta("all"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"a", "b"}}},
	},
	"interfaces, node and Service selectors": {
		{ObjectMeta: electorMeta("a-eth"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"a"}, Interfaces: []string{"eth1", "eth0"}}},
		{ObjectMeta: electorMeta("a-zone-b"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"a"}, Interfaces: []string{"eth2", "eth1"},
			NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"zone": "b"}}}}},
		{ObjectMeta: electorMeta("a-app-yes"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"a"},
			ServiceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"app": "yes"}}}}},
		{ObjectMeta: electorMeta("b-zone-a"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"b"}, Interfaces: []string{"eth3"},
			NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"zone": "a"}}}}},
	},
	"preferences and Service selectors only": {
		{ObjectMeta: electorMeta("a-pref"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"a"}, Interfaces: []string{"eth0"},
			PreferredNodeSelectors: []v1beta1.PreferredNodeSelector{{Weight: 50, Preference: metav1.LabelSelector{MatchLabels: map[string]string{"zone": "b"}}}}}},
		{ObjectMeta: electorMeta("b-app-no"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"b"}, Interfaces: []string{"eth1"},
			ServiceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"app": "no"}}}}},
		{ObjectMeta: electorMeta("b-app-yes"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"b"}, Interfaces: []string{"eth2"},
			ServiceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"app": "yes"}}}}},
	},
}

func electorMeta(name string) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: name, Namespace: "metallb-system"}
}

func electorConfig(t *testing.T, advs []v1beta1.L2Advertisement) *config.Config {
	t.Helper()
	res := config.Build(config.Resources{
		Pools: []v1beta1.IPAddressPool{
			{ObjectMeta: electorMeta("a"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/28", "2001:db8:1::/124"}}},
			{ObjectMeta: electorMeta("b"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.0/28"}}},
			{ObjectMeta: electorMeta("bgp"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.0/28"}}},
		},
		L2Advs: advs,
	}, config.Options{Namespace: "metallb-system"})
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	return res.Config
}

var electorNodes = []string{"n1", "n2", "n3", "n4", "n5"}

// randomL2Service is Service i of the random world: usually LoadBalancer
// with up to three addresses of electorAddrs, either traffic policy, and
// endpoints (serving or not) on random nodes.
func randomL2Service(rng *rand.Rand, i int) (*corev1.Service, *discoveryv1.EndpointSlice) {
	name := fmt.Sprintf("s%d", i)
	etp := corev1.ServiceExternalTrafficPolicyCluster
	if rng.IntN(3) == 0 {
		etp = corev1.ServiceExternalTrafficPolicyLocal
	}
	s := svc(name, etp)
	s.Labels["app"] = []string{"yes", "no"}[rng.IntN(2)]
	for range rng.IntN(4) {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: electorAddrs[rng.IntN(len(electorAddrs))]})
	}
	if rng.IntN(8) == 0 {
		s.Spec.Type = corev1.ServiceTypeClusterIP
	}
	var on []string
	for _, n := range electorNodes {
		switch rng.IntN(4) {
		case 0:
			on = append(on, n)
		case 1:
			on = append(on, "!"+n)
		}
	}
	return s, endpoints(name, on...)
}

// TestElectorMatchesDecide replays random sequences of Service and
// EndpointSlice changes on an Elector and checks after each one that its
// Result is exactly Decide's over the whole current world, that Update
// reports a change of this node's announcements when (and only when)
// there is one, and that no Result or Announce handed out earlier is
// modified.
func TestElectorMatchesDecide(t *testing.T) {
	const services, steps = 14, 300
	nodes := []*corev1.Node{
		node("n1", map[string]string{"zone": "a"}),
		node("n2", map[string]string{"zone": "b"}),
		node("n3", map[string]string{"zone": "b"}),
		node("n4", map[string]string{"zone": "a"}, excludeLabel),
		node("n5", nil, networkUnavailable),
	}
	lives := map[string]map[string]bool{
		"all live":      {"n1": true, "n2": true, "n3": true, "n4": true, "n5": true},
		"n2 and n3 out": {"n1": true, "n4": true, "n5": true},
	}
	for cfgName, advs := range electorConfigs {
		cfg := electorConfig(t, advs)
		for liveName, live := range lives {
			for _, me := range []string{"n1", "n2", "n3", "n4", "ghost"} {
				for seed := range uint64(2) {
					t.Run(fmt.Sprintf("%s/%s/%s/seed %d", cfgName, liveName, me, seed), func(t *testing.T) {
						replayElector(t, rand.New(rand.NewPCG(seed, 21)), Input{Config: cfg, Node: me, Nodes: nodes, Live: live}, services, steps)
					})
				}
			}
		}
	}
}

func replayElector(t *testing.T, rng *rand.Rand, base Input, services, steps int) {
	svcs := map[string]*corev1.Service{}
	eps := map[string]*discoveryv1.EndpointSlice{}
	for i := range services / 2 {
		s, sl := randomL2Service(rng, i)
		svcs["default/"+s.Name], eps["default/"+s.Name] = s, sl
	}
	full := func() Result {
		in := base
		in.Services, in.EndpointSlices = nil, nil
		// Map order: Decide must not depend on the input order.
		for k, s := range svcs {
			in.Services = append(in.Services, s)
			in.EndpointSlices = append(in.EndpointSlices, eps[k])
		}
		return Decide(in)
	}
	in := base
	for k, s := range svcs {
		in.Services = append(in.Services, s)
		in.EndpointSlices = append(in.EndpointSlices, eps[k])
	}
	e := NewElector(in)
	want := full()
	checkElector(t, "initial", e, want)
	// Results handed out, with copies to check they stay as they were.
	type handed struct {
		step       string
		res, copy_ Result
	}
	var out []handed
	for step := range steps {
		i := rng.IntN(services)
		key := fmt.Sprintf("default/s%d", i)
		var what string
		switch op := rng.IntN(4); {
		case op == 0:
			what = "delete " + key
			delete(svcs, key)
			delete(eps, key)
		case op == 1 && svcs[key] != nil:
			what = "endpoints of " + key
			_, eps[key] = randomL2Service(rng, i)
		default:
			what = "new " + key
			svcs[key], eps[key] = randomL2Service(rng, i)
		}
		var sl []*discoveryv1.EndpointSlice
		if eps[key] != nil {
			sl = []*discoveryv1.EndpointSlice{eps[key]}
		}
		changed := e.Update(key, svcs[key], sl)
		prev := want
		want = full()
		label := fmt.Sprintf("step %d (%s)", step, what)
		checkElector(t, label, e, want)
		if mineChanged := !reflect.DeepEqual(prev.Announce, want.Announce); changed != mineChanged {
			t.Fatalf("%s: Update = %v, but this node's announcements changed: %v\nbefore %+v\nafter  %+v", label, changed, mineChanged, prev.Announce, want.Announce)
		}
		if step%7 == 0 {
			r := e.Result()
			out = append(out, handed{label, r, copyResult(r)})
		}
		for _, h := range out {
			if !reflect.DeepEqual(h.res, h.copy_) {
				t.Fatalf("%s: the Result handed out at %s changed:\nnow  %+v\nwas  %+v", label, h.step, h.res, h.copy_)
			}
		}
	}
}

func checkElector(t *testing.T, label string, e *Elector, want Result) {
	t.Helper()
	got := e.Result()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: Result\n got  %+v\n want %+v", label, got, want)
	}
	if a := e.Announce(); !reflect.DeepEqual(a, want.Announce) {
		t.Fatalf("%s: Announce = %+v, want %+v", label, a, want.Announce)
	}
	for _, s := range electorAddrs {
		a := netip.MustParseAddr(s)
		n, ok := e.Owner(a)
		w, wok := want.Owner[a]
		if n != w || ok != wok {
			t.Fatalf("%s: Owner(%s) = %q, %v; want %q, %v", label, a, n, ok, w, wok)
		}
	}
}

func copyResult(r Result) Result {
	out := Result{Owner: maps.Clone(r.Owner), Services: map[string][]netip.Addr{}}
	for k, v := range r.Services {
		out.Services[k] = slices.Clone(v)
	}
	for _, a := range r.Announce {
		out.Announce = append(out.Announce, Announcement{Addr: a.Addr, Interfaces: slices.Clone(a.Interfaces), Services: slices.Clone(a.Services)})
	}
	return out
}

// TestElectorWithoutConfiguration: no configuration, nothing is layer 2,
// as with Decide.
func TestElectorWithoutConfiguration(t *testing.T) {
	s := svc("web", corev1.ServiceExternalTrafficPolicyCluster)
	s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.1"}}
	in := Input{Node: "n1", Nodes: []*corev1.Node{node("n1", nil)}, Live: map[string]bool{"n1": true},
		Services: []*corev1.Service{s}, EndpointSlices: []*discoveryv1.EndpointSlice{endpoints("web", "n1")}}
	e := NewElector(in)
	if got, want := e.Result(), Decide(in); !reflect.DeepEqual(got, want) {
		t.Fatalf("Result = %+v, want %+v", got, want)
	}
	if e.Update("default/web", s, in.EndpointSlices) {
		t.Error("Update reports a change without configuration")
	}
}

// TestElectorSharedAddress walks one shared address through the cases
// that need its other Services: this node's announcement keeps the
// Services elected here and the interfaces they ask for, and Owner is
// the last Service's (in key order) however the others move.
func TestElectorSharedAddress(t *testing.T) {
	cfg := electorConfig(t, electorConfigs["interfaces, node and Service selectors"])
	nodes := []*corev1.Node{node("n1", map[string]string{"zone": "a"}), node("n2", map[string]string{"zone": "b"})}
	live := map[string]bool{"n1": true, "n2": true}
	const ip = "203.0.113.1"
	addr := netip.MustParseAddr(ip)
	mk := func(name, app string, etp corev1.ServiceExternalTrafficPolicy) *corev1.Service {
		s := svc(name, etp)
		s.Labels["app"] = app
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		return s
	}
	// Local Services follow their endpoints: each can be put on either
	// node.
	a, b := mk("a", "no", corev1.ServiceExternalTrafficPolicyLocal), mk("b", "yes", corev1.ServiceExternalTrafficPolicyLocal)
	world := map[string]*corev1.Service{"default/a": a}
	on := map[string]string{"default/a": "n1", "default/b": "n1"}
	e := NewElector(Input{Config: cfg, Node: "n1", Nodes: nodes, Live: live})
	check := func(step string, wantOwner string, wantAnnounce []Announcement) {
		t.Helper()
		in := Input{Config: cfg, Node: "n1", Nodes: nodes, Live: live}
		for k, s := range world {
			in.Services = append(in.Services, s)
			in.EndpointSlices = append(in.EndpointSlices, endpoints(s.Name, on[k]))
		}
		want := Decide(in)
		if got := e.Result(); !reflect.DeepEqual(got, want) {
			t.Fatalf("%s: Result %+v, Decide %+v", step, got, want)
		}
		if want.Owner[addr] != wantOwner || !reflect.DeepEqual(want.Announce, wantAnnounce) {
			t.Fatalf("%s: Decide says owner %q, announce %+v; the test expects %q, %+v", step, want.Owner[addr], want.Announce, wantOwner, wantAnnounce)
		}
	}
	update := func(key string) {
		s := world[key]
		if s == nil {
			e.Update(key, nil, nil)
			return
		}
		e.Update(key, s, []*discoveryv1.EndpointSlice{endpoints(s.Name, on[key])})
	}
	update("default/a")
	// a is selected by a-eth only (app=no, node zone a): eth0, eth1.
	check("a on n1", "n1", []Announcement{{Addr: addr, Interfaces: []string{"eth0", "eth1"}, Services: []string{"default/a"}}})
	world["default/b"] = b
	update("default/b")
	// b is also selected by a-app-yes, which names no interface: every
	// interface, for the address (both Services).
	check("a and b on n1", "n1", []Announcement{{Addr: addr, Services: []string{"default/a", "default/b"}}})
	on["default/b"] = "n2"
	update("default/b")
	// The last Service (b) elects n2: Owner says n2, while n1 still
	// answers for a (the speaker's ServiceL2Status of b goes).
	check("b moved to n2", "n2", []Announcement{{Addr: addr, Interfaces: []string{"eth0", "eth1"}, Services: []string{"default/a"}}})
	delete(world, "default/b")
	update("default/b")
	check("b deleted", "n1", []Announcement{{Addr: addr, Interfaces: []string{"eth0", "eth1"}, Services: []string{"default/a"}}})
	on["default/a"] = "n2"
	update("default/a")
	check("a moved to n2", "n2", nil)
}

// BenchmarkElector10000Services: one Service's address changing among
// 10,000 Services over 50 equal nodes, in the Elector (with the
// announcements this node then hands its responders) and in Decide.
func BenchmarkElector10000Services(b *testing.B) {
	res := config.Build(config.Resources{
		Pools:  []v1beta1.IPAddressPool{{ObjectMeta: electorMeta("pool"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.19.0.0/16"}}}},
		L2Advs: []v1beta1.L2Advertisement{{ObjectMeta: electorMeta("l2")}},
	}, config.Options{Namespace: "metallb-system"})
	if err := res.Err(); err != nil {
		b.Fatal(err)
	}
	in := Input{Config: res.Config, Node: "n01", Live: map[string]bool{}}
	for i := range 50 {
		name := fmt.Sprintf("n%02d", i+1)
		in.Nodes = append(in.Nodes, node(name, nil))
		in.Live[name] = true
	}
	for i := range 10000 {
		s := svc(fmt.Sprintf("s%d", i), corev1.ServiceExternalTrafficPolicyCluster)
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: netip.AddrFrom4([4]byte{198, 19, byte(i / 256), byte(i % 256)}).String()}}
		in.Services = append(in.Services, s)
		in.EndpointSlices = append(in.EndpointSlices, endpoints(s.Name, fmt.Sprintf("n%02d", i%50+1)))
	}
	b.Run("Elector.Update", func(b *testing.B) {
		e := NewElector(in)
		moved := in.Services[0].DeepCopy()
		b.ResetTimer()
		for i := range b.N {
			s := in.Services[0]
			if i%2 == 0 {
				s = moved
				s.Status.LoadBalancer.Ingress[0].IP = "198.19.250.1"
			}
			if e.Update("default/s0", s, in.EndpointSlices[:1]) {
				_ = e.Announce()
			}
		}
	})
	b.Run("Decide", func(b *testing.B) {
		for range b.N {
			_ = Decide(in)
		}
	})
}
