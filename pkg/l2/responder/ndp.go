package responder

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// allNodes is the destination of unsolicited advertisements (RFC 4861
// 7.2.6).
var allNodes = netip.MustParseAddr("ff02::1")

// ndpFilter makes the kernel hand the NDP socket neighbour solicitations
// only: a raw ICMPv6 socket otherwise gets a copy of every ICMPv6 packet
// of the interface.
func (r *Responder) ndpFilter() error {
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeNeighborSolicitation)
	if err := r.ndp.SetICMPFilter(&f); err != nil {
		return fmt.Errorf("setting ICMPv6 filter: %w", err)
	}
	return nil
}

// serveNDP answers multicast neighbour solicitations for announced
// addresses until the responder closes: they arrive because Announce
// joined the address's solicited-node group. Unicast ones are
// serveUnicastNS's.
func (r *Responder) serveNDP() {
	defer r.wg.Done()
	for {
		msg, _, src, err := r.ndp.ReadFrom()
		if err != nil {
			if r.isClosed() || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return
			}
			r.opts.Log.Error(err, "reading NDP", "interface", r.ifi.Name)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		ns, ok := msg.(*ndp.NeighborSolicitation)
		if !ok {
			continue
		}
		// ndp gives the source with the interface as zone; the zone would
		// make the unspecified source of duplicate address detection
		// compare unequal to "::".
		src = src.WithZone("")
		r.ifOwned(ns.TargetAddress, func() {
			r.requests.Add(1)
			if err := r.solicitedNA(ns.TargetAddress, src); err != nil {
				r.opts.Log.Error(err, "sending neighbour advertisement", "interface", r.ifi.Name, "address", ns.TargetAddress, "to", src)
			}
		})
	}
}

// solicitedNA answers a solicitation from src for target. A solicitation
// from the unspecified address is duplicate address detection by a host
// about to take target: the answer goes to all nodes, unsolicited (RFC
// 4861 7.2.4), so that the host sees the address is taken. Otherwise it
// goes to src with Solicited set; Override is always set so that a cache
// still pointing at the previous owner moves here.
func (r *Responder) solicitedNA(target, src netip.Addr) error {
	if src.IsUnspecified() {
		return r.sent(&r.responses, r.writeNA(target, allNodes, false))
	}
	err := r.writeNA(target, src, true)
	if err == nil {
		r.responses.Add(1)
		return nil
	}
	// Sending to a unicast source needs a route to it on this node; a node
	// whose interface has no address in the client's subnet has none. An
	// unsolicited advertisement to all nodes still completes the client's
	// entry (as STALE, then confirmed by its own traffic).
	r.opts.Log.V(1).Info("unicast neighbour advertisement failed, multicasting it", "interface", r.ifi.Name, "to", src, "error", err.Error())
	if err := r.sent(&r.responses, r.writeNA(target, allNodes, false)); err != nil {
		return fmt.Errorf("interface %q: advertising %s: %w", r.ifi.Name, target, err)
	}
	return nil
}

// unsolicitedNA sends one unsolicited advertisement of addr to all nodes.
func (r *Responder) unsolicitedNA(addr netip.Addr) error {
	if err := r.sent(&r.gratuitous, r.writeNA(addr, allNodes, false)); err != nil {
		return fmt.Errorf("interface %q: sending unsolicited neighbour advertisement for %s: %w", r.ifi.Name, addr, err)
	}
	return nil
}

func (r *Responder) writeNA(target, dst netip.Addr, solicited bool) error {
	na := &ndp.NeighborAdvertisement{
		Solicited:     solicited,
		Override:      true,
		TargetAddress: target,
		Options: []ndp.Option{
			&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: r.ifi.HardwareAddr},
		},
	}
	// A nil control message makes ndp use hop limit 255 (receivers drop
	// NDP with any other) and the interface's link-local source.
	return r.ndp.WriteTo(na, nil, dst)
}

// joinGroupLocked joins the solicited-node group of addr, once per group:
// addresses that share their low 24 bits share the group.
func (r *Responder) joinGroupLocked(addr netip.Addr) error {
	g, err := ndp.SolicitedNodeMulticast(addr)
	if err != nil {
		return fmt.Errorf("interface %q: solicited-node group of %s: %w", r.ifi.Name, addr, err)
	}
	if r.groups[g] == 0 {
		if err := r.ndp.JoinGroup(g); err != nil {
			return fmt.Errorf("interface %q: joining %s for %s: %w", r.ifi.Name, g, addr, err)
		}
	}
	r.groups[g]++
	return nil
}

// leaveGroupLocked leaves the solicited-node group of addr when no other
// announced address needs it.
func (r *Responder) leaveGroupLocked(addr netip.Addr) error {
	g, err := ndp.SolicitedNodeMulticast(addr)
	if err != nil {
		return fmt.Errorf("interface %q: solicited-node group of %s: %w", r.ifi.Name, addr, err)
	}
	if r.groups[g]--; r.groups[g] > 0 {
		return nil
	}
	delete(r.groups, g)
	if err := r.ndp.LeaveGroup(g); err != nil {
		return fmt.Errorf("interface %q: leaving %s after withdrawing %s: %w", r.ifi.Name, g, addr, err)
	}
	return nil
}
