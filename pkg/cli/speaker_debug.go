package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/lbstack/lbstack/pkg/speaker"
)

// debugStore holds the speaker's latest DebugState and serves it as JSON.
type debugStore struct {
	state atomic.Pointer[speaker.DebugState]
}

func (d *debugStore) set(st speaker.DebugState) { d.state.Store(&st) }

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

// debugState is the reconcile's outcome as /debug/state shows it.
func (r *speakerReconciler) debugState(decision speaker.Result, cfgErr, applyErr error, l2Ifaces map[string][]string) speaker.DebugState {
	backend := r.flags.bgpBackend
	st := speaker.NewDebugState(r.flags.nodeName, backend, decision, r.backend.Status())
	if cfgErr != nil {
		st.ConfigError = cfgErr.Error()
	}
	if applyErr != nil {
		st.ApplyError = applyErr.Error()
	}
	if r.l2 != nil {
		st.L2 = &speaker.DebugL2{Announced: l2Ifaces}
		if r.l2.member != nil {
			st.L2.Members = r.l2.member.Members()
			st.L2.Live = r.l2.member.Live()
		}
	}
	return st
}

// newSpeakerStateCommand prints a running speaker's DebugState: run inside
// the speaker pod (the image has no shell or curl), it is how must-gather
// reads the speaker's own view through the exec API.
func newSpeakerStateCommand() *cobra.Command {
	var url string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:    "speaker-state",
		Short:  "Print the speaker's own view (sessions, routes, layer-2 ownership, members) as JSON",
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := context.WithTimeout(cmd.Context(), timeout)
			defer cancel()
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
			_, err = io.Copy(cmd.OutOrStdout(), resp.Body)
			return err
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://"+speaker.DefaultLocalAddr+speaker.DebugStatePath, "the speaker's debug state endpoint (its loopback health listener)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the speaker")
	return cmd
}
