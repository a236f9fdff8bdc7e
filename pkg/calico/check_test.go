package calico

import (
	"slices"
	"strings"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/projectcalico/api/pkg/lib/numorstring"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// want is one expected finding: its check, field, objects and words its
// message must hold.
type want struct {
	check   string
	field   string
	objects []string
	words   []string
}

func TestCheck(t *testing.T) {
	const pools = `kind: IPAddressPool
metadata: {name: narrow}
spec: {addresses: [203.0.113.0/25]}
---
kind: IPAddressPool
metadata: {name: v6}
spec: {addresses: [2001:db8:1::/120]}
---
kind: IPAddressPool
metadata: {name: l2only}
spec: {addresses: [198.51.100.0/24]}
---
kind: L2Advertisement
metadata: {name: l2}
spec: {ipAddressPools: [l2only]}
`
	as := func(n uint32) *numorstring.ASNumber { a := numorstring.ASNumber(n); return &a }
	entries := func(cidrs ...string) *v3.BGPConfigurationSpec {
		s := &v3.BGPConfigurationSpec{ASNumber: as(65535)}
		for _, c := range cidrs {
			s.ServiceLoadBalancerIPs = append(s.ServiceLoadBalancerIPs, v3.ServiceLoadBalancerIPBlock{CIDR: c})
		}
		return s
	}
	const adv = `kind: BGPAdvertisement
metadata: {name: adv}
spec: {ipAddressPools: [narrow, v6]}
`
	for _, tc := range []struct {
		name    string
		objects string
		current *v3.BGPConfigurationSpec
		// calicoPeers, when not nil, are Calico's BGPPeers as listed.
		calicoPeers []CalicoBGPPeer
		// currentRead says the default BGPConfiguration was looked for.
		currentRead bool
		services    []*corev1.Service
		want        []want
		// absent are words no finding's message may hold.
		absent []string
	}{
		{
			name:    "what Calico can do: no finding",
			objects: adv + "---\nkind: BGPAdvertisement\nmetadata: {name: agg}\nspec: {ipAddressPools: [narrow], aggregationLength: 25, communities: [\"65535:120\"]}\n",
			current: entries("203.0.113.0/25", "2001:db8:1::/120", "203.0.113.0/26"),
		},
		{
			name:        "Calico BGPPeers listed: one is enough",
			objects:     adv,
			calicoPeers: []CalicoBGPPeer{{Name: "router", Spec: v3.BGPPeerSpec{PeerIP: "198.18.0.1", ASNumber: 65535}}},
		},
		{
			name:        "no Calico BGPPeer: nothing reaches a router",
			objects:     adv + "---\nkind: BGPAdvertisement\nmetadata: {name: nothing}\nspec: {ipAddressPools: [missing]}\n",
			calicoPeers: []CalicoBGPPeer{},
			want: []want{{CheckCalicoBGPPeerMissing, "spec.ipAddressPools", []string{`bgpadvertisement "metallb-system/adv"`, "bgppeer.crd.projectcalico.org"},
				[]string{"narrow, v6", "no bgppeer.crd.projectcalico.org exists"}}},
		},
		{
			name:    "localPref",
			objects: "kind: BGPAdvertisement\nmetadata: {name: pref}\nspec: {ipAddressPools: [narrow], localPref: 100}\n",
			want: []want{{CheckLocalPrefIgnored, "spec.localPref", []string{`bgpadvertisement "metallb-system/pref"`, `bgpconfiguration.crd.projectcalico.org "default"`},
				[]string{"is 100", "LOCAL_PREF"}}},
		},
		{
			name:    "aggregationLength wider than the pool's CIDR",
			objects: "kind: BGPAdvertisement\nmetadata: {name: agg}\nspec: {ipAddressPools: [narrow], aggregationLength: 24}\n",
			want: []want{{CheckAggregationBeyondPool, "spec.aggregationLength",
				[]string{`bgpadvertisement "metallb-system/agg"`, `ipaddresspool "metallb-system/narrow"`, `bgpconfiguration.crd.projectcalico.org "default"`},
				[]string{"is 24", "203.0.113.0/25", "at least 25"}}},
		},
		{
			name: "aggregationLength against the longest CIDR of a range pool",
			objects: "kind: IPAddressPool\nmetadata: {name: range}\nspec: {addresses: [192.0.2.10-192.0.2.20]}\n---\n" +
				"kind: BGPAdvertisement\nmetadata: {name: agg}\nspec: {ipAddressPools: [range], aggregationLength: 30}\n",
			want: []want{{CheckAggregationBeyondPool, "spec.aggregationLength",
				[]string{`bgpadvertisement "metallb-system/agg"`, `ipaddresspool "metallb-system/range"`, `bgpconfiguration.crd.projectcalico.org "default"`},
				[]string{"is 30", "192.0.2.20/32", "at least 32"}}},
		},
		{
			name:    "aggregationLengthV6",
			objects: "kind: BGPAdvertisement\nmetadata: {name: agg6}\nspec: {ipAddressPools: [narrow, v6], aggregationLength: 25, aggregationLengthV6: 64}\n",
			want: []want{{CheckAggregationBeyondPool, "spec.aggregationLengthV6",
				[]string{`bgpadvertisement "metallb-system/agg6"`, `ipaddresspool "metallb-system/v6"`, `bgpconfiguration.crd.projectcalico.org "default"`},
				[]string{"is 64", "2001:db8:1::/120", "at least 120"}}},
		},
		{
			name: "peers, nodeSelectors, serviceSelectors",
			objects: `kind: BGPAdvertisement
metadata: {name: picky}
spec:
  ipAddressPools: [narrow]
  peers: [router]
  nodeSelectors: [{matchLabels: {edge: "true"}}]
  serviceSelectors: [{matchLabels: {app: web}}]
`,
			want: []want{
				{CheckAdvertisementPeers, "spec.peers", []string{`bgpadvertisement "metallb-system/picky"`, `bgpconfiguration.crd.projectcalico.org "default"`}, []string{"router", "Calico BGPPeer"}},
				{CheckAdvertisementNodes, "spec.nodeSelectors", []string{`bgpadvertisement "metallb-system/picky"`, `bgpconfiguration.crd.projectcalico.org "default"`}, []string{"every node"}},
				{CheckAdvertisementServiceSel, "spec.serviceSelectors", []string{`bgpadvertisement "metallb-system/picky"`, `bgpconfiguration.crd.projectcalico.org "default"`}, []string{"every LoadBalancer address"}},
			},
		},
		{
			name: "metallb.io BGPPeers are ignored; the AS Calico uses is compared",
			objects: adv + `---
kind: BGPPeer
metadata: {name: router}
spec: {myASN: 65535, peerASN: 65535, peerAddress: 198.18.0.1}
---
kind: BGPPeer
metadata: {name: other-port}
spec: {myASN: 64512, peerASN: 65000, peerAddress: "2001:db8::1", peerPort: 1179, nodeSelectors: [{matchLabels: {edge: "true"}}]}
`,
			current: &v3.BGPConfigurationSpec{},
			want: []want{
				{CheckBGPPeerIgnored, "spec", []string{`bgppeer "metallb-system/other-port"`, `bgpconfiguration.crd.projectcalico.org "default"`},
					[]string{"peerIP [2001:db8::1]:1179 and asNumber 65000", "nodeSelector"}},
				{CheckBGPPeerIgnored, "spec", []string{`bgppeer "metallb-system/router"`, `bgpconfiguration.crd.projectcalico.org "default"`},
					[]string{"peerIP 198.18.0.1 and asNumber 65535", "spec.myASN is 65535 but Calico's nodes use AS 64512"}},
			},
		},
		{
			name:    "BGPPeer whose AS Calico already uses",
			objects: adv + "---\nkind: BGPPeer\nmetadata: {name: router}\nspec: {myASN: 65535, peerASN: 65535, peerAddress: 198.18.0.1}\n",
			current: entries(),
			want:    []want{{CheckBGPPeerIgnored, "spec", []string{`bgppeer "metallb-system/router"`, `bgpconfiguration.crd.projectcalico.org "default"`}, []string{"peerIP 198.18.0.1 and"}}},
			absent:  []string{"myASN"},
		},
		{
			name:        "a metallb.io BGPPeer whose router has its Calico BGPPeer",
			objects:     adv + "---\nkind: BGPPeer\nmetadata: {name: router}\nspec: {myASN: 65535, peerASN: 65535, peerAddress: 198.18.0.1}\n",
			current:     entries("203.0.113.0/25", "2001:db8:1::/120"),
			calicoPeers: []CalicoBGPPeer{{Name: "tor", Spec: v3.BGPPeerSpec{PeerIP: "198.18.0.1:179", ASNumber: 65535}}},
			want: []want{{CheckBGPPeerIgnored, "spec", []string{`bgppeer "metallb-system/router"`, `bgppeer.crd.projectcalico.org "tor"`},
				[]string{`bgppeer.crd.projectcalico.org "tor" already peers with 198.18.0.1`}}},
		},
		{
			name:        "no default BGPConfiguration",
			objects:     adv,
			currentRead: true,
			want: []want{{CheckBGPConfigurationMissing, "spec.serviceLoadBalancerIPs", []string{`bgpconfiguration.crd.projectcalico.org "default"`, `bgpadvertisement "metallb-system/adv"`},
				[]string{"narrow, v6", "does not exist", "never creates"}}},
		},
		{
			name:        "no default BGPConfiguration, nothing to announce",
			objects:     "kind: BGPAdvertisement\nmetadata: {name: none}\nspec: {ipAddressPools: [missing]}\n",
			currentRead: true,
		},
		{
			name:    "Services with externalTrafficPolicy Local",
			objects: adv,
			current: entries("203.0.113.0/25", "2001:db8:1::/120"),
			services: []*corev1.Service{
				lbService("b", "local", corev1.ServiceExternalTrafficPolicyLocal, "203.0.113.7", "2001:db8:1::7"),
				lbService("a", "cluster", corev1.ServiceExternalTrafficPolicyCluster, "203.0.113.8"),
				lbService("a", "l2", corev1.ServiceExternalTrafficPolicyLocal, "198.51.100.9"),
				lbService("a", "local6", corev1.ServiceExternalTrafficPolicyLocal, "2001:db8:1::9"),
				func() *corev1.Service {
					s := lbService("a", "other-class", corev1.ServiceExternalTrafficPolicyLocal, "203.0.113.9")
					s.Spec.LoadBalancerClass = ptr.To("example.com/other")
					return s
				}(),
			},
			want: []want{
				{CheckServiceLocalHostRoutes, "spec.externalTrafficPolicy",
					[]string{`service "a/local6"`, `ipaddresspool "metallb-system/v6"`, `bgpconfiguration.crd.projectcalico.org "default"`},
					[]string{"2001:db8:1::9/128", "2001:db8:1::/120"}},
				{CheckServiceLocalHostRoutes, "spec.externalTrafficPolicy",
					[]string{`service "b/local"`, `ipaddresspool "metallb-system/narrow"`, `bgpconfiguration.crd.projectcalico.org "default"`},
					[]string{"203.0.113.7/32", "203.0.113.0/25", "host route"}},
			},
		},
		{
			name:    "serviceLoadBalancerIPs entries that do not match the pools",
			objects: adv,
			current: entries("not-a-cidr", "192.0.2.0/24", "203.0.113.0/24", "198.51.100.0/25", "203.0.113.0/25", "2001:db8:1::/121"),
			want: []want{
				{CheckLoadBalancerIPInvalid, "spec.serviceLoadBalancerIPs[0].cidr", []string{`bgpconfiguration.crd.projectcalico.org "default"`},
					[]string{`"not-a-cidr"`}},
				{CheckLoadBalancerIPNoPool, "spec.serviceLoadBalancerIPs[1].cidr", []string{`bgpconfiguration.crd.projectcalico.org "default"`},
					[]string{"192.0.2.0/24", "overlaps no IPAddressPool"}},
				{CheckLoadBalancerIPBeyondPools, "spec.serviceLoadBalancerIPs[2].cidr",
					[]string{`bgpconfiguration.crd.projectcalico.org "default"`, `ipaddresspool "metallb-system/narrow"`},
					[]string{"203.0.113.0/24", "outside every IPAddressPool"}},
				{CheckLoadBalancerIPNotAdvertised, "spec.serviceLoadBalancerIPs[3].cidr",
					[]string{`bgpconfiguration.crd.projectcalico.org "default"`, `ipaddresspool "metallb-system/l2only"`},
					[]string{"198.51.100.0/25", `ipaddresspool "metallb-system/l2only"`}},
			},
		},
		{
			name:    "an entry over two pools and beyond both",
			objects: adv,
			current: entries("192.0.0.0/2"),
			want: []want{
				{CheckLoadBalancerIPBeyondPools, "spec.serviceLoadBalancerIPs[0].cidr",
					[]string{`bgpconfiguration.crd.projectcalico.org "default"`, `ipaddresspool "metallb-system/l2only"`, `ipaddresspool "metallb-system/narrow"`},
					[]string{"192.0.0.0/2"}},
				{CheckLoadBalancerIPNotAdvertised, "spec.serviceLoadBalancerIPs[0].cidr",
					[]string{`bgpconfiguration.crd.projectcalico.org "default"`, `ipaddresspool "metallb-system/l2only"`, `ipaddresspool "metallb-system/narrow"`},
					[]string{"192.0.0.0/2"}},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Check(Inputs{Config: build(t, pools+"---\n"+tc.objects), Namespace: testNS, Current: tc.current, CurrentRead: tc.currentRead,
				CalicoBGPPeers: tc.calicoPeers, CalicoBGPPeersListed: tc.calicoPeers != nil, Services: tc.services})
			if len(got) != len(tc.want) {
				t.Fatalf("got %d findings, want %d:\n%s", len(got), len(tc.want), findingsText(got))
			}
			for i, w := range tc.want {
				f := got[i]
				var objs []string
				for _, o := range f.Objects {
					objs = append(objs, o.String())
				}
				if f.Check != w.check || f.Field != w.field || !slices.Equal(objs, w.objects) {
					t.Errorf("finding %d: %s field %q objects %v, want %s field %q objects %v\n%s", i, f.Check, f.Field, objs, w.check, w.field, w.objects, f.Message)
				}
				for _, word := range w.words {
					if !strings.Contains(f.Message, word) {
						t.Errorf("finding %d (%s): message lacks %q:\n%s", i, f.Check, word, f.Message)
					}
				}
				for _, word := range tc.absent {
					if strings.Contains(f.Message, word) {
						t.Errorf("finding %d (%s): message holds %q:\n%s", i, f.Check, word, f.Message)
					}
				}
				assertWellFormed(t, f)
			}
		})
	}
}

// assertWellFormed: every message names its object and field, and every
// check is listed by Checks with the severity it is reported with.
func assertWellFormed(t *testing.T, f Finding) {
	t.Helper()
	if len(f.Objects) == 0 || !strings.Contains(f.Message, f.Objects[0].String()) {
		t.Errorf("%s: message does not name %v:\n%s", f.Check, f.Objects, f.Message)
	}
	if f.Field == "" || !strings.Contains(f.Message, f.Field) {
		t.Errorf("%s: message does not name field %q:\n%s", f.Check, f.Field, f.Message)
	}
	i := slices.IndexFunc(Checks(), func(c CheckInfo) bool { return c.ID == f.Check })
	if i < 0 || Checks()[i].Severity != f.Severity {
		t.Errorf("%s reported as %s but Checks() lists %+v", f.Check, f.Severity, Checks())
	}
}

func findingsText(fs []Finding) string {
	var b strings.Builder
	for _, f := range fs {
		b.WriteString(f.String() + "\n")
	}
	return b.String()
}

func lbService(ns, name string, etp corev1.ServiceExternalTrafficPolicy, ips ...string) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: etp}}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

func TestCheckNil(t *testing.T) {
	if got := Check(Inputs{}); got != nil {
		t.Errorf("Check without a configuration = %v", got)
	}
}
