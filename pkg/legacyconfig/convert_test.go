package legacyconfig

import (
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
)

func convert(t *testing.T, config string) *Result {
	t.Helper()
	r, err := ConvertBytes([]byte(config), Options{})
	if err != nil {
		t.Fatalf("convert:\n%s\nerror: %v", config, err)
	}
	return r
}

// hasWarning reports whether some warning about kind/name contains every
// fragment.
func hasWarning(r *Result, kind, name string, fragments ...string) bool {
	for _, w := range r.Warnings {
		if w.Kind != kind || w.Name != name {
			continue
		}
		ok := true
		for _, f := range fragments {
			ok = ok && strings.Contains(w.Message, f)
		}
		if ok {
			return true
		}
	}
	return false
}

const peerBase = `peers:
- peer-address: 198.51.100.1
  peer-asn: 64513
  my-asn: 64512
`

func TestPeerFields(t *testing.T) {
	base := v1beta2.BGPPeerSpec{MyASN: 64512, ASN: 64513, Address: "198.51.100.1"}
	tests := []struct {
		name  string
		extra string // lines added to the peer, indented by two spaces
		want  func(*v1beta2.BGPPeerSpec)
		warn  []string // fragments of a warning about peer1
	}{
		{name: "minimal"},
		{name: "peer-port", extra: "peer-port: 1179", want: func(s *v1beta2.BGPPeerSpec) { s.Port = pt[uint16](1179) }},
		{name: "peer-port 179 stays explicit", extra: "peer-port: 179", want: func(s *v1beta2.BGPPeerSpec) { s.Port = pt[uint16](179) }},
		{name: "peer-port 0 is the default", extra: "peer-port: 0"},
		{name: "peer-port above the schema", extra: "peer-port: 20000", want: func(s *v1beta2.BGPPeerSpec) { s.Port = pt[uint16](20000) }, warn: []string{"above 16384"}},
		{name: "source-address", extra: "source-address: 198.51.100.10", want: func(s *v1beta2.BGPPeerSpec) { s.SrcAddress = "198.51.100.10" }},
		{name: "hold-time", extra: "hold-time: 90s", want: func(s *v1beta2.BGPPeerSpec) { s.HoldTime = &metav1.Duration{Duration: 90 * time.Second} }},
		{name: "hold-time 0", extra: "hold-time: 0s", want: func(s *v1beta2.BGPPeerSpec) { s.HoldTime = &metav1.Duration{} }},
		{name: "hold-time truncated like MetalLB", extra: "hold-time: 3500ms", want: func(s *v1beta2.BGPPeerSpec) { s.HoldTime = &metav1.Duration{Duration: 3 * time.Second} }, warn: []string{"whole number of seconds", "3s"}},
		{name: "hold-time too short", extra: "hold-time: 2s", want: func(s *v1beta2.BGPPeerSpec) { s.HoldTime = &metav1.Duration{Duration: 2 * time.Second} }, warn: []string{"neither 0 nor at least 3s"}},
		{name: "keepalive-time", extra: "keepalive-time: 10s", want: func(s *v1beta2.BGPPeerSpec) { s.KeepaliveTime = &metav1.Duration{Duration: 10 * time.Second} }},
		{name: "keepalive not below hold", extra: "hold-time: 9s\n  keepalive-time: 9s", want: func(s *v1beta2.BGPPeerSpec) {
			s.HoldTime = &metav1.Duration{Duration: 9 * time.Second}
			s.KeepaliveTime = &metav1.Duration{Duration: 9 * time.Second}
		}, warn: []string{"not below hold-time"}},
		{name: "keepalive with hold-time 0", extra: "hold-time: 0s\n  keepalive-time: 10s", want: func(s *v1beta2.BGPPeerSpec) {
			s.HoldTime = &metav1.Duration{}
			s.KeepaliveTime = &metav1.Duration{Duration: 10 * time.Second}
		}, warn: []string{"with hold-time 0", "keepalives off"}},
		{name: "keepalive 0 with hold-time 0", extra: "hold-time: 0s\n  keepalive-time: 0s", want: func(s *v1beta2.BGPPeerSpec) {
			s.HoldTime = &metav1.Duration{}
			s.KeepaliveTime = &metav1.Duration{}
		}},
		{name: "router-id", extra: "router-id: 10.0.0.1", want: func(s *v1beta2.BGPPeerSpec) { s.RouterID = "10.0.0.1" }},
		{name: "router-id invalid", extra: "router-id: abcd", want: func(s *v1beta2.BGPPeerSpec) { s.RouterID = "abcd" }, warn: []string{"router-id", "not an IP address"}},
		{name: "match-labels", extra: "node-selectors:\n  - match-labels:\n      rack: r1", want: func(s *v1beta2.BGPPeerSpec) {
			s.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"rack": "r1"}}}
		}},
		{name: "match-expressions", extra: "node-selectors:\n  - match-expressions:\n    - key: zone\n      operator: NotIn\n      values: [a, b]\n    - key: edge\n      operator: Exists", want: func(s *v1beta2.BGPPeerSpec) {
			s.NodeSelectors = []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{
				{Key: "zone", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"a", "b"}},
				{Key: "edge", Operator: metav1.LabelSelectorOpExists},
			}}}
		}},
		{name: "empty node selector selects every node", extra: "node-selectors:\n  - {}", want: func(s *v1beta2.BGPPeerSpec) {
			s.NodeSelectors = []metav1.LabelSelector{{}}
		}},
		{name: "bad operator", extra: "node-selectors:\n  - match-expressions:\n    - key: zone\n      operator: in\n      values: [a]", want: func(s *v1beta2.BGPPeerSpec) {
			s.NodeSelectors = []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "zone", Operator: "in", Values: []string{"a"}}}}}
		}, warn: []string{"node-selectors[0] is not a valid label selector"}},
		{name: "password", extra: "password: s3cret", want: func(s *v1beta2.BGPPeerSpec) { s.Password = "s3cret" }, warn: []string{"spec.passwordSecret"}},
		{name: "password written as a number keeps its text", extra: "password: 0123", want: func(s *v1beta2.BGPPeerSpec) { s.Password = "0123" }, warn: []string{"spec.passwordSecret"}},
		{name: "ebgp-multihop", extra: "ebgp-multihop: true", want: func(s *v1beta2.BGPPeerSpec) { s.EBGPMultiHop = true }},
		{name: "vrf", extra: "vrf: red", want: func(s *v1beta2.BGPPeerSpec) { s.VRFName = "red" }},
		{name: "undefined bfd-profile", extra: "bfd-profile: Missing", want: func(s *v1beta2.BGPPeerSpec) { s.BFDProfile = "missing" }, warn: []string{`bfd-profile "Missing" is not defined`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := peerBase
			if tc.extra != "" {
				cfg += "  " + tc.extra + "\n"
			}
			r := convert(t, cfg)
			if len(r.BGPPeers) != 1 {
				t.Fatalf("got %d peers, want 1", len(r.BGPPeers))
			}
			want := *base.DeepCopy()
			if tc.want != nil {
				tc.want(&want)
			}
			got := r.BGPPeers[0]
			if !equality.Semantic.DeepEqual(got.Spec, want) {
				t.Errorf("spec differs (-got +want):\n%s", diff.Diff(got.Spec, want))
			}
			if got.Name != "peer1" || got.Namespace != DefaultNamespace || got.APIVersion != "metallb.io/v1beta2" || got.Kind != "BGPPeer" {
				t.Errorf("object = %s %s %s/%s", got.APIVersion, got.Kind, got.Namespace, got.Name)
			}
			if tc.warn != nil && !hasWarning(r, kindBGPPeer, "peer1", tc.warn...) {
				t.Errorf("no warning with %q in %v", tc.warn, r.Warnings)
			}
			if tc.warn == nil && len(r.Warnings) > 0 {
				t.Errorf("unexpected warnings: %v", r.Warnings)
			}
		})
	}
}

func TestPeerChecks(t *testing.T) {
	tests := []struct {
		name, config string
		warn         []string
	}{
		{"missing my-asn", "peers:\n- peer-address: 198.51.100.1\n  peer-asn: 1\n", []string{"my-asn is missing"}},
		{"missing peer-asn", "peers:\n- peer-address: 198.51.100.1\n  my-asn: 1\n", []string{"peer-asn is missing"}},
		{"missing address", "peers:\n- peer-asn: 2\n  my-asn: 1\n", []string{`peer-address ""`}},
		{"bad source", "peers:\n- peer-address: 198.51.100.1\n  peer-asn: 2\n  my-asn: 1\n  source-address: x\n", []string{"source-address"}},
		{"multihop on ibgp", "peers:\n- peer-address: 198.51.100.1\n  peer-asn: 1\n  my-asn: 1\n  ebgp-multihop: true\n", []string{"iBGP"}},
		{"password with line break", "peers:\n- peer-address: 198.51.100.1\n  peer-asn: 2\n  my-asn: 1\n  password: \"a\\nb\"\n", []string{"line break"}},
		{"negative keepalive", "peers:\n- peer-address: 198.51.100.1\n  peer-asn: 2\n  my-asn: 1\n  keepalive-time: -3s\n", []string{"negative"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := convert(t, tc.config)
			if !hasWarning(r, kindBGPPeer, "peer1", tc.warn...) {
				t.Errorf("no warning with %q in %v", tc.warn, r.Warnings)
			}
		})
	}
	t.Run("duplicate peers", func(t *testing.T) {
		r := convert(t, peerBase+"- peer-address: 198.51.100.1\n  peer-asn: 64513\n  my-asn: 64512\n")
		if !hasWarning(r, kindBGPPeer, "peer2", `same session as BGPPeer "peer1"`) {
			t.Errorf("no duplicate warning in %v", r.Warnings)
		}
	})
}

func TestPoolFields(t *testing.T) {
	tests := []struct {
		name, pool string
		want       v1beta1.IPAddressPoolSpec
		warn       []string
	}{
		{"addresses", "addresses: [203.0.113.0/24, 198.51.100.1-198.51.100.9, 2001:db8::/64, '2001:db8:1::1 - 2001:db8:1::5']",
			v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24", "198.51.100.1-198.51.100.9", "2001:db8::/64", "2001:db8:1::1 - 2001:db8:1::5"}}, nil},
		{"avoid-buggy-ips", "addresses: [203.0.113.0/24]\n  avoid-buggy-ips: true",
			v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24"}, AvoidBuggyIPs: true}, nil},
		{"auto-assign false", "addresses: [203.0.113.0/24]\n  auto-assign: false",
			v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24"}, AutoAssign: pt(false)}, nil},
		{"auto-assign true stays explicit", "addresses: [203.0.113.0/24]\n  auto-assign: true",
			v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24"}, AutoAssign: pt(true)}, nil},
		{"YAML 1.1 booleans, as MetalLB read them", "addresses: [203.0.113.0/24]\n  auto-assign: no\n  avoid-buggy-ips: yes",
			v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24"}, AutoAssign: pt(false), AvoidBuggyIPs: true}, nil},
		{"no addresses", "addresses: []", v1beta1.IPAddressPoolSpec{Addresses: []string{}}, []string{"no addresses"}},
		{"bad CIDR", "addresses: [203.0.113.0/33]", v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/33"}}, []string{"neither a CIDR nor a start-end range"}},
		{"backwards range", "addresses: [203.0.113.9-203.0.113.1]", v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.9-203.0.113.1"}}, []string{"ends before it starts"}},
		{"mixed range", "addresses: [203.0.113.1-2001:db8::1]", v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.1-2001:db8::1"}}, []string{"mixes IPv4 and IPv6"}},
		{"overlap within the pool", "addresses: [203.0.113.0/24, 203.0.113.10-203.0.113.20]",
			v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24", "203.0.113.10-203.0.113.20"}}, []string{`"203.0.113.10-203.0.113.20" overlaps "203.0.113.0/24" of IPAddressPool "p"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := convert(t, "address-pools:\n- name: p\n  protocol: layer2\n  "+tc.pool+"\n")
			if len(r.IPAddressPools) != 1 {
				t.Fatalf("got %d pools", len(r.IPAddressPools))
			}
			got := r.IPAddressPools[0]
			if !equality.Semantic.DeepEqual(got.Spec, tc.want) {
				t.Errorf("spec differs (-got +want):\n%s", diff.Diff(got.Spec, tc.want))
			}
			if got.Name != "p" || got.Annotations != nil || got.Kind != "IPAddressPool" || got.APIVersion != "metallb.io/v1beta1" {
				t.Errorf("object = %s %s %s %v", got.APIVersion, got.Kind, got.Name, got.Annotations)
			}
			if tc.warn != nil && !hasWarning(r, kindIPAddressPool, "p", tc.warn...) {
				t.Errorf("no warning with %q in %v", tc.warn, r.Warnings)
			}
			if tc.warn == nil && len(r.Warnings) > 0 {
				t.Errorf("unexpected warnings: %v", r.Warnings)
			}
		})
	}
	t.Run("overlap across pools", func(t *testing.T) {
		r := convert(t, "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [203.0.113.0/25]\n- name: b\n  protocol: layer2\n  addresses: [203.0.113.100-203.0.113.130, 2001:db8::/64]\n- name: c\n  protocol: layer2\n  addresses: [2001:db8::8/125]\n")
		if !hasWarning(r, kindIPAddressPool, "b", `"203.0.113.100-203.0.113.130" overlaps "203.0.113.0/25" of IPAddressPool "a"`) ||
			!hasWarning(r, kindIPAddressPool, "c", `"2001:db8::8/125" overlaps "2001:db8::/64" of IPAddressPool "b"`) {
			t.Errorf("missing overlap warnings: %v", r.Warnings)
		}
	})
}

func TestAdvertisements(t *testing.T) {
	tests := []struct {
		name, config string
		bgp          []v1beta1.BGPAdvertisement
		l2           []v1beta1.L2Advertisement
		warn         [][3]string // kind, name, fragment
	}{
		{
			name:   "bgp pool without advertisements gets the default one",
			config: "address-pools:\n- name: p\n  protocol: bgp\n  addresses: [203.0.113.0/24]\n",
			bgp:    []v1beta1.BGPAdvertisement{bgpAdv("p", v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"p"}})},
		},
		{
			name:   "layer2 pool",
			config: "address-pools:\n- name: p\n  protocol: layer2\n  addresses: [203.0.113.0/24]\n",
			l2:     []v1beta1.L2Advertisement{l2Adv("p", "p")},
		},
		{
			name: "every advertisement field, one object each",
			config: `bgp-communities:
  no-advertise: 65535:65282
address-pools:
- name: p
  protocol: bgp
  addresses: [203.0.113.0/24]
  bgp-advertisements:
  - aggregation-length: 24
    aggregation-length-v6: 64
    localpref: 100
    communities: [no-advertise, 64512:1, "large:64512:1:2"]
  - {}
  - localpref: 0
`,
			bgp: []v1beta1.BGPAdvertisement{
				bgpAdv("p", v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"p"}, AggregationLength: pt[int32](24), AggregationLengthV6: pt[int32](64), LocalPref: 100, Communities: []string{"no-advertise", "64512:1", "large:64512:1:2"}}),
				bgpAdv("p-2", v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"p"}}),
				bgpAdv("p-3", v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"p"}}),
			},
		},
		{
			name:   "bad values are kept and reported",
			config: "address-pools:\n- name: p\n  protocol: bgp\n  addresses: [203.0.113.0/24]\n  bgp-advertisements:\n  - aggregation-length: 33\n    aggregation-length-v6: 129\n    communities: [nope, 64512:1, 64512:1]\n",
			bgp: []v1beta1.BGPAdvertisement{
				bgpAdv("p", v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"p"}, AggregationLength: pt[int32](33), AggregationLengthV6: pt[int32](129), Communities: []string{"nope", "64512:1"}}),
			},
			warn: [][3]string{
				{kindBGPAdvertisement, "p", "aggregation-length 33"},
				{kindBGPAdvertisement, "p", "aggregation-length-v6 129"},
				{kindBGPAdvertisement, "p", `community "nope" is neither an alias`},
				{kindBGPAdvertisement, "p", `community "64512:1" is listed twice`},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := convert(t, tc.config)
			if !equality.Semantic.DeepEqual(r.BGPAdvertisements, tc.bgp) {
				t.Errorf("BGPAdvertisements differ (-got +want):\n%s", diff.Diff(r.BGPAdvertisements, tc.bgp))
			}
			if !equality.Semantic.DeepEqual(r.L2Advertisements, tc.l2) {
				t.Errorf("L2Advertisements differ (-got +want):\n%s", diff.Diff(r.L2Advertisements, tc.l2))
			}
			for _, w := range tc.warn {
				if !hasWarning(r, w[0], w[1], w[2]) {
					t.Errorf("no warning %q about %s %s in %v", w[2], w[0], w[1], r.Warnings)
				}
			}
			if tc.warn == nil && len(r.Warnings) > 0 {
				t.Errorf("unexpected warnings: %v", r.Warnings)
			}
		})
	}
}

func bgpAdv(name string, spec v1beta1.BGPAdvertisementSpec) v1beta1.BGPAdvertisement {
	return v1beta1.BGPAdvertisement{
		TypeMeta:   metav1.TypeMeta{APIVersion: "metallb.io/v1beta1", Kind: "BGPAdvertisement"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: DefaultNamespace},
		Spec:       spec,
	}
}

func l2Adv(name, pool string) v1beta1.L2Advertisement {
	return v1beta1.L2Advertisement{
		TypeMeta:   metav1.TypeMeta{APIVersion: "metallb.io/v1beta1", Kind: "L2Advertisement"},
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: DefaultNamespace},
		Spec:       v1beta1.L2AdvertisementSpec{IPAddressPools: []string{pool}},
	}
}

func TestCommunities(t *testing.T) {
	r := convert(t, "bgp-communities:\n  zeta: 64512:9\n  alpha: large:1:2:3\n  bad: 70000:1\n")
	want := []v1beta1.Community{{
		TypeMeta:   metav1.TypeMeta{APIVersion: "metallb.io/v1beta1", Kind: "Community"},
		ObjectMeta: metav1.ObjectMeta{Name: CommunityObjectName, Namespace: DefaultNamespace},
		Spec: v1beta1.CommunitySpec{Communities: []v1beta1.CommunityAlias{
			{Name: "alpha", Value: "large:1:2:3"}, {Name: "bad", Value: "70000:1"}, {Name: "zeta", Value: "64512:9"},
		}},
	}}
	if !equality.Semantic.DeepEqual(r.Communities, want) {
		t.Errorf("communities differ (-got +want):\n%s", diff.Diff(r.Communities, want))
	}
	if !hasWarning(r, kindCommunity, CommunityObjectName, `alias "bad"`, "not a community value") {
		t.Errorf("no warning about the bad alias in %v", r.Warnings)
	}
	if r := convert(t, "peers: []\n"); len(r.Communities) != 0 {
		t.Errorf("a configuration without bgp-communities got %d Community objects", len(r.Communities))
	}
}

func TestBFDProfileFields(t *testing.T) {
	r := convert(t, `bfd-profiles:
- name: all
  receive-interval: 100
  transmit-interval: 110
  detect-multiplier: 4
  echo-interval: 60
  echo-mode: true
  passive-mode: true
  minimum-ttl: 200
- name: none
- name: out-of-range
  receive-interval: 5
  transmit-interval: 70000
  detect-multiplier: 1
  echo-interval: 9
  minimum-ttl: 255
`)
	want := []v1beta1.BFDProfileSpec{
		{ReceiveInterval: pt[uint32](100), TransmitInterval: pt[uint32](110), DetectMultiplier: pt[uint32](4), EchoInterval: pt[uint32](60), EchoMode: pt(true), PassiveMode: pt(true), MinimumTTL: pt[uint32](200)},
		{},
		{ReceiveInterval: pt[uint32](5), TransmitInterval: pt[uint32](70000), DetectMultiplier: pt[uint32](1), EchoInterval: pt[uint32](9), MinimumTTL: pt[uint32](255)},
	}
	if len(r.BFDProfiles) != len(want) {
		t.Fatalf("got %d profiles", len(r.BFDProfiles))
	}
	for i, w := range want {
		if !equality.Semantic.DeepEqual(r.BFDProfiles[i].Spec, w) {
			t.Errorf("profile %d differs (-got +want):\n%s", i, diff.Diff(r.BFDProfiles[i].Spec, w))
		}
	}
	for _, f := range []string{"receive-interval 5", "transmit-interval 70000", "detect-multiplier 1", "echo-interval 9", "minimum-ttl 255"} {
		if !hasWarning(r, kindBFDProfile, "out-of-range", f) {
			t.Errorf("no warning %q in %v", f, r.Warnings)
		}
	}
	for _, w := range r.Warnings {
		if w.Name != "out-of-range" {
			t.Errorf("unexpected warning %v", w)
		}
	}
}

func TestNames(t *testing.T) {
	tests := []struct{ in, want string }{
		{"IPPool-A", "ippool-a"},
		{"pool_b", "pool-b"},
		{"My Pool (v4)", "my-pool-v4"},
		{"-edge-", "edge"},
		{"a..b", "a.b"},
		{"Zürich", "z-rich"},
		{"***", ""},
		{strings.Repeat("x", 300), strings.Repeat("x", 253)},
		{strings.Repeat("x", 252) + "_y", strings.Repeat("x", 252)},
	}
	for _, tc := range tests {
		if got := NormalizeName(tc.in); got != tc.want {
			t.Errorf("NormalizeName(%q) = %q, want %q", tc.in, got, tc.want)
		}
		if tc.want != "" && !validName(tc.want) {
			t.Errorf("NormalizeName(%q) = %q is not a valid name", tc.in, tc.want)
		}
	}
}

func TestRenames(t *testing.T) {
	r := convert(t, `peers:
- name: peer2
  peer-address: 198.18.0.1
  peer-asn: 64513
  my-asn: 64512
- peer-address: 198.18.0.2
  peer-asn: 64513
  my-asn: 64512
- name: Peer2
  peer-address: 198.18.0.3
  peer-asn: 64513
  my-asn: 64512
  bfd-profile: Slow
address-pools:
- name: IPPool-A
  protocol: layer2
  addresses: [203.0.113.0/28]
- name: ippool-a
  protocol: layer2
  addresses: [203.0.113.16/28]
- name: "!!!"
  protocol: bgp
  addresses: [203.0.113.32/28]
  bgp-advertisements: [{localpref: 1}, {localpref: 2}]
- name: pool-3-2
  protocol: bgp
  addresses: [203.0.113.48/28]
- name: pool-3-2
  protocol: bgp
  addresses: [203.0.113.64/28]
bfd-profiles:
- name: Slow
- name: slow
`)
	type obj struct{ name, legacy string }
	meta := func(m metav1.ObjectMeta) obj { return obj{m.Name, m.Annotations[LegacyNameAnnotation]} }
	var pools, peers, bfds, bgpAds, l2Ads []obj
	for _, o := range r.IPAddressPools {
		pools = append(pools, meta(o.ObjectMeta))
	}
	for _, o := range r.BGPPeers {
		peers = append(peers, meta(o.ObjectMeta))
	}
	for _, o := range r.BFDProfiles {
		bfds = append(bfds, meta(o.ObjectMeta))
	}
	for _, o := range r.BGPAdvertisements {
		bgpAds = append(bgpAds, meta(o.ObjectMeta))
	}
	for _, o := range r.L2Advertisements {
		l2Ads = append(l2Ads, meta(o.ObjectMeta))
	}
	check := func(what string, got, want []obj) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	// The pool already called ippool-a keeps its name: Services that ask for
	// it keep getting it.
	check("pools", pools, []obj{{"ippool-a-2", "IPPool-A"}, {"ippool-a", ""}, {"pool-3", "!!!"}, {"pool-3-2", ""}, {"pool-3-2-2", "pool-3-2"}})
	check("peers", peers, []obj{{"peer2", ""}, {"peer2-3", ""}, {"peer2-2", "Peer2"}})
	check("bfd profiles", bfds, []obj{{"slow-2", "Slow"}, {"slow", ""}})
	check("bgp advertisements", bgpAds, []obj{{"pool-3", ""}, {"pool-3-2", ""}, {"pool-3-2-2", ""}, {"pool-3-2-2-2", ""}})
	check("l2 advertisements", l2Ads, []obj{{"ippool-a-2", ""}, {"ippool-a", ""}})
	if got := r.BGPPeers[2].Spec.BFDProfile; got != "slow-2" {
		t.Errorf("peer of BFD profile Slow refers to %q, want slow-2", got)
	}
	for _, w := range []struct{ kind, name, frag string }{
		{kindIPAddressPool, "ippool-a-2", `would be "ippool-a" as a Kubernetes name, but another IPAddressPool already has that name`},
		{kindIPAddressPool, "ippool-a-2", `should now say "ippool-a-2"`},
		{kindIPAddressPool, "pool-3", `"!!!" has no usable Kubernetes name`},
		{kindIPAddressPool, "pool-3-2-2", `repeats the name "pool-3-2"`},
		{kindBGPAdvertisement, "pool-3-2-2", `"pool-3-2" is already taken`},
		{kindBGPPeer, "peer2-3", `"peer2" is already taken`},
		{kindBGPPeer, "peer2-2", `would be "peer2"`},
		{kindBFDProfile, "slow-2", `would be "slow"`},
	} {
		if !hasWarning(r, w.kind, w.name, w.frag) {
			t.Errorf("no warning %q about %s %s in:\n%v", w.frag, w.kind, w.name, r.Warnings)
		}
	}
	for _, o := range r.Objects() {
		if !validName(o.GetName()) {
			t.Errorf("%T name %q is not valid", o, o.GetName())
		}
	}
}

func TestNamespace(t *testing.T) {
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\n  namespace: lb\ndata:\n  config: |\n    address-pools:\n    - name: p\n      protocol: layer2\n      addresses: [203.0.113.0/24]\n"
	tests := []struct {
		name, input, flag, want string
		warn                    bool
	}{
		{"ConfigMap's namespace", cm, "", "lb", false},
		{"flag wins", cm, "other", "other", true},
		{"bare text defaults", "address-pools: []\n", "", DefaultNamespace, false},
		{"bare text with flag", "address-pools: []\n", "x", "x", false},
		{"ConfigMap without namespace", strings.Replace(cm, "  namespace: lb\n", "", 1), "", DefaultNamespace, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ConvertBytes([]byte(tc.input), Options{Namespace: tc.flag})
			if err != nil {
				t.Fatal(err)
			}
			if r.Namespace != tc.want {
				t.Errorf("namespace = %q, want %q", r.Namespace, tc.want)
			}
			for _, o := range r.Objects() {
				if o.GetNamespace() != tc.want {
					t.Errorf("%s is in %q", o.GetName(), o.GetNamespace())
				}
			}
			if got := hasWarning(r, "", "", "not in the ConfigMap's namespace"); got != tc.warn {
				t.Errorf("namespace warning = %v, want %v (%v)", got, tc.warn, r.Warnings)
			}
		})
	}
	if _, err := ConvertBytes([]byte(cm), Options{Namespace: "Bad_NS"}); err == nil {
		t.Error("an invalid --namespace was accepted")
	}
}

func pt[T any](v T) *T { return &v }
