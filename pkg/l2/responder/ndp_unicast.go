package responder

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// Unicast neighbour solicitations need their own socket. A client whose
// cache entry went stale re-checks it with solicitations sent straight to
// the announced address and this interface's MAC (RFC 4861 7.3.3, Linux's
// PROBE state). The kernel drops them (the address is not its own) before
// any ICMPv6 socket sees them, and an unanswered probe turns the client's
// entry FAILED: traffic stalls until it re-resolves by multicast. A packet
// socket sees the frames before the kernel drops them; a BPF filter keeps
// it to ICMPv6 neighbour solicitations sent to this MAC, so the node's
// other IPv6 traffic never reaches user space. (IPv4 needs no such thing:
// the ARP socket is a packet socket already.)

// Offsets in an untagged Ethernet frame carrying IPv6.
const (
	ethHeaderLen   = 14
	ip6HeaderLen   = 40
	offPayloadLen  = ethHeaderLen + 4
	offNextHeader  = ethHeaderLen + 6
	offHopLimit    = ethHeaderLen + 7
	offSrc         = ethHeaderLen + 8
	offICMPType    = ethHeaderLen + ip6HeaderLen
	nsLen          = 24 // ICMPv6 header, reserved, target address
	protoICMPv6    = 58
	typeNeighSolic = 135
)

// unicastNSFilter accepts IPv6 frames to mac that carry an ICMPv6
// neighbour solicitation directly after the IPv6 header (solicitations
// never have extension headers in practice; one that has is left to the
// multicast path).
func unicastNSFilter(mac net.HardwareAddr) ([]bpf.RawInstruction, error) {
	const drop = 11 // index of the drop instruction
	prog := []bpf.Instruction{
		/* 0 */ bpf.LoadAbsolute{Off: 0, Size: 4},
		/* 1 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: binary.BigEndian.Uint32(mac[0:4]), SkipTrue: drop - 2},
		/* 2 */ bpf.LoadAbsolute{Off: 4, Size: 2},
		/* 3 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: uint32(binary.BigEndian.Uint16(mac[4:6])), SkipTrue: drop - 4},
		/* 4 */ bpf.LoadAbsolute{Off: 12, Size: 2},
		/* 5 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: unix.ETH_P_IPV6, SkipTrue: drop - 6},
		/* 6 */ bpf.LoadAbsolute{Off: offNextHeader, Size: 1},
		/* 7 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: protoICMPv6, SkipTrue: drop - 8},
		/* 8 */ bpf.LoadAbsolute{Off: offICMPType, Size: 1},
		/* 9 */ bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: typeNeighSolic, SkipTrue: drop - 10},
		/* 10 */ bpf.RetConstant{Val: 0xffff},
		/* 11 */ bpf.RetConstant{Val: 0},
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("assembling unicast solicitation filter: %w", err)
	}
	return raw, nil
}

// listenUnicastNS opens the packet socket of unicast solicitations.
func listenUnicastNS(ifi *net.Interface) (*packet.Conn, error) {
	filter, err := unicastNSFilter(ifi.HardwareAddr)
	if err != nil {
		return nil, err
	}
	c, err := packet.Listen(ifi, packet.Raw, unix.ETH_P_IPV6, &packet.Config{Filter: filter})
	if err != nil {
		return nil, fmt.Errorf("opening unicast solicitation socket: %w", err)
	}
	return c, nil
}

// serveUnicastNS answers unicast solicitations for announced addresses
// until the responder closes.
func (r *Responder) serveUnicastNS() {
	defer r.wg.Done()
	buf := make([]byte, r.ifi.MTU+ethHeaderLen)
	for {
		n, _, err := r.ndpUnicast.ReadFrom(buf)
		if err != nil {
			if r.isClosed() || errors.Is(err, net.ErrClosed) || errors.Is(err, os.ErrClosed) {
				return
			}
			r.opts.Log.Error(err, "reading unicast solicitations", "interface", r.ifi.Name)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		target, src, ok := parseUnicastNS(buf[:n])
		if !ok {
			continue
		}
		r.ifOwned(target, func() {
			r.requests.Add(1)
			if err := r.solicitedNA(target, src); err != nil {
				r.opts.Log.Error(err, "answering unicast solicitation", "interface", r.ifi.Name, "address", target, "to", src)
			}
		})
	}
}

// parseUnicastNS extracts the target and source of a neighbour
// solicitation from an Ethernet frame the filter let through, checking
// what RFC 4861 7.1.1 asks of it that the filter did not: hop limit 255
// and a well-formed message.
func parseUnicastNS(frame []byte) (target, src netip.Addr, ok bool) {
	if len(frame) < offICMPType+nsLen || frame[offNextHeader] != protoICMPv6 || frame[offHopLimit] != ndp.HopLimit {
		return netip.Addr{}, netip.Addr{}, false
	}
	// The IPv6 payload length, not the frame length, ends the message:
	// short frames carry Ethernet padding.
	end := offICMPType + int(binary.BigEndian.Uint16(frame[offPayloadLen:]))
	if end > len(frame) || end < offICMPType+nsLen {
		return netip.Addr{}, netip.Addr{}, false
	}
	msg, err := ndp.ParseMessage(frame[offICMPType:end])
	if err != nil {
		return netip.Addr{}, netip.Addr{}, false
	}
	ns, isNS := msg.(*ndp.NeighborSolicitation)
	if !isNS {
		return netip.Addr{}, netip.Addr{}, false
	}
	return ns.TargetAddress, netip.AddrFrom16([16]byte(frame[offSrc : offSrc+16])), true
}
