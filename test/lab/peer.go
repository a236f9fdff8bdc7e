package lab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
)

// PeerConfig is a minimal BGP speaker: an FRR instance in a node's
// namespace that peers with the router and originates prefixes with
// chosen attributes. Tests use it where a real speaker would stand, to
// check the router side (and the router helpers) on their own.
type PeerConfig struct {
	ASN      uint32
	RouterID string
	// Source is the peer's own address on the segment: an extra address
	// in the node's namespace, so the peer's session never collides with
	// the node's own speaker (which uses the node's address).
	Source    string
	RouterASN uint32
	// BFD turns on BFD towards the router (FRR's default timers).
	BFD      bool
	Announce []Announcement
}

// Announcement is one originated prefix.
type Announcement struct {
	Prefix      string
	Communities []string
	// LocalPref is only carried over iBGP, as on any router.
	LocalPref uint32
}

// Render returns the peer's frr.conf.
func (c PeerConfig) Render() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("frr defaults traditional")
	// State forwarding as the node has it (IPv4 on, for its pods), so
	// zebra and frr-reload never flip it.
	w("ip forwarding")
	w("no ipv6 forwarding")
	w("bgp route-map delay-timer 0")
	w("!")
	for i, a := range c.Announce {
		w("route-map ANNOUNCE-%d permit 10", i)
		if len(a.Communities) > 0 {
			w(" set community %s", strings.Join(a.Communities, " "))
		}
		if a.LocalPref != 0 {
			w(" set local-preference %d", a.LocalPref)
		}
		w("exit")
		w("!")
	}
	w("router bgp %d", c.ASN)
	w(" bgp router-id %s", c.RouterID)
	w(" no bgp ebgp-requires-policy")
	w(" no bgp default ipv4-unicast")
	// Originate without a matching route in the RIB, as a speaker does.
	w(" no bgp network import-check")
	w(" timers bgp 3 9")
	w(" neighbor %s remote-as %d", RouterAddr, c.RouterASN)
	w(" neighbor %s timers connect 1", RouterAddr)
	if c.Source != "" {
		w(" neighbor %s update-source %s", RouterAddr, c.Source)
	}
	if c.BFD {
		w(" neighbor %s bfd", RouterAddr)
	}
	w(" !")
	w(" address-family ipv4 unicast")
	for i, a := range c.Announce {
		if netip.MustParsePrefix(a.Prefix).Addr().Is4() {
			w("  network %s route-map ANNOUNCE-%d", a.Prefix, i)
		}
	}
	w("  neighbor %s activate", RouterAddr)
	w(" exit-address-family")
	w("exit")
	return b.String()
}

// Peer is a running test BGP speaker.
type Peer struct {
	*FRR
	node   int
	source string
}

// Stop stops the peer's daemons and removes its address.
func (p *Peer) Stop() error {
	err := p.FRR.Stop()
	if p.source != "" {
		out, _ := ipIn(context.Background(), NodeName(p.node), "-o", "addr", "show", "dev", "eth0")
		if strings.Contains(out, " "+p.source+"/") {
			if _, derr := ipIn(context.Background(), NodeName(p.node), "addr", "del", p.source+"/24", "dev", "eth0"); derr != nil {
				err = errors.Join(err, derr)
			}
		}
	}
	return err
}

// StartPeer starts a test BGP speaker called name in node i's namespace,
// from cfg.Source (added to the node's eth0; it must be a free segment
// address) or else the node's own address. Every announced prefix must be
// in the lab's ranges. `lab down` stops it too.
func (l *Lab) StartPeer(ctx context.Context, name string, node int, cfg PeerConfig) (*Peer, error) {
	for _, a := range cfg.Announce {
		p, err := netip.ParsePrefix(a.Prefix)
		if err != nil {
			return nil, fmt.Errorf("peer %s: %w", name, err)
		}
		if !InLabRange(p.Addr()) {
			return nil, fmt.Errorf("peer %s: %s is outside the lab's ranges", name, a.Prefix)
		}
	}
	if node < 1 || node > l.State.Nodes {
		return nil, fmt.Errorf("peer %s: no node %d", name, node)
	}
	p := &Peer{FRR: l.State.FRR(name, NodeName(node), cfg.BFD), node: node}
	p.NoListen = true
	if cfg.Source != "" {
		a, err := netip.ParseAddr(cfg.Source)
		if err != nil || !netip.MustParsePrefix(SegmentPrefix).Contains(a) {
			return nil, fmt.Errorf("peer %s: source %q is not a segment address", name, cfg.Source)
		}
		if _, err := ipIn(ctx, NodeName(node), "addr", "add", cfg.Source+"/24", "dev", "eth0", "noprefixroute"); err != nil {
			return nil, fmt.Errorf("peer %s: %w", name, err)
		}
		p.source = cfg.Source
	}
	if err := p.FRR.Start(ctx); err != nil {
		_ = p.Stop()
		return nil, err
	}
	if err := p.Apply(ctx, cfg.Render()); err != nil {
		_ = p.Stop()
		return nil, err
	}
	return p, nil
}
