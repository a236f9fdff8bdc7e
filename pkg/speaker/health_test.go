package speaker

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestReconcileHealth(t *testing.T) {
	var h reconcileHealth
	if h.ready() == nil || h.live() != nil {
		t.Fatal("a speaker that has not reconciled is ready, or not alive")
	}
	h.begin()
	h.end(true, false, nil)
	if h.ready() != nil || h.live() != nil {
		t.Fatalf("after a good reconcile: ready %v live %v", h.ready(), h.live())
	}
	// Sessions not up yet: not ready (a rollout would otherwise replace
	// the next node's speaker while this one announces nothing), until
	// sessionWait has passed.
	h.begin()
	h.end(true, true, nil)
	if err := h.ready(); err == nil || !strings.Contains(err.Error(), "Established") {
		t.Errorf("with sessions pending: ready %v", err)
	}
	h.pendingSince = h.pendingSince.Add(-sessionWait - time.Second)
	if err := h.ready(); err != nil {
		t.Errorf("sessions pending for longer than sessionWait: ready %v", err)
	}
	h.begin()
	h.end(true, false, nil)
	if !h.pendingSince.IsZero() || h.ready() != nil {
		t.Errorf("sessions up again: pendingSince %v ready %v", h.pendingSince, h.ready())
	}
	h.begin()
	h.end(true, false, errors.New("apply BGP state: boom"))
	if err := h.ready(); err == nil || !strings.Contains(err.Error(), "boom") {
		t.Errorf("after a failed reconcile: ready %v", err)
	}
	h.begin()
	h.started = h.started.Add(-stuckAfter - 1)
	if h.live() == nil {
		t.Error("a reconcile stuck for longer than stuckAfter is alive")
	}
}
