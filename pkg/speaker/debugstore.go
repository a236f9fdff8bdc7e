package speaker

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
)

// debugStore serves the speaker's DebugState as JSON at DebugStatePath,
// built when asked: building it is proportional to the node's routes, too
// much to do on every change.
type debugStore struct {
	build atomic.Pointer[func() DebugState]
}

// setFunc makes build the source of the state served.
func (d *debugStore) setFunc(build func() DebugState) { d.build.Store(&build) }

func (d *debugStore) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	build := d.build.Load()
	if build == nil {
		http.Error(w, "the speaker has not reconciled yet", http.StatusServiceUnavailable)
		return
	}
	st := (*build)()
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(st)
}

// FetchDebugState copies a running speaker's DebugState from url to w: the
// `lbstack speaker-state` command, which must-gather runs in the speaker pod
// (the image has no shell or curl) to read the speaker's own view.
func FetchDebugState(ctx context.Context, url string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("speaker state from %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("speaker state from %s: %s: %s", url, resp.Status, body)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
