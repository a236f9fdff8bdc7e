package responder

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/ethernet"
)

// serveARP answers ARP requests for announced addresses until the
// responder closes.
func (r *Responder) serveARP() {
	defer r.wg.Done()
	for {
		pkt, eth, err := r.arp.Read()
		if err != nil {
			if r.isClosed() || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return
			}
			// A read error on a live socket is not expected to repeat
			// (the library already skips frames that are not ARP); pause
			// so that one that does cannot spin a core.
			r.opts.Log.Error(err, "reading ARP", "interface", r.ifi.Name)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !r.shouldAnswerARP(pkt, eth) {
			continue
		}
		target, ok := netip.AddrFromSlice(pkt.TargetIP)
		if !ok {
			continue
		}
		r.ifOwned(target, func() {
			r.requests.Add(1)
			if err := r.sent(&r.responses, r.arp.Reply(pkt, r.ifi.HardwareAddr, pkt.TargetIP)); err != nil {
				r.opts.Log.Error(err, "sending ARP reply", "interface", r.ifi.Name, "address", target, "to", pkt.SenderHardwareAddr)
			}
		})
	}
}

// shouldAnswerARP tells whether a frame is an ARP request someone expects
// an answer to: a request sent to broadcast or to this interface (a
// unicast re-check of a cache entry), not sent by this interface (the
// packet socket also sees outgoing frames), and not a gratuitous ARP of
// another node (sender address == target address: an announcement, not a
// question). ARP probes (sender address 0.0.0.0, RFC 5227) are answered:
// a host checking whether the address is free must learn it is not.
func (r *Responder) shouldAnswerARP(pkt *arp.Packet, eth *ethernet.Frame) bool {
	if pkt.Operation != arp.OperationRequest {
		return false
	}
	if !bytes.Equal(eth.Destination, ethernet.Broadcast) && !bytes.Equal(eth.Destination, r.ifi.HardwareAddr) {
		return false
	}
	if bytes.Equal(pkt.SenderHardwareAddr, r.ifi.HardwareAddr) {
		return false
	}
	return !pkt.SenderIP.Equal(pkt.TargetIP)
}

// gratuitousARP broadcasts addr → this interface's MAC twice, as a request
// and as a reply: hosts differ in which one they accept to update their
// cache (Linux takes either; some stacks only one).
func (r *Responder) gratuitousARP(addr netip.Addr) error {
	for _, op := range []arp.Operation{arp.OperationRequest, arp.OperationReply} {
		pkt, err := arp.NewPacket(op, r.ifi.HardwareAddr, addr.AsSlice(), ethernet.Broadcast, addr.AsSlice())
		if err != nil {
			return fmt.Errorf("interface %q: building gratuitous ARP for %s: %w", r.ifi.Name, addr, err)
		}
		if err := r.sent(&r.gratuitous, r.arp.WriteTo(pkt, ethernet.Broadcast)); err != nil {
			return fmt.Errorf("interface %q: sending gratuitous ARP for %s: %w", r.ifi.Name, addr, err)
		}
	}
	return nil
}
