package frr

import (
	"cmp"
	"maps"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/lbstack/lbstack/pkg/bgp"
)

// live is the configuration a Backend last rendered in full, kept as
// fixed text and blocks of lines (one line per prefix) together with the
// state it expresses, so that ApplyChanges can edit the blocks of the
// changed prefixes and derive the vtysh commands for them, at a cost that
// grows with the changes, not with the table. Its text (joinSegments)
// is always what RenderState makes of its state: the equivalence test
// (TestLiveChangeEquivalence) holds it to that.
type live struct {
	opts Options
	// given are the sessions as the last Apply was given them.
	given []bgp.Session
	// norm is the state expressed: normalised, without skipped sessions.
	norm    bgp.DesiredState
	skipped *bgp.SkippedError
	segs    []segment
	// neighbors by session name.
	neighbors map[string]*liveNeighbor
	// nets are the network-statement blocks by router and family.
	nets map[blockKey]*block
}

// liveNeighbor is one session of a live configuration.
type liveNeighbor struct {
	n *neighbor
	r *router
	// lists are the session's prefix lists by the attributes they carry.
	lists map[groupKey]*liveList
}

// liveList is one prefix list: its block, and the sequence numbers of its
// entries (parallel to the block's prefixes and lines).
type liveList struct {
	blk   *block
	seqs  []uint32
	bySeq map[uint32]netip.Prefix
	// displaced are the entries not at their homeSeq (collisions), with
	// their numbers: removing an entry their probe passed over would
	// move them.
	displaced map[netip.Prefix]uint32
}

// newLive keeps a rendering for ApplyChanges.
func newLive(r *rendering, given []bgp.Session, opts Options) *live {
	blocks := map[blockKey]*block{}
	for _, s := range r.segs {
		if s.blk != nil {
			blocks[s.blk.key] = s.blk
		}
	}
	l := &live{opts: opts, given: slices.Clone(given), norm: r.norm, skipped: r.skipped, segs: r.segs,
		neighbors: map[string]*liveNeighbor{}, nets: map[blockKey]*block{}}
	for k, b := range blocks {
		if k.net {
			l.nets[k] = b
		}
	}
	for _, rt := range r.m.routers {
		for _, n := range rt.neighbors {
			ln := &liveNeighbor{n: n, r: rt, lists: map[groupKey]*liveList{}}
			for _, g := range n.groups {
				ll := &liveList{blk: blocks[blockKey{list: n.listCmd(g)}], seqs: g.seqs, bySeq: make(map[uint32]netip.Prefix, len(g.seqs))}
				for i, p := range g.prefixes {
					ll.bySeq[g.seqs[i]] = p
					if g.seqs[i] != homeSeq(p) {
						if ll.displaced == nil {
							ll.displaced = map[netip.Prefix]uint32{}
						}
						ll.displaced[p] = g.seqs[i]
					}
				}
				ln.lists[groupKey{v6: g.v6, comms: commKey(g.comms), localPref: g.localPref}] = ll
			}
			l.neighbors[n.s.Name] = ln
		}
	}
	return l
}

// text is the configuration.
func (l *live) text() string { return joinSegments(l.segs) }

// seqDist is how far b lies after a in the cyclic order of probing.
func seqDist(a, b uint32) uint64 {
	const n = uint64(maxPrefixSeq - minPrefixSeq + 1)
	return (uint64(b-minPrefixSeq) + n - uint64(a-minPrefixSeq)) % n
}

// movesOthers reports whether removing the entry at seq would move
// another entry: one whose probe from its home passed over seq.
func (ll *liveList) movesOthers(p netip.Prefix, seq uint32) bool {
	for q, s := range ll.displaced {
		if q != p && seqDist(homeSeq(q), seq) < seqDist(homeSeq(q), s) {
			return true
		}
	}
	return false
}

// index is where p is, or would go, in the list.
func (b *block) index(p netip.Prefix) (int, bool) {
	return slices.BinarySearchFunc(b.prefixes, p, bgp.ComparePrefixes)
}

func (b *block) insert(i int, p netip.Prefix, line string) {
	b.prefixes = slices.Insert(b.prefixes, i, p)
	b.lines = slices.Insert(b.lines, i, line)
}

func (b *block) remove(i int) {
	b.prefixes = slices.Delete(b.prefixes, i, i+1)
	b.lines = slices.Delete(b.lines, i, i+1)
}

// routeOp is one changed route of one session.
type routeOp struct {
	ln               *liveNeighbor
	p                netip.Prefix
	oldList, newList *liveList
}

// listEntry is one prefix-list line with its list and number (for the
// order of routeDelta's commands).
type listEntry struct {
	list string
	seq  uint32
	line string
}

// change edits the configuration from its state to d, which differs from
// it only at the routes changed names, and returns the vtysh commands
// that make the same edit in a running FRR, in routeDelta's gap-free
// order (new prefix-list entries, new network statements, network
// statements gone, entries gone), and the soft refreshes the edit needs
// (`clear bgp ... PEER soft out` for a session whose list changed under a
// network statement that stays: FRR 8.4 does not re-run the outbound
// route-map then). ok is false, with nothing changed, when d cannot be
// reached that way: the sessions differ, a named route is not normal or
// belongs to a session left out, it needs an attribute set (a prefix
// list, a route-map entry) the session does not have, it would empty one,
// or a sequence number would collide.
func (l *live) change(d bgp.DesiredState, changed []bgp.RouteChange) (cmds, refresh []string, ok bool) {
	if !slices.EqualFunc(d.Sessions, l.given, func(x, y bgp.Session) bool { return x.Equal(&y) }) {
		return nil, nil, false
	}
	var ops []routeOp
	seen := make(map[bgp.RouteChange]bool, len(changed))
	size := map[*liveList]int{}
	claimed := map[*liveList]map[uint32]bool{}
	for _, c := range changed {
		if seen[c] {
			continue
		}
		seen[c] = true
		ln := l.neighbors[c.Session]
		if ln == nil {
			return nil, nil, false
		}
		s := &ln.n.s
		nr, hasNew := findRoute(d.Routes[c.Session], c.Prefix)
		if hasNew {
			m := bgp.MergeRoutes([]bgp.Route{nr}, s.IBGP())
			if !nr.Prefix.IsValid() || nr.Prefix != nr.Prefix.Masked() || !s.Carries(nr.Prefix) || len(m) != 1 || !m[0].Equal(nr) {
				return nil, nil, false
			}
		}
		or, hadOld := findRoute(l.norm.Routes[c.Session], c.Prefix)
		if hadOld == hasNew && (!hadOld || or.Equal(nr)) {
			continue
		}
		op := routeOp{ln: ln, p: c.Prefix}
		if hadOld {
			op.oldList = ln.lists[keyOf(or)]
			if op.oldList == nil {
				return nil, nil, false
			}
			i, found := op.oldList.blk.index(c.Prefix)
			if !found || op.oldList.movesOthers(c.Prefix, op.oldList.seqs[i]) {
				return nil, nil, false
			}
			if _, ok := size[op.oldList]; !ok {
				size[op.oldList] = len(op.oldList.seqs)
			}
			size[op.oldList]--
		}
		if hasNew {
			op.newList = ln.lists[keyOf(nr)]
			if op.newList == nil {
				return nil, nil, false
			}
			h := homeSeq(c.Prefix)
			if _, taken := op.newList.bySeq[h]; taken || claimed[op.newList][h] {
				return nil, nil, false
			}
			if claimed[op.newList] == nil {
				claimed[op.newList] = map[uint32]bool{}
			}
			claimed[op.newList][h] = true
			if _, ok := size[op.newList]; !ok {
				size[op.newList] = len(op.newList.seqs)
			}
			size[op.newList]++
		}
		ops = append(ops, op)
	}
	for _, n := range size {
		if n == 0 {
			// The attribute set's last route goes: its route-map entry
			// and list go too, which is the full path's.
			return nil, nil, false
		}
	}

	// Whether each router family announces a prefix, before and after.
	type netAt struct {
		k blockKey
		p netip.Prefix
	}
	netBefore := map[netAt]bool{}
	for _, op := range ops {
		k := blockKey{vrf: op.ln.r.vrf, v6: op.p.Addr().Is6(), net: true}
		if l.nets[k] == nil {
			return nil, nil, false
		}
		if _, done := netBefore[netAt{k, op.p}]; !done {
			_, netBefore[netAt{k, op.p}] = l.nets[k].index(op.p)
		}
	}

	// From here on nothing fails: edit.
	var writes, deletes []listEntry
	for _, op := range ops {
		if ll := op.oldList; ll != nil {
			i, _ := ll.blk.index(op.p)
			deletes = append(deletes, listEntry{ll.blk.key.list, ll.seqs[i], ll.blk.lines[i]})
			delete(ll.bySeq, ll.seqs[i])
			delete(ll.displaced, op.p)
			ll.blk.remove(i)
			ll.seqs = slices.Delete(ll.seqs, i, i+1)
		}
		if ll := op.newList; ll != nil {
			i, _ := ll.blk.index(op.p)
			seq := homeSeq(op.p)
			line := prefixListLine(ll.blk.key.list, seq, op.p)
			writes = append(writes, listEntry{ll.blk.key.list, seq, line})
			ll.blk.insert(i, op.p, line)
			ll.seqs = slices.Insert(ll.seqs, i, seq)
			ll.bySeq[seq] = op.p
		}
	}
	l.norm.Routes = maps.Clone(l.norm.Routes)
	for c := range seen {
		if rs := d.Routes[c.Session]; len(rs) > 0 {
			l.norm.Routes[c.Session] = rs
		} else {
			delete(l.norm.Routes, c.Session)
		}
	}
	adds, removes := map[string][]string{}, map[string][]string{}
	refreshed := map[string]bool{}
	for at, before := range netBefore {
		after := false
		for _, ln := range l.neighbors {
			if ln.r.vrf == at.k.vrf {
				if _, ok := findRoute(l.norm.Routes[ln.n.s.Name], at.p); ok {
					after = true
					break
				}
			}
		}
		blk := l.nets[at.k]
		ctx := routerCmd(l.routerOf(at.k.vrf)) + "\n" + afCmd(at.k.v6)
		switch {
		case after && !before:
			i, _ := blk.index(at.p)
			blk.insert(i, at.p, networkLine(at.p))
			adds[ctx] = append(adds[ctx], strings.TrimSpace(networkLine(at.p)))
		case before && !after:
			i, _ := blk.index(at.p)
			blk.remove(i)
			removes[ctx] = append(removes[ctx], "no "+strings.TrimSpace(networkLine(at.p)))
		case before && after:
			// The network statement stays: the sessions whose lists
			// changed must re-run their route-map.
			for _, op := range ops {
				if op.p == at.p && op.ln.r.vrf == at.k.vrf {
					refreshed[refreshCmd(op.ln.n, at.k.v6)] = true
				}
			}
		}
	}
	slices.SortFunc(writes, func(a, b listEntry) int {
		if c := cmp.Compare(a.list, b.list); c != 0 {
			return c
		}
		return cmp.Compare(b.seq, a.seq)
	})
	slices.SortFunc(deletes, func(a, b listEntry) int {
		if c := cmp.Compare(a.list, b.list); c != 0 {
			return c
		}
		return cmp.Compare(a.seq, b.seq)
	})
	for _, e := range writes {
		cmds = append(cmds, e.line)
	}
	cmds = append(cmds, familyCmds(adds)...)
	cmds = append(cmds, familyCmds(removes)...)
	for _, e := range deletes {
		cmds = append(cmds, "no "+e.line)
	}
	refresh = slices.Sorted(maps.Keys(refreshed))
	return cmds, refresh, true
}

func (l *live) routerOf(vrf string) *router {
	for _, ln := range l.neighbors {
		if ln.r.vrf == vrf {
			return ln.r
		}
	}
	return nil
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

// refreshCmd re-runs a session's outbound policy of one family without
// resetting it.
func refreshCmd(n *neighbor, v6 bool) string {
	vrf := ""
	if n.s.VRF != "" {
		vrf = "vrf " + n.s.VRF + " "
	}
	afi := "ipv4"
	if v6 {
		afi = "ipv6"
	}
	return "clear bgp " + vrf + afi + " unicast " + n.s.PeerAddr.String() + " soft out"
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
