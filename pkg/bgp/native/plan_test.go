package native

import (
	"net/netip"
	"reflect"
	"testing"
	"time"

	api "github.com/osrg/gobgp/v3/api"

	lbgp "github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
)

func p(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func rt(prefix string, lp uint32, comms ...config.Community) lbgp.Route {
	return lbgp.Route{Prefix: p(prefix), LocalPref: lp, Communities: comms}
}

func ribOf(ps ...string) map[netip.Prefix]bool {
	m := map[netip.Prefix]bool{}
	for _, s := range ps {
		m[p(s)] = true
	}
	return m
}

func ps(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, p(s))
	}
	return out
}

func TestPlanRoutes(t *testing.T) {
	c1 := config.Community{High: 65535, Low: 120}
	a, b := "203.0.113.1/32", "203.0.113.2/32"
	tests := []struct {
		name string
		old  map[string][]lbgp.Route
		new  map[string][]lbgp.Route
		rib  map[netip.Prefix]bool
		want routePlan
	}{
		{name: "nothing", want: routePlan{}},
		{
			name: "first route",
			new:  map[string][]lbgp.Route{"r": {rt(a, 0)}},
			want: routePlan{Add: ps(a), PolicyChanged: true, Refresh: []string{"r"}},
		},
		{
			name: "unchanged: no work at all",
			old:  map[string][]lbgp.Route{"r": {rt(a, 0)}},
			new:  map[string][]lbgp.Route{"r": {rt(a, 0)}},
			rib:  ribOf(a),
			want: routePlan{},
		},
		{
			name: "attribute change: policy and refresh, path untouched",
			old:  map[string][]lbgp.Route{"r": {rt(a, 0)}},
			new:  map[string][]lbgp.Route{"r": {rt(a, 0, c1)}},
			rib:  ribOf(a),
			want: routePlan{PolicyChanged: true, Refresh: []string{"r"}},
		},
		{
			name: "route removed everywhere: withdrawn, not re-added",
			old:  map[string][]lbgp.Route{"r": {rt(a, 0), rt(b, 0)}},
			new:  map[string][]lbgp.Route{"r": {rt(a, 0)}},
			rib:  ribOf(a, b),
			want: routePlan{Withdraw: ps(b), PolicyChanged: true, Refresh: []string{"r"}},
		},
		{
			name: "session loses a prefix another keeps: withdraw and re-add",
			old:  map[string][]lbgp.Route{"r": {rt(a, 0)}, "s": {rt(a, 0)}},
			new:  map[string][]lbgp.Route{"s": {rt(a, 0)}},
			rib:  ribOf(a),
			want: routePlan{Withdraw: ps(a), Add: ps(a), PolicyChanged: true, Refresh: []string{"r"}},
		},
		{
			name: "prefix added for a second session: no withdraw",
			old:  map[string][]lbgp.Route{"s": {rt(a, 0)}},
			new:  map[string][]lbgp.Route{"r": {rt(a, 0)}, "s": {rt(a, 0)}},
			rib:  ribOf(a),
			want: routePlan{PolicyChanged: true, Refresh: []string{"r"}},
		},
		{
			name: "stale RIB path not wanted is withdrawn",
			rib:  ribOf(b),
			want: routePlan{Withdraw: ps(b)},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rib := tt.rib
			if rib == nil {
				rib = map[netip.Prefix]bool{}
			}
			got := planRoutes(tt.old, tt.new, rib)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("plan:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestExportPolicy(t *testing.T) {
	std := config.Community{High: 65535, Low: 120}
	large := config.Community{Type: config.LargeCommunity, Global: 65535, Local1: 300, Local2: 100}
	sessions := map[string]lbgp.Session{
		"ebgp": {Name: "ebgp", MyASN: 64512, PeerASN: 64513, PeerAddr: netip.MustParseAddr("198.18.0.254"), DualStack: true,
			NextHopIPv6: netip.MustParseAddr("2001:db8:18::1")},
		"ibgp":  {Name: "ibgp", MyASN: 64512, PeerASN: 64512, PeerAddr: netip.MustParseAddr("2001:db8:18::fe")},
		"empty": {Name: "empty", MyASN: 64512, PeerASN: 64513, PeerAddr: netip.MustParseAddr("198.18.0.253")},
	}
	routes := map[string][]lbgp.Route{
		"ebgp": {rt("203.0.113.1/32", 0, std, large), rt("203.0.113.2/32", 0, std, large), rt("203.0.113.0/24", 0), rt("2001:db8:1::/64", 0)},
		"ibgp": {rt("2001:db8:1::5/128", 150)},
	}
	sets, pol := exportPolicy(7, sessions, routes)
	type stmt struct {
		neighbor, prefixes    []string
		comms, large, nexthop []string
		localPref             uint32
	}
	setByName := map[string]*api.DefinedSet{}
	for _, s := range sets {
		setByName[s.Name] = s
	}
	var got []stmt
	for _, s := range pol.Statements {
		var st stmt
		st.neighbor = setByName[s.Conditions.NeighborSet.Name].List
		for _, x := range setByName[s.Conditions.PrefixSet.Name].Prefixes {
			st.prefixes = append(st.prefixes, x.IpPrefix)
			if x.MaskLengthMin != x.MaskLengthMax {
				t.Errorf("prefix %s is not matched exactly (%d..%d)", x.IpPrefix, x.MaskLengthMin, x.MaskLengthMax)
			}
		}
		if s.Actions.RouteAction != api.RouteAction_ACCEPT {
			t.Errorf("statement %s does not accept", s.Name)
		}
		if c := s.Actions.Community; c != nil {
			st.comms = c.Communities
		}
		if c := s.Actions.LargeCommunity; c != nil {
			st.large = c.Communities
		}
		if n := s.Actions.Nexthop; n != nil {
			st.nexthop = []string{n.Address}
		}
		if l := s.Actions.LocalPref; l != nil {
			st.localPref = l.Value
		}
		got = append(got, st)
	}
	want := []stmt{
		{neighbor: []string{"198.18.0.254/32"}, prefixes: []string{"203.0.113.1/32", "203.0.113.2/32"}, comms: []string{"65535:120"}, large: []string{"65535:300:100"}},
		{neighbor: []string{"198.18.0.254/32"}, prefixes: []string{"203.0.113.0/24"}},
		{neighbor: []string{"198.18.0.254/32"}, prefixes: []string{"2001:db8:1::/64"}, nexthop: []string{"2001:db8:18::1"}},
		{neighbor: []string{"2001:db8:18::fe/128"}, prefixes: []string{"2001:db8:1::5/128"}, localPref: 150},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("statements:\n got %+v\nwant %+v", got, want)
	}
	if s, p := exportPolicy(1, sessions, nil); s != nil || p != nil {
		t.Fatalf("no routes: want no policy, got %v %v", s, p)
	}
}

func TestPeerFor(t *testing.T) {
	hold, ka, ct := 9e9, 3e9, 2e9
	s := lbgp.Session{Name: "x", MyASN: 64512, LocalASN: 65100, PeerASN: 64513, PeerAddr: netip.MustParseAddr("198.18.0.254"), Port: 1179,
		SourceAddr: netip.MustParseAddr("198.18.0.1"), Password: "pw", EBGPMultiHop: true, GracefulRestart: true, VRF: "red", DualStack: true}
	d := func(f float64) *time.Duration { v := time.Duration(f); return &v }
	s.HoldTime, s.KeepaliveTime, s.ConnectTime = d(hold), d(ka), d(ct)
	got := peerFor(s)
	if got.Conf.NeighborAddress != "198.18.0.254" || got.Conf.PeerAsn != 64513 || got.Conf.LocalAsn != 65100 || got.Conf.AuthPassword != "pw" {
		t.Errorf("conf = %+v", got.Conf)
	}
	if c := got.Timers.Config; c.HoldTime != 9 || c.KeepaliveInterval != 3 || c.ConnectRetry != 2 || c.IdleHoldTimeAfterReset != 2 {
		t.Errorf("timers = %+v", c)
	}
	if tr := got.Transport; tr.RemotePort != 1179 || tr.LocalAddress != "198.18.0.1" || tr.BindInterface != "red" {
		t.Errorf("transport = %+v", tr)
	}
	if !got.EbgpMultihop.GetEnabled() || got.EbgpMultihop.MultihopTtl != 255 || !got.GracefulRestart.GetEnabled() {
		t.Errorf("multihop %+v graceful restart %+v", got.EbgpMultihop, got.GracefulRestart)
	}
	if len(got.AfiSafis) != 2 || got.AfiSafis[0].Config.Family.Afi != api.Family_AFI_IP || got.AfiSafis[1].Config.Family.Afi != api.Family_AFI_IP6 {
		t.Errorf("afi-safis = %v", got.AfiSafis)
	}
	// Defaults: connect retry short, not GoBGP's 120 s; local AS is myASN.
	plain := peerFor(lbgp.Session{Name: "y", MyASN: 64512, PeerASN: 64513, PeerAddr: netip.MustParseAddr("2001:db8:18::fe"), Port: 179})
	if c := plain.Timers.Config; c.ConnectRetry != 5 || c.HoldTime != 0 {
		t.Errorf("default timers = %+v", c)
	}
	if plain.Conf.LocalAsn != 64512 || plain.EbgpMultihop != nil || len(plain.AfiSafis) != 1 || plain.AfiSafis[0].Config.Family.Afi != api.Family_AFI_IP6 {
		t.Errorf("default peer = %+v", plain)
	}
}

// A route change that only announces or withdraws paths edits the current
// policy's prefix sets in place; anything that needs GoBGP to re-send a
// path it keeps (or new statements) replaces the policy.
func TestPolicyDelta(t *testing.T) {
	c1 := config.Community{High: 65535, Low: 120}
	a, b, c := "203.0.113.1/32", "203.0.113.2/32", "203.0.113.3/32"
	sessions := map[string]lbgp.Session{
		"ra": {Name: "ra", PeerAddr: netip.MustParseAddr("198.18.0.254"), MyASN: 64512, PeerASN: 64513},
		"rb": {Name: "rb", PeerAddr: netip.MustParseAddr("198.18.0.253"), MyASN: 64512, PeerASN: 64513},
	}
	old := map[string][]lbgp.Route{"ra": {rt(a, 0), rt(b, 0)}, "rb": {rt(a, 0)}}
	_, _, groups := exportPolicyGroups(1, sessions, old)
	cur := &policyNames{sessions: sessions, groups: groups}
	setA := groups["ra"][routeKey(rt(a, 0))]
	tests := []struct {
		name     string
		sessions map[string]lbgp.Session
		new      map[string][]lbgp.Route
		want     map[string]*setDelta // nil: replace the policy
	}{
		{"a new prefix", sessions, map[string][]lbgp.Route{"ra": {rt(a, 0), rt(b, 0), rt(c, 0)}, "rb": {rt(a, 0)}},
			map[string]*setDelta{setA: {add: ps(c)}}},
		{"a prefix withdrawn", sessions, map[string][]lbgp.Route{"ra": {rt(a, 0)}, "rb": {rt(a, 0)}},
			map[string]*setDelta{setA: {del: ps(b)}}},
		{"a session loses a prefix another keeps", sessions, map[string][]lbgp.Route{"ra": {rt(b, 0)}, "rb": {rt(a, 0)}},
			map[string]*setDelta{setA: {del: ps(a)}}},
		{"a session gains a prefix already announced", sessions, map[string][]lbgp.Route{"ra": {rt(a, 0), rt(b, 0)}, "rb": {rt(a, 0), rt(b, 0)}}, nil},
		{"a prefix kept changes communities", sessions, map[string][]lbgp.Route{"ra": {rt(a, 0), rt(b, 0, c1)}, "rb": {rt(a, 0)}}, nil},
		{"a new attribute group", sessions, map[string][]lbgp.Route{"ra": {rt(a, 0), rt(b, 0), rt(c, 0, c1)}, "rb": {rt(a, 0)}}, nil},
		{"a session loses its last route", sessions, map[string][]lbgp.Route{"ra": {rt(a, 0), rt(b, 0)}}, nil},
		{"a session changed", map[string]lbgp.Session{"ra": sessions["ra"], "rb": {Name: "rb", PeerAddr: netip.MustParseAddr("198.18.0.252"), MyASN: 64512, PeerASN: 64513}},
			map[string][]lbgp.Route{"ra": {rt(a, 0), rt(b, 0), rt(c, 0)}, "rb": {rt(a, 0)}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rib := ribOf(a, b)
			plan := planRoutes(old, tt.new, rib)
			got, ok := policyDelta(cur, tt.sessions, old, tt.new, plan)
			if tt.want == nil {
				if ok {
					t.Fatalf("edited in place (%v), want a new policy", got)
				}
				return
			}
			if !ok {
				t.Fatal("a new policy, want an edit in place")
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("delta %+v, want %+v", got, tt.want)
			}
		})
	}
}
