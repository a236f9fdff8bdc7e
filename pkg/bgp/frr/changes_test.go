package frr

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
)

// liveFor renders d in full, as Apply does, and keeps it.
func liveFor(t *testing.T, d bgp.DesiredState) *live {
	t.Helper()
	r, err := render(d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !givenNormal(d, r.norm) {
		t.Fatal("the test's state is not normal")
	}
	return newLive(r, d.Sessions, Options{})
}

// liveTags describes the tags of l: each set's and how many prefixes
// carry it.
func liveTags(l *live) string {
	var out []string
	for k, tg := range l.tagOf {
		out = append(out, fmt.Sprintf("%q %d: %d", k, tg, l.uses[tg]))
	}
	slices.Sort(out)
	return fmt.Sprint(len(l.uses), out)
}

// TestLiveChangeEquivalence: random states, random changes of a few
// routes. Whenever live.change follows a change, the configuration it
// leaves is the one RenderState makes of the new state, its tags are
// those a full render keeps, and its commands are exactly those the full
// path's fast path (routeDelta of the two texts) would run, with no
// refresh. When it does not follow, it changed nothing.
func TestLiveChangeEquivalence(t *testing.T) {
	rng := rand.New(rand.NewPCG(21, 4))
	base := bgp.Session{MyASN: 64512, PeerASN: 64513, Port: 179, RouterID: addr("198.18.0.1")}
	s4, s6, sr, sb := base, base, base, base
	s4.Name, s4.PeerAddr = "v4", addr("198.18.0.254")
	s6.Name, s6.PeerAddr, s6.DualStack = "v6", addr("2001:db8:18::fe"), true
	sb.Name, sb.PeerAddr = "v4b", addr("198.18.0.253")
	sr.Name, sr.PeerAddr, sr.VRF, sr.PeerASN = "red", addr("198.18.0.252"), "red", 64512 // iBGP: local preference
	sessions := []bgp.Session{sr, s4, s6, sb}
	attrs := []struct {
		comms []config.Community
		lp    uint32
	}{{nil, 0}, {[]config.Community{std(65000, 1)}, 0}, {[]config.Community{std(65000, 1), large(64512, 1, 2)}, 0}, {nil, 150}, {[]config.Community{std(65000, 9)}, 0}}
	// Tags collide now and then: a new set that moves a collided one's
	// tag (renumbering its routes' statements and entries) is left to
	// the full path.
	crowdedTags(t, 512)
	var pool []netip.Prefix
	for i := range 24 {
		pool = append(pool, pfx(fmt.Sprintf("203.0.113.%d/32", i*7)))
	}
	pool = append(pool, pfx("198.51.100.0/24"), pfx("198.51.100.0/25"))
	for i := range 8 {
		pool = append(pool, pfx(fmt.Sprintf("2001:db8::%x/128", i+1)))
	}
	routes := map[string][]bgp.Route{}
	// put sets (or, with a < 0, removes) a route, keeping the session's
	// routes normal.
	put := func(rs []bgp.Route, s bgp.Session, p netip.Prefix, a int) []bgp.Route {
		rs = slices.Clone(rs)
		i, found := slices.BinarySearchFunc(rs, p, func(r bgp.Route, p netip.Prefix) int { return bgp.ComparePrefixes(r.Prefix, p) })
		if a < 0 || !s.Carries(p) {
			if found {
				rs = slices.Delete(rs, i, i+1)
			}
			return rs
		}
		r := bgp.Route{Prefix: p, Communities: attrs[a].comms}
		if s.IBGP() {
			r.LocalPref = attrs[a].lp
		}
		if found {
			rs[i] = r
		} else {
			rs = slices.Insert(rs, i, r)
		}
		return rs
	}
	reset := func() {
		routes = map[string][]bgp.Route{}
		for _, s := range sessions {
			for _, p := range pool {
				if rng.IntN(3) > 0 {
					routes[s.Name] = put(routes[s.Name], s, p, rng.IntN(3)) // three sets in use
				}
			}
			if len(routes[s.Name]) == 0 {
				delete(routes, s.Name)
			}
		}
	}
	state := func() bgp.DesiredState { return bgp.DesiredState{Sessions: sessions, Routes: maps.Clone(routes)} }
	reset()
	l := liveFor(t, state())
	followed, fellBack, moved, tagged := 0, 0, 0, 0
	for step := range 1500 {
		oldText := l.text()
		var changed []bgp.RouteChange
		for range 1 + rng.IntN(3) {
			s := sessions[rng.IntN(len(sessions))]
			p := pool[rng.IntN(len(pool))]
			a := rng.IntN(4) - 1 // mostly the sets in use; -1 removes
			if rng.IntN(20) == 0 {
				a = 4 // a set no route uses
			}
			routes[s.Name] = put(routes[s.Name], s, p, a)
			if len(routes[s.Name]) == 0 {
				delete(routes, s.Name)
			}
			changed = append(changed, bgp.RouteChange{Session: s.Name, Prefix: p})
		}
		if rng.IntN(10) == 0 {
			// A change also names an unchanged route.
			changed = append(changed, bgp.RouteChange{Session: s4.Name, Prefix: pool[0]})
		}
		d := state()
		want, err := Render(d, Options{})
		if err != nil {
			t.Fatal(err)
		}
		cmds, refresh, ok := l.change(d, changed)
		if !ok {
			fellBack++
			if got := l.text(); got != oldText {
				t.Fatalf("step %d: a change not followed edited the configuration", step)
			}
			l = liveFor(t, d)
			continue
		}
		followed++
		if got := l.text(); got != want {
			t.Fatalf("step %d (%v): the edited configuration differs from the rendered one:\n%s", step, changed, lineDiff(want, got))
		}
		if got, want := liveTags(l), liveTags(liveFor(t, d)); got != want {
			t.Fatalf("step %d: tags after the edit:\n%s\nwant\n%s", step, got, want)
		}
		wantCmds, deltaOK := routeDelta(oldText, want)
		if !deltaOK || !slices.Equal(cmds, wantCmds) {
			t.Fatalf("step %d (%v): commands\n%q\nwant routeDelta's (%v)\n%q", step, changed, cmds, deltaOK, wantCmds)
		}
		if len(refresh) > 0 {
			t.Fatalf("step %d (%v): refresh %q", step, changed, refresh)
		}
		if slices.ContainsFunc(cmds, func(c string) bool {
			return strings.Contains(c, "route-map "+tagMapPrefix) && !strings.HasPrefix(c, "network ")
		}) {
			tagged++ // a tag came or went
		}
		for _, c := range cmds {
			if p, ok := strings.CutPrefix(c, "network "); ok {
				p, _, _ = strings.Cut(p, " ")
				if strings.Contains(oldText, "  network "+p+" route-map ") {
					moved++ // written again with another tag
				}
			}
		}
		if rng.IntN(50) == 0 {
			reset()
			l = liveFor(t, state())
		}
	}
	t.Logf("%d changes followed (%d making or ending tags, %d prefixes moved to another tag), %d not (a collision would renumber a tag)", followed, tagged, moved, fellBack)
	if followed < 1000 || tagged < 200 || moved < 100 || fellBack == 0 {
		t.Errorf("followed %d, tags changing %d, moved %d: the random changes miss cases", followed, tagged, moved)
	}
}

// TestLiveChangeFallbacks: what live.change must leave to a full render.
func TestLiveChangeFallbacks(t *testing.T) {
	s := bgp.Session{Name: "p", MyASN: 64512, PeerASN: 64513, PeerAddr: addr("198.18.0.254"), Port: 179, RouterID: addr("198.18.0.1")}
	st := func(rs ...bgp.Route) bgp.DesiredState {
		return bgp.DesiredState{Sessions: []bgp.Session{s}, Routes: map[string][]bgp.Route{"p": rs}}
	}
	r := func(p string, cs ...config.Community) bgp.Route { return bgp.Route{Prefix: pfx(p), Communities: cs} }
	ch := func(p string) []bgp.RouteChange { return []bgp.RouteChange{{Session: "p", Prefix: pfx(p)}} }
	other := s
	other.HoldTime = dur(9e9)
	for _, tc := range []struct {
		name     string
		old, new bgp.DesiredState
		changed  []bgp.RouteChange
	}{
		{"a session changed", st(r("203.0.113.1/32")), bgp.DesiredState{Sessions: []bgp.Session{other}, Routes: map[string][]bgp.Route{"p": {r("203.0.113.1/32"), r("203.0.113.2/32")}}}, ch("203.0.113.2/32")},
		{"an unknown session", st(r("203.0.113.1/32")), st(r("203.0.113.1/32")), []bgp.RouteChange{{Session: "q", Prefix: pfx("203.0.113.1/32")}}},
		{"a route not normal", st(r("203.0.113.1/32")), st(r("203.0.113.1/32"), bgp.Route{Prefix: pfx("203.0.113.2/32"), LocalPref: 100}), ch("203.0.113.2/32")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := liveFor(t, tc.old)
			if cmds, _, ok := l.change(tc.new, tc.changed); ok {
				t.Errorf("followed: %q", cmds)
			}
		})
	}
}

// TestBackendApplyChanges (fake FRR): a followed change, with a tag in
// use or a new one, reaches FRR as one vtysh call with its commands and
// the file holds the new text; a change that follows a failed or
// pending reload goes the full way; the applied state and Rendered
// follow every change.
func TestBackendApplyChanges(t *testing.T) {
	f := &fakeFRR{}
	b, err := NewBackend(BackendOptions{Reloader: ReloaderOptions{Path: filepath.Join(t.TempDir(), "frr.conf"), Exec: f.exec,
		UseVtysh: true, Debounce: -1, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	ctx := context.Background()
	s := v4("p", "198.18.0.254")
	routes := []bgp.Route{{Prefix: pfx("203.0.113.1/32")}, {Prefix: pfx("203.0.113.9/32")}}
	st := func(rs []bgp.Route) bgp.DesiredState {
		return bgp.DesiredState{Sessions: []bgp.Session{s}, Routes: map[string][]bgp.Route{"p": rs}}
	}
	if err := b.Apply(ctx, st(routes)); err != nil {
		t.Fatal(err)
	}
	if err := flushT(t, b.Reloader()); err != nil {
		t.Fatal(err)
	}
	reloads := f.count("--reload")
	f.mu.Lock()
	before := len(f.calls)
	f.mu.Unlock()
	// 203.0.113.5 sorts between the two: with stable numbers, an edit.
	next := []bgp.Route{routes[0], {Prefix: pfx("203.0.113.5/32")}, routes[1]}
	if err := b.ApplyChanges(ctx, st(next), []bgp.RouteChange{{Session: "p", Prefix: pfx("203.0.113.5/32")}}); err != nil {
		t.Fatal(err)
	}
	if err := flushT(t, b.Reloader()); err != nil {
		t.Fatal(err)
	}
	want, _ := Render(st(next), Options{})
	if got := b.Rendered(); got != want {
		t.Errorf("Rendered after the change:\n%s", lineDiff(want, got))
	}
	if conf, _, _ := b.Reloader().Applied(); conf != want {
		t.Errorf("applied text after the change:\n%s", lineDiff(want, conf))
	}
	if file, _ := os.ReadFile(b.Reloader().opts.Path); string(file) != want {
		t.Errorf("frr.conf after the change:\n%s", lineDiff(want, string(file)))
	}
	if got := f.count("--reload"); got != reloads {
		t.Errorf("the change ran frr-reload.py")
	}
	if st := b.Reloader().Stats(); st.Edits != 1 || b.Changes() != 1 {
		t.Errorf("stats %+v, changes %d; want one edit", st, b.Changes())
	}
	f.mu.Lock()
	calls := slices.Clone(f.calls[before:])
	f.mu.Unlock()
	// The fake names a vtysh call by its last command: the edit ends
	// with the router block's exit, and no refresh is needed (the
	// network statement is new).
	if !slices.Equal(calls, []string{"vtysh exit"}) {
		t.Errorf("FRR saw %q, want one vtysh call with the edit", calls)
	}
	if got := appliedRoutes(b); !slices.EqualFunc(got, next, bgp.Route.Equal) {
		t.Errorf("applied state %v, want %v", got, next)
	}

	// A new announcement set: a new tag, still an edit (no
	// frr-reload.py).
	tagged := slices.Clone(next)
	tagged[1].Communities = []config.Community{std(65000, 1)}
	if err := b.ApplyChanges(ctx, st(tagged), []bgp.RouteChange{{Session: "p", Prefix: pfx("203.0.113.5/32")}}); err != nil {
		t.Fatal(err)
	}
	if err := flushT(t, b.Reloader()); err != nil {
		t.Fatal(err)
	}
	want, _ = Render(st(tagged), Options{})
	if conf, _, _ := b.Reloader().Applied(); conf != want || f.count("--reload") != reloads || b.Changes() != 2 {
		t.Errorf("a new announcement set was not edited in place (%d changes):\n%s", b.Changes(), lineDiff(want, conf))
	}

	// A failed reload (a session changed: the full way): the next
	// change is not edited on top of it.
	f.set(func(f *fakeFRR) { f.failReload = true })
	other := s
	other.HoldTime = dur(9e9)
	if err := b.Apply(ctx, bgp.DesiredState{Sessions: []bgp.Session{other}, Routes: map[string][]bgp.Route{"p": next}}); err != nil {
		t.Fatal(err)
	}
	if err := flushT(t, b.Reloader()); err == nil {
		t.Fatal("the reload did not fail")
	}
	f.set(func(f *fakeFRR) { f.failReload = false })
	if err := b.ApplyChanges(ctx, st(routes), []bgp.RouteChange{{Session: "p", Prefix: pfx("203.0.113.5/32")}}); err == nil {
		t.Log("no error reported") // the failure is reported until a retry succeeds
	}
	frrtestEventually(t, func() bool {
		conf, _, _ := b.Reloader().Applied()
		w, _ := Render(st(routes), Options{})
		return conf == w
	})
	if got := b.Reloader().Stats().Edits; got != 2 {
		t.Errorf("an edit ran on top of a failed reload (%d edits)", got)
	}
}

// appliedRoutes is the routes of session p in the state FRR accepted.
func appliedRoutes(b *Backend) []bgp.Route { return b.appliedState().Routes["p"] }

func frrtestEventually(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkLiveChange10000: one route going and one coming among 10,000,
// as ApplyChanges does them (the edit, its commands and the text handed
// to the Reloader), against rendering and diffing the whole
// configuration (the full path's fast path).
func BenchmarkLiveChange10000(b *testing.B) {
	s := v4("p", "198.18.0.254")
	var rs []bgp.Route
	for i := range 10000 {
		rs = append(rs, bgp.Route{Prefix: netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, byte(i / 256), byte(i)}), 32)})
	}
	st := func(rs []bgp.Route) bgp.DesiredState {
		return bgp.DesiredState{Sessions: []bgp.Session{s}, Routes: map[string][]bgp.Route{"p": rs}}
	}
	a, c := rs[5000].Prefix, netip.MustParsePrefix("198.19.250.1/32")
	without := slices.Delete(slices.Clone(rs), 5000, 5001)
	with := slices.Insert(slices.Clone(without), insertAt(without, c), bgp.Route{Prefix: c})
	changed := []bgp.RouteChange{{Session: "p", Prefix: a}, {Session: "p", Prefix: c}}
	b.Run("ApplyChanges", func(b *testing.B) {
		r, err := render(st(rs), Options{})
		if err != nil {
			b.Fatal(err)
		}
		l := newLive(r, st(rs).Sessions, Options{})
		states := []bgp.DesiredState{st(with), st(rs)}
		i := 0
		for b.Loop() {
			if _, _, ok := l.change(states[i%2], changed); !ok {
				b.Fatal("not followed")
			}
			_ = l.text()
			i++
		}
	})
	b.Run("render and routeDelta", func(b *testing.B) {
		prev, _ := Render(st(rs), Options{})
		for b.Loop() {
			next, _ := Render(st(with), Options{})
			if _, ok := routeDelta(prev, next); !ok {
				b.Fatal("not route-only")
			}
		}
	})
}

func insertAt(rs []bgp.Route, p netip.Prefix) int {
	i, _ := slices.BinarySearchFunc(rs, p, func(r bgp.Route, p netip.Prefix) int { return bgp.ComparePrefixes(r.Prefix, p) })
	return i
}
