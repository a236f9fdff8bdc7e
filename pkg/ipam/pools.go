package ipam

import (
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/lbstack/lbstack/pkg/iprange"
)

// normalizePools returns the pool set SetPools will use and the problems it
// had to work around (rules at ValidatePools). The allocator's invariants —
// every address in at most one range, ranges of one family — must hold
// whatever it is given.
func normalizePools(pools []Pool) ([]Pool, []string) {
	var (
		out      []Pool
		problems []string
		seen     = map[string]bool{}
		taken    [2][]Range // accepted ranges per family, sorted by First
	)
	for _, p := range pools {
		if p.Name == "" {
			problems = append(problems, "pool with empty name")
			continue
		}
		if seen[p.Name] {
			problems = append(problems, fmt.Sprintf("pool %q defined twice", p.Name))
			continue
		}
		seen[p.Name] = true
		np := Pool{Name: p.Name, AvoidBuggyIPs: p.AvoidBuggyIPs}
		rs := make([]Range, 0, len(p.Ranges))
		for _, r := range p.Ranges {
			if !r.First.IsValid() || !r.Last.IsValid() {
				problems = append(problems, fmt.Sprintf("pool %q: invalid range %s-%s", p.Name, r.First, r.Last))
				continue
			}
			r = Range{normAddr(r.First), normAddr(r.Last)}
			if r.First.Is4() != r.Last.Is4() {
				problems = append(problems, fmt.Sprintf("pool %q: range %s-%s mixes IPv4 and IPv6", p.Name, r.First, r.Last))
				continue
			}
			if r.Last.Less(r.First) {
				problems = append(problems, fmt.Sprintf("pool %q: range %s-%s ends before it starts", p.Name, r.First, r.Last))
				continue
			}
			rs = append(rs, r)
		}
		slices.SortFunc(rs, func(x, y Range) int { return x.First.Compare(y.First) })
		for _, r := range rs {
			f := famOf(r.First)
			t := taken[f]
			i := sort.Search(len(t), func(i int) bool { return r.First.Less(t[i].First) })
			if (i > 0 && !t[i-1].Last.Less(r.First)) || (i < len(t) && !r.Last.Less(t[i].First)) {
				problems = append(problems, fmt.Sprintf("pool %q: range %s-%s overlaps another range", p.Name, r.First, r.Last))
				continue
			}
			taken[f] = slices.Insert(t, i, r)
			np.Ranges = append(np.Ranges, r)
		}
		out = append(out, np)
	}
	return out, problems
}

// ValidatePools reports what SetPools would have to drop from pools; nil
// when the pool set is usable as is. pkg/config should never let such a set
// through, but SetPools does not trust it and, in input order (so the outcome
// is deterministic), drops a pool whose name is empty or already seen, and a
// range that is invalid, mixes families, ends before it starts, or overlaps
// a range accepted before it. It also unmaps addresses (::ffff:a.b.c.d is
// a.b.c.d) and strips zones.
func ValidatePools(pools []Pool) error {
	if _, problems := normalizePools(pools); len(problems) > 0 {
		return errors.New(strings.Join(problems, "; "))
	}
	return nil
}

// buildPool makes the state of a pool with no address in use.
func buildPool(p Pool) *poolState {
	ps := &poolState{name: p.Name, avoidBuggy: p.AvoidBuggyIPs, spec: p, svcs: map[string]bool{}}
	for _, r := range p.Ranges {
		f := famOf(r.First)
		rs := &rangeState{
			first:      iprange.U128From(r.First),
			last:       iprange.U128From(r.Last),
			is4:        f == v4,
			avoidBuggy: p.AvoidBuggyIPs && f == v4,
			pool:       ps,
		}
		if rs.avoidBuggy {
			rs.buggy = countBuggy(rs.first, rs.last)
		}
		rs.idx = len(ps.ranges[f])
		ps.ranges[f] = append(ps.ranges[f], rs)
	}
	for f := range ps.ranges {
		ps.room[f] = newRangeSet(len(ps.ranges[f]))
		for _, rs := range ps.ranges[f] {
			rs.updateRoom()
		}
	}
	return ps
}

// indexRanges lists the ranges of every pool per family, in address order.
func indexRanges(pools map[string]*poolState) [2][]*rangeState {
	var index [2][]*rangeState
	for _, ps := range pools {
		for f := range ps.ranges {
			index[f] = append(index[f], ps.ranges[f]...)
		}
	}
	for f := range index {
		slices.SortFunc(index[f], func(x, y *rangeState) int { return x.first.Cmp(y.first) })
	}
	return index
}

func samePool(x, y Pool) bool {
	return x.Name == y.Name && x.AvoidBuggyIPs == y.AvoidBuggyIPs && slices.Equal(x.Ranges, y.Ranges)
}

func lookupIn(idx []*rangeState, u u128) *rangeState {
	i := sort.Search(len(idx), func(i int) bool { return u.Less(idx[i].first) }) - 1
	if i < 0 || !idx[i].contains(u) {
		return nil
	}
	return idx[i]
}

func poolsEqual(a, b []Pool) bool {
	return slices.EqualFunc(a, b, samePool)
}

// SetPools replaces the pool set and returns, sorted, the keys of the
// services that lost their addresses: those with an address no longer in any
// pool (or now excluded by AvoidBuggyIPs), or whose addresses now lie in
// different pools. Those services hold nothing any more; the controller
// re-allocates or clears them. Every other service keeps its addresses, even
// if their pool was renamed or reshaped; its Assignment.Pool becomes the name
// of the pool that now contains them. Whether that pool is still one the
// service may use is the controller's business: its next Assign will move the
// service if not, so the controller should map a renamed pool in
// Request.Pools to keep such addresses still. Pools are cleaned up as
// described at ValidatePools; setting the same pools again is cheap and
// changes nothing.
//
// The work is proportional to the change: a pool whose name, ranges and
// AvoidBuggyIPs are unchanged keeps its state (addresses in use, holders);
// only the services holding addresses of changed or removed pools are
// looked at again. Ranges of different pools never overlap, so an address
// of a changed pool cannot now be in an unchanged one.
func (a *Allocator) SetPools(pools []Pool) []string {
	spec, _ := normalizePools(pools)
	a.mu.Lock()
	defer a.mu.Unlock()
	if poolsEqual(spec, a.spec) {
		return nil
	}
	newPools := make(map[string]*poolState, len(spec))
	for _, p := range spec {
		if old := a.pools[p.Name]; old != nil && samePool(old.spec, p) {
			newPools[p.Name] = old
		} else {
			newPools[p.Name] = buildPool(p)
		}
	}
	newIndex := indexRanges(newPools)

	// The services of pools that changed or went.
	var keys []string
	for name, old := range a.pools {
		if newPools[name] != old {
			for k := range old.svcs {
				keys = append(keys, k)
			}
		}
	}
	slices.Sort(keys)
	var evicted []string
	newPoolOf := make(map[*svcRecord]*poolState, len(keys))
	for _, k := range keys {
		rec := a.services[k]
		var np *poolState
		for _, ar := range rec.addrs {
			r := lookupIn(newIndex[ar.fam()], ar.u)
			if r == nil || !r.usable(ar.u) || (np != nil && r.pool != np) {
				np = nil
				break
			}
			np = r.pool
		}
		if np == nil {
			evicted = append(evicted, k)
			continue
		}
		newPoolOf[rec] = np
	}
	for _, k := range evicted {
		a.release(a.services[k]) // against the old ranges, which are discarded next
	}
	a.spec, a.pools, a.index = spec, newPools, newIndex
	// Mark the addresses that moved to new range states, in address
	// order (every insertion then extends the last run or appends one);
	// a shared address once.
	var recs []*addrRecord
	seen := map[*addrRecord]bool{}
	for rec, np := range newPoolOf {
		rec.pool = np
		np.svcs[rec.svc.Key] = true
		for _, ar := range rec.addrs {
			if !seen[ar] {
				seen[ar] = true
				recs = append(recs, ar)
			}
		}
	}
	slices.SortFunc(recs, func(x, y *addrRecord) int { return x.ip.Compare(y.ip) })
	for _, ar := range recs {
		ar.rng = lookupIn(a.index[ar.fam()], ar.u)
		ar.rng.markUsed(ar.u)
	}
	return evicted
}
