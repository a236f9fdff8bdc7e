package frr

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"

	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/community"
)

// Route tags. Which session announces a prefix, and with what, is
// expressed by a route tag rather than by prefix lists: the prefix's
// `network` statement names a route-map `lbs-tag-T` that sets tag T, and
// each session's route-map OUT has an entry `match tag T` (with the
// session's communities and local preference for it) for every tag it
// announces. T stands for the prefix's announcement set: the sessions of
// its VRF that announce it, each with the attributes it gives it, and its
// family (the entries set the family's next hop). Prefixes with the same
// set share a tag.
//
// Why not prefix lists (MetalLB's layout, and ours before): FRR 8.4 keeps
// prefix lists in its northbound configuration, in every daemon with
// route-maps (zebra, bgpd, bfdd), and each entry added or removed costs
// each of them a commit that walks the whole configuration, ~7 ms per
// daemon at 2,000 entries and quadratic in a first load. `network`
// statements live in bgpd alone, outside the northbound tree (0.3 ms at
// 10,000), so a Service coming or going under an announcement set in use
// is one bgpd command; route-maps (northbound too) change only when a set
// appears or goes, and there are few of them.

const (
	// FRR 8.4's `set tag` and `match tag` take 1..4294967295 (a lab test
	// checks it: TestApplyChangesWithFRR).
	minTag = 1
	maxTag = 4294967295
	// maxEntrySeq is the last sequence number of a tag's entry in a
	// route-map OUT; maxRouteMapSeq is its final deny.
	maxEntrySeq = maxRouteMapSeq - 1
)

// tagMapPrefix names the route-maps that set a tag: lbs-tag-T. Session
// route-maps end in -in or -out, so they never take such a name.
const tagMapPrefix = "lbs-tag-"

func tagMap(t uint32) string { return tagMapPrefix + uitoa(t) }

// Tag numbers and route-map sequence numbers are hashes, so a set coming
// or going never renumbers another (a renumbered tag would rewrite every
// network statement of its prefixes): a set's tag is FNV-1a of its key
// (homeTag), an entry's sequence number follows from its tag
// (homeEntrySeq). Collisions probe: in key order (tags) or tag order
// (sequence numbers), each takes the first free number from its home on,
// wrapping, so only colliding ones ever move, and ApplyChanges leaves
// whatever might move to a full render.

// homeTag is the preferred tag of an announcement set (fnvTag; tests put
// a hash with many collisions in its place).
var homeTag = fnvTag

func fnvTag(key string) uint32 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(key); i++ {
		h = (h ^ uint64(key[i])) * prime
	}
	return uint32(h%maxTag) + minTag
}

// homeEntrySeq is the preferred sequence number of tag t's entry in a
// route-map OUT.
func homeEntrySeq(t uint32) int { return int(t%maxEntrySeq) + 1 }

// setKeyStart begins the key of p's announcement set: its family.
func setKeyStart(p netip.Prefix) []byte {
	b := make([]byte, 0, 64)
	if p.Addr().Is6() {
		return append(b, '6')
	}
	return append(b, '4')
}

// appendSetEntry adds one session announcing the prefix, with the
// route it announces, to a set's key. Sessions are added in name order.
func appendSetEntry(b []byte, session string, r bgp.Route) []byte {
	b = append(b, 0)
	b = append(b, session...)
	b = append(b, 0)
	b = append(b, commKey(r.Communities)...)
	b = append(b, 0)
	return strconv.AppendUint(b, uint64(r.LocalPref), 10)
}

// prefixSetKey is the key of p's announcement set among neighbors (one
// router's, sorted by name as Normalize sorts sessions) given their
// routes; ok is false when none
// announces p.
func prefixSetKey(neighbors []*neighbor, routes map[string][]bgp.Route, p netip.Prefix) (key string, ok bool) {
	b := setKeyStart(p)
	for _, n := range neighbors {
		if r, found := findRoute(routes[n.s.Name], p); found {
			b, ok = appendSetEntry(b, n.s.Name, r), true
		}
	}
	return string(b), ok
}

// numberTags gives each set key its tag: its home, or on a collision the
// first free number after it, in key order.
func numberTags(keys []string) map[string]uint32 {
	slices.Sort(keys)
	out := make(map[string]uint32, len(keys))
	used := make(map[uint32]bool, len(keys))
	for _, k := range keys {
		t := homeTag(k)
		for used[t] {
			if t == maxTag {
				t = minTag
			} else {
				t++
			}
		}
		used[t] = true
		out[k] = t
	}
	return out
}

// entrySeqs numbers a route-map OUT's entries by their tags (ascending),
// as numberTags numbers tags.
func entrySeqs(tags []uint32) []int {
	out := make([]int, len(tags))
	used := make(map[int]bool, len(tags))
	for i, t := range tags {
		s := homeEntrySeq(t)
		for used[s] {
			if s == maxEntrySeq {
				s = 1
			} else {
				s++
			}
		}
		used[s] = true
		out[i] = s
	}
	return out
}

// assignTags tags every prefix of the model's routers, fills their
// network statements and the sessions' route-map OUT entries. A session
// with more tags than a route-map has entries is left out (in skipped)
// and the rest assigned again without it.
func assignTags(m *model, skipped *bgp.SkippedError) {
	for {
		keys := make([]map[netip.Prefix]string, len(m.routers))
		distinct := map[string]struct{}{}
		for i, r := range m.routers {
			b := map[netip.Prefix][]byte{}
			for _, n := range r.neighbors {
				for _, rt := range n.routes {
					k, ok := b[rt.Prefix]
					if !ok {
						k = setKeyStart(rt.Prefix)
					}
					b[rt.Prefix] = appendSetEntry(k, n.s.Name, rt)
				}
			}
			keys[i] = make(map[netip.Prefix]string, len(b))
			for p, k := range b {
				keys[i][p] = string(k)
				distinct[string(k)] = struct{}{}
			}
		}
		all := make([]string, 0, len(distinct))
		for k := range distinct {
			all = append(all, k)
		}
		tagOf := numberTags(all)
		dropped := false
		for i, r := range m.routers {
			kept := r.neighbors[:0]
			for _, n := range r.neighbors {
				if outEntries(n, keys[i], tagOf) {
					kept = append(kept, n)
					continue
				}
				skipped.Add(n.s.Name, fmt.Errorf("session %q: more than %d distinct announcement sets (route tags); FRR route-maps end at sequence %d",
					n.s.Name, maxEntrySeq, maxRouteMapSeq))
				dropped = true
			}
			r.neighbors = kept
		}
		if dropped {
			m.routers = slices.DeleteFunc(m.routers, func(r *router) bool { return len(r.neighbors) == 0 })
			continue
		}
		m.tagOf = tagOf
		m.tags = make([]uint32, 0, len(tagOf))
		for _, t := range tagOf {
			m.tags = append(m.tags, t)
		}
		slices.Sort(m.tags)
		for i, r := range m.routers {
			for p := range keys[i] {
				if p.Addr().Is6() {
					r.networks6 = append(r.networks6, p)
				} else {
					r.networks4 = append(r.networks4, p)
				}
			}
			slices.SortFunc(r.networks4, bgp.ComparePrefixes)
			slices.SortFunc(r.networks6, bgp.ComparePrefixes)
			r.tags4 = make([]uint32, len(r.networks4))
			for j, p := range r.networks4 {
				r.tags4[j] = tagOf[keys[i][p]]
			}
			r.tags6 = make([]uint32, len(r.networks6))
			for j, p := range r.networks6 {
				r.tags6[j] = tagOf[keys[i][p]]
			}
		}
		return
	}
}

// outEntries fills n's route-map OUT entries from the tags of its
// routes' prefixes (keys: the router's set key of each prefix); false
// when they do not fit in a route-map.
func outEntries(n *neighbor, keys map[netip.Prefix]string, tagOf map[string]uint32) bool {
	byTag := map[uint32]*outEntry{}
	for _, r := range n.routes {
		t := tagOf[keys[r.Prefix]]
		if _, ok := byTag[t]; ok {
			continue
		}
		std, large := community.Split(r.Communities)
		byTag[t] = &outEntry{tag: t, v6: r.Prefix.Addr().Is6(), std: std, large: large, localPref: r.LocalPref}
	}
	if len(byTag) > maxEntrySeq {
		return false
	}
	tags := make([]uint32, 0, len(byTag))
	for t := range byTag {
		tags = append(tags, t)
	}
	slices.Sort(tags)
	seqs := entrySeqs(tags)
	n.entries = make([]*outEntry, len(tags))
	for i, t := range tags {
		e := byTag[t]
		e.seq = seqs[i]
		n.entries[i] = e
	}
	slices.SortFunc(n.entries, func(a, b *outEntry) int { return a.seq - b.seq })
	return true
}
