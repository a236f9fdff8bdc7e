package frr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/test/lab/frrtest"
)

// TestDesiredStateJSONRoundTrip: the handoff carries every Session and
// Route field the renderer uses, unchanged.
func TestDesiredStateJSONRoundTrip(t *testing.T) {
	s := bgp.Session{Name: "p", MyASN: 64512, PeerASN: 64513, LocalASN: 64600, PeerAddr: addr("198.18.0.254"), Port: 1179,
		SourceAddr: addr("198.18.0.1"), RouterID: addr("198.18.0.1"), HoldTime: dur(9 * time.Second), KeepaliveTime: dur(3 * time.Second),
		ConnectTime: dur(time.Second), Password: "pw", EBGPMultiHop: true, GracefulRestart: true, VRF: "red", DualStack: true,
		BFDProfile: &config.BFDProfile{Name: "fast", ReceiveInterval: 25, TransmitInterval: 25, DetectMultiplier: 3}}
	d := bgp.DesiredState{Sessions: []bgp.Session{s}, Routes: map[string][]bgp.Route{"p": {
		{Prefix: pfx("203.0.113.0/24"), Communities: []config.Community{std(65535, 120), large(65535, 300, 100)}, LocalPref: 150},
		{Prefix: pfx("2001:db8::1/128")},
	}}}
	norm, err := d.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(norm)
	if err != nil {
		t.Fatal(err)
	}
	var back bgp.DesiredState
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, norm) {
		t.Fatalf("round trip changed the state:\n got %+v\nwant %+v", back, norm)
	}
	a, err := Render(norm, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Render(back, Options{})
	if a != b {
		t.Errorf("the rendered configuration differs after the round trip")
	}
}

// TestFileBackendThroughReloader: the speaker's FileBackend and the
// reloader's RunReloader, through a directory, against a real FRR: the
// route reaches the router, Status comes back through the status file,
// an unchanged state writes nothing, and a state FRR rejects is reported
// by the speaker's next Apply while the last good routes stay.
func TestFileBackendThroughReloader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts FRR daemons; skipped with -short")
	}
	needReloadScript(t)
	lab := frrtest.Start(t, "")
	dir := nodeFRR(t, lab)
	r := lab.Router()
	fwd4, fwd6 := nsForwarding(t, lab.NodeNS)
	be, err := NewBackend(BackendOptions{
		Render:              Options{Hostname: "lbs-node", IPForwarding: fwd4, IPv6Forwarding: fwd6},
		Reloader:            ReloaderOptions{Path: filepath.Join(dir, "frr.conf"), VtySocket: dir, Log: testr.New(t)},
		KeepSessionsOnClose: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	handoff := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunReloader(ctx, handoff, be, 20*time.Millisecond, testr.New(t)) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	speaker := NewFileBackend(handoff)
	s4 := bgp.Session{Name: "router-v4", MyASN: frrtest.NodeAS, PeerASN: frrtest.RouterAS,
		PeerAddr: addr(frrtest.RouterV4), Port: 179, RouterID: addr(frrtest.NodeV4), ConnectTime: dur(time.Second)}
	state := func(prefix string) bgp.DesiredState {
		return bgp.DesiredState{Sessions: []bgp.Session{s4}, Routes: map[string][]bgp.Route{s4.Name: {
			{Prefix: pfx(prefix), Communities: []config.Community{std(65535, 120)}}}}}
	}
	if err := speaker.Apply(ctx, state("203.0.113.7/32")); err != nil {
		t.Fatal(err)
	}
	frrtest.Eventually(t, 60*time.Second, "route at the router", func() string {
		if !r.Prefixes("ipv4")["203.0.113.7/32"] {
			return "missing"
		}
		return ""
	})
	frrtest.Eventually(t, 30*time.Second, "Status through the status file", func() string {
		st := speaker.Status()
		if len(st) != 1 || st[0].Name != s4.Name || st[0].State != bgp.StateEstablished {
			return fmt.Sprintf("%+v", st)
		}
		return ""
	})
	gen := speaker.gen
	if err := speaker.Apply(ctx, state("203.0.113.7/32")); err != nil || speaker.gen != gen {
		t.Errorf("an unchanged state: err %v, generation %d -> %d", err, gen, speaker.gen)
	}

	// A configuration FRR rejects (the reloader's node options carry a
	// line FRR cannot parse) is reported by the speaker's next Apply, and
	// the last good routes stay.
	be.SetOptions(Options{Hostname: "lbs-node", IPForwarding: fwd4, IPv6Forwarding: fwd6, ExtraConfig: "this is not frr\n"})
	if err := speaker.Apply(ctx, state("203.0.113.8/32")); err != nil {
		t.Fatalf("first Apply of the bad state: %v", err)
	}
	frrtest.Eventually(t, 60*time.Second, "the reload error reaches the speaker", func() string {
		if err := speaker.Apply(ctx, state("203.0.113.8/32")); err == nil {
			return "no error yet"
		}
		return ""
	})
	if !r.Prefixes("ipv4")["203.0.113.7/32"] {
		t.Errorf("the last good route was withdrawn after a failed reload")
	}
}

// TestFileBackendSkipsWhatFRRCannotExpress: the speaker hands the reloader
// only sessions FRR can run and names the others in Apply's error; the
// rest of the state is handed over (before, one such session stopped every
// update of the node).
func TestFileBackendSkipsWhatFRRCannotExpress(t *testing.T) {
	dir := t.TempDir()
	be := NewFileBackend(dir)
	good := bgp.Session{Name: "good", MyASN: 64512, PeerASN: 64513, PeerAddr: addr("198.18.0.254"), Port: 179, RouterID: addr("198.18.0.1")}
	badVRF := good
	badVRF.Name, badVRF.PeerAddr, badVRF.VRF = "bad-vrf", addr("198.18.0.253"), "default"
	badPW := good
	badPW.Name, badPW.PeerAddr, badPW.Password = "bad-pw", addr("198.18.0.252"), "two words"
	d := bgp.DesiredState{Sessions: []bgp.Session{badVRF, good, badPW}, Routes: map[string][]bgp.Route{
		"good": {{Prefix: pfx("203.0.113.1/32")}}, "bad-vrf": {{Prefix: pfx("203.0.113.2/32")}}, "bad-pw": {{Prefix: pfx("203.0.113.3/32")}},
	}}
	skipped, rest := bgp.SplitSkipped(be.Apply(context.Background(), d))
	if rest != nil || len(skipped) != 2 || skipped["bad-vrf"] == nil || skipped["bad-pw"] == nil {
		t.Fatalf("skipped %v, rest %v; want bad-vrf and bad-pw skipped, nothing else", skipped, rest)
	}
	raw, err := os.ReadFile(filepath.Join(dir, DesiredFile))
	if err != nil {
		t.Fatal(err)
	}
	var doc desiredDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.State.Sessions) != 1 || doc.State.Sessions[0].Name != "good" || len(doc.State.Routes) != 1 || len(doc.State.Routes["good"]) != 1 {
		t.Fatalf("handed over %+v, want the good session and its route only", doc.State)
	}
	if _, err := Render(doc.State, Options{}); err != nil {
		t.Errorf("the reloader could not render what it was handed: %v", err)
	}
}

// TestFileBackendHandsOverChanges (fake FRR): the speaker's ApplyChanges
// writes the changed routes, not the state; the reloader applies them
// on top of the desired state through Backend.ApplyChanges, so that what
// it renders is the speaker's newest state at every step; a full Apply,
// too many changes, a speaker restart and a reloader restart all keep
// the two sides agreeing.
func TestFileBackendHandsOverChanges(t *testing.T) {
	dir := t.TempDir()
	newReloader := func() (*Backend, func()) {
		f := &fakeFRR{}
		be, err := NewBackend(BackendOptions{Reloader: ReloaderOptions{Path: filepath.Join(t.TempDir(), "frr.conf"), Exec: f.exec, Debounce: -1,
			UseVtysh: true}, KeepSessionsOnClose: true})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- RunReloader(ctx, dir, be, 2*time.Millisecond, testr.New(t)) }()
		return be, func() {
			cancel()
			<-done
			_ = be.Close()
		}
	}
	be, stop := newReloader()
	defer func() { stop() }()
	ctx := context.Background()
	speaker := NewFileBackend(dir)
	s := v4("p", "198.18.0.254")
	routes := []bgp.Route{{Prefix: pfx("198.51.100.0/24")}}
	state := func() bgp.DesiredState {
		return bgp.DesiredState{Sessions: []bgp.Session{s}, Routes: map[string][]bgp.Route{"p": slices.Clone(routes)}}
	}
	converged := func(what string) {
		t.Helper()
		want, err := Render(state(), Options{})
		if err != nil {
			t.Fatal(err)
		}
		frrtest.Eventually(t, 10*time.Second, what, func() string {
			if got := be.Rendered(); got != want {
				return lineDiff(want, got)
			}
			return ""
		})
	}
	if err := speaker.Apply(ctx, state()); err != nil {
		t.Fatal(err)
	}
	converged("the first state")
	desiredGen := speaker.base
	rng := rand.New(rand.NewPCG(21, 6))
	for step := range 40 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{203, 0, 113, byte(rng.IntN(32))}), 32)
		i, found := slices.BinarySearchFunc(routes, p, func(r bgp.Route, p netip.Prefix) int { return bgp.ComparePrefixes(r.Prefix, p) })
		if found {
			routes = slices.Delete(routes, i, i+1)
		} else {
			routes = slices.Insert(routes, i, bgp.Route{Prefix: p})
		}
		if err := speaker.ApplyChanges(ctx, state(), []bgp.RouteChange{{Session: "p", Prefix: p}}); err != nil {
			t.Fatal(err)
		}
		converged(fmt.Sprintf("step %d", step))
	}
	if speaker.base != desiredGen {
		t.Errorf("the changes rewrote the desired state (generation %d -> %d)", desiredGen, speaker.base)
	}
	if be.Changes() < 30 {
		t.Errorf("the reloader followed %d of 40 changes", be.Changes())
	}

	// The reloader restarts: it takes the desired state and the changes.
	stop()
	be, stop = newReloader()
	converged("after a reloader restart")

	// The speaker restarts: its first Apply writes the whole state under
	// a newer generation; changes follow it.
	gen := speaker.gen
	speaker = NewFileBackend(dir)
	if speaker.gen != gen {
		t.Errorf("a new speaker continues from generation %d, want %d", speaker.gen, gen)
	}
	routes = append(routes[:0:0], routes[1:]...)
	if err := speaker.ApplyChanges(ctx, state(), []bgp.RouteChange{{Session: "p", Prefix: pfx("198.51.100.0/24")}}); err != nil {
		t.Fatal(err)
	}
	converged("a new speaker's first state")
	if _, err := os.Stat(filepath.Join(dir, ChangesFile)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the changes of the old state are left: %v", err)
	}
	routes = append(routes, bgp.Route{Prefix: pfx("2001:db8::1/128")}) // not carried: dropped by both
	routes = append(routes, bgp.Route{Prefix: pfx("203.0.113.200/32")})
	routes = slices.DeleteFunc(routes, func(r bgp.Route) bool { return r.Prefix.Addr().Is6() })
	if err := speaker.ApplyChanges(ctx, state(), []bgp.RouteChange{{Session: "p", Prefix: pfx("203.0.113.200/32")}}); err != nil {
		t.Fatal(err)
	}
	converged("a change after the new speaker's state")

	// Past maxHandoffChanges routes, the whole state again.
	base := speaker.base
	var many []bgp.RouteChange
	for i := range maxHandoffChanges + 1 {
		p := netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), 32)
		routes = append(routes, bgp.Route{Prefix: p})
		many = append(many, bgp.RouteChange{Session: "p", Prefix: p})
	}
	slices.SortFunc(routes, func(a, b bgp.Route) int { return bgp.ComparePrefixes(a.Prefix, b.Prefix) })
	if err := speaker.ApplyChanges(ctx, state(), many); err != nil {
		t.Fatal(err)
	}
	if speaker.base == base {
		t.Error("too many changes were handed over as changes")
	}
	converged("many changes")
}

// TestWatchedFileRereadsOnlyWhileRecent: an unchanged file is read again
// every second while its modification time is recent (a replacement
// within the clock's granularity may keep its identity), and not at all
// once it has been still for longer.
func TestWatchedFileRereadsOnlyWhileRecent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "desired.json")
	if err := writeAtomic(path, []byte(`{"a":1}`), 0o600); err != nil {
		t.Fatal(err)
	}
	w := watchedFile{path: path}
	if _, fresh, err := w.read(false); err != nil || !fresh {
		t.Fatalf("first read: fresh %v, err %v", fresh, err)
	}
	now := time.Now()
	for _, tc := range []struct {
		name      string
		mtime     time.Time     // the file's modification time
		sinceRead time.Duration // since the last read
		content   string        // written in place, keeping inode, size and mtime
		force     bool
		wantRead  bool
	}{
		{name: "recent file, read just now: not read", mtime: now, sinceRead: 0, content: `{"a":2}`},
		{name: "recent file, read a second ago: read, and the change seen", mtime: now, sinceRead: time.Second, content: `{"a":3}`, wantRead: true},
		{name: "still file, read long ago: not read", mtime: now.Add(-recentWrite - time.Second), sinceRead: time.Minute, content: `{"a":4}`},
		{name: "still file, forced: read", mtime: now.Add(-recentWrite - time.Second), sinceRead: 0, content: `{"a":5}`, force: true, wantRead: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := os.OpenFile(path, os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.WriteAt([]byte(tc.content), 0); err != nil {
				t.Fatal(err)
			}
			f.Close()
			if err := os.Chtimes(path, tc.mtime, tc.mtime); err != nil {
				t.Fatal(err)
			}
			// The identity the watcher saw is the file's now: only the
			// content changed, as a replacement reusing the inode would.
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			w.seen.size, w.seen.mtime = fi.Size(), fi.ModTime()
			w.lastRead = time.Now().Add(-tc.sinceRead)
			raw, fresh, err := w.read(tc.force)
			if err != nil {
				t.Fatal(err)
			}
			if got := raw != nil; got != tc.wantRead {
				t.Fatalf("read %v, want %v", got, tc.wantRead)
			}
			if tc.wantRead && (!fresh || string(raw) != tc.content) {
				t.Errorf("got %q fresh %v, want %q fresh", raw, fresh, tc.content)
			}
		})
	}
}
