// Package bgptimers holds the rules for a BGP session's hold and keepalive
// times, which admission (pkg/config), the FRR renderer (pkg/bgp/frr) and
// the ConfigMap converter (pkg/legacyconfig) all apply: each words its own
// message, but they must agree on the rule.
package bgptimers

import "time"

const (
	// MinHoldTime is the shortest hold time other than 0: RFC 4271 §4.2
	// allows 0 (keepalives off) or at least three seconds.
	MinHoldTime = 3 * time.Second
	// Max is the longest hold time BGP can carry (16 bits of seconds in the
	// OPEN message); FRR bounds its other timers the same way.
	Max = 65535 * time.Second
)

// HoldTimeAllowed reports whether hold is 0 or at least MinHoldTime. It
// does not check Max: callers word that limit themselves.
func HoldTimeAllowed(hold time.Duration) bool {
	return hold == 0 || hold >= MinHoldTime
}

// KeepaliveAllowed reports whether keepalive fits hold: below it, or 0
// when hold is 0 (a zero hold time turns keepalives off). Negative times
// are refused before this rule applies.
func KeepaliveAllowed(keepalive, hold time.Duration) bool {
	if hold == 0 {
		return keepalive == 0
	}
	return keepalive < hold
}

// Derive returns the hold and keepalive times of a session that sets one
// or both, the way MetalLB does: only hold set, keepalive is a third of
// it; only keepalive set, hold is three times it. set is false when
// neither is (the backend's defaults apply). Derive does not check the
// results; keepalive*3 can exceed Max (or overflow for absurd inputs), so
// callers bound keepalive first when it alone is set.
func Derive(hold, keepalive *time.Duration) (h, k time.Duration, set bool) {
	switch {
	case hold != nil && keepalive != nil:
		return *hold, *keepalive, true
	case hold != nil:
		return *hold, *hold / 3, true
	case keepalive != nil:
		return 3 * *keepalive, *keepalive, true
	}
	return 0, 0, false
}
