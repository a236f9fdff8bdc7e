package iprange

import (
	"errors"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in          string
		first, last string
		prefix      string // the masked prefix of a CIDR entry
		hostBits    bool
		err         string
		problem     Problem
	}{
		{in: "203.0.113.0/24", first: "203.0.113.0", last: "203.0.113.255", prefix: "203.0.113.0/24"},
		{in: " 203.0.113.5/24 ", first: "203.0.113.0", last: "203.0.113.255", prefix: "203.0.113.0/24", hostBits: true},
		{in: "203.0.113.7/32", first: "203.0.113.7", last: "203.0.113.7", prefix: "203.0.113.7/32"},
		{in: "0.0.0.0/0", first: "0.0.0.0", last: "255.255.255.255", prefix: "0.0.0.0/0"},
		{in: "2001:db8::/64", first: "2001:db8::", last: "2001:db8::ffff:ffff:ffff:ffff", prefix: "2001:db8::/64"},
		{in: "::/0", first: "::", last: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", prefix: "::/0"},
		{in: "203.0.113.1-203.0.113.254", first: "203.0.113.1", last: "203.0.113.254"},
		{in: "203.0.113.10 - 203.0.113.10", first: "203.0.113.10", last: "203.0.113.10"},
		{in: "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", first: "::", last: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"},
		{in: "", problem: Empty, err: `empty address entry`},
		{in: "  ", problem: Empty, err: `empty address entry`},
		{in: "203.0.113.0/33", problem: BadPrefix, err: `invalid CIDR "203.0.113.0/33": prefix length out of range`},
		{in: "203.0.113.7", problem: SingleAddress, err: `invalid entry "203.0.113.7": a single address is written as a prefix (203.0.113.7/32)`},
		{in: "2001:db8::7", problem: SingleAddress, err: `invalid entry "2001:db8::7": a single address is written as a prefix (2001:db8::7/128)`},
		{in: "pool", problem: NotAnEntry, err: `invalid entry "pool": not a CIDR prefix or a start-end range`},
		{in: "203.0.113.9-203.0.113.1", problem: Backwards, err: `invalid range "203.0.113.9-203.0.113.1": start 203.0.113.9 is after end 203.0.113.1`},
		{in: "203.0.113.1-2001:db8::1", problem: MixedFamilies, err: `invalid range "203.0.113.1-2001:db8::1": start 203.0.113.1 and end 2001:db8::1 are of different IP families`},
		{in: "203.0.113.1-", problem: BadAddress, err: `invalid range "203.0.113.1-": end "" is not an IP address`},
		{in: "203.0.113.1-203.0.113.2-203.0.113.3", problem: BadAddress, err: `invalid range "203.0.113.1-203.0.113.2-203.0.113.3": end "203.0.113.2-203.0.113.3" is not an IP address`},
		{in: "203.0.113.0/24-203.0.114.0/24", problem: BadAddress, err: `invalid range "203.0.113.0/24-203.0.114.0/24": start "203.0.113.0/24" is not an IP address`},
		{in: "fe80::1%eth0-fe80::2", problem: Zone, err: `invalid range "fe80::1%eth0-fe80::2": start "fe80::1%eth0" has a zone; pool addresses cannot`},
		// The start is checked fully before the end.
		{in: "fe80::1%eth0-x", problem: Zone, err: `invalid range "fe80::1%eth0-x": start "fe80::1%eth0" has a zone; pool addresses cannot`},
		{in: "::ffff:203.0.113.1-::ffff:203.0.113.2", problem: MappedAddress, err: `invalid range "::ffff:203.0.113.1-::ffff:203.0.113.2": start "::ffff:203.0.113.1" is an IPv4-mapped IPv6 address; write it as IPv4`},
		{in: "203.0.113.1-::ffff:203.0.113.2", problem: MappedAddress, err: `invalid range "203.0.113.1-::ffff:203.0.113.2": end "::ffff:203.0.113.2" is an IPv4-mapped IPv6 address; write it as IPv4`},
		{in: "::ffff:203.0.113.0/120", problem: MappedPrefix, err: `invalid CIDR "::ffff:203.0.113.0/120": IPv4-mapped IPv6 prefix; write it as an IPv4 prefix`},
	} {
		r, err := Parse(tc.in)
		checkParse(t, "Parse", tc.in, r, err, tc.first, tc.last, tc.prefix, tc.hostBits, tc.problem, tc.err)
	}
}

// TestParseMetalLB covers where MetalLB v0.12 read an entry differently
// from admission; everything else is as in TestParse.
func TestParseMetalLB(t *testing.T) {
	for _, tc := range []struct {
		in          string
		first, last string
		prefix      string
		problem     Problem
	}{
		{in: "203.0.113.0/24", first: "203.0.113.0", last: "203.0.113.255", prefix: "203.0.113.0/24"},
		{in: "203.0.113.5 - 203.0.113.9", first: "203.0.113.5", last: "203.0.113.9"},
		// net.ParseCIDR allows no spaces.
		{in: " 203.0.113.0/24", problem: BadPrefix},
		// net.ParseIP takes an IPv4-mapped address as IPv4.
		{in: "::ffff:203.0.113.1-203.0.113.2", first: "203.0.113.1", last: "203.0.113.2"},
		{in: "::ffff:203.0.113.1%eth0-203.0.113.2", first: "203.0.113.1", last: "203.0.113.2"},
		{in: "::ffff:203.0.113.0/120", first: "::ffff:203.0.113.0", last: "::ffff:203.0.113.255", prefix: "::ffff:203.0.113.0/120"},
		{in: "fe80::1%eth0-fe80::2", problem: Zone},
		// Not an address outranks a zone.
		{in: "fe80::1%eth0-x", problem: BadAddress},
		{in: "x-fe80::1%eth0", problem: BadAddress},
		{in: "203.0.113.9-203.0.113.1", problem: Backwards},
		{in: "203.0.113.7", problem: SingleAddress},
		{in: "", problem: Empty},
	} {
		r, err := ParseMetalLB(tc.in)
		checkParse(t, "ParseMetalLB", tc.in, r, err, tc.first, tc.last, tc.prefix, false, tc.problem, "")
	}
}

func checkParse(t *testing.T, fn, in string, r Range, err error, first, last, prefix string, hostBits bool, problem Problem, msg string) {
	t.Helper()
	if problem != 0 {
		var e *Error
		if !errors.As(err, &e) || e.Problem != problem || e.Entry != in || (msg != "" && err.Error() != msg) {
			t.Errorf("%s(%q) error = %#v, want problem %d %q", fn, in, err, problem, msg)
		}
		return
	}
	if err != nil {
		t.Errorf("%s(%q): %v", fn, in, err)
		return
	}
	gotPrefix := ""
	if r.Prefix.IsValid() {
		gotPrefix = r.Prefix.String()
	}
	if r.First.String() != first || r.Last.String() != last || gotPrefix != prefix || r.HostBits != hostBits {
		t.Errorf("%s(%q) = %s..%s prefix %q host bits %v, want %s..%s prefix %q host bits %v",
			fn, in, r.First, r.Last, gotPrefix, r.HostBits, first, last, prefix, hostBits)
	}
}

func TestErrorUnwrap(t *testing.T) {
	_, err := Parse("203.0.113.0/33")
	if errors.Unwrap(err) == nil || errors.Unwrap(err).Error() != "prefix length out of range" {
		t.Errorf("Unwrap(%v) = %v", err, errors.Unwrap(err))
	}
}
