package native

// Tests against a real FRR router (Debian's bgpd and zebra) in a network
// namespace, with the backend running in a second namespace.
//
// Why a child process: a network namespace belongs to an OS thread, and
// GoBGP dials from goroutines that the Go scheduler moves between threads,
// so switching one locked thread with setns would not hold for GoBGP's
// sockets. The test binary instead re-executes itself under
// `ip netns exec NODE` with lbsNativeHelperEnv set (TestMain turns it into
// a helper serving Apply/Status over stdin/stdout as JSON lines): every
// thread of that process is in the node namespace from its first
// instruction, and the helper is a plain child the test kills by PID.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"

	lbgp "github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/test/lab/frrtest"
)

const lbsNativeHelperEnv = "LBSTACK_NATIVE_TEST_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(lbsNativeHelperEnv) == "1" {
		os.Exit(runHelper(os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// helperRequest and helperReply are the helper's protocol, one JSON
// object per line each way.
type helperRequest struct {
	Op      string             `json:"op"` // "apply", "changes" or "status"
	State   lbgp.DesiredState  `json:"state"`
	Changed []lbgp.RouteChange `json:"changed,omitempty"`
}

type helperReply struct {
	Err    string               `json:"err,omitempty"`
	Status []lbgp.SessionStatus `json:"status,omitempty"`
	// Policies counts the export policies every instance has installed:
	// it stays when a change edits the current one in place.
	Policies int `json:"policies"`
}

func runHelper(in io.Reader, out io.Writer) int {
	log := funcr.New(func(prefix, args string) { fmt.Fprintln(os.Stderr, prefix, args) }, funcr.Options{Verbosity: 0})
	b := New(Options{Log: log})
	defer b.Close()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	enc := json.NewEncoder(out)
	for sc.Scan() {
		var req helperRequest
		var rep helperReply
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			rep.Err = "decode request: " + err.Error()
		} else {
			switch req.Op {
			case "apply":
				if err := b.Apply(context.Background(), req.State); err != nil {
					rep.Err = err.Error()
				}
			case "changes":
				if err := b.ApplyChanges(context.Background(), req.State, req.Changed); err != nil {
					rep.Err = err.Error()
				}
			case "status":
				rep.Status = b.Status()
			default:
				rep.Err = "unknown op " + req.Op
			}
		}
		b.mu.Lock()
		for _, inst := range b.instances {
			rep.Policies += inst.gen
		}
		b.mu.Unlock()
		if err := enc.Encode(rep); err != nil {
			return 1
		}
	}
	return 0
}

// lab is the FRR lab (test/lab/frrtest) plus the backend helper running
// in its node namespace.
type lab struct {
	*frrtest.Lab
	t         *testing.T
	r         frrtest.Router
	helperIn  io.WriteCloser
	helperOut *bufio.Scanner
	helperMu  sync.Mutex
}

const (
	routerV4 = frrtest.RouterV4
	nodeV4   = frrtest.NodeV4
	routerV6 = frrtest.RouterV6
	nodeV6   = frrtest.NodeV6
	routerAS = frrtest.RouterAS
	nodeAS   = frrtest.NodeAS
)

func newLab(t *testing.T) *lab {
	fl := frrtest.Start(t, "")
	l := &lab{Lab: fl, t: t, r: fl.Router()}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", fl.NodeNS, exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), lbsNativeHelperEnv+"=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// Stderr (GoBGP's log) goes to the lab's log file of "helper".
	fl.StartCmd("helper", cmd)
	l.helperIn = in
	l.helperOut = bufio.NewScanner(out)
	l.helperOut.Buffer(make([]byte, 1<<20), 1<<24)
	return l
}

func (l *lab) call(req helperRequest) helperReply {
	l.t.Helper()
	l.helperMu.Lock()
	defer l.helperMu.Unlock()
	b, err := json.Marshal(req)
	if err != nil {
		l.t.Fatal(err)
	}
	if _, err := l.helperIn.Write(append(b, '\n')); err != nil {
		l.t.Fatalf("helper: %v", err)
	}
	if !l.helperOut.Scan() {
		l.t.Fatalf("helper exited: %v", l.helperOut.Err())
	}
	var rep helperReply
	if err := json.Unmarshal(l.helperOut.Bytes(), &rep); err != nil {
		l.t.Fatalf("helper reply %q: %v", l.helperOut.Text(), err)
	}
	return rep
}

func (l *lab) apply(d lbgp.DesiredState) {
	l.t.Helper()
	if rep := l.call(helperRequest{Op: "apply", State: d}); rep.Err != "" {
		l.t.Fatalf("Apply: %s", rep.Err)
	}
}

// applyChanges applies d through ApplyChanges and returns the number of
// export policies installed so far.
func (l *lab) applyChanges(d lbgp.DesiredState, changed []lbgp.RouteChange) int {
	l.t.Helper()
	rep := l.call(helperRequest{Op: "changes", State: d, Changed: changed})
	if rep.Err != "" {
		l.t.Fatalf("ApplyChanges: %s", rep.Err)
	}
	return rep.Policies
}

func (l *lab) status() map[string]lbgp.SessionStatus {
	l.t.Helper()
	m := map[string]lbgp.SessionStatus{}
	for _, s := range l.call(helperRequest{Op: "status"}).Status {
		m[s.Name] = s
	}
	return m
}

func (l *lab) configure(lines ...string)                   { l.Configure(lines...) }
func (l *lab) neighbor(addr string) frrtest.Neighbor       { return l.r.Neighbor(addr) }
func (l *lab) paths(prefix string) map[string]frrtest.Path { return l.r.Paths(prefix) }
func (l *lab) ribPrefixes(afi string) map[string]bool      { return l.r.Prefixes(afi) }

func eventually(t *testing.T, timeout time.Duration, what string, cond func() string) {
	t.Helper()
	frrtest.Eventually(t, timeout, what, cond)
}

func never(t *testing.T, d time.Duration, what string, cond func() string) {
	t.Helper()
	frrtest.Never(t, d, what, cond)
}

func established(l *lab, addr string) func() string {
	return func() string {
		if n := l.neighbor(addr); n.State != "Established" {
			return fmt.Sprintf("neighbor %s is %q", addr, n.State)
		}
		return ""
	}
}

func mustComm(t *testing.T, s string) config.Community {
	c, err := config.ParseCommunity(s)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func dur(d time.Duration) *time.Duration { return &d }

// baseSessions: r4 (IPv4, eBGP) and r6 (IPv6, eBGP, dual-stack) share one
// GoBGP server (same VRF, router ID and AS), so per-peer export policy is
// what separates their routes.
func r4Session() lbgp.Session {
	return lbgp.Session{Name: "r4", MyASN: nodeAS, PeerASN: routerAS, PeerAddr: netip.MustParseAddr(routerV4), Port: 179,
		RouterID: netip.MustParseAddr(nodeV4), HoldTime: dur(9 * time.Second), KeepaliveTime: dur(3 * time.Second), ConnectTime: dur(time.Second)}
}

func r6Session() lbgp.Session {
	return lbgp.Session{Name: "r6", MyASN: nodeAS, PeerASN: routerAS, PeerAddr: netip.MustParseAddr(routerV6), Port: 179,
		RouterID: netip.MustParseAddr(nodeV4), ConnectTime: dur(time.Second), DualStack: true, NextHopIPv4: netip.MustParseAddr(nodeV4)}
}

func route(t *testing.T, prefix string, lp uint32, comms ...string) lbgp.Route {
	r := lbgp.Route{Prefix: netip.MustParsePrefix(prefix), LocalPref: lp}
	for _, c := range comms {
		r.Communities = append(r.Communities, mustComm(t, c))
	}
	return r
}

func TestFRR(t *testing.T) {
	l := newLab(t)
	const wait = 30 * time.Second

	t.Run("established with routes, communities, aggregate, hold time", func(t *testing.T) {
		l.apply(lbgp.DesiredState{
			Sessions: []lbgp.Session{r4Session()},
			Routes: map[string][]lbgp.Route{"r4": {
				route(t, "203.0.113.1/32", 0, "65535:120", "large:65535:300:100"),
				route(t, "203.0.113.0/24", 0),
			}},
		})
		eventually(t, wait, "session r4 established", established(l, nodeV4))
		eventually(t, wait, "routes at the router", func() string {
			got := l.ribPrefixes("ipv4")
			if !got["203.0.113.1/32"] || !got["203.0.113.0/24"] {
				return fmt.Sprintf("router has %v", got)
			}
			return ""
		})
		p := l.paths("203.0.113.1/32")[nodeV4]
		if p.Communities() != "65535:120" || p.Large() != "65535:300:100" {
			t.Errorf("communities %q large %q, want 65535:120 and 65535:300:100", p.Communities(), p.Large())
		}
		if p.Origin != "IGP" || p.ASPath.String != "64512" || len(p.Nexthops) == 0 || p.Nexthops[0].IP != nodeV4 || !p.Valid {
			t.Errorf("path = %+v; want origin IGP, AS path 64512, next hop %s, valid", p, nodeV4)
		}
		agg := l.paths("203.0.113.0/24")[nodeV4]
		if agg.Communities() != "" || agg.Large() != "" || len(agg.Nexthops) == 0 || agg.Nexthops[0].IP != nodeV4 {
			t.Errorf("aggregate path = %+v; want no communities, next hop %s", agg, nodeV4)
		}
		n := l.neighbor(nodeV4)
		if n.HoldTimeMsecs != 9000 || n.KeepaliveMsecs != 3000 {
			t.Errorf("negotiated hold/keepalive %d/%d ms, want 9000/3000", n.HoldTimeMsecs, n.KeepaliveMsecs)
		}
		st := l.status()["r4"]
		if st.State != lbgp.StateEstablished || st.Since.IsZero() || st.Advertised != 2 {
			t.Errorf("Status()[r4] = %+v, want Established with 2 routes", st)
		}
	})

	t.Run("route changes converge without resetting the session", func(t *testing.T) {
		before := l.neighbor(nodeV4).ConnectionsEstablished
		l.apply(lbgp.DesiredState{
			Sessions: []lbgp.Session{r4Session()},
			Routes: map[string][]lbgp.Route{"r4": {
				route(t, "203.0.113.2/32", 0),
				route(t, "203.0.113.0/24", 0, "65000:24"),
			}},
		})
		eventually(t, wait, "new routes", func() string {
			got := l.ribPrefixes("ipv4")
			if got["203.0.113.1/32"] || !got["203.0.113.2/32"] {
				return fmt.Sprintf("router has %v; want .1 withdrawn and .2 announced", got)
			}
			if c := l.paths("203.0.113.0/24")[nodeV4].Communities(); c != "65000:24" {
				return fmt.Sprintf("aggregate communities %q, want 65000:24", c)
			}
			return ""
		})
		if after := l.neighbor(nodeV4).ConnectionsEstablished; after != before {
			t.Errorf("connectionsEstablished %d -> %d: the route change reset the session", before, after)
		}
	})

	t.Run("per-peer routes and attributes, IPv6 over IPv6, withdraw from one peer only", func(t *testing.T) {
		r4before := l.neighbor(nodeV4).ConnectionsEstablished
		l.apply(lbgp.DesiredState{
			Sessions: []lbgp.Session{r4Session(), r6Session()},
			Routes: map[string][]lbgp.Route{
				"r4": {route(t, "203.0.113.8/32", 0, "65000:4")},
				"r6": {route(t, "203.0.113.8/32", 0, "65000:6"), route(t, "203.0.113.9/32", 0), route(t, "2001:db8:1::/64", 0, "65000:66")},
			},
		})
		eventually(t, wait, "session r6 established", established(l, nodeV6))
		eventually(t, wait, "per-peer routes", func() string {
			p8 := l.paths("203.0.113.8/32")
			if p8[nodeV4].Communities() != "65000:4" || p8[nodeV6].Communities() != "65000:6" {
				return fmt.Sprintf("203.0.113.8/32 paths %+v; want 65000:4 from %s and 65000:6 from %s", p8, nodeV4, nodeV6)
			}
			p9 := l.paths("203.0.113.9/32")
			if _, ok := p9[nodeV4]; ok || len(p9) != 1 {
				return fmt.Sprintf("203.0.113.9/32 paths %+v; want only from %s", p9, nodeV6)
			}
			if nh := p9[nodeV6].Nexthops; len(nh) == 0 || nh[0].IP != nodeV4 {
				return fmt.Sprintf("203.0.113.9/32 next hops %+v over the IPv6 session, want %s", nh, nodeV4)
			}
			p6 := l.paths("2001:db8:1::/64")
			if len(p6) != 1 || p6[nodeV6].Communities() != "65000:66" {
				return fmt.Sprintf("2001:db8:1::/64 paths %+v; want one from %s with 65000:66", p6, nodeV6)
			}
			if nh := p6[nodeV6].Nexthops; len(nh) == 0 || nh[0].IP != nodeV6 {
				return fmt.Sprintf("2001:db8:1::/64 next hops %+v, want %s", nh, nodeV6)
			}
			if got := l.ribPrefixes("ipv4"); got["203.0.113.2/32"] || got["203.0.113.0/24"] {
				return fmt.Sprintf("router still has %v", got)
			}
			return ""
		})
		// Take 203.0.113.8/32 away from r4 only.
		l.apply(lbgp.DesiredState{
			Sessions: []lbgp.Session{r4Session(), r6Session()},
			Routes: map[string][]lbgp.Route{
				"r6": {route(t, "203.0.113.8/32", 0, "65000:6"), route(t, "203.0.113.9/32", 0), route(t, "2001:db8:1::/64", 0, "65000:66")},
			},
		})
		eventually(t, wait, "203.0.113.8/32 only from r6", func() string {
			p8 := l.paths("203.0.113.8/32")
			if _, ok := p8[nodeV4]; ok || p8[nodeV6].Communities() != "65000:6" {
				return fmt.Sprintf("paths %+v", p8)
			}
			return ""
		})
		if after := l.neighbor(nodeV4).ConnectionsEstablished; after != r4before {
			t.Errorf("r4 connectionsEstablished %d -> %d: adding r6 or changing routes reset r4", r4before, after)
		}
	})

	t.Run("localPref over iBGP; changing one session recreates only that one", func(t *testing.T) {
		r4before := l.neighbor(nodeV4).ConnectionsEstablished
		l.configure("neighbor 2001:db8:18::1 remote-as internal")
		ibgp := r6Session()
		ibgp.MyASN = routerAS
		l.apply(lbgp.DesiredState{
			Sessions: []lbgp.Session{r4Session(), ibgp},
			Routes: map[string][]lbgp.Route{
				"r4": {route(t, "203.0.113.10/32", 150)},
				"r6": {route(t, "2001:db8:1::5/128", 150, "65000:7")},
			},
		})
		eventually(t, wait, "iBGP route with local-pref 150", func() string {
			p := l.paths("2001:db8:1::5/128")[nodeV6]
			if p.LocalPref == nil || *p.LocalPref != 150 || p.Communities() != "65000:7" {
				lp := -1
				if p.LocalPref != nil {
					lp = *p.LocalPref
				}
				return fmt.Sprintf("path %+v (locPrf %d)", p, lp)
			}
			// FRR renders an empty AS path as "Local".
			if p.ASPath.String != "Local" {
				return fmt.Sprintf("iBGP AS path %q, want empty (FRR: Local)", p.ASPath.String)
			}
			return ""
		})
		eventually(t, wait, "eBGP route present", func() string {
			p, ok := l.paths("203.0.113.10/32")[nodeV4]
			if !ok {
				return "203.0.113.10/32 missing"
			}
			// LOCAL_PREF is never sent over eBGP (RFC 4271 5.1.5).
			if p.LocalPref != nil && *p.LocalPref == 150 {
				return "eBGP path carries local-pref 150"
			}
			return ""
		})
		if after := l.neighbor(nodeV4).ConnectionsEstablished; after != r4before {
			t.Errorf("r4 connectionsEstablished %d -> %d: recreating r6 reset r4", r4before, after)
		}
		// Back to eBGP on the router for later tests; drop r6.
		l.apply(lbgp.DesiredState{Sessions: []lbgp.Session{r4Session()}})
		l.configure("neighbor 2001:db8:18::1 remote-as external")
		eventually(t, wait, "r6 down and its routes gone", func() string {
			if n := l.neighbor(nodeV6); n.State == "Established" {
				return "r6 still established"
			}
			if got := l.ribPrefixes("ipv6"); len(got) != 0 {
				return fmt.Sprintf("router still has %v", got)
			}
			return ""
		})
	})

	t.Run("localASN, sourceAddress and graceful restart on the IPv6 session", func(t *testing.T) {
		s := r6Session()
		s.LocalASN = 65100
		s.SourceAddr = netip.MustParseAddr(nodeV6)
		s.GracefulRestart = true
		l.apply(lbgp.DesiredState{
			Sessions: []lbgp.Session{s},
			Routes:   map[string][]lbgp.Route{"r6": {route(t, "2001:db8:1::7/128", 0)}},
		})
		eventually(t, wait, "route with the local AS in its path", func() string {
			p, ok := l.paths("2001:db8:1::7/128")[nodeV6]
			if !ok {
				return fmt.Sprintf("no path (neighbor %+v)", l.neighbor(nodeV6))
			}
			if p.ASPath.String != "65100" {
				return fmt.Sprintf("AS path %q, want 65100 (localASN)", p.ASPath.String)
			}
			return ""
		})
		var raw map[string]struct {
			Caps struct {
				GracefulRestart string `json:"gracefulRestart"`
			} `json:"neighborCapabilities"`
		}
		if err := json.Unmarshal([]byte(l.Vtysh("show bgp neighbors "+nodeV6+" json")), &raw); err != nil {
			t.Fatal(err)
		}
		if gr := raw[nodeV6].Caps.GracefulRestart; gr != "advertisedAndReceived" {
			t.Errorf("graceful restart capability %q, want advertisedAndReceived", gr)
		}
		l.apply(lbgp.DesiredState{Sessions: []lbgp.Session{r4Session()}})
		eventually(t, wait, "r6 down", func() string {
			if l.neighbor(nodeV6).State == "Established" {
				return "still established"
			}
			return ""
		})
	})

	t.Run("TCP MD5: wrong password never establishes, the right one does", func(t *testing.T) {
		l.apply(lbgp.DesiredState{}) // close r4
		eventually(t, wait, "r4 down", func() string {
			if l.neighbor(nodeV4).State == "Established" {
				return "still established"
			}
			return ""
		})
		l.configure("neighbor 198.18.0.1 password s3cret-pw")
		t.Cleanup(func() { l.configure("no neighbor 198.18.0.1 password") })
		wrong := r4Session()
		wrong.Password = "not-the-password"
		l.apply(lbgp.DesiredState{Sessions: []lbgp.Session{wrong}, Routes: map[string][]lbgp.Route{"r4": {route(t, "203.0.113.11/32", 0)}}})
		// Connect retry is 1 s: several attempts in this window.
		never(t, 6*time.Second, "wrong password", func() string {
			if n := l.neighbor(nodeV4); n.State == "Established" {
				return "established with a wrong password"
			}
			return ""
		})
		right := r4Session()
		right.Password = "s3cret-pw"
		l.apply(lbgp.DesiredState{Sessions: []lbgp.Session{right}, Routes: map[string][]lbgp.Route{"r4": {route(t, "203.0.113.11/32", 0)}}})
		eventually(t, wait, "established with the password", established(l, nodeV4))
		eventually(t, wait, "route over the MD5 session", func() string {
			if _, ok := l.paths("203.0.113.11/32")[nodeV4]; !ok {
				return "203.0.113.11/32 missing"
			}
			return ""
		})
		l.apply(lbgp.DesiredState{})
	})

	t.Run("ebgpMultiHop: GTSM router refuses TTL 1, accepts multihop (TTL 255)", func(t *testing.T) {
		eventually(t, wait, "r4 down", func() string {
			if l.neighbor(nodeV4).State == "Established" {
				return "still established"
			}
			return ""
		})
		// ttl-security hops 1: the router accepts only packets with TTL
		// >= 254. GoBGP sends eBGP with TTL 1 unless ebgpMultiHop is set,
		// when it sends TTL 255.
		l.configure("neighbor 198.18.0.1 ttl-security hops 1")
		t.Cleanup(func() { l.configure("no neighbor 198.18.0.1 ttl-security hops 1") })
		l.apply(lbgp.DesiredState{Sessions: []lbgp.Session{r4Session()}})
		never(t, 6*time.Second, "single hop eBGP against GTSM", func() string {
			if l.neighbor(nodeV4).State == "Established" {
				return "established with TTL 1"
			}
			return ""
		})
		mh := r4Session()
		mh.EBGPMultiHop = true
		l.apply(lbgp.DesiredState{Sessions: []lbgp.Session{mh}})
		eventually(t, wait, "multihop established", established(l, nodeV4))
		l.apply(lbgp.DesiredState{})
	})

	t.Run("vrf: the session binds to an interface whose routes live in their own table", func(t *testing.T) {
		// This kernel has no VRF devices. What a VRF does for a bound
		// socket is rebuilt by hand: a second link (vrf0 on the node,
		// vrfr on the router) whose connected route lives in table 177,
		// reached by the rule "oif vrf0 lookup 177" (a VRF device's l3mdev
		// rule), while the main table says the peer is unreachable. Only
		// a socket bound to vrf0 can reach the peer.
		const (
			nodeVRF   = "198.18.77.1"
			routerVRF = "198.18.77.254"
		)
		ip := func(args ...string) {
			t.Helper()
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %v: %v: %s", args, err, out)
			}
		}
		ip("-n", l.NodeNS, "link", "add", "vrf0", "type", "veth", "peer", "name", "vrfr", "netns", l.RouterNS)
		ip("-n", l.NodeNS, "addr", "add", nodeVRF+"/24", "dev", "vrf0", "noprefixroute")
		ip("-n", l.NodeNS, "link", "set", "vrf0", "up")
		ip("-n", l.NodeNS, "route", "add", "198.18.77.0/24", "dev", "vrf0", "src", nodeVRF, "table", "177")
		ip("-n", l.NodeNS, "rule", "add", "oif", "vrf0", "lookup", "177")
		ip("-n", l.NodeNS, "route", "add", "unreachable", "198.18.77.0/24")
		ip("-n", l.RouterNS, "addr", "add", routerVRF+"/24", "dev", "vrfr")
		ip("-n", l.RouterNS, "link", "set", "vrfr", "up")
		t.Cleanup(func() { _ = exec.Command("ip", "-n", l.NodeNS, "link", "del", "vrf0").Run() })
		l.configure("neighbor "+nodeVRF+" remote-as 64512", "neighbor "+nodeVRF+" timers connect 1")
		t.Cleanup(func() { l.configure("no neighbor " + nodeVRF) })

		red := lbgp.Session{Name: "red", MyASN: nodeAS, PeerASN: routerAS, PeerAddr: netip.MustParseAddr(routerVRF), Port: 179,
			RouterID: netip.MustParseAddr(nodeV4), ConnectTime: dur(time.Second)}
		routes := map[string][]lbgp.Route{"red": {route(t, "203.0.113.77/32", 0)}}
		// Unbound, the socket follows the main table: unreachable.
		l.apply(lbgp.DesiredState{Sessions: []lbgp.Session{red}, Routes: routes})
		never(t, 5*time.Second, "unbound session through the separate table", func() string {
			if l.neighbor(nodeVRF).State == "Established" {
				return "established without binding"
			}
			return ""
		})
		red.VRF = "vrf0"
		l.apply(lbgp.DesiredState{Sessions: []lbgp.Session{red}, Routes: routes})
		eventually(t, wait, "session bound to vrf0 established", established(l, nodeVRF))
		eventually(t, wait, "route over the vrf0 session", func() string {
			if p, ok := l.paths("203.0.113.77/32")[nodeVRF]; !ok || len(p.Nexthops) == 0 || p.Nexthops[0].IP != nodeVRF {
				return fmt.Sprintf("paths %+v", l.paths("203.0.113.77/32"))
			}
			return ""
		})
		if st := l.status()["red"]; st.VRF != "vrf0" || st.State != lbgp.StateEstablished {
			t.Errorf("status %+v, want vrf0 Established", st)
		}
		l.apply(lbgp.DesiredState{})
	})

	t.Run("changes applied alone: the router's table is the state's, the policy edited in place", func(t *testing.T) {
		testApplyChanges(t, l)
	})

	t.Run("closing the backend withdraws everything", func(t *testing.T) {
		l.apply(lbgp.DesiredState{Sessions: []lbgp.Session{r4Session()}, Routes: map[string][]lbgp.Route{"r4": {route(t, "203.0.113.12/32", 0)}}})
		eventually(t, wait, "route up", func() string {
			if !l.ribPrefixes("ipv4")["203.0.113.12/32"] {
				return "missing"
			}
			return ""
		})
		l.apply(lbgp.DesiredState{})
		eventually(t, wait, "all withdrawn", func() string {
			if got := l.ribPrefixes("ipv4"); len(got) != 0 {
				return fmt.Sprintf("router still has %v", got)
			}
			if l.neighbor(nodeV4).State == "Established" {
				return "session still established"
			}
			return ""
		})
	})
}

// testApplyChanges starts from a full Apply of two sessions, then changes
// a few routes at a time through ApplyChanges, as the speaker does when
// one Service changes: announcements and withdrawals under attribute
// sets already in use, which edit the export policy in place, and
// attribute changes and new attribute sets, which cannot. After each step
// the router holds exactly the state's routes with their communities, per
// session.
func testApplyChanges(t *testing.T, l *lab) {
	const wait = 30 * time.Second
	rng := rand.New(rand.NewPCG(21, 1))
	sessions := []lbgp.Session{r4Session(), r6Session()}
	peerOf := map[string]string{"r4": nodeV4, "r6": nodeV6}
	// The communities each session's routes may carry: the first two
	// sets are in use from the start; the third is new.
	sets := map[string][]string{"r4": {"", "65000:4", "65000:44"}, "r6": {"65000:6", "", "65000:66"}}
	routes := map[string][]lbgp.Route{}
	put := func(name, prefix, comm string, present bool) {
		var r lbgp.Route
		if present {
			r = route(t, prefix, 0)
			if comm != "" {
				r = route(t, prefix, 0, comm)
			}
		}
		rs := slices.Clone(routes[name])
		pfx := netip.MustParsePrefix(prefix)
		i, found := slices.BinarySearchFunc(rs, pfx, func(x lbgp.Route, p netip.Prefix) int { return lbgp.ComparePrefixes(x.Prefix, p) })
		switch {
		case found && present:
			rs[i] = r
		case found:
			rs = slices.Delete(rs, i, i+1)
		case present:
			rs = slices.Insert(rs, i, r)
		}
		routes[name] = rs
	}
	prefix := func(i int) string { return fmt.Sprintf("203.0.113.%d/32", 100+i) }
	for i := range 10 {
		put("r4", prefix(i), sets["r4"][i%2], true)
		if i < 6 {
			put("r6", prefix(i), sets["r6"][0], true)
		}
	}
	put("r6", "2001:db8:2::/64", "", true)
	state := func() lbgp.DesiredState {
		return lbgp.DesiredState{Sessions: sessions, Routes: maps.Clone(routes)}
	}
	l.apply(state())
	eventually(t, wait, "sessions established", func() string {
		return established(l, nodeV4)() + established(l, nodeV6)()
	})
	// check compares the router's paths of the prefixes with the state.
	check := func(what string, prefixes []string) {
		t.Helper()
		eventually(t, wait, what, func() string {
			for _, pfx := range prefixes {
				got := l.paths(pfx)
				want := map[string]string{}
				for name, rs := range routes {
					if r, ok := findRoute(rs, netip.MustParsePrefix(pfx)); ok {
						want[peerOf[name]] = fmt.Sprint(r.Communities)
					}
				}
				have := map[string]string{}
				for peer, p := range got {
					var cs []config.Community
					for _, c := range strings.Fields(p.Communities()) {
						cs = append(cs, mustComm(t, c))
					}
					have[peer] = fmt.Sprint(cs)
				}
				if !reflect.DeepEqual(have, want) {
					return fmt.Sprintf("%s: router has %v (peer: communities), want %v", pfx, have, want)
				}
			}
			return ""
		})
	}
	var all []string
	for i := range 20 {
		all = append(all, prefix(i))
	}
	check("the first full state", all)
	policies := l.applyChanges(state(), nil)
	inPlace, replaced := 0, 0
	for step := range 40 {
		var changed []lbgp.RouteChange
		var touched []string
		// Kinds: 0-5 announce or withdraw under a set in use (in place
		// unless a statement would lose its last prefix), 6 give a kept
		// prefix other communities, 7 a new set of communities.
		kind := rng.IntN(8)
		for range 1 + rng.IntN(3) {
			name := []string{"r4", "r6"}[rng.IntN(2)]
			pfx := prefix(rng.IntN(20))
			_, had := findRoute(routes[name], netip.MustParsePrefix(pfx))
			switch {
			case kind < 6:
				put(name, pfx, sets[name][rng.IntN(2)], !had)
			case kind == 6:
				put(name, pfx, sets[name][rng.IntN(2)], true)
			default:
				put(name, pfx, sets[name][2], true)
			}
			changed = append(changed, lbgp.RouteChange{Session: name, Prefix: netip.MustParsePrefix(pfx)})
			touched = append(touched, pfx)
		}
		got := l.applyChanges(state(), changed)
		check(fmt.Sprintf("step %d (kind %d, changes %v)", step, kind, changed), touched)
		if got == policies {
			inPlace++
		} else {
			replaced++
		}
		if kind == 7 && got == policies {
			t.Errorf("step %d: a new set of communities, edited in place", step)
		}
		policies = got
		if kind == 7 {
			// Back to the sets in use, so the next steps can edit in place.
			routes = map[string][]lbgp.Route{}
			for i := range 10 {
				put("r4", prefix(i), sets["r4"][i%2], true)
				if i < 6 {
					put("r6", prefix(i), sets["r6"][0], true)
				}
			}
			put("r6", "2001:db8:2::/64", "", true)
			l.apply(state())
			check(fmt.Sprintf("step %d: back to the first state", step), all)
			policies = l.applyChanges(state(), nil)
		}
	}
	check("the whole table at the end", all)
	t.Logf("%d steps edited the export policy in place, %d replaced it", inPlace, replaced)
	if inPlace < 10 {
		t.Errorf("only %d of 40 steps edited the export policy in place", inPlace)
	}
	if got := l.status()["r6"]; got.State != lbgp.StateEstablished {
		t.Errorf("r6 is %s after the changes", got.State)
	}
	l.apply(lbgp.DesiredState{})
}
