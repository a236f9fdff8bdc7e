package config

import (
	"net/netip"
	"slices"
	"testing"
)

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		in          string
		first, last string
		cidrs       []string
		err         string
	}{
		{in: "203.0.113.0/24", first: "203.0.113.0", last: "203.0.113.255", cidrs: []string{"203.0.113.0/24"}},
		{in: " 203.0.113.5/24 ", first: "203.0.113.0", last: "203.0.113.255", cidrs: []string{"203.0.113.0/24"}},
		{in: "203.0.113.7/32", first: "203.0.113.7", last: "203.0.113.7", cidrs: []string{"203.0.113.7/32"}},
		{in: "0.0.0.0/0", first: "0.0.0.0", last: "255.255.255.255", cidrs: []string{"0.0.0.0/0"}},
		{in: "2001:db8::/64", first: "2001:db8::", last: "2001:db8::ffff:ffff:ffff:ffff", cidrs: []string{"2001:db8::/64"}},
		{in: "::/0", first: "::", last: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", cidrs: []string{"::/0"}},
		// The bgp-ecmp-bfd pool: widest CIDR /26.
		{in: "203.0.113.1-203.0.113.254", first: "203.0.113.1", last: "203.0.113.254", cidrs: []string{
			"203.0.113.1/32", "203.0.113.2/31", "203.0.113.4/30", "203.0.113.8/29", "203.0.113.16/28", "203.0.113.32/27",
			"203.0.113.64/26", "203.0.113.128/26", "203.0.113.192/27", "203.0.113.224/28", "203.0.113.240/29",
			"203.0.113.248/30", "203.0.113.252/31", "203.0.113.254/32"}},
		{in: "203.0.113.10 - 203.0.113.10", first: "203.0.113.10", last: "203.0.113.10", cidrs: []string{"203.0.113.10/32"}},
		{in: "0.0.0.0-255.255.255.255", first: "0.0.0.0", last: "255.255.255.255", cidrs: []string{"0.0.0.0/0"}},
		{in: "2001:db8::ff-2001:db8::1:0", first: "2001:db8::ff", last: "2001:db8::1:0", cidrs: []string{
			"2001:db8::ff/128", "2001:db8::100/120", "2001:db8::200/119", "2001:db8::400/118", "2001:db8::800/117",
			"2001:db8::1000/116", "2001:db8::2000/115", "2001:db8::4000/114", "2001:db8::8000/113", "2001:db8::1:0/128"}},
		{in: "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", first: "::", last: "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", cidrs: []string{"::/0"}},
		{in: "", err: `empty address entry`},
		{in: "203.0.113.0/33", err: `invalid CIDR "203.0.113.0/33": prefix length out of range`},
		{in: "203.0.113.7", err: `invalid entry "203.0.113.7": a single address is written as a prefix (203.0.113.7/32)`},
		{in: "2001:db8::7", err: `invalid entry "2001:db8::7": a single address is written as a prefix (2001:db8::7/128)`},
		{in: "pool", err: `invalid entry "pool": not a CIDR prefix or a start-end range`},
		{in: "203.0.113.9-203.0.113.1", err: `invalid range "203.0.113.9-203.0.113.1": start 203.0.113.9 is after end 203.0.113.1`},
		{in: "203.0.113.1-2001:db8::1", err: `invalid range "203.0.113.1-2001:db8::1": start 203.0.113.1 and end 2001:db8::1 are of different IP families`},
		{in: "203.0.113.1-", err: `invalid range "203.0.113.1-": end "" is not an IP address`},
		{in: "203.0.113.1-203.0.113.2-203.0.113.3", err: `invalid range "203.0.113.1-203.0.113.2-203.0.113.3": end "203.0.113.2-203.0.113.3" is not an IP address`},
		{in: "203.0.113.0/24-203.0.114.0/24", err: `invalid range "203.0.113.0/24-203.0.114.0/24": start "203.0.113.0/24" is not an IP address`},
		{in: "fe80::1%eth0-fe80::2", err: `invalid range "fe80::1%eth0-fe80::2": start "fe80::1%eth0" has a zone; pool addresses cannot`},
		{in: "::ffff:203.0.113.1-::ffff:203.0.113.2", err: `invalid range "::ffff:203.0.113.1-::ffff:203.0.113.2": start "::ffff:203.0.113.1" is an IPv4-mapped IPv6 address; write it as IPv4`},
		{in: "::ffff:203.0.113.0/120", err: `invalid CIDR "::ffff:203.0.113.0/120": IPv4-mapped IPv6 prefix; write it as an IPv4 prefix`},
	} {
		r, err := ParseRange(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("ParseRange(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ParseRange(%q): %v", tc.in, err)
			continue
		}
		if r.First.String() != tc.first || r.Last.String() != tc.last || r.Spec != tc.in {
			t.Errorf("ParseRange(%q) = %s..%s (spec %q), want %s..%s", tc.in, r.First, r.Last, r.Spec, tc.first, tc.last)
		}
		var got []string
		for _, p := range r.CIDRs {
			got = append(got, p.String())
		}
		if !slices.Equal(got, tc.cidrs) {
			t.Errorf("ParseRange(%q).CIDRs = %v, want %v", tc.in, got, tc.cidrs)
		}
	}
}

func TestAddrRangeMethods(t *testing.T) {
	r, _ := ParseRange("203.0.113.10-203.0.113.20")
	if r.String() != "203.0.113.10-203.0.113.20" || !r.Is4() {
		t.Errorf("String() = %q, Is4 = %v", r.String(), r.Is4())
	}
	for a, want := range map[string]bool{"203.0.113.9": false, "203.0.113.10": true, "203.0.113.20": true, "203.0.113.21": false, "2001:db8::1": false} {
		if got := r.Contains(netip.MustParseAddr(a)); got != want {
			t.Errorf("Contains(%s) = %v", a, got)
		}
	}
	if r.Contains(netip.Addr{}) {
		t.Error("Contains(invalid address)")
	}
	c, _ := ParseRange("203.0.113.16-203.0.113.31")
	if c.String() != "203.0.113.16/28" {
		t.Errorf("a range that is one CIDR prints %q", c.String())
	}
}

func TestSummarizeRangeInvalid(t *testing.T) {
	a, b := netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("203.0.113.1")
	if SummarizeRange(a, b) != nil || SummarizeRange(a, netip.MustParseAddr("::1")) != nil || SummarizeRange(netip.Addr{}, a) != nil {
		t.Error("invalid input summarised")
	}
}

func TestRangeIndex(t *testing.T) {
	mk := func(pool int, s string) span {
		r, err := ParseRange(s)
		if err != nil {
			t.Fatal(err)
		}
		return span{first: r.First, last: r.Last, pool: pool}
	}
	// Overlapping on purpose: a wide span hides later ones from a plain
	// neighbour comparison; reach keeps queries right.
	x := newRangeIndex([]span{
		mk(0, "10.0.0.0/8"), mk(1, "10.1.0.0/16"), mk(2, "10.200.0.0/16"), mk(3, "2001:db8::/64"), mk(4, "11.0.0.0/32"),
	})
	var got []int
	x.overlapping(netip.MustParseAddr("10.200.0.5"), netip.MustParseAddr("11.0.0.0"), func(s span) bool { got = append(got, s.pool); return true })
	if !slices.Equal(got, []int{0, 2, 4}) {
		t.Errorf("overlapping = %v", got)
	}
	if s, ok := x.find(netip.MustParseAddr("2001:db8::1")); !ok || s.pool != 3 {
		t.Errorf("find IPv6 = %v %v", s, ok)
	}
	if _, ok := x.find(netip.MustParseAddr("12.0.0.0")); ok {
		t.Error("found an address in no span")
	}

	// subtract, at the edges of the address space too.
	y := newRangeIndex([]span{mk(0, "203.0.113.1-203.0.113.10"), mk(0, "203.0.113.20-203.0.113.255")})
	gaps := y.subtract(netip.MustParseAddr("203.0.113.0"), netip.MustParseAddr("203.0.113.255"))
	if formatIntervals(gaps, 10) != "203.0.113.0 and 203.0.113.11-203.0.113.19" {
		t.Errorf("gaps = %s", formatIntervals(gaps, 10))
	}
	z := newRangeIndex([]span{mk(0, "255.255.255.0/24")})
	if g := z.subtract(netip.MustParseAddr("255.255.0.0"), netip.MustParseAddr("255.255.255.255")); formatIntervals(g, 10) != "255.255.0.0-255.255.254.255" {
		t.Errorf("gaps at the top = %s", formatIntervals(g, 10))
	}
}

func TestFormatIntervals(t *testing.T) {
	iv := func(a, b string) interval { return interval{netip.MustParseAddr(a), netip.MustParseAddr(b)} }
	ivs := []interval{iv("203.0.113.0", "203.0.113.0"), iv("203.0.113.5", "203.0.113.9"), iv("203.0.113.20", "203.0.113.20"),
		iv("203.0.113.30", "203.0.113.31"), iv("203.0.113.40", "203.0.113.40"), iv("203.0.113.50", "203.0.113.50")}
	for n, want := range map[int]string{
		1: "203.0.113.0",
		2: "203.0.113.0 and 203.0.113.5-203.0.113.9",
		3: "203.0.113.0, 203.0.113.5-203.0.113.9 and 203.0.113.20",
		6: "203.0.113.0, 203.0.113.5-203.0.113.9, 203.0.113.20, 203.0.113.30-203.0.113.31 and 2 more ranges",
	} {
		if got := formatIntervals(ivs[:n], 4); got != want {
			t.Errorf("%d intervals: %q, want %q", n, got, want)
		}
	}
}
