package lab

import (
	"net/netip"
	"slices"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

func TestDNSReply(t *testing.T) {
	services := map[string][]netip.Addr{
		"default/web":   {netip.MustParseAddr("198.19.240.10"), netip.MustParseAddr("2001:db8::a")},
		"olm/catalog":   {netip.MustParseAddr("198.19.240.20")},
		"default/hless": nil,
	}
	lookup := func(ns, name string) ([]netip.Addr, bool) {
		ips, ok := services[ns+"/"+name]
		return ips, ok
	}
	for _, tc := range []struct {
		name  string
		typ   dnsmessage.Type
		rcode dnsmessage.RCode
		auth  bool
		want  []string
	}{
		{"web.default.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true, []string{"198.19.240.10"}},
		{"WEB.Default.SVC.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true, []string{"198.19.240.10"}},
		{"web.default.svc.cluster.local.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, true, []string{"2001:db8::a"}},
		{"catalog.olm.svc.cluster.local.", dnsmessage.TypeAAAA, dnsmessage.RCodeSuccess, true, nil},
		{"catalog.olm.svc.cluster.local.", dnsmessage.TypeTXT, dnsmessage.RCodeSuccess, true, nil},
		{"hless.default.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeSuccess, true, nil},
		// The search path's misses.
		{"catalog.olm.svc.olm.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, true, nil},
		{"catalog.olm.svc.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, true, nil},
		{"nope.default.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, true, nil},
		{"default.svc.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, true, nil},
		{"10-0-0-1.default.pod.cluster.local.", dnsmessage.TypeA, dnsmessage.RCodeNameError, true, nil},
		// Never forwarded.
		{"example.com.", dnsmessage.TypeA, dnsmessage.RCodeRefused, false, nil},
		{"cluster.local.example.", dnsmessage.TypeA, dnsmessage.RCodeRefused, false, nil},
	} {
		t.Run(tc.name+"/"+tc.typ.String(), func(t *testing.T) {
			b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: 4242, RecursionDesired: true})
			_ = b.StartQuestions()
			_ = b.Question(dnsmessage.Question{Name: dnsmessage.MustNewName(tc.name), Type: tc.typ, Class: dnsmessage.ClassINET})
			q, err := b.Finish()
			if err != nil {
				t.Fatal(err)
			}
			reply, err := dnsReply(q, lookup)
			if err != nil {
				t.Fatal(err)
			}
			var m dnsmessage.Message
			if err := m.Unpack(reply); err != nil {
				t.Fatal(err)
			}
			if m.ID != 4242 || !m.Response || m.RCode != tc.rcode || m.Authoritative != tc.auth || len(m.Questions) != 1 {
				t.Fatalf("header %+v, %d questions; want rcode %v authoritative %v", m.Header, len(m.Questions), tc.rcode, tc.auth)
			}
			var got []string
			for _, a := range m.Answers {
				switch r := a.Body.(type) {
				case *dnsmessage.AResource:
					got = append(got, netip.AddrFrom4(r.A).String())
				case *dnsmessage.AAAAResource:
					got = append(got, netip.AddrFrom16(r.AAAA).String())
				}
				if a.Header.TTL != dnsTTL {
					t.Errorf("TTL %d, want %d", a.Header.TTL, dnsTTL)
				}
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("answers %v, want %v", got, tc.want)
			}
		})
	}
}
