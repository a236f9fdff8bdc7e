package speaker

import (
	"encoding/json"
	"net/http"
	"sync/atomic"
)

// debugStore holds the speaker's latest DebugState and serves it as JSON
// at DebugStatePath.
type debugStore struct {
	state atomic.Pointer[DebugState]
}

func (d *debugStore) set(st DebugState) { d.state.Store(&st) }

func (d *debugStore) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	st := d.state.Load()
	if st == nil {
		http.Error(w, "the speaker has not reconciled yet", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st)
}
