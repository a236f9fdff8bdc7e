package assigner

import (
	"math"
	"math/bits"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/ipam"
)

// Prometheus metrics, registered in controller-runtime's registry (served
// on the manager's metrics endpoint). The two allocator gauges and the two
// configuration gauges keep MetalLB's names, so existing dashboards work.
var (
	addressesInUse = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "metallb", Subsystem: "allocator", Name: "addresses_in_use_total",
		Help: "Number of addresses of the pool assigned to Services (a shared address counts once).",
	}, []string{"pool"})
	addressesTotal = prometheus.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: "metallb", Subsystem: "allocator", Name: "addresses_total",
		Help: "Number of assignable addresses of the pool (avoidBuggyIPs excluded).",
	}, []string{"pool"})
	allocations = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lbstack", Subsystem: "controller", Name: "allocations_total",
		Help: "Number of times a Service got new addresses, by pool.",
	}, []string{"pool"})
	allocationErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "lbstack", Subsystem: "controller", Name: "allocation_errors_total",
		Help: "Number of failed allocations (each AllocationFailed event), by reason.",
	}, []string{"reason"})
	configLoaded = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "metallb", Subsystem: "k8s_client", Name: "config_loaded_bool",
		Help: "1 when the controller has loaded a valid configuration.",
	})
	configStale = prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: "metallb", Subsystem: "k8s_client", Name: "config_stale_bool",
		Help: "1 when the current configuration is invalid and the controller runs with the last valid one.",
	})
)

func init() {
	metrics.Registry.MustRegister(addressesInUse, addressesTotal, allocations, allocationErrors, configLoaded, configStale)
}

// poolSize is the number of assignable addresses of a pool, as a float
// (an IPv6 /64 has 2^64): every address of its ranges, minus the IPv4
// addresses ending in .0 or .255 when avoidBuggyIPs is set.
func poolSize(p *config.Pool) float64 {
	var total float64
	for _, r := range p.Ranges {
		hi, lo := addrDiff(r.First, r.Last)
		n := float64(hi)*math.Exp2(64) + float64(lo) + 1
		if p.AvoidBuggyIPs && r.First.Is4() {
			n -= float64(buggyIn(r.First, r.Last))
		}
		total += n
	}
	return total
}

// addrDiff returns last-first as a 128-bit number (hi, lo).
func addrDiff(first, last netip.Addr) (uint64, uint64) {
	f, l := first.As16(), last.As16()
	fh, fl := be64(f[:8]), be64(f[8:])
	lh, ll := be64(l[:8]), be64(l[8:])
	lo, borrow := bits.Sub64(ll, fl, 0)
	hi, _ := bits.Sub64(lh, fh, borrow)
	return hi, lo
}

func be64(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

// buggyIn counts the IPv4 addresses ending in .0 or .255 in first..last.
func buggyIn(first, last netip.Addr) uint64 {
	f, l := first.As4(), last.As4()
	a := uint64(f[0])<<24 | uint64(f[1])<<16 | uint64(f[2])<<8 | uint64(f[3])
	b := uint64(l[0])<<24 | uint64(l[1])<<16 | uint64(l[2])<<8 | uint64(l[3])
	// count of x in [a,b] with x mod 256 == r is floor((b-r)/256) - floor((a-1-r)/256).
	count := func(r uint64) uint64 {
		upto := func(n int64) int64 { // numbers in [0,n] congruent to r
			if n < int64(r) {
				return 0
			}
			return (n-int64(r))/256 + 1
		}
		return uint64(upto(int64(b)) - upto(int64(a)-1))
	}
	return count(0) + count(255)
}

// inUse is the metrics' addresses in use of a pool.
func inUse(st ipam.PoolStats) float64 {
	return float64(st.AssignedIPv4) + float64(st.AssignedIPv6)
}
