package lab

import (
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/projectcalico/api/pkg/lib/numorstring"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	calicov1 "github.com/lbstack/lbstack/pkg/calicoapi/v1"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/calicobird")

// scenarioCalico is calico-bgp's Calico side once lbstack has written its
// two fields (expect.md), with three nodes and its three Services.
func scenarioCalico() CalicoBIRDInput {
	asn := numorstring.ASNumber(65535)
	mesh := true
	cfg := &calicov1.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: v3.BGPConfigurationSpec{
		NodeToNodeMeshEnabled: &mesh, ASNumber: &asn, ListenPort: 178,
		ServiceLoadBalancerIPs: []v3.ServiceLoadBalancerIPBlock{
			{CIDR: "198.51.100.10/31"}, {CIDR: "198.51.100.12/30"}, {CIDR: "198.51.100.16/30"}, {CIDR: "198.51.100.20/32"}, {CIDR: "203.0.113.0/26"},
		},
		PrefixAdvertisements: []v3.PrefixAdvertisement{
			{CIDR: "198.51.100.10/31", Communities: []string{"65535:120"}},
			{CIDR: "198.51.100.12/30", Communities: []string{"65535:120"}},
			{CIDR: "198.51.100.16/30", Communities: []string{"65535:120"}},
			{CIDR: "198.51.100.20/32", Communities: []string{"65535:120"}},
			{CIDR: "203.0.113.0/26", Communities: []string{"65535:120", "65535:300:100"}},
		},
	}}
	return CalicoBIRDInput{
		Node: "lbl-node1", Address: "198.18.0.1", Config: cfg,
		Peers: []calicov1.BGPPeer{{ObjectMeta: metav1.ObjectMeta{Name: "tor-router"}, Spec: v3.BGPPeerSpec{PeerIP: "198.18.0.254", ASNumber: 65535}}},
		Nodes: []CalicoNode{{"lbl-node3", "198.18.0.3"}, {"lbl-node1", "198.18.0.1"}, {"lbl-node2", "198.18.0.2"}},
		Services: []CalicoService{
			{Name: "default/web-cluster", IPs: []string{"203.0.113.0"}, ReadyNodes: []string{"lbl-node1", "lbl-node2"}},
			{Name: "default/web-local", IPs: []string{"198.51.100.10"}, Local: true, ReadyNodes: []string{"lbl-node1", "lbl-node2"}},
			{Name: "default/dns", IPs: []string{"198.51.100.20"}},
		},
	}
}

func TestRenderCalicoBIRD(t *testing.T) {
	node2 := scenarioCalico()
	node2.Node, node2.Address = "lbl-node2", "198.18.0.2"
	node3 := scenarioCalico()
	node3.Node, node3.Address = "lbl-node3", "198.18.0.3"
	noConfig := scenarioCalico()
	noConfig.Config = nil
	meshOff := scenarioCalico()
	off := false
	meshOff.Config.Spec.NodeToNodeMeshEnabled = &off
	peers := scenarioCalico()
	peers.Peers = []calicov1.BGPPeer{
		{ObjectMeta: metav1.ObjectMeta{Name: "only-node2"}, Spec: v3.BGPPeerSpec{Node: "lbl-node2", PeerIP: "198.18.0.253", ASNumber: 65000}},
		{ObjectMeta: metav1.ObjectMeta{Name: "mine"}, Spec: v3.BGPPeerSpec{Node: "lbl-node1", PeerIP: "198.18.0.252:1179", ASNumber: 65001}},
		{ObjectMeta: metav1.ObjectMeta{Name: "all.nodes"}, Spec: v3.BGPPeerSpec{NodeSelector: "all()", PeerIP: "198.18.0.251", ASNumber: 65002}},
		{ObjectMeta: metav1.ObjectMeta{Name: "rack-a"}, Spec: v3.BGPPeerSpec{NodeSelector: "rack == 'a'", PeerIP: "198.18.0.250", ASNumber: 65003}},
		{ObjectMeta: metav1.ObjectMeta{Name: "v6"}, Spec: v3.BGPPeerSpec{PeerIP: "2001:db8:18::fe", ASNumber: 65535}},
	}
	named := scenarioCalico()
	named.Config.Spec.Communities = []v3.Community{{Name: "dc-large", Value: "65535:300:100"}}
	named.Config.Spec.PrefixAdvertisements = []v3.PrefixAdvertisement{{CIDR: "203.0.113.0/26", Communities: []string{"dc-large", "65535:120"}}}

	for _, tc := range []struct {
		name string
		in   CalicoBIRDInput
	}{
		{"scenario-node1", scenarioCalico()},
		{"scenario-node2", node2},
		{"scenario-node3", node3},
		{"no-bgpconfiguration", noConfig},
		{"mesh-off", meshOff},
		{"peers", peers},
		{"named-community", named},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := RenderCalicoBIRD(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			again, _ := RenderCalicoBIRD(tc.in)
			if again != got {
				t.Fatal("rendering is not deterministic")
			}
			golden := filepath.Join("testdata", "calicobird", tc.name+".conf")
			if *updateGolden {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the rendering (go test -run TestRenderCalicoBIRD ./test/lab/ -update rewrites it):\n%s", golden, got)
			}
			birdParses(t, got)
		})
	}
}

// The scenario's semantics, checked on the text as well as by the golden
// files: every CIDR from every node, the Local Service's /32 only from
// nodes with a ready endpoint, the communities per CIDR.
func TestRenderCalicoBIRDScenario(t *testing.T) {
	for _, tc := range []struct {
		node, addr string
		host       bool
	}{{"lbl-node1", "198.18.0.1", true}, {"lbl-node2", "198.18.0.2", true}, {"lbl-node3", "198.18.0.3", false}} {
		in := scenarioCalico()
		in.Node, in.Address = tc.node, tc.addr
		got, err := RenderCalicoBIRD(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{
			"router id " + tc.addr + ";",
			"local " + tc.addr + " port 178 as 65535;",
			"route 203.0.113.0/26 blackhole;", "route 198.51.100.20/32 blackhole;",
			"neighbor 198.18.0.254 as 65535;",
			"if net ~ 203.0.113.0/26 then {\n    bgp_community.add((65535,120));\n    bgp_large_community.add((65535,300,100));\n  }",
		} {
			if !strings.Contains(got, want) {
				t.Errorf("%s: missing %q", tc.node, want)
			}
		}
		if strings.Contains(got, "route 198.51.100.10/32 blackhole;") != tc.host {
			t.Errorf("%s: web-local's /32 announced %v, want %v", tc.node, !tc.host, tc.host)
		}
		if strings.Contains(got, "203.0.113.0/32") || strings.Contains(got, "198.51.100.20/32 blackhole; #") {
			t.Errorf("%s: a Cluster Service's address announced as a host route", tc.node)
		}
		if n := strings.Count(got, "protocol bgp mesh_"); n != 2 {
			t.Errorf("%s: %d mesh sessions, want 2", tc.node, n)
		}
	}
}

func TestRenderCalicoBIRDErrors(t *testing.T) {
	bad := scenarioCalico()
	bad.Config.Spec.PrefixAdvertisements = []v3.PrefixAdvertisement{{CIDR: "203.0.113.0/26", Communities: []string{"no-such-name"}}}
	if _, err := RenderCalicoBIRD(bad); err == nil {
		t.Error("an unknown community name rendered")
	}
	noAddr := scenarioCalico()
	noAddr.Address = ""
	if _, err := RenderCalicoBIRD(noAddr); err == nil {
		t.Error("a node without an address rendered")
	}
}

// birdParses checks the configuration with BIRD's own parser (bird -p)
// when Debian's bird2 is installed.
func birdParses(t *testing.T, conf string) {
	t.Helper()
	bird, err := exec.LookPath("bird")
	if err != nil {
		t.Log("bird not installed (make apt-packages): configuration not parsed")
		return
	}
	f := filepath.Join(t.TempDir(), "bird.conf")
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(bird, "-p", "-c", f).CombinedOutput(); err != nil {
		t.Errorf("BIRD refuses the configuration: %v\n%s\n--- config:\n%s", err, out, conf)
	}
}

// calico-bgp's router (not run by `lab up`, so not in
// TestRouterConfigOfEveryScenarioParses) connects to the nodes' port 178.
func TestCalicoRouterConfig(t *testing.T) {
	conf := Scenarios["calico-bgp"].Router(3).Render()
	vtyshCheck(t, conf)
	for i := 1; i <= 3; i++ {
		for _, want := range []string{" neighbor " + NodeAddr(i) + " remote-as 65535\n", " neighbor " + NodeAddr(i) + " port 178\n"} {
			if !strings.Contains(conf, want) {
				t.Errorf("missing %q", want)
			}
		}
	}
}
