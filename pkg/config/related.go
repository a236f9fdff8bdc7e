package config

import (
	"net/netip"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/iprange"
)

// PoolSearchRanges returns the address ranges in which another pool can be
// involved in a problem with pool: pool's own entries (an overlap), each
// widened to the aggregate prefix of every aggregationLength and
// aggregationLengthV6 that one of bgpAdvs sets (an advertisement's
// aggregate of one pool covering another pool's addresses, either way
// round). Entries that do not parse and lengths out of range are left out:
// Build reports them on their own object.
//
// Build over pool, the pools that intersect these ranges and every object
// of the other kinds finds every problem involving pool that Build over all
// the pools finds, when the configuration without pool is free of errors
// (TestPoolSearchRangesFindEveryProblem). The admission webhook relies on
// this to admit a pool among thousands by building a handful.
func PoolSearchRanges(pool *v1beta1.IPAddressPool, bgpAdvs []v1beta1.BGPAdvertisement) []iprange.Range {
	lengths4, lengths6 := map[int]bool{}, map[int]bool{}
	for i := range bgpAdvs {
		s := &bgpAdvs[i].Spec
		if s.AggregationLength != nil && *s.AggregationLength >= 1 && *s.AggregationLength < 32 {
			lengths4[int(*s.AggregationLength)] = true
		}
		if s.AggregationLengthV6 != nil && *s.AggregationLengthV6 >= 1 && *s.AggregationLengthV6 < 128 {
			lengths6[int(*s.AggregationLengthV6)] = true
		}
	}
	var out []iprange.Range
	for _, entry := range pool.Spec.Addresses {
		r, err := iprange.Parse(entry)
		if err != nil {
			continue
		}
		out = append(out, iprange.Range{First: r.First, Last: r.Last})
		lengths := lengths6
		if r.First.Is4() {
			lengths = lengths4
		}
		for l := range lengths {
			lo := netip.PrefixFrom(r.First, l).Masked()
			hi := netip.PrefixFrom(r.Last, l).Masked()
			out = append(out, iprange.Range{First: lo.Addr(), Last: iprange.LastAddr(hi)})
		}
	}
	return out
}
