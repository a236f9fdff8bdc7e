package config

import (
	"errors"
	"fmt"
	"math/bits"
	"net/netip"
	"sort"
	"strings"
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
// "start-end" ("203.0.113.10-203.0.113.20") of one family. Like MetalLB
// (net.ParseCIDR), a prefix with host bits set ("203.0.113.5/24") is accepted
// and masked ("203.0.113.0/24"); Build warns about it. Spaces around the
// entry and around the dash are ignored. A bare address is not an entry
// (write 203.0.113.7/32). IPv4-mapped IPv6 addresses (::ffff:203.0.113.1)
// and zones (fe80::1%eth0) are refused: their family would be ambiguous.
func ParseRange(s string) (AddrRange, error) {
	r, _, err := parseRange(s)
	return r, err
}

// parseRange is ParseRange that also reports whether a CIDR entry had host
// bits set.
func parseRange(s string) (r AddrRange, hostBits bool, err error) {
	r.Spec = s
	t := strings.TrimSpace(s)
	if t == "" {
		return r, false, errors.New("empty address entry")
	}
	if start, end, ok := strings.Cut(t, "-"); ok {
		first, err := parseRangeAddr(start, "start")
		if err != nil {
			return r, false, fmt.Errorf("invalid range %q: %w", s, err)
		}
		last, err := parseRangeAddr(end, "end")
		if err != nil {
			return r, false, fmt.Errorf("invalid range %q: %w", s, err)
		}
		if first.Is4() != last.Is4() {
			return r, false, fmt.Errorf("invalid range %q: start %s and end %s are of different IP families", s, first, last)
		}
		if first.Compare(last) > 0 {
			return r, false, fmt.Errorf("invalid range %q: start %s is after end %s", s, first, last)
		}
		r.First, r.Last = first, last
		r.CIDRs = SummarizeRange(first, last)
		return r, false, nil
	}
	if !strings.Contains(t, "/") {
		if _, err := netip.ParseAddr(t); err == nil {
			return r, false, fmt.Errorf("invalid entry %q: a single address is written as a prefix (%s/%d)", s, t, addrBits(t))
		}
		return r, false, fmt.Errorf("invalid entry %q: not a CIDR prefix or a start-end range", s)
	}
	p, err := netip.ParsePrefix(t)
	if err != nil {
		return r, false, fmt.Errorf("invalid CIDR %q: %w", s, unwrapNetip(err))
	}
	if p.Addr().Is4In6() {
		return r, false, fmt.Errorf("invalid CIDR %q: IPv4-mapped IPv6 prefix; write it as an IPv4 prefix", s)
	}
	m := p.Masked()
	r.First, r.Last = m.Addr(), lastAddr(m)
	r.CIDRs = []netip.Prefix{m}
	return r, m != p, nil
}

func addrBits(s string) int {
	if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
		return 128
	}
	return 32
}

func parseRangeAddr(s, which string) (netip.Addr, error) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%s %q is not an IP address", which, s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%s %q has a zone; pool addresses cannot", which, s)
	}
	if a.Is4In6() {
		return netip.Addr{}, fmt.Errorf("%s %q is an IPv4-mapped IPv6 address; write it as IPv4", which, s)
	}
	return a, nil
}

// unwrapNetip drops netip's repetition of the input from its parse errors.
func unwrapNetip(err error) error {
	msg := err.Error()
	if i := strings.LastIndex(msg, "): "); i >= 0 {
		return errors.New(msg[i+3:])
	}
	if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "netip.ParsePrefix(") {
		return errors.New(msg[i+2:])
	}
	return err
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

// u128 is an address as a 128-bit number (IPv4 in the low 32 bits).
type u128 struct{ hi, lo uint64 }

func toU128(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(b[0])<<24 | uint64(b[1])<<16 | uint64(b[2])<<8 | uint64(b[3])}
	}
	b := a.As16()
	var u u128
	for i := 0; i < 8; i++ {
		u.hi = u.hi<<8 | uint64(b[i])
		u.lo = u.lo<<8 | uint64(b[8+i])
	}
	return u
}

func fromU128(u u128, is4 bool) netip.Addr {
	if is4 {
		return netip.AddrFrom4([4]byte{byte(u.lo >> 24), byte(u.lo >> 16), byte(u.lo >> 8), byte(u.lo)})
	}
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[7-i] = byte(u.hi >> (8 * i))
		b[15-i] = byte(u.lo >> (8 * i))
	}
	return netip.AddrFrom16(b)
}

// ones returns 2^k - 1 (k <= 128).
func ones(k int) u128 {
	switch {
	case k <= 0:
		return u128{}
	case k < 64:
		return u128{lo: 1<<uint(k) - 1}
	case k == 64:
		return u128{lo: ^uint64(0)}
	case k < 128:
		return u128{hi: 1<<uint(k-64) - 1, lo: ^uint64(0)}
	default:
		return u128{hi: ^uint64(0), lo: ^uint64(0)}
	}
}

func (u u128) or(v u128) u128 { return u128{u.hi | v.hi, u.lo | v.lo} }

func (u u128) cmp(v u128) int {
	switch {
	case u.hi < v.hi:
		return -1
	case u.hi > v.hi:
		return 1
	case u.lo < v.lo:
		return -1
	case u.lo > v.lo:
		return 1
	}
	return 0
}

func (u u128) trailingZeros() int {
	if u.lo != 0 {
		return bits.TrailingZeros64(u.lo)
	}
	if u.hi != 0 {
		return 64 + bits.TrailingZeros64(u.hi)
	}
	return 128
}

// lastAddr returns the last address of a masked prefix.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	return fromU128(toU128(a).or(ones(a.BitLen()-p.Bits())), a.Is4())
}

// SummarizeRange returns the minimal list of prefixes covering exactly
// first..last (same family, first <= last), in address order. It returns
// nil for invalid input.
func SummarizeRange(first, last netip.Addr) []netip.Prefix {
	if !first.IsValid() || !last.IsValid() || first.Is4() != last.Is4() || first.Compare(last) > 0 {
		return nil
	}
	n := first.BitLen()
	is4 := first.Is4()
	lastU := toU128(last)
	var out []netip.Prefix
	for {
		cur := toU128(first)
		// The largest block starting at cur is 2^k addresses with cur aligned
		// on 2^k and the block's end not past last.
		k := min(cur.trailingZeros(), n)
		for k > 0 && cur.or(ones(k)).cmp(lastU) > 0 {
			k--
		}
		out = append(out, netip.PrefixFrom(first, n-k))
		end := cur.or(ones(k))
		if end.cmp(lastU) >= 0 {
			return out
		}
		first = fromU128(end, is4).Next()
	}
}

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
