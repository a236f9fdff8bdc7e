package speaker

import (
	"errors"
	"fmt"
	"sync"
	"time"
)

// stuckAfter is how long one reconcile may run before the speaker calls
// itself not alive: far beyond any real reconcile (they take milliseconds
// to a second or two), short enough that a deadlocked speaker is
// restarted within minutes rather than silently announcing stale routes.
const stuckAfter = 3 * time.Minute

// sessionWait is how long readiness waits for the BGP sessions that
// should carry routes to come up. During a rolling update the next node's
// speaker is replaced once this one is ready: ready before its sessions
// are up, two nodes would announce nothing at once. A peer that stays
// down (a router being replaced) must not block the rollout forever, so
// after this the speaker is ready all the same; ServiceBGPStatus and the
// session metrics still say which sessions are down.
const sessionWait = 60 * time.Second

// reconcileHealth is what the speaker's probes check: liveness, that the
// reconcile loop is not stuck; readiness, that the node's state was
// loaded and applied by the latest reconcile and its sessions carry it.
type reconcileHealth struct {
	mu           sync.Mutex
	started      time.Time // of the reconcile in progress; zero when idle
	done         bool      // a reconcile has finished
	loaded       bool      // a valid configuration is in use
	pendingSince time.Time // since when sessions are not up; zero when they are
	lastErr      error
	lastDone     time.Time
}

func (h *reconcileHealth) begin() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.started = time.Now()
}

func (h *reconcileHealth) end(loaded, pending bool, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	h.started, h.done, h.loaded, h.lastErr, h.lastDone = time.Time{}, true, loaded, err, now
	switch {
	case !pending:
		h.pendingSince = time.Time{}
	case h.pendingSince.IsZero():
		h.pendingSince = now
	}
}

// live fails when a reconcile has run for longer than stuckAfter.
func (h *reconcileHealth) live() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.started.IsZero() {
		if d := time.Since(h.started); d > stuckAfter {
			return fmt.Errorf("a reconcile has been running for %s", d.Round(time.Second))
		}
	}
	return nil
}

// ready fails until a reconcile has loaded a valid configuration and
// applied it, and while the latest reconcile failed.
func (h *reconcileHealth) ready() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	switch {
	case !h.done:
		return errors.New("no reconcile has finished yet")
	case !h.loaded:
		return errors.New("no valid configuration loaded (see ConfigurationState speaker-<node>)")
	case h.lastErr != nil:
		return fmt.Errorf("the latest reconcile (%s) failed: %v", h.lastDone.Format(time.RFC3339), h.lastErr)
	case !h.pendingSince.IsZero() && time.Since(h.pendingSince) < sessionWait:
		return fmt.Errorf("waiting for the BGP sessions that carry this node's routes to be Established (for %s; at most %s)",
			time.Since(h.pendingSince).Round(time.Second), sessionWait)
	}
	return nil
}
