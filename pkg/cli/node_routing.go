package cli

import (
	"github.com/spf13/cobra"

	"github.com/lbstack/lbstack/pkg/mustgather/noderouting"
)

// newNodeRoutingCommand prints the policy routing of the network namespace
// it runs in (see pkg/mustgather/noderouting): must-gather runs it in the
// speaker pods.
func newNodeRoutingCommand() *cobra.Command {
	var family string
	cmd := &cobra.Command{
		Use:    "node-routing rules|routes",
		Short:  "Print this network namespace's route rules or every routing table (ip rule / ip route show table all)",
		Args:   cobra.ExactArgs(1),
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return noderouting.Print(cmd.OutOrStdout(), args[0], family)
		},
	}
	cmd.Flags().StringVar(&family, "family", "4", "address family: 4 or 6")
	return cmd
}
