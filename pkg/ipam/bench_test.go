package ipam

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"strconv"
	"testing"
)

// Benchmarks for the allocator alone (issue 4: "allocate/release 100,000
// addresses in a /16 and in an IPv6 /64"). Addresses are from the RFC 2544
// benchmarking block (198.18.0.0/15) and the documentation prefix
// 2001:db8::/32; nothing leaves the process.
//
//	go test -run '^$' -bench . -benchmem ./pkg/ipam/

const benchN = 100_000

func benchRequests(n int, pool string, fam Family) []Request {
	reqs := make([]Request, n)
	for i := range reqs {
		reqs[i] = Request{
			Service:  Service{Key: "bench/svc-" + strconv.Itoa(i), Ports: []Port{{"TCP", 80}}},
			Pools:    []string{pool},
			Families: []Family{fam},
		}
	}
	return reqs
}

// BenchmarkAllocRelease100k: one op = assign n services lowest-first,
// then release all of them in random order (which fragments the free space
// as much as possible before it closes up again). ns/addr is the cost of one
// Assign plus one Release.
func BenchmarkAllocRelease100k(b *testing.B) {
	cases := []struct {
		name string
		pool Pool
		fam  Family
		n    int
	}{
		// A /16 holds only 65,536 addresses: fill it completely, and put
		// 100,000 in a /15.
		{"IPv4-/16-all-65536", Pool{Name: "p", Ranges: []Range{cidr("198.18.0.0/16")}}, IPv4, 1 << 16},
		{"IPv4-/15-100k", Pool{Name: "p", Ranges: []Range{cidr("198.18.0.0/15")}}, IPv4, benchN},
		{"IPv4-/15-100k-avoidBuggyIPs", Pool{Name: "p", Ranges: []Range{cidr("198.18.0.0/15")}, AvoidBuggyIPs: true}, IPv4, benchN},
		{"IPv6-/64-100k", Pool{Name: "p", Ranges: []Range{cidr("2001:db8::/64")}}, IPv6, benchN},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			reqs := benchRequests(tc.n, "p", tc.fam)
			order := rand.New(rand.NewPCG(1, 2)).Perm(tc.n)
			a := New()
			a.SetPools([]Pool{tc.pool})
			b.ReportAllocs()
			for b.Loop() {
				for i := range reqs {
					if _, err := a.Assign(reqs[i]); err != nil {
						b.Fatal(err)
					}
				}
				for _, i := range order {
					a.Release(reqs[i].Service.Key)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*tc.n), "ns/addr")
			if st := a.Stats("p"); st.AssignedIPv4+st.AssignedIPv6 != 0 {
				b.Fatalf("left behind: %+v", st)
			}
		})
	}
	// Not the allocator: a bare map insert + delete of the same 100,000 keys
	// in the same order, as a yardstick for how fast this machine is right
	// now (the allocator does three map operations per Assign and three per
	// Release on top of its own work).
	b.Run("baseline-map-only", func(b *testing.B) {
		reqs := benchRequests(benchN, "p", IPv4)
		order := rand.New(rand.NewPCG(1, 2)).Perm(benchN)
		m := map[string]int{}
		b.ReportAllocs()
		for b.Loop() {
			for i := range reqs {
				m[reqs[i].Service.Key] = i
			}
			for _, i := range order {
				delete(m, reqs[i].Service.Key)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*benchN), "ns/addr")
	})
}

// BenchmarkAssignFullPool shows that the cost of an allocation does not grow
// as the pool fills: a /16 is filled to 1%, 50% and 99% with the free
// addresses scattered at random (the worst case for a scan and for the run
// tree: about one run per hole), then one op assigns one more service and
// releases it again, so the fill level stays put.
func BenchmarkAssignFullPool(b *testing.B) {
	const size = 1 << 16
	for _, fill := range []int{1, 50, 99} {
		for _, mode := range []string{"lowest", "explicit"} {
			b.Run(fmt.Sprintf("%s/%d%%", mode, fill), func(b *testing.B) {
				a := New()
				a.SetPools([]Pool{{Name: "p", Ranges: []Range{cidr("198.18.0.0/16")}}})
				reqs := benchRequests(size, "p", IPv4)
				for i := range reqs {
					if _, err := a.Assign(reqs[i]); err != nil {
						b.Fatal(err)
					}
				}
				// Free (100-fill)% at random.
				rnd := rand.New(rand.NewPCG(3, 4))
				free := size - size*fill/100
				var holes []netip.Addr
				for _, i := range rnd.Perm(size)[:free] {
					as, _ := a.Assigned(reqs[i].Service.Key)
					holes = append(holes, as.IPs[0])
					a.Release(reqs[i].Service.Key)
				}
				b.ReportMetric(float64(a.pools["p"].ranges[v4][0].runs.n), "runs")
				req := benchRequests(1, "p", IPv4)[0]
				req.Service.Key = "bench/extra"
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					if mode == "explicit" {
						req.IPs = holes[i%len(holes) : i%len(holes)+1]
						i++
					}
					if _, err := a.Assign(req); err != nil {
						b.Fatal(err)
					}
					a.Release(req.Service.Key)
				}
			})
		}
	}
}

// BenchmarkReassign is the controller's steady state: Assign for a service
// that already holds its address (every reconcile) in a pool of 100,000.
func BenchmarkReassign(b *testing.B) {
	a := New()
	a.SetPools([]Pool{{Name: "p", Ranges: []Range{cidr("198.18.0.0/15")}}})
	reqs := benchRequests(benchN, "p", IPv4)
	for i := range reqs {
		if _, err := a.Assign(reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := a.Assign(reqs[i%benchN]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkSetPoolsRebuild: a pool change with 100,000 assignments in place.
func BenchmarkSetPoolsRebuild(b *testing.B) {
	a := New()
	pools := [2][]Pool{
		{{Name: "p", Ranges: []Range{cidr("198.18.0.0/15")}}},
		{{Name: "q", Ranges: []Range{cidr("198.18.0.0/15")}}},
	}
	a.SetPools(pools[0])
	reqs := benchRequests(benchN, "p", IPv4)
	for i := range reqs {
		if _, err := a.Assign(reqs[i]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		if ev := a.SetPools(pools[i%2]); len(ev) != 0 {
			b.Fatal(ev)
		}
	}
}
