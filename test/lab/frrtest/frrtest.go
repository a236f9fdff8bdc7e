// Package frrtest is the lab's smallest fixture, for package tests (the BGP
// backends in pkg/bgp, the speaker command in pkg/speaker) that need a real
// router but not the whole lab of test/lab. It runs a real FRR router
// (Debian's bgpd and zebra): a router network namespace and a node network namespace joined by
// a veth pair, router 198.18.0.254 / 2001:db8:18::fe, node 198.18.0.1 /
// 2001:db8:18::1 (no other address is ever used), and helpers to read the
// router's state through vtysh's JSON output. Everything it starts is
// stopped by PID, and every namespace deleted by name, in t.Cleanup, also
// when the test fails. It needs root; Start skips the test otherwise.
//
// Code under test that must speak BGP from the node runs in a child
// process started with Lab.StartInNode (`ip netns exec`): a network
// namespace belongs to a thread, and Go moves goroutines between threads,
// so a process entirely inside the namespace is the robust way.
package frrtest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The lab's addresses and AS numbers.
const (
	RouterV4 = "198.18.0.254"
	NodeV4   = "198.18.0.1"
	RouterV6 = "2001:db8:18::fe"
	NodeV6   = "2001:db8:18::1"
	RouterAS = 64513
	NodeAS   = 64512
)

// DefaultConfig is a bgpd configuration peering with the node over IPv4
// (AS 64512) and IPv6 (any external AS), retrying connections every
// second, with route-map changes applied at once and no policy required.
const DefaultConfig = `frr defaults traditional
hostname lbs-router
log stdout
bgp route-map delay-timer 0
!
router bgp 64513
 bgp router-id 198.18.0.254
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 198.18.0.1 remote-as 64512
 neighbor 198.18.0.1 timers connect 1
 neighbor 2001:db8:18::1 remote-as external
 neighbor 2001:db8:18::1 timers connect 1
 !
 address-family ipv6 unicast
  neighbor 2001:db8:18::1 activate
 exit-address-family
!
`

// Lab is one router namespace running FRR and one node namespace.
type Lab struct {
	t        testing.TB
	ID       string
	RouterNS string
	NodeNS   string
	// NodeLink is the node's end of the veth pair (in NodeNS).
	NodeLink string
	// Dir holds FRR's sockets, PID files, configuration and the logs of
	// every process started.
	Dir string

	mu    sync.Mutex
	procs []*exec.Cmd
	names map[*exec.Cmd]string
}

// Start builds the lab with bgpdConf (DefaultConfig when empty) and
// returns it once bgpd answers on its vty socket.
func Start(t testing.TB, bgpdConf string) *Lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: creates network namespaces and runs FRR (run as root, e.g. in CI)")
	}
	for _, b := range []string{"/usr/lib/frr/zebra", "/usr/lib/frr/bgpd", "/usr/bin/vtysh"} {
		if _, err := os.Stat(b); err != nil {
			t.Skipf("needs Debian's frr package (%s: %v)", b, err)
		}
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip)")
	}
	if bgpdConf == "" {
		bgpdConf = DefaultConfig
	}
	var rnd [3]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		t.Fatal(err)
	}
	id := hex.EncodeToString(rnd[:])
	l := &Lab{t: t, ID: id, RouterNS: "lbs-" + id + "-r", NodeNS: "lbs-" + id + "-n1", names: map[*exec.Cmd]string{}}
	// Not t.TempDir: FRR drops to the frr user, which must reach and own
	// its directory (t.TempDir's parents are private to root).
	dir, err := os.MkdirTemp("", "lbs-"+id+"-")
	if err != nil {
		t.Fatal(err)
	}
	l.Dir = dir
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := chownFRR(dir); err != nil {
		t.Skipf("needs the frr user of Debian's frr package: %v", err)
	}
	// Cleanups run last in, first out: the namespaces go after the
	// processes in them.
	t.Cleanup(func() {
		for _, ns := range []string{l.RouterNS, l.NodeNS} {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
				t.Logf("delete netns %s: %v %s", ns, err, out)
			}
		}
	})
	l.run("ip", "netns", "add", l.RouterNS)
	l.run("ip", "netns", "add", l.NodeNS)
	vr, vn := "lbs"+id+"r", "lbs"+id+"n"
	l.NodeLink = vn
	l.run("ip", "link", "add", vr, "type", "veth", "peer", "name", vn)
	l.run("ip", "link", "set", vr, "netns", l.RouterNS)
	l.run("ip", "link", "set", vn, "netns", l.NodeNS)
	for _, x := range []struct{ ns, dev, v4, v6 string }{{l.RouterNS, vr, RouterV4, RouterV6}, {l.NodeNS, vn, NodeV4, NodeV6}} {
		l.run("ip", "-n", x.ns, "link", "set", "lo", "up")
		l.run("ip", "-n", x.ns, "addr", "add", x.v4+"/24", "dev", x.dev)
		// nodad: usable at once, not after duplicate address detection.
		l.run("ip", "-n", x.ns, "addr", "add", x.v6+"/64", "dev", x.dev, "nodad")
		l.run("ip", "-n", x.ns, "link", "set", x.dev, "up")
	}
	// The pathspace directory FRR creates for -N, removed after the
	// daemons stopped.
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Join("/run/frr", "lbs-"+l.ID)) })
	t.Cleanup(l.stopProcs)
	l.startFRR(bgpdConf)
	return l
}

func (l *Lab) run(name string, args ...string) {
	l.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		l.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

func (l *Lab) startFRR(bgpdConf string) {
	conf := filepath.Join(l.Dir, "bgpd.conf")
	if err := os.WriteFile(conf, []byte(bgpdConf), 0o644); err != nil {
		l.t.Fatal(err)
	}
	// vtysh looks for vtysh.conf next to the sockets; empty keeps it quiet.
	if err := os.WriteFile(filepath.Join(l.Dir, "vtysh.conf"), nil, 0o644); err != nil {
		l.t.Fatal(err)
	}
	for _, d := range []string{"zebra", "bgpd"} {
		cfg := "/dev/null"
		if d == "bgpd" {
			cfg = conf
		}
		argv := []string{"netns", "exec", l.RouterNS, "/usr/lib/frr/" + d,
			"-N", "lbs-" + l.ID,
			"--vty_socket", l.Dir,
			"-z", filepath.Join(l.Dir, "zserv.api"),
			"-i", filepath.Join(l.Dir, d+".pid"),
			"-f", cfg,
			"-P", "0",
			// Not root: Debian's FRR insists its user be in the frrvty
			// group, which root is not; the package's frr user is.
			"-u", "frr", "-g", "frr",
			"--log", "stdout",
		}
		if d == "bgpd" {
			argv = append(argv, "-p", "179")
		}
		l.Start(d, "ip", argv...)
		l.waitFile(filepath.Join(l.Dir, d+".vty"), d)
	}
}

// Start runs a process (in the current namespace) with its output in
// Dir/name.log, shown in the test log if the test fails, and stopped by
// PID at cleanup.
func (l *Lab) Start(name, bin string, args ...string) *exec.Cmd {
	return l.StartCmd(name, exec.Command(bin, args...))
}

// StartInNode runs bin inside the node namespace (ip netns exec), with env
// added to the test's environment; see Start.
func (l *Lab) StartInNode(name string, env []string, bin string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", l.NodeNS, bin}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	return l.StartCmd(name, cmd)
}

// StartCmd starts a prepared command like Start; Stdout and Stderr go to
// the log unless set.
func (l *Lab) StartCmd(name string, cmd *exec.Cmd) *exec.Cmd {
	t := l.t
	logPath := filepath.Join(l.Dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	if cmd.Stdout == nil {
		cmd.Stdout = f
	}
	if cmd.Stderr == nil {
		cmd.Stderr = f
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	f.Close()
	l.mu.Lock()
	l.procs = append(l.procs, cmd)
	l.names[cmd] = filepath.Base(cmd.Path)
	l.mu.Unlock()
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			s := string(b)
			if len(s) > 8000 {
				s = "...\n" + s[len(s)-8000:]
			}
			t.Logf("---- log of %s ----\n%s", name, s)
		}
	})
	return cmd
}

// stopProcs stops every process the lab started, by PID, newest first,
// after checking the PID still runs what we started (ip netns exec execs
// its command, so the PID is the daemon's or the helper's).
func (l *Lab) stopProcs() {
	l.mu.Lock()
	procs := append([]*exec.Cmd(nil), l.procs...)
	l.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		cmd := procs[i]
		pid := cmd.Process.Pid
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		c := strings.TrimSpace(string(comm))
		// comm is at most 15 characters of the executable's name.
		if c != "" && c != "ip" && !strings.HasPrefix(l.names[cmd], c) && !isOurChild(cmd, c) {
			l.t.Logf("process %d is %q, not what we started: not killing it", pid, c)
			continue
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
}

// isOurChild reports whether comm is the program ip netns exec ran for
// cmd (its first argument after the namespace).
func isOurChild(cmd *exec.Cmd, comm string) bool {
	for i, a := range cmd.Args {
		if a == "exec" && i+2 < len(cmd.Args) {
			return strings.HasPrefix(filepath.Base(cmd.Args[i+2]), comm)
		}
	}
	return false
}

func (l *Lab) waitFile(path, what string) {
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			l.t.Fatalf("%s did not create %s", what, path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Vtysh runs vtysh commands against the router and returns the output.
// vtysh talks over unix sockets in Dir, so it works from any namespace.
func (l *Lab) Vtysh(cmds ...string) string {
	l.t.Helper()
	return VtyshAt(l.t, l.Dir, cmds...)
}

// VtyshAt runs vtysh against the FRR whose sockets are in dir (for child
// processes that only know the directory).
func VtyshAt(t testing.TB, dir string, cmds ...string) string {
	t.Helper()
	args := []string{"--vty_socket", dir}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := exec.Command("vtysh", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("vtysh %q: %v\n%s", cmds, err, out)
	}
	return string(out)
}

// Configure runs configuration lines under `router bgp 64513`.
func (l *Lab) Configure(lines ...string) {
	l.t.Helper()
	out := l.Vtysh(append([]string{"configure terminal", "router bgp 64513"}, lines...)...)
	if strings.Contains(out, "%") {
		l.t.Fatalf("router refused %q: %s", lines, out)
	}
}

// Router reads the router's state through vtysh in the directory Dir.
type Router struct {
	T   testing.TB
	Dir string
}

// Router returns the state reader of the lab's router.
func (l *Lab) Router() Router { return Router{T: l.t, Dir: l.Dir} }

func (r Router) json(cmd string, v any) {
	r.T.Helper()
	out := VtyshAt(r.T, r.Dir, cmd)
	if err := json.Unmarshal([]byte(out), v); err != nil {
		r.T.Fatalf("%s: %v\n%s", cmd, err, out)
	}
}

// Neighbor is the part of `show bgp neighbors X json` tests read.
type Neighbor struct {
	State                  string `json:"bgpState"`
	ConnectionsEstablished int    `json:"connectionsEstablished"`
	HoldTimeMsecs          int    `json:"bgpTimerHoldTimeMsecs"`
	KeepaliveMsecs         int    `json:"bgpTimerKeepAliveIntervalMsecs"`
}

// Neighbor returns the router's view of the neighbor at addr.
func (r Router) Neighbor(addr string) Neighbor {
	r.T.Helper()
	m := map[string]json.RawMessage{}
	r.json("show bgp neighbors "+addr+" json", &m)
	var n Neighbor
	if raw, ok := m[addr]; ok {
		if err := json.Unmarshal(raw, &n); err != nil {
			r.T.Fatal(err)
		}
	}
	return n
}

// Path is one path of FRR's per-prefix JSON (`show bgp ... PREFIX json`),
// the form that includes communities.
type Path struct {
	ASPath struct {
		String string `json:"string"`
	} `json:"aspath"`
	Origin    string `json:"origin"`
	LocalPref *int   `json:"locPrf"`
	Community *struct {
		String string `json:"string"`
	} `json:"community"`
	LargeCommunity *struct {
		String string `json:"string"`
	} `json:"largeCommunity"`
	Nexthops []struct {
		IP string `json:"ip"`
	} `json:"nexthops"`
	Peer struct {
		PeerID string `json:"peerId"`
	} `json:"peer"`
	Valid bool `json:"valid"`
}

// Communities is the standard communities as FRR prints them ("" for none).
func (p Path) Communities() string {
	if p.Community == nil {
		return ""
	}
	return p.Community.String
}

// Large is the large communities as FRR prints them ("" for none).
func (p Path) Large() string {
	if p.LargeCommunity == nil {
		return ""
	}
	return p.LargeCommunity.String
}

// Paths returns the router's paths of prefix by the address of the peer
// they came from; empty when the router does not know the prefix.
func (r Router) Paths(prefix string) map[string]Path {
	r.T.Helper()
	afi := "ipv4"
	if strings.Contains(prefix, ":") {
		afi = "ipv6"
	}
	var v struct {
		Prefix string `json:"prefix"`
		Paths  []Path `json:"paths"`
	}
	r.json(fmt.Sprintf("show bgp %s unicast %s json", afi, prefix), &v)
	m := map[string]Path{}
	if v.Prefix != prefix {
		return m
	}
	for _, p := range v.Paths {
		m[p.Peer.PeerID] = p
	}
	return m
}

// Prefixes is the set of prefixes in the router's BGP table for afi
// ("ipv4" or "ipv6").
func (r Router) Prefixes(afi string) map[string]bool {
	r.T.Helper()
	var v struct {
		Routes map[string]json.RawMessage `json:"routes"`
	}
	r.json("show bgp "+afi+" unicast json", &v)
	m := map[string]bool{}
	for p := range v.Routes {
		m[p] = true
	}
	return m
}

// Eventually polls cond until it returns "" or timeout passes, then fails
// the test with cond's last answer.
func Eventually(t testing.TB, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := cond()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after %s: %s", what, timeout, why)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Never checks that cond keeps returning "" for the whole duration.
func Never(t testing.TB, d time.Duration, what string, cond func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if why := cond(); why != "" {
			t.Fatalf("%s: %s", what, why)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func chownFRR(dir string) error {
	u, err := user.Lookup("frr")
	if err != nil {
		return err
	}
	g, err := user.LookupGroup("frr")
	if err != nil {
		return err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return err
	}
	return os.Chown(dir, uid, gid)
}
