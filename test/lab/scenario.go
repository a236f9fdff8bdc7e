package lab

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// DefaultScenario is what `make lab` applies: BGP + ECMP + BFD on the FRR
// backend, the most common production setup.
const DefaultScenario = "bgp-ecmp-bfd"

// Scenario is a seed scenario (config/samples/scenarios/<Dir>) as the lab runs
// it: the router its users had, and the manifests `make lab` applies.
type Scenario struct {
	Name string
	// Dir is the scenario's folder name.
	Dir string
	// Router returns the router's configuration for a lab of n nodes.
	Router func(nodes int) RouterConfig
	// Files are applied in order. Legacy ConfigMaps are not: they are the
	// input of the conversion, not a second configuration.
	Files []string
	// Unsupported says why the lab cannot run the scenario yet.
	Unsupported string
}

// nodePeers is one eBGP peer per lab node.
func nodePeers(nodes int, asn uint32, bfd bool) []RouterPeer {
	var out []RouterPeer
	for i := 1; i <= nodes; i++ {
		out = append(out, RouterPeer{Address: NodeAddr(i), ASN: asn, BFD: bfd})
	}
	return out
}

// defaultBFD is FRR's default profile, used where a scenario says nothing.
var defaultBFD = BFDProfile{ReceiveMS: 300, TransmitMS: 300, Multiplier: 3}

// Scenarios are the seed scenarios, keyed by the name LAB_SCENARIO takes.
var Scenarios = map[string]Scenario{
	// expect.md: router AS 64513 at .254, nodes in AS 64512, ECMP over all
	// nodes. The scenario's nodes were .10/.101/.102; the lab's are .1-.N
	// (nothing in the manifests depends on node addresses).
	"bgp-pools-sharing": {
		Name: "bgp-pools-sharing", Dir: "bgp-pools-sharing",
		Router: func(n int) RouterConfig {
			return RouterConfig{ASN: 64513, RouterID: RouterAddr, Keepalive: 3, Hold: 9, MaximumPaths: max(n, 1), BFD: defaultBFD, Peers: nodePeers(n, 64512, false)}
		},
		Files: []string{"metallb.yaml", "metallb-config.yaml", "services.yaml"},
	},
	// expect.md: AS 65000, keepalive 10 s, hold 30 s, eBGP multipath with
	// 3 paths, BFD towards each node (AS 65001), detection 3 x 25 ms.
	"bgp-ecmp-bfd": {
		Name: "bgp-ecmp-bfd", Dir: "bgp-ecmp-bfd",
		Router: func(n int) RouterConfig {
			return RouterConfig{ASN: 65000, RouterID: RouterAddr, Keepalive: 10, Hold: 30, MaximumPaths: 3,
				BFD: BFDProfile{ReceiveMS: 25, TransmitMS: 25, Multiplier: 3}, Peers: nodePeers(n, 65001, true)}
		},
		Files: []string{"metallb.yaml", "metallb-config.yaml", "nginx-test.yaml"},
	},
	// Layer 2 mode; the router (AS 64500, nodes AS 64501 from bgp.yaml) is
	// configured too so the BGP variant works without reconfiguring it.
	"l2-and-bgp-basics": {
		Name: "l2-and-bgp-basics", Dir: "l2-and-bgp-basics",
		Router: func(n int) RouterConfig {
			return RouterConfig{ASN: 64500, RouterID: RouterAddr, Keepalive: 3, Hold: 9, MaximumPaths: max(n, 1), BFD: defaultBFD, Peers: nodePeers(n, 64501, false)}
		},
		Files: []string{"metallb.yaml", "l2.yaml", "nginx.yaml"},
	},
	"l2-and-bgp-basics/bgp": {
		Name: "l2-and-bgp-basics/bgp", Dir: "l2-and-bgp-basics",
		Router: func(n int) RouterConfig {
			return RouterConfig{ASN: 64500, RouterID: RouterAddr, Keepalive: 3, Hold: 9, MaximumPaths: max(n, 1), BFD: defaultBFD, Peers: nodePeers(n, 64501, false)}
		},
		Files: []string{"metallb.yaml", "bgp.yaml", "nginx.yaml"},
	},
	// expect.md: Calico's nodes in AS 65535 (BIRD on port 178) peer over
	// iBGP with the router at .254, the router connecting to each node's
	// port 178. The lab runs Calico's BGP part as a stand-in (BIRD 2 with
	// a configuration rendered by calicobird.go), started by the e2e test
	// TestCalico, not by `lab up`.
	"calico-bgp": {
		Name: "calico-bgp", Dir: "calico-bgp",
		Router: func(n int) RouterConfig {
			var peers []RouterPeer
			for i := 1; i <= n; i++ {
				peers = append(peers, RouterPeer{Address: NodeAddr(i), ASN: 65535, Port: 178})
			}
			return RouterConfig{ASN: 65535, RouterID: RouterAddr, Keepalive: 3, Hold: 9, MaximumPaths: max(n, 1), BFD: defaultBFD, Peers: peers}
		},
		Unsupported: "`lab up` installs neither Calico's CRDs (before the operator starts) nor the Calico stand-in on the nodes; " +
			"the e2e test TestCalico does both (go test -run TestCalico ./test/e2e/)",
	},
	"symmetric-routing-vrf": {
		Name: "symmetric-routing-vrf", Dir: "symmetric-routing-vrf",
		Unsupported: "it needs the VRF-side network (198.19.130.0/24, router at .1) on each node and the NMState and OVN-Kubernetes CRDs; " +
			"the lab builds neither yet (and this kernel has no VRF devices: the symmetric-routing issue proves VRF handling with a separate routing table)",
	},
}

// ScenarioNames lists the known scenarios.
func ScenarioNames() []string {
	var out []string
	for k := range Scenarios {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// LookupScenario returns the named scenario, or an error that lists the
// known ones and says why an unsupported one cannot run.
func LookupScenario(name string) (Scenario, error) {
	sc, ok := Scenarios[name]
	if !ok {
		return Scenario{}, fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(ScenarioNames(), ", "))
	}
	if sc.Unsupported != "" {
		return Scenario{}, fmt.Errorf("scenario %s is not supported by the lab yet: %s", name, sc.Unsupported)
	}
	return sc, nil
}

// ScenariosDir is the seed scenarios' directory: $LBSTACK_SCENARIOS, or
// the repository's config/samples/scenarios.
func ScenariosDir(root string) (string, error) {
	if d := os.Getenv("LBSTACK_SCENARIOS"); d != "" {
		return d, nil
	}
	d := filepath.Join(root, "config", "samples", "scenarios")
	if _, err := os.Stat(d); err != nil {
		return "", fmt.Errorf("seed scenarios not found at %s (set LBSTACK_SCENARIOS): %w", d, err)
	}
	return d, nil
}

// ManifestPaths returns the scenario's files to apply, checking they exist.
func (sc Scenario) ManifestPaths(root string) ([]string, error) {
	dir, err := ScenariosDir(root)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, f := range sc.Files {
		p := filepath.Join(dir, sc.Dir, f)
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("scenario %s: %w", sc.Name, err)
		}
		out = append(out, p)
	}
	return out, nil
}
