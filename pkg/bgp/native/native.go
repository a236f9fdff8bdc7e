// Package native is the BGP backend that embeds GoBGP v3 (bgpBackend
// native): no routing daemon next to the speaker, sessions and routes
// driven through GoBGP's Go API.
//
// Model. One GoBGP BgpServer per (VRF, router ID, AS), and a further one
// when two sessions of that group have the same peer address (GoBGP keys
// peers by address; config allows the same address on different ports).
// Servers never listen (ListenPort -1): the speaker always connects out,
// so it never competes for port 179 with anything on the host.
//
// Routes. Each server's global RIB holds one local path per prefix that any
// of its sessions announces, with no communities and no LOCAL_PREF. What
// each peer receives is decided by one global export policy with default
// REJECT and, per (session, family, attribute set), a statement matching
// the session's address (neighbor set, which GoBGP evaluates against the
// destination peer on export) and the exact prefixes (prefix set), whose
// actions add the communities (standard and large), LOCAL_PREF (iBGP
// sessions only) and a next hop when the session overrides one, then
// accept. So two peers can get the same prefix with different attributes,
// and a peer gets nothing it was not given. Received routes are rejected
// by a global import policy with default REJECT (never installed, never
// re-advertised); GoBGP here has no zebra, so nothing reaches the kernel.
//
// Convergence, per server: (1) withdraw (DeletePath) prefixes that no
// session wants any more, and those that some session loses while others
// keep them: GoBGP's soft reset out sends only accepted paths, never a
// withdrawal for a path the new policy rejects, so the only way to take a
// prefix back from one peer is to withdraw it from all and re-add it (the
// others see a withdraw+announce; sessions stay up); (2) install the new
// policy under a new generation name and swap the assignment, then delete
// the old one; (3) AddPath new prefixes; (4) soft reset out the sessions
// whose routes or attributes changed, so GoBGP re-sends them under the new
// policy. Sessions whose parameters are unchanged are never touched; a
// changed session is deleted and added again, alone.
package native

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/go-logr/logr"
	api "github.com/osrg/gobgp/v3/api"
	"github.com/osrg/gobgp/v3/pkg/apiutil"
	gobgplog "github.com/osrg/gobgp/v3/pkg/log"
	"github.com/osrg/gobgp/v3/pkg/packet/bgp"
	"github.com/osrg/gobgp/v3/pkg/server"

	lbgp "github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/community"
)

// Options configure the backend.
type Options struct {
	// Log receives GoBGP's log (Info and above at V(0), Debug at V(2)).
	Log logr.Logger
}

// Backend is the GoBGP backend. It implements bgp.Backend; it is safe for
// concurrent use.
type Backend struct {
	mu        sync.Mutex
	log       logr.Logger
	instances map[serverKey]*instance
	// placed maps session name to where it runs.
	placed map[string]serverKey
	closed bool
	// last is what the previous Apply or ApplyChanges left, for
	// ApplyChanges to follow.
	last lastApply
}

// lastApply is what ApplyChanges needs to know of the state applied
// before.
type lastApply struct {
	// followable: everything was applied without error and the routes
	// given were normal, so a change of some routes can be applied alone.
	followable bool
	// sessions are the sessions given, as given.
	sessions []lbgp.Session
	// skipped are the sessions left out, reported again with each change.
	skipped *lbgp.SkippedError
}

var _ lbgp.ChangeApplier = (*Backend)(nil)

// New returns a backend with no sessions.
func New(opts Options) *Backend {
	return &Backend{log: opts.Log, instances: map[serverKey]*instance{}, placed: map[string]serverKey{}}
}

// serverKey identifies one BgpServer.
type serverKey struct {
	VRF      string
	RouterID netip.Addr
	ASN      uint32
	// Slot separates sessions to the same peer address (different ports).
	Slot int
}

func (k serverKey) String() string {
	vrf := k.VRF
	if vrf == "" {
		vrf = "default"
	}
	return fmt.Sprintf("vrf %s, router-id %s, AS %d, slot %d", vrf, k.RouterID, k.ASN, k.Slot)
}

// instance is one running BgpServer and what lbstack put into it.
type instance struct {
	key serverKey
	srv *server.BgpServer
	// sessions by name.
	sessions map[string]lbgp.Session
	// exported is, per session name, the routes the current export policy
	// gives it.
	exported map[string][]lbgp.Route
	// rib is the set of local paths in the global RIB.
	rib map[netip.Prefix]bool
	// gen numbers policy generations; policy holds the current one's
	// policy and set names (empty before the first).
	gen    int
	policy *policyNames
	// broken marks an instance whose state is unknown after a failed
	// GoBGP call: the next Apply replaces it.
	broken bool
}

type policyNames struct {
	policy string
	sets   []*api.DefinedSet
	// sessions are the sessions the policy was built for, and groups the
	// prefix set of each (session, attributes) statement.
	sessions map[string]lbgp.Session
	groups   map[string]map[attrKey]string
	// counts are the prefixes in each prefix set of a statement, by set
	// name: a statement never loses its last one in place.
	counts map[string]int
}

// checkNative reports what GoBGP cannot do for a session.
func checkNative(s *lbgp.Session) error {
	switch {
	case s.DynamicASN != "":
		return fmt.Errorf("session %q: dynamicASN needs bgpBackend frr (GoBGP configures one peer AS)", s.Name)
	case s.BFDProfile != nil:
		return fmt.Errorf("session %q: BFD needs bgpBackend frr (GoBGP has no BFD)", s.Name)
	case s.HoldTime != nil && *s.HoldTime == 0:
		return fmt.Errorf("session %q: holdTime 0 needs bgpBackend frr (GoBGP treats 0 as its default of 90s)", s.Name)
	}
	return nil
}

// Apply implements bgp.Backend. Sessions GoBGP cannot run are left out and
// reported in the returned error; everything else is applied.
func (b *Backend) Apply(ctx context.Context, d lbgp.DesiredState) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("native BGP backend: closed")
	}
	return b.apply(ctx, d)
}

// apply is Apply with b.mu held.
func (b *Backend) apply(ctx context.Context, d lbgp.DesiredState) error {
	b.last = lastApply{}
	// Sessions that cannot run are skipped (and reported); the others are
	// applied all the same.
	skipped := &lbgp.SkippedError{}
	norm, err := d.Normalize()
	if sk, ok := err.(*lbgp.SkippedError); ok {
		skipped.Merge(sk)
	} else if err != nil {
		return fmt.Errorf("native BGP backend: %w", err)
	}
	var errs []error
	want := map[string]lbgp.Session{}
	for _, s := range norm.Sessions {
		if err := checkNative(&s); err != nil {
			skipped.Add(s.Name, err)
			continue
		}
		want[s.Name] = s
	}

	// Replace broken instances: forget them so their sessions are placed
	// afresh.
	for k, inst := range b.instances {
		if inst.broken {
			b.stopInstance(inst)
			delete(b.instances, k)
			for name, pk := range b.placed {
				if pk == k {
					delete(b.placed, name)
				}
			}
		}
	}

	// Place sessions. Unchanged sessions stay where they are.
	newPlaced := map[string]serverKey{}
	used := map[serverKey]map[netip.Addr]bool{}
	use := func(k serverKey, a netip.Addr) {
		if used[k] == nil {
			used[k] = map[netip.Addr]bool{}
		}
		used[k][a] = true
	}
	names := sortedKeys(want)
	var fresh []string
	for _, name := range names {
		s := want[name]
		if k, ok := b.placed[name]; ok {
			if cur, ok := b.instances[k].sessions[name]; ok && cur.Equal(&s) {
				newPlaced[name] = k
				use(k, s.PeerAddr)
				continue
			}
		}
		fresh = append(fresh, name)
	}
	for _, name := range fresh {
		s := want[name]
		k := serverKey{VRF: s.VRF, RouterID: s.RouterID, ASN: s.MyASN}
		for used[k][s.PeerAddr] {
			k.Slot++
		}
		newPlaced[name] = k
		use(k, s.PeerAddr)
	}

	// Remove sessions that are gone or moved/changed, from their old
	// instance, before adding anything: a changed session may keep its
	// address in the same instance.
	for name, k := range b.placed {
		nk, ok := newPlaced[name]
		inst := b.instances[k]
		if ok && nk == k {
			if cur := inst.sessions[name]; cur.Equal(ptr(want[name])) {
				continue
			}
		}
		if err := inst.deletePeer(ctx, name); err != nil {
			errs = append(errs, err)
		}
	}

	// Start instances that are needed.
	for _, name := range sortedKeys(newPlaced) {
		k := newPlaced[name]
		if _, ok := b.instances[k]; ok {
			continue
		}
		inst, err := b.startInstance(ctx, k)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.instances[k] = inst
	}

	// Add new or changed sessions, then converge routes per instance.
	b.placed = map[string]serverKey{}
	for _, name := range sortedKeys(newPlaced) {
		k := newPlaced[name]
		inst, ok := b.instances[k]
		if !ok {
			continue // its instance failed to start; reported above
		}
		if _, ok := inst.sessions[name]; !ok {
			if err := inst.addPeer(ctx, want[name]); err != nil {
				// GoBGP refused this peer (say, a bind it cannot make):
				// this session is out, the others run.
				skipped.Add(name, err)
				continue
			}
		}
		b.placed[name] = k
	}
	for _, k := range sortedInstanceKeys(b.instances) {
		inst := b.instances[k]
		routes := map[string][]lbgp.Route{}
		for name := range inst.sessions {
			if rs := norm.Routes[name]; len(rs) > 0 {
				routes[name] = rs
			}
		}
		if err := inst.converge(ctx, routes); err != nil {
			inst.broken = true
			errs = append(errs, err)
		}
	}

	// Stop instances without sessions.
	for k, inst := range b.instances {
		if len(inst.sessions) == 0 {
			b.stopInstance(inst)
			delete(b.instances, k)
		}
	}
	if len(errs) > 0 {
		return errors.Join(skipped.OrNil(), fmt.Errorf("native BGP backend: %w", errors.Join(errs...)))
	}
	b.last = lastApply{followable: givenNormal(d, norm), sessions: slices.Clone(d.Sessions), skipped: skipped}
	return skipped.OrNil()
}

// givenNormal reports whether the routes given for every session kept
// are already what Normalize made of them: then a later state that
// changes a few of them, each normal, is normal as a whole.
func givenNormal(given, norm lbgp.DesiredState) bool {
	for _, s := range norm.Sessions {
		if !slices.EqualFunc(given.Routes[s.Name], norm.Routes[s.Name], lbgp.Route.Equal) {
			return false
		}
	}
	return true
}

// ApplyChanges implements bgp.ChangeApplier: the changed prefixes alone
// are withdrawn, added and moved between the export policy's prefix sets,
// in the order converge uses; a change it cannot follow that way goes
// through converge for its instance, or through Apply.
func (b *Backend) ApplyChanges(ctx context.Context, d lbgp.DesiredState, changed []lbgp.RouteChange) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("native BGP backend: closed")
	}
	byInstance, ok := b.follow(d, changed)
	if !ok {
		return b.apply(ctx, d)
	}
	var errs []error
	for _, k := range sortedInstanceKeys(b.instances) {
		chg, ok := byInstance[k]
		if !ok {
			continue
		}
		inst := b.instances[k]
		if err := inst.convergeChanges(ctx, d.Routes, chg); err != nil {
			inst.broken = true
			errs = append(errs, err)
		}
	}
	if len(errs) > 0 {
		skipped := b.last.skipped
		b.last = lastApply{}
		return errors.Join(skipped.OrNil(), fmt.Errorf("native BGP backend: %w", errors.Join(errs...)))
	}
	return b.last.skipped.OrNil()
}

// follow groups the changes by instance and session, or reports that d
// must be applied in full: the previous call failed or was given routes
// that were not normal, the sessions differ, or a changed route is not
// normal for its session or belongs to a session left out.
func (b *Backend) follow(d lbgp.DesiredState, changed []lbgp.RouteChange) (map[serverKey]map[string][]netip.Prefix, bool) {
	if !b.last.followable || !slices.EqualFunc(d.Sessions, b.last.sessions, func(x, y lbgp.Session) bool { return x.Equal(&y) }) {
		return nil, false
	}
	out := map[serverKey]map[string][]netip.Prefix{}
	for _, c := range changed {
		k, ok := b.placed[c.Session]
		if !ok {
			// Left out (reported again by a full Apply) or unknown.
			return nil, false
		}
		inst := b.instances[k]
		s := inst.sessions[c.Session]
		if r, found := findRoute(d.Routes[c.Session], c.Prefix); found {
			m := lbgp.MergeRoutes([]lbgp.Route{r}, s.IBGP())
			if !r.Prefix.IsValid() || !s.Carries(r.Prefix) || len(m) != 1 || !m[0].Equal(r) {
				return nil, false
			}
		}
		if out[k] == nil {
			out[k] = map[string][]netip.Prefix{}
		}
		out[k][c.Session] = append(out[k][c.Session], c.Prefix)
	}
	return out, true
}

// findRoute finds the route of prefix p in routes sorted by prefix.
func findRoute(routes []lbgp.Route, p netip.Prefix) (lbgp.Route, bool) {
	i, ok := slices.BinarySearchFunc(routes, p, func(r lbgp.Route, p netip.Prefix) int { return lbgp.ComparePrefixes(r.Prefix, p) })
	if !ok {
		return lbgp.Route{}, false
	}
	return routes[i], true
}

func ptr[T any](v T) *T { return &v }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sortedInstanceKeys(m map[serverKey]*instance) []serverKey {
	out := make([]serverKey, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].String() < out[j].String() })
	return out
}

func (b *Backend) startInstance(ctx context.Context, k serverKey) (*instance, error) {
	srv := server.NewBgpServer(server.LoggerOption(&logAdapter{l: b.log.WithValues("bgpServer", k.String())}))
	go srv.Serve()
	inst := &instance{key: k, srv: srv, sessions: map[string]lbgp.Session{}, exported: map[string][]lbgp.Route{}, rib: map[netip.Prefix]bool{}}
	err := srv.StartBgp(ctx, &api.StartBgpRequest{Global: &api.Global{
		Asn:      k.ASN,
		RouterId: k.RouterID.String(),
		// Never listen: the speaker connects out; a listener would need
		// port 179 on the host, which FRR or another speaker may hold.
		ListenPort: -1,
	}})
	if err == nil {
		// Received routes are never installed nor passed on. GoBGP runs
		// the global import policy on locally originated paths too, so
		// the policy accepts those and rejects everything else.
		err = srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: &api.Policy{Name: importPolicy, Statements: []*api.Statement{{
			Name:       importPolicy + "-local",
			Conditions: &api.Conditions{RouteType: api.Conditions_ROUTE_TYPE_LOCAL},
			Actions:    &api.Actions{RouteAction: api.RouteAction_ACCEPT},
		}}}})
	}
	if err == nil {
		err = srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
			Name: "global", Direction: api.PolicyDirection_IMPORT, DefaultAction: api.RouteAction_REJECT,
			Policies: []*api.Policy{{Name: importPolicy}}}})
	}
	if err == nil {
		// Nothing is exported until a policy statement gives it to a peer.
		err = srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: &api.PolicyAssignment{
			Name: "global", Direction: api.PolicyDirection_EXPORT, DefaultAction: api.RouteAction_REJECT}})
	}
	if err != nil {
		srv.Stop()
		return nil, fmt.Errorf("start GoBGP server (%s): %w", k, err)
	}
	return inst, nil
}

// importPolicy is the name of the import policy that keeps local paths
// and drops received ones.
const importPolicy = "lbstack-import"

func (b *Backend) stopInstance(inst *instance) {
	inst.srv.Stop()
}

// peerFor builds GoBGP's peer configuration for a session.
func peerFor(s lbgp.Session) *api.Peer {
	p := &api.Peer{
		Conf: &api.PeerConf{
			NeighborAddress: s.PeerAddr.String(),
			PeerAsn:         s.PeerASN,
			LocalAsn:        s.LocalAS(),
			AuthPassword:    s.Password,
		},
		Timers: &api.Timers{Config: &api.TimersConfig{
			ConnectRetry: seconds(s.EffectiveConnectTime()),
			// GoBGP waits this long (30 s by default) before reconnecting
			// after a session went down; the connect time is what the
			// user asked for.
			IdleHoldTimeAfterReset: seconds(s.EffectiveConnectTime()),
		}},
		Transport: &api.Transport{
			RemotePort: uint32(s.Port),
			// The VRF device: the session's socket is bound to it, so its
			// routes come from the VRF's table.
			BindInterface: s.VRF,
		},
	}
	if s.SourceAddr.IsValid() {
		p.Transport.LocalAddress = s.SourceAddr.String()
	}
	if s.HoldTime != nil {
		p.Timers.Config.HoldTime = seconds(*s.HoldTime)
	}
	if s.KeepaliveTime != nil {
		p.Timers.Config.KeepaliveInterval = seconds(*s.KeepaliveTime)
	}
	if s.EBGPMultiHop {
		p.EbgpMultihop = &api.EbgpMultihop{Enabled: true, MultihopTtl: 255}
	}
	if s.GracefulRestart {
		p.GracefulRestart = &api.GracefulRestart{Enabled: true, RestartTime: 120}
	}
	for _, f := range families(s) {
		afi := &api.AfiSafi{Config: &api.AfiSafiConfig{Family: f, Enabled: true}}
		if s.GracefulRestart {
			afi.MpGracefulRestart = &api.MpGracefulRestart{Config: &api.MpGracefulRestartConfig{Enabled: true}}
		}
		p.AfiSafis = append(p.AfiSafis, afi)
	}
	return p
}

var (
	familyIPv4 = &api.Family{Afi: api.Family_AFI_IP, Safi: api.Family_SAFI_UNICAST}
	familyIPv6 = &api.Family{Afi: api.Family_AFI_IP6, Safi: api.Family_SAFI_UNICAST}
)

func families(s lbgp.Session) []*api.Family {
	var out []*api.Family
	if s.CarriesIPv4() {
		out = append(out, familyIPv4)
	}
	if s.CarriesIPv6() {
		out = append(out, familyIPv6)
	}
	return out
}

func seconds(d time.Duration) uint64 { return uint64(d / time.Second) }

func (inst *instance) addPeer(ctx context.Context, s lbgp.Session) error {
	if err := inst.srv.AddPeer(ctx, &api.AddPeerRequest{Peer: peerFor(s)}); err != nil {
		return fmt.Errorf("session %q: add GoBGP peer %s: %w", s.Name, s.PeerAddr, err)
	}
	inst.sessions[s.Name] = s
	return nil
}

func (inst *instance) deletePeer(ctx context.Context, name string) error {
	s, ok := inst.sessions[name]
	if !ok {
		return nil
	}
	delete(inst.sessions, name)
	// Its routes leave the export policy at the next converge; the peer
	// is gone, so nothing is withdrawn towards it.
	delete(inst.exported, name)
	if err := inst.srv.DeletePeer(ctx, &api.DeletePeerRequest{Address: s.PeerAddr.String()}); err != nil {
		inst.broken = true
		return fmt.Errorf("session %q: delete GoBGP peer %s: %w", name, s.PeerAddr, err)
	}
	return nil
}

// routePlan is what converge does, computed purely from the old and new
// exports (see the package comment for the order).
type routePlan struct {
	// Withdraw are local paths to delete before the policy swap.
	Withdraw []netip.Prefix
	// Add are local paths to add after it.
	Add []netip.Prefix
	// PolicyChanged tells whether the export policy must be replaced.
	PolicyChanged bool
	// Refresh are the sessions to soft-reset out after the swap.
	Refresh []string
}

// planRoutes computes the plan from the exported routes per session before
// (old) and after (new) and the paths in the RIB.
func planRoutes(old, new map[string][]lbgp.Route, rib map[netip.Prefix]bool) routePlan {
	var p routePlan
	want := map[netip.Prefix]bool{}
	for _, rs := range new {
		for _, r := range rs {
			want[r.Prefix] = true
		}
	}
	withdraw := map[netip.Prefix]bool{}
	for pfx := range rib {
		if !want[pfx] {
			withdraw[pfx] = true
		}
	}
	// A prefix a session loses while another keeps it: withdraw from all,
	// re-add (GoBGP cannot withdraw towards one peer only).
	for name, rs := range old {
		keep := map[netip.Prefix]bool{}
		for _, r := range new[name] {
			keep[r.Prefix] = true
		}
		if _, still := new[name]; !still {
			// The session has no routes any more, but may still exist.
			keep = map[netip.Prefix]bool{}
		}
		for _, r := range rs {
			if !keep[r.Prefix] && rib[r.Prefix] {
				withdraw[r.Prefix] = true
			}
		}
	}
	for pfx := range withdraw {
		p.Withdraw = append(p.Withdraw, pfx)
	}
	for pfx := range want {
		if !rib[pfx] || withdraw[pfx] {
			p.Add = append(p.Add, pfx)
		}
	}
	slices.SortFunc(p.Withdraw, lbgp.ComparePrefixes)
	slices.SortFunc(p.Add, lbgp.ComparePrefixes)
	names := map[string]bool{}
	for name := range old {
		names[name] = true
	}
	for name := range new {
		names[name] = true
	}
	for name := range names {
		if !slices.EqualFunc(old[name], new[name], lbgp.Route.Equal) {
			p.Refresh = append(p.Refresh, name)
			p.PolicyChanged = true
		}
	}
	sort.Strings(p.Refresh)
	return p
}

// converge makes the instance's RIB and export policy match routes (per
// session name; only sessions of this instance).
func (inst *instance) converge(ctx context.Context, routes map[string][]lbgp.Route) error {
	plan := planRoutes(inst.exported, routes, inst.rib)
	if err := inst.withdrawPaths(ctx, plan.Withdraw); err != nil {
		return err
	}
	if plan.PolicyChanged {
		if delta, ok := policyDelta(inst.policy, inst.sessions, inst.exported, routes, plan); ok {
			// Only prefixes announced or withdrawn now move: their
			// prefix sets change in place, and the paths added next are
			// filtered by them. No new policy, no refresh: the cost is
			// the change, not the table.
			if err := inst.updateSets(ctx, delta); err != nil {
				return err
			}
			plan.Refresh = nil
		} else if err := inst.swapPolicy(ctx, routes); err != nil {
			return err
		}
	}
	if err := inst.addPaths(ctx, plan.Add); err != nil {
		return err
	}
	inst.exported = routes
	for _, name := range plan.Refresh {
		s, ok := inst.sessions[name]
		if !ok {
			continue
		}
		// Soft reset out re-sends what the new policy accepts; it never
		// touches the session.
		if err := inst.srv.ResetPeer(ctx, &api.ResetPeerRequest{Address: s.PeerAddr.String(), Soft: true, Direction: api.ResetPeerRequest_OUT}); err != nil {
			return fmt.Errorf("session %q: refresh routes: %w", name, err)
		}
	}
	return nil
}

// withdrawPaths deletes the local paths of the prefixes from the RIB:
// GoBGP withdraws each from every peer that has it.
func (inst *instance) withdrawPaths(ctx context.Context, prefixes []netip.Prefix) error {
	for _, pfx := range prefixes {
		path, err := localPath(pfx, true)
		if err == nil {
			err = inst.srv.DeletePath(ctx, &api.DeletePathRequest{TableType: api.TableType_GLOBAL, Family: path.Family, Path: path})
		}
		if err != nil {
			return fmt.Errorf("GoBGP server (%s): withdraw %s: %w", inst.key, pfx, err)
		}
		delete(inst.rib, pfx)
	}
	return nil
}

// addPaths adds the local paths of the prefixes to the RIB: the export
// policy decides which peers get each.
func (inst *instance) addPaths(ctx context.Context, prefixes []netip.Prefix) error {
	for _, pfx := range prefixes {
		path, err := localPath(pfx, false)
		if err == nil {
			_, err = inst.srv.AddPath(ctx, &api.AddPathRequest{TableType: api.TableType_GLOBAL, Path: path})
		}
		if err != nil {
			return fmt.Errorf("GoBGP server (%s): announce %s: %w", inst.key, pfx, err)
		}
		inst.rib[pfx] = true
	}
	return nil
}

// localPath is the locally originated path of a prefix: origin IGP, next
// hop unspecified so GoBGP puts the session's local address (next-hop
// self); the export policy adds everything per peer.
func localPath(p netip.Prefix, withdraw bool) (*api.Path, error) {
	origin := bgp.NewPathAttributeOrigin(bgp.BGP_ORIGIN_ATTR_TYPE_IGP)
	var nlri bgp.AddrPrefixInterface
	var attrs []bgp.PathAttributeInterface
	if p.Addr().Is4() {
		nlri = bgp.NewIPAddrPrefix(uint8(p.Bits()), p.Addr().String())
		attrs = []bgp.PathAttributeInterface{origin, bgp.NewPathAttributeNextHop("0.0.0.0")}
	} else {
		nlri = bgp.NewIPv6AddrPrefix(uint8(p.Bits()), p.Addr().String())
		attrs = []bgp.PathAttributeInterface{origin, bgp.NewPathAttributeMpReachNLRI("::", []bgp.AddrPrefixInterface{nlri})}
	}
	path, err := apiutil.NewPath(nlri, withdraw, attrs, time.Now())
	if err != nil {
		return nil, fmt.Errorf("encode path %s: %w", p, err)
	}
	return path, nil
}

// swapPolicy installs the export policy for routes under a new generation
// and removes the previous one.
func (inst *instance) swapPolicy(ctx context.Context, routes map[string][]lbgp.Route) error {
	inst.gen++
	sets, pol, groups := exportPolicyGroups(inst.gen, inst.sessions, routes)
	for _, set := range sets {
		if err := inst.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: set}); err != nil {
			return fmt.Errorf("GoBGP server (%s): add defined set %s: %w", inst.key, set.Name, err)
		}
	}
	assign := &api.PolicyAssignment{Name: "global", Direction: api.PolicyDirection_EXPORT, DefaultAction: api.RouteAction_REJECT}
	var next *policyNames
	if pol != nil {
		if err := inst.srv.AddPolicy(ctx, &api.AddPolicyRequest{Policy: pol}); err != nil {
			return fmt.Errorf("GoBGP server (%s): add policy %s: %w", inst.key, pol.Name, err)
		}
		assign.Policies = []*api.Policy{{Name: pol.Name}}
		next = &policyNames{policy: pol.Name, sets: sets, sessions: maps.Clone(inst.sessions), groups: groups, counts: map[string]int{}}
		for _, set := range sets {
			if set.DefinedType == api.DefinedType_PREFIX {
				next.counts[set.Name] = len(set.Prefixes)
			}
		}
	}
	if err := inst.srv.SetPolicyAssignment(ctx, &api.SetPolicyAssignmentRequest{Assignment: assign}); err != nil {
		return fmt.Errorf("GoBGP server (%s): assign export policy: %w", inst.key, err)
	}
	prev := inst.policy
	inst.policy = next
	if prev != nil {
		if err := inst.srv.DeletePolicy(ctx, &api.DeletePolicyRequest{Policy: &api.Policy{Name: prev.policy}, All: true}); err != nil {
			return fmt.Errorf("GoBGP server (%s): delete policy %s: %w", inst.key, prev.policy, err)
		}
		for _, set := range prev.sets {
			if err := inst.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: &api.DefinedSet{DefinedType: set.DefinedType, Name: set.Name}, All: true}); err != nil {
				return fmt.Errorf("GoBGP server (%s): delete defined set %s: %w", inst.key, set.Name, err)
			}
		}
	}
	return nil
}

// attrKey groups a session's routes of one family by their attributes: one
// statement per group.
type attrKey struct {
	v6        bool
	comms     string
	localPref uint32
}

// exportPolicy builds the export policy of generation gen: per session
// (sorted by name), per family, per distinct attribute set, a statement
// accepting exactly those prefixes towards that peer and setting their
// attributes. It returns nil for no statements.
func exportPolicy(gen int, sessions map[string]lbgp.Session, routes map[string][]lbgp.Route) ([]*api.DefinedSet, *api.Policy) {
	sets, pol, _ := exportPolicyGroups(gen, sessions, routes)
	return sets, pol
}

// exportPolicyGroups is exportPolicy, with the name of the prefix set of
// each (session, attributes) statement.
func exportPolicyGroups(gen int, sessions map[string]lbgp.Session, routes map[string][]lbgp.Route) ([]*api.DefinedSet, *api.Policy, map[string]map[attrKey]string) {
	groupNames := map[string]map[attrKey]string{}
	var sets []*api.DefinedSet
	pol := &api.Policy{Name: fmt.Sprintf("lbstack-export-%d", gen)}
	for si, name := range sortedKeys(sessions) {
		s := sessions[name]
		rs := routes[name]
		if len(rs) == 0 {
			continue
		}
		bits := 32
		if s.PeerAddr.Is6() {
			bits = 128
		}
		nset := &api.DefinedSet{DefinedType: api.DefinedType_NEIGHBOR, Name: fmt.Sprintf("lbstack-%d-n%d", gen, si),
			List: []string{netip.PrefixFrom(s.PeerAddr, bits).String()}}
		sets = append(sets, nset)
		groups := map[attrKey][]lbgp.Route{}
		var order []attrKey
		for _, r := range rs {
			k := attrKey{v6: r.Prefix.Addr().Is6(), comms: fmt.Sprint(r.Communities), localPref: r.LocalPref}
			if _, ok := groups[k]; !ok {
				order = append(order, k)
			}
			groups[k] = append(groups[k], r)
		}
		for gi, k := range order {
			grp := groups[k]
			pset := &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: fmt.Sprintf("lbstack-%d-p%d-%d", gen, si, gi)}
			if groupNames[name] == nil {
				groupNames[name] = map[attrKey]string{}
			}
			groupNames[name][k] = pset.Name
			for _, r := range grp {
				l := uint32(r.Prefix.Bits())
				pset.Prefixes = append(pset.Prefixes, &api.Prefix{IpPrefix: r.Prefix.String(), MaskLengthMin: l, MaskLengthMax: l})
			}
			sets = append(sets, pset)
			act := &api.Actions{RouteAction: api.RouteAction_ACCEPT}
			std, large := community.Split(grp[0].Communities)
			if len(std) > 0 {
				act.Community = &api.CommunityAction{Type: api.CommunityAction_ADD, Communities: std}
			}
			if len(large) > 0 {
				act.LargeCommunity = &api.CommunityAction{Type: api.CommunityAction_ADD, Communities: large}
			}
			if k.localPref != 0 && s.IBGP() {
				act.LocalPref = &api.LocalPrefAction{Value: k.localPref}
			}
			if nh := s.NextHopIPv4; !k.v6 && nh.IsValid() {
				act.Nexthop = &api.NexthopAction{Address: nh.String()}
			}
			if nh := s.NextHopIPv6; k.v6 && nh.IsValid() {
				act.Nexthop = &api.NexthopAction{Address: nh.String()}
			}
			pol.Statements = append(pol.Statements, &api.Statement{
				Name: fmt.Sprintf("lbstack-%d-s%d-%d", gen, si, gi),
				Conditions: &api.Conditions{
					NeighborSet: &api.MatchSet{Type: api.MatchSet_ANY, Name: nset.Name},
					PrefixSet:   &api.MatchSet{Type: api.MatchSet_ANY, Name: pset.Name},
				},
				Actions: act,
			})
		}
	}
	if len(pol.Statements) == 0 {
		return nil, nil, nil
	}
	return sets, pol, groupNames
}

// routeKey is the statement a route falls under.
func routeKey(r lbgp.Route) attrKey {
	return attrKey{v6: r.Prefix.Addr().Is6(), comms: fmt.Sprint(r.Communities), localPref: r.LocalPref}
}

// setDelta is what a prefix set gains and loses.
type setDelta struct {
	add, del []netip.Prefix
}

// policyDelta returns, when the current policy can follow the change by
// editing its prefix sets in place, the prefixes each set gains and
// loses; ok is false when it needs a new policy (and a refresh). That is
// when the sessions changed, a session gains or loses an attribute group
// (a statement), or a prefix changes statement while its path stays in
// the RIB (only a refresh would re-send it). A prefix whose path is added
// or withdrawn now may move freely: GoBGP filters a path when it is added
// and withdraws a deleted one from every peer that has it.
func policyDelta(cur *policyNames, sessions map[string]lbgp.Session, old, new map[string][]lbgp.Route, plan routePlan) (map[string]*setDelta, bool) {
	if !cur.builtFor(sessions) {
		return nil, false
	}
	// plan's lists are sorted and short; the routes are long (the whole
	// table) and sorted by prefix (Normalize): one merge walk per session,
	// without maps or per-route allocations.
	in := func(list []netip.Prefix, p netip.Prefix) bool {
		_, ok := slices.BinarySearchFunc(list, p, lbgp.ComparePrefixes)
		return ok
	}
	byPrefix := func(a, b lbgp.Route) int { return lbgp.ComparePrefixes(a.Prefix, b.Prefix) }
	delta := map[string]*setDelta{}
	at := func(set string) *setDelta { return deltaAt(delta, set) }
	names := map[string]bool{}
	for n := range old {
		names[n] = true
	}
	for n := range new {
		names[n] = true
	}
	for name := range names {
		o, n := old[name], new[name]
		if slices.EqualFunc(o, n, lbgp.Route.Equal) {
			continue
		}
		if !slices.IsSortedFunc(o, byPrefix) || !slices.IsSortedFunc(n, byPrefix) {
			return nil, false
		}
		groups := cur.groups[name]
		// The statements stay: the session keeps exactly its attribute
		// groups. Counted along the walk.
		used := map[attrKey]bool{}
		i, j := 0, 0
		for i < len(o) || j < len(n) {
			c := 0
			switch {
			case i == len(o):
				c = 1
			case j == len(n):
				c = -1
			default:
				c = lbgp.ComparePrefixes(o[i].Prefix, n[j].Prefix)
			}
			switch {
			case c == 0 && o[i].Equal(n[j]):
				// Unchanged; its group is in use (keys only for the
				// groups not yet seen).
				if len(used) < len(groups) {
					used[routeKey(n[j])] = true
				}
				i, j = i+1, j+1
			case c == 0:
				// Attributes changed: only if its path is withdrawn and
				// added again now.
				if !in(plan.Withdraw, n[j].Prefix) || !in(plan.Add, n[j].Prefix) {
					return nil, false
				}
				ko, kn := routeKey(o[i]), routeKey(n[j])
				if _, ok := groups[kn]; !ok {
					return nil, false
				}
				used[kn] = true
				if ko != kn {
					at(groups[ko]).del = append(at(groups[ko]).del, o[i].Prefix)
					at(groups[kn]).add = append(at(groups[kn]).add, n[j].Prefix)
				}
				i, j = i+1, j+1
			case c < 0:
				// The session loses it: its path must be withdrawn now.
				if !in(plan.Withdraw, o[i].Prefix) {
					return nil, false
				}
				k := routeKey(o[i])
				at(groups[k]).del = append(at(groups[k]).del, o[i].Prefix)
				i++
			default:
				// The session gains it: its path must be added now.
				if !in(plan.Add, n[j].Prefix) {
					return nil, false
				}
				k := routeKey(n[j])
				if _, ok := groups[k]; !ok {
					return nil, false
				}
				used[k] = true
				at(groups[k]).add = append(at(groups[k]).add, n[j].Prefix)
				j++
			}
		}
		if len(used) != len(groups) {
			// A statement would be left empty.
			return nil, false
		}
	}
	return delta, true
}

// builtFor reports whether the policy was built for exactly these
// sessions: only then can its statements be edited in place.
func (cur *policyNames) builtFor(sessions map[string]lbgp.Session) bool {
	if cur == nil || len(cur.sessions) != len(sessions) {
		return false
	}
	for name, s := range sessions {
		was, ok := cur.sessions[name]
		if !ok || !was.Equal(&s) {
			return false
		}
	}
	return true
}

// deltaAt is the edit of prefix set set in delta, added when missing.
func deltaAt(delta map[string]*setDelta, set string) *setDelta {
	d := delta[set]
	if d == nil {
		d = &setDelta{}
		delta[set] = d
	}
	return d
}

// updateSets edits the current policy's prefix sets in place.
func (inst *instance) updateSets(ctx context.Context, delta map[string]*setDelta) error {
	prefixes := func(ps []netip.Prefix) []*api.Prefix {
		out := make([]*api.Prefix, 0, len(ps))
		for _, p := range ps {
			l := uint32(p.Bits())
			out = append(out, &api.Prefix{IpPrefix: p.String(), MaskLengthMin: l, MaskLengthMax: l})
		}
		return out
	}
	for _, name := range sortedKeys(delta) {
		d := delta[name]
		if len(d.del) > 0 {
			set := &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: name, Prefixes: prefixes(d.del)}
			if err := inst.srv.DeleteDefinedSet(ctx, &api.DeleteDefinedSetRequest{DefinedSet: set}); err != nil {
				inst.policy.sessions = nil // the next converge replaces the policy
				return fmt.Errorf("GoBGP server (%s): remove prefixes from %s: %w", inst.key, name, err)
			}
		}
		if len(d.add) > 0 {
			set := &api.DefinedSet{DefinedType: api.DefinedType_PREFIX, Name: name, Prefixes: prefixes(d.add)}
			if err := inst.srv.AddDefinedSet(ctx, &api.AddDefinedSetRequest{DefinedSet: set}); err != nil {
				inst.policy.sessions = nil
				return fmt.Errorf("GoBGP server (%s): add prefixes to %s: %w", inst.key, name, err)
			}
		}
		inst.policy.counts[name] += len(d.add) - len(d.del)
	}
	return nil
}

// convergeChanges is converge for routes that differ from what the
// instance exports only at the changed prefixes of some sessions (all is
// every session's new routes, sorted by prefix): those prefixes alone are
// planned and applied, in converge's order. A change the current policy
// cannot follow in place goes through converge.
func (inst *instance) convergeChanges(ctx context.Context, all map[string][]lbgp.Route, changed map[string][]netip.Prefix) error {
	next := make(map[string][]lbgp.Route, len(changed))
	for name := range changed {
		next[name] = all[name]
	}
	plan, delta, ok := planChanges(inst.exported, next, inst.rib, changed, inst.sessions, inst.policy)
	if !ok {
		routes := maps.Clone(inst.exported)
		for name, rs := range next {
			if len(rs) > 0 {
				routes[name] = rs
			} else {
				delete(routes, name)
			}
		}
		return inst.converge(ctx, routes)
	}
	if err := inst.withdrawPaths(ctx, plan.Withdraw); err != nil {
		return err
	}
	if err := inst.updateSets(ctx, delta); err != nil {
		return err
	}
	if err := inst.addPaths(ctx, plan.Add); err != nil {
		return err
	}
	// A new map: the previous one may be held by a converge plan's caller.
	exported := maps.Clone(inst.exported)
	for name, rs := range next {
		if len(rs) > 0 {
			exported[name] = rs
		} else {
			delete(exported, name)
		}
	}
	inst.exported = exported
	return nil
}

// planChanges is planRoutes and policyDelta for new routes (next: the new
// routes of the sessions with changes; the others' are old) that differ
// from old only at the changed prefixes, at a cost of a few binary
// searches per changed prefix. ok is false when the current policy cannot
// follow in place (policyDelta's rules), and converge must run instead.
func planChanges(old, next map[string][]lbgp.Route, rib map[netip.Prefix]bool, changed map[string][]netip.Prefix,
	sessions map[string]lbgp.Session, cur *policyNames) (routePlan, map[string]*setDelta, bool) {
	var plan routePlan
	if !cur.builtFor(sessions) {
		return plan, nil, false
	}
	routesOf := func(name string) []lbgp.Route {
		if rs, ok := next[name]; ok {
			return rs
		}
		return old[name]
	}
	// The sessions that export something before or after.
	var names []string
	for name := range old {
		names = append(names, name)
	}
	for name, rs := range next {
		if _, ok := old[name]; !ok && len(rs) > 0 {
			names = append(names, name)
		}
	}
	seen := map[netip.Prefix]bool{}
	withdraw, add := map[netip.Prefix]bool{}, map[netip.Prefix]bool{}
	for _, pfxs := range changed {
		for _, p := range pfxs {
			if seen[p] {
				continue
			}
			seen[p] = true
			want, lost := false, false
			for _, name := range names {
				_, inOld := findRoute(old[name], p)
				_, inNew := findRoute(routesOf(name), p)
				want = want || inNew
				lost = lost || (inOld && !inNew)
			}
			if rib[p] && (!want || lost) {
				withdraw[p] = true
				plan.Withdraw = append(plan.Withdraw, p)
			}
			if want && (!rib[p] || withdraw[p]) {
				add[p] = true
				plan.Add = append(plan.Add, p)
			}
		}
	}
	slices.SortFunc(plan.Withdraw, lbgp.ComparePrefixes)
	slices.SortFunc(plan.Add, lbgp.ComparePrefixes)
	delta := map[string]*setDelta{}
	at := func(set string) *setDelta { return deltaAt(delta, set) }
	for name, pfxs := range changed {
		groups := cur.groups[name]
		done := map[netip.Prefix]bool{}
		for _, p := range pfxs {
			if done[p] {
				continue
			}
			done[p] = true
			o, inOld := findRoute(old[name], p)
			n, inNew := findRoute(routesOf(name), p)
			if inOld && inNew && o.Equal(n) || !inOld && !inNew {
				continue
			}
			plan.PolicyChanged = true
			var ko, kn attrKey
			if inOld {
				// The session loses it or its attributes change: only if
				// its path is withdrawn now.
				ko = routeKey(o)
				if _, ok := groups[ko]; !ok || !withdraw[p] {
					return plan, nil, false
				}
			}
			if inNew {
				// The session gains it or its attributes change: only if
				// its path is added now, under a statement that exists.
				kn = routeKey(n)
				if _, ok := groups[kn]; !ok || !add[p] {
					return plan, nil, false
				}
			}
			if inOld && inNew && ko == kn {
				continue
			}
			if inOld {
				at(groups[ko]).del = append(at(groups[ko]).del, p)
			}
			if inNew {
				at(groups[kn]).add = append(at(groups[kn]).add, p)
			}
		}
	}
	for set, d := range delta {
		if cur.counts[set]+len(d.add)-len(d.del) <= 0 {
			// A statement would be left empty.
			return plan, nil, false
		}
	}
	return plan, delta, true
}

// Status implements bgp.Backend.
func (b *Backend) Status() []lbgp.SessionStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []lbgp.SessionStatus
	for _, inst := range b.instances {
		byAddr := map[string]string{}
		for name, s := range inst.sessions {
			byAddr[s.PeerAddr.String()] = name
			out = append(out, lbgp.SessionStatus{Name: name, PeerAddr: s.PeerAddr, VRF: s.VRF, State: lbgp.StateUnknown, Advertised: len(inst.exported[name])})
		}
		_ = inst.srv.ListPeer(context.Background(), &api.ListPeerRequest{}, func(p *api.Peer) {
			if p.State == nil {
				return
			}
			name, ok := byAddr[p.State.NeighborAddress]
			if !ok {
				return
			}
			for i := range out {
				if out[i].Name != name {
					continue
				}
				out[i].State = sessionState(p.State.SessionState)
				if m := p.State.Messages; m != nil && m.Sent != nil {
					out[i].UpdatesSent = m.Sent.Update
				}
				if out[i].State == lbgp.StateEstablished && p.Timers != nil && p.Timers.State != nil && p.Timers.State.Uptime != nil {
					out[i].Since = p.Timers.State.Uptime.AsTime()
				}
			}
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func sessionState(s api.PeerState_SessionState) lbgp.SessionState {
	switch s {
	case api.PeerState_IDLE:
		return lbgp.StateIdle
	case api.PeerState_CONNECT:
		return lbgp.StateConnect
	case api.PeerState_ACTIVE:
		return lbgp.StateActive
	case api.PeerState_OPENSENT:
		return lbgp.StateOpenSent
	case api.PeerState_OPENCONFIRM:
		return lbgp.StateOpenConfirm
	case api.PeerState_ESTABLISHED:
		return lbgp.StateEstablished
	}
	return lbgp.StateUnknown
}

// Close implements bgp.Backend: every server stops, which closes its
// sessions (the peers see a Cease notification).
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	for k, inst := range b.instances {
		b.stopInstance(inst)
		delete(b.instances, k)
	}
	b.placed = map[string]serverKey{}
	return nil
}

// logAdapter sends GoBGP's log to logr.
type logAdapter struct {
	l     logr.Logger
	level gobgplog.LogLevel
}

func kv(f gobgplog.Fields) []any {
	out := make([]any, 0, 2*len(f))
	for _, k := range sortedKeys(f) {
		out = append(out, k, f[k])
	}
	return out
}

func (a *logAdapter) Panic(msg string, f gobgplog.Fields) { a.l.Error(nil, msg, kv(f)...) }
func (a *logAdapter) Fatal(msg string, f gobgplog.Fields) { a.l.Error(nil, msg, kv(f)...) }
func (a *logAdapter) Error(msg string, f gobgplog.Fields) { a.l.Error(nil, msg, kv(f)...) }
func (a *logAdapter) Warn(msg string, f gobgplog.Fields)  { a.l.Info(msg, kv(f)...) }
func (a *logAdapter) Info(msg string, f gobgplog.Fields)  { a.l.Info(msg, kv(f)...) }
func (a *logAdapter) Debug(msg string, f gobgplog.Fields) { a.l.V(2).Info(msg, kv(f)...) }
func (a *logAdapter) SetLevel(level gobgplog.LogLevel)    { a.level = level }
func (a *logAdapter) GetLevel() gobgplog.LogLevel         { return gobgplog.DebugLevel }
