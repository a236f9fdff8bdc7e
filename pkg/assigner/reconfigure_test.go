package assigner

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/ipam"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

func TestChangedPools(t *testing.T) {
	a, b := pool("a", "203.0.113.0/28"), pool("b", "203.0.113.16/28")
	base := buildConfig(t, a, b)
	labelled := a
	labelled.Labels = map[string]string{"x": "y"}
	for _, tc := range []struct {
		name  string
		pools []v1beta1.IPAddressPool
		want  []string
	}{
		{"same", []v1beta1.IPAddressPool{a, b}, nil},
		{"label only", []v1beta1.IPAddressPool{labelled, b}, nil},
		{"autoAssign", []v1beta1.IPAddressPool{noAuto(a), b}, []string{"a"}},
		{"avoidBuggyIPs", []v1beta1.IPAddressPool{a, buggy(b)}, []string{"b"}},
		{"ranges", []v1beta1.IPAddressPool{pool("a", "203.0.113.0/27"), pool("b", "203.0.113.32/28")}, []string{"a", "b"}},
		{"serviceAllocation", []v1beta1.IPAddressPool{allocate(v1beta1.ServiceAllocation{Priority: 1})(a), b}, []string{"a"}},
		{"priority", []v1beta1.IPAddressPool{allocate(v1beta1.ServiceAllocation{Priority: 2})(a), b}, []string{"a"}},
		{"added", []v1beta1.IPAddressPool{a, b, pool("c", "203.0.113.32/28")}, []string{"c"}},
		{"removed", []v1beta1.IPAddressPool{b}, []string{"a"}},
		{"renamed", []v1beta1.IPAddressPool{pool("c", "203.0.113.0/28"), b}, []string{"a", "c"}},
	} {
		old := base
		if tc.name == "priority" {
			old = buildConfig(t, allocate(v1beta1.ServiceAllocation{Priority: 1})(a), b)
		}
		if got := changedPools(old, buildConfig(t, tc.pools...)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: changed %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestReconfigureEquivalence: after a random pool change, re-deciding only
// the Services reconfigure names (plus those waiting for an address)
// leaves every Service exactly as re-deciding all of them does, and each
// Service left out would have been decided as before.
func TestReconfigureEquivalence(t *testing.T) {
	for seed := range 300 {
		r := rand.New(rand.NewPCG(uint64(seed), 0x5ca1e))
		pools := randTestPools(r)
		svcs := randTestServices(r, pools)
		before := buildConfig(t, pools...)
		after := buildConfig(t, mutatePools(r, pools)...)

		// The state before: every Service decided under the first
		// configuration, in key order; failures remembered.
		run := func() (*ipam.Allocator, map[string]outcome) {
			a := ipam.New()
			a.SetPools(ipamPools(before))
			x := newPoolIndex(before)
			outs := map[string]outcome{}
			for _, s := range svcs {
				in, _ := parseIntent(s)
				outs[in.Key] = decide(a, x, &in, nil, nil)
			}
			return a, outs
		}
		redecide := func(a *ipam.Allocator, outs map[string]outcome, only map[string]bool) map[string]outcome {
			x := newPoolIndex(after)
			now := map[string]outcome{}
			for _, s := range svcs {
				in, _ := parseIntent(s)
				prev := outs[in.Key]
				if only != nil && !only[in.Key] {
					now[in.Key] = prev
					continue
				}
				now[in.Key] = decide(a, x, &in, nil, prev.Assignment.IPs)
			}
			return now
		}

		fullA, outs := run()
		fullA.SetPools(ipamPools(after))
		full := redecide(fullA, outs, nil)

		incA, outs2 := run()
		_, affected, _ := reconfigure(incA, before, after)
		for k, o := range outs2 {
			if o.Err != nil {
				affected[k] = true // waiting for an address: retried
			}
		}
		inc := redecide(incA, outs2, affected)

		for _, s := range svcs {
			k := s.Namespace + "/" + s.Name
			f, i := full[k], inc[k]
			if f.Assignment.Pool != i.Assignment.Pool || !slices.Equal(f.Assignment.IPs, i.Assignment.IPs) || (f.Err == nil) != (i.Err == nil) {
				t.Fatalf("seed %d: %s: full re-decision %s %v (err %v), incremental %s %v (err %v); affected %v",
					seed, k, f.Assignment.Pool, f.Assignment.IPs, f.Err, i.Assignment.Pool, i.Assignment.IPs, i.Err, affected)
			}
			if !affected[k] {
				prev := outs[k]
				if f.Err != nil || f.Assignment.Pool != prev.Assignment.Pool || !slices.Equal(f.Assignment.IPs, prev.Assignment.IPs) {
					t.Fatalf("seed %d: %s left out but the full re-decision changes it: %+v -> %+v", seed, k, prev, f)
				}
			}
			fa, _ := fullA.Assigned(k)
			ia, _ := incA.Assigned(k)
			if fa.Pool != ia.Pool || !slices.Equal(fa.IPs, ia.IPs) {
				t.Fatalf("seed %d: %s: allocators differ: %v, %v", seed, k, fa, ia)
			}
		}
	}
}

// slot i is 203.0.113.(8i)/29.
func slot(i int) string { return netip.AddrFrom4([4]byte{203, 0, 113, byte(8 * i)}).String() + "/29" }

func randTestPools(r *rand.Rand) []v1beta1.IPAddressPool {
	slots := r.Perm(32)
	var out []v1beta1.IPAddressPool
	for i := range 2 + r.IntN(5) {
		p := pool(fmt.Sprintf("p%d", i), slot(slots[i]))
		out = append(out, varyPool(r, p))
	}
	return out
}

func varyPool(r *rand.Rand, p v1beta1.IPAddressPool) v1beta1.IPAddressPool {
	switch r.IntN(6) {
	case 0:
		p = noAuto(p)
	case 1:
		p = buggy(p)
	case 2:
		p = allocate(v1beta1.ServiceAllocation{Priority: r.IntN(3), Namespaces: []string{"ns"}})(p)
	case 3:
		p = allocate(v1beta1.ServiceAllocation{Priority: r.IntN(3), ServiceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"tier": "gold"}}}})(p)
	}
	return p
}

// mutatePools changes, adds, removes or renames one pool; a range it adds
// is a slot no pool uses, so pools stay disjoint.
func mutatePools(r *rand.Rand, pools []v1beta1.IPAddressPool) []v1beta1.IPAddressPool {
	out := slices.Clone(pools)
	used := map[string]bool{}
	for _, p := range pools {
		for _, a := range p.Spec.Addresses {
			used[a] = true
		}
	}
	free := func() string {
		for {
			if s := slot(r.IntN(32)); !used[s] {
				used[s] = true
				return s
			}
		}
	}
	i := r.IntN(len(out))
	p := out[i]
	p.Spec.Addresses = slices.Clone(p.Spec.Addresses)
	switch r.IntN(6) {
	case 0: // another variant
		p.Spec.AutoAssign, p.Spec.AvoidBuggyIPs, p.Spec.AllocateTo = nil, false, nil
		out[i] = varyPool(r, p)
	case 1: // another range
		p.Spec.Addresses = append(p.Spec.Addresses, free())
		out[i] = p
	case 2: // a range less (or none left: removed)
		if len(p.Spec.Addresses) > 1 {
			p.Spec.Addresses = p.Spec.Addresses[1:]
			out[i] = p
		} else {
			out = slices.Delete(out, i, i+1)
		}
	case 3:
		out = slices.Delete(out, i, i+1)
	case 4: // renamed
		p.Name = "renamed"
		out[i] = p
	default: // added
		out = append(out, varyPool(r, pool("added", free())))
	}
	return out
}

func randTestServices(r *rand.Rand, pools []v1beta1.IPAddressPool) []*corev1.Service {
	var out []*corev1.Service
	for i := range 10 + r.IntN(30) {
		var mods []func(*corev1.Service)
		switch r.IntN(8) {
		case 0:
			mods = append(mods, func(s *corev1.Service) { s.Namespace = "other" })
		case 1:
			mods = append(mods, func(s *corev1.Service) { s.Labels = map[string]string{"tier": "gold"} })
		case 2:
			name := pools[r.IntN(len(pools))].Name
			if r.IntN(4) == 0 {
				name = "renamed"
			}
			mods = append(mods, annotate(lbservice.AnnotationAddressPool, name))
		case 3:
			ip := netip.AddrFrom4([4]byte{203, 0, 113, byte(r.IntN(256))})
			mods = append(mods, annotate(lbservice.AnnotationLoadBalancerIPs, ip.String()))
		case 4:
			mods = append(mods, annotate(lbservice.AnnotationAllowSharedIP, "k"), ports(corev1.ServicePort{Protocol: corev1.ProtocolTCP, Port: int32(1000 + i)}))
		}
		out = append(out, svc(fmt.Sprintf("s%02d", i), mods...))
	}
	return out
}

// TestClaimHeldOrder: Services showing the same address without being
// allowed to share it: the oldest keeps it, then by namespace, then name
// (namespace "a" before "a-b", though "a/" sorts after "a-").
func TestClaimHeldOrder(t *testing.T) {
	x := index(t, pool("p", "203.0.113.0/28"))
	mk := func(ns, name string, age int) *corev1.Service {
		s := svc(name)
		s.Namespace = ns
		s.CreationTimestamp = metav1.Unix(int64(1000-age), 0)
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.5"}}
		return s
	}
	for _, tc := range []struct {
		svcs []*corev1.Service
		want string
	}{
		{[]*corev1.Service{mk("a-b", "x", 0), mk("a", "y", 0)}, "a/y"},
		{[]*corev1.Service{mk("a", "y", 0), mk("a-b", "x", 10)}, "a-b/x"},
		{[]*corev1.Service{mk("n", "b", 0), mk("n", "a", 0)}, "n/a"},
	} {
		a := ipam.New()
		a.SetPools(ipamPools(x.cfg))
		held := make([]heldService, len(tc.svcs))
		for i, s := range tc.svcs {
			held[i] = heldOf(s)
		}
		if n, err := claimHeld(a, x, held, func(string) (map[string]string, error) { return nil, nil }); n != 1 || err != nil {
			t.Fatalf("claimed %d, %v", n, err)
		}
		if got := a.Owner(netip.MustParseAddr("203.0.113.5")); !slices.Equal(got, []string{tc.want}) {
			t.Errorf("owner %v, want %s", got, tc.want)
		}
	}
}
