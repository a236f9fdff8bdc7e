package config

import (
	"net/netip"
	"slices"
	"sort"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/iprange"
)

// maxCommunities is the most communities one advertisement may attach.
const maxCommunities = 63

// selectPools resolves an advertisement's ipAddressPools and
// ipAddressPoolSelectors into sorted pool names: the named pools that
// exist, plus the pools the selectors match; every pool when both are
// empty. A name of a pool that does not exist is a warning, not an error:
// the pool may come later in the same `kubectl apply -f`.
func (b *builder) selectPools(ref ObjectRef, names []string, sels []metav1.LabelSelector) []string {
	selected := make(map[string]bool)
	first := make(map[string]int, len(names))
	for i, n := range names {
		f := field("spec.ipAddressPools[%d]", i)
		if j, dup := first[n]; dup {
			b.c.errorf(ref, f, nil, "pool %q is listed twice (also spec.ipAddressPools[%d])", n, j)
			continue
		}
		first[n] = i
		if why := checkObjectName(n); why != "" {
			b.c.errorf(ref, f, nil, "pool name %s", why)
			continue
		}
		pref := ObjectRef{Kind: KindIPAddressPool, Name: n}
		if !b.poolExists[n] {
			b.c.warnf(ref, f, []ObjectRef{pref}, "%s does not exist (yet); the advertisement applies to it once it does", pref)
			continue
		}
		selected[n] = true
	}
	parsed := parseSelectors(&b.c, ref, "spec.ipAddressPoolSelectors", sels)
	switch {
	case len(names) == 0 && len(sels) == 0:
		return slices.Clone(b.poolNames)
	case len(parsed) == 0:
		out := make([]string, 0, len(selected))
		for n := range selected {
			out = append(out, n)
		}
		slices.Sort(out)
		return out
	}
	// Walk the sorted names once: the result comes out sorted.
	out := make([]string, 0, len(selected))
	for _, n := range b.poolNames {
		if selected[n] || anySelectorMatches(parsed, b.poolByName[n].Labels) {
			out = append(out, n)
		}
	}
	return out
}

func (b *builder) buildBGPAdvs(objs []*v1beta1.BGPAdvertisement) {
	for _, obj := range objs {
		b.bgpAdvs = append(b.bgpAdvs, b.buildBGPAdv(obj))
	}
	for _, adv := range b.bgpAdvs {
		ref := ObjectRef{Kind: KindBGPAdvertisement, Name: adv.Name}
		for _, name := range adv.Pools {
			if p := b.poolByName[name]; p != nil {
				b.checkAggregation(ref, adv, p)
			}
		}
		b.checkLocalPrefEBGP(ref, adv)
	}
	b.checkLocalPrefConflicts()
}

func (b *builder) buildBGPAdv(obj *v1beta1.BGPAdvertisement) *BGPAdvertisement {
	ref := ObjectRef{Kind: KindBGPAdvertisement, Name: obj.Name}
	s := obj.Spec
	a := &BGPAdvertisement{Name: obj.Name, AggregationLength: 32, AggregationLengthV6: 128, LocalPref: s.LocalPref}
	if s.AggregationLength != nil {
		if v := *s.AggregationLength; v < 1 || v > 32 {
			b.c.errorf(ref, "spec.aggregationLength", nil, "aggregationLength %d is out of range 1..32", v)
		} else {
			a.AggregationLength = int(v)
		}
	}
	if s.AggregationLengthV6 != nil {
		if v := *s.AggregationLengthV6; v < 1 || v > 128 {
			b.c.errorf(ref, "spec.aggregationLengthV6", nil, "aggregationLengthV6 %d is out of range 1..128", v)
		} else {
			a.AggregationLengthV6 = int(v)
		}
	}
	if len(s.ServiceSelectors) > 0 && (a.AggregationLength != 32 || a.AggregationLengthV6 != 128) {
		// An aggregate is shared by every Service of its prefix, so it cannot
		// follow per-Service selection.
		b.c.errorf(ref, "spec.serviceSelectors", nil,
			"serviceSelectors can only be used with the default aggregationLength (32) and aggregationLengthV6 (128), not %d and %d",
			a.AggregationLength, a.AggregationLengthV6)
	}
	a.Pools = b.selectPools(ref, s.IPAddressPools, s.IPAddressPoolSelectors)
	a.NodeSelectors = parseSelectors(&b.c, ref, "spec.nodeSelectors", s.NodeSelectors)
	a.ServiceSelectors = parseSelectors(&b.c, ref, "spec.serviceSelectors", s.ServiceSelectors)

	// Peers.
	first := make(map[string]int, len(s.Peers))
	for i, n := range s.Peers {
		f := field("spec.peers[%d]", i)
		if j, dup := first[n]; dup {
			b.c.errorf(ref, f, nil, "peer %q is listed twice (also spec.peers[%d])", n, j)
			continue
		}
		first[n] = i
		if why := checkObjectName(n); why != "" {
			b.c.errorf(ref, f, nil, "peer name %s", why)
			continue
		}
		if _, ok := b.peerByName[n]; !ok {
			pref := ObjectRef{Kind: KindBGPPeer, Name: n}
			b.c.warnf(ref, f, []ObjectRef{pref}, "%s does not exist (yet); nothing is announced to it until it does", pref)
		}
		a.Peers = append(a.Peers, n)
	}
	slices.Sort(a.Peers)

	// Communities.
	if len(s.Communities) > maxCommunities {
		b.c.errorf(ref, "spec.communities", nil, "%d communities; at most %d are allowed", len(s.Communities), maxCommunities)
	}
	seen := make(map[string]int, len(s.Communities))
	values := make(map[Community]bool, len(s.Communities))
	for i, cs := range s.Communities {
		f := field("spec.communities[%d]", i)
		if j, dup := seen[cs]; dup {
			b.c.errorf(ref, f, nil, "community %q is listed twice (also spec.communities[%d])", cs, j)
			continue
		}
		seen[cs] = i
		if v, ok := b.aliases[cs]; ok {
			values[v] = true
			continue
		}
		if _, ok := b.aliasOwners[cs]; ok {
			// The alias is defined but its value is invalid: the error is
			// on the Community object.
			continue
		}
		if looksLikeLiteral(cs) {
			v, err := ParseCommunity(cs)
			if err != nil {
				b.c.errorf(ref, f, nil, "%v", err)
				continue
			}
			values[v] = true
			continue
		}
		b.c.warnf(ref, f, nil, "community alias %q is not defined by any Community object (yet); it is not attached until it is", cs)
	}
	for v := range values {
		a.Communities = append(a.Communities, v)
	}
	slices.SortFunc(a.Communities, Community.Compare)
	return a
}

// looksLikeLiteral tells a community literal from an alias name, as
// MetalLB does: "AA:NN" (one colon), "x:x:x:x" (three) or anything starting
// with "large:" is meant as a value, so a malformed one is an error; any
// other string is an alias name, which may be defined later.
func looksLikeLiteral(s string) bool {
	n := strings.Count(s, ":")
	return n == 1 || n == 3 || strings.HasPrefix(s, largeMarker+":")
}

// checkAggregation checks the aggregates an advertisement announces for a
// pool. MetalLB refuses an aggregation length shorter than the widest CIDR
// of a pool entry; lbstack accepts it when the aggregates cover no address
// of another pool (they would attract that pool's traffic), and warns
// about the addresses they cover beyond the pool. Where MetalLB accepts the
// length (no CIDR of the entry is wider), covering another pool's addresses
// stays accepted, with a warning.
func (b *builder) checkAggregation(ref ObjectRef, adv *BGPAdvertisement, pool *Pool) {
	for _, v4 := range []bool{true, false} {
		length, fieldName, bitLen := adv.AggregationLength, "aggregationLength", 32
		if !v4 {
			length, fieldName, bitLen = adv.AggregationLengthV6, "aggregationLengthV6", 128
		}
		if length < 1 || length >= bitLen {
			continue
		}
		type conflict struct {
			ivs    []interval
			strict bool
		}
		var gaps []interval
		conflicts := make(map[*Pool]*conflict)
		for _, r := range pool.Ranges {
			if r.Is4() != v4 {
				continue
			}
			lo := netip.PrefixFrom(r.First, length).Masked()
			hi := netip.PrefixFrom(r.Last, length).Masked()
			if lo.Addr() == r.First && iprange.LastAddr(hi) == r.Last {
				continue
			}
			strict := length < widestBits(r.CIDRs)
			for _, g := range pool.index.subtract(lo.Addr(), iprange.LastAddr(hi)) {
				gaps = append(gaps, g)
				b.index.overlapping(g.first, g.last, func(s span) bool {
					other := b.pools[s.pool]
					if other == pool {
						return true
					}
					c := conflicts[other]
					if c == nil {
						c = &conflict{}
						conflicts[other] = c
					}
					c.ivs = append(c.ivs, interval{iprange.MaxAddr(s.first, g.first), iprange.MinAddr(s.last, g.last)})
					c.strict = c.strict || strict
					return true
				})
			}
		}
		if len(gaps) == 0 {
			continue
		}
		gaps = mergeIntervals(gaps)
		f := "spec." + fieldName
		pref := ObjectRef{Kind: KindIPAddressPool, Name: pool.Name}
		aggs := aggregatesOf(gaps, length)
		verb := "covers"
		if len(aggs) > 1 {
			verb = "cover"
		}
		b.c.warnf(ref, f, []ObjectRef{pref}, "%s %d announces %s for %s, which also %s %s outside the pool",
			fieldName, length, formatPrefixes(aggs, 4), pref, verb, formatIntervals(gaps, 4))

		others := make([]*Pool, 0, len(conflicts))
		for o := range conflicts {
			others = append(others, o)
		}
		sort.Slice(others, func(i, j int) bool { return others[i].Name < others[j].Name })
		for _, o := range others {
			c := conflicts[o]
			ivs := mergeIntervals(c.ivs)
			oref := ObjectRef{Kind: KindIPAddressPool, Name: o.Name}
			oaggs := aggregatesOf(ivs, length)
			verb := "covers"
			if len(oaggs) > 1 {
				verb = "cover"
			}
			if c.strict {
				b.c.errorf(ref, f, []ObjectRef{pref, oref},
					"%s %d would announce %s for %s, which %s %s of %s; use a longer %s or keep the pools apart",
					fieldName, length, formatPrefixes(oaggs, 4), pref, verb, formatIntervals(ivs, 4), oref, fieldName)
			} else {
				b.c.warnf(ref, f, []ObjectRef{pref, oref},
					"%s %d announces %s for %s, which %s %s of %s; accepted as MetalLB does (no CIDR of the pool entry is wider than /%d), and %s's own more specific routes win",
					fieldName, length, formatPrefixes(oaggs, 4), pref, verb, formatIntervals(ivs, 4), oref, length, oref)
			}
		}
	}
}

func widestBits(ps []netip.Prefix) int {
	w := 128
	for _, p := range ps {
		w = min(w, p.Bits())
	}
	return w
}

// mergeIntervals sorts intervals and merges overlapping or adjacent ones.
func mergeIntervals(ivs []interval) []interval {
	slices.SortFunc(ivs, func(x, y interval) int { return x.first.Compare(y.first) })
	out := ivs[:0:0]
	for _, iv := range ivs {
		if n := len(out); n > 0 {
			last := &out[n-1]
			next := last.last.Next()
			if !next.IsValid() || next.BitLen() != last.last.BitLen() || iv.first.Compare(next) <= 0 {
				if iv.last.Compare(last.last) > 0 {
					last.last = iv.last
				}
				continue
			}
		}
		out = append(out, iv)
	}
	return out
}

// aggregatesOf returns the distinct prefixes of the given length holding
// the ends of the intervals (each gap lies in at most two of them).
func aggregatesOf(ivs []interval, length int) []netip.Prefix {
	var out []netip.Prefix
	for _, iv := range ivs {
		out = append(out, netip.PrefixFrom(iv.first, length).Masked(), netip.PrefixFrom(iv.last, length).Masked())
	}
	slices.SortFunc(out, func(x, y netip.Prefix) int { return x.Addr().Compare(y.Addr()) })
	return slices.Compact(out)
}

func formatPrefixes(ps []netip.Prefix, max int) string {
	s := make([]string, 0, min(len(ps), max))
	for i, p := range ps {
		if i == max {
			break
		}
		s = append(s, p.String())
	}
	return joinList(s, len(ps)-len(s), "prefixes")
}

// reachedPeers returns the existing peers an advertisement announces to.
func (b *builder) reachedPeers(adv *BGPAdvertisement) []*Peer {
	var out []*Peer
	for _, p := range b.peers {
		if adv.ReachesPeer(p.Name) {
			out = append(out, p)
		}
	}
	return out
}

// checkLocalPrefEBGP warns when localPref is set and some peers it goes to
// are eBGP: LOCAL_PREF is only sent over iBGP sessions. (Some MetalLB
// versions refuse this; it is harmless, so lbstack warns.)
func (b *builder) checkLocalPrefEBGP(ref ObjectRef, adv *BGPAdvertisement) {
	if adv.LocalPref == 0 {
		return
	}
	var ebgp []ObjectRef
	for _, p := range b.reachedPeers(adv) {
		if (p.PeerASN != 0 || p.DynamicASN != "") && !p.IBGP() {
			ebgp = append(ebgp, ObjectRef{Kind: KindBGPPeer, Name: p.Name})
		}
	}
	if len(ebgp) > 0 {
		verb := "do"
		if len(ebgp) == 1 {
			verb = "does"
		}
		b.c.warnf(ref, "spec.localPref", ebgp, "localPref %d is only sent to iBGP peers; %s %s not receive it (eBGP)",
			adv.LocalPref, refList(ebgp, 5), verb)
	}
}

// checkLocalPrefConflicts refuses two advertisements of the same pool that
// reach the same peers from nodes both select with different localPref and
// the same prefixes: the same route would carry two LOCAL_PREF values.
// Advertisements with serviceSelectors are skipped, as in MetalLB: which
// Services they announce is not known here. Advertisements are compared
// per pool, and only when the pool's advertisements disagree at all.
func (b *builder) checkLocalPrefConflicts() {
	// The common case: one localPref everywhere, nothing can conflict.
	same := true
	for _, a := range b.bgpAdvs {
		same = same && a.LocalPref == b.bgpAdvs[0].LocalPref
	}
	if same {
		return
	}
	byPool := make(map[string][]int)
	for i, a := range b.bgpAdvs {
		if len(a.ServiceSelectors) > 0 {
			continue
		}
		for _, p := range a.Pools {
			byPool[p] = append(byPool[p], i)
		}
	}
	reported := make(map[[2]int]bool)
	for _, pool := range b.pools {
		idx := byPool[pool.Name]
		if len(idx) < 2 {
			continue
		}
		agree := true
		for _, i := range idx[1:] {
			if b.bgpAdvs[i].LocalPref != b.bgpAdvs[idx[0]].LocalPref {
				agree = false
				break
			}
		}
		if agree {
			continue
		}
		for y := 1; y < len(idx); y++ {
			for x := 0; x < y; x++ {
				i, j := idx[x], idx[y]
				ai, aj := b.bgpAdvs[i], b.bgpAdvs[j]
				if ai.LocalPref == aj.LocalPref || reported[[2]int{i, j}] {
					continue
				}
				if aggregationDiffers(ai, aj, pool) || !peersOverlap(ai, aj) || !mayShareNode(ai.NodeSelectors, aj.NodeSelectors, b.nodes) {
					continue
				}
				reported[[2]int{i, j}] = true
				other := ObjectRef{Kind: KindBGPAdvertisement, Name: ai.Name}
				pref := ObjectRef{Kind: KindIPAddressPool, Name: pool.Name}
				b.c.errorf(ObjectRef{Kind: KindBGPAdvertisement, Name: aj.Name}, "spec.localPref", []ObjectRef{other, pref},
					"localPref %d conflicts with localPref %d of %s: both announce %s with the same prefix lengths to the same peers from the same nodes",
					aj.LocalPref, ai.LocalPref, other, pref)
			}
		}
	}
}

// aggregationDiffers reports whether two advertisements announce different
// prefixes for the pool (MetalLB's rule): every family the pool has must
// use a different length.
func aggregationDiffers(a, b *BGPAdvertisement, pool *Pool) bool {
	v4, v6 := pool.HasIPv4, pool.HasIPv6
	switch {
	case !v4 && !v6:
		return true
	case a.AggregationLength != b.AggregationLength && !v6:
		return true
	case a.AggregationLengthV6 != b.AggregationLengthV6 && !v4:
		return true
	}
	return a.AggregationLength != b.AggregationLength && a.AggregationLengthV6 != b.AggregationLengthV6
}

func peersOverlap(a, b *BGPAdvertisement) bool {
	if len(a.Peers) == 0 || len(b.Peers) == 0 {
		return true
	}
	for _, p := range a.Peers {
		if containsSorted(b.Peers, p) {
			return true
		}
	}
	return false
}

// checkBFDEcho refuses BFD echo mode where it cannot work: FRR runs echo
// over IPv4 only, so not on an IPv6 or unnumbered peer, nor on a peer that
// advertisements send IPv6 pools to (MetalLB's rule).
func (b *builder) checkBFDEcho() {
	v6Pools := make(map[*BGPAdvertisement][]ObjectRef, len(b.bgpAdvs))
	for _, a := range b.bgpAdvs {
		for _, n := range a.Pools {
			if p := b.poolByName[n]; p != nil && p.HasIPv6 {
				v6Pools[a] = append(v6Pools[a], ObjectRef{Kind: KindIPAddressPool, Name: n})
			}
		}
	}
	for _, p := range b.peers {
		if p.BFDProfile == nil || !p.BFDProfile.EchoMode {
			continue
		}
		ref := ObjectRef{Kind: KindBGPPeer, Name: p.Name}
		pref := ObjectRef{Kind: KindBFDProfile, Name: p.BFDProfile.Name}
		switch {
		case p.Interface != "":
			b.c.errorf(ref, "spec.bfdProfile", []ObjectRef{pref}, "%s has echoMode on, which works over IPv4 only, and this peer is unnumbered (interface %s, IPv6 link-local)", pref, p.Interface)
			continue
		case p.Address.Is6():
			b.c.errorf(ref, "spec.bfdProfile", []ObjectRef{pref}, "%s has echoMode on, which works over IPv4 only, and peerAddress %s is IPv6", pref, p.Address)
			continue
		}
		for _, a := range b.bgpAdvs {
			pools := v6Pools[a]
			if len(pools) == 0 || !a.ReachesPeer(p.Name) {
				continue
			}
			aref := ObjectRef{Kind: KindBGPAdvertisement, Name: a.Name}
			b.c.errorf(ref, "spec.bfdProfile", append([]ObjectRef{pref, aref}, pools...),
				"%s has echoMode on, which works over IPv4 only, and %s announces IPv6 %s to this peer",
				pref, aref, refList(pools, 3))
		}
	}
}

func (b *builder) buildL2Advs(objs []*v1beta1.L2Advertisement) {
	for _, obj := range objs {
		ref := ObjectRef{Kind: KindL2Advertisement, Name: obj.Name}
		s := obj.Spec
		a := &L2Advertisement{Name: obj.Name}
		a.Pools = b.selectPools(ref, s.IPAddressPools, s.IPAddressPoolSelectors)
		a.NodeSelectors = parseSelectors(&b.c, ref, "spec.nodeSelectors", s.NodeSelectors)
		a.ServiceSelectors = parseSelectors(&b.c, ref, "spec.serviceSelectors", s.ServiceSelectors)
		first := make(map[string]int, len(s.Interfaces))
		for i, name := range s.Interfaces {
			f := field("spec.interfaces[%d]", i)
			if j, dup := first[name]; dup {
				b.c.errorf(ref, f, nil, "interface %q is listed twice (also spec.interfaces[%d])", name, j)
				continue
			}
			first[name] = i
			if why := checkLinkName(name); why != "" {
				b.c.errorf(ref, f, nil, "invalid interface: %s", why)
				continue
			}
			a.Interfaces = append(a.Interfaces, name)
		}
		for i := range s.PreferredNodeSelectors {
			pn := &s.PreferredNodeSelectors[i]
			f := field("spec.preferredNodeSelectors[%d]", i)
			ok := true
			if pn.Weight < 1 || pn.Weight > 100 {
				b.c.errorf(ref, f+".weight", nil, "weight %d is out of range 1..100", pn.Weight)
				ok = false
			}
			sel, valid := parseSelector(&b.c, ref, f+".preference", &pn.Preference)
			if ok && valid {
				a.PreferredNodes = append(a.PreferredNodes, WeightedSelector{Weight: pn.Weight, Selector: sel})
			}
		}
		b.l2Advs = append(b.l2Advs, a)
	}
}
