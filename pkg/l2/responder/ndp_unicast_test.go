package responder

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/bpf"
)

var (
	ourMAC   = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x01}
	theirMAC = net.HardwareAddr{0x02, 0x00, 0x00, 0x00, 0x00, 0x02}
	client6  = netip.MustParseAddr("2001:db8:200::1")
	target6  = netip.MustParseAddr(v6Addr)
)

// frame builds an Ethernet frame to dst carrying IPv6 with the given hop
// limit and ICMPv6 message, plus pad bytes of Ethernet padding.
func frame(t *testing.T, dst net.HardwareAddr, hopLimit byte, m ndp.Message, pad int) []byte {
	t.Helper()
	icmp, err := ndp.MarshalMessage(m)
	if err != nil {
		t.Fatal(err)
	}
	b := append([]byte{}, dst...)
	b = append(b, theirMAC...)
	b = binary.BigEndian.AppendUint16(b, 0x86dd)
	ip := make([]byte, ip6HeaderLen)
	ip[0] = 6 << 4
	binary.BigEndian.PutUint16(ip[4:], uint16(len(icmp)))
	ip[6] = protoICMPv6
	ip[7] = hopLimit
	src := client6.As16()
	copy(ip[8:], src[:])
	dstIP := target6.As16()
	copy(ip[24:], dstIP[:])
	b = append(b, ip...)
	b = append(b, icmp...)
	return append(b, make([]byte, pad)...)
}

func ns() *ndp.NeighborSolicitation {
	return &ndp.NeighborSolicitation{
		TargetAddress: target6,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: theirMAC}},
	}
}

func TestUnicastNSFilter(t *testing.T) {
	raw, err := unicastNSFilter(ourMAC)
	if err != nil {
		t.Fatal(err)
	}
	prog, ok := bpf.Disassemble(raw)
	if !ok {
		t.Fatal("filter does not disassemble")
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	na := &ndp.NeighborAdvertisement{TargetAddress: target6}
	ipv4 := frame(t, ourMAC, 255, ns(), 0)
	binary.BigEndian.PutUint16(ipv4[12:], 0x0800)
	udp := frame(t, ourMAC, 255, ns(), 0)
	udp[offNextHeader] = 17
	for _, tt := range []struct {
		name   string
		frame  []byte
		accept bool
	}{
		{"solicitation to our MAC", frame(t, ourMAC, 255, ns(), 0), true},
		{"solicitation to another MAC", frame(t, theirMAC, 255, ns(), 0), false},
		{"solicitation to a multicast MAC (the NDP socket's)", frame(t, net.HardwareAddr{0x33, 0x33, 0xff, 0, 1, 0}, 255, ns(), 0), false},
		{"advertisement to our MAC", frame(t, ourMAC, 255, na, 0), false},
		{"not IPv6", ipv4, false},
		{"not ICMPv6", udp, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n, err := vm.Run(tt.frame)
			if err != nil {
				t.Fatal(err)
			}
			if (n > 0) != tt.accept {
				t.Errorf("filter returned %d, want accept=%v", n, tt.accept)
			}
		})
	}
}

func TestParseUnicastNS(t *testing.T) {
	good := frame(t, ourMAC, 255, ns(), 0)
	longLen := frame(t, ourMAC, 255, ns(), 0)
	binary.BigEndian.PutUint16(longLen[offPayloadLen:], 200)
	for _, tt := range []struct {
		name  string
		frame []byte
		ok    bool
	}{
		{"solicitation", good, true},
		{"solicitation with Ethernet padding", frame(t, ourMAC, 255, ns(), 12), true},
		{"hop limit not 255 (forwarded: RFC 4861 says drop)", frame(t, ourMAC, 254, ns(), 0), false},
		{"truncated", good[:offICMPType+10], false},
		{"payload length beyond the frame", longLen, false},
		{"advertisement", frame(t, ourMAC, 255, &ndp.NeighborAdvertisement{TargetAddress: target6}, 0), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			target, src, ok := parseUnicastNS(tt.frame)
			if ok != tt.ok {
				t.Fatalf("ok = %v, want %v", ok, tt.ok)
			}
			if ok && (target != target6 || src != client6) {
				t.Errorf("target, src = %s, %s; want %s, %s", target, src, target6, client6)
			}
		})
	}
}

// TestNDPAnswersUnicastProbes: a client whose entry went stale re-checks
// it with unicast solicitations; answered, the entry turns REACHABLE
// again without ever failing. (Without the packet socket the kernel drops
// them and the entry goes FAILED.)
func TestNDPAnswersUnicastProbes(t *testing.T) {
	requireRoot(t)
	s := newSegment(t, 1)
	// Short NUD timers: stale after ~0.5-1.5 s, probe 1 s after use, 200 ms
	// between probes (3 unicast probes by default, then FAILED).
	mustRun(t, "ip", "netns", "exec", s.client, "sysctl", "-qw",
		"net.ipv6.neigh.br0.base_reachable_time_ms=500",
		"net.ipv6.neigh.br0.delay_first_probe_time=1",
		"net.ipv6.neigh.br0.retrans_time_ms=200")
	r := s.responder(t, 0, quick)
	if err := r.Announce(target6); err != nil {
		t.Fatal(err)
	}
	s.forgetNeighbour(t, v6Addr)
	s.poke(t, v6Addr)
	s.waitNeighbour(t, v6Addr, s.macs[0], 3*time.Second)

	// Wait for the entry to leave REACHABLE: to DELAY when the client
	// used it lately (the kernel then probes by itself), to STALE
	// otherwise, where one datagram starts the probing.
	before := r.Stats().RequestsReceived
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := s.neighbour(t, v6Addr)
		if strings.Contains(got, "STALE") {
			s.poke(t, v6Addr)
			break
		}
		if strings.Contains(got, "DELAY") || strings.Contains(got, "PROBE") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("entry never left REACHABLE: %q", got)
		}
		time.Sleep(20 * time.Millisecond)
	}

	var seen []string
	deadline = time.Now().Add(4 * time.Second)
	for time.Now().Before(deadline) {
		got := s.neighbour(t, v6Addr)
		if len(seen) == 0 || seen[len(seen)-1] != got {
			seen = append(seen, got)
		}
		if strings.Contains(got, "FAILED") || strings.Contains(got, "INCOMPLETE") {
			t.Fatalf("entry lost its address while probing: %q", seen)
		}
		if strings.Contains(got, "REACHABLE") && strings.Contains(got, "lladdr "+s.macs[0].String()) {
			if after := r.Stats().RequestsReceived; after <= before {
				t.Fatalf("REACHABLE again but no solicitation counted (%d → %d): %q", before, after, seen)
			}
			t.Logf("entry states: %q", seen)
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("entry not REACHABLE again after probing: %q", seen)
}
