package frr

import (
	"net/netip"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
)

func TestRouteDelta(t *testing.T) {
	s := bgp.Session{Name: "p", MyASN: 64512, PeerASN: 64513, PeerAddr: addr("198.18.0.254"), Port: 179, RouterID: addr("198.18.0.1")}
	render := func(t *testing.T, routes ...bgp.Route) string {
		t.Helper()
		c, err := Render(bgp.DesiredState{Sessions: []bgp.Session{s}, Routes: map[string][]bgp.Route{"p": routes}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	plain := func(p string) bgp.Route { return bgp.Route{Prefix: pfx(p)} }
	tagged := func(p string) bgp.Route {
		return bgp.Route{Prefix: pfx(p), Communities: []config.Community{std(65535, 120)}}
	}
	seq := func(p string) string { return strconv.FormatUint(uint64(homeSeq(pfx(p))), 10) }
	for _, tc := range []struct {
		name     string
		old, new []bgp.Route
		ok       bool
		cmds     []string
	}{
		{name: "identical", old: []bgp.Route{plain("203.0.113.1/32")}, new: []bgp.Route{plain("203.0.113.1/32")}, ok: true},
		{
			name: "a prefix added at the end of its group",
			old:  []bgp.Route{plain("203.0.113.1/32")}, new: []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.2/32")}, ok: true,
			cmds: []string{
				"ip prefix-list lbs-p-10 seq " + seq("203.0.113.2/32") + " permit 203.0.113.2/32",
				"router bgp 64512", "address-family ipv4 unicast", "network 203.0.113.2/32", "exit-address-family", "exit",
			},
		},
		{
			// Sequence numbers are the prefixes' own: nothing shifts.
			name: "an insertion before others moves none of them",
			old:  []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.3/32")}, new: []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.2/32"), plain("203.0.113.3/32")}, ok: true,
			cmds: []string{
				"ip prefix-list lbs-p-10 seq " + seq("203.0.113.2/32") + " permit 203.0.113.2/32",
				"router bgp 64512", "address-family ipv4 unicast", "network 203.0.113.2/32", "exit-address-family", "exit",
			},
		},
		{
			name: "a removal before others moves none of them",
			old:  []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.2/32"), plain("203.0.113.3/32")}, new: []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.3/32")}, ok: true,
			cmds: []string{
				"router bgp 64512", "address-family ipv4 unicast", "no network 203.0.113.2/32", "exit-address-family", "exit",
				"no ip prefix-list lbs-p-10 seq " + seq("203.0.113.2/32") + " permit 203.0.113.2/32",
			},
		},
		{
			name: "a removal: network first, then the entry",
			old:  []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.2/32")}, new: []bgp.Route{plain("203.0.113.1/32")}, ok: true,
			cmds: []string{
				"router bgp 64512", "address-family ipv4 unicast", "no network 203.0.113.2/32", "exit-address-family", "exit",
				"no ip prefix-list lbs-p-10 seq " + seq("203.0.113.2/32") + " permit 203.0.113.2/32",
			},
		},
		{
			name: "a prefix replaced by a new one",
			old:  []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.5/32")}, new: []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.6/32")}, ok: true,
			cmds: []string{
				"ip prefix-list lbs-p-10 seq " + seq("203.0.113.6/32") + " permit 203.0.113.6/32",
				"router bgp 64512", "address-family ipv4 unicast", "network 203.0.113.6/32", "exit-address-family", "exit",
				"router bgp 64512", "address-family ipv4 unicast", "no network 203.0.113.5/32", "exit-address-family", "exit",
				"no ip prefix-list lbs-p-10 seq " + seq("203.0.113.5/32") + " permit 203.0.113.5/32",
			},
		},
		{name: "a new attribute group is not route-only", old: []bgp.Route{plain("203.0.113.1/32")}, new: []bgp.Route{plain("203.0.113.1/32"), tagged("203.0.113.2/32")}},
		{name: "the last route of a group going is not route-only", old: []bgp.Route{plain("203.0.113.1/32"), tagged("203.0.113.2/32")}, new: []bgp.Route{plain("203.0.113.1/32")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cmds, ok := routeDelta(render(t, tc.old...), render(t, tc.new...))
			if ok != tc.ok || !reflect.DeepEqual(cmds, tc.cmds) {
				t.Errorf("routeDelta = %q, %v; want %q, %v", cmds, ok, tc.cmds, tc.ok)
			}
		})
	}
	// A session change is never route-only.
	other := s
	other.HoldTime = dur(9e9)
	a := render(t, plain("203.0.113.1/32"))
	b, _ := Render(bgp.DesiredState{Sessions: []bgp.Session{other}, Routes: map[string][]bgp.Route{"p": {plain("203.0.113.1/32")}}}, Options{})
	if _, ok := routeDelta(a, b); ok {
		t.Errorf("a timer change went the fast path")
	}

	// Two prefixes with the same home: the second in prefix order takes
	// the next number; inserting the first moves the second, which only
	// the full path can do.
	a1, a2 := collidingPrefixes(t)
	one, two := render(t, plain(a2.String())), render(t, plain(a1.String()), plain(a2.String()))
	if !strings.Contains(two, " seq "+strconv.FormatUint(uint64(nextSeq(homeSeq(a1))), 10)+" permit "+a2.String()) {
		t.Errorf("the second of two colliding prefixes is not at the next number:\n%s", two)
	}
	if cmds, ok := routeDelta(one, two); ok {
		t.Errorf("an entry moved by a collision went the fast path: %q", cmds)
	}
}

// crowdedSeqs makes homeSeq pick one of n numbers (the last n/2 and the
// first: probes wrap) until the test ends, so that prefixes collide.
func crowdedSeqs(t *testing.T, n uint32) {
	homeSeq = func(p netip.Prefix) uint32 {
		s := maxPrefixSeq - n/2 + 1
		for range fnvSeq(p) % n {
			s = nextSeq(s)
		}
		return s
	}
	t.Cleanup(func() { homeSeq = fnvSeq })
}

// collidingPrefixes makes prefixes collide (crowdedSeqs) and returns two
// of 198.18.0.0/24, sorted, with the same home.
func collidingPrefixes(t *testing.T) (netip.Prefix, netip.Prefix) {
	t.Helper()
	crowdedSeqs(t, 4)
	seen := map[uint32]netip.Prefix{}
	for i := range 256 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, 0, byte(i)}), 32)
		if q, ok := seen[homeSeq(p)]; ok {
			return q, p
		}
		seen[homeSeq(p)] = p
	}
	t.Fatal("no collision")
	return netip.Prefix{}, netip.Prefix{}
}

func TestPrefixSeqs(t *testing.T) {
	for _, p := range []string{"0.0.0.0/0", "255.255.255.255/32", "2001:db8::/32", "203.0.113.7/32"} {
		if s := homeSeq(pfx(p)); s < minPrefixSeq || s > maxPrefixSeq {
			t.Errorf("homeSeq(%s) = %d, outside FRR's range", p, s)
		}
	}
	if nextSeq(maxPrefixSeq) != minPrefixSeq || nextSeq(7) != 8 {
		t.Error("nextSeq does not wrap")
	}
	// One prefix coming or going moves no other entry.
	var ps []netip.Prefix
	for i := range 300 {
		ps = append(ps, netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(i)}), 32-i/256))
	}
	slices.SortFunc(ps, bgp.ComparePrefixes)
	ps = slices.Compact(ps)
	all := prefixSeqs(ps)
	for i := range ps {
		without := prefixSeqs(slices.Delete(slices.Clone(ps), i, i+1))
		if !slices.Equal(without, slices.Delete(slices.Clone(all), i, i+1)) {
			t.Fatalf("removing %s moved other entries", ps[i])
		}
	}
	a1, a2 := collidingPrefixes(t)
	if got := prefixSeqs([]netip.Prefix{a1, a2}); got[0] != homeSeq(a1) || got[1] != nextSeq(homeSeq(a1)) {
		t.Errorf("colliding %s and %s: %v", a1, a2, got)
	}
	// Crowded: every number distinct and in range; probes wrap.
	got := prefixSeqs(ps[:6])
	slices.Sort(got)
	if want := []uint32{1, 2, 3, 4, maxPrefixSeq - 1, maxPrefixSeq}; !slices.Equal(got, want) {
		t.Errorf("six prefixes on four homes: %v, want %v", got, want)
	}
}
