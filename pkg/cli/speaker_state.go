package cli

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/spf13/cobra"

	"github.com/lbstack/lbstack/pkg/speaker"
)

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
