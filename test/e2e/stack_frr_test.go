package e2e

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbstack/lbstack/test/lab"
)

// useBackend switches the MetalLB object to the scenario's metallb.yaml
// (its bgpBackend) and waits until every speaker pod runs the new
// layout; the native backend of bgp-pools-sharing is put back at the end.
func useBackend(t testing.TB, l *lab.Lab, scenario, wantContainer string) {
	t.Helper()
	ctx := context.Background()
	switchTo := func(scenario, container string, present bool) error {
		if _, err := l.Kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-f", scenarioFile(scenario, "metallb.yaml")); err != nil {
			return err
		}
		deadline := time.Now().Add(2 * time.Minute)
		for {
			out, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "daemonset", "lbstack-speaker", "-o", "jsonpath={.spec.template.spec.containers[*].name}")
			if err == nil && strings.Contains(" "+out+" ", " "+container+" ") == present {
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("the speaker DaemonSet's containers are %q after 2 minutes", out)
			}
			time.Sleep(500 * time.Millisecond)
		}
		if _, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "rollout", "status", "daemonset/lbstack-speaker", "--timeout=240s"); err != nil {
			return err
		}
		return waitAvailable(l, 2*time.Minute)
	}
	t.Cleanup(func() {
		if err := switchTo("bgp-pools-sharing", wantContainer, false); err != nil {
			t.Errorf("back to the native backend: %v", err)
		}
	})
	if err := switchTo(scenario, wantContainer, true); err != nil {
		t.Fatal(err)
	}
}

// frrECMPBFD (TestBGP/frr/ECMPBFD) runs bgp-ecmp-bfd as written, bgpBackend frr: the
// router has three BFD peers Up and 203.0.113.0/24 via the three nodes
// (origin IGP, AS path 65001); cutting one node's link removes its next
// hop at BFD speed, not after the 30 s hold time.
func frrECMPBFD(t *testing.T, l *lab.Lab, _ string) {
	if l.State.Nodes < 3 {
		t.Skip("needs 3 nodes")
	}
	ctx := context.Background()
	rt := useECMPBFD(t, l)
	if ip := ingressIPs(t, l, "default", "my-nginx-svc", 1)[0]; ip != "203.0.113.1" {
		t.Errorf("my-nginx-svc got %s, want 203.0.113.1", ip)
	}
	for _, p := range rt.Paths {
		if p.ASPath != "65001" || p.Origin != "IGP" {
			t.Errorf("path via %s: AS path %q origin %q, want 65001 IGP", p.NextHop, p.ASPath, p.Origin)
		}
	}
	eventually(t, 60*time.Second, "three BFD peers Up on the router", func() (bool, string) {
		peers, err := l.Router.BFDPeers(ctx)
		if err != nil {
			return false, err.Error()
		}
		up := 0
		for _, p := range peers {
			if p.Up() {
				up++
			}
		}
		return up == l.State.Nodes, fmt.Sprintf("%+v", peers)
	})
	// The speakers report the sessions through the reloader: the
	// ServiceBGPStatus of every node names the peer.
	eventually(t, 60*time.Second, "ServiceBGPStatus on every node", func() (bool, string) {
		out, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "servicebgpstatus", "-l", "metallb.io/service-name=my-nginx-svc",
			"-o", `jsonpath={range .items[*]}{.status.node}={.status.peers}{" "}{end}`)
		return err == nil && strings.Count(out, `=["bgp-peer"]`) == l.State.Nodes, out
	})

	d := cutLink(t, l, l.State.Nodes, "203.0.113.0/24")
	t.Logf("link cut → next hop removed in %s (BFD 3 x 25 ms; hold time 30 s)", d.Round(time.Millisecond))
	if d > 5*time.Second {
		t.Errorf("the router kept the cut node's next hop for %s: BFD did not act", d)
	}
}

// frrBFDRemovedWhileDown: BFD goes down (here the router stops it; in a
// user's network, a BFD that flaps or a router that lost it), so FRR
// resets each session and holds it Idle until BFD is Up again. The user
// then removes bfdProfile from the BGPPeer, as one does when BFD is the
// problem: the sessions must come back without BFD. FRR 10.3 alone keeps
// them Idle for good (nothing restarts a session once its BFD
// configuration is gone); the reloader clears them.
func frrBFDRemovedWhileDown(t *testing.T, l *lab.Lab, _ string) {
	ctx := context.Background()
	const prefix = ecmpAggregate
	useECMPBFD(t, l)
	waitBFDUp(t, l)
	// The router drops BFD: every speaker's BFD session goes down and
	// FRR resets the BGP session ("Cease/BFD Down").
	router := scenarioRouter(l, "bgp-ecmp-bfd")
	for i := range router.Peers {
		router.Peers[i].BFD = false
	}
	if err := l.ConfigureRouter(ctx, router); err != nil {
		t.Fatal(err)
	}
	// Each speaker whose BFD session times out resets its BGP session;
	// one that gets the router's AdminDown first may keep it (RFC 5882),
	// so at least one node's next hop goes.
	_, left := pollRoute(t, l, prefix, "missing a node", 30*time.Second, func(got []string) bool { return len(got) < l.State.Nodes })
	t.Logf("BFD gone on the router: the route is left via %v", left)
	applyYAML(t, l, "no-bfd", `apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: bgp-peer, namespace: metallb-system}
spec: {myASN: 65001, peerASN: 65000, peerAddress: 198.18.0.254}
`)
	start := time.Now()
	waitNextHops(t, l, prefix, nodeAddrs(allNodes(l)...), 60*time.Second)
	t.Logf("bfdProfile removed while BFD was down → the route via every node again in %s", time.Since(start).Round(time.Millisecond))
}

// useECMPBFD runs bgp-ecmp-bfd as written (its router, its configuration,
// its nginx; the FRR backend in use) and returns the router's route for
// the scenario's aggregate once it is via every node. nginx's pods are
// gone at the end.
func useECMPBFD(t testing.TB, l *lab.Lab) lab.Route {
	t.Helper()
	useRouter(t, l, scenarioRouter(l, "bgp-ecmp-bfd"))
	applyFiles(t, l, scenarioFile("bgp-ecmp-bfd", "metallb-config.yaml"))
	t.Cleanup(func() { waitNoPods(t, l, "default", "app=nginx") })
	applyFiles(t, l, scenarioFile("bgp-ecmp-bfd", "nginx-test.yaml"))
	return waitNextHops(t, l, ecmpAggregate, nodeAddrs(allNodes(l)...), 120*time.Second)
}

// cutLink takes node i's switch port down (carrier loss, as a failed
// cable), returns how long the router took to drop its next hop for
// prefix, then restores the port and waits for the next hop to return.
func cutLink(t testing.TB, l *lab.Lab, i int, prefix string) time.Duration {
	t.Helper()
	return cutLinkAnd(t, l, i, prefix, nil)
}

// cutLinkAnd is cutLink that also runs atDrop once the router has dropped
// the node's next hop, before the link comes back.
func cutLinkAnd(t testing.TB, l *lab.Lab, i int, prefix string, atDrop func()) time.Duration {
	t.Helper()
	var others []int
	for _, n := range allNodes(l) {
		if n != i {
			others = append(others, n)
		}
	}
	port := fmt.Sprintf("node%d", i)
	start := time.Now()
	runIP(t, "-n", lab.SwitchNetns, "link", "set", port, "down")
	restored := false
	defer func() {
		if !restored {
			runIP(t, "-n", lab.SwitchNetns, "link", "set", port, "up")
		}
	}()
	// The figure is when the router stops using the cut node, whatever
	// the other sessions do meanwhile (one that flaps at the same moment
	// is reported, not counted).
	removed, seen := pollNextHopGone(t, l, prefix, lab.NodeAddr(i), 60*time.Second)
	if want := nodeAddrs(others...); !slices.Equal(seen, want) {
		t.Logf("cut of node %d: when its next hop left, the router had %v, not %v: another session was down too", i, seen, want)
	}
	pollNextHops(t, l, prefix, nodeAddrs(others...), 60*time.Second)
	if atDrop != nil {
		atDrop()
	}
	runIP(t, "-n", lab.SwitchNetns, "link", "set", port, "up")
	restored = true
	pollNextHops(t, l, prefix, nodeAddrs(allNodes(l)...), 120*time.Second)
	return removed.Sub(start)
}

// pollNextHopGone polls the router until prefix's next hops no longer
// include addr, and returns when it first saw that and the next hops then.
func pollNextHopGone(t testing.TB, l *lab.Lab, prefix, addr string, timeout time.Duration) (time.Time, []string) {
	t.Helper()
	return pollRoute(t, l, prefix, "without "+addr, timeout, func(got []string) bool { return !slices.Contains(got, addr) })
}
