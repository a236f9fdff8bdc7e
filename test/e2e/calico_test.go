package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbstack/lbstack/test/lab"
)

// The calico-bgp scenario's serviceLoadBalancerIPs (expect.md): the pool
// calico-local as exact CIDRs, then calico-cluster.
var calicoCIDRs = []string{"198.51.100.10/31", "198.51.100.12/30", "198.51.100.16/30", "198.51.100.20/32", "203.0.113.0/26"}

// TestCalico runs the calico-bgp scenario with bgpBackend calico: lbstack
// assigns the addresses and writes Calico's BGPConfiguration; the lab's
// Calico stand-in (BIRD 2 on every node, its configuration rendered from
// Calico's objects by test/lab/calicobird.go, since Calico's own node
// agent cannot be built here) announces them to the router over iBGP on
// port 178. The router must learn every CIDR from every node with the
// advertisements' communities, web-local's /32 only from the nodes with a
// ready endpoint (and not from a node whose endpoint goes), and nothing
// outside the pools; the client reaches every Service; switching to frr
// keeps the addresses.
func TestCalico(t *testing.T) {
	l := requireStack(t)
	if l.State.Nodes < 3 {
		t.Skip("needs 3 nodes")
	}
	ctx := context.Background()
	calicoCRDs(t, l)
	useRouter(t, l, scenarioRouter(l, "calico-bgp"))
	useCalicoBackend(t, l)

	// web on nodes 1 and 2 (port 8080, the Services' targetPort; 80 for
	// the readiness probe), dns on node 3.
	backendPod(t, l, "default", "calico-web-1", "web", 1, "-tcp", "80,8080")
	backendPod(t, l, "default", "calico-web-2", "web", 2, "-tcp", "80,8080")
	backendPod(t, l, "default", "calico-dns-3", "dns", 3, "-tcp", "80", "-udp", "5353")
	applyFiles(t, l,
		scenarioFile("calico-bgp", "calico.yaml"),
		scenarioFile("calico-bgp", "metallb-config.yaml"),
		scenarioFile("calico-bgp", "services.yaml"))

	cluster := ingressIPs(t, l, "default", "web-cluster", 1)[0]
	local := ingressIPs(t, l, "default", "web-local", 1)[0]
	dns := ingressIPs(t, l, "default", "dns", 1)[0]
	t.Logf("addresses: web-cluster %s, web-local %s, dns %s", cluster, local, dns)
	if !netip.MustParsePrefix("203.0.113.0/26").Contains(netip.MustParseAddr(cluster)) {
		t.Errorf("web-cluster got %s, outside calico-cluster", cluster)
	}
	if a := netip.MustParseAddr(local); a.Compare(netip.MustParseAddr("198.51.100.10")) < 0 || a.Compare(netip.MustParseAddr("198.51.100.20")) > 0 {
		t.Errorf("web-local got %s, outside calico-local", local)
	}
	if dns != "198.51.100.20" {
		t.Errorf("dns got %s, want 198.51.100.20", dns)
	}

	// lbstack's two fields of the BGPConfiguration.
	eventually(t, 60*time.Second, "BGPConfiguration default: serviceLoadBalancerIPs of the scenario", func() (bool, string) {
		out, err := l.Kubectl(ctx, "get", "bgpconfiguration.crd.projectcalico.org", "default", "-o", "jsonpath={.spec.serviceLoadBalancerIPs[*].cidr}")
		return err == nil && out == strings.Join(calicoCIDRs, " "), fmt.Sprintf("%q %v", out, err)
	})

	// The stand-in on every node.
	birds := startCalicoBIRDs(t, l)
	all := nodeAddrs(allNodes(l)...)
	waitSessions(t, l, all, 90*time.Second)
	// The node-to-node mesh (nodeToNodeMeshEnabled): every node's BIRD
	// has a session with every other node, and one with the router.
	for i, b := range birds {
		eventually(t, 60*time.Second, fmt.Sprintf("node %d: BIRD's mesh and router sessions Established", i+1), func() (bool, string) {
			out, err := b.Birdc(ctx, "show", "protocols")
			if err != nil {
				return false, fmt.Sprintf("%v: %s", err, out)
			}
			return strings.Count(out, "Established") == l.State.Nodes && strings.Count(out, "mesh_") == l.State.Nodes-1, out
		})
	}
	if out, err := birds[0].Birdc(ctx, "show", "protocols"); err == nil {
		t.Logf("node 1: birdc show protocols\n%s", out)
	}

	// Every CIDR via every node, with its communities.
	for _, cidr := range calicoCIDRs {
		rt := waitNextHops(t, l, cidr, all, 60*time.Second)
		wantLarge := cidr == "203.0.113.0/26"
		for _, p := range rt.Paths {
			if !slices.Contains(p.Communities, "65535:120") {
				t.Errorf("%s via %s: communities %v, want 65535:120", cidr, p.NextHop, p.Communities)
			}
			if slices.Contains(p.LargeCommunities, "65535:300:100") != wantLarge {
				t.Errorf("%s via %s: large communities %v, want 65535:300:100 %v", cidr, p.NextHop, p.LargeCommunities, wantLarge)
			}
			if p.ASPath != "" {
				t.Errorf("%s via %s: AS path %q, want none (iBGP)", cidr, p.NextHop, p.ASPath)
			}
		}
	}
	// web-local (Local): its /32 only via the nodes with a ready endpoint.
	rt := waitNextHops(t, l, local+"/32", nodeAddrs(1, 2), 60*time.Second)
	for _, p := range rt.Paths {
		if !slices.Contains(p.Communities, "65535:120") || len(p.LargeCommunities) != 0 {
			t.Errorf("%s/32 via %s: communities %v large %v, want 65535:120 only", local, p.NextHop, p.Communities, p.LargeCommunities)
		}
	}
	// Nothing else: the CIDRs and that /32 are the router's whole table.
	routes, err := l.Router.Routes(ctx, "ipv4")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range routes {
		got = append(got, r.Prefix)
	}
	want := append(slices.Clone(calicoCIDRs), local+"/32")
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("router's routes %v, want exactly %v", got, want)
	}
	t.Logf("router: %d routes, each CIDR via %v, %s/32 via %v", len(got), all, local, nodeAddrs(1, 2))

	// The client reaches every Service through the router.
	for _, addr := range []string{cluster, local} {
		eventually(t, 30*time.Second, "the client's request to "+addr, func() (bool, string) {
			a, err := l.Client.Get(ctx, addr, 80, 3*time.Second)
			if err != nil {
				return false, err.Error()
			}
			t.Logf("http://%s/: answered by %s on %s, which saw the client as %s", addr, a.Pod, a.Node, a.Client)
			return true, ""
		})
	}
	eventually(t, 30*time.Second, "the client's DNS-port datagram to "+dns, func() (bool, string) {
		a, err := l.Client.UDP(ctx, dns, 53, 3*time.Second)
		if err != nil {
			return false, err.Error()
		}
		t.Logf("udp %s:53: answered by %s on %s", dns, a.Pod, a.Node)
		return true, ""
	})

	// web-local's endpoint on node 2 goes: node 2's BIRD is reconfigured
	// and withdraws the /32; the CIDRs stay via every node.
	deletePod(t, l, "default", "calico-web-2")
	start := time.Now()
	waitNextHops(t, l, local+"/32", nodeAddrs(1), 30*time.Second)
	t.Logf("web-local's endpoint on node 2 deleted → its /32 via node 1 only in %s", time.Since(start).Round(100*time.Millisecond))
	waitNextHops(t, l, "198.51.100.10/31", all, 10*time.Second)

	// Back to frr: the addresses stay, lbstack's entries leave the
	// BGPConfiguration, the stand-in withdraws the routes.
	useBackend(t, l, "bgp-ecmp-bfd", "frr")
	for name, was := range map[string]string{"web-cluster": cluster, "web-local": local, "dns": dns} {
		if now := ingressIPs(t, l, "default", name, 1)[0]; now != was {
			t.Errorf("%s: %s with calico, %s with frr", name, was, now)
		}
	}
	eventually(t, 60*time.Second, "BGPConfiguration default without lbstack's entries", func() (bool, string) {
		out, err := l.Kubectl(ctx, "get", "bgpconfiguration.crd.projectcalico.org", "default", "-o", "jsonpath={.spec.serviceLoadBalancerIPs}{.spec.asNumber}/{.spec.listenPort}")
		return err == nil && out == "65535/178", fmt.Sprintf("%q %v", out, err)
	})
	waitNextHops(t, l, "203.0.113.0/26", nil, 60*time.Second)
	t.Log("bgpBackend frr: addresses unchanged, serviceLoadBalancerIPs gone, the stand-in withdrew the routes")
}

// startCalicoBIRDs starts the Calico stand-in on every node and stops it
// when the test ends (logging each BIRD's protocols if the test failed).
func startCalicoBIRDs(t testing.TB, l *lab.Lab) []*lab.CalicoBIRD {
	t.Helper()
	var birds []*lab.CalicoBIRD
	for _, i := range allNodes(l) {
		b, err := l.StartCalicoBIRD(context.Background(), i)
		if err != nil {
			t.Fatal(err)
		}
		birds = append(birds, b)
		t.Cleanup(func() {
			if err := b.Stop(); err != nil {
				t.Errorf("stop the Calico stand-in on node %d: %v", i, err)
			}
		})
		t.Cleanup(func() {
			if t.Failed() {
				out, _ := b.Birdc(context.Background(), "show", "protocols")
				t.Logf("node %d: BIRD (%s; last loop error %v):\n%s", i, b.Config(), b.Err(), out)
			}
		})
	}
	return birds
}

// calicoCRDs installs Calico's CRDs (test/crds/calico) when the cluster
// lacks them and restarts the operator, which detects them at start; at
// the end it removes what it installed and restarts the operator again.
func calicoCRDs(t testing.TB, l *lab.Lab) {
	t.Helper()
	ctx := context.Background()
	if out, err := l.Kubectl(ctx, "get", "crd", "bgpconfigurations.crd.projectcalico.org", "bgppeers.crd.projectcalico.org", "-o", "name"); err == nil && strings.Count(out, "customresourcedefinition") == 2 {
		return
	}
	root, err := lab.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "test", "crds", "calico")
	if out, err := kubectlCombined(l, "apply", "--server-side", "-f", dir); err != nil {
		t.Fatalf("install Calico's CRDs: %v\n%s", err, out)
	}
	if out, err := kubectlCombined(l, "wait", "--for=condition=Established", "--timeout=60s", "crd/bgpconfigurations.crd.projectcalico.org", "crd/bgppeers.crd.projectcalico.org"); err != nil {
		t.Fatalf("Calico's CRDs: %v\n%s", err, out)
	}
	restartOperator(t, l)
	t.Cleanup(func() {
		if out, err := kubectlCombined(l, "delete", "--ignore-not-found", "--wait=true", "-f", dir); err != nil {
			t.Errorf("remove Calico's CRDs: %v\n%s", err, out)
		}
		restartOperator(t, l)
	})
}

func restartOperator(t testing.TB, l *lab.Lab) {
	t.Helper()
	for _, args := range [][]string{
		{"-n", lab.StackNamespace, "rollout", "restart", "deployment/lbstack-operator"},
		{"-n", lab.StackNamespace, "rollout", "status", "deployment/lbstack-operator", "--timeout=180s"},
	} {
		if out, err := kubectlCombined(l, args...); err != nil {
			t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if err := waitAvailable(l, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
}

// useCalicoBackend switches the MetalLB object to calico-bgp's
// metallb.yaml (bgpBackend calico) and waits for the operator to report
// on Calico (the CalicoConsistent condition); the native backend of
// bgp-pools-sharing is put back at the end.
func useCalicoBackend(t testing.TB, l *lab.Lab) {
	t.Helper()
	ctx := context.Background()
	t.Cleanup(func() {
		if _, err := l.Kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-f", scenarioFile("bgp-pools-sharing", "metallb.yaml")); err != nil {
			t.Errorf("back to the native backend: %v", err)
			return
		}
		if err := waitAvailable(l, 2*time.Minute); err != nil {
			t.Errorf("back to the native backend: %v", err)
		}
	})
	if _, err := l.Kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-f", scenarioFile("calico-bgp", "metallb.yaml")); err != nil {
		t.Fatal(err)
	}
	// The operator renders the speakers without FRR: wait for that
	// template before waiting for its rollout, or the rollout status may
	// be the old template's.
	eventually(t, 2*time.Minute, "the speaker DaemonSet without its frr container", func() (bool, string) {
		out, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "daemonset", "lbstack-speaker", "-o", "jsonpath={.spec.template.spec.containers[*].name}")
		return err == nil && !strings.Contains(" "+out+" ", " frr "), fmt.Sprintf("containers %q %v", out, err)
	})
	eventually(t, 2*time.Minute, "MetalLB condition CalicoConsistent", func() (bool, string) {
		out, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "metallb", "metallb", "-o", `jsonpath={.status.conditions[?(@.type=="CalicoConsistent")].reason}`)
		return err == nil && out != "" && out != "CalicoCRDsMissing", fmt.Sprintf("reason %q %v", out, err)
	})
	if _, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "rollout", "status", "daemonset/lbstack-speaker", "--timeout=240s"); err != nil {
		t.Fatal(err)
	}
	if err := waitAvailable(l, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
}
