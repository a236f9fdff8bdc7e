package iprange

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// Range is one parsed pool address entry: the inclusive range First..Last
// of one IP family.
type Range struct {
	// First and Last are the first and last address, First <= Last, of one
	// family.
	First, Last netip.Addr
	// Prefix is the entry, masked, when it was written as a CIDR; the zero
	// Prefix for a start-end entry.
	Prefix netip.Prefix
	// HostBits reports a CIDR written with host bits set ("203.0.113.5/24"),
	// which Prefix holds masked.
	HostBits bool
}

// Problem says what is wrong with an entry Parse refuses, for callers that
// word their own message (pkg/legacyconfig).
type Problem int

// The problems, in the order Parse looks for them.
const (
	// Empty is an empty (or blank) entry.
	Empty Problem = iota + 1
	// SingleAddress is a bare address ("203.0.113.7"): it must be written
	// as a prefix.
	SingleAddress
	// NotAnEntry is neither a prefix nor a start-end range.
	NotAnEntry
	// BadPrefix is a prefix that does not parse ("203.0.113.0/33").
	BadPrefix
	// MappedPrefix is an IPv4-mapped IPv6 prefix ("::ffff:203.0.113.0/120").
	MappedPrefix
	// BadAddress is a range whose start or end is not an IP address.
	BadAddress
	// Zone is a range whose start or end has a zone ("fe80::1%eth0").
	Zone
	// MappedAddress is a range whose start or end is an IPv4-mapped IPv6
	// address.
	MappedAddress
	// MixedFamilies is a range from one IP family to the other.
	MixedFamilies
	// Backwards is a range whose start is after its end.
	Backwards
)

// Error is the error Parse and ParseMetalLB return.
type Error struct {
	// Entry is the entry as written.
	Entry string
	// Problem is what is wrong with it.
	Problem Problem
	// err is the message users see (admission's wording).
	err error
}

func (e *Error) Error() string { return e.err.Error() }

// Unwrap returns the detail the message wraps, if any.
func (e *Error) Unwrap() error { return errors.Unwrap(e.err) }

func fail(entry string, p Problem, err error) (Range, error) {
	return Range{}, &Error{Entry: entry, Problem: p, err: err}
}

// Parse parses one spec.addresses entry the way admission does: a CIDR
// prefix ("203.0.113.0/24", "2001:db8::/64") or an inclusive range
// "start-end" ("203.0.113.10-203.0.113.20") of one family. Like MetalLB
// (net.ParseCIDR), a prefix with host bits set ("203.0.113.5/24") is accepted
// and masked (HostBits says so). Spaces around the entry and around the
// dash are ignored. A bare address is not an entry (write 203.0.113.7/32).
// IPv4-mapped IPv6 addresses (::ffff:203.0.113.1) and zones (fe80::1%eth0)
// are refused: their family would be ambiguous. Errors are *Error.
func Parse(s string) (Range, error) { return parse(s, false) }

// ParseMetalLB parses an entry the way MetalLB v0.12 read its ConfigMap
// (net.ParseCIDR, net.ParseIP), which differs from Parse in three places:
// no spaces are allowed around a prefix; an IPv4-mapped range end is taken
// as the IPv4 address it maps (and then a zone it carried is dropped); an
// IPv4-mapped prefix is kept as written. When both ends of a range are
// wrong, one that is not an address is reported before a zone.
func ParseMetalLB(s string) (Range, error) { return parse(s, true) }

func parse(s string, metallb bool) (Range, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return fail(s, Empty, errors.New("empty address entry"))
	}
	if start, end, ok := strings.Cut(t, "-"); ok {
		return parseStartEnd(s, start, end, metallb)
	}
	if !strings.Contains(t, "/") {
		if a, err := netip.ParseAddr(t); err == nil {
			return fail(s, SingleAddress, fmt.Errorf("invalid entry %q: a single address is written as a prefix (%s/%d)", s, t, a.BitLen()))
		}
		return fail(s, NotAnEntry, fmt.Errorf("invalid entry %q: not a CIDR prefix or a start-end range", s))
	}
	if metallb {
		t = s
	}
	p, err := netip.ParsePrefix(t)
	if err != nil {
		return fail(s, BadPrefix, fmt.Errorf("invalid CIDR %q: %w", s, unwrapNetip(err)))
	}
	if p.Addr().Is4In6() && !metallb {
		return fail(s, MappedPrefix, fmt.Errorf("invalid CIDR %q: IPv4-mapped IPv6 prefix; write it as an IPv4 prefix", s))
	}
	m := p.Masked()
	return Range{First: m.Addr(), Last: LastAddr(m), Prefix: m, HostBits: m != p}, nil
}

func parseStartEnd(s, start, end string, metallb bool) (Range, error) {
	first, errFirst := parseEnd(start, "start", metallb)
	last, errLast := parseEnd(end, "end", metallb)
	err := errFirst
	if err == nil || (metallb && errLast != nil && errLast.Problem == BadAddress) {
		err = errLast
	}
	if err != nil {
		return fail(s, err.Problem, fmt.Errorf("invalid range %q: %w", s, err.err))
	}
	if first.Is4() != last.Is4() {
		return fail(s, MixedFamilies, fmt.Errorf("invalid range %q: start %s and end %s are of different IP families", s, first, last))
	}
	if first.Compare(last) > 0 {
		return fail(s, Backwards, fmt.Errorf("invalid range %q: start %s is after end %s", s, first, last))
	}
	return Range{First: first, Last: last}, nil
}

// parseEnd parses the start or end of a range (which says which).
func parseEnd(s, which string, metallb bool) (netip.Addr, *Error) {
	s = strings.TrimSpace(s)
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, &Error{Problem: BadAddress, err: fmt.Errorf("%s %q is not an IP address", which, s)}
	}
	if metallb {
		a = a.Unmap()
	}
	if a.Zone() != "" {
		return netip.Addr{}, &Error{Problem: Zone, err: fmt.Errorf("%s %q has a zone; pool addresses cannot", which, s)}
	}
	if a.Is4In6() {
		return netip.Addr{}, &Error{Problem: MappedAddress, err: fmt.Errorf("%s %q is an IPv4-mapped IPv6 address; write it as IPv4", which, s)}
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
