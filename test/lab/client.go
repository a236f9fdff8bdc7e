package lab

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"regexp"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// ClientSegmentDev is the client's interface on the node segment.
const ClientSegmentDev = "eth1"

// Client is the user's client machine: ClientNetns. Every helper refuses an
// address outside the lab's ranges before sending anything.
type Client struct{}

func checkLabAddr(addr string) (netip.Addr, error) {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("client: %q: %w", addr, err)
	}
	if !InLabRange(a) {
		return netip.Addr{}, fmt.Errorf("client: %s is outside the lab's ranges; the lab never sends traffic there", addr)
	}
	return a, nil
}

var arpReply = regexp.MustCompile(`reply from (\S+) \[([0-9A-Fa-f:]{17})\]`)

// ARP broadcasts ARP requests for addr on the node segment and returns the
// MAC of every node that answered (sorted, deduplicated): exactly one for a
// correctly announced layer-2 service.
func (Client) ARP(ctx context.Context, addr string) ([]string, error) {
	a, err := checkLabAddr(addr)
	if err != nil {
		return nil, err
	}
	if !a.Is4() {
		return nil, fmt.Errorf("client: ARP is IPv4 only; use NDP for %s", addr)
	}
	// -b keeps broadcasting after the first answer, so a second answering
	// node shows up too.
	out, err := inNetns(ctx, ClientNetns, "arping", "-b", "-I", ClientSegmentDev, "-c", "3", "-w", "3", addr)
	macs := parseARPing(out)
	if err != nil && len(macs) == 0 {
		// arping exits 1 when nobody answered: that is an answer too.
		if strings.Contains(err.Error(), "exit status 1") {
			return nil, nil
		}
		return nil, err
	}
	return macs, nil
}

func parseARPing(out string) []string {
	set := map[string]bool{}
	for _, m := range arpReply.FindAllStringSubmatch(out, -1) {
		set[strings.ToLower(m[2])] = true
	}
	return sortedKeys(set)
}

// NDP sends one neighbour solicitation for addr from the client's segment
// address and returns the MACs of every node that answered within wait.
func (Client) NDP(ctx context.Context, addr string, wait time.Duration) ([]string, error) {
	a, err := checkLabAddr(addr)
	if err != nil {
		return nil, err
	}
	if !a.Is6() {
		return nil, fmt.Errorf("client: NDP is IPv6 only; use ARP for %s", addr)
	}
	var fd int
	var ifMAC net.HardwareAddr
	err = InNetns(ClientNetns, func() error {
		ifi, err := net.InterfaceByName(ClientSegmentDev)
		if err != nil {
			return err
		}
		ifMAC = ifi.HardwareAddr
		fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
		if err != nil {
			return err
		}
		// NDP packets must carry hop limit 255 or receivers drop them.
		for _, opt := range []int{unix.IPV6_MULTICAST_HOPS, unix.IPV6_UNICAST_HOPS} {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, opt, 255); err != nil {
				unix.Close(fd)
				return err
			}
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_IF, ifi.Index); err != nil {
			unix.Close(fd)
			return err
		}
		if err := unix.BindToDevice(fd, ClientSegmentDev); err != nil {
			unix.Close(fd)
			return err
		}
		src := netip.MustParseAddr(ClientSegmentAddr6).As16()
		return unix.Bind(fd, &unix.SockaddrInet6{Addr: src})
	})
	if err != nil {
		return nil, fmt.Errorf("client: NDP socket: %w", err)
	}
	defer unix.Close(fd)

	target := a.As16()
	msg := make([]byte, 0, 32)
	msg = append(msg, 135, 0, 0, 0, 0, 0, 0, 0) // NS; the kernel fills the checksum
	msg = append(msg, target[:]...)
	msg = append(msg, 1, 1) // source link-layer address option
	msg = append(msg, ifMAC...)
	// Solicited-node multicast group of the target: ff02::1:ffXX:XXXX.
	var dst [16]byte
	copy(dst[:], []byte{0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff})
	copy(dst[13:], target[13:])
	if err := unix.Sendto(fd, msg, 0, &unix.SockaddrInet6{Addr: dst}); err != nil {
		return nil, fmt.Errorf("client: send NS for %s: %w", addr, err)
	}
	deadline := time.Now().Add(wait)
	set := map[string]bool{}
	buf := make([]byte, 1500)
	for {
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			break
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
			return nil, err
		}
		n, _, err := unix.Recvfrom(fd, buf, 0)
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("client: read NA: %w", err)
		}
		if mac := parseNA(buf[:n], target); mac != "" {
			set[mac] = true
		}
	}
	return sortedKeys(set), nil
}

// parseNA returns the target link-layer address of a neighbour
// advertisement for target, or "".
func parseNA(b []byte, target [16]byte) string {
	if len(b) < 24 || b[0] != 136 || !bytes.Equal(b[8:24], target[:]) {
		return ""
	}
	for opts := b[24:]; len(opts) >= 8; {
		l := int(opts[1]) * 8
		if l == 0 || l > len(opts) {
			return ""
		}
		if opts[0] == 2 && l >= 8 {
			return net.HardwareAddr(opts[2:8]).String()
		}
		opts = opts[l:]
	}
	return ""
}

// Poke sends one UDP datagram to addr's discard port from the client, so
// the client's kernel resolves the address (ARP or NDP) and the result
// shows in Neighbours.
func (Client) Poke(addr string) error {
	a, err := checkLabAddr(addr)
	if err != nil {
		return err
	}
	return InNetns(ClientNetns, func() error {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(a, 9)))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("lbstack-lab"))
		return err
	})
}

// Neighbour is one entry of the client's neighbour table.
type Neighbour struct {
	Addr  string   `json:"dst"`
	Dev   string   `json:"dev"`
	MAC   string   `json:"lladdr"`
	State []string `json:"state"`
}

// Neighbours returns the client's neighbour table on the node segment.
func (Client) Neighbours(ctx context.Context) ([]Neighbour, error) {
	out, err := ipIn(ctx, ClientNetns, "-j", "neigh", "show", "dev", ClientSegmentDev)
	if err != nil {
		return nil, err
	}
	var ns []Neighbour
	if strings.TrimSpace(out) == "" {
		return nil, nil
	}
	if err := json.Unmarshal([]byte(out), &ns); err != nil {
		return nil, fmt.Errorf("client: neighbour table: %w", err)
	}
	sort.Slice(ns, func(i, j int) bool { return ns[i].Addr < ns[j].Addr })
	return ns, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
