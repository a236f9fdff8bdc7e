package speaker

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

// deciderConfigs are configurations under which Services' routes merge in
// every way Decide merges them: aggregation (many Services, one route),
// communities of several advertisements, localPref over iBGP, Service
// selectors, and a session the state cannot carry.
var deciderConfigs = map[string]func(*config.Resources){
	"plain": func(*config.Resources) {},
	"aggregated /28 and /64 with communities": func(r *config.Resources) {
		r.BGPAdvs[0].Spec.AggregationLength = ptr.To[int32](28)
		r.BGPAdvs[0].Spec.Communities = []string{"65000:1"}
		r.BGPAdvs[0].Spec.LocalPref = 120
		r.BGPAdvs[1].Spec.AggregationLengthV6 = ptr.To[int32](64)
	},
	"two advertisements, one selecting Services": func(r *config.Resources) {
		r.BGPAdvs[0].Spec.Communities = []string{"65000:1"}
		r.BGPAdvs = append(r.BGPAdvs, v1beta1.BGPAdvertisement{ObjectMeta: meta("adv4b"), Spec: v1beta1.BGPAdvertisementSpec{
			IPAddressPools: []string{"pool4"}, Communities: []string{"65000:2"}, Peers: []string{"r4", "ri"}, LocalPref: 200,
			ServiceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"app": "yes"}}}}})
		r.BGPAdvs[1].Spec.ServiceSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"app": "yes"}}}
	},
	"an aggregate beside host routes": func(r *config.Resources) {
		r.BGPAdvs = append(r.BGPAdvs, v1beta1.BGPAdvertisement{ObjectMeta: meta("adv4b"), Spec: v1beta1.BGPAdvertisementSpec{
			IPAddressPools: []string{"pool4"}, Communities: []string{"65000:2"}, Peers: []string{"r4"}, AggregationLength: ptr.To[int32](24)}})
	},
	"dual-stack session": func(r *config.Resources) { r.Peers[0].Spec.DualStackAddressFamily = true },
}

// randomService is Service i of the random world: often LoadBalancer,
// with addresses drawn from a small set so that they are shared and
// aggregated, some in no pool.
func randomService(rng *rand.Rand, i int) (*corev1.Service, *discoveryv1.EndpointSlice) {
	addrs := []string{"203.0.113.1", "203.0.113.2", "203.0.113.5", "203.0.113.17", "203.0.113.200",
		"2001:db8:1::1", "2001:db8:1::5", "198.51.100.3", "192.0.2.9"}
	name := fmt.Sprintf("s%d", i)
	var ips []string
	for range rng.IntN(3) {
		ips = append(ips, addrs[rng.IntN(len(addrs))])
	}
	etp := corev1.ServiceExternalTrafficPolicyCluster
	if rng.IntN(3) == 0 {
		etp = corev1.ServiceExternalTrafficPolicyLocal
	}
	svc := lbSvc(name, etp, ips...)
	svc.Labels["app"] = []string{"yes", "no"}[rng.IntN(2)]
	if rng.IntN(8) == 0 {
		svc.Spec.Type = corev1.ServiceTypeClusterIP
	}
	var eps []ep
	for _, n := range []string{"n1", "n2"} {
		switch rng.IntN(3) {
		case 0:
			eps = append(eps, ep{node: n, ready: yes})
		case 1:
			eps = append(eps, ep{node: n, ready: no, serving: no})
		}
	}
	return svc, slice(name, eps...)
}

// TestDeciderMatchesDecide replays random sequences of Service and
// EndpointSlice changes on a Decider and checks after each one that its
// Result is exactly Decide's over the whole current world, that Version
// moves when (and only when) the State changes, and that a State handed
// out earlier is never modified.
func TestDeciderMatchesDecide(t *testing.T) {
	const services, steps = 12, 400
	nodes := map[string]*corev1.Node{
		"n1":        node("n1"),
		"n1 zone b": node("n1", func(n *corev1.Node) { n.Labels["zone"] = "b" }),
		"excluded":  node("n1", func(n *corev1.Node) { n.Labels[lbservice.ExcludeLabel] = "" }),
	}
	for cfgName, mod := range deciderConfigs {
		for nodeName, n := range nodes {
			for seed := range uint64(3) {
				t.Run(fmt.Sprintf("%s/%s/seed %d", cfgName, nodeName, seed), func(t *testing.T) {
					res := world()
					mod(&res)
					built := config.Build(res, config.Options{Namespace: ns})
					if err := built.Err(); err != nil {
						t.Fatal(err)
					}
					rng := rand.New(rand.NewPCG(seed, 21))
					svcs := map[string]*corev1.Service{}
					eps := map[string]*discoveryv1.EndpointSlice{}
					for i := range services / 2 {
						svc, sl := randomService(rng, i)
						svcs[lbservice.Key(svc)], eps[lbservice.Key(svc)] = svc, sl
					}
					full := func() Result {
						in := Input{Config: built.Config, Node: n}
						for k, s := range svcs {
							in.Services = append(in.Services, s)
							in.EndpointSlices = append(in.EndpointSlices, eps[k])
						}
						want, err := Decide(in)
						if err != nil {
							t.Fatal(err)
						}
						return want
					}
					in := full()
					var list []*corev1.Service
					var slcs []*discoveryv1.EndpointSlice
					for k, s := range svcs {
						list, slcs = append(list, s), append(slcs, eps[k])
					}
					d, err := NewDecider(built.Config, n, list, slcs)
					if err != nil {
						t.Fatal(err)
					}
					check(t, "initial", d, d.Result(), in)
					prev, prevCopy, prevVersion := d.Result().State, deepCopyState(d.Result().State), d.Version()
					if c := d.TakeChanges(); len(c) != 0 {
						t.Fatalf("changes %v right after NewDecider", c)
					}
					// taken is the State at the last TakeChanges, steps
					// the Updates since.
					taken, sinceTaken := deepCopyState(prev), 0
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
							_, sl := randomService(rng, i)
							eps[key] = sl
						default:
							what = "set " + key
							svcs[key], eps[key] = randomService(rng, i)
						}
						var sl []*discoveryv1.EndpointSlice
						if eps[key] != nil {
							sl = append(sl, eps[key])
						}
						d.Update(key, svcs[key], sl)
						got := d.Result()
						check(t, fmt.Sprintf("step %d (%s)", step, what), d, got, full())
						if !reflect.DeepEqual(prev, prevCopy) {
							t.Fatalf("step %d (%s): a State handed out earlier was modified", step, what)
						}
						if changed := !reflect.DeepEqual(got.State, prev); changed != (d.Version() != prevVersion) {
							t.Fatalf("step %d (%s): State changed %v, version %d → %d", step, what, changed, prevVersion, d.Version())
						}
						prev, prevCopy, prevVersion = got.State, deepCopyState(got.State), d.Version()
						// The changes name every route that differs from
						// the State at the last TakeChanges, and only those
						// when one Update separates them.
						if sinceTaken++; rng.IntN(3) > 0 {
							want := routeDiff(taken, got.State)
							have := map[bgp.RouteChange]bool{}
							for _, c := range d.TakeChanges() {
								have[c] = true
							}
							for c := range want {
								if !have[c] {
									t.Fatalf("step %d (%s): route %v changed, not in the changes %v", step, what, c, have)
								}
							}
							if sinceTaken == 1 && !reflect.DeepEqual(have, want) {
								t.Fatalf("step %d (%s): changes %v, the State changed at %v", step, what, have, want)
							}
							taken, sinceTaken = deepCopyState(got.State), 0
						}
					}
				})
			}
		}
	}
}

// routeDiff is the set of (session, prefix) whose route differs between
// two states.
func routeDiff(a, b bgp.DesiredState) map[bgp.RouteChange]bool {
	out := map[bgp.RouteChange]bool{}
	index := func(d bgp.DesiredState) map[bgp.RouteChange]bgp.Route {
		m := map[bgp.RouteChange]bgp.Route{}
		for name, rs := range d.Routes {
			for _, r := range rs {
				m[bgp.RouteChange{Session: name, Prefix: r.Prefix}] = r
			}
		}
		return m
	}
	ia, ib := index(a), index(b)
	for c, r := range ia {
		if o, ok := ib[c]; !ok || !o.Equal(r) {
			out[c] = true
		}
	}
	for c := range ib {
		if _, ok := ia[c]; !ok {
			out[c] = true
		}
	}
	return out
}

func check(t *testing.T, when string, d *Decider, got, want Result) {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%s: incremental and full decisions differ:\n got %+v\nwant %+v", when, got, want)
	}
	announcedOver := map[string]bool{}
	for _, peers := range got.Announced {
		for _, p := range peers {
			announcedOver[p] = true
		}
	}
	for _, s := range []string{"r4", "r6", "ri", "rb"} {
		if d.AnnouncesOver(s) != announcedOver[s] {
			t.Fatalf("%s: AnnouncesOver(%s) = %v", when, s, d.AnnouncesOver(s))
		}
	}
	for s := range got.State.Routes {
		if len(got.State.Routes[s]) == 0 {
			t.Fatalf("%s: empty route list for session %s", when, s)
		}
	}
}

func deepCopyState(s bgp.DesiredState) bgp.DesiredState {
	out := bgp.DesiredState{Sessions: s.Sessions, Routes: map[string][]bgp.Route{}}
	for k, rs := range s.Routes {
		for _, r := range rs {
			r.Communities = slices.Clone(r.Communities)
			out.Routes[k] = append(out.Routes[k], r)
		}
	}
	return out
}

// BenchmarkDecider10000Services: one Service's address changed among
// 10,000 (the pure part of the speaker's work per change), against Decide
// over all of them (what every change cost before the Decider).
func BenchmarkDecider10000Services(b *testing.B) {
	built := config.Build(world(), config.Options{Namespace: ns})
	if err := built.Err(); err != nil {
		b.Fatal(err)
	}
	n := node("n1")
	var svcs []*corev1.Service
	var eps []*discoveryv1.EndpointSlice
	for i := range 10000 {
		name := fmt.Sprintf("s%d", i)
		svcs = append(svcs, lbSvc(name, corev1.ServiceExternalTrafficPolicyCluster, fmt.Sprintf("203.0.%d.%d", 113+i/256%2, i%256)))
		eps = append(eps, slice(name, ep{node: "n2", ready: yes}))
	}
	b.Run("Decider.Update", func(b *testing.B) {
		d, err := NewDecider(built.Config, n, svcs, eps)
		if err != nil {
			b.Fatal(err)
		}
		moved := svcs[0].DeepCopy()
		b.ResetTimer()
		for i := range b.N {
			s := svcs[0]
			if i%2 == 0 {
				s = moved
				s.Status.LoadBalancer.Ingress[0].IP = "203.0.113.250"
			}
			d.Update("default/s0", s, eps[:1])
			_ = d.Result()
		}
	})
	b.Run("Decide", func(b *testing.B) {
		for range b.N {
			if _, err := Decide(Input{Config: built.Config, Node: n, Services: svcs, EndpointSlices: eps}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
