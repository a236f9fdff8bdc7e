package frr

// Backend.ApplyChanges against a real FRR (the node FRR of nodeFRR,
// peering with the lab's router): random steps, after each of which the
// router holds exactly the state's routes, with their communities, from
// each peer; no step runs frr-reload.py, whether it moves routes under
// the announcement sets (route tags) in use or makes new ones. The node's FRR starts with a configuration of the
// layout before route tags (prefix lists): the first Apply must replace
// it. Needs root and Debian's frr and frr-pythontools.

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
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

func TestApplyChangesWithFRR(t *testing.T) {
	if testing.Short() {
		t.Skip("starts FRR daemons; skipped with -short")
	}
	needReloadScript(t)
	lab := frrtest.Start(t, "")
	dir := nodeFRR(t, lab)
	r := lab.Router()
	vtysh := func(cmds ...string) string { return frrtest.VtyshAt(t, dir, cmds...) }

	// FRR 8.4 takes tags 1..4294967295 in `set tag` and `match tag`,
	// the range homeTag hashes into.
	t.Run("tag range", func(t *testing.T) {
		for tag, ok := range map[string]bool{"0": false, "1": true, "4294967295": true, "4294967296": false} {
			for _, c := range []string{"set tag " + tag, "match tag " + tag} {
				out, err := exec.Command("vtysh", "--vty_socket", dir, "-c", "configure terminal",
					"-c", "route-map lbs-tag-check permit 10", "-c", c).CombinedOutput()
				if refused := err != nil || strings.Contains(string(out), "%"); refused == ok {
					t.Errorf("%s: vtysh said %q (%v), want it %s", c, out, err, map[bool]string{true: "taken", false: "refused"}[ok])
				}
				if ok && !strings.Contains(vtysh("show running-config"), " "+c+"\n") {
					t.Errorf("%s taken but not in the running configuration", c)
				}
				vtysh("configure terminal", "no route-map lbs-tag-check")
			}
		}
	})

	// The layout before route tags, as an older speaker left it: a
	// prefix list per attribute set, matched by the route-map OUT, and
	// network statements without route-maps.
	old := filepath.Join(dir, "old.conf")
	if err := os.WriteFile(old, []byte(`ip prefix-list lbs-r4-10 seq 5 permit 198.51.100.0/24
ip prefix-list lbs-r4-10 seq 6 permit 192.0.2.0/24
route-map lbs-r4-out permit 10
 match ip address prefix-list lbs-r4-10
 set community 65000:99 additive
exit
route-map lbs-r4-out deny 65535
exit
route-map lbs-r4-in deny 10
exit
router bgp `+fmt.Sprint(frrtest.NodeAS)+`
 bgp router-id `+frrtest.NodeV4+`
 no bgp ebgp-requires-policy
 no bgp default ipv4-unicast
 no bgp network import-check
 neighbor `+frrtest.RouterV4+` remote-as `+fmt.Sprint(frrtest.RouterAS)+`
 neighbor `+frrtest.RouterV4+` timers connect 1
 address-family ipv4 unicast
  network 198.51.100.0/24
  network 192.0.2.0/24
  neighbor `+frrtest.RouterV4+` activate
  neighbor `+frrtest.RouterV4+` route-map lbs-r4-in in
  neighbor `+frrtest.RouterV4+` route-map lbs-r4-out out
 exit-address-family
exit
`), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("vtysh", "--vty_socket", dir, "-f", old).CombinedOutput(); err != nil || strings.Contains(string(out), "%") {
		t.Fatalf("the old layout: %v\n%s", err, out)
	}
	frrtest.Eventually(t, 60*time.Second, "the old layout announces", func() string {
		if c := r.Paths("192.0.2.0/24")[frrtest.NodeV4].Communities(); c != "65000:99" {
			return fmt.Sprintf("192.0.2.0/24 communities %q", c)
		}
		return ""
	})

	var python atomic.Int64
	execSeam := func(ctx context.Context, name string, args ...string) ([]byte, error) {
		if filepath.Base(name) == "python3" {
			python.Add(1)
		}
		return runCommand(ctx, name, args...)
	}
	fwd4, fwd6 := nsForwarding(t, lab.NodeNS)
	b, err := NewBackend(BackendOptions{
		Render: Options{Hostname: "lbs-node", IPForwarding: fwd4, IPv6Forwarding: fwd6},
		Reloader: ReloaderOptions{Path: filepath.Join(dir, "frr.conf"), VtySocket: dir, Debounce: 20 * time.Millisecond,
			Log: testr.NewWithOptions(t, testr.Options{Verbosity: 0}), Exec: execSeam},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx := context.Background()
	flush := func(what string) {
		t.Helper()
		fctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := b.Reloader().Flush(fctx); err != nil {
			t.Fatalf("%s: reload: %v", what, err)
		}
	}
	const wait = 30 * time.Second

	s4 := bgp.Session{Name: "r4", MyASN: frrtest.NodeAS, PeerASN: frrtest.RouterAS,
		PeerAddr: addr(frrtest.RouterV4), Port: 179, RouterID: addr(frrtest.NodeV4), ConnectTime: dur(time.Second)}
	s6 := s4
	s6.Name, s6.PeerAddr, s6.PeerASN = "r6", addr(frrtest.RouterV6), 0
	s6.DynamicASN = "external"
	sessions := []bgp.Session{s4, s6}
	peerOf := map[string]string{"r4": frrtest.NodeV4, "r6": frrtest.NodeV6}
	// Each session's attribute sets: the first two are in use from the
	// start, each kept in use by an anchor route no step touches; the
	// third is new.
	sets := map[string][][]config.Community{
		"r4": {nil, {std(65000, 4)}, {std(65000, 44), large(64512, 4, 4)}},
		"r6": {{std(65000, 6)}, nil, {std(65000, 66)}},
	}
	anchors := map[string][]netip.Prefix{
		"r4": {pfx("198.51.100.0/24"), pfx("198.51.100.128/25")},
		"r6": {pfx("2001:db8:6::/64"), pfx("2001:db8:6:1::/64")},
	}
	pool := map[string][]netip.Prefix{}
	for i := range 16 {
		pool["r4"] = append(pool["r4"], pfx(fmt.Sprintf("203.0.113.%d/32", 100+i*3)))
		pool["r6"] = append(pool["r6"], pfx(fmt.Sprintf("2001:db8:7::%x/128", 100+i*3)))
	}
	routes := map[string][]bgp.Route{}
	put := func(name string, p netip.Prefix, set int) {
		rs := slices.Clone(routes[name])
		i, found := slices.BinarySearchFunc(rs, p, func(r bgp.Route, p netip.Prefix) int { return bgp.ComparePrefixes(r.Prefix, p) })
		r := bgp.Route{Prefix: p, Communities: sets[name][max(set, 0)]}
		switch {
		case found && set >= 0:
			rs[i] = r
		case found:
			rs = slices.Delete(rs, i, i+1)
		case set >= 0:
			rs = slices.Insert(rs, i, r)
		}
		routes[name] = rs
	}
	first := func() {
		routes = map[string][]bgp.Route{}
		for _, name := range []string{"r4", "r6"} {
			for i, p := range anchors[name] {
				put(name, p, i)
			}
			for i, p := range pool[name][:8] {
				put(name, p, i%2)
			}
		}
	}
	state := func() bgp.DesiredState { return bgp.DesiredState{Sessions: sessions, Routes: maps.Clone(routes)} }
	// check compares the router's paths of the prefixes with the state.
	check := func(what string, prefixes []netip.Prefix) {
		t.Helper()
		frrtest.Eventually(t, wait, what, func() string {
			for _, p := range prefixes {
				have := map[string]string{}
				for peer, path := range r.Paths(p.String()) {
					have[peer] = strings.TrimSpace(path.Communities() + " " + path.Large())
				}
				want := map[string]string{}
				for name, rs := range routes {
					if rt, ok := findRoute(rs, p); ok {
						std, large := splitComms(rt.Communities)
						want[peerOf[name]] = strings.TrimSpace(std + " " + large)
					}
				}
				if !reflect.DeepEqual(have, want) {
					return fmt.Sprintf("%s: router has %v (peer: communities), want %v", p, have, want)
				}
			}
			return ""
		})
	}
	var all []netip.Prefix
	for _, name := range []string{"r4", "r6"} {
		all = append(all, anchors[name]...)
		all = append(all, pool[name]...)
	}

	first()
	if err := b.Apply(ctx, state()); err != nil {
		t.Fatal(err)
	}
	flush("the first state")
	frrtest.Eventually(t, 60*time.Second, "sessions established", func() string {
		for _, a := range []string{frrtest.NodeV4, frrtest.NodeV6} {
			if st := r.Neighbor(a).State; st != "Established" {
				return fmt.Sprintf("%s is %q", a, st)
			}
		}
		return ""
	})
	// The old layout is gone: its prefix lists and its prefix.
	all = append(all, pfx("192.0.2.0/24"))
	check("the first state", all)
	if conf := vtysh("show running-config"); strings.Contains(conf, "prefix-list") {
		t.Errorf("the old layout's prefix lists are left:\n%s", conf)
	}
	conns := r.Neighbor(frrtest.NodeV4).ConnectionsEstablished

	rng := rand.New(rand.NewPCG(21, 5))
	edited, newSets := 0, 0
	for step := range 40 {
		var changed []bgp.RouteChange
		var touched []netip.Prefix
		// Kinds: 0-5 announce or withdraw under a set in use, 6 give a
		// route the other set in use, 7 a new set.
		kind := rng.IntN(8)
		for range 1 + rng.IntN(3) {
			name := []string{"r4", "r6"}[rng.IntN(2)]
			p := pool[name][rng.IntN(len(pool[name]))]
			_, had := findRoute(routes[name], p)
			switch {
			case kind < 6 && had:
				put(name, p, -1)
			case kind < 7:
				put(name, p, rng.IntN(2))
			default:
				put(name, p, 2)
			}
			changed = append(changed, bgp.RouteChange{Session: name, Prefix: p})
			touched = append(touched, p)
		}
		py, changes := python.Load(), b.Changes()
		if err := b.ApplyChanges(ctx, state(), changed); err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
		flush(fmt.Sprintf("step %d", step))
		check(fmt.Sprintf("step %d (kind %d, changes %v)", step, kind, changed), touched)
		if b.Changes() == changes || python.Load() != py {
			t.Errorf("step %d (kind %d): the change was rendered in full or ran frr-reload.py", step, kind)
		}
		if kind < 7 {
			edited++
			continue
		}
		newSets++
		// Back to the first state through Apply: the reloader's fast
		// path (routeDelta) takes the new set's tag out, again without
		// frr-reload.py.
		first()
		if err := b.Apply(ctx, state()); err != nil {
			t.Fatal(err)
		}
		flush(fmt.Sprintf("step %d: back to the first state", step))
		check(fmt.Sprintf("step %d: back to the first state", step), all)
		if python.Load() != py {
			t.Errorf("step %d: back to the first state ran frr-reload.py", step)
		}
	}
	check("the whole table at the end", all)
	t.Logf("%d steps under the sets in use, %d with a new set; reloader %+v", edited, newSets, b.Reloader().Stats())

	// FRR runs exactly the rendered network statements and tags: none
	// duplicated, missing or left over; the file holds the same text.
	want, err := Render(state(), Options{Hostname: "lbs-node", IPForwarding: fwd4, IPv6Forwarding: fwd6})
	if err != nil {
		t.Fatal(err)
	}
	lines := func(conf string) []string {
		var out []string
		for _, l := range strings.Split(conf, "\n") {
			l = strings.TrimSpace(l)
			for _, p := range []string{"network ", "route-map lbs-", "set tag ", "match tag "} {
				if strings.HasPrefix(l, p) {
					out = append(out, l)
				}
			}
		}
		slices.Sort(out)
		return out
	}
	if got := lines(vtysh("show running-config")); !slices.Equal(got, lines(want)) {
		t.Errorf("FRR's network statements and tags:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(lines(want), "\n"))
	}
	// bgpd has them, zebra the route-maps; no daemon has a prefix list.
	for _, d := range []string{"zebra", "bgpd", "bfdd"} {
		s, err := dialVty(dir, d, time.Now().Add(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if err := expect(s, "enable"); err != nil {
			t.Fatal(err)
		}
		out, _, err := s.run("show running-config")
		_ = s.c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if d == "bgpd" {
			if got := lines(out); !slices.Equal(got, lines(want)) {
				t.Errorf("bgpd's network statements and tags:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(lines(want), "\n"))
			}
		}
		// zebra keeps the route-maps too, with the lines it knows (the
		// edits went to its socket, as vtysh would have sent them).
		if d == "zebra" {
			maps := func(ls []string) []string {
				return slices.DeleteFunc(ls, func(l string) bool { return strings.HasPrefix(l, "network ") })
			}
			if got := maps(lines(out)); !slices.Equal(got, maps(lines(want))) {
				t.Errorf("zebra's route-maps:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(maps(lines(want)), "\n"))
			}
		}
		if strings.Contains(out, "prefix-list") {
			t.Errorf("%s has prefix lists:\n%s", d, out)
		}
	}
	if file, _ := os.ReadFile(filepath.Join(dir, "frr.conf")); string(file) != want {
		t.Errorf("frr.conf is not the rendered state:\n%s", lineDiff(want, string(file)))
	}
	// A full reload (a session's connect timer changes) giving every
	// route of a set new attributes (a new tag for each): the routes move
	// to it in place (retagFirst), none is withdrawn for a moment, as
	// frr-reload.py alone would do.
	first()
	if err := b.Apply(ctx, state()); err != nil {
		t.Fatal(err)
	}
	flush("back to the first state")
	check("back to the first state", all)
	var v4 []string
	for _, rt := range routes["r4"] {
		v4 = append(v4, rt.Prefix.String())
	}
	sets["r4"][0] = []config.Community{std(65000, 40)}
	sets["r4"][1] = []config.Community{std(65000, 41)}
	sessions[0].ConnectTime = dur(2 * time.Second)
	first()
	stop := make(chan struct{})
	missing := make(chan string, 1)
	go func() {
		defer close(missing)
		for {
			select {
			case <-stop:
				return
			default:
			}
			have := r.Prefixes("ipv4")
			for _, p := range v4 {
				if !have[p] {
					missing <- p
					return
				}
			}
		}
	}()
	py := python.Load()
	if err := b.Apply(ctx, state()); err != nil {
		t.Fatal(err)
	}
	flush("new attributes for every route")
	check("new attributes for every route", all)
	close(stop)
	if p, ok := <-missing; ok {
		t.Errorf("%s was withdrawn while it moved to its new tag", p)
	}
	if python.Load() == py {
		t.Errorf("new tags did not go through frr-reload.py")
	}
	want, err = Render(state(), Options{Hostname: "lbs-node", IPForwarding: fwd4, IPv6Forwarding: fwd6})
	if err != nil {
		t.Fatal(err)
	}
	if got := lines(vtysh("show running-config")); !slices.Equal(got, lines(want)) {
		t.Errorf("after the new tags, FRR's network statements and tags:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(lines(want), "\n"))
	}

	// The reloader's status, read from the daemons' sockets.
	snap, peers, bfdErr := b.Snapshot()
	if len(snap) != 2 || snap[0].State != bgp.StateEstablished || snap[1].State != bgp.StateEstablished ||
		snap[0].Advertised == 0 || snap[0].UpdatesSent == 0 || bfdErr != nil || len(peers) != 0 {
		t.Errorf("Snapshot: sessions %+v, BFD peers %+v, %v; want both Established, announcing, no BFD", snap, peers, bfdErr)
	}
	if after := r.Neighbor(frrtest.NodeV4).ConnectionsEstablished; after != conns {
		t.Errorf("connectionsEstablished %d -> %d: route changes reset the session", conns, after)
	}
}

// splitComms is communities as the router's JSON prints them.
func splitComms(cs []config.Community) (std, large string) {
	s, l := config.SplitCommunities(cs)
	return strings.Join(s, " "), strings.Join(l, " ")
}
