package config

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"

	"github.com/lbstack/lbstack/pkg/iprange"
)

// AddrRange is one entry of a pool's spec.addresses, parsed: the inclusive
// range First..Last of one IP family.
type AddrRange struct {
	// First and Last are the first and last address, First <= Last, same
	// family, never IPv4-mapped IPv6 and never with a zone.
	First, Last netip.Addr
	// CIDRs is the minimal list of prefixes covering exactly First..Last,
	// in address order. A CIDR entry gives one (masked) prefix.
	CIDRs []netip.Prefix
	// Spec is the entry as written in spec.addresses.
	Spec string
	// Index is the entry's position in spec.addresses.
	Index int
}

// Is4 reports whether the range holds IPv4 addresses.
func (r AddrRange) Is4() bool { return r.First.Is4() }

// Contains reports whether a is in the range.
func (r AddrRange) Contains(a netip.Addr) bool {
	return a.IsValid() && r.First.Compare(a) <= 0 && a.Compare(r.Last) <= 0
}

// String returns the canonical form: the prefix when the range is exactly
// one CIDR, "first-last" otherwise.
func (r AddrRange) String() string {
	if len(r.CIDRs) == 1 {
		return r.CIDRs[0].String()
	}
	return r.First.String() + "-" + r.Last.String()
}

// ParseRange parses one spec.addresses entry: a CIDR prefix
// ("203.0.113.0/24", "2001:db8::/64") or an inclusive range
// "start-end" ("203.0.113.10-203.0.113.20") of one family, with the rules
// of iprange.Parse. A prefix with host bits set is masked; Build warns
// about it.
func ParseRange(s string) (AddrRange, error) {
	r, _, err := parseRange(s)
	return r, err
}

// parseRange is ParseRange that also reports whether a CIDR entry had host
// bits set.
func parseRange(s string) (AddrRange, bool, error) {
	p, err := iprange.Parse(s)
	if err != nil {
		return AddrRange{Spec: s}, false, err
	}
	r := AddrRange{First: p.First, Last: p.Last, Spec: s}
	if p.Prefix.IsValid() {
		r.CIDRs = []netip.Prefix{p.Prefix}
	} else {
		r.CIDRs = iprange.Summarize(p.First, p.Last)
	}
	return r, p.HostBits, nil
}

// parseAddr parses a peer, source or router address: no zone; an
// IPv4-mapped IPv6 address is taken as the IPv4 address it maps, as
// net.ParseIP (MetalLB) does.
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q has a zone, which is not allowed here", s)
	}
	return a.Unmap(), nil
}

// SummarizeRange returns the minimal list of prefixes covering exactly
// first..last (same family, first <= last), in address order. It returns
// nil for invalid input. See iprange.Summarize.
func SummarizeRange(first, last netip.Addr) []netip.Prefix { return iprange.Summarize(first, last) }

// interval is an inclusive address interval of one family.
type interval struct{ first, last netip.Addr }

func (iv interval) String() string {
	if iv.first == iv.last {
		return iv.first.String()
	}
	return iv.first.String() + "-" + iv.last.String()
}

// formatIntervals lists intervals for a message, "a and b" or "a, b and c",
// summarising beyond max entries as "and N more".
func formatIntervals(ivs []interval, max int) string {
	s := make([]string, 0, min(len(ivs), max))
	for i, iv := range ivs {
		if i == max {
			break
		}
		s = append(s, iv.String())
	}
	return joinList(s, len(ivs)-len(s), "ranges")
}

// joinList joins items as "a", "a and b", "a, b and c", or with more
// omitted items "a, b, c and 4 more <what>".
func joinList(items []string, more int, what string) string {
	if more > 0 {
		tail := fmt.Sprintf(" and %d more", more)
		if what != "" {
			tail += " " + what
		}
		return strings.Join(items, ", ") + tail
	}
	switch len(items) {
	case 0:
		return ""
	case 1:
		return items[0]
	}
	return strings.Join(items[:len(items)-1], ", ") + " and " + items[len(items)-1]
}

// span is one address range of one pool in a rangeIndex.
type span struct {
	first, last netip.Addr
	pool        int // index of the pool in the index's pool list
	entry       int // index of the range in the pool's Ranges
}

// rangeIndex is a sorted interval index: spans sorted by first address
// (IPv4 before IPv6, as netip.Addr.Compare orders them), with reach[i] the
// highest last address among spans[0..i]. reach is non-decreasing, so the
// spans intersecting an interval are found by binary search even when spans
// overlap (which only happens in configurations already in error).
type rangeIndex struct {
	spans []span
	reach []netip.Addr
}

func newRangeIndex(spans []span) *rangeIndex {
	sort.Slice(spans, func(i, j int) bool {
		if c := spans[i].first.Compare(spans[j].first); c != 0 {
			return c < 0
		}
		if c := spans[i].last.Compare(spans[j].last); c != 0 {
			return c < 0
		}
		if spans[i].pool != spans[j].pool {
			return spans[i].pool < spans[j].pool
		}
		return spans[i].entry < spans[j].entry
	})
	reach := make([]netip.Addr, len(spans))
	for i, s := range spans {
		reach[i] = s.last
		if i > 0 && reach[i-1].Compare(s.last) > 0 {
			reach[i] = reach[i-1]
		}
	}
	return &rangeIndex{spans: spans, reach: reach}
}

// overlapping calls fn for every span intersecting first..last, in order,
// until fn returns false.
func (x *rangeIndex) overlapping(first, last netip.Addr, fn func(s span) bool) {
	i := sort.Search(len(x.reach), func(i int) bool { return x.reach[i].Compare(first) >= 0 })
	for ; i < len(x.spans) && x.spans[i].first.Compare(last) <= 0; i++ {
		if x.spans[i].last.Compare(first) >= 0 && !fn(x.spans[i]) {
			return
		}
	}
}

// find returns the span holding a.
func (x *rangeIndex) find(a netip.Addr) (span, bool) {
	var found span
	ok := false
	x.overlapping(a, a, func(s span) bool { found, ok = s, true; return false })
	return found, ok
}

// subtract returns the parts of first..last not covered by any span of x,
// in order.
func (x *rangeIndex) subtract(first, last netip.Addr) []interval {
	var gaps []interval
	cur := first
	done := false
	x.overlapping(first, last, func(s span) bool {
		if s.first.Compare(cur) > 0 {
			gaps = append(gaps, interval{cur, s.first.Prev()})
		}
		if s.last.Compare(cur) >= 0 {
			next := s.last.Next()
			if !next.IsValid() || next.BitLen() != cur.BitLen() || s.last.Compare(last) >= 0 {
				done = true
				return false
			}
			cur = next
		}
		return true
	})
	if !done {
		gaps = append(gaps, interval{cur, last})
	}
	return gaps
}
