package frr

// The Reloader and the Backend's status parsing against a fake
// frr-reload.py and vtysh (ReloaderOptions.Exec): no FRR, no root.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
)

// fakeFRR plays frr-reload.py and vtysh: it records every command and
// fails --test or --reload while told to.
type fakeFRR struct {
	mu         sync.Mutex
	calls      []string
	reloaded   []string // the contents of the file each --reload saw
	failTest   bool
	failReload bool
	failVtysh  bool
	// failConfigure makes vtysh refuse configuration commands (a route
	// delta), after taking the first of them.
	failConfigure bool
	delay         time.Duration
	vtyshOut      map[string]string // by -c command
}

func (f *fakeFRR) exec(_ context.Context, name string, args ...string) ([]byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	mode := ""
	switch filepath.Base(name) {
	case "python3":
		mode = args[1]
	case "vtysh":
		if slices.Contains(args, "-m") {
			mode = "check"
		} else {
			mode = "vtysh " + args[len(args)-1]
		}
	}
	f.calls = append(f.calls, mode)
	file := args[len(args)-1]
	switch mode {
	case "--test", "check":
		if f.failTest {
			return []byte("line 3: % Unknown command: bogus\n"), errors.New("exit status 1")
		}
		return []byte("Lines To Add\n============\nrouter bgp 64512\n"), nil
	case "--reload":
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, err
		}
		f.reloaded = append(f.reloaded, string(b))
		if f.failReload && !strings.Contains(string(b), "good") {
			return []byte("frr-reload.py failed due to\nvtysh exec failed"), errors.New("exit status 1")
		}
		return nil, nil
	}
	if f.failConfigure && slices.Contains(args, "configure terminal") {
		return []byte("% Unknown command: " + args[len(args)-1]), errors.New("exit status 1")
	}
	if f.failVtysh {
		return []byte("Can't find BGP instance blue"), nil
	}
	// Several show commands in one call print their outputs in turn.
	var out []byte
	for i, a := range args {
		if i > 0 && args[i-1] == "-c" {
			if o, ok := f.vtyshOut[a]; ok {
				out = append(out, o...)
				out = append(out, '\n')
			}
		}
	}
	return out, nil
}

func (f *fakeFRR) count(mode string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, c := range f.calls {
		if c == mode {
			n++
		}
	}
	return n
}

func (f *fakeFRR) set(fn func(*fakeFRR)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(f)
}

func newFakeReloader(t *testing.T, f *fakeFRR, mod func(*ReloaderOptions)) *Reloader {
	t.Helper()
	o := ReloaderOptions{
		Path:       filepath.Join(t.TempDir(), "frr.conf"),
		Exec:       f.exec,
		UseVtysh:   true,
		Debounce:   50 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond,
		MaxBackoff: 40 * time.Millisecond,
	}
	if mod != nil {
		mod(&o)
	}
	r, err := NewReloader(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func flushT(t *testing.T, r *Reloader) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := r.Flush(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("Flush timed out")
	}
	return err
}

const confA = "router bgp 64512\n bgp router-id 198.18.0.1\n!\nrouter bgp 64512 vrf blue\n!\n"

func TestReloaderAppliesAndSkipsIdentical(t *testing.T) {
	f := &fakeFRR{}
	var results []ReloadResult
	var mu sync.Mutex
	r := newFakeReloader(t, f, func(o *ReloaderOptions) {
		o.OnReload = func(res ReloadResult) { mu.Lock(); results = append(results, res); mu.Unlock() }
	})
	gen := r.Submit(confA)
	if err := flushT(t, r); err != nil {
		t.Fatal(err)
	}
	if got, _ := os.ReadFile(r.opts.Path); string(got) != confA {
		t.Errorf("file = %q, want the submitted text", got)
	}
	if fi, err := os.Stat(r.opts.Path); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("file mode %v (%v), want 0640", fi.Mode(), err)
	}
	conf, g, ok := r.Applied()
	if conf != confA || g != gen || !ok {
		t.Errorf("Applied() = %q, %d, %v", conf, g, ok)
	}
	// --test and --reload, then one vtysh soft refresh of both instances
	// and both families.
	if f.count("--test") != 1 || f.count("--reload") != 1 || f.count("vtysh clear bgp vrf blue ipv6 unicast * soft out") != 1 ||
		f.count("vtysh clear bgp ipv4 unicast * soft out") != 0 {
		// The vtysh call carries every -c; the fake records the last.
		t.Errorf("calls %q", f.calls)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(results)
		mu.Unlock()
		if n > 0 {
			break
		}
	}
	mu.Lock()
	if len(results) != 1 || results[0].Err != nil || !strings.Contains(results[0].Diff, "Lines To Add") {
		t.Errorf("OnReload results %+v", results)
	}
	mu.Unlock()

	// Identical: nothing runs.
	if g2 := r.Submit(confA); g2 != gen {
		t.Errorf("identical Submit gave generation %d, want %d", g2, gen)
	}
	time.Sleep(3 * r.opts.Debounce)
	if err := flushT(t, r); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Reloads != 1 || f.count("--reload") != 1 {
		t.Errorf("identical Submit reloaded: %+v", st)
	}
	// Back to a text applied before (after a different one) is skipped
	// when nothing is in flight.
	r.Submit(confA + "! b\n")
	if err := flushT(t, r); err != nil {
		t.Fatal(err)
	}
	r.Submit(confA)
	if err := flushT(t, r); err != nil {
		t.Fatal(err)
	}
	if st := r.Stats(); st.Reloads != 3 {
		t.Errorf("stats %+v, want 3 reloads", st)
	}
}

func TestReloaderDebounce(t *testing.T) {
	f := &fakeFRR{}
	r := newFakeReloader(t, f, func(o *ReloaderOptions) { o.Debounce = 200 * time.Millisecond })
	start := time.Now()
	for i := range 20 {
		r.Submit(fmt.Sprintf("%s! %d\n", confA, i))
	}
	burst := time.Since(start)
	if err := flushT(t, r); err != nil {
		t.Fatal(err)
	}
	if burst >= r.opts.Debounce {
		t.Skipf("20 submissions took %s, longer than the window", burst)
	}
	if st := r.Stats(); st.Reloads != 1 {
		t.Errorf("20 submissions in %s: %d reloads, want 1", burst, st.Reloads)
	}
	f.mu.Lock()
	last := f.reloaded[len(f.reloaded)-1]
	f.mu.Unlock()
	if !strings.HasSuffix(last, "! 19\n") {
		t.Errorf("reloaded %q, want the newest text", last)
	}
}

func TestReloaderCheckFailureKeepsLastGoodAndRetries(t *testing.T) {
	f := &fakeFRR{}
	r := newFakeReloader(t, f, nil)
	good := confA + "! good\n"
	r.Submit(good)
	if err := flushT(t, r); err != nil {
		t.Fatal(err)
	}
	f.set(func(f *fakeFRR) { f.failTest = true })
	r.Submit(confA + "bogus\n")
	err := flushT(t, r)
	var rerr *ReloadError
	if !errors.As(err, &rerr) || rerr.Stage != "test" || !strings.Contains(rerr.Output, "Unknown command: bogus") {
		t.Fatalf("Flush = %v, want a test-stage ReloadError with the script's output", err)
	}
	if !strings.Contains(err.Error(), "Unknown command: bogus") {
		t.Errorf("error text %q lacks the output", err)
	}
	if r.Err() == nil {
		t.Error("Err() = nil after a failure")
	}
	// Retried with back-off (10, 20, 40, 40 ms ...).
	deadline := time.Now().Add(5 * time.Second)
	for r.Stats().Failures < 4 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := r.Stats().Failures; n < 4 {
		t.Errorf("%d attempts, want retries", n)
	}
	if got, _ := os.ReadFile(r.opts.Path); string(got) != good {
		t.Errorf("file = %q, want the last good text", got)
	}
	if conf, _, _ := r.Applied(); conf != good {
		t.Errorf("Applied() = %q, want the last good text", conf)
	}
	if n := f.count("--reload"); n != 1 {
		t.Errorf("%d reloads, want only the good one (a text failing the check never reaches FRR)", n)
	}
	// The caller resubmitting the same text does not defeat the back-off
	// (no extra attempt per call) and the fix applies.
	f.set(func(f *fakeFRR) { f.failTest = false })
	r.Submit(confA + "fixed\n")
	if err := flushT(t, r); err != nil {
		t.Fatal(err)
	}
	if r.Err() != nil {
		t.Errorf("Err() = %v after the fix", r.Err())
	}
	// Temporary files are cleaned up.
	entries, _ := os.ReadDir(filepath.Dir(r.opts.Path))
	if len(entries) != 1 {
		t.Errorf("directory holds %v, want only frr.conf", entries)
	}
}

func TestReloaderReloadFailureRestoresLastGood(t *testing.T) {
	f := &fakeFRR{}
	r := newFakeReloader(t, f, func(o *ReloaderOptions) { o.MinBackoff, o.MaxBackoff = time.Hour, time.Hour })
	good := confA + "! good\n"
	r.Submit(good)
	if err := flushT(t, r); err != nil {
		t.Fatal(err)
	}
	f.set(func(f *fakeFRR) { f.failReload = true })
	r.Submit(confA + "! new\n")
	err := flushT(t, r)
	var rerr *ReloadError
	if !errors.As(err, &rerr) || rerr.Stage != "reload" || !strings.Contains(rerr.Output, "vtysh exec failed") {
		t.Fatalf("Flush = %v, want a reload-stage ReloadError", err)
	}
	if got, _ := os.ReadFile(r.opts.Path); string(got) != good {
		t.Errorf("file = %q, want the last good text restored", got)
	}
	f.mu.Lock()
	reloaded := slices.Clone(f.reloaded)
	f.mu.Unlock()
	if len(reloaded) != 3 || reloaded[2] != good {
		t.Errorf("reloads %q: want good, new, then good again (rollback)", reloaded)
	}
}

func TestReloaderFastCheck(t *testing.T) {
	f := &fakeFRR{}
	r := newFakeReloader(t, f, func(o *ReloaderOptions) { o.FastCheck = true })
	r.Submit(confA)
	if err := flushT(t, r); err != nil {
		t.Fatal(err)
	}
	if f.count("check") != 1 || f.count("--test") != 0 || f.count("--reload") != 1 {
		t.Errorf("calls %q, want vtysh -m then --reload", f.calls)
	}
}

func TestReloaderRefreshFailureIsRetried(t *testing.T) {
	f := &fakeFRR{failVtysh: true}
	r := newFakeReloader(t, f, nil)
	r.Submit(confA)
	err := flushT(t, r)
	var rerr *ReloadError
	if !errors.As(err, &rerr) || rerr.Stage != "refresh" {
		t.Fatalf("Flush = %v, want a refresh-stage error", err)
	}
	f.set(func(f *fakeFRR) { f.failVtysh = false })
	deadline := time.Now().Add(5 * time.Second)
	for r.Err() != nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if r.Err() != nil {
		t.Errorf("not recovered: %v", r.Err())
	}
}

func TestReloaderResync(t *testing.T) {
	f := &fakeFRR{}
	r := newFakeReloader(t, f, nil)
	r.Resync() // nothing submitted: nothing to do
	r.Submit(confA)
	if err := flushT(t, r); err != nil {
		t.Fatal(err)
	}
	r.Resync()
	if err := flushT(t, r); err != nil {
		t.Fatal(err)
	}
	if n := f.count("--reload"); n != 2 {
		t.Errorf("%d reloads, want 2 (Resync reloads the same text)", n)
	}
	// A failed Resync is retried until it succeeds.
	f.set(func(f *fakeFRR) { f.failTest = true })
	r.Resync()
	if err := flushT(t, r); err == nil {
		t.Fatal("Resync against a failing FRR succeeded")
	}
	f.set(func(f *fakeFRR) { f.failTest = false })
	deadline := time.Now().Add(5 * time.Second)
	for (f.count("--reload") < 3 || r.Err() != nil) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := f.count("--reload"); n != 3 || r.Err() != nil {
		t.Errorf("%d reloads (err %v), want the failed Resync retried", n, r.Err())
	}
}

func TestReloaderOptions(t *testing.T) {
	if _, err := NewReloader(ReloaderOptions{}); err == nil {
		t.Error("NewReloader without a path succeeded")
	}
	f := &fakeFRR{}
	r := newFakeReloader(t, f, func(o *ReloaderOptions) { o.VtySocket = "/run/x" })
	var args []string
	r.opts.Exec = func(_ context.Context, name string, a ...string) ([]byte, error) {
		args = append([]string{name}, a...)
		return nil, nil
	}
	_, _ = r.script("--reload", r.opts.Path)
	want := []string{DefaultPython, DefaultReloadScript, "--reload", "--stdout", "--bindir", DefaultBinDir,
		"--confdir", filepath.Dir(r.opts.Path), "--rundir", filepath.Dir(r.opts.Path), "--vty_socket", "/run/x", r.opts.Path}
	if !slices.Equal(args, want) {
		t.Errorf("script args\n got %q\nwant %q", args, want)
	}
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{0, 10 * time.Millisecond}, {1, 10 * time.Millisecond}, {2, 20 * time.Millisecond}, {3, 40 * time.Millisecond}, {10, 40 * time.Millisecond}} {
		r.mu.Lock()
		r.attempt = c.n
		r.mu.Unlock()
		if got := r.backoff(); got != c.want {
			t.Errorf("backoff after %d failures = %s, want %s", c.n, got, c.want)
		}
	}
	if s := trimOutput([]byte(strings.Repeat("x", 2*maxOutput) + "END\n")); len(s) != maxOutput+3 || !strings.HasSuffix(s, "END") {
		t.Errorf("trimOutput kept %d bytes", len(s))
	}
}

// Outputs of FRR 8.4, cut down.
const summaryJSON = `{
"default":{
"ipv4Unicast":{"routerId":"198.18.0.1","as":64512,"vrfId":0,"vrfName":"default","peers":{
  "198.18.0.254":{"remoteAs":64513,"peerUptimeMsec":1000,"peerUptimeEstablishedEpoch":1795664518,"pfxRcd":0,"pfxSnt":2,"state":"Established","peerState":"OK","desc":"router-v4"},
  "2001:db8:18::fe":{"remoteAs":64513,"peerUptimeMsec":5000,"pfxSnt":1,"state":"Established"}
},"failedPeers":0},
"ipv6Unicast":{"peers":{"2001:db8:18::fe":{"pfxSnt":3,"state":"Established","peerUptimeMsec":5000}}}
},
"blue":{"ipv4Unicast":{"vrfName":"blue","peers":{"198.18.0.254":{"state":"Idle (Admin)","pfxSnt":0}}}}
}`

const neighborsJSON = `{
"default":{"vrfId":0,"vrfName":"default",
  "198.18.0.254":{"bgpState":"Established","messageStats":{"updatesSent":4,"updatesRecv":1}},
  "2001:db8:18::fe":{"bgpState":"Established","messageStats":{"updatesSent":7}}},
"blue":{"vrfId":5,"vrfName":"blue","198.18.0.254":{"bgpState":"Idle","messageStats":{"updatesSent":0}}}
}`

const bfdJSON = `[
  {"multihop":false,"peer":"198.18.0.254","local":"198.18.0.1","vrf":"default","interface":"eth0","status":"up","uptime":12,
   "diagnostic":"ok","remote-diagnostic":"ok","receive-interval":300,"transmit-interval":300,"detect-multiplier":3,
   "remote-receive-interval":300,"remote-transmit-interval":300,"remote-detect-multiplier":3},
  {"multihop":false,"peer":"198.18.0.254","vrf":"blue","status":"down","uptime":0}
]`

func TestBackendStatusAndBFD(t *testing.T) {
	f := &fakeFRR{vtyshOut: map[string]string{
		"show bgp vrf all summary json":   summaryJSON,
		"show bgp vrf all neighbors json": neighborsJSON,
		"show bfd peers json":             bfdJSON,
	}}
	b, err := NewBackend(BackendOptions{Reloader: ReloaderOptions{Path: filepath.Join(t.TempDir(), "frr.conf"), Exec: f.exec, Debounce: -1, UseVtysh: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	s4 := v4("router-v4", "198.18.0.254")
	s6 := s4
	s6.Name, s6.PeerAddr, s6.DualStack = "router-v6", addr("2001:db8:18::fe"), true
	sb := s4
	sb.Name, sb.VRF = "blue-peer", "blue"
	sx := s4
	sx.Name, sx.PeerAddr = "unknown", addr("198.18.0.253")
	d := bgp.DesiredState{Sessions: []bgp.Session{sx, s6, sb, s4},
		Routes: map[string][]bgp.Route{"router-v4": {{Prefix: pfx("203.0.113.1/32"), Communities: []config.Community{std(1, 2)}}}}}
	if got := b.Status(); got != nil {
		t.Errorf("Status before any reload = %+v, want none", got)
	}
	if err := b.Apply(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if err := flushT(t, b.Reloader()); err != nil {
		t.Fatal(err)
	}
	got := b.Status()
	est := time.Unix(1795664518, 0)
	want := []bgp.SessionStatus{
		{Name: "blue-peer", PeerAddr: addr("198.18.0.254"), VRF: "blue", State: bgp.StateIdle},
		{Name: "router-v4", PeerAddr: addr("198.18.0.254"), State: bgp.StateEstablished, Since: est, Advertised: 2, UpdatesSent: 4},
		{Name: "router-v6", PeerAddr: addr("2001:db8:18::fe"), State: bgp.StateEstablished, Advertised: 4, UpdatesSent: 7},
		{Name: "unknown", PeerAddr: addr("198.18.0.253"), State: bgp.StateUnknown},
	}
	if len(got) != len(want) {
		t.Fatalf("Status() = %+v", got)
	}
	for i := range want {
		g := got[i]
		if g.Name == "router-v6" {
			// Since from the uptime: about five seconds ago.
			if d := time.Since(g.Since); d < 4*time.Second || d > time.Minute {
				t.Errorf("router-v6 Since %s ago, want about 5s", d)
			}
			g.Since = time.Time{}
		}
		if g != want[i] {
			t.Errorf("Status()[%d] = %+v\nwant %+v", i, g, want[i])
		}
	}

	peers, err := b.BFDPeers()
	if err != nil {
		t.Fatal(err)
	}
	wantPeers := []BFDPeer{
		{Session: "router-v4", Peer: addr("198.18.0.254"), Local: addr("198.18.0.1"), Interface: "eth0", Status: "up", Uptime: 12 * time.Second,
			Diagnostic: "ok", RemoteDiagnostic: "ok", ReceiveInterval: 300, TransmitInterval: 300, DetectMultiplier: 3,
			RemoteReceiveInterval: 300, RemoteTransmitInterval: 300, RemoteDetectMultiplier: 3},
		{Session: "blue-peer", Peer: addr("198.18.0.254"), VRF: "blue", Status: "down"},
	}
	if !slices.Equal(peers, wantPeers) {
		t.Errorf("BFDPeers() =\n%+v\nwant\n%+v", peers, wantPeers)
	}
	if !peers[0].Up() || peers[1].Up() {
		t.Error("Up()")
	}

	// vtysh failing: sessions reported Unknown, BFDPeers an error.
	f.set(func(f *fakeFRR) { f.vtyshOut = map[string]string{} })
	for _, s := range b.Status() {
		if s.State != bgp.StateUnknown {
			t.Errorf("%s: %s without FRR's answer", s.Name, s.State)
		}
	}
	if _, err := b.BFDPeers(); err == nil {
		t.Error("BFDPeers without an answer succeeded")
	}
}

func TestBackendApplyErrors(t *testing.T) {
	f := &fakeFRR{}
	b, err := NewBackend(BackendOptions{Reloader: ReloaderOptions{Path: filepath.Join(t.TempDir(), "frr.conf"), Exec: f.exec, UseVtysh: true,
		MinBackoff: time.Hour, MaxBackoff: time.Hour}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	// An invalid session comes back skipped at once, and what is
	// submitted leaves it out; bad options submit nothing.
	bad := bgp.DesiredState{Sessions: []bgp.Session{{Name: "x"}, v4("ok", "198.18.0.254")}}
	skipped, rest := bgp.SplitSkipped(b.Apply(ctx, bad))
	if rest != nil || len(skipped) != 1 || !strings.Contains(fmt.Sprint(skipped["x"]), "no myASN") {
		t.Errorf("Apply(one invalid session) skipped %v, rest %v; want x skipped", skipped, rest)
	}
	if conf := b.Rendered(); !strings.Contains(conf, "neighbor 198.18.0.254") || strings.Contains(conf, `"x"`) {
		t.Errorf("submitted configuration:\n%s", conf)
	}
	b.SetOptions(Options{Hostname: "two words"})
	if err := b.Apply(ctx, bad); err == nil || !strings.Contains(err.Error(), "hostname") {
		t.Errorf("Apply with a bad hostname = %v, want the render error", err)
	}
	b.SetOptions(Options{})
	d := bgp.DesiredState{Sessions: []bgp.Session{v4("a", "198.18.0.254")}}
	if err := b.Apply(ctx, d); err != nil {
		t.Fatal(err)
	}
	if err := flushT(t, b.Reloader()); err != nil {
		t.Fatal(err)
	}
	// A failing reload: the next Apply reports it.
	f.set(func(f *fakeFRR) { f.failTest = true })
	d2 := bgp.DesiredState{Sessions: []bgp.Session{v4("b", "198.18.0.254")}}
	_ = b.Apply(ctx, d2)
	_ = flushT(t, b.Reloader())
	var rerr *ReloadError
	if err := b.Apply(ctx, d2); !errors.As(err, &rerr) {
		t.Errorf("Apply after a failed reload = %v, want the ReloadError", err)
	}
	// Status still names the sessions of the applied state.
	if st := b.appliedState(); len(st.Sessions) != 1 || st.Sessions[0].Name != "a" {
		t.Errorf("applied state %+v, want session a", st.Sessions)
	}
	// Close reloads a configuration without sessions.
	f.set(func(f *fakeFRR) { f.failTest = false })
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	last := f.reloaded[len(f.reloaded)-1]
	f.mu.Unlock()
	if strings.Contains(last, "router bgp") {
		t.Errorf("Close reloaded %q, want no BGP instance", last)
	}
	if err := b.Apply(ctx, d); err == nil {
		t.Error("Apply after Close succeeded")
	}
	if err := b.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestScriptOutput(t *testing.T) {
	// frr-reload.py --test on a text with a bad line (FRR 8.4).
	out := "2026-11-26 03:36:56,151  INFO: Called via \"Namespace(...)\"\n" +
		"2026-11-26 03:36:56,151  INFO: Loading Config object from file /x/.frr.conf.1.tmp\n" +
		"2026-11-26 03:36:56,206 \x1b[91m  ERROR\x1b[0m: vtysh failed to process new configuration: vtysh (mark file) exited with status 2:\n" +
		"b'line 51: % Unknown command: lbstack-not-a-command 42\\n\\n'\n" +
		"2026-11-26 03:36:56,206  INFO: Loading Config object from vtysh show running\n" +
		"\nLines To Delete\n===============\nno router bgp 64512\n" + strings.Repeat("no ip prefix-list x seq 5 permit 203.0.113.1/32\n", 200)
	got := scriptOutput([]byte(out))
	want := "2026-11-26 03:36:56,206   ERROR: vtysh failed to process new configuration: vtysh (mark file) exited with status 2:\n" +
		"b'line 51: % Unknown command: lbstack-not-a-command 42\\n\\n'"
	if got != want {
		t.Errorf("scriptOutput =\n%q\nwant\n%q", got, want)
	}
	if got := scriptOutput([]byte("  plain failure \n")); got != "plain failure" {
		t.Errorf("scriptOutput(plain) = %q", got)
	}
}

func TestMapState(t *testing.T) {
	for in, want := range map[string]bgp.SessionState{
		"Established": bgp.StateEstablished, "Idle": bgp.StateIdle, "Idle (Admin)": bgp.StateIdle, "Idle (PfxCt)": bgp.StateIdle,
		"Connect": bgp.StateConnect, "Active": bgp.StateActive, "OpenSent": bgp.StateOpenSent, "OpenConfirm": bgp.StateOpenConfirm,
		"Clearing": bgp.StateIdle, "Deleted": bgp.StateIdle, "": bgp.StateUnknown, "Weird": bgp.StateUnknown,
	} {
		if got := mapState(in); got != want {
			t.Errorf("mapState(%q) = %s, want %s", in, got, want)
		}
	}
	if _, err := parseSummary([]byte("not json")); err == nil {
		t.Error("parseSummary accepted garbage")
	}
	if _, err := parseBFDPeers([]byte(`[{"peer":"nope"}]`)); err == nil {
		t.Error("parseBFDPeers accepted a bad address")
	}
}

// A route delta vtysh refuses, followed by a full configuration FRR's
// check refuses too: frr.conf still holds the last configuration FRR
// accepted (the fast path writes it only after vtysh took the delta), and
// FRR is reloaded with it, since part of the delta may have gone in.
func TestFailedFastPathKeepsTheLastGoodConfiguration(t *testing.T) {
	s := bgp.Session{Name: "p", MyASN: 64512, PeerASN: 64513, PeerAddr: addr("198.18.0.254"), Port: 179, RouterID: addr("198.18.0.1")}
	conf := func(prefixes ...string) string {
		var routes []bgp.Route
		for _, p := range prefixes {
			routes = append(routes, bgp.Route{Prefix: pfx(p)})
		}
		c, err := Render(bgp.DesiredState{Sessions: []bgp.Session{s}, Routes: map[string][]bgp.Route{"p": routes}}, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	good, next := conf("203.0.113.1/32"), conf("203.0.113.1/32", "203.0.113.2/32")
	if _, ok := routeDelta(good, next); !ok {
		t.Fatal("the change is not route-only: the test would not take the fast path")
	}
	f := &fakeFRR{}
	r := newFakeReloader(t, f, nil)
	r.Submit(good)
	if err := flushT(t, r); err != nil {
		t.Fatal(err)
	}
	f.set(func(f *fakeFRR) { f.failConfigure, f.failTest = true, true })
	r.Submit(next)
	if err := flushT(t, r); err == nil {
		t.Fatal("the reload succeeded")
	}
	got, err := os.ReadFile(r.opts.Path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != good {
		t.Errorf("frr.conf holds a configuration FRR never accepted:\n%s", got)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.reloaded); n < 2 || f.reloaded[n-1] != good {
		t.Errorf("FRR was not reloaded with the last good configuration after the failed delta (reloads %d)", n)
	}
}

// The reloader's status (every second) reads FRR's sessions and BFD peers
// with one vtysh process, not three.
func TestSnapshotIsOneVtysh(t *testing.T) {
	f := &fakeFRR{vtyshOut: map[string]string{
		"show bgp vrf all summary json":   `{"default":{"ipv4Unicast":{"peers":{"198.18.0.254":{"state":"Established","pfxSnt":2,"peerUptimeMsec":1000}}}}}`,
		"show bgp vrf all neighbors json": `{"default":{"198.18.0.254":{"messageStats":{"updatesSent":7}}}}`,
		"show bfd peers json":             `[{"peer":"198.18.0.254","vrf":"default","status":"up"}]`,
	}}
	b, err := NewBackend(BackendOptions{Reloader: ReloaderOptions{Path: filepath.Join(t.TempDir(), "frr.conf"), Exec: f.exec, UseVtysh: true}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	if err := b.Apply(context.Background(), bgp.DesiredState{Sessions: []bgp.Session{v4("edge", "198.18.0.254")}}); err != nil {
		t.Fatal(err)
	}
	if err := flushT(t, b.Reloader()); err != nil {
		t.Fatal(err)
	}
	before := len(f.calls)
	sessions, peers, err := b.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	f.mu.Lock()
	calls := f.calls[before:]
	f.mu.Unlock()
	if len(calls) != 1 {
		t.Errorf("%d vtysh processes for one snapshot: %v", len(calls), calls)
	}
	if len(sessions) != 1 || sessions[0].State != bgp.StateEstablished || sessions[0].Advertised != 2 || sessions[0].UpdatesSent != 7 {
		t.Errorf("sessions %+v", sessions)
	}
	if len(peers) != 1 || peers[0].Session != "edge" || !peers[0].Up() {
		t.Errorf("BFD peers %+v", peers)
	}
	// bfdd down: sessions still reported, BFD is the error.
	f.set(func(f *fakeFRR) { f.vtyshOut["show bfd peers json"] = "bfdd is not running" })
	sessions, peers, err = b.Snapshot()
	if len(sessions) != 1 || sessions[0].State != bgp.StateEstablished || peers != nil || err == nil {
		t.Errorf("with bfdd down: sessions %+v peers %+v err %v", sessions, peers, err)
	}
}
