package iprange

import (
	"net/netip"
	"slices"
	"testing"
)

func TestLastAddr(t *testing.T) {
	for in, want := range map[string]string{
		"203.0.113.0/24":         "203.0.113.255",
		"203.0.113.5/24":         "203.0.113.255", // host bits need not be clear
		"203.0.113.7/32":         "203.0.113.7",
		"0.0.0.0/0":              "255.255.255.255",
		"2001:db8::/64":          "2001:db8::ffff:ffff:ffff:ffff",
		"2001:db8::/63":          "2001:db8:0:1:ffff:ffff:ffff:ffff",
		"2001:db8::/65":          "2001:db8::7fff:ffff:ffff:ffff",
		"::/0":                   "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
		"2001:db8::1/128":        "2001:db8::1",
		"::ffff:203.0.113.0/120": "::ffff:203.0.113.255",
	} {
		if got := LastAddr(netip.MustParsePrefix(in)).String(); got != want {
			t.Errorf("LastAddr(%s) = %s, want %s", in, got, want)
		}
	}
}

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		first, last string
		want        []string
	}{
		// The bgp-ecmp-bfd pool: widest CIDR /26.
		{"203.0.113.1", "203.0.113.254", []string{
			"203.0.113.1/32", "203.0.113.2/31", "203.0.113.4/30", "203.0.113.8/29", "203.0.113.16/28", "203.0.113.32/27",
			"203.0.113.64/26", "203.0.113.128/26", "203.0.113.192/27", "203.0.113.224/28", "203.0.113.240/29",
			"203.0.113.248/30", "203.0.113.252/31", "203.0.113.254/32"}},
		{"203.0.113.10", "203.0.113.10", []string{"203.0.113.10/32"}},
		{"203.0.113.16", "203.0.113.31", []string{"203.0.113.16/28"}},
		{"0.0.0.0", "255.255.255.255", []string{"0.0.0.0/0"}},
		{"255.255.255.254", "255.255.255.255", []string{"255.255.255.254/31"}},
		{"2001:db8::ff", "2001:db8::1:0", []string{
			"2001:db8::ff/128", "2001:db8::100/120", "2001:db8::200/119", "2001:db8::400/118", "2001:db8::800/117",
			"2001:db8::1000/116", "2001:db8::2000/115", "2001:db8::4000/114", "2001:db8::8000/113", "2001:db8::1:0/128"}},
		{"::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", []string{"::/0"}},
		{"::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", nil}, // checked by count below
	} {
		got := Summarize(netip.MustParseAddr(tc.first), netip.MustParseAddr(tc.last))
		if tc.want == nil {
			// ::1..max: one prefix per bit length /128 ... /1.
			if len(got) != 128 || got[0].String() != "::1/128" || got[127].String() != "8000::/1" {
				t.Errorf("Summarize(%s, %s) = %d prefixes %v..%v", tc.first, tc.last, len(got), got[0], got[len(got)-1])
			}
			continue
		}
		var s []string
		for _, p := range got {
			s = append(s, p.String())
		}
		if !slices.Equal(s, tc.want) {
			t.Errorf("Summarize(%s, %s) = %v, want %v", tc.first, tc.last, s, tc.want)
		}
	}
}

func TestSummarizeInvalid(t *testing.T) {
	a, b := netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("203.0.113.1")
	if Summarize(a, b) != nil || Summarize(a, netip.MustParseAddr("::1")) != nil || Summarize(netip.Addr{}, a) != nil {
		t.Error("invalid input summarised")
	}
}

func TestComparePrefixes(t *testing.T) {
	p := netip.MustParsePrefix
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"203.0.113.0/24", "2001:db8::/32", -1}, // IPv4 first
		{"2001:db8::/32", "192.0.2.0/24", 1},
		{"192.0.2.0/24", "198.51.100.0/24", -1},    // then by address
		{"198.51.100.0/24", "198.51.100.0/25", -1}, // then shorter first
		{"198.51.100.0/25", "198.51.100.0/24", 1},
		{"2001:db8::/64", "2001:db8::/64", 0},
	} {
		if got := ComparePrefixes(p(tc.a), p(tc.b)); got != tc.want {
			t.Errorf("ComparePrefixes(%s, %s) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestMinMaxAddr(t *testing.T) {
	a := netip.MustParseAddr
	for _, tc := range []struct{ x, y, min, max string }{
		{"192.0.2.1", "192.0.2.9", "192.0.2.1", "192.0.2.9"},
		{"192.0.2.9", "192.0.2.1", "192.0.2.1", "192.0.2.9"},
		{"2001:db8::1", "2001:db8::1", "2001:db8::1", "2001:db8::1"},
	} {
		if got := MinAddr(a(tc.x), a(tc.y)); got != a(tc.min) {
			t.Errorf("MinAddr(%s, %s) = %s, want %s", tc.x, tc.y, got, tc.min)
		}
		if got := MaxAddr(a(tc.x), a(tc.y)); got != a(tc.max) {
			t.Errorf("MaxAddr(%s, %s) = %s, want %s", tc.x, tc.y, got, tc.max)
		}
	}
}
