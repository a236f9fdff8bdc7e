package frr

import (
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/lbstack/lbstack/pkg/bgp"
)

// live is the configuration a Backend last rendered in full, kept as
// fixed text and blocks of lines (the network statements of each address
// family, one per prefix) together with the state it expresses, so that
// ApplyChanges can edit the statements of the changed prefixes and derive
// the vtysh commands for them, at a cost that grows with the changes, not
// with the table (a change that makes or ends a tag renders in full:
// rerender). Its text (joinSegments) is always what RenderState
// makes of its state: the equivalence test (TestLiveChangeEquivalence)
// holds it to that.
type live struct {
	opts Options
	// given are the sessions as the last Apply was given them.
	given []bgp.Session
	// norm is the state expressed: normalised, without skipped sessions.
	norm    bgp.DesiredState
	skipped *bgp.SkippedError
	segs    []segment
	// routerOf is each session's router, by session name; routers are
	// the routers by VRF.
	routerOf map[string]*router
	routers  map[string]*router
	// nets are the network-statement blocks by router and family.
	nets map[blockKey]*block
	// tagOf is the tag of each announcement set in use (setKey), uses
	// how many network statements carry each tag.
	tagOf map[string]uint32
	uses  map[uint32]int
}

// newLive keeps a rendering for ApplyChanges.
func newLive(r *rendering, given []bgp.Session, opts Options) *live {
	l := &live{opts: opts, given: slices.Clone(given), norm: r.norm, skipped: r.skipped, segs: r.segs,
		routerOf: map[string]*router{}, routers: map[string]*router{}, nets: map[blockKey]*block{}, tagOf: r.m.tagOf, uses: map[uint32]int{}}
	for _, s := range r.segs {
		if s.blk != nil {
			l.nets[s.blk.key] = s.blk
			for _, t := range s.blk.tags {
				l.uses[t]++
			}
		}
	}
	for _, rt := range r.m.routers {
		l.routers[rt.vrf] = rt
		for _, n := range rt.neighbors {
			l.routerOf[n.s.Name] = rt
		}
	}
	return l
}

// text is the configuration.
func (l *live) text() string { return joinSegments(l.segs) }

// index is where p is, or would go, in the block.
func (b *block) index(p netip.Prefix) (int, bool) {
	return slices.BinarySearchFunc(b.prefixes, p, bgp.ComparePrefixes)
}

func (b *block) insert(i int, p netip.Prefix, t uint32) {
	b.prefixes = slices.Insert(b.prefixes, i, p)
	b.tags = slices.Insert(b.tags, i, t)
	b.lines = slices.Insert(b.lines, i, networkLine(p, t))
}

func (b *block) retag(i int, t uint32) {
	b.tags[i] = t
	b.lines[i] = networkLine(b.prefixes[i], t)
}

func (b *block) remove(i int) {
	b.prefixes = slices.Delete(b.prefixes, i, i+1)
	b.tags = slices.Delete(b.tags, i, i+1)
	b.lines = slices.Delete(b.lines, i, i+1)
}

// netAt is one prefix of one router family.
type netAt struct {
	k blockKey
	p netip.Prefix
}

// change edits the configuration from its state to d, which differs from
// it only at the routes changed names, and returns the vtysh commands
// that make the same edit in a running FRR: for each prefix whose
// announcement set changed, `network P route-map lbs-tag-T` (new, or
// moved to another tag: FRR 8.4 re-runs the statement's route-map in
// place, without a withdraw) or `no network P`, under its router and
// address family. When every tag the edit uses is in use already and
// none loses its last prefix, that is all, it goes to bgpd alone, and
// the blocks are edited in place; otherwise (rerender) the route-map
// entries of the tags made or ended come first or last. No soft refresh
// is needed: each statement edited re-evaluates its own route through
// the route-maps OUT, and the entries added or removed match no other
// route (refresh stays in the signature for the Reloader). ok is false,
// with nothing changed, when d cannot be reached that way: the sessions
// differ, a named route is not normal or belongs to a session left out,
// or a new set's tag collides and would renumber a tag in use.
func (l *live) change(d bgp.DesiredState, changed []bgp.RouteChange) (cmds, refresh []string, ok bool) {
	if !slices.EqualFunc(d.Sessions, l.given, func(x, y bgp.Session) bool { return x.Equal(&y) }) {
		return nil, nil, false
	}
	routes := maps.Clone(l.norm.Routes)
	seen := make(map[bgp.RouteChange]bool, len(changed))
	var ats []netAt
	atSeen := map[netAt]bool{}
	for _, c := range changed {
		if seen[c] {
			continue
		}
		seen[c] = true
		rt := l.routerOf[c.Session]
		if rt == nil {
			return nil, nil, false
		}
		var s *bgp.Session
		for _, n := range rt.neighbors {
			if n.s.Name == c.Session {
				s = &n.s
			}
		}
		nr, hasNew := findRoute(d.Routes[c.Session], c.Prefix)
		if hasNew {
			m := bgp.MergeRoutes([]bgp.Route{nr}, s.IBGP())
			if !nr.Prefix.IsValid() || nr.Prefix != nr.Prefix.Masked() || !s.Carries(nr.Prefix) || len(m) != 1 || !m[0].Equal(nr) {
				return nil, nil, false
			}
		}
		if rs := d.Routes[c.Session]; len(rs) > 0 {
			routes[c.Session] = rs
		} else {
			delete(routes, c.Session)
		}
		at := netAt{blockKey{vrf: rt.vrf, v6: c.Prefix.Addr().Is6()}, c.Prefix}
		if l.nets[at.k] == nil {
			return nil, nil, false
		}
		if !atSeen[at] {
			atSeen[at] = true
			ats = append(ats, at)
		}
	}

	// Each prefix's tag before and after.
	type edit struct {
		at       netAt
		old, new uint32 // 0: no network statement
	}
	var edits []edit
	uses := map[uint32]int{}
	for _, at := range ats {
		e := edit{at: at}
		blk := l.nets[at.k]
		if i, found := blk.index(at.p); found {
			e.old = blk.tags[i]
		}
		rt := l.routers[at.k.vrf]
		if key, any := prefixSetKey(rt.neighbors, routes, at.p); any {
			t, known := l.tagOf[key]
			if !known {
				return l.rerender(d)
			}
			e.new = t
		}
		if e.old == e.new {
			continue
		}
		if e.old != 0 {
			uses[e.old]--
		}
		if e.new != 0 {
			uses[e.new]++
		}
		edits = append(edits, e)
	}
	for t, u := range uses {
		if l.uses[t]+u <= 0 {
			// The tag's last prefix goes: its route-maps go too.
			return l.rerender(d)
		}
	}

	// From here on nothing fails: edit.
	for t, u := range uses {
		l.uses[t] += u
	}
	l.norm.Routes = routes
	set, unset := map[string][]string{}, map[string][]string{}
	for _, e := range edits {
		blk := l.nets[e.at.k]
		i, found := blk.index(e.at.p)
		ctx := routerCmd(l.routers[e.at.k.vrf]) + "\n" + afCmd(e.at.k.v6)
		switch {
		case e.new == 0:
			blk.remove(i)
			unset[ctx] = append(unset[ctx], "no network "+e.at.p.String())
		case found:
			blk.retag(i, e.new)
			set[ctx] = append(set[ctx], strings.TrimSpace(blk.lines[i]))
		default:
			blk.insert(i, e.at.p, e.new)
			set[ctx] = append(set[ctx], strings.TrimSpace(blk.lines[i]))
		}
	}
	cmds = append(familyCmds(set), familyCmds(unset)...)
	return cmds, nil, true
}

// rerender follows a change that makes or ends an announcement set: the
// tags and route-map entries change (and, should tags collide, their
// numbers), which the blocks do not hold, so the state is rendered in
// full and the commands are routeDelta's of the two texts: the new
// tags' route-map entries, the network statements, the gone tags'
// entries - still no frr-reload.py. This costs a render (30 ms at 10,000
// routes), which a change under the tags in use does not.
func (l *live) rerender(d bgp.DesiredState) (cmds, refresh []string, ok bool) {
	r, err := render(d, l.opts)
	if err != nil || skippedText(r.skipped) != skippedText(l.skipped) || !givenNormal(d, r.norm) {
		return nil, nil, false
	}
	cmds, ok = routeDelta(l.text(), joinSegments(r.segs))
	if !ok {
		return nil, nil, false
	}
	*l = *newLive(r, l.given, l.opts)
	return cmds, nil, true
}

func skippedText(s *bgp.SkippedError) string {
	if s == nil {
		return ""
	}
	return s.Error()
}

// familyCmds writes network statements under their router and address
// family (ctx: the two lines), as networkCmds does.
func familyCmds(by map[string][]string) []string {
	var out []string
	for _, ctx := range slices.Sorted(maps.Keys(by)) {
		lines := by[ctx]
		slices.Sort(lines)
		router, af, _ := strings.Cut(ctx, "\n")
		out = append(out, router, af)
		out = append(out, lines...)
		out = append(out, "exit-address-family", "exit")
	}
	return out
}

func routerCmd(r *router) string {
	if r.vrf == "" {
		return "router bgp " + uitoa(r.asn)
	}
	return "router bgp " + uitoa(r.asn) + " vrf " + r.vrf
}

func afCmd(v6 bool) string {
	if v6 {
		return "address-family ipv6 unicast"
	}
	return "address-family ipv4 unicast"
}

// findRoute finds the route of prefix p in routes sorted by prefix.
func findRoute(routes []bgp.Route, p netip.Prefix) (bgp.Route, bool) {
	i, ok := slices.BinarySearchFunc(routes, p, func(r bgp.Route, p netip.Prefix) int { return bgp.ComparePrefixes(r.Prefix, p) })
	if !ok {
		return bgp.Route{}, false
	}
	return routes[i], true
}

func uitoa(v uint32) string { return strconv.FormatUint(uint64(v), 10) }
