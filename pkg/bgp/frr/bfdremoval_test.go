package frr

import (
	"slices"
	"strings"
	"testing"
)

const confWithBFD = `frr defaults traditional
router bgp 64512
 neighbor 198.18.0.254 remote-as 65000
 neighbor 198.18.0.254 bfd
 neighbor 198.18.0.254 bfd profile fast
 neighbor 198.18.0.253 remote-as 65000
 neighbor 198.18.0.253 bfd
exit
!
router bgp 64512 vrf red
 neighbor 198.18.1.254 remote-as 65000
 neighbor 198.18.1.254 bfd
exit
!
bfd
 profile fast
 exit
exit
`

func TestBFDRemoved(t *testing.T) {
	for _, tc := range []struct {
		name       string
		prev, conf string
		want       []sessionRef
	}{
		{"nothing changed", confWithBFD, confWithBFD, nil},
		{"BFD removed from one neighbor, profile line too",
			confWithBFD, dropLines(confWithBFD, " neighbor 198.18.0.254 bfd", " neighbor 198.18.0.254 bfd profile fast"),
			[]sessionRef{{Addr: "198.18.0.254"}}},
		{"only the profile line removed: BFD stays on",
			confWithBFD, dropLines(confWithBFD, " neighbor 198.18.0.254 bfd profile fast"), nil},
		{"the neighbor removed altogether: nothing to restart",
			confWithBFD, dropLines(confWithBFD, " neighbor 198.18.0.253 remote-as 65000", " neighbor 198.18.0.253 bfd"), nil},
		{"in a VRF",
			confWithBFD, dropLines(confWithBFD, " neighbor 198.18.1.254 bfd"),
			[]sessionRef{{VRF: "red", Addr: "198.18.1.254"}}},
		{"BFD added: nothing", dropLines(confWithBFD, " neighbor 198.18.0.253 bfd"), confWithBFD, nil},
		{"the same address in another instance is another session",
			confWithBFD, dropLines(confWithBFD, " neighbor 198.18.0.253 bfd") + "router bgp 64512 vrf blue\n neighbor 198.18.0.253 remote-as 65000\n neighbor 198.18.0.253 bfd\nexit\n",
			[]sessionRef{{Addr: "198.18.0.253"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := bfdRemoved(tc.prev, tc.conf); !slices.Equal(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func dropLines(conf string, lines ...string) string {
	return strings.Join(slices.DeleteFunc(strings.Split(conf, "\n"), func(l string) bool { return slices.Contains(lines, l) }), "\n")
}

// A session FRR keeps Idle after BFD went down is cleared once BFD is
// removed from it; an Established one is left alone.
func TestReloaderRestartsSessionsAfterBFDRemoval(t *testing.T) {
	for _, tc := range []struct {
		state     string
		wantClear bool
	}{{"Idle", true}, {"Active", true}, {"Established", false}} {
		t.Run(tc.state, func(t *testing.T) {
			f := &fakeFRR{vtyshOut: map[string]string{
				"show bgp neighbors 198.18.0.254 json": `{"198.18.0.254":{"bgpState":"` + tc.state + `"}}`,
			}}
			r := newFakeReloader(t, f, nil)
			r.Submit(confWithBFD)
			if err := flushT(t, r); err != nil {
				t.Fatal(err)
			}
			if n := f.count("vtysh clear bgp 198.18.0.254"); n != 0 {
				t.Fatalf("cleared %d times before BFD was removed", n)
			}
			r.Submit(dropLines(confWithBFD, " neighbor 198.18.0.254 bfd", " neighbor 198.18.0.254 bfd profile fast"))
			if err := flushT(t, r); err != nil {
				t.Fatal(err)
			}
			if got := f.count("vtysh clear bgp 198.18.0.254") == 1; got != tc.wantClear {
				t.Errorf("session %s: cleared %v, want %v (calls %q)", tc.state, got, tc.wantClear, f.calls)
			}
			if n := f.count("vtysh clear bgp 198.18.0.253"); n != 0 {
				t.Errorf("a neighbor that keeps BFD was cleared")
			}
		})
	}
}
