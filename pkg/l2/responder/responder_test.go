package responder

import (
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

const (
	v4Addr = "198.18.200.100"
	v6Addr = "2001:db8:200::100"
)

// quick keeps the gratuitous announcements of tests short and countable.
var quick = Options{GratuitousCount: 2, GratuitousInterval: 100 * time.Millisecond}

var arpingReply = regexp.MustCompile(`reply from \S+ \[([0-9A-Fa-f:]{17})\]`)

// arping asks for addr from the client with iputils arping (one probe,
// which it waits a second for) and returns the MAC of the reply, or ""
// when none came. Any other failure of arping fails the test, so that a
// broken arping cannot pass for "nobody answered".
func arping(t *testing.T, s *segment, addr string) string {
	t.Helper()
	out, err := run(t, "ip", "netns", "exec", s.client, "arping", "-c", "1", "-w", "2", "-I", clientIf, addr)
	m := arpingReply.FindStringSubmatch(out)
	if err != nil {
		if m != nil || !strings.Contains(out, "Sent 1 probes") || !strings.Contains(out, "Received 0 response") {
			t.Fatalf("arping failed other than by getting no reply: %v", err)
		}
		return ""
	}
	if m == nil {
		t.Fatalf("arping succeeded without a reply line: %s", out)
	}
	return strings.ToLower(m[1])
}

func requireArping(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("arping"); err != nil {
		t.Skip("skipped: needs arping (Debian package iputils-arping)")
	}
}

func TestARPAnswersOnlyAnnouncedAddresses(t *testing.T) {
	requireRoot(t)
	requireArping(t)
	s := newSegment(t, 1)
	r := s.responder(t, 0, quick)
	mac := s.macs[0].String()

	// Before Announce nobody answers: the node's kernel does not own the
	// address, so a reply later can only come from the responder.
	if got := arping(t, s, v4Addr); got != "" {
		t.Fatalf("before Announce: reply from %s", got)
	}

	if err := r.Announce(netip.MustParseAddr(v4Addr)); err != nil {
		t.Fatal(err)
	}
	if got := arping(t, s, v4Addr); got != mac {
		t.Fatalf("after Announce: arping reply from %q, want the node's %s", got, mac)
	}
	// The client's kernel resolves it too (its own ARP, not arping's).
	s.forgetNeighbour(t, v4Addr)
	s.poke(t, v4Addr)
	s.waitNeighbour(t, v4Addr, s.macs[0], 3*time.Second)

	// The counters move just after the reply leaves, so the client may
	// have it before they do: wait for them briefly.
	waitStat(t, "requests after two resolutions", func() uint64 { return r.Stats().RequestsReceived }, 2, 2*time.Second)
	waitStat(t, "responses after two resolutions", func() uint64 { return r.Stats().ResponsesSent }, 2, 2*time.Second)
	st := r.Stats()

	if err := r.Withdraw(netip.MustParseAddr(v4Addr)); err != nil {
		t.Fatal(err)
	}
	if got := arping(t, s, v4Addr); got != "" {
		t.Fatalf("after Withdraw: reply from %s", got)
	}
	if after := r.Stats().ResponsesSent; after != st.ResponsesSent {
		t.Errorf("responses after Withdraw: %d, was %d", after, st.ResponsesSent)
	}
}

func TestNDPAnswersOnlyAnnouncedAddresses(t *testing.T) {
	requireRoot(t)
	s := newSegment(t, 1)
	r := s.responder(t, 0, quick)

	// Before Announce the client's kernel gets no answer: the node's
	// kernel does not own the address.
	s.expectUnresolved(t, v6Addr, 1500*time.Millisecond)

	if err := r.Announce(netip.MustParseAddr(v6Addr)); err != nil {
		t.Fatal(err)
	}
	s.forgetNeighbour(t, v6Addr)
	s.poke(t, v6Addr)
	s.waitNeighbour(t, v6Addr, s.macs[0], 3*time.Second)
	waitStat(t, "requests after a resolution", func() uint64 { return r.Stats().RequestsReceived }, 1, 2*time.Second)
	waitStat(t, "responses after a resolution", func() uint64 { return r.Stats().ResponsesSent }, 1, 2*time.Second)

	if err := r.Withdraw(netip.MustParseAddr(v6Addr)); err != nil {
		t.Fatal(err)
	}
	s.expectUnresolved(t, v6Addr, 1500*time.Millisecond)
}

// TestGratuitousARPMovesClientToNewOwner is a failover: the client knows
// the address at node 1; node 1 withdraws and node 2 announces, and the
// client's cache must point at node 2 without the client asking.
func TestGratuitousARPMovesClientToNewOwner(t *testing.T) {
	requireRoot(t)
	s := newSegment(t, 2)
	// Five announcements over 1.2 s: at least one lands after the
	// client's neighbour locktime (1 s) since node 1's.
	opts := Options{GratuitousCount: 5, GratuitousInterval: 300 * time.Millisecond}
	r1 := s.responder(t, 0, opts)
	r2 := s.responder(t, 1, opts)
	addr := netip.MustParseAddr(v4Addr)

	if err := r1.Announce(addr); err != nil {
		t.Fatal(err)
	}
	// arp_accept=1: node 1's gratuitous ARP alone creates the entry.
	s.waitNeighbour(t, v4Addr, s.macs[0], 3*time.Second)

	if err := r1.Withdraw(addr); err != nil {
		t.Fatal(err)
	}
	if err := r2.Announce(addr); err != nil {
		t.Fatal(err)
	}
	s.waitNeighbour(t, v4Addr, s.macs[1], 4*time.Second)
	waitStat(t, "node 2 gratuitous", func() uint64 { return r2.Stats().GratuitousSent }, 10, 3*time.Second)
	if st := r2.Stats(); st.RequestsReceived != 0 {
		t.Errorf("node 2 stats = %+v: the client asked, so the move proves nothing about gratuitous ARP", st)
	}
}

// TestUnsolicitedNAMovesClientToNewOwner is the IPv6 failover: an
// unsolicited advertisement with Override moves an existing entry.
func TestUnsolicitedNAMovesClientToNewOwner(t *testing.T) {
	requireRoot(t)
	s := newSegment(t, 2)
	opts := Options{GratuitousCount: 5, GratuitousInterval: 300 * time.Millisecond}
	r1 := s.responder(t, 0, opts)
	r2 := s.responder(t, 1, opts)
	addr := netip.MustParseAddr(v6Addr)

	if err := r1.Announce(addr); err != nil {
		t.Fatal(err)
	}
	s.forgetNeighbour(t, v6Addr)
	s.poke(t, v6Addr)
	s.waitNeighbour(t, v6Addr, s.macs[0], 3*time.Second)

	if err := r1.Withdraw(addr); err != nil {
		t.Fatal(err)
	}
	before := r2.Stats()
	if err := r2.Announce(addr); err != nil {
		t.Fatal(err)
	}
	s.waitNeighbour(t, v6Addr, s.macs[1], 4*time.Second)
	if st := r2.Stats(); st.RequestsReceived != before.RequestsReceived {
		t.Errorf("node 2 stats = %+v: the client asked, so the move proves nothing about unsolicited advertisements", st)
	}
}

// TestWithdrawStopsGratuitous: a Withdraw during the announcements cancels
// the rest, and Announce of an announced address sends nothing more.
func TestWithdrawStopsGratuitous(t *testing.T) {
	requireRoot(t)
	s := newSegment(t, 1)
	r := s.responder(t, 0, Options{GratuitousCount: 10, GratuitousInterval: 200 * time.Millisecond})
	addr := netip.MustParseAddr(v4Addr)
	if err := r.Announce(addr); err != nil {
		t.Fatal(err)
	}
	waitStat(t, "first gratuitous ARP", func() uint64 { return r.Stats().GratuitousSent }, 2, time.Second)
	if err := r.Announce(addr); err != nil {
		t.Fatal(err)
	}
	if err := r.Withdraw(addr); err != nil {
		t.Fatal(err)
	}
	sent := r.Stats().GratuitousSent
	time.Sleep(600 * time.Millisecond)
	if got := r.Stats().GratuitousSent; got != sent {
		t.Errorf("gratuitous sent after Withdraw: %d, was %d at Withdraw", got, sent)
	}
	if sent >= 20 {
		t.Errorf("sent %d gratuitous packets before Withdraw; the cancel was not exercised", sent)
	}
	if got := r.Announced(); len(got) != 0 {
		t.Errorf("Announced after Withdraw = %v", got)
	}
}

// TestSharedSolicitedNodeGroup: two addresses with the same low 24 bits
// share a solicited-node group; withdrawing one must not deafen the other.
func TestSharedSolicitedNodeGroup(t *testing.T) {
	requireRoot(t)
	s := newSegment(t, 1)
	r := s.responder(t, 0, quick)
	a := netip.MustParseAddr(v6Addr)
	b := netip.MustParseAddr("2001:db8:200:1::100") // same group ff02::1:ff00:100
	for _, x := range []netip.Addr{a, b} {
		if err := r.Announce(x); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Withdraw(b); err != nil {
		t.Fatal(err)
	}
	s.forgetNeighbour(t, v6Addr)
	s.poke(t, v6Addr)
	s.waitNeighbour(t, v6Addr, s.macs[0], 3*time.Second)
}

func TestAnnounceRejects(t *testing.T) {
	requireRoot(t)
	s := newSegment(t, 1)
	r := s.responder(t, 0, quick)
	for _, a := range []string{"ff02::1", "fe80::1", "::", "0.0.0.0", "224.0.0.1", "127.0.0.1"} {
		if err := r.Announce(netip.MustParseAddr(a)); err == nil {
			t.Errorf("Announce(%s) succeeded", a)
		}
	}
	if err := r.Announce(netip.Addr{}); err == nil {
		t.Error("Announce(invalid) succeeded")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Announce(netip.MustParseAddr(v4Addr)); err == nil {
		t.Error("Announce after Close succeeded")
	}
}

func waitStat(t *testing.T, what string, get func() uint64, want uint64, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if get() >= want {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("%s: counter %d after %s, want at least %d", what, get(), timeout, want)
}

// An interface that gets its IPv6 link-local address only after the
// responder started (it just came up): the first Announce of an IPv6
// address starts NDP then, instead of failing for the responder's life.
func TestNDPStartsWhenTheLinkLocalAddressArrives(t *testing.T) {
	requireRoot(t)
	s := newSegment(t, 1)
	node, ifName := s.nodes[0], s.ifs[0]
	mustRun(t, "ip", "-n", node, "-6", "addr", "flush", "dev", ifName, "scope", "link")
	r := s.responder(t, 0, quick)
	if r.ndp != nil {
		t.Fatal("NDP started without a link-local address: the test proves nothing")
	}
	mustRun(t, "ip", "-n", node, "addr", "add", "fe80::1:2/64", "dev", ifName, "nodad")
	// The speaker's process lives in the node's namespace; so must the
	// call that opens the NDP sockets.
	if err := inNS(node, func() error { return r.Announce(netip.MustParseAddr(v6Addr)) }); err != nil {
		t.Fatal(err)
	}
	s.forgetNeighbour(t, v6Addr)
	s.poke(t, v6Addr)
	s.waitNeighbour(t, v6Addr, s.macs[0], 3*time.Second)
}
