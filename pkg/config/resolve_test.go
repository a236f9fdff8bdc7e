package config

import (
	"net/netip"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
)

func TestResolve(t *testing.T) {
	pool := func(name string, addrs ...string) v1beta1.IPAddressPool {
		return v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
	}
	peer := func(name string, mutate func(*v1beta2.BGPPeerSpec)) v1beta2.BGPPeer {
		p := v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: v1beta2.BGPPeerSpec{MyASN: 64500, ASN: 64501, Address: "192.0.2.1", VRFName: "red"}}
		if mutate != nil {
			mutate(&p.Spec)
		}
		return p
	}
	adv := func(name string, mutate func(*v1beta1.BGPAdvertisementSpec)) v1beta1.BGPAdvertisement {
		a := v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: name}}
		if mutate != nil {
			mutate(&a.Spec)
		}
		return a
	}
	invalidSel := metav1.LabelSelector{MatchLabels: map[string]string{"bad key!": "x"}}
	validSel := metav1.LabelSelector{MatchLabels: map[string]string{"zone": "a"}}
	zoneA := map[string]string{"zone": "a"}

	tests := []struct {
		name string
		res  Resources
		// valid: Resolve returns Build's Config.
		valid bool
		check func(t *testing.T, c *Config)
	}{
		{
			name:  "valid configuration is Build's",
			res:   Resources{Pools: []v1beta1.IPAddressPool{pool("a", "198.51.100.0/24")}, Peers: []v1beta2.BGPPeer{peer("p", nil)}},
			valid: true,
		},
		{
			name: "pool keeps its valid ranges",
			res:  Resources{Pools: []v1beta1.IPAddressPool{pool("a", "bogus", "198.51.100.0/24")}},
			check: func(t *testing.T, c *Config) {
				a := netip.MustParseAddr("198.51.100.7")
				if !c.Pools["a"].Contains(a) || c.PoolFor(a) != c.Pools["a"] {
					t.Errorf("pool a does not hold %s", a)
				}
			},
		},
		{
			name: "refused peer stays",
			res: Resources{Peers: []v1beta2.BGPPeer{peer("p", func(s *v1beta2.BGPPeerSpec) {
				s.HoldTime = &metav1.Duration{Duration: time.Second}
			})}},
			check: func(t *testing.T, c *Config) {
				p := c.Peers["p"]
				if p == nil || p.VRF != "red" || p.HoldTime != nil || !slices.Equal(c.PeerNames, []string{"p"}) {
					t.Errorf("peer p = %+v, names %v", p, c.PeerNames)
				}
			},
		},
		{
			name: "invalid peer node selector selects nothing",
			res: Resources{Peers: []v1beta2.BGPPeer{peer("p", func(s *v1beta2.BGPPeerSpec) {
				s.NodeSelectors = []metav1.LabelSelector{invalidSel}
			})}},
			check: func(t *testing.T, c *Config) {
				if c.Peers["p"].MatchesNode(zoneA) || c.Peers["p"].MatchesNode(nil) {
					t.Error("an invalid node selector matches")
				}
			},
		},
		{
			name: "advertisement's invalid selectors select nothing, its valid ones still select",
			res: Resources{
				Pools: []v1beta1.IPAddressPool{pool("a", "198.51.100.0/24")},
				BGPAdvs: []v1beta1.BGPAdvertisement{adv("x", func(s *v1beta1.BGPAdvertisementSpec) {
					s.IPAddressPools = []string{"a"}
					s.NodeSelectors = []metav1.LabelSelector{invalidSel, validSel}
					s.ServiceSelectors = []metav1.LabelSelector{invalidSel}
				})},
			},
			check: func(t *testing.T, c *Config) {
				a := c.BGPAdvs[0]
				if !a.MatchesNode(zoneA) || a.MatchesNode(nil) {
					t.Error("node selectors: want zone=a only")
				}
				if a.MatchesService(nil) || a.MatchesService(zoneA) {
					t.Error("an invalid service selector matches")
				}
				if got := c.Pools["a"].BGPAdvertisements; len(got) != 1 || got[0] != a {
					t.Errorf("pool a advertisements = %v", got)
				}
			},
		},
		{
			name: "advertisement's invalid pool selector selects no pool",
			res: Resources{
				Pools: []v1beta1.IPAddressPool{pool("a", "198.51.100.0/24")},
				BGPAdvs: []v1beta1.BGPAdvertisement{adv("x", func(s *v1beta1.BGPAdvertisementSpec) {
					s.IPAddressPoolSelectors = []metav1.LabelSelector{invalidSel}
				})},
			},
			check: func(t *testing.T, c *Config) {
				if len(c.BGPAdvs[0].Pools) != 0 {
					t.Errorf("pools = %v", c.BGPAdvs[0].Pools)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, r := Resolve(tc.res, Options{})
			if c == nil {
				t.Fatal("no configuration")
			}
			if tc.valid != (len(r.Errors) == 0) {
				t.Errorf("errors = %v", r.Errors)
			}
			if tc.valid && c != r.Config {
				t.Error("a valid configuration is not Build's")
			}
			if want := Build(tc.res, Options{}); ProblemList(r.Errors).Error() != ProblemList(want.Errors).Error() {
				t.Errorf("Result differs from Build's:\n%v\n%v", r.Errors, want.Errors)
			}
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}
