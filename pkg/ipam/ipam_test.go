package ipam

import (
	"errors"
	"math"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/lbstack/lbstack/pkg/iprange"
)

func ip(s string) netip.Addr { return netip.MustParseAddr(s) }

func ips(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = ip(s)
	}
	return out
}

// cidr returns the range covering a prefix.
func cidr(s string) Range {
	p := netip.MustParsePrefix(s).Masked()
	first := p.Addr()
	u := iprange.U128From(first)
	bits := first.BitLen() - p.Bits()
	var span u128
	switch {
	case bits >= 128:
		span = u128{Hi: math.MaxUint64, Lo: math.MaxUint64}
	case bits >= 64:
		span = u128{Hi: 1<<(bits-64) - 1, Lo: math.MaxUint64}
	default:
		span = u128{Hi: 0, Lo: 1<<bits - 1}
	}
	last := u128{Hi: u.Hi + span.Hi, Lo: u.Lo + span.Lo}
	return Range{first, last.Addr(first.Is4())}
}

func rng(a, b string) Range { return Range{ip(a), ip(b)} }

// svc builds a Service; ports are "TCP/53" style.
func svc(key, sharing string, ports ...string) Service {
	s := Service{Key: key, SharingKey: sharing}
	for _, p := range ports {
		proto, num, _ := strings.Cut(p, "/")
		var n int32
		for _, c := range num {
			n = n*10 + int32(c-'0')
		}
		s.Ports = append(s.Ports, Port{Protocol: proto, Port: n})
	}
	return s
}

func v4req(s Service, pools ...string) Request {
	return Request{Service: s, Pools: pools, Families: []Family{IPv4}}
}

func mustAssign(t *testing.T, a *Allocator, req Request, wantPool string, want ...string) {
	t.Helper()
	got, err := a.Assign(req)
	if err != nil {
		t.Fatalf("Assign(%s): %v", req.Service.Key, err)
	}
	if got.Pool != wantPool || !slices.Equal(got.IPs, ips(want...)) {
		t.Fatalf("Assign(%s) = %s %v, want %s %v", req.Service.Key, got.Pool, got.IPs, wantPool, want)
	}
}

func wantErr(t *testing.T, err error, kind error, substr ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", kind)
	}
	if !errors.Is(err, kind) {
		t.Fatalf("error %q is not %v", err, kind)
	}
	for _, s := range substr {
		if !strings.Contains(err.Error(), s) {
			t.Fatalf("error %q does not mention %q", err, s)
		}
	}
}

// seedPools is bgp-pools-sharing/metallb-config.yaml.
func seedPools() []Pool {
	return []Pool{
		{Name: "ippool-a", Ranges: []Range{cidr("198.51.100.0/24")}, AvoidBuggyIPs: true},
		{Name: "ippool-b", Ranges: []Range{cidr("192.0.2.0/24")}, AvoidBuggyIPs: true},
	}
}

func TestLowestFirst(t *testing.T) {
	a := New()
	a.SetPools([]Pool{{Name: "p", Ranges: []Range{rng("198.51.100.10", "198.51.100.11"), rng("198.51.100.1", "198.51.100.2")}}})
	for i, want := range []string{"198.51.100.1", "198.51.100.2", "198.51.100.10", "198.51.100.11"} {
		mustAssign(t, a, v4req(svc("ns/s"+string(rune('a'+i)), ""), "p"), "p", want)
	}
	_, err := a.Assign(v4req(svc("ns/full", ""), "p"))
	wantErr(t, err, ErrPoolExhausted, `"p"`, "IPv4")
	a.Release("ns/sb") // .2
	a.Release("ns/sc") // .10
	mustAssign(t, a, v4req(svc("ns/x", ""), "p"), "p", "198.51.100.2")
	mustAssign(t, a, v4req(svc("ns/y", ""), "p"), "p", "198.51.100.10")
	a.Release("ns/unknown") // no-op
}

func TestAvoidBuggyIPs(t *testing.T) {
	a := New()
	a.SetPools([]Pool{
		{Name: "avoid", Ranges: []Range{rng("198.51.100.254", "198.51.101.1")}, AvoidBuggyIPs: true},
		{Name: "plain", Ranges: []Range{rng("203.0.113.255", "203.0.114.0")}},
		{Name: "v6", Ranges: []Range{rng("2001:db8::ff", "2001:db8::100")}, AvoidBuggyIPs: true},
	})
	if st := a.Stats("avoid"); st.AvailableIPv4 != 2 {
		t.Fatalf("avoid stats %+v, want 2 available (.255 and .0 excluded)", st)
	}
	mustAssign(t, a, v4req(svc("ns/a", ""), "avoid"), "avoid", "198.51.100.254")
	mustAssign(t, a, v4req(svc("ns/b", ""), "avoid"), "avoid", "198.51.101.1")
	_, err := a.Assign(v4req(svc("ns/c", ""), "avoid"))
	wantErr(t, err, ErrPoolExhausted)
	// Without avoidBuggyIPs .255 and .0 are ordinary addresses.
	mustAssign(t, a, v4req(svc("ns/d", ""), "plain"), "plain", "203.0.113.255")
	mustAssign(t, a, Request{Service: svc("ns/e", ""), IPs: ips("203.0.114.0"), Pools: []string{"plain"}}, "plain", "203.0.114.0")
	// Explicit buggy addresses are refused, with the reason.
	a.Release("ns/a")
	_, err = a.Assign(Request{Service: svc("ns/f", ""), IPs: ips("198.51.100.255"), Pools: []string{"avoid"}})
	wantErr(t, err, ErrNotInPool, "198.51.100.255", "avoidBuggyIPs")
	if p, ok := a.PoolOf(ip("198.51.101.0")); ok {
		t.Fatalf("PoolOf(.0) = %s, want none: the pool never assigns it", p)
	}
	// avoidBuggyIPs is IPv4 only.
	mustAssign(t, a, Request{Service: svc("ns/g", ""), Pools: []string{"v6"}, Families: []Family{IPv6}}, "v6", "2001:db8::ff")
	if st := a.Stats("v6"); st.AssignedIPv6 != 1 || st.AvailableIPv6 != 1 {
		t.Fatalf("v6 stats %+v", st)
	}
	// The seed: svc1 gets 198.51.100.1 because .0 is skipped.
	b := New()
	b.SetPools(seedPools())
	mustAssign(t, b, v4req(svc("default/svc1", "", "TCP/80"), "ippool-a"), "ippool-a", "198.51.100.1")
}

func TestExplicitIPs(t *testing.T) {
	pools := []Pool{
		{Name: "a", Ranges: []Range{cidr("198.51.100.0/24"), cidr("2001:db8:a::/64")}},
		{Name: "b", Ranges: []Range{cidr("203.0.113.0/24"), cidr("2001:db8:b::/64")}},
	}
	cases := []struct {
		name     string
		ips      []string
		pools    []string
		fams     []Family
		required bool
		wantPool string
		want     []string
		err      error
		msg      []string
	}{
		{name: "in allowed pool", ips: []string{"198.51.100.7"}, pools: []string{"a"}, fams: []Family{IPv4}, wantPool: "a", want: []string{"198.51.100.7"}},
		{name: "families from IPs", ips: []string{"198.51.100.7"}, pools: []string{"b", "a"}, wantPool: "a", want: []string{"198.51.100.7"}},
		{name: "in no pool", ips: []string{"192.0.2.1"}, pools: []string{"a"}, err: ErrNotInPool, msg: []string{"192.0.2.1", "not in any address pool"}},
		{name: "wrong pool", ips: []string{"203.0.113.5"}, pools: []string{"a"}, err: ErrNotInPool, msg: []string{"203.0.113.5", `"b"`, "may not use", "allowed: a"}},
		{name: "no pool allowed", ips: []string{"203.0.113.5"}, err: ErrNotInPool, msg: []string{"no pool is allowed"}},
		{name: "dual from one pool, IPv4 first", ips: []string{"2001:db8:a::5", "198.51.100.5"}, pools: []string{"a"}, fams: []Family{IPv6, IPv4}, required: true, wantPool: "a", want: []string{"198.51.100.5", "2001:db8:a::5"}},
		{name: "dual from two pools", ips: []string{"198.51.100.5", "2001:db8:b::5"}, pools: []string{"a", "b"}, err: ErrDifferentPools, msg: []string{`"a"`, `"b"`, "one pool"}},
		{name: "two IPv4", ips: []string{"198.51.100.5", "198.51.100.6"}, pools: []string{"a"}, err: ErrInvalidRequest, msg: []string{"one address per family"}},
		{name: "same IP twice", ips: []string{"198.51.100.5", "198.51.100.5"}, pools: []string{"a"}, err: ErrInvalidRequest},
		{name: "family mismatch", ips: []string{"2001:db8:a::5"}, pools: []string{"a"}, fams: []Family{IPv4}, err: ErrInvalidRequest, msg: []string{"IPv6", "not one of the service's IP families"}},
		{name: "require dual with one", ips: []string{"198.51.100.5"}, pools: []string{"a"}, fams: []Family{IPv4, IPv6}, required: true, err: ErrInvalidRequest, msg: []string{"RequireDualStack"}},
		{name: "prefer dual with one", ips: []string{"2001:db8:a::5"}, pools: []string{"a"}, fams: []Family{IPv4, IPv6}, wantPool: "a", want: []string{"2001:db8:a::5"}},
		{name: "4in6 is unmapped", ips: []string{"::ffff:198.51.100.9"}, pools: []string{"a"}, fams: []Family{IPv4}, wantPool: "a", want: []string{"198.51.100.9"}},
		{name: "zero address", ips: []string{}, pools: []string{"a"}, err: ErrInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := New()
			a.SetPools(pools)
			req := Request{Service: svc("ns/s", ""), IPs: ips(tc.ips...), Pools: tc.pools, Families: tc.fams, Required: tc.required}
			if tc.name == "zero address" {
				req.IPs = []netip.Addr{{}}
			}
			got, err := a.Assign(req)
			if tc.err != nil {
				wantErr(t, err, tc.err, tc.msg...)
				if _, held := a.Assigned("ns/s"); held {
					t.Fatal("failed Assign left an assignment")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Pool != tc.wantPool || !slices.Equal(got.IPs, ips(tc.want...)) {
				t.Fatalf("got %s %v, want %s %v", got.Pool, got.IPs, tc.wantPool, tc.want)
			}
		})
	}
}

func TestPoolCandidates(t *testing.T) {
	a := New()
	a.SetPools(append(seedPools(), Pool{Name: "tiny", Ranges: []Range{rng("203.0.113.1", "203.0.113.1")}}))
	// The controller resolves annotations and autoAssign; ipam takes the list.
	mustAssign(t, a, v4req(svc("default/svc1", ""), "ippool-a"), "ippool-a", "198.51.100.1")
	mustAssign(t, a, v4req(svc("default/websvc1", ""), "ippool-a"), "ippool-a", "198.51.100.2")
	// websvc2 asks for ippool-b (autoAssign false) by annotation.
	mustAssign(t, a, v4req(svc("default/websvc2", ""), "ippool-b"), "ippool-b", "192.0.2.1")
	// Preference order, with a fall back when the first is full.
	mustAssign(t, a, v4req(svc("ns/t1", ""), "tiny", "ippool-b"), "tiny", "203.0.113.1")
	mustAssign(t, a, v4req(svc("ns/t2", ""), "tiny", "ippool-b"), "ippool-b", "192.0.2.2")
	// Unknown pools are reported, and skipped when another candidate works.
	_, err := a.Assign(v4req(svc("default/old", ""), "IPPool-B"))
	wantErr(t, err, ErrUnknownPool, `"IPPool-B"`)
	mustAssign(t, a, v4req(svc("ns/t3", ""), "nope", "ippool-a"), "ippool-a", "198.51.100.3")
	// All candidates failing: every reason is in the message and errors.Is.
	_, err = a.Assign(v4req(svc("ns/t4", ""), "nope", "tiny"))
	wantErr(t, err, ErrUnknownPool, `pool "nope" does not exist`, `pool "tiny" has no free IPv4`)
	wantErr(t, err, ErrPoolExhausted)
	_, err = a.Assign(v4req(svc("ns/t5", "")))
	wantErr(t, err, ErrNoPool, "ns/t5")
	// Duplicated candidates are tried once.
	_, err = a.Assign(v4req(svc("ns/t6", ""), "tiny", "tiny"))
	if err == nil || strings.Count(err.Error(), "tiny") != 1 {
		t.Fatalf("error %v", err)
	}
}

// TestSharingSeed reproduces bgp-pools-sharing: three DNS services share
// 198.51.100.10, a fourth with a clashing port is refused.
func TestSharingSeed(t *testing.T) {
	a := New()
	a.SetPools(seedPools())
	key := "key-to-share-198.51.100.10"
	dns := func(name, port string) Request {
		return Request{Service: svc("default/"+name, key, port), IPs: ips("198.51.100.10"), Pools: []string{"ippool-a"}, Families: []Family{IPv4}}
	}
	for _, s := range []struct{ name, port string }{{"dns-service-tcp-53", "TCP/53"}, {"dns-service-udp", "UDP/53"}, {"dns-service-tcp-63", "TCP/63"}} {
		mustAssign(t, a, dns(s.name, s.port), "ippool-a", "198.51.100.10")
	}
	if got := a.Owner(ip("198.51.100.10")); !slices.Equal(got, []string{"default/dns-service-tcp-53", "default/dns-service-tcp-63", "default/dns-service-udp"}) {
		t.Fatalf("Owner = %v", got)
	}
	_, err := a.Assign(dns("dns-service-tcp-53-again", "tcp/53"))
	wantErr(t, err, ErrSharingConflict, "198.51.100.10", "default/dns-service-tcp-53", "TCP/53", "default/dns-service-tcp-53-again")
	var sc *SharingConflictError
	if !errors.As(err, &sc) || sc.Reason != ConflictPort || sc.Holder != "default/dns-service-tcp-53" || sc.Port != (Port{"TCP", 53}) {
		t.Fatalf("conflict details %+v", sc)
	}
	if st := a.Stats("ippool-a"); st.AssignedIPv4 != 1 || st.AvailableIPv4 != 253 {
		t.Fatalf("stats %+v: a shared address counts once", st)
	}
	// Releasing sharers one by one frees the address only at the end.
	a.Release("default/dns-service-tcp-53")
	mustAssign(t, a, dns("dns-service-tcp-53-again", "TCP/53"), "ippool-a", "198.51.100.10")
	for _, k := range []string{"default/dns-service-udp", "default/dns-service-tcp-63"} {
		a.Release(k)
	}
	if got := a.Owner(ip("198.51.100.10")); !slices.Equal(got, []string{"default/dns-service-tcp-53-again"}) {
		t.Fatalf("Owner = %v", got)
	}
	a.Release("default/dns-service-tcp-53-again")
	if got := a.Owner(ip("198.51.100.10")); got != nil || a.Stats("ippool-a").AssignedIPv4 != 0 {
		t.Fatalf("Owner = %v after releasing all", got)
	}
}

func TestSharingRules(t *testing.T) {
	held := ip("198.51.100.10")
	cases := []struct {
		name     string
		first    Service
		second   Service
		reason   ConflictReason
		contains []string
	}{
		{"same key, other ports", svc("ns/a", "k", "TCP/80"), svc("ns/b", "k", "TCP/443"), 0, nil},
		{"same key, same port other protocol", svc("ns/a", "k", "TCP/53"), svc("ns/b", "k", "UDP/53"), 0, nil},
		{"empty protocol is TCP", svc("ns/a", "k", "TCP/53"), svc("ns/b", "k", "/53"), ConflictPort, []string{"TCP/53"}},
		{"port clash", svc("ns/a", "k", "TCP/80", "TCP/443"), svc("ns/b", "k", "TCP/443", "TCP/8443"), ConflictPort, []string{"ns/a", "TCP/443", "ns/b"}},
		{"holder does not share", svc("ns/a", "", "TCP/80"), svc("ns/b", "k", "TCP/443"), ConflictNotShared, []string{"ns/a", "which does not allow sharing"}},
		{"asker does not share", svc("ns/a", "k", "TCP/80"), svc("ns/b", "", "TCP/443"), ConflictNotShared, []string{"ns/b does not allow sharing"}},
		{"key mismatch", svc("ns/a", "k1", "TCP/80"), svc("ns/b", "k2", "TCP/443"), ConflictSharingKey, []string{`"k1"`, `"k2"`}},
		{"backend mismatch", Service{Key: "ns/a", SharingKey: "k", BackendKey: "app=dns", Ports: []Port{{"TCP", 53}}}, Service{Key: "ns/b", SharingKey: "k", BackendKey: "app=web", Ports: []Port{{"UDP", 53}}}, ConflictBackend, []string{"app=dns", "app=web", "identical selectors"}},
		{"local vs cluster", Service{Key: "ns/a", SharingKey: "k", BackendKey: "app=dns"}, Service{Key: "ns/b", SharingKey: "k"}, ConflictBackend, nil},
		{"same backend", Service{Key: "ns/a", SharingKey: "k", BackendKey: "app=dns", Ports: []Port{{"TCP", 53}}}, Service{Key: "ns/b", SharingKey: "k", BackendKey: "app=dns", Ports: []Port{{"UDP", 53}}}, 0, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := New()
			a.SetPools(seedPools())
			req := func(s Service) Request {
				return Request{Service: s, IPs: []netip.Addr{held}, Pools: []string{"ippool-a"}}
			}
			mustAssign(t, a, req(tc.first), "ippool-a", "198.51.100.10")
			_, err := a.Assign(req(tc.second))
			if tc.reason == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantErr(t, err, ErrSharingConflict, tc.contains...)
			var sc *SharingConflictError
			if !errors.As(err, &sc) || sc.Reason != tc.reason {
				t.Fatalf("reason %+v, want %d", sc, tc.reason)
			}
			// A sharing service without explicit IP does not get the
			// address either: it gets the lowest free one.
			r := req(tc.second)
			r.IPs, r.Families = nil, []Family{IPv4}
			mustAssign(t, a, r, "ippool-a", "198.51.100.1")
		})
	}
}

func TestSharingJoinsExisting(t *testing.T) {
	a := New()
	a.SetPools(append(seedPools(), Pool{Name: "v6", Ranges: []Range{cidr("2001:db8::/120")}}))
	mustAssign(t, a, v4req(svc("ns/plain", "", "TCP/80"), "ippool-a"), "ippool-a", "198.51.100.1")
	mustAssign(t, a, Request{Service: svc("ns/web-80", "web", "TCP/80"), IPs: ips("198.51.100.20"), Pools: []string{"ippool-a"}}, "ippool-a", "198.51.100.20")
	mustAssign(t, a, Request{Service: svc("ns/web-81", "web", "TCP/81"), IPs: ips("198.51.100.30"), Pools: []string{"ippool-a"}}, "ippool-a", "198.51.100.30")
	// Lowest address already used under the key and free of clashes,
	// although .2 is the lowest free address.
	mustAssign(t, a, v4req(svc("ns/web-443", "web", "TCP/443"), "ippool-a"), "ippool-a", "198.51.100.20")
	// TCP/80 clashes on .20, so .30 it is.
	mustAssign(t, a, v4req(svc("ns/web-80b", "web", "TCP/80"), "ippool-a"), "ippool-a", "198.51.100.30")
	// TCP/80 and TCP/81 clash on both: lowest free.
	mustAssign(t, a, v4req(svc("ns/web-80-81", "web", "TCP/80", "TCP/81"), "ippool-a"), "ippool-a", "198.51.100.2")
	// Same key in another pool: the candidate pool decides, not the key.
	mustAssign(t, a, v4req(svc("ns/web-b", "web", "TCP/9"), "ippool-b"), "ippool-b", "192.0.2.1")
	// Sharing does not cross families.
	mustAssign(t, a, Request{Service: svc("ns/web-v6", "web", "TCP/9"), Pools: []string{"v6"}, Families: []Family{IPv6}}, "v6", "2001:db8::")
}

func TestDualStack(t *testing.T) {
	pools := []Pool{
		{Name: "v4only", Ranges: []Range{cidr("198.51.100.0/30")}},
		{Name: "v6only", Ranges: []Range{cidr("2001:db8:6::/126")}},
		{Name: "dual", Ranges: []Range{cidr("2001:db8:d::/126"), cidr("203.0.113.0/30")}},
		{Name: "dual-v6-full", Ranges: []Range{rng("203.0.113.100", "203.0.113.100"), rng("2001:db8:f::1", "2001:db8:f::1")}},
	}
	both := []Family{IPv4, IPv6}
	cases := []struct {
		name     string
		pools    []string
		fams     []Family
		required bool
		wantPool string
		want     []string
		err      []error
	}{
		{name: "single v4 skips v6 pool", pools: []string{"v6only", "v4only"}, fams: []Family{IPv4}, wantPool: "v4only", want: []string{"198.51.100.0"}},
		{name: "single v6", pools: []string{"v4only", "dual"}, fams: []Family{IPv6}, wantPool: "dual", want: []string{"2001:db8:d::"}},
		{name: "single v6 unavailable", pools: []string{"v4only"}, fams: []Family{IPv6}, err: []error{ErrFamilyUnavailable}},
		{name: "prefer picks pool with both", pools: []string{"v4only", "dual"}, fams: both, wantPool: "dual", want: []string{"203.0.113.0", "2001:db8:d::"}},
		{name: "order of families does not change IP order", pools: []string{"dual"}, fams: []Family{IPv6, IPv4}, wantPool: "dual", want: []string{"203.0.113.0", "2001:db8:d::"}},
		{name: "prefer falls back to first family", pools: []string{"v6only", "v4only"}, fams: both, wantPool: "v4only", want: []string{"198.51.100.0"}},
		{name: "prefer falls back, v6 first", pools: []string{"v4only", "v6only"}, fams: []Family{IPv6, IPv4}, wantPool: "v6only", want: []string{"2001:db8:6::"}},
		{name: "prefer falls back to second family", pools: []string{"v6only"}, fams: both, wantPool: "v6only", want: []string{"2001:db8:6::"}},
		{name: "prefer with half-full dual pool", pools: []string{"dual-v6-full", "v6only"}, fams: both, wantPool: "dual-v6-full", want: []string{"203.0.113.100"}},
		{name: "require fails without a dual pool", pools: []string{"v4only", "v6only"}, fams: both, required: true, err: []error{ErrFamilyUnavailable}},
		{name: "require skips half-full pool", pools: []string{"dual-v6-full", "dual"}, fams: both, required: true, wantPool: "dual", want: []string{"203.0.113.0", "2001:db8:d::"}},
		{name: "require, all full", pools: []string{"dual-v6-full"}, fams: both, required: true, err: []error{ErrPoolExhausted}},
		{name: "required single family is single", pools: []string{"v4only"}, fams: []Family{IPv4}, required: true, wantPool: "v4only", want: []string{"198.51.100.0"}},
		{name: "no family", pools: []string{"v4only"}, err: []error{ErrInvalidRequest}},
		{name: "bad family", pools: []string{"v4only"}, fams: []Family{5}, err: []error{ErrInvalidRequest}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a := New()
			a.SetPools(pools)
			// Make dual-v6-full's IPv6 side full.
			mustAssign(t, a, Request{Service: svc("ns/filler", ""), IPs: ips("2001:db8:f::1"), Pools: []string{"dual-v6-full"}}, "dual-v6-full", "2001:db8:f::1")
			got, err := a.Assign(Request{Service: svc("ns/s", ""), Pools: tc.pools, Families: tc.fams, Required: tc.required})
			if tc.err != nil {
				for _, e := range tc.err {
					wantErr(t, err, e)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Pool != tc.wantPool || !slices.Equal(got.IPs, ips(tc.want...)) {
				t.Fatalf("got %s %v, want %s %v", got.Pool, got.IPs, tc.wantPool, tc.want)
			}
		})
	}
}

func TestIdempotentAssign(t *testing.T) {
	a := New()
	a.SetPools([]Pool{
		{Name: "a", Ranges: []Range{cidr("198.51.100.0/28")}},
		{Name: "b", Ranges: []Range{cidr("203.0.113.0/28"), cidr("2001:db8::/120")}},
	})
	req := v4req(svc("ns/s", "", "TCP/80"), "a", "b")
	mustAssign(t, a, req, "a", "198.51.100.0")
	mustAssign(t, a, v4req(svc("ns/other", ""), "a"), "a", "198.51.100.1")
	a.Release("ns/other")
	// Same request again: same answer, even though lower addresses exist now
	// for a fresh allocation in other orders.
	mustAssign(t, a, req, "a", "198.51.100.0")
	// Preference order changed but the current pool is still a candidate:
	// no move.
	mustAssign(t, a, v4req(svc("ns/s", "", "TCP/80"), "b", "a"), "a", "198.51.100.0")
	// Ports changed: no move.
	mustAssign(t, a, v4req(svc("ns/s", "", "TCP/8080"), "a"), "a", "198.51.100.0")
	// Explicit request naming what it holds: no move.
	mustAssign(t, a, Request{Service: svc("ns/s", ""), IPs: ips("198.51.100.0"), Pools: []string{"a"}}, "a", "198.51.100.0")
	// Current pool no longer a candidate: moves.
	mustAssign(t, a, v4req(svc("ns/s", ""), "b"), "b", "203.0.113.0")
	if got := a.Owner(ip("198.51.100.0")); got != nil {
		t.Fatalf("old address still owned by %v", got)
	}
	// PreferDualStack holding only IPv4 keeps it (never move to add a family).
	mustAssign(t, a, Request{Service: svc("ns/s", ""), Pools: []string{"b"}, Families: []Family{IPv4, IPv6}}, "b", "203.0.113.0")
	// RequireDualStack does not match a single address: the IPv4 address is
	// kept (it is the lowest free again) and IPv6 is added.
	mustAssign(t, a, Request{Service: svc("ns/s", ""), Pools: []string{"b"}, Families: []Family{IPv4, IPv6}, Required: true}, "b", "203.0.113.0", "2001:db8::")
	// Single stack again: the IPv6 address goes.
	mustAssign(t, a, Request{Service: svc("ns/s", ""), Pools: []string{"b"}, Families: []Family{IPv4}}, "b", "203.0.113.0")
	if a.Stats("b").AssignedIPv6 != 0 {
		t.Fatal("IPv6 address not released")
	}
	// A failing re-Assign changes nothing.
	mustAssign(t, a, Request{Service: svc("ns/x", ""), IPs: ips("198.51.100.9"), Pools: []string{"a"}}, "a", "198.51.100.9")
	_, err := a.Assign(Request{Service: svc("ns/s", ""), IPs: ips("198.51.100.9"), Pools: []string{"a"}})
	wantErr(t, err, ErrSharingConflict, "ns/x")
	if got, ok := a.Assigned("ns/s"); !ok || got.Pool != "b" || !slices.Equal(got.IPs, ips("203.0.113.0")) {
		t.Fatalf("after failed Assign: %v %v", got, ok)
	}
	// Changing the sharing key so that sharing is no longer allowed moves a
	// non-explicit service off the shared address.
	mustAssign(t, a, Request{Service: svc("ns/sh1", "k", "TCP/1"), IPs: ips("198.51.100.5"), Pools: []string{"a"}}, "a", "198.51.100.5")
	mustAssign(t, a, v4req(svc("ns/sh2", "k", "TCP/2"), "a"), "a", "198.51.100.5")
	mustAssign(t, a, v4req(svc("ns/sh2", "k", "TCP/2"), "a"), "a", "198.51.100.5")
	mustAssign(t, a, v4req(svc("ns/sh2", "k", "TCP/1"), "a"), "a", "198.51.100.0")
	// The sole holder of an address may change its key in place.
	mustAssign(t, a, v4req(svc("ns/sh2", "other", "TCP/1"), "a"), "a", "198.51.100.0")
	mustAssign(t, a, v4req(svc("ns/sh3", "other", "TCP/3"), "a"), "a", "198.51.100.0")
	mustAssign(t, a, v4req(svc("ns/sh4", "k", "TCP/3"), "a"), "a", "198.51.100.5")
}

func TestClaimAfterRestart(t *testing.T) {
	key := "key-to-share-198.51.100.10"
	dns := func(name, port string) Request {
		return Request{Service: svc("default/"+name, key, port), Pools: []string{"ippool-a"}, Families: []Family{IPv4}}
	}
	a := New()
	a.SetPools(seedPools())
	// Before the restart: a mix of explicit, shared and automatic.
	for _, s := range []struct{ name, port string }{{"dns-service-tcp-53", "TCP/53"}, {"dns-service-udp", "UDP/53"}, {"dns-service-tcp-63", "TCP/63"}} {
		r := dns(s.name, s.port)
		r.IPs = ips("198.51.100.10")
		mustAssign(t, a, r, "ippool-a", "198.51.100.10")
	}
	mustAssign(t, a, v4req(svc("default/svc1", ""), "ippool-a"), "ippool-a", "198.51.100.1")
	mustAssign(t, a, v4req(svc("default/svc2", ""), "ippool-a"), "ippool-a", "198.51.100.2")
	a.Release("default/svc1")
	mustAssign(t, a, v4req(svc("default/websvc2", ""), "ippool-b"), "ippool-b", "192.0.2.1")

	// Restart: a new allocator, claims in a different order.
	b := New()
	b.SetPools(seedPools())
	claims := []struct {
		req Request
		ips []netip.Addr
	}{
		{v4req(svc("default/websvc2", ""), "ippool-b"), ips("192.0.2.1")},
		{dns("dns-service-tcp-63", "TCP/63"), ips("198.51.100.10")},
		{v4req(svc("default/svc2", ""), "ippool-a"), ips("198.51.100.2")},
		{func() Request { r := dns("dns-service-udp", "UDP/53"); r.IPs = ips("198.51.100.10"); return r }(), ips("198.51.100.10")},
		{dns("dns-service-tcp-53", "TCP/53"), ips("198.51.100.10")},
	}
	for _, c := range claims {
		if err := b.Claim(c.req, c.ips); err != nil {
			t.Fatalf("Claim(%s): %v", c.req.Service.Key, err)
		}
	}
	// Claims are idempotent and Assign keeps them.
	if err := b.Claim(claims[0].req, claims[0].ips); err != nil {
		t.Fatal(err)
	}
	mustAssign(t, b, claims[2].req, "ippool-a", "198.51.100.2")
	// New services get what was free before the restart.
	mustAssign(t, b, v4req(svc("default/svc1", ""), "ippool-a"), "ippool-a", "198.51.100.1")
	mustAssign(t, b, v4req(svc("default/svc3", ""), "ippool-a"), "ippool-a", "198.51.100.3")
	for _, s := range []string{"198.51.100.10", "198.51.100.2", "192.0.2.1"} {
		if !slices.Equal(a.Owner(ip(s)), b.Owner(ip(s))) {
			t.Fatalf("%s: owners %v before, %v after restart", s, a.Owner(ip(s)), b.Owner(ip(s)))
		}
	}

	// Claims that are no longer valid fail and change nothing.
	cases := []struct {
		name string
		req  Request
		ips  []netip.Addr
		err  error
	}{
		{"conflict", v4req(svc("default/intruder", ""), "ippool-a"), ips("198.51.100.10"), ErrSharingConflict},
		{"port clash", dns("dns-4", "TCP/53"), ips("198.51.100.10"), ErrSharingConflict},
		{"outside pools", v4req(svc("default/gone", ""), "ippool-a"), ips("203.0.113.7"), ErrNotInPool},
		{"buggy", v4req(svc("default/gone", ""), "ippool-a"), ips("198.51.100.0"), ErrNotInPool},
		{"pool not allowed any more", v4req(svc("default/moved", ""), "ippool-a"), ips("192.0.2.9"), ErrNotInPool},
		{"differs from spec", Request{Service: svc("default/changed", ""), IPs: ips("198.51.100.50"), Pools: []string{"ippool-a"}}, ips("198.51.100.51"), ErrInvalidRequest},
		{"nothing", v4req(svc("default/none", ""), "ippool-a"), nil, ErrInvalidRequest},
		{"require dual with one", Request{Service: svc("default/d", ""), Pools: []string{"ippool-a"}, Families: []Family{IPv4, IPv6}, Required: true}, ips("198.51.100.60"), ErrInvalidRequest},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := b.Stats("ippool-a")
			wantErr(t, b.Claim(tc.req, tc.ips), tc.err)
			if _, ok := b.Assigned(tc.req.Service.Key); ok || b.Stats("ippool-a") != before {
				t.Fatal("failed Claim changed state")
			}
		})
	}
}

func TestSetPools(t *testing.T) {
	a := New()
	a.SetPools([]Pool{
		{Name: "a", Ranges: []Range{cidr("198.51.100.0/24")}},
		{Name: "b", Ranges: []Range{cidr("203.0.113.0/24"), cidr("2001:db8::/64")}},
		{Name: "c", Ranges: []Range{cidr("192.0.2.0/24")}},
	})
	for i := range 10 {
		mustAssign(t, a, v4req(svc("ns/a"+string(rune('0'+i)), ""), "a"), "a", "198.51.100."+string(rune('0'+i)))
	}
	mustAssign(t, a, Request{Service: svc("ns/dual", "k", "TCP/1"), Pools: []string{"b"}, Families: []Family{IPv4, IPv6}, Required: true}, "b", "203.0.113.0", "2001:db8::")
	mustAssign(t, a, Request{Service: svc("ns/v4-sharer", "k", "TCP/2"), Pools: []string{"b"}, Families: []Family{IPv4}}, "b", "203.0.113.0")
	mustAssign(t, a, v4req(svc("ns/c", ""), "c"), "c", "192.0.2.0")

	// Same pools: nothing happens.
	if ev := a.SetPools([]Pool{
		{Name: "a", Ranges: []Range{cidr("198.51.100.0/24")}},
		{Name: "b", Ranges: []Range{cidr("2001:db8::/64"), cidr("203.0.113.0/24")}},
		{Name: "c", Ranges: []Range{cidr("192.0.2.0/24")}},
	}); ev != nil {
		t.Fatalf("no-op SetPools evicted %v", ev)
	}

	// Shrink a to .3-.255 with avoidBuggyIPs (evicts .0, .1, .2), rename
	// b to b2 and drop its IPv6 range (evicts the dual-stack service but not
	// the one sharing its IPv4 address), remove c (evicts ns/c).
	ev := a.SetPools([]Pool{
		{Name: "a", Ranges: []Range{rng("198.51.100.2", "198.51.100.255")}, AvoidBuggyIPs: true},
		{Name: "b2", Ranges: []Range{cidr("203.0.113.0/24")}},
	})
	if want := []string{"ns/a0", "ns/a1", "ns/c", "ns/dual"}; !slices.Equal(ev, want) {
		t.Fatalf("evicted %v, want %v", ev, want)
	}
	for _, k := range ev {
		if _, ok := a.Assigned(k); ok {
			t.Fatalf("%s still assigned", k)
		}
	}
	if got, _ := a.Assigned("ns/a2"); got.Pool != "a" || !slices.Equal(got.IPs, ips("198.51.100.2")) {
		t.Fatalf("ns/a2: %v", got)
	}
	if got, _ := a.Assigned("ns/v4-sharer"); got.Pool != "b2" || !slices.Equal(got.IPs, ips("203.0.113.0")) {
		t.Fatalf("renamed pool: %v", got)
	}
	if got := a.Owner(ip("203.0.113.0")); !slices.Equal(got, []string{"ns/v4-sharer"}) {
		t.Fatalf("owners %v", got)
	}
	if st := a.Stats("a"); st.AssignedIPv4 != 8 || st.AvailableIPv4 != 254-8-1 {
		t.Fatalf("stats a %+v", st) // .2-.254 usable = 253
	}
	if st := a.Stats("c"); st != (PoolStats{}) {
		t.Fatalf("removed pool has stats %+v", st)
	}
	// The rebuilt structures allocate lowest-first correctly.
	mustAssign(t, a, v4req(svc("ns/new", ""), "a"), "a", "198.51.100.10")
	mustAssign(t, a, Request{Service: svc("ns/new-sharer", "k", "TCP/3"), Pools: []string{"b2"}, Families: []Family{IPv4}}, "b2", "203.0.113.0")
	// The dual service comes back on its own (the controller re-Assigns).
	mustAssign(t, a, Request{Service: svc("ns/dual", "k", "TCP/1"), Pools: []string{"b2"}, Families: []Family{IPv4, IPv6}}, "b2", "203.0.113.0")
	// Splitting a pool in two keeps every owner: all addresses are still
	// inside a pool.
	if ev := a.SetPools([]Pool{
		{Name: "x", Ranges: []Range{rng("198.51.100.2", "198.51.100.5")}},
		{Name: "y", Ranges: []Range{rng("198.51.100.6", "198.51.100.255"), cidr("203.0.113.0/24")}},
	}); ev != nil {
		t.Fatalf("evicted %v", ev)
	}
	if got, _ := a.Assigned("ns/a4"); got.Pool != "x" {
		t.Fatalf("ns/a4 in %q", got.Pool)
	}
	if got, _ := a.Assigned("ns/a7"); got.Pool != "y" {
		t.Fatalf("ns/a7 in %q", got.Pool)
	}
	// Removing all pools evicts everyone, sorted.
	ev = a.SetPools(nil)
	if len(ev) != 12 || !slices.IsSorted(ev) {
		t.Fatalf("evicted %v", ev)
	}
	if len(a.addrs) != 0 || len(a.byKey) != 0 || len(a.services) != 0 {
		t.Fatal("state left behind")
	}
}

func TestSetPoolsDefensive(t *testing.T) {
	pools := []Pool{
		{Name: "a", Ranges: []Range{cidr("198.51.100.0/25"), rng("198.51.100.200", "198.51.100.100"), {First: ip("198.51.100.1")}, rng("198.51.100.1", "2001:db8::1")}},
		{Name: "a", Ranges: []Range{cidr("203.0.113.0/24")}},
		{Name: "", Ranges: []Range{cidr("203.0.113.0/24")}},
		{Name: "b", Ranges: []Range{cidr("198.51.100.64/26"), cidr("198.51.100.128/25"), rng("::ffff:192.0.2.1", "::ffff:192.0.2.2")}},
	}
	err := ValidatePools(pools)
	for _, s := range []string{"ends before it starts", "invalid range", "mixes IPv4 and IPv6", `"a" defined twice`, "empty name", "overlaps"} {
		if err == nil || !strings.Contains(err.Error(), s) {
			t.Fatalf("ValidatePools: %v, want %q", err, s)
		}
	}
	if ValidatePools(seedPools()) != nil {
		t.Fatal("seed pools invalid")
	}
	a := New()
	a.SetPools(pools)
	for addr, want := range map[string]string{"198.51.100.100": "a", "198.51.100.130": "b", "192.0.2.2": "b", "203.0.113.1": ""} {
		got, _ := a.PoolOf(ip(addr))
		if got != want {
			t.Fatalf("PoolOf(%s) = %q want %q", addr, got, want)
		}
	}
	if got, _ := a.PoolOf(ip("::ffff:198.51.100.1")); got != "a" {
		t.Fatalf("4in6 PoolOf = %q", got)
	}
	if _, ok := a.PoolOf(netip.Addr{}); ok {
		t.Fatal("PoolOf(zero)")
	}
}

func TestStats(t *testing.T) {
	a := New()
	a.SetPools([]Pool{
		{Name: "seed", Ranges: []Range{cidr("198.51.100.0/24"), cidr("2001:db8::/64")}, AvoidBuggyIPs: true},
		{Name: "plain", Ranges: []Range{cidr("203.0.113.0/24")}},
		{Name: "multi", Ranges: []Range{cidr("198.51.100.0/32"), rng("192.0.2.250", "192.0.3.5")}, AvoidBuggyIPs: true},
		{Name: "huge", Ranges: []Range{cidr("2001:db8:1::/64"), cidr("2001:db8:2::/64")}},
		{Name: "everything", Ranges: []Range{cidr("4000::/2")}},
		{Name: "just-under", Ranges: []Range{rng("2001:db8:3::", "2001:db8:3::7fff:ffff:ffff:fffe")}},
		{Name: "just-over", Ranges: []Range{rng("2001:db8:4::", "2001:db8:4::7fff:ffff:ffff:ffff")}},
	})
	check := func(pool string, want PoolStats) {
		t.Helper()
		if got := a.Stats(pool); got != want {
			t.Fatalf("Stats(%s) = %+v, want %+v", pool, got, want)
		}
	}
	check("seed", PoolStats{AvailableIPv4: 254, AvailableIPv6: math.MaxInt64})
	check("plain", PoolStats{AvailableIPv4: 256})
	// 198.51.100.0/32 is all buggy (0); 192.0.2.250-192.0.3.5 is 12
	// addresses minus .255 and .0.
	check("multi", PoolStats{AvailableIPv4: 10})
	check("huge", PoolStats{AvailableIPv6: math.MaxInt64})
	check("everything", PoolStats{AvailableIPv6: math.MaxInt64})
	check("just-under", PoolStats{AvailableIPv6: math.MaxInt64}) // 2^63-1 addresses
	check("nope", PoolStats{})
	mustAssign(t, a, Request{Service: svc("ns/u", ""), Pools: []string{"just-under"}, Families: []Family{IPv6}}, "just-under", "2001:db8:3::")
	check("just-under", PoolStats{AssignedIPv6: 1, AvailableIPv6: math.MaxInt64 - 1})
	mustAssign(t, a, Request{Service: svc("ns/o", ""), Pools: []string{"just-over"}, Families: []Family{IPv6}}, "just-over", "2001:db8:4::")
	check("just-over", PoolStats{AssignedIPv6: 1, AvailableIPv6: math.MaxInt64}) // 2^63-1

	mustAssign(t, a, Request{Service: svc("ns/d", "k", "TCP/1"), Pools: []string{"seed"}, Families: []Family{IPv4, IPv6}}, "seed", "198.51.100.1", "2001:db8::")
	mustAssign(t, a, Request{Service: svc("ns/e", "k", "TCP/2"), Pools: []string{"seed"}, Families: []Family{IPv4, IPv6}}, "seed", "198.51.100.1", "2001:db8::")
	check("seed", PoolStats{AssignedIPv4: 1, AssignedIPv6: 1, AvailableIPv4: 253, AvailableIPv6: math.MaxInt64})
	mustAssign(t, a, v4req(svc("ns/m", ""), "multi"), "multi", "192.0.2.250")
	check("multi", PoolStats{AssignedIPv4: 1, AvailableIPv4: 9})
	// An IPv6 /64 costs memory for what is used only: allocate far into
	// it by explicit address and check the run count.
	mustAssign(t, a, Request{Service: svc("ns/far", ""), IPs: ips("2001:db8:1::ffff:ffff:ffff:ffff"), Pools: []string{"huge"}}, "huge", "2001:db8:1::ffff:ffff:ffff:ffff")
	check("huge", PoolStats{AssignedIPv6: 1, AvailableIPv6: math.MaxInt64})
	if n := a.pools["huge"].ranges[v6][0].runs.n; n != 1 {
		t.Fatalf("runs = %d", n)
	}
}

// TestConcurrentUse: the controller's workers call the allocator in
// parallel; run with -race.
func TestConcurrentUse(t *testing.T) {
	a := New()
	a.SetPools([]Pool{{Name: "p", Ranges: []Range{cidr("198.51.100.0/24"), cidr("2001:db8::/64")}}})
	done := make(chan struct{})
	for w := range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for i := range 200 {
				key := "ns/w" + string(rune('0'+w)) + "-" + string(rune('a'+i%20))
				if _, err := a.Assign(Request{Service: Service{Key: key}, Pools: []string{"p"}, Families: []Family{IPv4, IPv6}}); err != nil {
					t.Error(err)
					return
				}
				a.Owner(ip("198.51.100.1"))
				a.Stats("p")
				if i%3 == 0 {
					a.Release(key)
				}
			}
		}()
	}
	for range 4 {
		<-done
	}
	seen := map[netip.Addr]string{}
	for k, rec := range a.services {
		for _, ar := range rec.addrs {
			if o, dup := seen[ar.ip]; dup {
				t.Fatalf("%s given to %s and %s", ar.ip, o, k)
			}
			seen[ar.ip] = k
		}
	}
}
