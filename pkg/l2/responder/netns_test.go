package responder

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The real-network tests build namespaces named lbh-<pid>-<role> joined by
// veth pairs, with addresses from 198.18.200.0/24 and 2001:db8:200::/64
// only, inside those namespaces only: the root namespace is never touched.
// Every namespace is deleted by name in t.Cleanup.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root to create network namespaces (run the tests as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipped: needs the ip command (Debian package iproute2)")
	}
}

// run runs a command and returns its combined output.
func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(t, name, args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// newNS creates the namespace lbh-<pid>-<role>, with loopback up and
// duplicate address detection off (so that link-local addresses are usable
// at once and NDP can bind), and deletes it when the test ends.
func newNS(t *testing.T, role string) string {
	t.Helper()
	name := fmt.Sprintf("lbh-%d-%s", os.Getpid(), role)
	mustRun(t, "ip", "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("deleting namespace %s: %v: %s", name, err, out)
		}
	})
	mustRun(t, "ip", "netns", "exec", name, "sysctl", "-qw",
		"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0")
	mustRun(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// inNS runs fn on an OS thread switched into the namespace. The thread is
// never unlocked, so the Go runtime ends it with the goroutine and no
// other goroutine ever runs in the namespace by accident. Sockets opened by
// fn stay in the namespace after it returns.
func inNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			errc <- fmt.Errorf("namespace %s: %w", ns, err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("namespace %s: setns: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// segment is a client namespace holding a bridge (br0, 198.18.200.1/24,
// 2001:db8:200::1/64) and node namespaces plugged into it, each with one
// interface at 198.18.200.1<i>/24 and 2001:db8:200::1<i>/64. The announced addresses
// (.100, ::100) are configured nowhere: only a responder can answer them.
type segment struct {
	client string
	nodes  []string
	ifs    []string           // each node's interface
	macs   []net.HardwareAddr // of each node's interface
}

const clientIf = "br0"

// nodeIfSeq numbers node interfaces lbh1, lbh2, ... across the whole test
// process. Names must never repeat, nor exist in the root namespace: Go
// caches interface name → index process-wide (for IPv6 zones, which ndp
// uses), and a cached "eth0" of another namespace would bind the NDP
// socket to the wrong index. A name never seen before misses the cache
// and is looked up in the calling thread's namespace.
var nodeIfSeq atomic.Int32

func newSegment(t *testing.T, nodes int) *segment {
	t.Helper()
	s := &segment{client: newNS(t, "c")}
	// arp_accept=1 lets the client create entries from gratuitous ARP,
	// so that a failover test sees it without sending traffic itself.
	mustRun(t, "ip", "netns", "exec", s.client, "sysctl", "-qw",
		"net.ipv4.conf.all.arp_accept=1", "net.ipv4.conf.default.arp_accept=1")
	mustRun(t, "ip", "-n", s.client, "link", "add", clientIf, "type", "bridge")
	mustRun(t, "ip", "-n", s.client, "addr", "add", "198.18.200.1/24", "dev", clientIf)
	mustRun(t, "ip", "-n", s.client, "addr", "add", "2001:db8:200::1/64", "dev", clientIf)
	mustRun(t, "ip", "-n", s.client, "link", "set", clientIf, "up")
	for i := 1; i <= nodes; i++ {
		node := newNS(t, fmt.Sprintf("n%d", i))
		port := fmt.Sprintf("n%d", i)
		nodeIf := fmt.Sprintf("lbh%d", nodeIfSeq.Add(1))
		mustRun(t, "ip", "-n", node, "link", "add", nodeIf, "type", "veth", "peer", "name", port, "netns", s.client)
		mustRun(t, "ip", "-n", s.client, "link", "set", port, "master", clientIf)
		mustRun(t, "ip", "-n", s.client, "link", "set", port, "up")
		mustRun(t, "ip", "-n", node, "addr", "add", fmt.Sprintf("198.18.200.1%d/24", i), "dev", nodeIf)
		mustRun(t, "ip", "-n", node, "addr", "add", fmt.Sprintf("2001:db8:200::1%d/64", i), "dev", nodeIf)
		mustRun(t, "ip", "-n", node, "link", "set", nodeIf, "up")
		var mac net.HardwareAddr
		if err := inNS(node, func() error {
			ifi, err := net.InterfaceByName(nodeIf)
			if err != nil {
				return err
			}
			mac = ifi.HardwareAddr
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		s.nodes = append(s.nodes, node)
		s.ifs = append(s.ifs, nodeIf)
		s.macs = append(s.macs, mac)
	}
	return s
}

// responder starts a responder on the interface of node i (0-based) and closes it
// when the test ends.
func (s *segment) responder(t *testing.T, i int, opts Options) *Responder {
	t.Helper()
	var r *Responder
	if err := inNS(s.nodes[i], func() error {
		var err error
		r, err = New(s.ifs[i], opts)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("closing responder: %v", err)
		}
	})
	return r
}

// poke makes the client's kernel resolve addr by sending it one UDP
// datagram (to the discard port); the datagram itself goes nowhere.
func (s *segment) poke(t *testing.T, addr string) {
	t.Helper()
	if err := inNS(s.client, func() error {
		c, err := net.Dial("udp", net.JoinHostPort(addr, "9"))
		if err != nil {
			return err
		}
		defer c.Close()
		_, err = c.Write([]byte("lbh"))
		return err
	}); err != nil {
		t.Fatalf("sending to %s from the client: %v", addr, err)
	}
}

// neighbour returns the client kernel's entry for addr on br0 ("" when
// there is none), as `ip neigh` prints it.
func (s *segment) neighbour(t *testing.T, addr string) string {
	t.Helper()
	return strings.TrimSpace(mustRun(t, "ip", "-n", s.client, "neigh", "show", addr, "dev", clientIf))
}

// forgetNeighbour deletes the client's entry for addr, if any.
func (s *segment) forgetNeighbour(t *testing.T, addr string) {
	t.Helper()
	_, _ = run(t, "ip", "-n", s.client, "neigh", "del", addr, "dev", clientIf)
}

// waitNeighbour polls the client's entry for addr until it has lladdr mac,
// and fails the test after timeout.
func (s *segment) waitNeighbour(t *testing.T, addr string, mac net.HardwareAddr, timeout time.Duration) {
	t.Helper()
	want := "lladdr " + mac.String()
	deadline := time.Now().Add(timeout)
	var got string
	for time.Now().Before(deadline) {
		if got = s.neighbour(t, addr); strings.Contains(got, want) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("client neighbour entry for %s = %q after %s, want %s", addr, got, timeout, want)
}

// expectUnresolved resolves addr afresh from the client and checks the
// kernel gets no answer within wait: the entry never gains a lladdr.
func (s *segment) expectUnresolved(t *testing.T, addr string, wait time.Duration) {
	t.Helper()
	s.forgetNeighbour(t, addr)
	s.poke(t, addr)
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		if got := s.neighbour(t, addr); strings.Contains(got, "lladdr") {
			t.Fatalf("client resolved %s (%q) though nobody should answer", addr, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
