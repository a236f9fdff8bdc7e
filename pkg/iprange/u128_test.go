package iprange

import (
	"math"
	"net/netip"
	"testing"
)

func TestU128RoundTrip(t *testing.T) {
	for in, want := range map[string]U128{
		"0.0.0.0":         {},
		"203.0.113.1":     {Lo: 0xcb007101},
		"255.255.255.255": {Lo: math.MaxUint32},
		"::":              {},
		"::1":             {Lo: 1},
		"2001:db8::1":     {Hi: 0x20010db800000000, Lo: 1},
		"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff": {Hi: math.MaxUint64, Lo: math.MaxUint64},
	} {
		a := netip.MustParseAddr(in)
		u := U128From(a)
		if u != want {
			t.Errorf("U128From(%s) = %#v, want %#v", in, u, want)
		}
		if back := u.Addr(a.Is4()); back != a {
			t.Errorf("U128From(%s).Addr = %s", in, back)
		}
	}
}

func TestU128Arithmetic(t *testing.T) {
	max := U128{Hi: math.MaxUint64, Lo: math.MaxUint64}
	for _, tc := range []struct {
		name      string
		got, want U128
	}{
		{"add carries into Hi", U128{Lo: math.MaxUint64}.AddSmall(1), U128{Hi: 1}},
		{"add wraps at 2^128", max.AddSmall(1), U128{}},
		{"sub borrows from Hi", U128{Hi: 1}.SubSmall(1), U128{Lo: math.MaxUint64}},
		{"sub wraps at 0", U128{}.SubSmall(1), max},
		{"sub", U128{Hi: 2, Lo: 1}.Sub(U128{Hi: 1, Lo: 2}), U128{Lo: math.MaxUint64}},
		{"sub to 0", max.Sub(max), U128{}},
		{"or", U128{Hi: 1, Lo: 2}.Or(U128{Hi: 4, Lo: 8}), U128{Hi: 5, Lo: 10}},
		{"ones 0", Ones(0), U128{}},
		{"ones below 0 clamps", Ones(-1), U128{}},
		{"ones 8", Ones(8), U128{Lo: 0xff}},
		{"ones 64", Ones(64), U128{Lo: math.MaxUint64}},
		{"ones 65", Ones(65), U128{Hi: 1, Lo: math.MaxUint64}},
		{"ones 128", Ones(128), max},
		{"ones above 128 clamps", Ones(200), max},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %#v, want %#v", tc.name, tc.got, tc.want)
		}
	}
}

func TestU128Order(t *testing.T) {
	for _, tc := range []struct {
		u, v U128
		cmp  int
	}{
		{U128{}, U128{}, 0},
		{U128{Lo: 1}, U128{Lo: 2}, -1},
		{U128{Hi: 1}, U128{Lo: math.MaxUint64}, 1},
		{U128{Hi: 1, Lo: 5}, U128{Hi: 1, Lo: 5}, 0},
		{U128{Hi: 1, Lo: 5}, U128{Hi: 2}, -1},
	} {
		if got := tc.u.Cmp(tc.v); got != tc.cmp {
			t.Errorf("%#v.Cmp(%#v) = %d, want %d", tc.u, tc.v, got, tc.cmp)
		}
		if got := tc.v.Cmp(tc.u); got != -tc.cmp {
			t.Errorf("%#v.Cmp(%#v) = %d, want %d", tc.v, tc.u, got, -tc.cmp)
		}
		if got := tc.u.Less(tc.v); got != (tc.cmp < 0) {
			t.Errorf("%#v.Less(%#v) = %v", tc.u, tc.v, got)
		}
	}
}

func TestU128Bits(t *testing.T) {
	for _, tc := range []struct {
		u        U128
		zeros    int
		satInt64 int64
	}{
		{U128{}, 128, 0},
		{U128{Lo: 1}, 0, 1},
		{U128{Lo: 0x100}, 8, 0x100},
		{U128{Hi: 1}, 64, math.MaxInt64},
		{U128{Hi: 1 << 63}, 127, math.MaxInt64},
		{U128{Lo: math.MaxInt64}, 0, math.MaxInt64},
		{U128{Lo: 1 << 63}, 63, math.MaxInt64},
	} {
		if got := tc.u.TrailingZeros(); got != tc.zeros {
			t.Errorf("%#v.TrailingZeros() = %d, want %d", tc.u, got, tc.zeros)
		}
		if got := tc.u.SatInt64(); got != tc.satInt64 {
			t.Errorf("%#v.SatInt64() = %d, want %d", tc.u, got, tc.satInt64)
		}
	}
}
