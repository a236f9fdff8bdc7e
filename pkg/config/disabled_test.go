package config

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
)

// One BGPPeer that cannot run (a Secret whose value FRR cannot take, which
// no webhook ever sees; a VRF name admitted while no webhook ran) must not
// stop the others: Build returns the configuration without it, or with its
// last valid version.
func TestRefusedPeerLeavesTheOthers(t *testing.T) {
	good := secret("pw", corev1.SecretTypeBasicAuth, map[string]string{"password": "s3cret"})
	bad := secret("pw", corev1.SecretTypeBasicAuth, map[string]string{"password": "two words"})
	res := func(pw corev1.Secret, vrf string) Resources {
		return Resources{
			Pools:   []v1beta1.IPAddressPool{pool("p", "203.0.113.0/24")},
			Secrets: []corev1.Secret{pw},
			Peers: []v1beta2.BGPPeer{
				peer("a", "198.18.0.254"),
				peer("b", "198.18.0.253", func(s *v1beta2.BGPPeerSpec) { s.PasswordSecret = corev1.SecretReference{Name: "pw"} }),
				peer("c", "198.18.0.252", func(s *v1beta2.BGPPeerSpec) { s.VRFName = vrf }),
			},
		}
	}
	peersOf := func(c *Config) []string { return c.PeerNames }

	before := Build(res(good, "red"), frrOpts)
	if before.Err() != nil {
		t.Fatal(before.Err())
	}

	tests := []struct {
		name      string
		res       Resources
		previous  *Config
		peers     []string
		disabled  []string
		retained  []string
		passwordB string
		vrfC      string
	}{
		{name: "secret turns bad, no previous", res: res(bad, "red"), peers: []string{"a", "c"}, disabled: []string{"b"}},
		{name: "vrf turns bad, no previous", res: res(good, "red:1"), peers: []string{"a", "b"}, disabled: []string{"c"}, passwordB: "s3cret"},
		{name: "both bad, previous kept", res: res(bad, "default"), previous: before.Config, peers: []string{"a", "b", "c"},
			disabled: []string{"b", "c"}, retained: []string{"b", "c"}, passwordB: "s3cret", vrfC: "red"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := frrOpts
			opts.Previous = tc.previous
			r := Build(tc.res, opts)
			if r.Config == nil {
				t.Fatalf("no Config: %v", r.Err())
			}
			if len(r.Errors) == 0 {
				t.Fatal("the bad peer was not reported")
			}
			for _, p := range r.Errors {
				if !slices.Contains(tc.disabled, p.Object.Name) {
					t.Errorf("error about %v: %v", p.Object, p)
				}
			}
			if !slices.Equal(peersOf(r.Config), tc.peers) || !slices.Equal(r.DisabledPeers, tc.disabled) || !slices.Equal(r.RetainedPeers, tc.retained) {
				t.Errorf("peers %v disabled %v retained %v; want %v %v %v", peersOf(r.Config), r.DisabledPeers, r.RetainedPeers, tc.peers, tc.disabled, tc.retained)
			}
			if b := r.Config.Peers["b"]; b != nil && b.Password != tc.passwordB {
				t.Errorf("peer b runs with password %q, want %q", b.Password, tc.passwordB)
			}
			if c := r.Config.Peers["c"]; c != nil && tc.vrfC != "" && c.VRF != tc.vrfC {
				t.Errorf("peer c runs in VRF %q, want %q", c.VRF, tc.vrfC)
			}
		})
	}
}
