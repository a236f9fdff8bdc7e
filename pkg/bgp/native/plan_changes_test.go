package native

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"reflect"
	"slices"
	"testing"

	api "github.com/osrg/gobgp/v3/api"

	lbgp "github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
)

// TestPlanChangesMatchesFullPlan: for random exports and random changes
// of a few prefixes, planChanges (which looks at the changed prefixes
// only) plans the same withdrawals, additions and prefix-set edits as
// planRoutes and policyDelta over the whole table, and refuses to edit in
// place exactly when they do.
func TestPlanChangesMatchesFullPlan(t *testing.T) {
	sessions := map[string]lbgp.Session{
		"ia": {Name: "ia", PeerAddr: netip.MustParseAddr("198.18.0.254"), MyASN: 64512, PeerASN: 64512},
		"eb": {Name: "eb", PeerAddr: netip.MustParseAddr("198.18.0.253"), MyASN: 64512, PeerASN: 64513},
		"ec": {Name: "ec", PeerAddr: netip.MustParseAddr("198.18.0.252"), MyASN: 64512, PeerASN: 64514},
	}
	names := []string{"ia", "eb", "ec"}
	var pool []netip.Prefix
	for i := range 12 {
		pool = append(pool, netip.MustParsePrefix(fmt.Sprintf("203.0.113.%d/32", i)))
	}
	comms := []config.Community{{High: 65535, Low: 120}, {High: 65000, Low: 1}}
	rng := rand.New(rand.NewPCG(21, 10000))
	randomRoute := func(name string, p netip.Prefix) lbgp.Route {
		r := lbgp.Route{Prefix: p}
		if rng.IntN(3) == 0 {
			r.Communities = []config.Community{comms[rng.IntN(len(comms))]}
		}
		if rng.IntN(4) == 0 {
			r.LocalPref = 100 + uint32(rng.IntN(2))*50
		}
		s := sessions[name]
		return lbgp.MergeRoutes([]lbgp.Route{r}, s.IBGP())[0]
	}
	setRoute := func(rs []lbgp.Route, r lbgp.Route, present bool) []lbgp.Route {
		rs = slices.Clone(rs)
		i, found := slices.BinarySearchFunc(rs, r.Prefix, func(x lbgp.Route, p netip.Prefix) int { return lbgp.ComparePrefixes(x.Prefix, p) })
		switch {
		case found && present:
			rs[i] = r
		case found:
			rs = slices.Delete(rs, i, i+1)
		case present:
			rs = slices.Insert(rs, i, r)
		}
		return rs
	}
	inPlace, replaced, untouched := 0, 0, 0
	for iter := range 3000 {
		old := map[string][]lbgp.Route{}
		for _, name := range names {
			var rs []lbgp.Route
			for _, p := range pool {
				if rng.IntN(2) == 0 {
					rs = append(rs, randomRoute(name, p))
				}
			}
			if len(rs) > 0 {
				old[name] = rs
			}
		}
		rib := map[netip.Prefix]bool{}
		for _, rs := range old {
			for _, r := range rs {
				rib[r.Prefix] = true
			}
		}
		sets, _, groups := exportPolicyGroups(1, sessions, old)
		cur := &policyNames{sessions: sessions, groups: groups, counts: map[string]int{}}
		for _, set := range sets {
			if set.DefinedType == api.DefinedType_PREFIX {
				cur.counts[set.Name] = len(set.Prefixes)
			}
		}
		// A few changes: a route added, removed or given new attributes,
		// and sometimes a prefix named that did not change.
		changed := map[string][]netip.Prefix{}
		next := map[string][]lbgp.Route{}
		for range 1 + rng.IntN(3) {
			name, p := names[rng.IntN(len(names))], pool[rng.IntN(len(pool))]
			rs, ok := next[name]
			if !ok {
				rs = old[name]
			}
			if rng.IntN(5) > 0 {
				rs = setRoute(rs, randomRoute(name, p), rng.IntN(3) > 0)
			}
			next[name] = rs
			changed[name] = append(changed[name], p)
		}
		full := cloneRoutes(old)
		for name, rs := range next {
			if len(rs) > 0 {
				full[name] = rs
			} else {
				delete(full, name)
			}
		}

		want := planRoutes(old, full, rib)
		var wantDelta map[string]*setDelta
		wantOK := true
		if want.PolicyChanged {
			wantDelta, wantOK = policyDelta(cur, sessions, old, full, want)
		}
		got, gotDelta, gotOK := planChanges(old, next, rib, changed, sessions, cur)
		where := fmt.Sprintf("iteration %d: old %v, new %v, changed %v", iter, old, full, changed)
		if gotOK != wantOK {
			t.Fatalf("%s: planChanges edits in place %v, the full plan %v", where, gotOK, wantOK)
		}
		if !gotOK {
			replaced++
			continue
		}
		if !samePrefixes(got.Withdraw, want.Withdraw) || !samePrefixes(got.Add, want.Add) {
			t.Fatalf("%s: planChanges withdraws %v and adds %v; the full plan %v and %v", where, got.Withdraw, got.Add, want.Withdraw, want.Add)
		}
		if a, b := sortedDelta(gotDelta), sortedDelta(wantDelta); !reflect.DeepEqual(a, b) {
			t.Fatalf("%s: set edits %v, the full plan's %v", where, a, b)
		}
		if len(gotDelta) == 0 && len(got.Withdraw) == 0 && len(got.Add) == 0 {
			untouched++
		} else {
			inPlace++
		}
	}
	t.Logf("%d in place, %d replaced, %d untouched", inPlace, replaced, untouched)
	// The random cases reach every outcome.
	if inPlace < 300 || replaced < 300 || untouched < 100 {
		t.Errorf("cases: %d edited in place, %d with a new policy, %d with nothing to do; want more of each", inPlace, replaced, untouched)
	}
}

func cloneRoutes(m map[string][]lbgp.Route) map[string][]lbgp.Route {
	out := make(map[string][]lbgp.Route, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func samePrefixes(a, b []netip.Prefix) bool {
	return len(a) == 0 && len(b) == 0 || slices.Equal(a, b)
}

// sortedDelta drops empty entries and sorts each list.
func sortedDelta(d map[string]*setDelta) map[string][2][]netip.Prefix {
	out := map[string][2][]netip.Prefix{}
	for name, sd := range d {
		if len(sd.add) == 0 && len(sd.del) == 0 {
			continue
		}
		var add, del []netip.Prefix
		add = append(add, sd.add...)
		del = append(del, sd.del...)
		slices.SortFunc(add, lbgp.ComparePrefixes)
		slices.SortFunc(del, lbgp.ComparePrefixes)
		out[name] = [2][]netip.Prefix{add, del}
	}
	return out
}
