package speaker

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

const ns = "metallb-system"

func meta(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Name: name, Namespace: ns} }

// world is the base input every case edits: pools of both families, an
// eBGP IPv4 peer, an eBGP IPv6 peer, an iBGP peer and a peer for nodes in
// zone b only, one advertisement per pool.
func world() config.Resources {
	return config.Resources{
		Pools: []v1beta1.IPAddressPool{
			{ObjectMeta: meta("pool4"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24"}}},
			{ObjectMeta: meta("pool6"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"2001:db8:1::/64"}}},
			{ObjectMeta: meta("nobgp"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.0/24"}}},
		},
		Peers: []v1beta2.BGPPeer{
			{ObjectMeta: meta("r4"), Spec: v1beta2.BGPPeerSpec{MyASN: 64512, ASN: 64513, Address: "198.18.0.254"}},
			{ObjectMeta: meta("r6"), Spec: v1beta2.BGPPeerSpec{MyASN: 64512, ASN: 64513, Address: "2001:db8:18::fe"}},
			{ObjectMeta: meta("ri"), Spec: v1beta2.BGPPeerSpec{MyASN: 64512, ASN: 64512, Address: "198.18.0.253"}},
			{ObjectMeta: meta("rb"), Spec: v1beta2.BGPPeerSpec{MyASN: 64512, ASN: 64513, Address: "198.18.0.252",
				NodeSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"zone": "b"}}}}},
		},
		BGPAdvs: []v1beta1.BGPAdvertisement{
			{ObjectMeta: meta("adv4"), Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"pool4"}}},
			{ObjectMeta: meta("adv6"), Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"pool6"}}},
		},
	}
}

func node(name string, mods ...func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{
			{Type: corev1.NodeHostName, Address: name},
			{Type: corev1.NodeInternalIP, Address: "2001:db8:18::1"},
			{Type: corev1.NodeInternalIP, Address: "198.18.0.1"},
		}},
	}
	for _, m := range mods {
		m(n)
	}
	return n
}

func lbSvc(name string, etp corev1.ServiceExternalTrafficPolicy, ips ...string) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: etp},
	}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

type ep struct {
	node           string
	ready, serving *bool
}

func slice(svc string, eps ...ep) *discoveryv1.EndpointSlice {
	s := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{
		Name: svc + "-x", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: svc}}}
	for _, e := range eps {
		s.Endpoints = append(s.Endpoints, discoveryv1.Endpoint{
			Addresses:  []string{"10.0.0.1"},
			NodeName:   ptr.To(e.node),
			Conditions: discoveryv1.EndpointConditions{Ready: e.ready, Serving: e.serving},
		})
	}
	return s
}

var (
	yes = ptr.To(true)
	no  = ptr.To(false)
)

func r(prefix string, lp uint32, comms ...string) bgp.Route {
	rt := bgp.Route{Prefix: netip.MustParsePrefix(prefix), LocalPref: lp}
	for _, c := range comms {
		v, err := config.ParseCommunity(c)
		if err != nil {
			panic(err)
		}
		rt.Communities = append(rt.Communities, v)
	}
	return rt
}

func TestDecide(t *testing.T) {
	cluster, local := corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal
	elsewhere := slice("s", ep{node: "n2", ready: yes})
	tests := []struct {
		name      string
		res       func(*config.Resources)
		node      *corev1.Node
		svcs      []*corev1.Service
		eps       []*discoveryv1.EndpointSlice
		routes    map[string][]bgp.Route
		announced map[string][]string
		skipped   map[string]string // substring of the reason
	}{
		{
			name:      "cluster service with an endpoint elsewhere goes to every session of its family",
			svcs:      []*corev1.Service{lbSvc("s", cluster, "203.0.113.5")},
			eps:       []*discoveryv1.EndpointSlice{elsewhere},
			routes:    map[string][]bgp.Route{"r4": {r("203.0.113.5/32", 0)}, "ri": {r("203.0.113.5/32", 0)}},
			announced: map[string][]string{"default/s": {"r4", "ri"}},
		},
		{
			name:    "cluster service without serving endpoint is not announced",
			svcs:    []*corev1.Service{lbSvc("s", cluster, "203.0.113.5")},
			eps:     []*discoveryv1.EndpointSlice{slice("s", ep{node: "n1", ready: no})},
			skipped: map[string]string{"default/s": "no serving endpoint"},
		},
		{
			name:    "endpoints of another service do not count",
			svcs:    []*corev1.Service{lbSvc("s", cluster, "203.0.113.5")},
			eps:     []*discoveryv1.EndpointSlice{slice("other", ep{node: "n1", ready: yes})},
			skipped: map[string]string{"default/s": "no serving endpoint"},
		},
		{
			name:    "local service with endpoint only elsewhere is not announced here",
			svcs:    []*corev1.Service{lbSvc("s", local, "203.0.113.5")},
			eps:     []*discoveryv1.EndpointSlice{elsewhere},
			skipped: map[string]string{"default/s": "Local"},
		},
		{
			name:      "local service with a ready local endpoint is announced",
			svcs:      []*corev1.Service{lbSvc("s", local, "203.0.113.5")},
			eps:       []*discoveryv1.EndpointSlice{slice("s", ep{node: "n2", ready: yes}, ep{node: "n1", ready: yes})},
			routes:    map[string][]bgp.Route{"r4": {r("203.0.113.5/32", 0)}, "ri": {r("203.0.113.5/32", 0)}},
			announced: map[string][]string{"default/s": {"r4", "ri"}},
		},
		{
			name:      "local endpoint with unset conditions counts as ready",
			svcs:      []*corev1.Service{lbSvc("s", local, "203.0.113.5")},
			eps:       []*discoveryv1.EndpointSlice{slice("s", ep{node: "n1"})},
			routes:    map[string][]bgp.Route{"r4": {r("203.0.113.5/32", 0)}, "ri": {r("203.0.113.5/32", 0)}},
			announced: map[string][]string{"default/s": {"r4", "ri"}},
		},
		{
			name:      "terminating but serving local endpoint still announces",
			svcs:      []*corev1.Service{lbSvc("s", local, "203.0.113.5")},
			eps:       []*discoveryv1.EndpointSlice{slice("s", ep{node: "n1", ready: no, serving: yes})},
			routes:    map[string][]bgp.Route{"r4": {r("203.0.113.5/32", 0)}, "ri": {r("203.0.113.5/32", 0)}},
			announced: map[string][]string{"default/s": {"r4", "ri"}},
		},
		{
			name:    "ready but not serving local endpoint does not",
			svcs:    []*corev1.Service{lbSvc("s", local, "203.0.113.5")},
			eps:     []*discoveryv1.EndpointSlice{slice("s", ep{node: "n1", ready: yes, serving: no})},
			skipped: map[string]string{"default/s": "Local"},
		},
		{
			name:    "excluded node label: sessions stay, nothing announced",
			node:    node("n1", func(n *corev1.Node) { n.Labels[lbservice.ExcludeLabel] = "" }),
			svcs:    []*corev1.Service{lbSvc("s", cluster, "203.0.113.5")},
			eps:     []*discoveryv1.EndpointSlice{elsewhere},
			skipped: map[string]string{"default/s": lbservice.ExcludeLabel},
		},
		{
			name: "NetworkUnavailable=True: nothing announced",
			node: node("n1", func(n *corev1.Node) {
				n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue}}
			}),
			svcs:    []*corev1.Service{lbSvc("s", cluster, "203.0.113.5")},
			eps:     []*discoveryv1.EndpointSlice{elsewhere},
			skipped: map[string]string{"default/s": "NetworkUnavailable"},
		},
		{
			name: "NetworkUnavailable=False announces",
			node: node("n1", func(n *corev1.Node) {
				n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse}}
			}),
			svcs:      []*corev1.Service{lbSvc("s", cluster, "203.0.113.5")},
			eps:       []*discoveryv1.EndpointSlice{elsewhere},
			routes:    map[string][]bgp.Route{"r4": {r("203.0.113.5/32", 0)}, "ri": {r("203.0.113.5/32", 0)}},
			announced: map[string][]string{"default/s": {"r4", "ri"}},
		},
		{
			name:    "address outside every pool is not announced",
			svcs:    []*corev1.Service{lbSvc("s", cluster, "192.0.2.7")},
			eps:     []*discoveryv1.EndpointSlice{elsewhere},
			skipped: map[string]string{"default/s": "in no pool"},
		},
		{
			name:    "pool without BGP advertisement is not announced",
			svcs:    []*corev1.Service{lbSvc("s", cluster, "198.51.100.3")},
			eps:     []*discoveryv1.EndpointSlice{elsewhere},
			skipped: map[string]string{"default/s": "no BGPAdvertisement of pool nobgp"},
		},
		{
			name: "non-LoadBalancer Services and LoadBalancers without ingress are ignored",
			svcs: []*corev1.Service{
				func() *corev1.Service {
					s := lbSvc("s", cluster, "203.0.113.5")
					s.Spec.Type = corev1.ServiceTypeClusterIP
					return s
				}(),
				lbSvc("pending", cluster),
			},
			eps: []*discoveryv1.EndpointSlice{elsewhere, slice("pending", ep{node: "n1"})},
		},
		{
			name: "advertisement nodeSelectors not matching this node",
			res: func(r *config.Resources) {
				r.BGPAdvs[0].Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"kubernetes.io/hostname": "n2"}}}
			},
			svcs:    []*corev1.Service{lbSvc("s", cluster, "203.0.113.5")},
			eps:     []*discoveryv1.EndpointSlice{elsewhere},
			skipped: map[string]string{"default/s": "no BGPAdvertisement"},
		},
		{
			name: "advertisement nodeSelectors matching this node",
			res: func(r *config.Resources) {
				r.BGPAdvs[0].Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"kubernetes.io/hostname": "n1"}}}
			},
			svcs:      []*corev1.Service{lbSvc("s", cluster, "203.0.113.5")},
			eps:       []*discoveryv1.EndpointSlice{elsewhere},
			routes:    map[string][]bgp.Route{"r4": {r("203.0.113.5/32", 0)}, "ri": {r("203.0.113.5/32", 0)}},
			announced: map[string][]string{"default/s": {"r4", "ri"}},
		},
		{
			name: "advertisement serviceSelectors pick the Service",
			res: func(r *config.Resources) {
				r.BGPAdvs[0].Spec.ServiceSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"app": "yes"}}}
			},
			svcs:      []*corev1.Service{lbSvc("yes", cluster, "203.0.113.5"), lbSvc("no", cluster, "203.0.113.6")},
			eps:       []*discoveryv1.EndpointSlice{slice("yes", ep{node: "n1"}), slice("no", ep{node: "n1"})},
			routes:    map[string][]bgp.Route{"r4": {r("203.0.113.5/32", 0)}, "ri": {r("203.0.113.5/32", 0)}},
			announced: map[string][]string{"default/yes": {"r4", "ri"}},
			skipped:   map[string]string{"default/no": "no BGPAdvertisement"},
		},
		{
			name:      "advertisement peers limit the sessions",
			res:       func(r *config.Resources) { r.BGPAdvs[0].Spec.Peers = []string{"ri"} },
			svcs:      []*corev1.Service{lbSvc("s", cluster, "203.0.113.5")},
			eps:       []*discoveryv1.EndpointSlice{elsewhere},
			routes:    map[string][]bgp.Route{"ri": {r("203.0.113.5/32", 0)}},
			announced: map[string][]string{"default/s": {"ri"}},
		},
		{
			name: "aggregation: two Services under one /24 are one route",
			res:  func(r *config.Resources) { r.BGPAdvs[0].Spec.AggregationLength = ptr.To[int32](24) },
			svcs: []*corev1.Service{lbSvc("s", cluster, "203.0.113.5"), lbSvc("t", cluster, "203.0.113.77")},
			eps:  []*discoveryv1.EndpointSlice{elsewhere, slice("t", ep{node: "n3"})},
			routes: map[string][]bgp.Route{
				"r4": {r("203.0.113.0/24", 0)}, "ri": {r("203.0.113.0/24", 0)},
			},
			announced: map[string][]string{"default/s": {"r4", "ri"}, "default/t": {"r4", "ri"}},
		},
		{
			name: "shared address of several Services is one route",
			svcs: []*corev1.Service{lbSvc("s", cluster, "203.0.113.10"), lbSvc("t", cluster, "203.0.113.10")},
			eps:  []*discoveryv1.EndpointSlice{elsewhere, slice("t", ep{node: "n3"})},
			routes: map[string][]bgp.Route{
				"r4": {r("203.0.113.10/32", 0)}, "ri": {r("203.0.113.10/32", 0)},
			},
			announced: map[string][]string{"default/s": {"r4", "ri"}, "default/t": {"r4", "ri"}},
		},
		{
			name: "communities (standard, large, alias) and localPref only over iBGP",
			res: func(r *config.Resources) {
				r.Communities = []v1beta1.Community{{ObjectMeta: meta("c"), Spec: v1beta1.CommunitySpec{
					Communities: []v1beta1.CommunityAlias{{Name: "no-advertise", Value: "65535:65282"}}}}}
				r.BGPAdvs[0].Spec.Communities = []string{"65535:120", "large:65535:300:100", "no-advertise"}
				r.BGPAdvs[0].Spec.LocalPref = 150
			},
			svcs: []*corev1.Service{lbSvc("s", cluster, "203.0.113.5")},
			eps:  []*discoveryv1.EndpointSlice{elsewhere},
			routes: map[string][]bgp.Route{
				"r4": {r("203.0.113.5/32", 0, "65535:120", "65535:65282", "large:65535:300:100")},
				"ri": {r("203.0.113.5/32", 150, "65535:120", "65535:65282", "large:65535:300:100")},
			},
			announced: map[string][]string{"default/s": {"r4", "ri"}},
		},
		{
			name: "two advertisements of one pool merge communities per prefix",
			res: func(r *config.Resources) {
				r.BGPAdvs[0].Spec.Communities = []string{"65000:1"}
				r.BGPAdvs = append(r.BGPAdvs, v1beta1.BGPAdvertisement{ObjectMeta: meta("adv4b"), Spec: v1beta1.BGPAdvertisementSpec{
					IPAddressPools: []string{"pool4"}, Communities: []string{"65000:2"}, Peers: []string{"r4"}}})
			},
			svcs: []*corev1.Service{lbSvc("s", cluster, "203.0.113.5")},
			eps:  []*discoveryv1.EndpointSlice{elsewhere},
			routes: map[string][]bgp.Route{
				"r4": {r("203.0.113.5/32", 0, "65000:1", "65000:2")},
				"ri": {r("203.0.113.5/32", 0, "65000:1")},
			},
			announced: map[string][]string{"default/s": {"r4", "ri"}},
		},
		{
			name: "IPv6 address goes to the IPv6 session, aggregated by aggregationLengthV6",
			res:  func(r *config.Resources) { r.BGPAdvs[1].Spec.AggregationLengthV6 = ptr.To[int32](64) },
			svcs: []*corev1.Service{lbSvc("s", cluster, "2001:db8:1::5", "203.0.113.5")},
			eps:  []*discoveryv1.EndpointSlice{elsewhere},
			routes: map[string][]bgp.Route{
				"r4": {r("203.0.113.5/32", 0)}, "ri": {r("203.0.113.5/32", 0)},
				"r6": {r("2001:db8:1::/64", 0)},
			},
			announced: map[string][]string{"default/s": {"r4", "r6", "ri"}},
		},
		{
			name: "dual-stack session carries both families",
			res:  func(r *config.Resources) { r.Peers[0].Spec.DualStackAddressFamily = true },
			svcs: []*corev1.Service{lbSvc("s", cluster, "2001:db8:1::5", "203.0.113.5")},
			eps:  []*discoveryv1.EndpointSlice{elsewhere},
			routes: map[string][]bgp.Route{
				"r4": {r("203.0.113.5/32", 0), r("2001:db8:1::5/128", 0)},
				"ri": {r("203.0.113.5/32", 0)},
				"r6": {r("2001:db8:1::5/128", 0)},
			},
			announced: map[string][]string{"default/s": {"r4", "r6", "ri"}},
		},
		{
			name: "peer nodeSelectors: zone b node also peers with rb",
			node: node("n1", func(n *corev1.Node) { n.Labels["zone"] = "b" }),
			svcs: []*corev1.Service{lbSvc("s", cluster, "203.0.113.5")},
			eps:  []*discoveryv1.EndpointSlice{elsewhere},
			routes: map[string][]bgp.Route{
				"r4": {r("203.0.113.5/32", 0)}, "rb": {r("203.0.113.5/32", 0)}, "ri": {r("203.0.113.5/32", 0)},
			},
			announced: map[string][]string{"default/s": {"r4", "rb", "ri"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := world()
			if tt.res != nil {
				tt.res(&res)
			}
			built := config.Build(res, config.Options{Namespace: ns, BGPBackend: v1beta1.BGPTypeNative})
			if len(built.Errors) > 0 {
				t.Fatalf("config: %v", built.Errors)
			}
			n := tt.node
			if n == nil {
				n = node("n1")
			}
			got, err := Decide(Input{Config: built.Config, Node: n, Services: tt.svcs, EndpointSlices: tt.eps})
			if err != nil {
				t.Fatal(err)
			}
			wantRoutes := tt.routes
			if wantRoutes == nil {
				wantRoutes = map[string][]bgp.Route{}
			}
			if !reflect.DeepEqual(got.State.Routes, wantRoutes) {
				t.Errorf("routes:\n got %v\nwant %v", got.State.Routes, wantRoutes)
			}
			wantAnn := tt.announced
			if wantAnn == nil {
				wantAnn = map[string][]string{}
			}
			if !reflect.DeepEqual(got.Announced, wantAnn) {
				t.Errorf("announced = %v, want %v", got.Announced, wantAnn)
			}
			if len(got.Skipped) != len(tt.skipped) {
				t.Errorf("skipped = %v, want keys of %v", got.Skipped, tt.skipped)
			}
			for k, sub := range tt.skipped {
				if !strings.Contains(got.Skipped[k], sub) {
					t.Errorf("skipped[%s] = %q, want it to contain %q", k, got.Skipped[k], sub)
				}
			}
			// Sessions never depend on Services: peers matching the node.
			var names []string
			for _, s := range got.State.Sessions {
				names = append(names, s.Name)
			}
			wantSessions := []string{"r4", "r6", "ri"}
			if n.Labels["zone"] == "b" {
				wantSessions = []string{"r4", "r6", "rb", "ri"}
			}
			if !reflect.DeepEqual(names, wantSessions) {
				t.Errorf("sessions = %v, want %v", names, wantSessions)
			}
		})
	}
}

func TestSessions(t *testing.T) {
	tests := []struct {
		name     string
		res      func(*config.Resources)
		node     *corev1.Node
		check    func(t *testing.T, ss map[string]bgp.Session)
		problems []string
	}{
		{
			name: "router ID defaults to the node's IPv4 InternalIP, fields copied",
			res: func(r *config.Resources) {
				s := &r.Peers[0].Spec
				s.Port = ptr.To[uint16](1179)
				s.SrcAddress = "198.18.0.1"
				s.HoldTime = &metav1.Duration{Duration: 9e9}
				s.ConnectTime = &metav1.Duration{Duration: 2e9}
				s.Password = "secret"
				s.EBGPMultiHop = true
				s.EnableGracefulRestart = true
				s.VRFName = "red"
				s.LocalASN = 65100
			},
			check: func(t *testing.T, ss map[string]bgp.Session) {
				s := ss["r4"]
				if s.RouterID != netip.MustParseAddr("198.18.0.1") || s.Port != 1179 || s.SourceAddr != netip.MustParseAddr("198.18.0.1") ||
					*s.HoldTime != 9e9 || *s.KeepaliveTime != 3e9 || *s.ConnectTime != 2e9 || s.Password != "secret" ||
					!s.EBGPMultiHop || !s.GracefulRestart || s.VRF != "red" || s.LocalASN != 65100 || s.MyASN != 64512 || s.PeerASN != 64513 {
					t.Errorf("session r4 = %+v", s)
				}
				if s.NextHopIPv4.IsValid() || s.NextHopIPv6.IsValid() {
					t.Errorf("single-family session has next-hop overrides: %+v", s)
				}
			},
		},
		{
			name: "explicit routerID wins",
			res:  func(r *config.Resources) { r.Peers[0].Spec.RouterID = "10.255.0.1" },
			check: func(t *testing.T, ss map[string]bgp.Session) {
				if got := ss["r4"].RouterID; got != netip.MustParseAddr("10.255.0.1") {
					t.Errorf("router ID = %s", got)
				}
				if got := ss["ri"].RouterID; got != netip.MustParseAddr("198.18.0.1") {
					t.Errorf("other peer's router ID = %s", got)
				}
			},
		},
		{
			name: "dual-stack sessions get the node's other-family address as next hop",
			res: func(r *config.Resources) {
				r.Peers[0].Spec.DualStackAddressFamily = true
				r.Peers[1].Spec.DualStackAddressFamily = true
			},
			check: func(t *testing.T, ss map[string]bgp.Session) {
				if got := ss["r4"].NextHopIPv6; got != netip.MustParseAddr("2001:db8:18::1") {
					t.Errorf("r4 IPv6 next hop = %s", got)
				}
				if got := ss["r6"].NextHopIPv4; got != netip.MustParseAddr("198.18.0.1") {
					t.Errorf("r6 IPv4 next hop = %s", got)
				}
			},
		},
		{
			name: "node without IPv4 and no routerID: session left out with a problem",
			node: node("n1", func(n *corev1.Node) {
				n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "2001:db8:18::1"}}
			}),
			res: func(r *config.Resources) {
				for i := range r.Peers {
					if r.Peers[i].Name != "r4" {
						r.Peers[i].Spec.RouterID = "10.0.0.1"
					}
				}
			},
			check: func(t *testing.T, ss map[string]bgp.Session) {
				if _, ok := ss["r4"]; ok {
					t.Error("r4 opened without router ID")
				}
				if _, ok := ss["r6"]; !ok {
					t.Error("r6 (explicit routerID) missing")
				}
			},
			problems: []string{"peer r4: no routerID"},
		},
		{
			name: "ExternalIP is the fallback for the router ID",
			node: node("n1", func(n *corev1.Node) {
				n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeExternalIP, Address: "198.18.0.9"}}
			}),
			check: func(t *testing.T, ss map[string]bgp.Session) {
				if got := ss["r4"].RouterID; got != netip.MustParseAddr("198.18.0.9") {
					t.Errorf("router ID = %s", got)
				}
			},
		},
		{
			name: "password Secret not there yet: session waits",
			res:  func(r *config.Resources) { r.Peers[0].Spec.PasswordSecret = corev1.SecretReference{Name: "pw"} },
			check: func(t *testing.T, ss map[string]bgp.Session) {
				if _, ok := ss["r4"]; ok {
					t.Error("r4 opened without its password")
				}
			},
			problems: []string{`peer r4: waiting for password Secret "pw"`},
		},
		{
			name: "password from the Secret",
			res: func(r *config.Resources) {
				r.Peers[0].Spec.PasswordSecret = corev1.SecretReference{Name: "pw"}
				r.Secrets = []corev1.Secret{{ObjectMeta: meta("pw"), Type: corev1.SecretTypeBasicAuth, Data: map[string][]byte{"password": []byte("s3cret")}}}
			},
			check: func(t *testing.T, ss map[string]bgp.Session) {
				if got := ss["r4"].Password; got != "s3cret" {
					t.Errorf("password = %q", got)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := world()
			if tt.res != nil {
				tt.res(&res)
			}
			built := config.Build(res, config.Options{Namespace: ns, BGPBackend: v1beta1.BGPTypeNative})
			if len(built.Errors) > 0 {
				t.Fatalf("config: %v", built.Errors)
			}
			n := tt.node
			if n == nil {
				n = node("n1")
			}
			ss, problems := Sessions(built.Config, n)
			m := map[string]bgp.Session{}
			for _, s := range ss {
				m[s.Name] = s
			}
			tt.check(t, m)
			if len(problems) != len(tt.problems) {
				t.Fatalf("problems = %q, want %q", problems, tt.problems)
			}
			for i := range problems {
				if !strings.HasPrefix(problems[i], tt.problems[i]) {
					t.Errorf("problem %d = %q, want prefix %q", i, problems[i], tt.problems[i])
				}
			}
		})
	}
}

func TestReceivedBy(t *testing.T) {
	st := func(name string, s bgp.SessionState) bgp.SessionStatus {
		return bgp.SessionStatus{Name: name, State: s}
	}
	for _, tc := range []struct {
		name        string
		announced   map[string][]string
		sessions    []bgp.SessionStatus
		want        map[string][]string
		wantPending bool
	}{
		{name: "nothing announced", announced: map[string][]string{}, sessions: []bgp.SessionStatus{st("a", bgp.StateActive)}, want: map[string][]string{}},
		{name: "all established", announced: map[string][]string{"ns/s": {"a", "b"}},
			sessions: []bgp.SessionStatus{st("a", bgp.StateEstablished), st("b", bgp.StateEstablished)},
			want:     map[string][]string{"ns/s": {"a", "b"}}},
		{name: "one session down keeps the other", announced: map[string][]string{"ns/s": {"a", "b"}},
			sessions: []bgp.SessionStatus{st("a", bgp.StateEstablished), st("b", bgp.StateOpenSent)},
			want:     map[string][]string{"ns/s": {"a"}}, wantPending: true},
		{name: "no session up drops the service", announced: map[string][]string{"ns/s": {"b"}, "ns/t": {"a"}},
			sessions: []bgp.SessionStatus{st("a", bgp.StateEstablished), st("b", bgp.StateIdle)},
			want:     map[string][]string{"ns/t": {"a"}}, wantPending: true},
		{name: "unknown session counts as not up", announced: map[string][]string{"ns/s": {"gone"}},
			want: map[string][]string{}, wantPending: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, pending := ReceivedBy(tc.announced, tc.sessions)
			if !reflect.DeepEqual(got, tc.want) || pending != tc.wantPending {
				t.Errorf("got %v pending %v, want %v pending %v", got, pending, tc.want, tc.wantPending)
			}
		})
	}
}
