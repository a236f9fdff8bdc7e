package community

import (
	"slices"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Community
		err  string
	}{
		{in: "65000:100", want: Community{Type: Standard, High: 65000, Low: 100}},
		{in: "0:0", want: Community{}},
		{in: "65535:65535", want: Community{High: 65535, Low: 65535}},
		{in: "large:4294967295:0:1", want: Community{Type: Large, Global: 4294967295, Local1: 0, Local2: 1}},
		{in: "large:65000:1:2", want: Community{Type: Large, Global: 65000, Local1: 1, Local2: 2}},
		{in: "65536:1", err: `invalid community "65536:1": first part "65536": out of range 0..65535`},
		{in: "1:65536", err: `invalid community "1:65536": second part "65536": out of range 0..65535`},
		{in: "+1:1", err: `invalid community "+1:1": first part "+1": not a decimal number`},
		{in: "0x10:1", err: `invalid community "0x10:1": first part "0x10": not a decimal number`},
		{in: ":1", err: `invalid community ":1": first part "": empty`},
		{in: "1:2:3", err: `invalid community "1:2:3": expected AA:NN (16-bit numbers) or large:G:L1:L2 (32-bit numbers)`},
		{in: "no-export", err: `invalid community "no-export": expected AA:NN (16-bit numbers) or large:G:L1:L2 (32-bit numbers)`},
		{in: "LARGE:1:2:3", err: `invalid community "LARGE:1:2:3": a large community is written large:<uint32>:<uint32>:<uint32>`},
		{in: "large:1:2:4294967296", err: `invalid community "large:1:2:4294967296": second local data part "4294967296": out of range 0..4294967295`},
	} {
		got, err := Parse(tc.in)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("Parse(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		// String gives back a literal Parse reads as the same value.
		if again, err := Parse(got.String()); err != nil || again != got {
			t.Errorf("round trip of %q via %q: %+v, %v", tc.in, got.String(), again, err)
		}
	}
}

func TestCommunityOrderAndValue(t *testing.T) {
	cs := []Community{
		{Type: Large, Global: 1, Local1: 2, Local2: 3},
		{High: 65000, Low: 2},
		{Type: Large, Global: 1, Local1: 2, Local2: 1},
		{High: 1, Low: 65535},
	}
	slices.SortFunc(cs, Community.Compare)
	var got []string
	for _, c := range cs {
		got = append(got, c.String())
	}
	want := []string{"1:65535", "65000:2", "large:1:2:1", "large:1:2:3"}
	if !slices.Equal(got, want) {
		t.Errorf("order %v, want %v", got, want)
	}
	if v := (Community{High: 65535, Low: 65281}).Uint32(); v != 0xFFFFFF01 {
		t.Errorf("NO_EXPORT = %#x", v)
	}
}

func TestSplit(t *testing.T) {
	var cs []Community
	for _, s := range []string{"65535:120", "large:65535:300:100", "0:1", "large:1:2:3"} {
		c, err := Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	std, large := Split(cs)
	if strings.Join(std, " ") != "65535:120 0:1" || strings.Join(large, " ") != "65535:300:100 1:2:3" {
		t.Errorf("Split = %v, %v", std, large)
	}
	if std, large := Split(nil); std != nil || large != nil {
		t.Errorf("nil input gave %v, %v", std, large)
	}
}
