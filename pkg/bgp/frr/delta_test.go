package frr

import (
	"net/netip"
	"reflect"
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
				"ip prefix-list lbs-p-10 seq 10 permit 203.0.113.2/32",
				"router bgp 64512", "address-family ipv4 unicast", "network 203.0.113.2/32", "exit-address-family", "exit",
			},
		},
		{
			name: "an insertion shifts the entries after it: full path",
			old:  []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.3/32")}, new: []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.2/32"), plain("203.0.113.3/32")},
		},
		{
			name: "a removal before others shifts them: full path",
			old:  []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.2/32"), plain("203.0.113.3/32")}, new: []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.3/32")},
		},
		{
			name: "a removal: network first, then the entry",
			old:  []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.2/32")}, new: []bgp.Route{plain("203.0.113.1/32")}, ok: true,
			cmds: []string{
				"router bgp 64512", "address-family ipv4 unicast", "no network 203.0.113.2/32", "exit-address-family", "exit",
				"no ip prefix-list lbs-p-10 seq 10 permit 203.0.113.2/32",
			},
		},
		{
			name: "a prefix replaced by a new one at the same place",
			old:  []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.5/32")}, new: []bgp.Route{plain("203.0.113.1/32"), plain("203.0.113.6/32")}, ok: true,
			cmds: []string{
				"ip prefix-list lbs-p-10 seq 10 permit 203.0.113.6/32",
				"router bgp 64512", "address-family ipv4 unicast", "network 203.0.113.6/32", "exit-address-family", "exit",
				"router bgp 64512", "address-family ipv4 unicast", "no network 203.0.113.5/32", "exit-address-family", "exit",
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
	_ = netip.Addr{}
}
