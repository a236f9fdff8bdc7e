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

// TestRouterHelpersReadPeerRoutes: test BGP peers (FRR in node namespaces,
// standing where speakers will) announce prefixes to the lab's router, and
// the router helpers read them back as a user reads `show bgp`: next hops
// (ECMP included), communities, local-pref, session and BFD state - and
// see them go when the peer stops.
func TestRouterHelpersReadPeerRoutes(t *testing.T) {
	t.Parallel()
	l := requireLab(t)
	if l.State.Nodes < 3 {
		t.Skip("needs 3 nodes")
	}
	ctx := context.Background()
	orig := l.State.Router
	// The test peers speak from addresses of their own (198.18.0.151-153
	// in nodes 1-3), so they never collide with speakers running on the
	// nodes. Peers 1 and 2 are eBGP in the scenario's node AS; peer 3 is
	// iBGP (local-pref only travels over iBGP) with BFD.
	peerAddr := func(i int) string { return fmt.Sprintf("198.18.0.%d", 150+i) }
	ebgpAS := orig.Peers[0].ASN
	cfg := orig
	cfg.Peers = append(append([]lab.RouterPeer(nil), orig.Peers...),
		lab.RouterPeer{Address: peerAddr(1), ASN: ebgpAS},
		lab.RouterPeer{Address: peerAddr(2), ASN: ebgpAS},
		lab.RouterPeer{Address: peerAddr(3), ASN: orig.ASN, BFD: true})
	if err := l.ConfigureRouter(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.ConfigureRouter(ctx, orig); err != nil {
			t.Errorf("restore the router: %v", err)
		}
	})
	// Prefixes no scenario's services get.
	const ecmpPrefix, ibgpPrefix = "198.51.100.251/32", "203.0.113.251/32"
	var peers []*lab.Peer
	t.Cleanup(func() {
		for _, p := range peers {
			if err := p.Stop(); err != nil {
				t.Errorf("stop %s: %v", p.Name, err)
			}
		}
	})
	for i := 1; i <= 2; i++ {
		p, err := l.StartPeer(ctx, fmt.Sprintf("e2e-peer%d", i), i, lab.PeerConfig{
			ASN: ebgpAS, RouterID: peerAddr(i), Source: peerAddr(i), RouterASN: orig.ASN,
			Announce: []lab.Announcement{{Prefix: ecmpPrefix, Communities: []string{"64512:200"}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		peers = append(peers, p)
	}
	ibgp, err := l.StartPeer(ctx, "e2e-peer3", 3, lab.PeerConfig{
		ASN: orig.ASN, RouterID: peerAddr(3), Source: peerAddr(3), RouterASN: orig.ASN, BFD: true,
		Announce: []lab.Announcement{{Prefix: ibgpPrefix, Communities: []string{"64500:77", "no-export"}, LocalPref: 150}},
	})
	if err != nil {
		t.Fatal(err)
	}
	peers = append(peers, ibgp)

	// Sessions.
	eventually(t, 30*time.Second, "the three test peers' sessions established", func() (bool, string) {
		ns, err := l.Router.Neighbors(ctx)
		if err != nil {
			return false, err.Error()
		}
		up := 0
		for _, n := range ns {
			for i := 1; i <= 3; i++ {
				if n.Address == peerAddr(i) && n.Established() {
					up++
				}
			}
		}
		return up == 3, fmt.Sprintf("%+v", ns)
	})

	// The iBGP route, with every attribute the peer set.
	var rt lab.Route
	// A path is first received, then selected and installed: wait for the
	// kernel route.
	eventually(t, 30*time.Second, "route "+ibgpPrefix+" selected and installed", func() (bool, string) {
		rt, err = l.Router.Route(ctx, ibgpPrefix)
		fib, ferr := l.Router.FIBNextHops(ctx, ibgpPrefix)
		return err == nil && len(rt.Paths) == 1 && rt.Paths[0].Best && len(fib) > 0, fmt.Sprintf("%+v %v, kernel %v %v", rt, err, fib, ferr)
	})
	p := rt.Paths[0]
	if p.NextHop != peerAddr(3) || !p.Best || p.LocalPref != 150 || p.Origin != "IGP" || p.ASPath != "" {
		t.Errorf("%s: path %+v, want next hop %s, best, local-pref 150, origin IGP, empty AS path", ibgpPrefix, p, peerAddr(3))
	}
	if !slices.Equal(p.Communities, []string{"64500:77", "no-export"}) {
		t.Errorf("%s: communities %v", ibgpPrefix, p.Communities)
	}
	if nh, err := l.Router.FIBNextHops(ctx, ibgpPrefix); err != nil || !slices.Equal(nh, []string{peerAddr(3)}) {
		t.Errorf("%s in the router's kernel: next hops %v (%v)", ibgpPrefix, nh, err)
	}

	// The eBGP route from two nodes: ECMP, in the RIB and the kernel.
	want := []string{peerAddr(1), peerAddr(2)}
	eventually(t, 30*time.Second, "ECMP route "+ecmpPrefix, func() (bool, string) {
		rt, err := l.Router.Route(ctx, ecmpPrefix)
		if err != nil {
			return false, err.Error()
		}
		fib, err := l.Router.FIBNextHops(ctx, ecmpPrefix)
		return slices.Equal(rt.NextHops(), want) && slices.Equal(fib, want), fmt.Sprintf("RIB %v, FIB %v (%v)", rt.NextHops(), fib, err)
	})
	rt, err = l.Router.Route(ctx, ecmpPrefix)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range rt.Paths {
		if p.ASPath != fmt.Sprint(ebgpAS) || p.LocalPref != 100 || !slices.Equal(p.Communities, []string{"64512:200"}) {
			t.Errorf("%s: path %+v, want AS path %d, default local-pref, community 64512:200", ecmpPrefix, p, ebgpAS)
		}
	}
	routes, err := l.Router.Routes(ctx, "ipv4")
	if err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, r := range routes {
		prefixes = append(prefixes, r.Prefix)
	}
	if !slices.Contains(prefixes, ecmpPrefix) || !slices.Contains(prefixes, ibgpPrefix) {
		t.Errorf("RIB lists %v", prefixes)
	}

	// BFD with the iBGP peer.
	bfdState := func() (lab.BFDPeer, bool) {
		ps, err := l.Router.BFDPeers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range ps {
			if p.Peer == peerAddr(3) {
				return p, true
			}
		}
		return lab.BFDPeer{}, false
	}
	eventually(t, 30*time.Second, "BFD up with "+peerAddr(3), func() (bool, string) {
		p, ok := bfdState()
		return ok && p.Up(), fmt.Sprintf("%+v", p)
	})

	// When the peer goes, BFD says so well before the hold time, and the
	// route is withdrawn.
	stopped := time.Now()
	if err := ibgp.Stop(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 15*time.Second, "BFD down after the peer stopped", func() (bool, string) {
		p, ok := bfdState()
		return ok && p.Status == "down", fmt.Sprintf("%+v", p)
	})
	t.Logf("router saw BFD down %.1fs after the peer stopped", time.Since(stopped).Seconds())
	eventually(t, 15*time.Second, ibgpPrefix+" withdrawn", func() (bool, string) {
		rt, err := l.Router.Route(ctx, ibgpPrefix)
		return err == nil && len(rt.Paths) == 0, fmt.Sprintf("%+v %v", rt, err)
	})
	if out, err := l.Router.FRR.Vtysh(ctx, "show bgp ipv4 unicast"); err != nil || !strings.Contains(out, ecmpPrefix[:len(ecmpPrefix)-3]) {
		t.Errorf("plain `show bgp` misses %s (%v):\n%s", ecmpPrefix, err, out)
	}
}
