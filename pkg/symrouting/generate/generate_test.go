package generate

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
)

func parseYAML(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	return m
}

// minimalSR is a valid declaration with only required fields set.
func minimalSR() *v1alpha1.SymmetricRouting {
	return &v1alpha1.SymmetricRouting{
		ObjectMeta: metav1.ObjectMeta{Name: "sr", UID: "uid-1"},
		Spec: v1alpha1.SymmetricRoutingSpec{
			VRF: v1alpha1.SymmetricVRF{
				Name: "vrf1", RouteTableID: 10, Port: "eth1",
				Addresses: []string{"192.0.2.10/24"},
			},
			Peer:              v1alpha1.SymmetricPeer{MyASN: 64512, ASN: 64513, Address: "192.0.2.1"},
			Services:          []v1alpha1.SymmetricService{{Namespace: "ns", Name: "web", Addresses: []string{"198.51.100.1/32"}}},
			MainTableNetworks: []string{"10.128.0.0/14", "172.30.0.0/16"},
		},
	}
}

var testInputs = Inputs{Namespace: "lbstack-system"}

func mustGenerate(t *testing.T, sr *v1alpha1.SymmetricRouting, in Inputs) *Objects {
	t.Helper()
	o, err := Generate(sr, in)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

const minimalState = `
interfaces:
- name: vrf1
  type: vrf
  state: up
  vrf: {port: [eth1], route-table-id: 10}
- name: eth1
  type: ethernet
  state: up
  ipv4:
    address: [{ip: 192.0.2.10, prefix-length: 24}]
    dhcp: false
    enabled: true
routes:
  config:
  - {destination: 0.0.0.0/0, metric: 150, next-hop-address: 192.0.2.1, next-hop-interface: eth1, table-id: 10}
route-rules:
  config:
  - {ip-to: 10.128.0.0/14, priority: 998, route-table: 254}
  - {ip-to: 172.30.0.0/16, priority: 998, route-table: 254}
`

func TestDefaults(t *testing.T) {
	sr := minimalSR()
	o := mustGenerate(t, sr, testInputs)

	if len(o.Policies) != 1 {
		t.Fatalf("got %d policies", len(o.Policies))
	}
	p := o.Policies[0]
	if p.Name != "sr" || p.Namespace != "" || p.Spec.NodeSelector != nil || p.Spec.MaxUnavailable != nil {
		t.Errorf("policy meta/spec: name %q ns %q selector %v maxUnavailable %v", p.Name, p.Namespace, p.Spec.NodeSelector, p.Spec.MaxUnavailable)
	}
	if diff := cmp.Diff(parseYAML(t, []byte(minimalState)), parseYAML(t, p.Spec.DesiredState.Raw)); diff != "" {
		t.Errorf("desiredState (-want +got):\n%s", diff)
	}

	wantPeer := v1beta2.BGPPeerSpec{MyASN: 64512, ASN: 64513, Address: "192.0.2.1", VRFName: "vrf1"}
	if o.Peer.Name != "sr" || o.Peer.Namespace != "lbstack-system" {
		t.Errorf("peer %s/%s", o.Peer.Namespace, o.Peer.Name)
	}
	if diff := cmp.Diff(wantPeer, o.Peer.Spec); diff != "" {
		t.Errorf("peer spec (-want +got):\n%s", diff)
	}

	if o.Pools[0].Name != "sr-ns-web" || o.Advertisements[0].Name != "sr-ns-web" {
		t.Errorf("pool %q advertisement %q, want sr-ns-web", o.Pools[0].Name, o.Advertisements[0].Name)
	}
	no := false
	if diff := cmp.Diff(v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.1/32"}, AutoAssign: &no}, o.Pools[0].Spec); diff != "" {
		t.Errorf("pool spec (-want +got):\n%s", diff)
	}
	wantAdv := v1beta1.BGPAdvertisementSpec{
		IPAddressPools: []string{"sr-ns-web"},
		Peers:          []string{"sr"},
		NodeSelectors:  []metav1.LabelSelector{{MatchLabels: map[string]string{"egress-service.k8s.ovn.org/ns-web": ""}}},
	}
	if diff := cmp.Diff(wantAdv, o.Advertisements[0].Spec); diff != "" {
		t.Errorf("advertisement spec (-want +got):\n%s", diff)
	}
	es := o.EgressServices[0]
	if es.Namespace != "ns" || es.Name != "web" {
		t.Errorf("EgressService %s/%s, want ns/web", es.Namespace, es.Name)
	}
	if diff := cmp.Diff(ovnv1.EgressServiceSpec{SourceIPBy: ovnv1.SourceIPLoadBalancer, Network: "10"}, es.Spec); diff != "" {
		t.Errorf("EgressService spec (-want +got):\n%s", diff)
	}

	// Stable order, TypeMeta, labels and owners on everything.
	var kinds []string
	for _, obj := range o.All() {
		gvk := obj.GetObjectKind().GroupVersionKind()
		kinds = append(kinds, gvk.GroupVersion().String()+"/"+gvk.Kind)
		if obj.GetLabels()[SymmetricRoutingLabel] != "sr" || obj.GetLabels()[ManagedByLabel] != ManagedByValue {
			t.Errorf("%s %s labels %v", gvk.Kind, obj.GetName(), obj.GetLabels())
		}
		refs := obj.GetOwnerReferences()
		if len(refs) != 1 || refs[0].UID != "uid-1" || !*refs[0].Controller || !*refs[0].BlockOwnerDeletion ||
			refs[0].APIVersion != "lbstack.io/v1alpha1" || refs[0].Kind != "SymmetricRouting" || refs[0].Name != "sr" {
			t.Errorf("%s %s ownerReferences %+v", gvk.Kind, obj.GetName(), refs)
		}
	}
	wantKinds := []string{
		"nmstate.io/v1/NodeNetworkConfigurationPolicy",
		"metallb.io/v1beta2/BGPPeer",
		"metallb.io/v1beta1/IPAddressPool",
		"metallb.io/v1beta1/BGPAdvertisement",
		"k8s.ovn.org/v1/EgressService",
	}
	if diff := cmp.Diff(wantKinds, kinds); diff != "" {
		t.Errorf("All() kinds (-want +got):\n%s", diff)
	}

	// Generating twice gives identical output.
	again := mustGenerate(t, sr, testInputs)
	if diff := cmp.Diff(o.Policies[0].Spec.DesiredState.Raw, again.Policies[0].Spec.DesiredState.Raw); diff != "" {
		t.Errorf("desiredState not deterministic:\n%s", diff)
	}
}

func TestPeerOptions(t *testing.T) {
	sr := minimalSR()
	sr.Spec.VRF.NodeSelector = map[string]string{"a": "1", "b": "2"}
	sr.Spec.Peer = v1alpha1.SymmetricPeer{
		Name: "up", MyASN: 1, ASN: 2, Address: "192.0.2.1", Port: 1179,
		BFDProfile: "fast", PasswordSecret: "bgp-pass", HoldTime: &metav1.Duration{Duration: 9 * time.Second},
	}
	o := mustGenerate(t, sr, testInputs)
	port := uint16(1179)
	want := v1beta2.BGPPeerSpec{
		MyASN: 1, ASN: 2, Address: "192.0.2.1", Port: &port, BFDProfile: "fast",
		PasswordSecret: corev1.SecretReference{Name: "bgp-pass", Namespace: "lbstack-system"},
		HoldTime:       &metav1.Duration{Duration: 9 * time.Second},
		VRFName:        "vrf1",
		NodeSelectors:  []metav1.LabelSelector{{MatchLabels: map[string]string{"a": "1", "b": "2"}}},
	}
	if diff := cmp.Diff(want, o.Peer.Spec); diff != "" {
		t.Errorf("peer spec (-want +got):\n%s", diff)
	}
	if o.Peer.Name != "up" || o.Advertisements[0].Spec.Peers[0] != "up" {
		t.Errorf("peer name %q, advertisement peers %v", o.Peer.Name, o.Advertisements[0].Spec.Peers)
	}
	// The generated objects do not alias the declaration.
	o.Peer.Spec.NodeSelectors[0].MatchLabels["a"] = "x"
	o.Policies[0].Spec.NodeSelector["b"] = "x"
	if sr.Spec.VRF.NodeSelector["a"] != "1" || sr.Spec.VRF.NodeSelector["b"] != "2" {
		t.Errorf("generated objects alias spec.vrf.nodeSelector")
	}
}

func TestPerNodeAddressing(t *testing.T) {
	sr := minimalSR()
	sr.Spec.VRF.Addresses = nil
	sr.Spec.VRF.NodeSelector = map[string]string{"vrf": "true"}
	sr.Spec.VRF.NodeAddresses = []v1alpha1.SymmetricNodeAddresses{
		{Node: "worker-b", Addresses: []string{"192.0.2.12/24"}},
		{Node: "worker-a", Addresses: []string{"192.0.2.11/24", "2001:db8::11/64"}},
	}
	mu := intstr.FromString("50%")
	sr.Spec.VRF.MaxUnavailable = &mu
	o := mustGenerate(t, sr, testInputs)

	if len(o.Policies) != 2 {
		t.Fatalf("got %d policies, want 2", len(o.Policies))
	}
	for i, node := range []string{"worker-b", "worker-a"} {
		p := o.Policies[i]
		if p.Name != "sr-"+node {
			t.Errorf("policy %d name %q, want sr-%s", i, p.Name, node)
		}
		if diff := cmp.Diff(map[string]string{"vrf": "true", "kubernetes.io/hostname": node}, p.Spec.NodeSelector); diff != "" {
			t.Errorf("policy %s nodeSelector (-want +got):\n%s", p.Name, diff)
		}
		if p.Spec.MaxUnavailable == nil || *p.Spec.MaxUnavailable != mu {
			t.Errorf("policy %s maxUnavailable %v", p.Name, p.Spec.MaxUnavailable)
		}
	}
	if sr.Spec.VRF.NodeSelector["kubernetes.io/hostname"] != "" {
		t.Errorf("spec.vrf.nodeSelector was modified")
	}
	st := parseYAML(t, o.Policies[1].Spec.DesiredState.Raw)
	port := st["interfaces"].([]any)[1].(map[string]any)
	wantPort := parseYAML(t, []byte(`
name: eth1
type: ethernet
state: up
ipv4: {address: [{ip: 192.0.2.11, prefix-length: 24}], dhcp: false, enabled: true}
ipv6: {address: [{ip: "2001:db8::11", prefix-length: 64}], dhcp: false, autoconf: false, enabled: true}
`))
	if diff := cmp.Diff(wantPort, port); diff != "" {
		t.Errorf("worker-a port (-want +got):\n%s", diff)
	}

	// Only nodes that got a policy have the VRF: the peer and the
	// EgressService select them by hostname too.
	wantSel := metav1.LabelSelector{
		MatchLabels: map[string]string{"vrf": "true"},
		MatchExpressions: []metav1.LabelSelectorRequirement{{
			Key: "kubernetes.io/hostname", Operator: metav1.LabelSelectorOpIn, Values: []string{"worker-a", "worker-b"},
		}},
	}
	if diff := cmp.Diff([]metav1.LabelSelector{wantSel}, o.Peer.Spec.NodeSelectors); diff != "" {
		t.Errorf("peer nodeSelectors (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(wantSel, o.EgressServices[0].Spec.NodeSelector); diff != "" {
		t.Errorf("EgressService nodeSelector (-want +got):\n%s", diff)
	}
}

func TestExistingPolicy(t *testing.T) {
	sr := minimalSR()
	sr.Spec.VRF.Port, sr.Spec.VRF.Addresses, sr.Spec.MainTableNetworks = "", nil, nil
	sr.Spec.VRF.ExistingPolicy = "vrfpolicy"
	sr.Spec.VRF.NodeSelector = map[string]string{"vrf": "true"}
	o := mustGenerate(t, sr, testInputs)
	if len(o.Policies) != 0 {
		t.Errorf("got %d policies with existingPolicy, want none", len(o.Policies))
	}
	if o.Peer == nil || o.Peer.Spec.VRFName != "vrf1" || len(o.Peer.Spec.NodeSelectors) != 1 {
		t.Errorf("peer %+v", o.Peer)
	}
	if diff := cmp.Diff(map[string]string{"vrf": "true"}, o.EgressServices[0].Spec.NodeSelector.MatchLabels); diff != "" {
		t.Errorf("EgressService nodeSelector (-want +got):\n%s", diff)
	}
	if n := len(o.All()); n != 4 {
		t.Errorf("All() has %d objects, want 4", n)
	}
}

func TestIPv6(t *testing.T) {
	sr := minimalSR()
	sr.Spec.VRF.Addresses = []string{"2001:db8:0:0::10/64"}
	sr.Spec.Peer.Address = "2001:db8::1"
	sr.Spec.VRF.RouteMetric = ptr(int32(20))
	sr.Spec.VRF.RulePriority = ptr(int32(500))
	sr.Spec.MainTableNetworks = []string{"fd02::/112", "fd01::/48"}
	sr.Spec.Services[0].Addresses = []string{"2001:db8:100::1/128"}
	o := mustGenerate(t, sr, Inputs{Namespace: "x", OtherNetworks: []netip.Prefix{netip.MustParsePrefix("fd69::/112")}})
	want := parseYAML(t, []byte(`
interfaces:
- {name: vrf1, type: vrf, state: up, vrf: {port: [eth1], route-table-id: 10}}
- name: eth1
  type: ethernet
  state: up
  ipv6: {address: [{ip: "2001:db8::10", prefix-length: 64}], dhcp: false, autoconf: false, enabled: true}
routes:
  config:
  - {destination: "::/0", metric: 20, next-hop-address: "2001:db8::1", next-hop-interface: eth1, table-id: 10}
route-rules:
  config:
  - {ip-to: "fd69::/112", priority: 500, route-table: 254}
  - {ip-to: "fd01::/48", priority: 500, route-table: 254}
  - {ip-to: "fd02::/112", priority: 500, route-table: 254}
`))
	if diff := cmp.Diff(want, parseYAML(t, o.Policies[0].Spec.DesiredState.Raw)); diff != "" {
		t.Errorf("desiredState (-want +got):\n%s", diff)
	}
}

func TestGatewayOverride(t *testing.T) {
	sr := minimalSR()
	sr.Spec.VRF.Gateway = "192.0.2.254"
	o := mustGenerate(t, sr, testInputs)
	routes := parseYAML(t, o.Policies[0].Spec.DesiredState.Raw)["routes"].(map[string]any)["config"].([]any)
	if len(routes) != 1 || routes[0].(map[string]any)["next-hop-address"] != "192.0.2.254" {
		t.Errorf("routes %v, want one via 192.0.2.254", routes)
	}
	if o.Peer.Spec.Address != "192.0.2.1" {
		t.Errorf("peer address %q", o.Peer.Spec.Address)
	}
}

func TestSourceIPByNetwork(t *testing.T) {
	sr := minimalSR()
	sr.Spec.SourceIPBy = "Network"
	sr.Spec.VRF.RouteTableID = 999
	o := mustGenerate(t, sr, testInputs)
	if diff := cmp.Diff(ovnv1.EgressServiceSpec{SourceIPBy: ovnv1.SourceIPNetwork, Network: "999"}, o.EgressServices[0].Spec); diff != "" {
		t.Errorf("EgressService spec (-want +got):\n%s", diff)
	}
}

func TestMultipleServices(t *testing.T) {
	sr := minimalSR()
	sr.Spec.Services = []v1alpha1.SymmetricService{
		{Namespace: "b", Name: "two", Addresses: []string{"198.51.100.2/32"}, PoolName: "p2"},
		{Namespace: "a", Name: "one", Addresses: []string{"198.51.100.10-198.51.100.20"}, AdvertisementName: "adv1"},
		{Namespace: "a", Name: "three", Addresses: []string{"198.51.100.3/32"}, PoolName: "p3", AdvertisementName: "adv3"},
	}
	o := mustGenerate(t, sr, testInputs)
	var names []string
	for _, obj := range o.All() {
		names = append(names, obj.GetObjectKind().GroupVersionKind().Kind+" "+client.ObjectKeyFromObject(obj).String())
	}
	want := []string{
		"NodeNetworkConfigurationPolicy /sr",
		"BGPPeer lbstack-system/sr",
		"IPAddressPool lbstack-system/p2",
		"IPAddressPool lbstack-system/sr-a-one",
		"IPAddressPool lbstack-system/p3",
		"BGPAdvertisement lbstack-system/p2",
		"BGPAdvertisement lbstack-system/adv1",
		"BGPAdvertisement lbstack-system/adv3",
		"EgressService b/two",
		"EgressService a/one",
		"EgressService a/three",
	}
	if diff := cmp.Diff(want, names); diff != "" {
		t.Errorf("objects (-want +got):\n%s", diff)
	}
	for i, svc := range sr.Spec.Services {
		adv := o.Advertisements[i].Spec
		if adv.IPAddressPools[0] != o.Pools[i].Name {
			t.Errorf("advertisement %s pools %v, want [%s]", o.Advertisements[i].Name, adv.IPAddressPools, o.Pools[i].Name)
		}
		label := "egress-service.k8s.ovn.org/" + svc.Namespace + "-" + svc.Name
		if _, ok := adv.NodeSelectors[0].MatchLabels[label]; !ok || len(adv.NodeSelectors) != 1 {
			t.Errorf("advertisement %s nodeSelectors %v, want %s", o.Advertisements[i].Name, adv.NodeSelectors, label)
		}
		if diff := cmp.Diff(svc.Addresses, o.Pools[i].Spec.Addresses); diff != "" {
			t.Errorf("pool %s addresses (-want +got):\n%s", o.Pools[i].Name, diff)
		}
	}
}

func TestMainTableDestinations(t *testing.T) {
	pp := func(ss ...string) []netip.Prefix {
		var out []netip.Prefix
		for _, s := range ss {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}
	tests := []struct {
		name string
		in   Inputs
		spec []string
		want []string
	}{
		{"scenario order: service, then cluster", Inputs{ServiceNetworks: pp("172.30.0.0/16"), ClusterNetworks: pp("10.132.0.0/14")}, nil,
			[]string{"172.30.0.0/16", "10.132.0.0/14"}},
		{"groups sorted, v4 before v6, masked, deduplicated",
			Inputs{
				ServiceNetworks: pp("fd02::/112", "172.30.0.0/16"),
				ClusterNetworks: pp("10.132.0.0/14", "10.128.0.0/14", "fd01::/48"),
				OtherNetworks:   pp("169.254.169.0/29", "172.30.0.0/16"),
			},
			[]string{"192.168.1.7/24", "10.128.0.0/14", "10.0.0.0/8"},
			[]string{"172.30.0.0/16", "fd02::/112", "10.128.0.0/14", "10.132.0.0/14", "fd01::/48", "169.254.169.0/29", "10.0.0.0/8", "192.168.1.0/24"}},
		{"nothing", Inputs{}, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sr := minimalSR()
			sr.Spec.MainTableNetworks = tc.spec
			got, err := MainTableDestinations(sr, tc.in)
			if err != nil {
				t.Fatal(err)
			}
			var gs []string
			for _, p := range got {
				gs = append(gs, p.String())
			}
			if diff := cmp.Diff(tc.want, gs); diff != "" {
				t.Errorf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestGenerateErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(*v1alpha1.SymmetricRouting, *Inputs)
		want   string
	}{
		{"invalid declaration", func(sr *v1alpha1.SymmetricRouting, _ *Inputs) { sr.Spec.VRF.RouteTableID = 254 }, "spec.vrf.routeTableID"},
		{"no namespace", func(_ *v1alpha1.SymmetricRouting, in *Inputs) { in.Namespace = "" }, "no operator namespace"},
		{"no UID", func(sr *v1alpha1.SymmetricRouting, _ *Inputs) { sr.UID = "" }, "no UID"},
		{"no main-table networks", func(sr *v1alpha1.SymmetricRouting, _ *Inputs) { sr.Spec.MainTableNetworks = nil }, "spec.mainTableNetworks"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sr, in := minimalSR(), testInputs
			tc.mutate(sr, &in)
			o, err := Generate(sr, in)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Generate = %v, %v; want an error containing %q", o, err, tc.want)
			}
		})
	}
	if _, err := Generate(nil, testInputs); err == nil {
		t.Error("Generate(nil) succeeded")
	}
	// With discovered networks only, spec.mainTableNetworks may be empty.
	sr := minimalSR()
	sr.Spec.MainTableNetworks = nil
	if _, err := Generate(sr, Inputs{Namespace: "x", ClusterNetworks: []netip.Prefix{netip.MustParsePrefix("10.128.0.0/14")}}); err != nil {
		t.Error(err)
	}
}

func ptr[T any](v T) *T { return &v }

var _ client.Object = &nmstatev1.NodeNetworkConfigurationPolicy{}
