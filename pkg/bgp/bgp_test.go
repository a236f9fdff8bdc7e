package bgp

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/lbstack/lbstack/pkg/bfd"
	"github.com/lbstack/lbstack/pkg/community"
)

func comm(t *testing.T, s string) community.Community {
	t.Helper()
	c, err := community.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pfx(s string) netip.Prefix { return netip.MustParsePrefix(s) }

func TestMergeRoutes(t *testing.T) {
	c1, c2, l1 := comm(t, "65535:120"), comm(t, "65000:1"), comm(t, "large:65535:300:100")
	tests := []struct {
		name string
		in   []Route
		ibgp bool
		want []Route
	}{
		{"empty", nil, true, nil},
		{"one route kept", []Route{{Prefix: pfx("203.0.113.1/32")}}, false, []Route{{Prefix: pfx("203.0.113.1/32")}}},
		{"host bits masked", []Route{{Prefix: pfx("203.0.113.7/24")}}, false, []Route{{Prefix: pfx("203.0.113.0/24")}}},
		{
			"same prefix merges communities, sorted, deduplicated",
			[]Route{
				{Prefix: pfx("203.0.113.1/32"), Communities: []community.Community{l1, c1}},
				{Prefix: pfx("203.0.113.1/32"), Communities: []community.Community{c2, c1}},
			},
			false,
			[]Route{{Prefix: pfx("203.0.113.1/32"), Communities: []community.Community{c2, c1, l1}}},
		},
		{
			"aggregate of two addresses is one route",
			[]Route{
				{Prefix: pfx("203.0.113.1/24"), Communities: []community.Community{c1}},
				{Prefix: pfx("203.0.113.9/24"), Communities: []community.Community{c2}},
			},
			false,
			[]Route{{Prefix: pfx("203.0.113.0/24"), Communities: []community.Community{c2, c1}}},
		},
		{
			"localPref kept on iBGP, highest wins",
			[]Route{{Prefix: pfx("203.0.113.1/32"), LocalPref: 100}, {Prefix: pfx("203.0.113.1/32"), LocalPref: 150}},
			true,
			[]Route{{Prefix: pfx("203.0.113.1/32"), LocalPref: 150}},
		},
		{
			"localPref cleared on eBGP",
			[]Route{{Prefix: pfx("203.0.113.1/32"), LocalPref: 150}},
			false,
			[]Route{{Prefix: pfx("203.0.113.1/32")}},
		},
		{
			"sorted IPv4 before IPv6, then address, then length",
			[]Route{{Prefix: pfx("2001:db8::1/128")}, {Prefix: pfx("203.0.113.1/32")}, {Prefix: pfx("198.51.100.0/24")}, {Prefix: pfx("198.51.100.0/25")}},
			false,
			[]Route{{Prefix: pfx("198.51.100.0/24")}, {Prefix: pfx("198.51.100.0/25")}, {Prefix: pfx("203.0.113.1/32")}, {Prefix: pfx("2001:db8::1/128")}},
		},
		{
			"same address, different aggregation: two routes",
			[]Route{{Prefix: pfx("203.0.113.1/32")}, {Prefix: pfx("203.0.113.1/24")}},
			false,
			[]Route{{Prefix: pfx("203.0.113.0/24")}, {Prefix: pfx("203.0.113.1/32")}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MergeRoutes(tt.in, tt.ibgp)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("MergeRoutes:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func session(name string, mutate ...func(*Session)) Session {
	s := Session{Name: name, MyASN: 64512, PeerASN: 64513, PeerAddr: netip.MustParseAddr("198.18.0.254"), Port: 179, RouterID: netip.MustParseAddr("198.18.0.1")}
	for _, m := range mutate {
		m(&s)
	}
	return s
}

func TestSessionIBGPAndFamilies(t *testing.T) {
	v6 := func(s *Session) { s.PeerAddr = netip.MustParseAddr("2001:db8:18::fe") }
	tests := []struct {
		name       string
		s          Session
		ibgp       bool
		localAS    uint32
		v4, v6     bool
		carries4   bool
		carries6   bool
		connectDur time.Duration
	}{
		{"eBGP IPv4", session("a"), false, 64512, true, false, true, false, DefaultConnectTime},
		{"iBGP same AS", session("a", func(s *Session) { s.PeerASN = 64512 }), true, 64512, true, false, true, false, DefaultConnectTime},
		{"localASN equal to peer AS is iBGP", session("a", func(s *Session) { s.LocalASN = 64513 }), true, 64513, true, false, true, false, DefaultConnectTime},
		{"localASN makes it eBGP", session("a", func(s *Session) { s.PeerASN = 64512; s.LocalASN = 65000 }), false, 65000, true, false, true, false, DefaultConnectTime},
		{"dynamic internal", session("a", func(s *Session) { s.PeerASN = 0; s.DynamicASN = "internal" }), true, 64512, true, false, true, false, DefaultConnectTime},
		{"dynamic external", session("a", func(s *Session) { s.PeerASN = 0; s.DynamicASN = "external" }), false, 64512, true, false, true, false, DefaultConnectTime},
		{"IPv6 peer", session("a", v6), false, 64512, false, true, false, true, DefaultConnectTime},
		{"dual stack IPv4 peer", session("a", func(s *Session) { s.DualStack = true }), false, 64512, true, true, true, true, DefaultConnectTime},
		{"connect time set", session("a", func(s *Session) { d := 2 * time.Second; s.ConnectTime = &d }), false, 64512, true, false, true, false, 2 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := tt.s
			if got := s.IBGP(); got != tt.ibgp {
				t.Errorf("IBGP = %v, want %v", got, tt.ibgp)
			}
			if got := s.LocalAS(); got != tt.localAS {
				t.Errorf("LocalAS = %d, want %d", got, tt.localAS)
			}
			if s.CarriesIPv4() != tt.v4 || s.CarriesIPv6() != tt.v6 {
				t.Errorf("CarriesIPv4/6 = %v/%v, want %v/%v", s.CarriesIPv4(), s.CarriesIPv6(), tt.v4, tt.v6)
			}
			if got := s.Carries(pfx("203.0.113.0/24")); got != tt.carries4 {
				t.Errorf("Carries(IPv4) = %v, want %v", got, tt.carries4)
			}
			if got := s.Carries(pfx("2001:db8::/64")); got != tt.carries6 {
				t.Errorf("Carries(IPv6) = %v, want %v", got, tt.carries6)
			}
			if got := s.EffectiveConnectTime(); got != tt.connectDur {
				t.Errorf("EffectiveConnectTime = %s, want %s", got, tt.connectDur)
			}
		})
	}
}

func TestSessionEqual(t *testing.T) {
	d1, d2 := 3*time.Second, 3*time.Second
	base := session("a", func(s *Session) { s.HoldTime = &d1 })
	same := session("a", func(s *Session) { s.HoldTime = &d2 })
	if !base.Equal(&same) {
		t.Fatal("sessions equal in value (different pointers) are not Equal")
	}
	changes := map[string]func(*Session){
		"hold nil":    func(s *Session) { s.HoldTime = nil },
		"password":    func(s *Session) { s.Password = "x" },
		"port":        func(s *Session) { s.Port = 1179 },
		"router id":   func(s *Session) { s.RouterID = netip.MustParseAddr("198.18.0.9") },
		"vrf":         func(s *Session) { s.VRF = "red" },
		"multihop":    func(s *Session) { s.EBGPMultiHop = true },
		"gr":          func(s *Session) { s.GracefulRestart = true },
		"dual stack":  func(s *Session) { s.DualStack = true },
		"connect":     func(s *Session) { s.ConnectTime = &d1 },
		"local asn":   func(s *Session) { s.LocalASN = 1 },
		"source":      func(s *Session) { s.SourceAddr = netip.MustParseAddr("198.18.0.1") },
		"next hop v6": func(s *Session) { s.NextHopIPv6 = netip.MustParseAddr("2001:db8:18::1") },
		"bfd":         func(s *Session) { s.BFDProfile = &bfd.Profile{Name: "p"} },
	}
	for name, m := range changes {
		c := session("a", func(s *Session) { s.HoldTime = &d1 }, m)
		if base.Equal(&c) {
			t.Errorf("change %q: still Equal", name)
		}
	}
}

func TestNormalize(t *testing.T) {
	c1 := comm(t, "65535:120")
	ibgp := func(s *Session) { s.PeerASN = 64512 }
	tests := []struct {
		name    string
		in      DesiredState
		want    DesiredState
		wantErr string
	}{
		{
			name: "sorted sessions, merged routes, empty dropped",
			in: DesiredState{
				Sessions: []Session{session("b"), session("a")},
				Routes: map[string][]Route{
					"a": {{Prefix: pfx("203.0.113.1/32"), Communities: []community.Community{c1}}, {Prefix: pfx("203.0.113.1/32")}},
					"b": {},
				},
			},
			want: DesiredState{
				Sessions: []Session{session("a"), session("b")},
				Routes:   map[string][]Route{"a": {{Prefix: pfx("203.0.113.1/32"), Communities: []community.Community{c1}}}},
			},
		},
		{
			name: "family not carried is dropped, dual stack keeps both",
			in: DesiredState{
				Sessions: []Session{session("v4"), session("ds", func(s *Session) { s.DualStack = true })},
				Routes: map[string][]Route{
					"v4": {{Prefix: pfx("2001:db8::1/128")}, {Prefix: pfx("203.0.113.1/32")}},
					"ds": {{Prefix: pfx("2001:db8::1/128")}, {Prefix: pfx("203.0.113.1/32")}},
				},
			},
			want: DesiredState{
				Sessions: []Session{session("ds", func(s *Session) { s.DualStack = true }), session("v4")},
				Routes: map[string][]Route{
					"v4": {{Prefix: pfx("203.0.113.1/32")}},
					"ds": {{Prefix: pfx("203.0.113.1/32")}, {Prefix: pfx("2001:db8::1/128")}},
				},
			},
		},
		{
			name: "localPref only on iBGP",
			in: DesiredState{
				Sessions: []Session{session("e"), session("i", ibgp)},
				Routes: map[string][]Route{
					"e": {{Prefix: pfx("203.0.113.1/32"), LocalPref: 150}},
					"i": {{Prefix: pfx("203.0.113.1/32"), LocalPref: 150}},
				},
			},
			want: DesiredState{
				Sessions: []Session{session("e"), session("i", ibgp)},
				Routes: map[string][]Route{
					"e": {{Prefix: pfx("203.0.113.1/32")}},
					"i": {{Prefix: pfx("203.0.113.1/32"), LocalPref: 150}},
				},
			},
		},
		{name: "duplicate session", in: DesiredState{Sessions: []Session{session("a"), session("a")}}, wantErr: `session "a" is given 2 times`},
		{name: "routes of unknown session", in: DesiredState{Routes: map[string][]Route{"x": {{Prefix: pfx("203.0.113.1/32")}}}}, wantErr: `routes for session "x"`},
		{name: "no router id", in: DesiredState{Sessions: []Session{session("a", func(s *Session) { s.RouterID = netip.Addr{} })}}, wantErr: "no IPv4 router ID"},
		{name: "IPv6 router id", in: DesiredState{Sessions: []Session{session("a", func(s *Session) { s.RouterID = netip.MustParseAddr("2001:db8::1") })}}, wantErr: "no IPv4 router ID"},
		{name: "no peer AS", in: DesiredState{Sessions: []Session{session("a", func(s *Session) { s.PeerASN = 0 })}}, wantErr: "no peer AS"},
		{name: "bad dynamic", in: DesiredState{Sessions: []Session{session("a", func(s *Session) { s.PeerASN = 0; s.DynamicASN = "x" })}}, wantErr: "dynamicASN"},
		{name: "source family", in: DesiredState{Sessions: []Session{session("a", func(s *Session) { s.SourceAddr = netip.MustParseAddr("2001:db8::1") })}}, wantErr: "different families"},
		{name: "next hop family", in: DesiredState{Sessions: []Session{session("a", func(s *Session) { s.NextHopIPv6 = netip.MustParseAddr("198.18.0.1") })}}, wantErr: "IPv6 next hop"},
		{name: "no port", in: DesiredState{Sessions: []Session{session("a", func(s *Session) { s.Port = 0 })}}, wantErr: "no port"},
		{name: "invalid prefix", in: DesiredState{Sessions: []Session{session("a")}, Routes: map[string][]Route{"a": {{}}}}, wantErr: "invalid prefix"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.Normalize()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Normalize:\n got %+v\nwant %+v", got, tt.want)
			}
		})
	}
}
