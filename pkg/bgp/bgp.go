// Package bgp is the small contract between the speaker's decisions and a
// BGP implementation: the speaker computes a DesiredState (the sessions this
// node runs and the routes each session announces) and a Backend makes it
// so. Backends: pkg/bgp/native (embedded GoBGP) and, later, pkg/bgp/frr.
//
// Everything here is pure: types, validation and normalisation shared by
// every backend, so that they agree on what a state means.
package bgp

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/lbstack/lbstack/pkg/bfd"
	"github.com/lbstack/lbstack/pkg/community"
	"github.com/lbstack/lbstack/pkg/iprange"
)

// Session is one BGP session of this node, every default already resolved
// except where a field says the backend picks.
type Session struct {
	// Name identifies the session; the BGPPeer's name. Routes refer to it.
	Name string
	// MyASN is the speaker's AS.
	MyASN uint32
	// PeerASN is the peer's AS; 0 when DynamicASN is set.
	PeerASN uint32
	// LocalASN, when non-zero, is the AS presented to the peer instead of
	// MyASN.
	LocalASN uint32
	// DynamicASN is "internal" or "external" when the peer's AS is learned
	// from its OPEN (FRR only; the native backend refuses it).
	DynamicASN string
	// PeerAddr is the peer's address.
	PeerAddr netip.Addr
	// Port is the peer's TCP port.
	Port uint16
	// SourceAddr is the local address of the session; invalid for the
	// kernel's choice.
	SourceAddr netip.Addr
	// RouterID is the BGP identifier (IPv4).
	RouterID netip.Addr
	// HoldTime and KeepaliveTime are nil for the backend's defaults.
	HoldTime, KeepaliveTime *time.Duration
	// ConnectTime is the connect retry interval; nil for DefaultConnectTime.
	ConnectTime *time.Duration
	// Password is the TCP MD5 password; empty for none.
	Password string
	// EBGPMultiHop allows an eBGP peer more than one hop away.
	EBGPMultiHop bool
	// GracefulRestart enables RFC 4724 graceful restart.
	GracefulRestart bool
	// VRF is the VRF device the session is bound to; empty for the default
	// VRF.
	VRF string
	// DualStack carries IPv4 and IPv6 routes over this session; otherwise
	// only routes of PeerAddr's family.
	DualStack bool
	// NextHopIPv4 and NextHopIPv6 override the next hop of routes of that
	// family. Invalid (the usual case) means the session's local address,
	// which is right for the session's own family; a dual-stack session
	// needs the node's address of the other family here, as the local
	// address of an IPv4 session is no IPv6 next hop.
	NextHopIPv4, NextHopIPv6 netip.Addr
	// BFDProfile is the BFD profile of the session (FRR only; nil for no
	// BFD).
	BFDProfile *bfd.Profile
}

// DefaultConnectTime is the connect retry interval when a session does not
// set one. GoBGP's own default (120 s) would leave a session down for two
// minutes after a router restart; MetalLB's FRR configuration also retries
// quickly.
const DefaultConnectTime = 5 * time.Second

// LocalAS is the AS presented to the peer: LocalASN when set, else MyASN.
func (s *Session) LocalAS() uint32 {
	if s.LocalASN != 0 {
		return s.LocalASN
	}
	return s.MyASN
}

// IBGP reports whether the session is internal: the peer's AS is the AS we
// present, or dynamicASN is "internal".
func (s *Session) IBGP() bool {
	if s.DynamicASN != "" {
		return s.DynamicASN == "internal"
	}
	return s.PeerASN == s.LocalAS()
}

// Carries reports whether the session announces prefixes of p's family:
// its own family always, the other one only when DualStack.
func (s *Session) Carries(p netip.Prefix) bool {
	return s.DualStack || p.Addr().Is4() == s.PeerAddr.Is4()
}

// CarriesIPv4 and CarriesIPv6 tell which address families the session
// negotiates.
func (s *Session) CarriesIPv4() bool { return s.DualStack || s.PeerAddr.Is4() }

// CarriesIPv6 reports whether the session negotiates IPv6 unicast.
func (s *Session) CarriesIPv6() bool { return s.DualStack || s.PeerAddr.Is6() }

// EffectiveConnectTime is ConnectTime or DefaultConnectTime.
func (s *Session) EffectiveConnectTime() time.Duration {
	if s.ConnectTime != nil {
		return *s.ConnectTime
	}
	return DefaultConnectTime
}

// Equal reports whether two sessions are the same in every parameter, so a
// backend can tell an unchanged session (keep it) from a changed one.
func (s *Session) Equal(o *Session) bool {
	return s.Name == o.Name && s.MyASN == o.MyASN && s.PeerASN == o.PeerASN && s.LocalASN == o.LocalASN &&
		s.DynamicASN == o.DynamicASN && s.PeerAddr == o.PeerAddr && s.Port == o.Port &&
		s.SourceAddr == o.SourceAddr && s.RouterID == o.RouterID &&
		eqDur(s.HoldTime, o.HoldTime) && eqDur(s.KeepaliveTime, o.KeepaliveTime) && eqDur(s.ConnectTime, o.ConnectTime) &&
		s.Password == o.Password && s.EBGPMultiHop == o.EBGPMultiHop && s.GracefulRestart == o.GracefulRestart &&
		s.VRF == o.VRF && s.DualStack == o.DualStack && s.NextHopIPv4 == o.NextHopIPv4 && s.NextHopIPv6 == o.NextHopIPv6 &&
		eqBFD(s.BFDProfile, o.BFDProfile)
}

func eqDur(a, b *time.Duration) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func eqBFD(a, b *bfd.Profile) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// Route is one announced prefix with its attributes.
type Route struct {
	// Prefix is masked (no host bits).
	Prefix netip.Prefix
	// Communities are standard and large communities, sorted, no
	// duplicates (after Normalize).
	Communities []community.Community
	// LocalPref is the LOCAL_PREF attribute; 0 for none (the backend's
	// default). Only ever sent over iBGP sessions.
	LocalPref uint32
}

// Equal reports whether two routes are identical.
func (r Route) Equal(o Route) bool {
	return r.Prefix == o.Prefix && r.LocalPref == o.LocalPref && slices.Equal(r.Communities, o.Communities)
}

// DesiredState is everything a backend must make true.
type DesiredState struct {
	// Sessions of this node; names are unique.
	Sessions []Session
	// Routes by session name.
	Routes map[string][]Route
}

// Normalize validates the state and returns a canonical copy: sessions
// sorted by name; per session, routes merged by prefix (MergeRoutes),
// prefixes of a family the session does not carry dropped, LocalPref
// cleared on eBGP sessions (RFC 4271 5.1.5: LOCAL_PREF is not sent to
// external peers), and no entry for a session without routes. Two states
// that mean the same normalise to equal values, which lets backends diff.
//
// A session that is invalid (Session.Validate), whose name is given twice,
// or whose routes are malformed is left out with its routes; the error is
// then a *SkippedError naming each, and the state returned is the rest,
// valid: one bad session never stops the others.
func (d DesiredState) Normalize() (DesiredState, error) {
	sessions := slices.Clone(d.Sessions)
	slices.SortStableFunc(sessions, func(a, b Session) int { return cmp.Compare(a.Name, b.Name) })
	skipped := &SkippedError{}
	count := make(map[string]int, len(sessions))
	for _, s := range sessions {
		count[s.Name]++
	}
	byName := make(map[string]Session, len(sessions))
	for _, s := range sessions {
		switch err := s.Validate(); {
		case err != nil:
			skipped.Add(s.Name, err)
		case count[s.Name] > 1:
			skipped.Add(s.Name, fmt.Errorf("session %q is given %d times", s.Name, count[s.Name]))
		default:
			byName[s.Name] = s
		}
	}
	routes := make(map[string][]Route)
	for name, rs := range d.Routes {
		s, ok := byName[name]
		if !ok {
			if len(rs) > 0 && !skipped.Has(name) {
				skipped.Add(name, fmt.Errorf("routes for session %q, which is not a session", name))
			}
			continue
		}
		var keep []Route
		for _, r := range rs {
			if !r.Prefix.IsValid() {
				skipped.Add(name, fmt.Errorf("session %q: invalid prefix", name))
				keep = nil
				break
			}
			if s.Carries(r.Prefix) {
				keep = append(keep, r)
			}
		}
		if skipped.Has(name) {
			delete(byName, name)
			continue
		}
		if merged := MergeRoutes(keep, s.IBGP()); len(merged) > 0 {
			routes[name] = merged
		}
	}
	out := DesiredState{Routes: routes}
	for _, s := range sessions {
		if _, ok := byName[s.Name]; ok && !skipped.Has(s.Name) {
			out.Sessions = append(out.Sessions, s)
		}
	}
	if skipped.Empty() {
		return out, nil
	}
	return out, skipped
}

// SkippedError names the sessions a backend left out of what it applied,
// each with the reason: an invalid session, a value the backend cannot
// express (FRR's configuration language) or a feature it lacks (GoBGP has
// no BFD). Everything else of the state was applied. Backends return it
// from Apply on its own or inside errors.Join with other failures.
type SkippedError struct {
	// Sessions maps each skipped session's name to why.
	Sessions map[string]error
}

// Add records that the named session is skipped (the first reason wins).
func (e *SkippedError) Add(name string, why error) {
	if e.Sessions == nil {
		e.Sessions = map[string]error{}
	}
	if _, ok := e.Sessions[name]; !ok {
		e.Sessions[name] = why
	}
}

// Merge adds every session of o.
func (e *SkippedError) Merge(o *SkippedError) {
	if o == nil {
		return
	}
	for name, why := range o.Sessions {
		e.Add(name, why)
	}
}

// Has reports whether the named session is skipped.
func (e *SkippedError) Has(name string) bool {
	_, ok := e.Sessions[name]
	return ok
}

// Empty reports whether no session is skipped.
func (e *SkippedError) Empty() bool { return e == nil || len(e.Sessions) == 0 }

// OrNil returns e as an error, or nil when it names no session.
func (e *SkippedError) OrNil() error {
	if e.Empty() {
		return nil
	}
	return e
}

func (e *SkippedError) Error() string {
	names := make([]string, 0, len(e.Sessions))
	for name := range e.Sessions {
		names = append(names, name)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = e.Sessions[name].Error()
	}
	return "sessions skipped (the others are applied): " + strings.Join(parts, "; ")
}

// Without returns the state without the sessions sk names (and their
// routes).
func (d DesiredState) Without(sk *SkippedError) DesiredState {
	if sk.Empty() {
		return d
	}
	out := DesiredState{Routes: make(map[string][]Route, len(d.Routes))}
	for _, s := range d.Sessions {
		if !sk.Has(s.Name) {
			out.Sessions = append(out.Sessions, s)
		}
	}
	for name, rs := range d.Routes {
		if !sk.Has(name) {
			out.Routes[name] = rs
		}
	}
	return out
}

// SplitSkipped takes err (an Apply result) apart: the sessions it reports
// skipped, and the rest of the failure, nil when skipping was all of it.
func SplitSkipped(err error) (map[string]error, error) {
	if err == nil {
		return nil, nil
	}
	var sk *SkippedError
	if errors.As(err, &sk) && err == error(sk) {
		return sk.Sessions, nil
	}
	joined, ok := err.(interface{ Unwrap() []error })
	if !ok {
		return nil, err
	}
	var skipped map[string]error
	var rest []error
	for _, e := range joined.Unwrap() {
		if s, ok := e.(*SkippedError); ok {
			if skipped == nil {
				skipped = map[string]error{}
			}
			for k, v := range s.Sessions {
				skipped[k] = v
			}
			continue
		}
		rest = append(rest, e)
	}
	return skipped, errors.Join(rest...)
}

// Validate reports what makes a session unusable by any backend.
func (s *Session) Validate() error {
	var why string
	switch {
	case s.Name == "":
		why = "no name"
	case s.MyASN == 0:
		why = "no myASN"
	case s.PeerASN == 0 && s.DynamicASN == "":
		why = "no peer AS"
	case s.DynamicASN != "" && s.DynamicASN != "internal" && s.DynamicASN != "external":
		why = fmt.Sprintf("dynamicASN %q is neither internal nor external", s.DynamicASN)
	case !s.PeerAddr.IsValid():
		why = "no peer address"
	case s.Port == 0:
		why = "no port"
	case !s.RouterID.IsValid() || !s.RouterID.Is4():
		why = "no IPv4 router ID"
	case s.SourceAddr.IsValid() && s.SourceAddr.Is4() != s.PeerAddr.Is4():
		why = fmt.Sprintf("source address %s and peer address %s are of different families", s.SourceAddr, s.PeerAddr)
	case s.NextHopIPv4.IsValid() && !s.NextHopIPv4.Is4():
		why = fmt.Sprintf("IPv4 next hop %s is not IPv4", s.NextHopIPv4)
	case s.NextHopIPv6.IsValid() && !s.NextHopIPv6.Is6():
		why = fmt.Sprintf("IPv6 next hop %s is not IPv6", s.NextHopIPv6)
	default:
		return nil
	}
	return fmt.Errorf("session %q: %s", s.Name, why)
}

// MergeRoutes returns one route per prefix, sorted by prefix: routes of the
// same prefix (the same address announced by several advertisements, or
// several addresses under one aggregate) merge their communities (union,
// sorted) and keep the highest LocalPref, which is deterministic; config
// refuses advertisements that would set two different local-prefs for the
// same prefix towards the same peer. Prefixes are masked. On an eBGP
// session (ibgp false) LocalPref is cleared.
func MergeRoutes(routes []Route, ibgp bool) []Route {
	if len(routes) == 0 {
		return nil
	}
	byPrefix := make(map[netip.Prefix]*Route, len(routes))
	var order []netip.Prefix
	for _, r := range routes {
		p := r.Prefix.Masked()
		m, ok := byPrefix[p]
		if !ok {
			m = &Route{Prefix: p}
			byPrefix[p] = m
			order = append(order, p)
		}
		m.Communities = append(m.Communities, r.Communities...)
		if ibgp {
			m.LocalPref = max(m.LocalPref, r.LocalPref)
		}
	}
	slices.SortFunc(order, ComparePrefixes)
	out := make([]Route, 0, len(order))
	for _, p := range order {
		m := byPrefix[p]
		slices.SortFunc(m.Communities, func(a, b community.Community) int { return a.Compare(b) })
		m.Communities = slices.Compact(m.Communities)
		if len(m.Communities) == 0 {
			m.Communities = nil
		}
		out = append(out, *m)
	}
	return out
}

// ComparePrefixes orders prefixes: IPv4 before IPv6, then by address, then
// by length (iprange.ComparePrefixes).
func ComparePrefixes(a, b netip.Prefix) int { return iprange.ComparePrefixes(a, b) }

// Backend makes a DesiredState true on the wire.
type Backend interface {
	// Apply converges to the state: sessions not in it are closed, new ones
	// opened, changed ones updated (only those), and each session's peer
	// ends up with exactly its routes. Changing routes never resets a
	// session. On error the backend keeps running with what it could apply
	// and the caller retries.
	Apply(ctx context.Context, d DesiredState) error
	// Status reports every configured session, sorted by name.
	Status() []SessionStatus
	// Close closes every session and frees the backend.
	Close() error
}

// RouteChange names one route of one session, by prefix, that may differ
// between two states.
type RouteChange struct {
	Session string
	Prefix  netip.Prefix
}

// ChangeApplier is a Backend that can also apply a state known to differ
// from the one it was last given only at some routes, at a cost that
// grows with those routes rather than with the whole table: one Service
// changing among 10,000 moves one prefix, not 10,000.
type ChangeApplier interface {
	Backend
	// ApplyChanges has the effect of Apply(ctx, d), given that d differs
	// from the state of the previous Apply or ApplyChanges call only at
	// the routes changed names, and that d's routes are normal for its
	// sessions (as Normalize leaves them: sorted by prefix, merged, of
	// families the session carries). The backend checks the sessions and
	// the named routes, and applies d in full where it cannot follow the
	// change (the previous call failed, a session changed, a named route
	// is not normal or needs a new export statement); a route that
	// changed without being named is not looked at.
	ApplyChanges(ctx context.Context, d DesiredState, changed []RouteChange) error
}

// SessionState is the BGP FSM state of a session (RFC 4271 8.2.2).
type SessionState string

// The session states.
const (
	StateUnknown     SessionState = "Unknown"
	StateIdle        SessionState = "Idle"
	StateConnect     SessionState = "Connect"
	StateActive      SessionState = "Active"
	StateOpenSent    SessionState = "OpenSent"
	StateOpenConfirm SessionState = "OpenConfirm"
	StateEstablished SessionState = "Established"
)

// SessionStatus is what a backend knows about one session.
type SessionStatus struct {
	Name     string
	PeerAddr netip.Addr
	VRF      string
	State    SessionState
	// Since is when the session became Established; zero otherwise.
	Since time.Time
	// Advertised is the number of prefixes the session announces.
	Advertised int
	// UpdatesSent counts the BGP UPDATE messages sent on the session since
	// the backend created it.
	UpdatesSent uint64
}
