package frr

// The Backend driving a real FRR: the lab's router (test/lab/frrtest, plus
// a bfdd started here) peers with a "node" FRR (zebra, bgpd and bfdd
// started in the node namespace with their sockets in a directory of
// their own); the Backend runs in the test process and reloads the node
// FRR through frr-reload.py and vtysh, which only need the sockets.
// Needs root and Debian's frr and frr-pythontools; skipped otherwise.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/test/lab/frrtest"
)

// nodeFRR starts zebra, bgpd and bfdd in the lab's node namespace and
// returns the directory of their sockets (owned by frr, with an empty
// vtysh.conf).
func nodeFRR(t *testing.T, lab *frrtest.Lab) string {
	t.Helper()
	dir := filepath.Join(lab.Dir, "node")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := chownToFRR(dir); err != nil {
		t.Skipf("needs the frr user: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vtysh.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ns := "lbs-" + lab.ID + "-node"
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Join("/run/frr", ns)) })
	for _, d := range []string{"zebra", "bgpd", "bfdd"} {
		args := []string{"-N", ns, "--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api"),
			"-i", filepath.Join(dir, d+".pid"), "-f", "/dev/null", "-P", "0",
			"-u", "frr", "-g", "frr", "--log", "stdout"}
		if d == "bfdd" {
			args = append(args, "--bfdctl", filepath.Join(dir, "bfdd.sock"))
		}
		lab.StartInNode("node-"+d, nil, "/usr/lib/frr/"+d, args...)
		waitFor(t, filepath.Join(dir, d+".vty"))
	}
	return dir
}

// routerBFDD adds bfdd to the lab's router (frrtest runs zebra and bgpd
// only).
func routerBFDD(t *testing.T, lab *frrtest.Lab) {
	t.Helper()
	lab.Start("router-bfdd", "ip", "netns", "exec", lab.RouterNS, "/usr/lib/frr/bfdd",
		"-N", "lbs-"+lab.ID, "--vty_socket", lab.Dir, "-z", filepath.Join(lab.Dir, "zserv.api"),
		"-i", filepath.Join(lab.Dir, "bfdd.pid"), "--bfdctl", filepath.Join(lab.Dir, "bfdd.sock"),
		"-f", "/dev/null", "-P", "0", "-u", "frr", "-g", "frr", "--log", "stdout")
	waitFor(t, filepath.Join(lab.Dir, "bfdd.vty"))
}

// nsForwarding reads the node namespace's forwarding switches, which the
// rendered configuration must state as they are.
func nsForwarding(t *testing.T, ns string) (v4, v6 *bool) {
	t.Helper()
	read := func(path string) *bool {
		out, err := exec.Command("ip", "netns", "exec", ns, "cat", path).Output()
		if err != nil {
			t.Fatalf("read %s in %s: %v", path, ns, err)
		}
		on := strings.TrimSpace(string(out)) != "0"
		return &on
	}
	return read(procIPv4Forwarding), read(procIPv6Forwarding)
}

func needReloadScript(t *testing.T) {
	t.Helper()
	for _, f := range []string{DefaultPython, DefaultReloadScript} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs %s (Debian's python3 and frr-pythontools): %v", f, err)
		}
	}
}

func TestBackendWithFRR(t *testing.T) {
	if testing.Short() {
		t.Skip("starts FRR daemons; skipped with -short")
	}
	needReloadScript(t)
	lab := frrtest.Start(t, "")
	routerBFDD(t, lab)
	dir := nodeFRR(t, lab)
	r := lab.Router()

	fwd4, fwd6 := nsForwarding(t, lab.NodeNS)
	opts := Options{Hostname: "lbs-node", IPForwarding: fwd4, IPv6Forwarding: fwd6}
	// failReloadOf is the test seam for a reload that fails after it
	// changed FRR: --reload of a text containing it runs for real, then
	// reports a failure.
	var failReloadOf atomic.Value
	failReloadOf.Store("")
	execSeam := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		out, err := runCommand(ctx, name, args...)
		if marker := failReloadOf.Load().(string); marker != "" && err == nil && slices.Contains(args, "--reload") {
			if b, rerr := os.ReadFile(args[len(args)-1]); rerr == nil && strings.Contains(string(b), marker) {
				return append(out, "2026-01-01 00:00:00,000  ERROR: injected failure\n"...), errors.New("exit status 1")
			}
		}
		return out, err
	}
	b, err := NewBackend(BackendOptions{
		Render: opts,
		Reloader: ReloaderOptions{
			Path:      filepath.Join(dir, "frr.conf"),
			VtySocket: dir,
			Log:       testr.NewWithOptions(t, testr.Options{Verbosity: 1}),
			Exec:      execSeam,
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	rl := b.Reloader()
	ctx := context.Background()
	flush := func(t *testing.T) {
		t.Helper()
		fctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := rl.Flush(fctx); err != nil {
			t.Fatalf("reload: %v", err)
		}
	}
	apply := func(t *testing.T, d bgp.DesiredState) {
		t.Helper()
		if err := b.Apply(ctx, d); err != nil {
			t.Fatalf("Apply: %v", err)
		}
	}
	const wait = 30 * time.Second

	s4 := bgp.Session{Name: "router-v4", MyASN: frrtest.NodeAS, PeerASN: frrtest.RouterAS,
		PeerAddr: addr(frrtest.RouterV4), Port: 179, RouterID: addr(frrtest.NodeV4), ConnectTime: dur(time.Second)}
	base := []bgp.Route{
		{Prefix: pfx("203.0.113.1/32"), Communities: []config.Community{std(65535, 120), large(65535, 300, 100)}},
		{Prefix: pfx("203.0.113.0/24")},
	}
	state := func(extra ...string) bgp.DesiredState {
		routes := slices.Clone(base)
		for _, p := range extra {
			routes = append(routes, bgp.Route{Prefix: pfx(p), Communities: []config.Community{std(65000, 7)}})
		}
		return bgp.DesiredState{Sessions: []bgp.Session{s4}, Routes: map[string][]bgp.Route{s4.Name: routes}}
	}
	has := func(prefixes ...string) func() string {
		return func() string {
			got := r.Prefixes("ipv4")
			for _, p := range prefixes {
				if !got[p] {
					return fmt.Sprintf("router lacks %s (has %v)", p, keys(got))
				}
			}
			return ""
		}
	}
	established := func() string {
		if st := r.Neighbor(frrtest.NodeV4).State; st != "Established" {
			return fmt.Sprintf("router's neighbor %s is %q", frrtest.NodeV4, st)
		}
		return ""
	}

	t.Run("established, routes with communities, Status", func(t *testing.T) {
		apply(t, state())
		flush(t)
		frrtest.Eventually(t, 60*time.Second, "session established", established)
		frrtest.Eventually(t, wait, "routes at the router", has("203.0.113.1/32", "203.0.113.0/24"))
		p := r.Paths("203.0.113.1/32")[frrtest.NodeV4]
		if p.Communities() != "65535:120" || p.Large() != "65535:300:100" {
			t.Errorf("communities %q large %q, want 65535:120 and 65535:300:100", p.Communities(), p.Large())
		}
		if c := r.Paths("203.0.113.0/24")[frrtest.NodeV4].Communities(); c != "" {
			t.Errorf("203.0.113.0/24 communities %q, want none", c)
		}
		frrtest.Eventually(t, wait, "Status", func() string {
			st := b.Status()
			if len(st) != 1 || st[0].Name != s4.Name || st[0].State != bgp.StateEstablished || st[0].Advertised != 2 ||
				st[0].Since.IsZero() || st[0].UpdatesSent == 0 || st[0].PeerAddr != s4.PeerAddr {
				return fmt.Sprintf("Status() = %+v; want %s Established, 2 advertised, updates sent", st, s4.Name)
			}
			return ""
		})
	})

	// measure applies n route changes through be, each adding one new
	// prefix and withdrawing the previous one, checks the router sees
	// each and the session is never reset, and logs the latency.
	measure := func(t *testing.T, be *Backend, label string, first int) {
		t.Helper()
		before := r.Neighbor(frrtest.NodeV4).ConnectionsEstablished
		reloads := be.Reloader().Stats().Reloads
		var lat []time.Duration
		const n = 10
		for i := range n {
			p := fmt.Sprintf("203.0.113.%d/32", first+i)
			start := time.Now()
			if err := be.Apply(ctx, state(p)); err != nil {
				t.Fatalf("Apply: %v", err)
			}
			for time.Since(start) < wait && has(p)() != "" {
				time.Sleep(10 * time.Millisecond)
			}
			lat = append(lat, time.Since(start))
			if why := has(p)(); why != "" {
				t.Fatalf("step %d: %s", i, why)
			}
			if c := r.Paths(p)[frrtest.NodeV4].Communities(); c != "65000:7" {
				t.Errorf("%s communities %q, want 65000:7", p, c)
			}
		}
		frrtest.Eventually(t, wait, "only the last new route left", func() string {
			got := r.Prefixes("ipv4")
			for i := range n - 1 {
				if p := fmt.Sprintf("203.0.113.%d/32", first+i); got[p] {
					return fmt.Sprintf("%s not withdrawn", p)
				}
			}
			return ""
		})
		if after := r.Neighbor(frrtest.NodeV4).ConnectionsEstablished; after != before {
			t.Errorf("connectionsEstablished %d -> %d: route changes reset the session", before, after)
		}
		fctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := be.Reloader().Flush(fctx); err != nil {
			t.Fatal(err)
		}
		slices.Sort(lat)
		t.Logf("%s: Apply -> route on the router over %d changes: median %s, min %s, max %s (debounce %s; reloads %d)",
			label, n, lat[n/2], lat[0], lat[n-1], be.Reloader().opts.Debounce, be.Reloader().Stats().Reloads-reloads)
	}

	t.Run("route changes converge without a session reset; Apply-to-router latency", func(t *testing.T) {
		fast := b.Reloader().Stats().Fast
		measure(t, b, "route-only changes (vtysh fast path)", 100)
		// Each change adds one prefix to the group and withdraws the
		// previous one: route-only, so none needs frr-reload.py.
		if n := b.Reloader().Stats().Fast - fast; n < 9 {
			t.Errorf("%d of 10 route-only changes took the fast path", n)
		}
	})

	t.Run("the same with FastCheck", func(t *testing.T) {
		// A second Backend on the same FRR, with its own configuration
		// directory; the first one takes over again in the next subtest.
		fdir := filepath.Join(dir, "fast")
		if err := os.Mkdir(fdir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(fdir, "vtysh.conf"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
		fb, err := NewBackend(BackendOptions{Render: opts, KeepSessionsOnClose: true, Reloader: ReloaderOptions{
			Path: filepath.Join(fdir, "frr.conf"), VtySocket: dir, FastCheck: true,
			Log: testr.NewWithOptions(t, testr.Options{Verbosity: 1}),
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer fb.Close()
		measure(t, fb, "FastCheck (vtysh -m -f), then --reload", 120)
	})

	t.Run("a burst of 20 Applies costs one reload; an identical Apply none", func(t *testing.T) {
		flush(t)
		before := rl.Stats()
		var extra []string
		start := time.Now()
		for i := range 20 {
			extra = append(extra, fmt.Sprintf("203.0.113.%d/32", 150+i))
			apply(t, state(extra...))
		}
		burst := time.Since(start)
		flush(t)
		after := rl.Stats()
		if burst >= rl.opts.Debounce {
			t.Logf("the burst took %s, longer than the debounce window %s: not checking the reload count", burst, rl.opts.Debounce)
		} else if got := after.Reloads - before.Reloads; got != 1 {
			t.Errorf("20 Applies in %s caused %d reloads, want 1", burst, got)
		}
		frrtest.Eventually(t, wait, "all 20 routes", has(extra...))

		apply(t, state(extra...))
		time.Sleep(3 * rl.opts.Debounce)
		flush(t)
		if st := rl.Stats(); st.Reloads != after.Reloads || st.Failures != after.Failures {
			t.Errorf("identical Apply: stats %+v -> %+v, want no reload", after, st)
		}
		t.Logf("20 Applies in %s; stats %+v", burst, rl.Stats())
	})

	t.Run("a broken configuration is reported and retried; the last good one keeps announcing", func(t *testing.T) {
		flush(t)
		good, _, _ := rl.Applied()
		goodState := b.appliedState()
		connBefore := r.Neighbor(frrtest.NodeV4).ConnectionsEstablished
		failBefore := rl.Stats().Failures
		broken := opts
		broken.ExtraConfig = "lbstack-not-a-command 42"
		b.SetOptions(broken)
		d := state("203.0.113.200/32")
		_ = b.Apply(ctx, d) // the error of this text comes with the next call
		fctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := rl.Flush(fctx)
		cancel()
		var rerr *ReloadError
		if !errors.As(err, &rerr) || rerr.Stage != "test" {
			t.Fatalf("Flush = %v, want a *ReloadError of stage test", err)
		}
		t.Logf("reload error: %v", err)
		if !strings.Contains(rerr.Output, "lbstack-not-a-command") {
			t.Errorf("error output %q does not name the bad line", rerr.Output)
		}
		if err := b.Apply(ctx, d); err == nil {
			t.Error("Apply after a failed reload returned nil, want the reload error")
		}
		frrtest.Eventually(t, wait, "retries", func() string {
			if n := rl.Stats().Failures - failBefore; n < 3 {
				return fmt.Sprintf("%d failed attempts", n)
			}
			return ""
		})
		if why := has("203.0.113.1/32", "203.0.113.0/24", "203.0.113.169/32")(); why != "" {
			t.Errorf("last good routes: %s", why)
		}
		if r.Prefixes("ipv4")["203.0.113.200/32"] {
			t.Error("the route of the broken configuration reached the router")
		}
		if got, _, _ := rl.Applied(); got != good {
			t.Error("Applied() changed after failures")
		}
		if onDisk, err := os.ReadFile(rl.opts.Path); err != nil || string(onDisk) != good {
			t.Errorf("%s does not hold the last good configuration (err %v)", rl.opts.Path, err)
		}
		if st := b.appliedState(); len(st.Sessions) != len(goodState.Sessions) || len(st.Routes[s4.Name]) != len(goodState.Routes[s4.Name]) {
			t.Errorf("applied state changed after failures")
		}

		b.SetOptions(opts)
		apply := time.Now()
		if err := b.Apply(ctx, d); err == nil {
			t.Log("Apply of the fixed state returned nil before the reload")
		}
		flush(t)
		if err := b.Apply(ctx, d); err != nil {
			t.Errorf("Apply after recovery: %v", err)
		}
		frrtest.Eventually(t, wait, "recovered", has("203.0.113.200/32"))
		t.Logf("recovered %s after the fix", time.Since(apply))
		if after := r.Neighbor(frrtest.NodeV4).ConnectionsEstablished; after != connBefore {
			t.Errorf("connectionsEstablished %d -> %d across the failed reloads", connBefore, after)
		}
	})

	t.Run("a reload failing after it changed FRR is rolled back, retried, and recovers on its own", func(t *testing.T) {
		flush(t)
		good, _, _ := rl.Applied()
		connBefore := r.Neighbor(frrtest.NodeV4).ConnectionsEstablished
		failBefore := rl.Stats().Failures
		failReloadOf.Store("203.0.113.201/32")
		// A route-only change takes the vtysh fast path; a changed
		// comment line sends this one through frr-reload.py, where the
		// seam fails it.
		full := opts
		full.ExtraConfig = "! through frr-reload.py\n"
		b.SetOptions(full)
		defer b.SetOptions(opts)
		_ = b.Apply(ctx, state("203.0.113.201/32"))
		fctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := rl.Flush(fctx)
		cancel()
		var rerr *ReloadError
		if !errors.As(err, &rerr) || rerr.Stage != "reload" || !strings.Contains(rerr.Output, "injected failure") {
			t.Fatalf("Flush = %v, want a reload-stage ReloadError with the script's error", err)
		}
		if onDisk, err := os.ReadFile(rl.opts.Path); err != nil || string(onDisk) != good {
			t.Errorf("%s does not hold the last good configuration after the rollback (err %v)", rl.opts.Path, err)
		}
		frrtest.Eventually(t, wait, "retried", func() string {
			if n := rl.Stats().Failures - failBefore; n < 2 {
				return fmt.Sprintf("%d failed attempts", n)
			}
			return ""
		})
		// Between attempts FRR runs the last good text again.
		frrtest.Eventually(t, wait, "rolled back", func() string {
			if r.Prefixes("ipv4")["203.0.113.201/32"] {
				return "203.0.113.201/32 still announced"
			}
			return has("203.0.113.1/32", "203.0.113.0/24")()
		})
		failReloadOf.Store("")
		start := time.Now()
		frrtest.Eventually(t, wait, "recovered by a retry, without another Apply", has("203.0.113.201/32"))
		frrtest.Eventually(t, wait, "error cleared", func() string {
			if err := rl.Err(); err != nil {
				return err.Error()
			}
			return ""
		})
		t.Logf("recovered %s after the fault cleared; stats %+v", time.Since(start), rl.Stats())
		if after := r.Neighbor(frrtest.NodeV4).ConnectionsEstablished; after != connBefore {
			t.Errorf("connectionsEstablished %d -> %d across failed reloads and rollbacks", connBefore, after)
		}
	})

	t.Run("IPv6 session next to IPv4: routes change without a reset of either", func(t *testing.T) {
		s6 := s4
		s6.Name, s6.PeerAddr = "router-v6", addr(frrtest.RouterV6)
		v6 := func(p string) bgp.DesiredState {
			d := state()
			d.Sessions = append(d.Sessions, s6)
			d.Routes[s6.Name] = []bgp.Route{{Prefix: pfx(p), Communities: []config.Community{std(65000, 66)}}}
			return d
		}
		apply(t, v6("2001:db8:1::/64"))
		flush(t)
		frrtest.Eventually(t, 60*time.Second, "IPv6 session established", func() string {
			if st := r.Neighbor(frrtest.NodeV6).State; st != "Established" {
				return fmt.Sprintf("neighbor %s is %q", frrtest.NodeV6, st)
			}
			return ""
		})
		frrtest.Eventually(t, wait, "IPv6 route", func() string {
			if c := r.Paths("2001:db8:1::/64")[frrtest.NodeV6].Communities(); c != "65000:66" {
				return fmt.Sprintf("2001:db8:1::/64 from %s: communities %q", frrtest.NodeV6, c)
			}
			return ""
		})
		c4, c6 := r.Neighbor(frrtest.NodeV4).ConnectionsEstablished, r.Neighbor(frrtest.NodeV6).ConnectionsEstablished
		apply(t, v6("2001:db8:1::1/128"))
		frrtest.Eventually(t, wait, "IPv6 route replaced", func() string {
			got := r.Prefixes("ipv6")
			if got["2001:db8:1::/64"] || !got["2001:db8:1::1/128"] {
				return fmt.Sprintf("router has %v", keys(got))
			}
			if c := r.Paths("2001:db8:1::1/128")[frrtest.NodeV6].Communities(); c != "65000:66" {
				return fmt.Sprintf("communities %q", c)
			}
			return ""
		})
		if a4, a6 := r.Neighbor(frrtest.NodeV4).ConnectionsEstablished, r.Neighbor(frrtest.NodeV6).ConnectionsEstablished; a4 != c4 || a6 != c6 {
			t.Errorf("connectionsEstablished v4 %d -> %d, v6 %d -> %d: a route change reset a session", c4, a4, c6, a6)
		}
		frrtest.Eventually(t, wait, "Status of both", func() string {
			st := b.Status()
			if len(st) != 2 || st[0].Name != "router-v4" || st[1].Name != "router-v6" || st[1].State != bgp.StateEstablished || st[1].Advertised != 1 {
				return fmt.Sprintf("Status() = %+v", st)
			}
			return ""
		})
	})

	t.Run("sessions FRR cannot express are skipped; the others keep flowing", func(t *testing.T) {
		// What admission and Build refuse can still reach a node: a
		// Secret's value no webhook saw, objects admitted while no webhook
		// ran. Such sessions are left out and named; the rest applies.
		badVRF := s4
		badVRF.Name, badVRF.PeerAddr, badVRF.VRF = "bad-vrf", addr("198.18.0.253"), "red:1"
		badPassword := s4
		badPassword.Name, badPassword.PeerAddr, badPassword.Password = "bad-password", addr(frrtest.RouterV6), "two words"
		withBad := func(extra ...string) bgp.DesiredState {
			d := state(extra...)
			d.Sessions = append(d.Sessions, badVRF, badPassword)
			d.Routes[badVRF.Name] = []bgp.Route{{Prefix: pfx("203.0.113.200/32")}}
			d.Routes[badPassword.Name] = []bgp.Route{{Prefix: pfx("203.0.113.201/32")}}
			return d
		}
		c4 := r.Neighbor(frrtest.NodeV4).ConnectionsEstablished
		applyBad := func(d bgp.DesiredState) {
			t.Helper()
			skipped, rest := bgp.SplitSkipped(b.Apply(ctx, d))
			if rest != nil {
				t.Fatalf("Apply: %v", rest)
			}
			if len(skipped) != 2 || !strings.Contains(fmt.Sprint(skipped["bad-vrf"]), `"red:1" contains ':'`) ||
				!strings.Contains(fmt.Sprint(skipped["bad-password"]), "whitespace") {
				t.Fatalf("skipped %v, want bad-vrf and bad-password with their reasons", skipped)
			}
			flush(t)
		}
		routes := func(want bool) func() string {
			return func() string {
				got := r.Prefixes("ipv4")
				if got["203.0.113.77/32"] != want || got["203.0.113.200/32"] || got["203.0.113.201/32"] || !got["203.0.113.1/32"] {
					return fmt.Sprintf("router has %v", keys(got))
				}
				return ""
			}
		}
		// A new route, then its withdrawal, over the good session, which
		// is never reset.
		applyBad(withBad("203.0.113.77/32"))
		frrtest.Eventually(t, wait, "203.0.113.77/32 announced", routes(true))
		applyBad(withBad())
		frrtest.Eventually(t, wait, "203.0.113.77/32 withdrawn", routes(false))
		if a4 := r.Neighbor(frrtest.NodeV4).ConnectionsEstablished; a4 != c4 {
			t.Errorf("connectionsEstablished %d -> %d", c4, a4)
		}
		if conf := b.Rendered(); strings.Contains(conf, "red:1") || strings.Contains(conf, "two words") {
			t.Errorf("the rendered configuration carries a skipped session:\n%s", conf)
		}
	})

	t.Run("BFD: the router's peer is up", func(t *testing.T) {
		lab.Configure("neighbor 198.18.0.1 bfd")
		s := s4
		s.BFDProfile = &config.BFDProfile{Name: "fast", ReceiveInterval: 300, TransmitInterval: 300, DetectMultiplier: 3}
		d := state()
		d.Sessions = []bgp.Session{s}
		apply(t, d)
		flush(t)
		frrtest.Eventually(t, wait, "BFD peer up", func() string {
			peers, err := b.BFDPeers()
			if err != nil {
				return err.Error()
			}
			for _, p := range peers {
				if p.Peer == s.PeerAddr && p.Session == s.Name && p.Up() {
					return ""
				}
			}
			return fmt.Sprintf("BFDPeers() = %+v", peers)
		})
		peers, _ := b.BFDPeers()
		t.Logf("BFD peers: %+v", peers)
		var rb []struct {
			Peer   string `json:"peer"`
			Status string `json:"status"`
		}
		if err := jsonUnmarshal(lab.Vtysh("show bfd peers json"), &rb); err != nil {
			t.Fatal(err)
		}
		if len(rb) != 1 || rb[0].Peer != frrtest.NodeV4 || rb[0].Status != "up" {
			t.Errorf("router's BFD peers %+v, want %s up", rb, frrtest.NodeV4)
		}
		frrtest.Eventually(t, wait, "still established", established)
	})

	t.Run("Close closes the sessions", func(t *testing.T) {
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		frrtest.Eventually(t, wait, "session down", func() string {
			if r.Neighbor(frrtest.NodeV4).State == "Established" {
				return "still established"
			}
			return ""
		})
		if err := b.Apply(ctx, state()); err == nil {
			t.Error("Apply after Close succeeded")
		}
	})
}

func jsonUnmarshal(s string, v any) error { return json.Unmarshal([]byte(s), v) }
