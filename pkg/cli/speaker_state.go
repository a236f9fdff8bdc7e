package cli

import (
	"context"
	"time"

	"github.com/spf13/cobra"

	"github.com/lbstack/lbstack/pkg/speaker"
)

// newSpeakerStateCommand prints a running speaker's DebugState (see
// speaker.FetchDebugState): must-gather runs it in the speaker pods.
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
			return speaker.FetchDebugState(ctx, url, cmd.OutOrStdout())
		},
	}
	cmd.Flags().StringVar(&url, "url", "http://"+speaker.DefaultLocalAddr+speaker.DebugStatePath, "the speaker's debug state endpoint (its loopback health listener)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "how long to wait for the speaker")
	return cmd
}
