package envtest_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/test/envtest"
)

// warningCollector records the admission warnings the API server returns.
type warningCollector struct {
	mu   sync.Mutex
	msgs []string
}

func (w *warningCollector) HandleWarningHeader(_ int, _ string, text string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.msgs = append(w.msgs, text)
}

func (w *warningCollector) take() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := w.msgs
	w.msgs = nil
	return m
}

func warningClient(t *testing.T) (client.Client, *warningCollector) {
	t.Helper()
	w := &warningCollector{}
	cfg := rest.CopyConfig(env.Config)
	cfg.WarningHandler = w
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

func decode(t *testing.T, manifest string) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal([]byte(manifest), &u.Object); err != nil {
		t.Fatalf("bad test manifest: %v\n%s", err, manifest)
	}
	if u.GetNamespace() == "" {
		u.SetNamespace(envtest.Namespace)
	}
	return u
}

const (
	poolA = `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: a}, spec: {addresses: [203.0.113.128/25]}}`
	poolR = `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: r}, spec: {addresses: [203.0.113.1-203.0.113.100]}}`
	peerI = `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: ibgp}, spec: {myASN: 64512, peerASN: 64512, peerAddress: 198.18.0.254}}`
	peerE = `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: ebgp}, spec: {myASN: 64512, peerASN: 64513, peerAddress: 198.18.0.253}}`
)

type admissionCase struct {
	name  string
	setup []string // created first, must be accepted
	obj   string   // the object under test
	deny  bool
	// want are substrings of the denial (deny) or of one warning (!deny);
	// every denial must also name the object and the field.
	want []string
}

// TestAdmissionRules runs every rule through the real API server calling
// the real webhook over TLS: a refused case whose message names object and
// field, and an accepted neighbour.
func TestAdmissionRules(t *testing.T) {
	cases := []admissionCase{
		// Pools.
		{name: "pool entry not an address", obj: `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: p}, spec: {addresses: [203.0.113.0/24, "not-an-ip"]}}`,
			deny: true, want: []string{`ipaddresspool "p"`, "spec.addresses[1]", "not-an-ip"}},
		{name: "pool range start after end", obj: `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: p}, spec: {addresses: [203.0.113.20-203.0.113.10]}}`,
			deny: true, want: []string{`ipaddresspool "p"`, "spec.addresses[0]"}},
		{name: "pool range mixing families", obj: `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: p}, spec: {addresses: ["203.0.113.1-2001:db8::1"]}}`,
			deny: true, want: []string{`ipaddresspool "p"`, "spec.addresses[0]"}},
		{name: "pool range accepted (neighbour)", obj: `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: p}, spec: {addresses: [203.0.113.10-203.0.113.20, "2001:db8::1-2001:db8::ff"]}}`},
		{name: "pools overlap", setup: []string{poolA}, obj: `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: b}, spec: {addresses: [203.0.113.0/24]}}`,
			deny: true, want: []string{`ipaddresspool "b"`, "spec.addresses[0]", "203.0.113.0/24 overlaps 203.0.113.128/25", `ipaddresspool "a"`}},
		{name: "adjacent pools accepted (neighbour)", setup: []string{poolA}, obj: `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: b}, spec: {addresses: [203.0.113.0/25]}}`},
		{name: "overlap inside one pool", obj: `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: p}, spec: {addresses: [203.0.113.0/24, 203.0.113.7/32]}}`,
			deny: true, want: []string{`ipaddresspool "p"`, "spec.addresses[", "of the same pool"}},
		{name: "serviceAllocation namespace twice", obj: `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: p}, spec: {addresses: [203.0.113.0/24], serviceAllocation: {namespaces: [web, web]}}}`,
			deny: true, want: []string{`ipaddresspool "p"`, "spec.serviceAllocation.namespaces[1]"}},
		{name: "serviceAllocation accepted (neighbour)", obj: `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: p}, spec: {addresses: [203.0.113.0/24], serviceAllocation: {priority: 10, namespaces: [web, dns]}}}`},
		{name: "pool outside the stack's namespace", obj: `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: p, namespace: default}, spec: {addresses: [203.0.113.0/24]}}`,
			deny: true, want: []string{`ipaddresspool "p"`, "metadata.namespace", "metallb-system"}},

		// BGPAdvertisement.
		{name: "aggregate wider than a range pool: accepted with a warning", setup: []string{poolR},
			obj:  `{apiVersion: metallb.io/v1beta1, kind: BGPAdvertisement, metadata: {name: agg}, spec: {ipAddressPools: [r], aggregationLength: 24}}`,
			want: []string{`bgpadvertisement "agg"`, "spec.aggregationLength", "203.0.113.0", "outside the pool"}},
		{name: "aggregate covering another pool", setup: []string{poolR, poolA},
			obj:  `{apiVersion: metallb.io/v1beta1, kind: BGPAdvertisement, metadata: {name: agg}, spec: {ipAddressPools: [r], aggregationLength: 24}}`,
			deny: true, want: []string{`bgpadvertisement "agg"`, "spec.aggregationLength", `ipaddresspool "a"`}},
		{name: "pool listed twice", setup: []string{poolA}, obj: `{apiVersion: metallb.io/v1beta1, kind: BGPAdvertisement, metadata: {name: adv}, spec: {ipAddressPools: [a, a]}}`,
			deny: true, want: []string{`bgpadvertisement "adv"`, "spec.ipAddressPools[1]"}},
		{name: "pool not there yet: warning", obj: `{apiVersion: metallb.io/v1beta1, kind: BGPAdvertisement, metadata: {name: adv}, spec: {ipAddressPools: [later]}}`,
			want: []string{`bgpadvertisement "adv"`, "spec.ipAddressPools[0]", `ipaddresspool "later"`}},
		{name: "community half above 16 bits", obj: `{apiVersion: metallb.io/v1beta1, kind: BGPAdvertisement, metadata: {name: adv}, spec: {communities: ["65000:70000"]}}`,
			deny: true, want: []string{`bgpadvertisement "adv"`, "spec.communities[0]", "65000:70000"}},
		{name: "large community malformed", obj: `{apiVersion: metallb.io/v1beta1, kind: BGPAdvertisement, metadata: {name: adv}, spec: {communities: ["large:1:2"]}}`,
			deny: true, want: []string{`bgpadvertisement "adv"`, "spec.communities[0]"}},
		{name: "communities accepted (neighbour)", obj: `{apiVersion: metallb.io/v1beta1, kind: BGPAdvertisement, metadata: {name: adv}, spec: {communities: ["65000:100", "large:4200000000:1:2"]}}`},
		{name: "unknown community alias: warning", obj: `{apiVersion: metallb.io/v1beta1, kind: BGPAdvertisement, metadata: {name: adv}, spec: {communities: [no-export-later]}}`,
			want: []string{`bgpadvertisement "adv"`, "spec.communities[0]", "no-export-later"}},
		{name: "community alias defined (neighbour)", setup: []string{`{apiVersion: metallb.io/v1beta1, kind: Community, metadata: {name: c}, spec: {communities: [{name: edge, value: "65535:65281"}]}}`},
			obj: `{apiVersion: metallb.io/v1beta1, kind: BGPAdvertisement, metadata: {name: adv}, spec: {communities: [edge]}}`},
		{name: "community alias defined twice", setup: []string{`{apiVersion: metallb.io/v1beta1, kind: Community, metadata: {name: c1}, spec: {communities: [{name: edge, value: "65535:65281"}]}}`},
			obj:  `{apiVersion: metallb.io/v1beta1, kind: Community, metadata: {name: c2}, spec: {communities: [{name: edge, value: "65535:65282"}]}}`,
			deny: true, want: []string{`community "c2"`, "spec.communities[0].name", `community "c1"`}},
		{name: "too many communities", obj: tooManyCommunities(),
			deny: true, want: []string{`bgpadvertisement "adv"`, "spec.communities"}},
		{name: "localPref conflict", setup: []string{poolA, peerI, `{apiVersion: metallb.io/v1beta1, kind: BGPAdvertisement, metadata: {name: lp1}, spec: {ipAddressPools: [a], localPref: 100}}`},
			obj:  `{apiVersion: metallb.io/v1beta1, kind: BGPAdvertisement, metadata: {name: lp2}, spec: {ipAddressPools: [a], localPref: 200}}`,
			deny: true, want: []string{`bgpadvertisement "lp`, "spec.localPref", `bgpadvertisement "lp1"`}},
		{name: "same localPref (neighbour)", setup: []string{poolA, peerI, `{apiVersion: metallb.io/v1beta1, kind: BGPAdvertisement, metadata: {name: lp1}, spec: {ipAddressPools: [a], localPref: 100}}`},
			obj: `{apiVersion: metallb.io/v1beta1, kind: BGPAdvertisement, metadata: {name: lp2}, spec: {ipAddressPools: [a], localPref: 100}}`},

		// BGPPeer.
		{name: "myASN zero", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 0, peerASN: 1, peerAddress: 198.18.0.254}}`,
			deny: true, want: []string{`bgppeer "p"`, "spec.myASN"}},
		{name: "peerASN and dynamicASN", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, dynamicASN: external, peerAddress: 198.18.0.254}}`,
			deny: true, want: []string{`bgppeer "p"`, "spec.dynamicASN"}},
		{name: "neither peerASN nor dynamicASN", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerAddress: 198.18.0.254}}`,
			deny: true, want: []string{`bgppeer "p"`, "spec.peerASN"}},
		{name: "dynamicASN alone (neighbour)", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, dynamicASN: external, peerAddress: 198.18.0.254}}`},
		{name: "peerAddress and interface", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, interface: eth1}}`,
			deny: true, want: []string{`bgppeer "p"`, "spec.interface"}},
		{name: "peerAddress not an IP", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: router.example}}`,
			deny: true, want: []string{`bgppeer "p"`, "spec.peerAddress"}},
		{name: "sourceAddress of another family", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, sourceAddress: "2001:db8:18::1"}}`,
			deny: true, want: []string{`bgppeer "p"`, "spec.sourceAddress"}},
		{name: "routerID not IPv4", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, routerID: "2001:db8::1"}}`,
			deny: true, want: []string{`bgppeer "p"`, "spec.routerID"}},
		{name: "ebgpMultiHop on iBGP", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 1, peerAddress: 198.18.0.254, ebgpMultiHop: true}}`,
			deny: true, want: []string{`bgppeer "p"`, "spec.ebgpMultiHop"}},
		{name: "ebgpMultiHop on eBGP (neighbour)", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, ebgpMultiHop: true}}`},
		{name: "holdTime 2s", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, holdTime: 2s}}`,
			deny: true, want: []string{`bgppeer "p"`, "spec.holdTime"}},
		{name: "holdTime 3s (neighbour)", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, holdTime: 3s}}`},
		{name: "keepalive not below hold", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, holdTime: 30s, keepaliveTime: 30s}}`,
			deny: true, want: []string{`bgppeer "p"`, "spec.keepaliveTime"}},
		{name: "password and passwordSecret", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, password: s3cret, passwordSecret: {name: bgp-auth}}}`,
			deny: true, want: []string{`bgppeer "p"`, "spec.passwordSecret"}},
		{name: "passwordSecret of the wrong type", setup: []string{`{apiVersion: v1, kind: Secret, metadata: {name: bgp-auth}, type: Opaque, stringData: {password: s3cret}}`},
			obj:  `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, passwordSecret: {name: bgp-auth}}}`,
			deny: true, want: []string{`bgppeer "p"`, "spec.passwordSecret", "kubernetes.io/basic-auth"}},
		{name: "passwordSecret basic-auth (neighbour)", setup: []string{`{apiVersion: v1, kind: Secret, metadata: {name: bgp-auth}, type: kubernetes.io/basic-auth, stringData: {password: s3cret}}`},
			obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, passwordSecret: {name: bgp-auth}}}`},
		{name: "passwordSecret not there yet: warning", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, passwordSecret: {name: later}}}`,
			want: []string{`bgppeer "p"`, "spec.passwordSecret", "later"}},
		{name: "bfdProfile not there yet: warning", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, bfdProfile: later}}`,
			want: []string{`bgppeer "p"`, "spec.bfdProfile", `bfdprofile "later"`}},
		{name: "frr: routerID differs on a shared node", setup: []string{`{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p1}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, routerID: 198.18.0.1}}`},
			obj:  `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p2}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.253, routerID: 198.18.0.2}}`,
			deny: true, want: []string{`bgppeer "p`, "spec.routerID", `bgppeer "p1"`}},
		{name: "frr: myASN differs on a shared node", setup: []string{`{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p1}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254}}`},
			obj:  `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p2}, spec: {myASN: 5, peerASN: 2, peerAddress: 198.18.0.253}}`,
			deny: true, want: []string{`bgppeer "p`, "spec.myASN", `bgppeer "p1"`}},
		{name: "frr: different myASN in another VRF (neighbour)", setup: []string{`{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p1}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254}}`},
			obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p2}, spec: {myASN: 5, peerASN: 2, peerAddress: 198.18.0.253, vrf: red}}`},
		{name: "duplicate peer", setup: []string{peerE},
			obj:  `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: again}, spec: {myASN: 64512, peerASN: 64513, peerAddress: 198.18.0.253}}`,
			deny: true, want: []string{`bgppeer "`, "spec.peerAddress", `bgppeer "`}},
		{name: "native: BFD refused naming frr", setup: []string{`{apiVersion: metallb.io/v1beta1, kind: MetalLB, metadata: {name: metallb}, spec: {bgpBackend: native}}`},
			obj:  `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, bfdProfile: fast}}`,
			deny: true, want: []string{`bgppeer "p"`, "spec.bfdProfile", "frr"}},
		{name: "native: MD5, multihop, graceful restart, VRF accepted (neighbour)", setup: []string{`{apiVersion: metallb.io/v1beta1, kind: MetalLB, metadata: {name: metallb}, spec: {bgpBackend: native}}`},
			obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, password: s3cret, ebgpMultiHop: true, enableGracefulRestart: true, vrf: red, connectTime: 5s, dualStackAddressFamily: true}}`},

		// What FRR cannot express is refused at admission, by the same
		// functions its renderer uses (issue 17): before, these reached
		// every node and stopped its BGP updates.
		{name: "frr: password with whitespace", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, password: "two words"}}`,
			deny: true, want: []string{`bgppeer "p"`, "spec.password", "whitespace"}},
		{name: "native: password with whitespace accepted (neighbour)", setup: []string{`{apiVersion: metallb.io/v1beta1, kind: MetalLB, metadata: {name: metallb}, spec: {bgpBackend: native}}`},
			obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, password: "two words"}}`},
		{name: "vrf named default", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, vrf: default}}`,
			deny: true, want: []string{`bgppeer "p"`, "spec.vrf", "default VRF"}},
		{name: "vrf with a colon", obj: `{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: p}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, vrf: "red:1"}}`,
			deny: true, want: []string{`bgppeer "p"`, "spec.vrf", "':'"}},

		// BFDProfile.
		{name: "echo mode with an IPv6 peer", setup: []string{`{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: v6}, spec: {myASN: 1, peerASN: 2, peerAddress: "2001:db8:18::fe", bfdProfile: echo}}`},
			obj:  `{apiVersion: metallb.io/v1beta1, kind: BFDProfile, metadata: {name: echo}, spec: {echoMode: true}}`,
			deny: true, want: []string{`bgppeer "v6"`, "spec.bfdProfile", `bfdprofile "echo"`}},
		{name: "echo mode with an IPv4 peer (neighbour)", setup: []string{`{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: v4}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, bfdProfile: echo}}`},
			obj: `{apiVersion: metallb.io/v1beta1, kind: BFDProfile, metadata: {name: echo}, spec: {echoMode: true, echoInterval: 50}}`},

		// MetalLB: every value that reaches the rendered workloads is what it
		// claims to be (the schema's patterns cannot say all of it).
		{name: "MetalLB loadBalancerClass name part too long", obj: `{apiVersion: metallb.io/v1beta1, kind: MetalLB, metadata: {name: metallb}, spec: {loadBalancerClass: "example.com/` + strings.Repeat("a", 64) + `"}}`,
			deny: true, want: []string{"metallb " + envtest.Namespace + "/metallb", "spec.loadBalancerClass", "63 characters"}},
		{name: "MetalLB annotation key invalid", obj: `{apiVersion: metallb.io/v1beta1, kind: MetalLB, metadata: {name: metallb}, spec: {speakerConfig: {annotations: {"bad key": x}}}}`,
			deny: true, want: []string{"metallb " + envtest.Namespace + "/metallb", "spec.speakerConfig.annotations"}},
		{name: "MetalLB toleration effect unknown", obj: `{apiVersion: metallb.io/v1beta1, kind: MetalLB, metadata: {name: metallb}, spec: {speakerTolerations: [{key: a, operator: Exists, effect: Sometimes}]}}`,
			deny: true, want: []string{"metallb " + envtest.Namespace + "/metallb", "spec.speakerTolerations[0].effect"}},
		{name: "MetalLB tuned spec accepted (neighbour)", obj: `{apiVersion: metallb.io/v1beta1, kind: MetalLB, metadata: {name: metallb}, spec: {loadBalancerClass: example.com/bare-metal, nodeSelector: {lb: "yes"}, speakerTolerations: [{key: example.com/lb, operator: Equal, value: "true", effect: NoExecute, tolerationSeconds: 30}], speakerConfig: {priorityClassName: system-node-critical, annotations: {example.com/team: "net: edge"}}}}`},

		// L2Advertisement.
		{name: "interface listed twice", obj: `{apiVersion: metallb.io/v1beta1, kind: L2Advertisement, metadata: {name: l2}, spec: {interfaces: [eth0, eth0]}}`,
			deny: true, want: []string{`l2advertisement "l2"`, "spec.interfaces[1]"}},
		{name: "interface name invalid", obj: `{apiVersion: metallb.io/v1beta1, kind: L2Advertisement, metadata: {name: l2}, spec: {interfaces: ["eth0/1"]}}`,
			deny: true, want: []string{`l2advertisement "l2"`, "spec.interfaces[0]"}},
		{name: "interfaces accepted (neighbour)", obj: `{apiVersion: metallb.io/v1beta1, kind: L2Advertisement, metadata: {name: l2}, spec: {interfaces: [eth0, bond0.100]}}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { runAdmissionCase(t, tc) })
	}
}

func tooManyCommunities() string {
	var cs []string
	for i := range 64 {
		cs = append(cs, `"65000:`+itoa(i)+`"`)
	}
	return `{apiVersion: metallb.io/v1beta1, kind: BGPAdvertisement, metadata: {name: adv}, spec: {communities: [` + strings.Join(cs, ",") + `]}}`
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func runAdmissionCase(t *testing.T, tc admissionCase) {
	t.Helper()
	ctx := context.Background()
	c, warnings := warningClient(t)
	var created []*unstructured.Unstructured
	t.Cleanup(func() {
		for i := len(created) - 1; i >= 0; i-- {
			_ = env.Client.Delete(ctx, created[i])
		}
		cleanMetalLBObjects(t)
	})
	for _, s := range tc.setup {
		u := decode(t, s)
		if err := c.Create(ctx, u); err != nil {
			t.Fatalf("setup %s %s refused: %v", u.GetKind(), u.GetName(), err)
		}
		created = append(created, u)
	}
	env.WaitWebhookSees(t, objects(created)...)
	warnings.take()
	u := decode(t, tc.obj)
	err := c.Create(ctx, u)
	if err == nil {
		created = append(created, u)
	}
	if tc.deny {
		if err == nil {
			t.Fatalf("%s %s was accepted; want it refused", u.GetKind(), u.GetName())
		}
		msg := err.Error()
		if !strings.Contains(msg, "validationwebhook.metallb.io\" denied the request") {
			t.Errorf("not refused by our webhook: %v", err)
		}
		for _, w := range tc.want {
			if !strings.Contains(msg, w) {
				t.Errorf("denial does not contain %q:\n%s", w, msg)
			}
		}
		return
	}
	if err != nil {
		t.Fatalf("%s %s refused; want it accepted: %v", u.GetKind(), u.GetName(), err)
	}
	got := warnings.take()
	if len(tc.want) == 0 {
		if len(got) > 0 {
			t.Errorf("unexpected warnings: %q", got)
		}
		return
	}
	for _, w := range got {
		ok := true
		for _, want := range tc.want {
			ok = ok && strings.Contains(w, want)
		}
		if ok {
			return
		}
	}
	t.Errorf("no warning contains all of %q; warnings: %q", tc.want, got)
}

// TestBFDProfileInUseCannotBeDeleted checks the delete rule names the peers.
func TestBFDProfileInUseCannotBeDeleted(t *testing.T) {
	ctx := context.Background()
	t.Cleanup(func() { cleanMetalLBObjects(t) })
	for _, m := range []string{
		`{apiVersion: metallb.io/v1beta1, kind: BFDProfile, metadata: {name: fast}, spec: {receiveInterval: 25, transmitInterval: 25}}`,
		`{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: edge-1}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.254, bfdProfile: fast}}`,
		`{apiVersion: metallb.io/v1beta2, kind: BGPPeer, metadata: {name: edge-2}, spec: {myASN: 1, peerASN: 2, peerAddress: 198.18.0.253, bfdProfile: fast}}`,
		`{apiVersion: metallb.io/v1beta1, kind: BFDProfile, metadata: {name: unused}}`,
	} {
		if err := env.Client.Create(ctx, decode(t, m)); err != nil {
			t.Fatal(err)
		}
	}
	err := env.Client.Delete(ctx, decode(t, `{apiVersion: metallb.io/v1beta1, kind: BFDProfile, metadata: {name: fast}}`))
	if err == nil {
		t.Fatal("profile in use was deleted")
	}
	for _, w := range []string{`bfdprofile "fast"`, `bgppeer "edge-1"`, `bgppeer "edge-2"`} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("denial does not name %s: %v", w, err)
		}
	}
	if err := env.Client.Delete(ctx, decode(t, `{apiVersion: metallb.io/v1beta1, kind: BFDProfile, metadata: {name: unused}}`)); err != nil {
		t.Errorf("unused profile: %v", err)
	}
}

// TestOneMetalLBPerCluster checks the MetalLB admission rules.
func TestOneMetalLBPerCluster(t *testing.T) {
	ctx := context.Background()
	t.Cleanup(func() { cleanMetalLBObjects(t) })
	if err := env.Client.Create(ctx, decode(t, `{apiVersion: metallb.io/v1beta1, kind: MetalLB, metadata: {name: metallb}, spec: {bgpBackend: frr}}`)); err != nil {
		t.Fatal(err)
	}
	err := env.Client.Create(ctx, decode(t, `{apiVersion: metallb.io/v1beta1, kind: MetalLB, metadata: {name: second}}`))
	if err == nil || !strings.Contains(err.Error(), "metallb-system/metallb already does") {
		t.Errorf("second MetalLB: %v", err)
	}
	other := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "elsewhere"}}
	_ = env.Client.Create(ctx, other)
	err = env.Client.Create(ctx, decode(t, `{apiVersion: metallb.io/v1beta1, kind: MetalLB, metadata: {name: metallb, namespace: elsewhere}}`))
	if err == nil || !strings.Contains(err.Error(), "metadata.namespace") {
		t.Errorf("MetalLB in another namespace: %v", err)
	}
	err = env.Client.Create(ctx, decode(t, `{apiVersion: metallb.io/v1beta1, kind: MetalLB, metadata: {name: k8s}, spec: {bgpBackend: frr-k8s}}`))
	if err == nil || !strings.Contains(err.Error(), "spec.bgpBackend") {
		t.Errorf("frr-k8s backend: %v", err)
	}
}

// TestKubectlPrintsOneClearLine checks what a user sees for an overlapping
// pool with kubectl apply.
func TestKubectlPrintsOneClearLine(t *testing.T) {
	ctx := context.Background()
	t.Cleanup(func() { cleanMetalLBObjects(t) })
	if err := env.Client.Create(ctx, decode(t, `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: a}, spec: {addresses: [203.0.113.128/25]}}`)); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "b.yaml")
	if err := os.WriteFile(path, []byte("apiVersion: metallb.io/v1beta1\nkind: IPAddressPool\nmetadata:\n  name: b\n  namespace: metallb-system\nspec:\n  addresses:\n  - 203.0.113.0/24\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, err := env.Kubectl("apply", "-f", path)
	if err == nil {
		t.Fatal("kubectl apply of an overlapping pool succeeded")
	}
	t.Logf("kubectl printed: %s", stderr)
	want := `admission webhook "ipaddresspoolvalidationwebhook.metallb.io" denied the request: ipaddresspool "b": spec.addresses[0]: 203.0.113.0/24 overlaps 203.0.113.128/25 of ipaddresspool "a"`
	if !strings.Contains(stderr, want) {
		t.Errorf("kubectl printed:\n%s\nwant a line containing:\n%s", stderr, want)
	}
}

func objects(us []*unstructured.Unstructured) []client.Object {
	out := make([]client.Object, len(us))
	for i, u := range us {
		out[i] = u
	}
	return out
}

// TestRefusedCreateLeavesNoPhantom: a create of a name that exists passes
// admission and is refused by the API server (AlreadyExists). The
// webhook's view must keep the stored pool, not the refused one: with
// the refused ranges standing in for the stored ones, a pool overlapping
// the stored pool would be admitted.
func TestRefusedCreateLeavesNoPhantom(t *testing.T) {
	ctx := context.Background()
	t.Cleanup(func() { cleanMetalLBObjects(t) })
	stored := decode(t, `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: phantom-a}, spec: {addresses: [192.0.2.0/26]}}`)
	if err := env.Client.Create(ctx, stored); err != nil {
		t.Fatal(err)
	}
	env.WaitWebhookSees(t, stored)
	again := decode(t, `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: phantom-a}, spec: {addresses: [192.0.2.128/26]}}`)
	if err := env.Client.Create(ctx, again); !apierrors.IsAlreadyExists(err) {
		t.Fatalf("second create of phantom-a: got %v, want AlreadyExists", err)
	}
	overlapping := decode(t, `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: phantom-b}, spec: {addresses: [192.0.2.0/27]}}`)
	err := env.Client.Create(ctx, overlapping)
	if err == nil {
		t.Fatal("phantom-b, overlapping the stored phantom-a, was admitted: the refused create stood in for phantom-a")
	}
	if !strings.Contains(err.Error(), "phantom-a") {
		t.Errorf("denial does not name phantom-a: %v", err)
	}
	// And the refused ranges are free.
	free := decode(t, `{apiVersion: metallb.io/v1beta1, kind: IPAddressPool, metadata: {name: phantom-c}, spec: {addresses: [192.0.2.128/26]}}`)
	if err := env.Client.Create(ctx, free); err != nil {
		t.Errorf("phantom-c, on the refused create's ranges only: %v", err)
	}
}
