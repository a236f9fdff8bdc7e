package config

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kptr "k8s.io/utils/ptr"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/iprange"
)

func TestPoolSearchRanges(t *testing.T) {
	p := pool("p", "198.51.100.20-198.51.100.40", "2001:db8::10/124", "not-an-entry")
	advs := []v1beta1.BGPAdvertisement{
		bgpAdv("a", func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength = kptr.To[int32](27) }),
		bgpAdv("b", func(s *v1beta1.BGPAdvertisementSpec) {
			s.AggregationLength = kptr.To[int32](32) // a host route: no widening
			s.AggregationLengthV6 = kptr.To[int32](120)
		}),
		bgpAdv("c", func(s *v1beta1.BGPAdvertisementSpec) { s.AggregationLength = kptr.To[int32](99) }), // out of range
	}
	var got []string
	for _, r := range PoolSearchRanges(&p, advs) {
		got = append(got, r.First.String()+"-"+r.Last.String())
	}
	want := []string{
		"198.51.100.20-198.51.100.40", "198.51.100.0-198.51.100.63",
		"2001:db8::10-2001:db8::1f", "2001:db8::-2001:db8::ff",
	}
	if !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

// TestPoolSearchRangesFindEveryProblem: for random configurations (small
// address space, so pools overlap and aggregates cover other pools often;
// advertisements with aggregation lengths, localPref, selectors and peers),
// Build over the pool under admission, the pools PoolSearchRanges finds and
// every other object reports exactly the problems involving that pool that
// Build over everything reports. Configurations whose other objects
// already have errors are skipped: a refused configuration is reported
// differently (Build reports a conflict once, on the first pool it finds
// it on), and the webhook admits into configurations it validated.
func TestPoolSearchRangesFindEveryProblem(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 21))
	checked, withProblems := 0, 0
	for iter := 0; checked < 400 && iter < 20000; iter++ {
		res := randomResources(rng)
		target := res.Pools[len(res.Pools)-1]
		rest := res
		rest.Pools = res.Pools[:len(res.Pools)-1]
		if len(Build(rest, frrOpts).Errors) > 0 {
			continue
		}
		checked++
		ref := ObjectRef{Kind: KindIPAddressPool, Name: target.Name}
		search := PoolSearchRanges(&target, res.BGPAdvs)
		small := res
		small.Pools = nil
		for _, p := range rest.Pools {
			if poolIntersects(p, search) {
				small.Pools = append(small.Pools, p)
			}
		}
		small.Pools = append(small.Pools, target)

		want := involving(Build(res, frrOpts), ref)
		got := involving(Build(small, frrOpts), ref)
		if len(want) > 0 {
			withProblems++
		}
		if !slices.Equal(got, want) {
			t.Fatalf("iteration %d: pools %v\nadvertisements %v\nwith every pool: %q\nwith the %d searched: %q",
				iter, describePools(res.Pools), describeAdvs(res.BGPAdvs), want, len(small.Pools), got)
		}
	}
	if checked < 400 || withProblems < 100 {
		t.Fatalf("only %d configurations checked, %d with problems involving the pool: the generator needs tuning", checked, withProblems)
	}
}

func poolIntersects(p v1beta1.IPAddressPool, search []iprange.Range) bool {
	for _, e := range p.Spec.Addresses {
		r, err := iprange.Parse(e)
		if err != nil {
			continue
		}
		for _, s := range search {
			if r.First.Compare(s.Last) <= 0 && s.First.Compare(r.Last) <= 0 {
				return true
			}
		}
	}
	return false
}

func involving(r Result, ref ObjectRef) []string {
	var out []string
	for _, list := range [][]Problem{r.Errors, r.Warnings} {
		for _, p := range list {
			if p.Involves(ref) {
				out = append(out, fmt.Sprintf("%s %v", p.Error(), p.Related))
			}
		}
	}
	return out
}

// randomResources returns 6-14 pools in 198.51.100.0/24 (and a few IPv6
// ones), two peers and 1-3 BGP advertisements with random aggregation
// lengths, localPrefs, pool choices and peers; the last pool is the one
// under admission.
func randomResources(rng *rand.Rand) Resources {
	res := Resources{Peers: []v1beta2.BGPPeer{peer("r1", "198.19.0.1"), peer("r2", "198.19.0.2")}}
	n := 6 + rng.IntN(9)
	for i := range n {
		var entries []string
		for range 1 + rng.IntN(2) {
			switch rng.IntN(5) {
			case 0:
				entries = append(entries, fmt.Sprintf("2001:db8::%x/%d", rng.IntN(16)*16, 124+rng.IntN(5)))
			case 1, 2:
				a := rng.IntN(250)
				entries = append(entries, fmt.Sprintf("198.51.100.%d-198.51.100.%d", a, a+rng.IntN(6)))
			default:
				bits := 27 + rng.IntN(6)
				size := 1 << (32 - bits)
				entries = append(entries, fmt.Sprintf("198.51.100.%d/%d", rng.IntN(256/size)*size, bits))
			}
		}
		p := pool(fmt.Sprintf("p%02d", i), entries...)
		p.Labels = map[string]string{"tier": []string{"web", "db"}[rng.IntN(2)]}
		res.Pools = append(res.Pools, p)
	}
	for i := range 1 + rng.IntN(3) {
		a := bgpAdv(fmt.Sprintf("adv%d", i), func(s *v1beta1.BGPAdvertisementSpec) {
			if rng.IntN(3) > 0 {
				s.AggregationLength = kptr.To(int32(24 + rng.IntN(9)))
			}
			if rng.IntN(3) == 0 {
				s.AggregationLengthV6 = kptr.To(int32(120 + rng.IntN(9)))
			}
			s.LocalPref = uint32(100 + 10*rng.IntN(2))
			switch rng.IntN(3) {
			case 0: // every pool
			case 1:
				s.IPAddressPoolSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"tier": []string{"web", "db"}[rng.IntN(2)]}}}
			default:
				s.IPAddressPools = []string{fmt.Sprintf("p%02d", rng.IntN(n)), fmt.Sprintf("p%02d", n-1)}
				if s.IPAddressPools[0] == s.IPAddressPools[1] {
					s.IPAddressPools = s.IPAddressPools[:1]
				}
			}
			if rng.IntN(2) == 0 {
				s.Peers = []string{[]string{"r1", "r2"}[rng.IntN(2)]}
			}
		})
		res.BGPAdvs = append(res.BGPAdvs, a)
	}
	return res
}

func describePools(ps []v1beta1.IPAddressPool) []string {
	var out []string
	for _, p := range ps {
		out = append(out, fmt.Sprintf("%s%v%v", p.Name, p.Spec.Addresses, p.Labels))
	}
	return out
}

func describeAdvs(as []v1beta1.BGPAdvertisement) []string {
	var out []string
	for _, a := range as {
		out = append(out, fmt.Sprintf("%s{agg=%v/%v lp=%d pools=%v sel=%v peers=%v}", a.Name,
			kptr.Deref(a.Spec.AggregationLength, 32), kptr.Deref(a.Spec.AggregationLengthV6, 128), a.Spec.LocalPref,
			a.Spec.IPAddressPools, a.Spec.IPAddressPoolSelectors, a.Spec.Peers))
	}
	return out
}
