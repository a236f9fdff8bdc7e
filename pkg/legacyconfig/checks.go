package legacyconfig

import (
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/lbstack/lbstack/pkg/community"
	"github.com/lbstack/lbstack/pkg/iprange"
)

// The checks in this file only produce warnings: the converted objects keep
// what the ConfigMap said, and the warning says what MetalLB (and admission)
// think of it.

// ipRange is an inclusive range of addresses of one family.
type ipRange struct{ from, to netip.Addr }

// parseAddresses reads a pool entry the way MetalLB v0.12 did
// (iprange.ParseMetalLB), in the converter's own words.
func parseAddresses(s string) (ipRange, error) {
	r, err := iprange.ParseMetalLB(s)
	if err == nil {
		return ipRange{from: r.First, to: r.Last}, nil
	}
	var problem iprange.Problem
	if perr := (*iprange.Error)(nil); errors.As(err, &perr) {
		problem = perr.Problem
	}
	switch problem {
	case iprange.BadAddress:
		return ipRange{}, fmt.Errorf("%q is not a valid start-end range of IP addresses", s)
	case iprange.Zone:
		return ipRange{}, fmt.Errorf("%q: an address range cannot carry a zone", s)
	case iprange.MixedFamilies:
		return ipRange{}, fmt.Errorf("%q mixes IPv4 and IPv6", s)
	case iprange.Backwards:
		return ipRange{}, fmt.Errorf("%q ends before it starts", s)
	}
	return ipRange{}, fmt.Errorf("%q is neither a CIDR nor a start-end range", s)
}

// poolEntry is one address entry of one pool, for the overlap check.
type poolEntry struct {
	pool  string // converted pool name
	entry string
	r     ipRange
}

// overlaps returns one message per entry that overlaps an earlier one
// (sorted by start address), keyed by the pool of the later entry. MetalLB
// refused overlapping pools, and so does admission.
func overlaps(entries []poolEntry) []Warning {
	sort.SliceStable(entries, func(i, j int) bool {
		a, b := entries[i].r.from, entries[j].r.from
		if a.BitLen() != b.BitLen() {
			return a.BitLen() < b.BitLen()
		}
		return a.Less(b)
	})
	var out []Warning
	widest := -1 // index of the entry reaching furthest so far, same family
	for i, e := range entries {
		if widest >= 0 {
			w := entries[widest]
			if w.r.from.BitLen() == e.r.from.BitLen() && !w.r.to.Less(e.r.from) {
				out = append(out, Warning{Kind: kindIPAddressPool, Name: e.pool, Message: fmt.Sprintf(
					"address %q overlaps %q of IPAddressPool %q: MetalLB refused overlapping pools, and so does admission", e.entry, w.entry, w.pool)})
			}
			if w.r.from.BitLen() != e.r.from.BitLen() || w.r.to.Less(e.r.to) {
				widest = i
			}
			continue
		}
		widest = i
	}
	return out
}

// validCommunity reports whether s is a BGP community value: "AA:NN" with
// 16-bit halves, or "large:G:L1:L2" with 32-bit parts.
func validCommunity(s string) bool {
	_, err := community.Parse(s)
	return err == nil
}

// checkRange warns when a BFD value is outside what MetalLB accepts.
func checkRange(field string, v *uint32, lo, hi uint32) string {
	if v == nil || (*v >= lo && *v <= hi) {
		return ""
	}
	return fmt.Sprintf("%s %d is outside %d..%d: MetalLB refused it, and so does the BFDProfile schema", field, *v, lo, hi)
}
