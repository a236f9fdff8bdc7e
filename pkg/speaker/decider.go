package speaker

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

// Decider is Decide kept up to date one Service at a time: the speaker
// builds one when the configuration or its node changes (which changes
// every Service's decision) and updates it for each Service whose Service
// or EndpointSlices changed, at a cost proportional to that Service's
// routes rather than to the cluster. Its Result is always the one Decide
// gives for the same inputs (tested by replaying random changes on both).
// Pure: no Kubernetes client, no locking.
type Decider struct {
	cfg      *config.Config
	node     *corev1.Node
	excluded string
	// sessions are all the node's sessions (the decision's input); valid
	// are those Normalize keeps, by name, with whether they are iBGP.
	sessions []bgp.Session
	valid    map[string]bool
	state    bgp.DesiredState
	problems []string
	// services are the per-Service decisions, by "namespace/name".
	services map[string]serviceDecision
	// contrib holds every Service's routes: session → prefix → Service
	// → routes; a (session, prefix) merges them all.
	contrib map[string]map[netip.Prefix]map[string][]bgp.Route
	// routes are the merged routes per valid session, sorted by prefix.
	// A session's slice is replaced, never modified, so a State handed
	// out stays as it was.
	routes    map[string][]bgp.Route
	announced map[string][]string
	skipped   map[string]string
	// peerRefs counts the Services announced over each session.
	peerRefs map[string]int
	// version grows whenever State changes.
	version uint64
	// changed are the routes whose merged value changed since the last
	// TakeChanges, by session and prefix.
	changed map[bgp.RouteChange]bool
}

// NewDecider decides every Service, as Decide does, and keeps the parts.
func NewDecider(cfg *config.Config, node *corev1.Node, svcs []*corev1.Service, eps []*discoveryv1.EndpointSlice) (*Decider, error) {
	if cfg == nil || node == nil {
		return nil, fmt.Errorf("speaker decision needs a configuration and a node")
	}
	d := &Decider{
		cfg: cfg, node: node, excluded: lbservice.NodeExcluded(node),
		services: map[string]serviceDecision{}, contrib: map[string]map[netip.Prefix]map[string][]bgp.Route{},
		routes: map[string][]bgp.Route{}, announced: map[string][]string{}, skipped: map[string]string{},
		peerRefs: map[string]int{}, valid: map[string]bool{}, changed: map[bgp.RouteChange]bool{},
	}
	sessions, problems := Sessions(cfg, node)
	d.sessions = sessions
	// Which sessions the state can carry depends on the sessions alone:
	// Decide's routes are always valid prefixes of sessions it has.
	norm, err := bgp.DesiredState{Sessions: sessions}.Normalize()
	var sk *bgp.SkippedError
	if errors.As(err, &sk) {
		for _, name := range slices.Sorted(maps.Keys(sk.Sessions)) {
			problems = append(problems, sk.Sessions[name].Error())
		}
	} else if err != nil {
		return nil, fmt.Errorf("node %s: %w", node.Name, err)
	}
	d.problems = problems
	d.state = norm
	for i := range norm.Sessions {
		d.valid[norm.Sessions[i].Name] = norm.Sessions[i].IBGP()
	}
	// Routes are merged once per session rather than per prefix.
	all := map[string][]bgp.Route{}
	bySvc := slicesByService(eps)
	for _, svc := range svcs {
		key := lbservice.Key(svc)
		sd, ok := decideService(cfg, node, sessions, d.excluded, svc, bySvc[key])
		if !ok {
			continue
		}
		d.add(key, sd, nil)
		for name, rs := range sd.routes {
			if _, ok := d.valid[name]; ok {
				all[name] = append(all[name], rs...)
			}
		}
	}
	for name, rs := range all {
		if merged := bgp.MergeRoutes(rs, d.valid[name]); len(merged) > 0 {
			d.routes[name] = merged
		}
	}
	return d, nil
}

// Update decides Service key again: svc is its current version (nil when
// it is gone or not served) and eps its EndpointSlices (more are
// ignored). It reports whether the Service's decision changed.
func (d *Decider) Update(key string, svc *corev1.Service, eps []*discoveryv1.EndpointSlice) bool {
	var sd serviceDecision
	ok := false
	if svc != nil {
		sd, ok = decideService(d.cfg, d.node, d.sessions, d.excluded, svc, eps)
	}
	old, had := d.services[key]
	if had == ok && (!ok || sameDecision(old, sd)) {
		return false
	}
	touched := map[string]map[netip.Prefix]bool{}
	if had {
		d.remove(key, old, touched)
	}
	if ok {
		d.add(key, sd, touched)
	}
	changed := false
	for name, prefixes := range touched {
		if d.refresh(name, prefixes) {
			changed = true
		}
	}
	if changed {
		d.version++
	}
	return true
}

// add records Service key's decision; touched (when not nil) collects the
// (session, prefix) pairs whose merged route must be computed again.
func (d *Decider) add(key string, sd serviceDecision, touched map[string]map[netip.Prefix]bool) {
	d.services[key] = sd
	if sd.skipped != "" {
		d.skipped[key] = sd.skipped
		return
	}
	d.announced[key] = sd.peers
	for _, p := range sd.peers {
		d.peerRefs[p]++
	}
	for name, rs := range sd.routes {
		byPrefix := d.contrib[name]
		if byPrefix == nil {
			byPrefix = map[netip.Prefix]map[string][]bgp.Route{}
			d.contrib[name] = byPrefix
		}
		for _, r := range rs {
			bySvc := byPrefix[r.Prefix]
			if bySvc == nil {
				bySvc = map[string][]bgp.Route{}
				byPrefix[r.Prefix] = bySvc
			}
			bySvc[key] = append(bySvc[key], r)
			markTouched(touched, name, r.Prefix)
		}
	}
}

// remove forgets Service key's decision sd.
func (d *Decider) remove(key string, sd serviceDecision, touched map[string]map[netip.Prefix]bool) {
	delete(d.services, key)
	delete(d.skipped, key)
	delete(d.announced, key)
	for _, p := range sd.peers {
		if d.peerRefs[p]--; d.peerRefs[p] <= 0 {
			delete(d.peerRefs, p)
		}
	}
	for name, rs := range sd.routes {
		byPrefix := d.contrib[name]
		for _, r := range rs {
			delete(byPrefix[r.Prefix], key)
			if len(byPrefix[r.Prefix]) == 0 {
				delete(byPrefix, r.Prefix)
			}
			markTouched(touched, name, r.Prefix)
		}
		if len(byPrefix) == 0 {
			delete(d.contrib, name)
		}
	}
}

func markTouched(touched map[string]map[netip.Prefix]bool, name string, p netip.Prefix) {
	if touched == nil {
		return
	}
	if touched[name] == nil {
		touched[name] = map[netip.Prefix]bool{}
	}
	touched[name][p] = true
}

// refresh merges the routes of the session's touched prefixes again and
// replaces the session's slice when one changed; it reports whether one
// did.
func (d *Decider) refresh(name string, prefixes map[netip.Prefix]bool) bool {
	ibgp, ok := d.valid[name]
	if !ok {
		// Left out by Normalize: announced (Announced says so), carried
		// by no route.
		return false
	}
	cur := d.routes[name]
	var next []bgp.Route
	for p := range prefixes {
		var rs []bgp.Route
		for _, r := range d.contrib[name][p] {
			rs = append(rs, r...)
		}
		var merged *bgp.Route
		if m := bgp.MergeRoutes(rs, ibgp); len(m) > 0 {
			merged = &m[0]
		}
		src := cur
		if next != nil {
			src = next
		}
		i, found := slices.BinarySearchFunc(src, p, func(r bgp.Route, p netip.Prefix) int { return bgp.ComparePrefixes(r.Prefix, p) })
		switch {
		case merged == nil && !found, merged != nil && found && src[i].Equal(*merged):
			continue
		case next == nil:
			// Copy on the first change: the old slice may be held by a
			// State handed out before.
			next = slices.Clone(cur)
		}
		d.changed[bgp.RouteChange{Session: name, Prefix: p}] = true
		switch {
		case merged == nil:
			next = slices.Delete(next, i, i+1)
		case found:
			next[i] = *merged
		default:
			next = slices.Insert(next, i, *merged)
		}
	}
	if next == nil {
		return false
	}
	if len(next) == 0 {
		delete(d.routes, name)
	} else {
		d.routes[name] = next
	}
	return true
}

// sameDecision reports whether two decisions of one Service are equal.
func sameDecision(a, b serviceDecision) bool {
	if a.skipped != b.skipped || !slices.Equal(a.peers, b.peers) || len(a.routes) != len(b.routes) {
		return false
	}
	for name, ra := range a.routes {
		rb, ok := b.routes[name]
		if !ok || !slices.EqualFunc(ra, rb, bgp.Route.Equal) {
			return false
		}
	}
	return true
}

// Result is the decision, as Decide returns it. Its State may be kept:
// later updates replace what they change. Announced and Skipped are the
// Decider's own maps, valid until the next Update.
func (d *Decider) Result() Result {
	return Result{
		State:     bgp.DesiredState{Sessions: d.state.Sessions, Routes: maps.Clone(d.routes)},
		Announced: d.announced,
		Skipped:   d.skipped,
		Problems:  d.problems,
	}
}

// TakeChanges returns the routes, by session and prefix, whose value in
// Result's State changed since the Decider was built or TakeChanges was
// last called, and starts counting again: what a bgp.ChangeApplier needs
// to go from the State it was last given to the current one.
func (d *Decider) TakeChanges() []bgp.RouteChange {
	out := make([]bgp.RouteChange, 0, len(d.changed))
	for c := range d.changed {
		out = append(out, c)
	}
	clear(d.changed)
	return out
}

// Version grows whenever the State of Result changes.
func (d *Decider) Version() uint64 { return d.version }

// Announced returns the sessions that carry Service key ("namespace/name")
// and whether this node announces it.
func (d *Decider) Announced(key string) ([]string, bool) {
	p, ok := d.announced[key]
	return p, ok
}

// AnnouncesOver reports whether some Service is announced over the session.
func (d *Decider) AnnouncesOver(session string) bool { return d.peerRefs[session] > 0 }
