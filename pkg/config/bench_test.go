package config

import (
	"fmt"
	"net/netip"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
)

// benchPool returns the i-th /28 of 198.18.0.0/15 (8192 of them) as a pool,
// every fourth one a start-end range instead of a CIDR.
func benchPool(i int) v1beta1.IPAddressPool {
	base := netip.MustParseAddr("198.18.0.0").As4()
	off := uint32(base[0])<<24 | uint32(base[1])<<16 | uint32(base[2])<<8 | uint32(base[3])
	off += uint32(i) * 16
	a := netip.AddrFrom4([4]byte{byte(off >> 24), byte(off >> 16), byte(off >> 8), byte(off)})
	entry := fmt.Sprintf("%s/28", a)
	if i%4 == 3 {
		last := a
		for range 15 {
			last = last.Next()
		}
		entry = fmt.Sprintf("%s-%s", a, last)
	}
	p := pool(fmt.Sprintf("pool-%05d", i), entry)
	p.Labels = map[string]string{"tier": []string{"web", "db"}[i%2]}
	return p
}

// benchResources is a cluster with n pools, two peers, a BGP advertisement
// of every pool, one selecting by label, and an L2 advertisement.
func benchResources(n int) Resources {
	res := Resources{
		Peers: []v1beta2.BGPPeer{peer("r1", "198.19.0.1"), peer("r2", "198.19.0.2")},
		BGPAdvs: []v1beta1.BGPAdvertisement{
			bgpAdv("all"),
			bgpAdv("web", func(s *v1beta1.BGPAdvertisementSpec) {
				s.IPAddressPoolSelectors = []metav1.LabelSelector{sel("tier", "web")}
				s.Communities = []string{"65000:1"}
				s.Peers = []string{"r1"}
			}),
		},
		L2Advs: []v1beta1.L2Advertisement{l2Adv("db", func(s *v1beta1.L2AdvertisementSpec) {
			s.IPAddressPoolSelectors = []metav1.LabelSelector{sel("tier", "db")}
		})},
	}
	for i := range n {
		res.Pools = append(res.Pools, benchPool(i))
	}
	return res
}

// BenchmarkAdmitPool measures what the IPAddressPool webhook does when one
// more pool is created: Build over every object, with n pools present. The
// cost must grow like n log n (one sort of all ranges, neighbour checks),
// not n². Compare ns/op and ns/pool across the sub-benchmarks.
func BenchmarkAdmitPool(b *testing.B) {
	for _, n := range []int{10, 1000, 5000} {
		b.Run(fmt.Sprintf("pools=%d", n), func(b *testing.B) {
			res := benchResources(n)
			res.Pools = append(res.Pools, benchPool(n)) // the pool under admission
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r := Build(res, frrOpts)
				if len(r.Errors) > 0 {
					b.Fatal(r.Err())
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n+1), "ns/pool")
		})
	}
}

// TestAdmitPoolOverlapAtScale checks the index finds the one overlapping
// pool among 5000 and names it (the benchmark's correctness twin).
func TestAdmitPoolOverlapAtScale(t *testing.T) {
	res := benchResources(5000)
	bad := pool("new", "198.18.120.8/29") // inside pool-01920 (198.18.120.0/28)
	res.Pools = append(res.Pools, bad)
	r := Build(res, frrOpts)
	want := `ipaddresspool "new": spec.addresses[0]: 198.18.120.8/29 overlaps 198.18.120.0/28 of ipaddresspool "pool-01920"`
	if len(r.Errors) != 1 || r.Errors[0].Error() != want {
		t.Fatalf("errors %v", r.Errors)
	}
}
