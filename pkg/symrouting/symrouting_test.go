package symrouting

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
)

const scenario = "symmetric-routing-vrf"

// scenariosDir finds the seed scenarios like test/envtest.ScenariosDir:
// $LBSTACK_SCENARIOS, else <repo root>/config/samples/scenarios.
func scenariosDir() (string, error) {
	if d := os.Getenv("LBSTACK_SCENARIOS"); d != "" {
		return d, nil
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(data), []byte("module github.com/lbstack/lbstack\n")) {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("lbstack repository root not found")
		}
		dir = parent
	}
	d := filepath.Join(dir, "config", "samples", "scenarios")
	if _, err := os.Stat(d); err != nil {
		return "", err
	}
	return d, nil
}

// loadScenario decodes the scenario's manifests into in.
func loadScenario(t *testing.T, in *Inputs) {
	t.Helper()
	root, err := scenariosDir()
	if err != nil {
		t.Skipf("seed scenarios not found (set LBSTACK_SCENARIOS): %v", err)
	}
	dir := filepath.Join(root, scenario)
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Skipf("scenario %s not found in %s", scenario, root)
	}
	slices.Sort(files)
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, doc := range strings.Split(string(data), "\n---") {
			if strings.TrimSpace(doc) == "" {
				continue
			}
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal([]byte(doc), &tm); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			var target any
			switch tm.Kind {
			case "NodeNetworkConfigurationPolicy":
				in.Policies = append(in.Policies, nmstatev1.NodeNetworkConfigurationPolicy{})
				target = &in.Policies[len(in.Policies)-1]
			case "BGPPeer":
				in.Peers = append(in.Peers, v1beta2.BGPPeer{})
				target = &in.Peers[len(in.Peers)-1]
			case "BGPAdvertisement":
				in.Advertisements = append(in.Advertisements, v1beta1.BGPAdvertisement{})
				target = &in.Advertisements[len(in.Advertisements)-1]
			case "IPAddressPool":
				in.Pools = append(in.Pools, v1beta1.IPAddressPool{})
				target = &in.Pools[len(in.Pools)-1]
			case "EgressService":
				in.EgressServices = append(in.EgressServices, ovnv1.EgressService{})
				target = &in.EgressServices[len(in.EgressServices)-1]
			case "MetalLB":
				var m v1beta1.MetalLB
				if err := yaml.Unmarshal([]byte(doc), &m); err != nil {
					t.Fatalf("%s: %v", f, err)
				}
				in.Backend = m.Spec.BGPType
				in.MetalLB = ObjectRef{Kind: KindMetalLB, Namespace: m.Namespace, Name: m.Name}
				continue
			default:
				t.Fatalf("%s: unexpected kind %q", f, tm.Kind)
			}
			if err := yaml.UnmarshalStrict([]byte(doc), target); err != nil {
				t.Fatalf("%s: %v", f, err)
			}
		}
	}
	if len(in.Policies) != 1 || len(in.Peers) != 1 || len(in.Advertisements) != 1 || len(in.Pools) != 1 || len(in.EgressServices) != 1 {
		t.Fatalf("scenario %s changed: %d policies, %d peers, %d advertisements, %d pools, %d egress services",
			scenario, len(in.Policies), len(in.Peers), len(in.Advertisements), len(in.Pools), len(in.EgressServices))
	}
}

const nodeStateVRF = `interfaces:
- name: ens4vrf
  type: vrf
  state: up
  vrf:
    port:
    - ens4
    route-table-id: %d
- name: ens4
  type: ethernet
  state: up
  ipv4:
    enabled: true
    address:
    - ip: 198.19.130.130
      prefix-length: 24
`

const nodeStateNoVRF = `interfaces:
- name: ens4
  type: ethernet
  state: up
  ipv4:
    enabled: true
    address:
    - ip: 198.19.130.130
      prefix-length: 24
`

var nodeNames2 = []string{"worker-0", "worker-1"}

func nodeState(node, raw string) nmstatev1beta1.NodeNetworkState {
	return nmstatev1beta1.NodeNetworkState{
		ObjectMeta: metav1.ObjectMeta{Name: node},
		Status:     shared.NodeNetworkStateStatus{CurrentState: shared.NewState(raw)},
	}
}

func enactment(node, policy string, gen int64) nmstatev1beta1.NodeNetworkConfigurationEnactment {
	return nmstatev1beta1.NodeNetworkConfigurationEnactment{
		ObjectMeta: metav1.ObjectMeta{Name: node + "." + policy},
		Status: shared.NodeNetworkConfigurationEnactmentStatus{
			PolicyGeneration: gen,
			Conditions: shared.ConditionList{
				{Type: "Available", Status: corev1.ConditionTrue, Reason: "SuccessfullyConfigured"},
				{Type: "Progressing", Status: corev1.ConditionFalse},
				{Type: "Failing", Status: corev1.ConditionFalse},
			},
		},
	}
}

func lbService(ns, name, ip string, annotations map[string]string) corev1.Service {
	s := corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Annotations: annotations},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
	}
	if ip != "" {
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	}
	return s
}

// base is the scenario as written, plus the cluster around it.
func base(t *testing.T) Inputs {
	t.Helper()
	in := Inputs{NMStateInstalled: true, OVNInstalled: true}
	loadScenario(t, &in)
	in.Policies[0].Generation = 2
	for i, n := range nodeNames2 {
		node := corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n, Labels: map[string]string{"vrf": "true"}}}
		if i == 0 {
			node.Labels[ovnv1.NodeLabel("test", "server1")] = ""
		}
		in.Nodes = append(in.Nodes, node)
		in.States = append(in.States, nodeState(n, fmt.Sprintf(nodeStateVRF, 2)))
		in.Enactments = append(in.Enactments, enactment(n, "vrfpolicy", 2))
	}
	in.Services = []corev1.Service{lbService("test", "server1", "203.0.113.200",
		map[string]string{"metallb.io/address-pool": "first-pool"})}
	in.ClusterNetworks = []netip.Prefix{netip.MustParsePrefix("10.132.0.0/14")}
	in.ServiceNetworks = []netip.Prefix{netip.MustParsePrefix("172.30.0.0/16")}
	in.NetworksSource = `config.openshift.io/v1 Network "cluster"`
	return in
}

func setPolicyYAML(t *testing.T, in *Inputs, old, new string) {
	t.Helper()
	raw := string(in.Policies[0].Spec.DesiredState.Raw)
	if !strings.Contains(raw, old) {
		t.Fatalf("policy desiredState has no %q:\n%s", old, raw)
	}
	in.Policies[0].Spec.DesiredState = shared.NewState(strings.Replace(raw, old, new, 1))
}

var (
	refES     = ObjectRef{Kind: KindEgressService, Namespace: "test", Name: "server1"}
	refPeer   = ObjectRef{Kind: KindBGPPeer, Namespace: "metallb-system", Name: "frrviavrf"}
	refPolicy = ObjectRef{Kind: KindPolicy, Name: "vrfpolicy"}
	refAdv    = ObjectRef{Kind: KindAdvertisement, Namespace: "metallb-system", Name: "first-adv"}
	refPool   = ObjectRef{Kind: KindPool, Namespace: "metallb-system", Name: "first-pool"}
	refNet    = ObjectRef{Kind: KindOperatorNetwork, Name: "cluster"}
)

// want is one expected finding: Objects must all be in the finding's
// Objects and named in its message.
type want struct {
	check    string
	severity Severity
	objects  []ObjectRef
	field    string
	contains []string
}

var autoAssignWarning = want{CheckPoolAutoAssign, Warning, []ObjectRef{refPool, refES}, "spec.autoAssign", nil}

func TestCheck(t *testing.T) {
	tests := []struct {
		name   string
		change func(t *testing.T, in *Inputs)
		// want lists every finding, in Check's order.
		want []want
	}{
		{
			name: "scenario as written",
			want: []want{autoAssignWarning},
		},
		{
			name: "EgressService network differs from the route-table-id",
			change: func(t *testing.T, in *Inputs) {
				in.EgressServices[0].Spec.Network = "3"
			},
			want: []want{
				{CheckEgressNetworkMismatch, Error, []ObjectRef{refES, refPeer, refPolicy}, "spec.network",
					[]string{`egressservice "test/server1" spec.network is "3" but the VRF ens4vrf that bgppeer "metallb-system/frrviavrf" uses has route-table-id 2 in nodenetworkconfigurationpolicy "vrfpolicy": set spec.network to "2"`}},
				autoAssignWarning,
			},
		},
		{
			name: "EgressService named differently from the Service",
			change: func(t *testing.T, in *Inputs) {
				in.EgressServices[0].Name = "server2"
			},
			want: []want{
				{CheckEgressServiceNoService, Error,
					[]ObjectRef{{Kind: KindEgressService, Namespace: "test", Name: "server2"}, {Kind: KindService, Namespace: "test", Name: "server2"}}, "metadata.name",
					[]string{"without an egressservice: server1"}},
			},
		},
		{
			name: "advertisement selects another EgressService's node",
			change: func(t *testing.T, in *Inputs) {
				in.Advertisements[0].Spec.NodeSelectors[0].MatchLabels = map[string]string{ovnv1.NodeLabel("test", "server2"): ""}
			},
			want: []want{
				{CheckAdvertisementNodeSelector, Error, []ObjectRef{refAdv, refES}, "spec.nodeSelectors",
					[]string{"egress-service.k8s.ovn.org/test-server2=", `{matchLabels: {egress-service.k8s.ovn.org/test-server1: ""}}`}},
				autoAssignWarning,
			},
		},
		{
			name: "peer VRF not defined",
			change: func(t *testing.T, in *Inputs) {
				in.Peers[0].Spec.VRFName = "ens5vrf"
			},
			want: []want{
				{CheckVRFNotDefined, Error, []ObjectRef{refPeer, refPolicy}, "spec.vrf",
					[]string{`spec.vrf is "ens5vrf"`, "ens4vrf (nodenetworkconfigurationpolicy"}},
				autoAssignWarning,
			},
		},
		{
			name: "route rule for the cluster network missing",
			change: func(t *testing.T, in *Inputs) {
				setPolicyYAML(t, in, "  - ip-to: 10.132.0.0/14\n    priority: 998\n    route-table: 254\n", "")
			},
			want: []want{
				{CheckMainTableRuleMissing, Error, []ObjectRef{refPolicy, refPeer}, "spec.desiredState.route-rules.config",
					[]string{"cluster network 10.132.0.0/14", `config.openshift.io/v1 Network "cluster"`, "{ip-to: 10.132.0.0/14, priority: 998, route-table: 254}"}},
				autoAssignWarning,
			},
		},
		{
			name: "route rule priority after the l3mdev rule",
			change: func(t *testing.T, in *Inputs) {
				setPolicyYAML(t, in, "  - ip-to: 172.30.0.0/16\n    priority: 998", "  - ip-to: 172.30.0.0/16\n    priority: 1001")
			},
			want: []want{
				{CheckMainTableRuleMissing, Error, []ObjectRef{refPolicy, refPeer}, "spec.desiredState.route-rules.config",
					[]string{"service network 172.30.0.0/16"}},
				autoAssignWarning,
			},
		},
		{
			name: "route-table-id 1000 in both the policy and the EgressService",
			change: func(t *testing.T, in *Inputs) {
				setPolicyYAML(t, in, "route-table-id: 2", "route-table-id: 1000")
				setPolicyYAML(t, in, "table-id: 2", "table-id: 1000")
				in.EgressServices[0].Spec.Network = "1000"
				for i := range in.States {
					in.States[i] = nodeState(in.States[i].Name, fmt.Sprintf(nodeStateVRF, 1000))
				}
			},
			want: []want{
				{CheckEgressNetworkInvalid, Error, []ObjectRef{refES, refPeer, refPolicy}, "spec.network",
					[]string{"OpenShift reserves", "below 1000"}},
				autoAssignWarning,
			},
		},
		{
			name: "peer node not selected by the policy",
			change: func(t *testing.T, in *Inputs) {
				delete(in.Nodes[1].Labels, "vrf")
			},
			want: []want{
				{CheckVRFNotOnPeerNodes, Error, []ObjectRef{refPeer, refPolicy}, "spec.nodeSelectors",
					[]string{"node(s) worker-1 "}},
				autoAssignWarning,
			},
		},
		{
			name: "EgressService may pick a node without the VRF",
			change: func(t *testing.T, in *Inputs) {
				in.EgressServices[0].Spec.NodeSelector = metav1.LabelSelector{}
				in.Peers[0].Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"vrf": "true"}}}
				delete(in.Nodes[1].Labels, "vrf")
			},
			want: []want{
				{CheckEgressNodesWithoutVRF, Error, []ObjectRef{refES, refPeer}, "spec.nodeSelector",
					[]string{"node(s) worker-1 "}},
				autoAssignWarning,
			},
		},
		{
			name: "enactment behind the policy generation",
			change: func(t *testing.T, in *Inputs) {
				in.Enactments[1].Status.PolicyGeneration = 1
			},
			want: []want{
				autoAssignWarning,
				{CheckEnactmentProgressing, Warning, []ObjectRef{{Kind: KindEnactment, Name: "worker-1.vrfpolicy"}, refPolicy}, "status.policyGeneration",
					[]string{"status.policyGeneration is 1", "metadata.generation 2"}},
			},
		},
		{
			name: "enactment failing",
			change: func(t *testing.T, in *Inputs) {
				in.Enactments[0].Status.Conditions = shared.ConditionList{
					{Type: "Available", Status: corev1.ConditionFalse},
					{Type: "Failing", Status: corev1.ConditionTrue, Reason: "FailedToConfigure", Message: "error reconciling NodeNetworkConfigurationPolicy"},
				}
			},
			want: []want{
				{CheckEnactmentFailed, Error, []ObjectRef{{Kind: KindEnactment, Name: "worker-0.vrfpolicy"}, refPolicy}, "status.conditions",
					[]string{"error reconciling NodeNetworkConfigurationPolicy"}},
				autoAssignWarning,
			},
		},
		{
			name: "node state without the VRF",
			change: func(t *testing.T, in *Inputs) {
				in.States[0] = nodeState("worker-0", nodeStateNoVRF)
			},
			want: []want{
				{CheckVRFNotOnNode, Error, []ObjectRef{{Kind: KindState, Name: "worker-0"}, refPolicy, refPeer}, "status.currentState.interfaces",
					[]string{"shows no interface ens4vrf", `nodenetworkconfigurationenactment "worker-0.vrfpolicy"`}},
				autoAssignWarning,
			},
		},
		{
			name: "node state missing",
			change: func(t *testing.T, in *Inputs) {
				in.States = in.States[1:]
			},
			want: []want{
				autoAssignWarning,
				{CheckNodeStateMissing, Unknown, []ObjectRef{{Kind: KindNode, Name: "worker-0"}, refPolicy, refPeer}, "status.currentState", nil},
			},
		},
		{
			name: "advertisement to all peers with a non-VRF peer",
			change: func(t *testing.T, in *Inputs) {
				in.Advertisements[0].Spec.Peers = nil
				in.Peers = append(in.Peers, v1beta2.BGPPeer{
					ObjectMeta: metav1.ObjectMeta{Namespace: "metallb-system", Name: "plain"},
					Spec:       v1beta2.BGPPeerSpec{MyASN: 100, ASN: 300, Address: "192.0.2.1"},
				})
			},
			want: []want{
				{CheckAdvertisementNonVRFPeer, Error, []ObjectRef{refAdv, refES, {Kind: KindBGPPeer, Namespace: "metallb-system", Name: "plain"}}, "spec.peers",
					[]string{"set spec.peers to [frrviavrf]"}},
				autoAssignWarning,
			},
		},
		{
			name: "frr-k8s backend",
			change: func(t *testing.T, in *Inputs) {
				in.Backend = v1beta1.BGPTypeFRRK8s
			},
			want: []want{
				{CheckBackendCannotBindVRF, Error, []ObjectRef{{Kind: KindMetalLB, Namespace: "metallb-system", Name: "metallb"}, refPeer}, "spec.bgpBackend",
					[]string{`"frr-k8s"`}},
				autoAssignWarning,
			},
		},
		{
			name: "sourceIPBy Network without routingViaHost",
			change: func(t *testing.T, in *Inputs) {
				in.EgressServices[0].Spec.SourceIPBy = ovnv1.SourceIPNetwork
				in.OVN = &OVNConfig{RoutingViaHost: false, InternalMasqueradeSubnetV4: "169.254.169.0/29"}
				setPolicyYAML(t, in, "route-rules:\n  config:\n", "route-rules:\n  config:\n  - ip-to: 169.254.169.0/29\n    priority: 998\n    route-table: 254\n")
			},
			want: []want{
				{CheckRoutingViaHostDisabled, Error, []ObjectRef{refNet, refES}, "spec.defaultNetwork.ovnKubernetesConfig.gatewayConfig.routingViaHost", nil},
			},
		},
		{
			name: "sourceIPBy Network without an operator Network",
			change: func(t *testing.T, in *Inputs) {
				in.EgressServices[0].Spec.SourceIPBy = ovnv1.SourceIPNetwork
			},
			want: []want{
				{CheckOVNConfigUnknown, Unknown, []ObjectRef{refES, refNet}, "spec.sourceIPBy", nil},
			},
		},
		{
			name: "masquerade subnet configured but not kept in the main table",
			change: func(t *testing.T, in *Inputs) {
				in.OVN = &OVNConfig{RoutingViaHost: true, InternalMasqueradeSubnetV4: "169.254.0.0/17"}
			},
			want: []want{
				{CheckMasqueradeRuleMissing, Error, []ObjectRef{refPolicy, refNet, refPeer}, "spec.desiredState.route-rules.config",
					[]string{"169.254.0.0/17", "internalMasqueradeSubnet"}},
				autoAssignWarning,
			},
		},
		{
			name: "masquerade subnet from the node annotation",
			change: func(t *testing.T, in *Inputs) {
				in.OVN = &OVNConfig{RoutingViaHost: true}
				for i := range in.Nodes {
					in.Nodes[i].Annotations = map[string]string{NodeMasqueradeAnnotation: `{"ipv4":"169.254.0.0/17","ipv6":"fd69::/112"}`}
				}
			},
			want: []want{
				{CheckMasqueradeRuleMissing, Error, []ObjectRef{refPolicy, {Kind: KindNode, Name: "worker-0"}, refPeer}, "spec.desiredState.route-rules.config",
					[]string{"169.254.0.0/17", `node "worker-0", node "worker-1"`}},
				autoAssignWarning,
			},
		},
		{
			name: "masquerade subnet unknown, neither default kept",
			change: func(t *testing.T, in *Inputs) {
				in.OVN = &OVNConfig{RoutingViaHost: true}
			},
			want: []want{
				{CheckMasqueradeRuleMissing, Error, []ObjectRef{refPolicy, refNet, refPeer}, "spec.desiredState.route-rules.config",
					[]string{"169.254.169.0/29", "169.254.0.0/17"}},
				autoAssignWarning,
			},
		},
		{
			name: "NMState not installed",
			change: func(t *testing.T, in *Inputs) {
				in.NMStateInstalled = false
				in.Policies, in.States, in.Enactments = nil, nil, nil
			},
			want: []want{
				autoAssignWarning,
				{CheckNMStateNotInstalled, Unknown, []ObjectRef{refPeer}, "spec.vrf", []string{"NMState"}},
			},
		},
		{
			name: "main-table networks unknown",
			change: func(t *testing.T, in *Inputs) {
				in.ClusterNetworks, in.ServiceNetworks, in.NetworksSource = nil, nil, ""
			},
			want: []want{
				autoAssignWarning,
				{CheckMainTableNetworksUnknown, Unknown, []ObjectRef{refPeer}, "spec.mainTableNetworks", []string{"spec.mainTableNetworks"}},
			},
		},
		{
			name: "EgressService network empty",
			change: func(t *testing.T, in *Inputs) {
				in.EgressServices[0].Spec.Network = ""
			},
			want: []want{
				{CheckEgressNetworkEmpty, Error, []ObjectRef{refES, refPeer, refPolicy}, "spec.network", []string{`set spec.network to "2"`}},
				autoAssignWarning,
			},
		},
		{
			name: "Service not a LoadBalancer",
			change: func(t *testing.T, in *Inputs) {
				in.Services[0].Spec.Type = corev1.ServiceTypeClusterIP
			},
			want: []want{
				{CheckEgressServiceNotLoadBalancer, Error, []ObjectRef{{Kind: KindService, Namespace: "test", Name: "server1"}, refES}, "spec.type", nil},
			},
		},
		{
			name: "pool shared with another Service",
			change: func(t *testing.T, in *Inputs) {
				in.Pools[0].Spec.Addresses = []string{"203.0.113.200/31"}
				in.Services = append(in.Services, lbService("other", "web", "203.0.113.201", nil))
			},
			want: []want{
				{CheckPoolShared, Error, []ObjectRef{refPool, {Kind: KindService, Namespace: "other", Name: "web"}, refES}, "status.loadBalancer.ingress", nil},
				autoAssignWarning,
			},
		},
		{
			name: "pool not requested",
			change: func(t *testing.T, in *Inputs) {
				in.Services[0].Annotations = nil
			},
			want: []want{
				{CheckPoolNotRequested, Warning, []ObjectRef{{Kind: KindService, Namespace: "test", Name: "server1"}, refPool, refES}, "metadata.annotations", nil},
			},
		},
		{
			name: "dedicated pool",
			change: func(t *testing.T, in *Inputs) {
				f := false
				in.Pools[0].Spec.AutoAssign = &f
			},
		},
		{
			name: "EgressService name too long",
			change: func(t *testing.T, in *Inputs) {
				long := strings.Repeat("a", 60)
				in.EgressServices[0].Namespace = long
				in.Services[0].Namespace = long
				in.Advertisements[0].Spec.NodeSelectors[0].MatchLabels = map[string]string{ovnv1.NodeLabel(long, "server1"): ""}
			},
			want: []want{
				{CheckEgressServiceNameTooLong, Error, []ObjectRef{{Kind: KindEgressService, Namespace: strings.Repeat("a", 60), Name: "server1"}, {Kind: KindService, Namespace: strings.Repeat("a", 60), Name: "server1"}}, "metadata.name", nil},
				{CheckPoolAutoAssign, Warning, []ObjectRef{refPool, {Kind: KindEgressService, Namespace: strings.Repeat("a", 60), Name: "server1"}}, "spec.autoAssign", nil},
			},
		},
		{
			name: "VRF without a route-table-id",
			change: func(t *testing.T, in *Inputs) {
				setPolicyYAML(t, in, "    route-table-id: 2\n", "")
			},
			want: []want{
				{CheckVRFRouteTableMissing, Error, []ObjectRef{refPolicy, refPeer}, "spec.desiredState.interfaces[0].vrf.route-table-id", nil},
				autoAssignWarning,
			},
		},
		{
			name: "VRF port without an address",
			change: func(t *testing.T, in *Inputs) {
				setPolicyYAML(t, in, "    enabled: true\n", "    enabled: false\n")
			},
			want: []want{
				{CheckVRFPortNoAddress, Error, []ObjectRef{refPolicy, refPeer}, "spec.desiredState.interfaces[0].vrf.port",
					[]string{"has port(s) ens4 but gives none of them an enabled static ipv4/ipv6 address", "(spec.peerAddress 198.19.130.1)"}},
				autoAssignWarning,
			},
		},
		{
			name: "VRF interface down",
			change: func(t *testing.T, in *Inputs) {
				setPolicyYAML(t, in, "- name: ens4vrf\n  state: up\n", "- name: ens4vrf\n  state: down\n")
			},
			want: []want{
				{CheckVRFInterfaceInvalid, Error, []ObjectRef{refPolicy, refPeer}, "spec.desiredState.interfaces[0].state", []string{`state "down"`}},
				autoAssignWarning,
			},
		},
		{
			name: "policy unparsable",
			change: func(t *testing.T, in *Inputs) {
				in.Policies[0].Spec.DesiredState = shared.NewState("interfaces: {")
			},
			want: []want{
				{CheckVRFNotDefined, Error, []ObjectRef{refPeer}, "spec.vrf", []string{"no policy defines any VRF"}},
				{CheckPolicyUnparsable, Error, []ObjectRef{refPolicy}, "spec.desiredState", nil},
				autoAssignWarning,
			},
		},
		{
			name: "enactment missing",
			change: func(t *testing.T, in *Inputs) {
				in.Enactments = in.Enactments[:1]
			},
			want: []want{
				autoAssignWarning,
				{CheckEnactmentProgressing, Warning, []ObjectRef{{Kind: KindEnactment, Name: "worker-1.vrfpolicy"}, refPolicy}, "status.conditions",
					[]string{"does not exist"}},
			},
		},
		{
			name: "EgressService network set, pool announced to no VRF peer",
			change: func(t *testing.T, in *Inputs) {
				in.Peers[0].Spec.VRFName = ""
			},
			want: []want{
				{CheckEgressNoVRFPeer, Warning, []ObjectRef{refES, refPool}, "spec.network", []string{`spec.network is "2"`}},
				autoAssignWarning,
			},
		},
		{
			name: "Service asks for a pool that does not exist",
			change: func(t *testing.T, in *Inputs) {
				in.Services[0].Annotations = map[string]string{"metallb.universe.tf/address-pool": "second-pool"}
			},
			want: []want{
				{CheckEgressServicePoolNotFound, Error, []ObjectRef{{Kind: KindService, Namespace: "test", Name: "server1"}, {Kind: KindPool, Name: "second-pool"}, refES}, "metadata.annotations",
					[]string{"(annotation metallb.universe.tf/address-pool)"}},
			},
		},
		{
			name: "Service address in no pool",
			change: func(t *testing.T, in *Inputs) {
				in.Services[0].Annotations = nil
				in.Services[0].Status.LoadBalancer.Ingress[0].IP = "192.0.2.200"
			},
			want: []want{
				{CheckEgressServicePoolNotFound, Unknown, []ObjectRef{{Kind: KindService, Namespace: "test", Name: "server1"}, refES}, "status.loadBalancer.ingress", []string{"192.0.2.200"}},
			},
		},
		{
			name: "Service without an ingress address",
			change: func(t *testing.T, in *Inputs) {
				in.Services[0].Status.LoadBalancer.Ingress = nil
			},
			want: []want{
				{CheckEgressServiceNoIngress, Error, []ObjectRef{{Kind: KindService, Namespace: "test", Name: "server1"}, refES}, "status.loadBalancer.ingress", nil},
				autoAssignWarning,
			},
		},
		{
			name: "address-pool annotation spellings disagree",
			change: func(t *testing.T, in *Inputs) {
				in.Services[0].Annotations["metallb.universe.tf/address-pool"] = "second-pool"
			},
			want: []want{
				{CheckServiceAnnotationConflict, Error, []ObjectRef{{Kind: KindService, Namespace: "test", Name: "server1"}, refES}, "metadata.annotations",
					[]string{`metallb.io/address-pool ("first-pool")`, `metallb.universe.tf/address-pool ("second-pool")`, "as if the service asked for no pool"}},
				// The pool is found by the Service's address.
				{CheckPoolNotRequested, Warning, []ObjectRef{{Kind: KindService, Namespace: "test", Name: "server1"}, refPool, refES}, "metadata.annotations", nil},
			},
		},
		{
			name: "loadBalancerIPs annotation spellings disagree",
			change: func(t *testing.T, in *Inputs) {
				in.Services[0].Annotations = map[string]string{
					"metallb.io/loadBalancerIPs":          "203.0.113.200",
					"metallb.universe.tf/loadBalancerIPs": "203.0.113.201",
				}
			},
			want: []want{
				{CheckServiceAnnotationConflict, Error, []ObjectRef{{Kind: KindService, Namespace: "test", Name: "server1"}, refES}, "metadata.annotations",
					[]string{"as if the service asked for no address"}},
				{CheckPoolNotRequested, Warning, []ObjectRef{{Kind: KindService, Namespace: "test", Name: "server1"}, refPool, refES}, "metadata.annotations", nil},
			},
		},
		{
			name: "Service asks for its address, not its pool",
			change: func(t *testing.T, in *Inputs) {
				in.Services[0].Annotations = map[string]string{"metallb.universe.tf/loadBalancerIPs": "203.0.113.200"}
			},
			want: []want{autoAssignWarning},
		},
		{
			name: "advertisement's service selector does not match the Service",
			change: func(t *testing.T, in *Inputs) {
				in.Advertisements[0].Spec.ServiceSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"app": "other"}}}
			},
			want: []want{
				{CheckEgressNoVRFPeer, Warning, []ObjectRef{refES, refPool}, "spec.network", nil},
				autoAssignWarning,
			},
		},
		{
			name: "advertisement selects the pool by label",
			change: func(t *testing.T, in *Inputs) {
				in.Pools[0].Labels = map[string]string{"egress": "server1"}
				in.Advertisements[0].Spec.IPAddressPools = nil
				in.Advertisements[0].Spec.IPAddressPoolSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"egress": "server1"}}}
				in.EgressServices[0].Spec.Network = "3"
			},
			want: []want{
				{CheckEgressNetworkMismatch, Error, []ObjectRef{refES, refPeer, refPolicy}, "spec.network", nil},
				autoAssignWarning,
			},
		},
		{
			name: "advertisement names a non-VRF peer",
			change: func(t *testing.T, in *Inputs) {
				in.Advertisements[0].Spec.Peers = []string{"frrviavrf", "plain"}
				in.Peers = append(in.Peers, v1beta2.BGPPeer{
					ObjectMeta: metav1.ObjectMeta{Namespace: "metallb-system", Name: "plain"},
					Spec:       v1beta2.BGPPeerSpec{MyASN: 100, ASN: 300, Address: "192.0.2.1"},
				})
			},
			want: []want{
				{CheckAdvertisementNonVRFPeer, Error, []ObjectRef{refAdv, {Kind: KindBGPPeer, Namespace: "metallb-system", Name: "plain"}, refES}, "spec.peers[1]",
					[]string{"spec.peers[1] is", "outside any VRF", "(frrviavrf)"}},
				autoAssignWarning,
			},
		},
		{
			name: "VRF peer MetalLB refuses is checked all the same",
			change: func(t *testing.T, in *Inputs) {
				in.Peers[0].Spec.HoldTime = &metav1.Duration{Duration: time.Second}
				in.Peers[0].Spec.VRFName = "ens5vrf"
			},
			want: []want{
				{CheckVRFNotDefined, Error, []ObjectRef{refPeer, refPolicy}, "spec.vrf", nil},
				autoAssignWarning,
			},
		},
		{
			name: "advertisement with an invalid node selector selects no node",
			change: func(t *testing.T, in *Inputs) {
				in.Advertisements[0].Spec.NodeSelectors = append(in.Advertisements[0].Spec.NodeSelectors,
					metav1.LabelSelector{MatchLabels: map[string]string{"bad key!": ""}})
			},
			want: []want{autoAssignWarning},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := base(t)
			if tt.change != nil {
				tt.change(t, &in)
			}
			got := Check(in)
			defer func() {
				if t.Failed() {
					for _, f := range got {
						t.Logf("got %s %v field %s", f, f.Objects, f.Field)
					}
				}
			}()
			if len(got) != len(tt.want) {
				t.Fatalf("got %d findings, want %d", len(got), len(tt.want))
			}
			for i, w := range tt.want {
				f := got[i]
				if f.Check != w.check || f.Severity != w.severity || f.Field != w.field {
					t.Errorf("finding %d: got %s %s field %q, want %s %s field %q", i, f.Severity, f.Check, f.Field, w.severity, w.check, w.field)
				}
				for _, o := range w.objects {
					if !slices.Contains(f.Objects, o) {
						t.Errorf("finding %d (%s): objects %v lack %v", i, f.Check, f.Objects, o)
					}
					if !strings.Contains(f.Message, o.String()) {
						t.Errorf("finding %d (%s): message does not name %s: %s", i, f.Check, o, f.Message)
					}
				}
				for _, s := range w.contains {
					if !strings.Contains(f.Message, s) {
						t.Errorf("finding %d (%s): message lacks %q: %s", i, f.Check, s, f.Message)
					}
				}
			}
		})
	}
}

func TestCheckDeterministic(t *testing.T) {
	in := base(t)
	in.EgressServices[0].Spec.Network = "3"
	in.Advertisements[0].Spec.Peers = nil
	first := Check(in)
	slices.Reverse(in.Nodes)
	slices.Reverse(in.States)
	slices.Reverse(in.Enactments)
	again := Check(in)
	if fmt.Sprint(first) != fmt.Sprint(again) {
		t.Errorf("order depends on input order:\n%v\n%v", first, again)
	}
}

func TestChecksListed(t *testing.T) {
	seen := map[string]bool{}
	for _, c := range Checks() {
		if c.ID == "" || c.Description == "" || seen[c.ID] {
			t.Errorf("bad or duplicate check %+v", c)
		}
		seen[c.ID] = true
	}
	// Every id used in this package must be listed: compare with the constants.
	for _, id := range []string{
		CheckVRFNotDefined, CheckVRFInterfaceInvalid, CheckVRFNotOnPeerNodes, CheckVRFRouteTableMissing,
		CheckVRFRouteTableReserved, CheckVRFRouteTableConflict, CheckVRFPortNoAddress, CheckPolicyUnparsable,
		CheckNMStateNotInstalled, CheckNodeStateMissing, CheckVRFNotOnNode, CheckEnactmentFailed,
		CheckEnactmentProgressing, CheckEgressNetworkMismatch, CheckEgressNetworkInvalid, CheckEgressNetworkEmpty,
		CheckEgressNoVRFPeer, CheckEgressNodesWithoutVRF, CheckEgressServiceNoService, CheckEgressServiceNotLoadBalancer,
		CheckEgressServiceNoIngress, CheckEgressServiceNameTooLong, CheckEgressServicePoolNotFound,
		CheckAdvertisementNodeSelector, CheckAdvertisementNonVRFPeer, CheckPoolNotRequested, CheckPoolAutoAssign,
		CheckPoolShared, CheckOVNConfigUnknown, CheckRoutingViaHostDisabled, CheckMainTableRuleMissing,
		CheckMasqueradeRuleMissing, CheckMainTableNetworksUnknown, CheckBackendCannotBindVRF,
	} {
		if !seen[id] {
			t.Errorf("check %s is not listed by Checks", id)
		}
	}
}

func TestObjectRefString(t *testing.T) {
	for _, tc := range []struct {
		ref  ObjectRef
		want string
	}{
		{refPeer, `bgppeer "metallb-system/frrviavrf"`},
		{refPolicy, `nodenetworkconfigurationpolicy "vrfpolicy"`},
		{ObjectRef{Kind: KindMetalLB}, `metallb`},
	} {
		if got := tc.ref.String(); got != tc.want {
			t.Errorf("%+v: got %s, want %s", tc.ref, got, tc.want)
		}
	}
}
