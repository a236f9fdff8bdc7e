package election

import (
	"net/netip"
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/config"
)

func TestDecide(t *testing.T) {
	meta := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: "metallb-system"} }
	build := func(advs ...v1beta1.L2Advertisement) *config.Config {
		t.Helper()
		res := config.Build(config.Resources{
			Pools: []v1beta1.IPAddressPool{
				{ObjectMeta: meta("l2"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.18.0.240/28", "2001:db8:240::/124"}}},
				{ObjectMeta: meta("bgp-only"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/28"}}},
			},
			L2Advs: advs,
		}, config.Options{Namespace: "metallb-system"})
		if err := res.Err(); err != nil {
			t.Fatal(err)
		}
		return res.Config
	}
	l2 := func(name string, ifaces ...string) v1beta1.L2Advertisement {
		return v1beta1.L2Advertisement{ObjectMeta: meta(name), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}, Interfaces: ifaces}}
	}
	withIngress := func(s *corev1.Service, ips ...string) *corev1.Service {
		for _, ip := range ips {
			s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
		}
		return s
	}
	nodes := []*corev1.Node{node("n1", nil), node("n2", nil), node("n3", nil)}
	all := map[string]bool{"n1": true, "n2": true, "n3": true}
	v4, v6 := netip.MustParseAddr("198.18.0.241"), netip.MustParseAddr("2001:db8:240::1")
	ranked := Rank(v4, []Candidate{{"n1", 0}, {"n2", 0}, {"n3", 0}})
	first, second := ranked[0].Name, ranked[1].Name

	tests := []struct {
		name     string
		cfg      *config.Config
		node     string
		svcs     []*corev1.Service
		eps      []*discoveryv1.EndpointSlice
		live     map[string]bool
		announce []Announcement
		owner    map[netip.Addr]string
	}{
		{
			name: "the elected node announces on every interface", cfg: build(l2("a")), node: first,
			svcs: []*corev1.Service{withIngress(svc("web", corev1.ServiceExternalTrafficPolicyCluster), "198.18.0.241")},
			eps:  []*discoveryv1.EndpointSlice{endpoints("web", "n1")}, live: all,
			announce: []Announcement{{Addr: v4, Services: []string{"default/web"}}},
			owner:    map[netip.Addr]string{v4: first},
		},
		{
			name: "another node announces nothing but knows the owner", cfg: build(l2("a")), node: second,
			svcs: []*corev1.Service{withIngress(svc("web", corev1.ServiceExternalTrafficPolicyCluster), "198.18.0.241")},
			eps:  []*discoveryv1.EndpointSlice{endpoints("web", "n1")}, live: all,
			owner: map[netip.Addr]string{v4: first},
		},
		{
			name: "the owner's speaker is dead: the next takes over", cfg: build(l2("a")), node: second,
			svcs: []*corev1.Service{withIngress(svc("web", corev1.ServiceExternalTrafficPolicyCluster), "198.18.0.241")},
			eps:  []*discoveryv1.EndpointSlice{endpoints("web", "n1")}, live: map[string]bool{second: true, ranked[2].Name: true},
			announce: []Announcement{{Addr: v4, Services: []string{"default/web"}}},
			owner:    map[netip.Addr]string{v4: second},
		},
		{
			name: "interfaces of the advertisements are united", cfg: build(l2("a", "eth1"), l2("b", "eth0", "eth1")), node: first,
			svcs: []*corev1.Service{withIngress(svc("web", corev1.ServiceExternalTrafficPolicyCluster), "198.18.0.241")},
			eps:  []*discoveryv1.EndpointSlice{endpoints("web", "n1")}, live: all,
			announce: []Announcement{{Addr: v4, Interfaces: []string{"eth0", "eth1"}, Services: []string{"default/web"}}},
			owner:    map[netip.Addr]string{v4: first},
		},
		{
			name: "one advertisement without interfaces means all of them", cfg: build(l2("a", "eth1"), l2("b")), node: first,
			svcs: []*corev1.Service{withIngress(svc("web", corev1.ServiceExternalTrafficPolicyCluster), "198.18.0.241")},
			eps:  []*discoveryv1.EndpointSlice{endpoints("web", "n1")}, live: all,
			announce: []Announcement{{Addr: v4, Services: []string{"default/web"}}},
			owner:    map[netip.Addr]string{v4: first},
		},
		{
			name: "a shared address is one announcement for both Services", cfg: build(l2("a")), node: first,
			svcs: []*corev1.Service{
				withIngress(svc("web", corev1.ServiceExternalTrafficPolicyCluster), "198.18.0.241"),
				withIngress(svc("dns", corev1.ServiceExternalTrafficPolicyCluster), "198.18.0.241"),
			},
			eps: []*discoveryv1.EndpointSlice{endpoints("web", "n1"), endpoints("dns", "n2")}, live: all,
			announce: []Announcement{{Addr: v4, Services: []string{"default/dns", "default/web"}}},
			owner:    map[netip.Addr]string{v4: first},
		},
		{
			name: "Local: only a node with an endpoint", cfg: build(l2("a")), node: "n3",
			svcs: []*corev1.Service{withIngress(svc("web", corev1.ServiceExternalTrafficPolicyLocal), "198.18.0.241")},
			eps:  []*discoveryv1.EndpointSlice{endpoints("web", "n3")}, live: all,
			announce: []Announcement{{Addr: v4, Services: []string{"default/web"}}},
			owner:    map[netip.Addr]string{v4: "n3"},
		},
		{
			name: "no endpoint: nobody announces", cfg: build(l2("a")), node: first,
			svcs:  []*corev1.Service{withIngress(svc("web", corev1.ServiceExternalTrafficPolicyCluster), "198.18.0.241")},
			live:  all,
			owner: map[netip.Addr]string{},
		},
		{
			name: "addresses of pools without L2 advertisements are not layer 2", cfg: build(l2("a")), node: first,
			svcs: []*corev1.Service{withIngress(svc("web", corev1.ServiceExternalTrafficPolicyCluster), "203.0.113.1")},
			eps:  []*discoveryv1.EndpointSlice{endpoints("web", "n1")}, live: all,
			owner: map[netip.Addr]string{},
		},
		{
			name: "IPv4 and IPv6 are elected on their own", cfg: build(l2("a")), node: Rank(v6, []Candidate{{"n1", 0}, {"n2", 0}, {"n3", 0}})[0].Name,
			svcs: []*corev1.Service{withIngress(svc("web", corev1.ServiceExternalTrafficPolicyCluster), "198.18.0.241", "2001:db8:240::1")},
			eps:  []*discoveryv1.EndpointSlice{endpoints("web", "n1")}, live: all,
			owner: map[netip.Addr]string{v4: first, v6: Rank(v6, []Candidate{{"n1", 0}, {"n2", 0}, {"n3", 0}})[0].Name},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Decide(Input{Config: tc.cfg, Node: tc.node, Nodes: nodes, Services: tc.svcs, EndpointSlices: tc.eps, Live: tc.live})
			if !reflect.DeepEqual(got.Owner, tc.owner) {
				t.Errorf("Owner = %v, want %v", got.Owner, tc.owner)
			}
			if tc.name == "IPv4 and IPv6 are elected on their own" {
				// This node owns the IPv6 address; the IPv4 one only
				// when the hash elects it for both.
				found := false
				for _, a := range got.Announce {
					found = found || a.Addr == v6
				}
				if !found {
					t.Errorf("Announce = %+v, want the IPv6 address", got.Announce)
				}
				return
			}
			if !reflect.DeepEqual(got.Announce, tc.announce) {
				t.Errorf("Announce = %+v, want %+v", got.Announce, tc.announce)
			}
			for _, a := range tc.announce {
				for _, s := range a.Services {
					if !contains(got.Services[s], a.Addr) {
						t.Errorf("Services[%s] = %v, want %s in it", s, got.Services[s], a.Addr)
					}
				}
			}
		})
	}
}

func contains(addrs []netip.Addr, a netip.Addr) bool {
	for _, x := range addrs {
		if x == a {
			return true
		}
	}
	return false
}
