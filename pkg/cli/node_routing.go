package cli

import (
	"fmt"

	"github.com/spf13/cobra"
	"github.com/vishvananda/netlink"

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
			fam := netlink.FAMILY_V4
			switch family {
			case "4", "inet", "ipv4":
			case "6", "inet6", "ipv6":
				fam = netlink.FAMILY_V6
			default:
				return fmt.Errorf("--family %q: want 4 or 6", family)
			}
			switch args[0] {
			case "rules":
				return noderouting.Rules(cmd.OutOrStdout(), fam)
			case "routes":
				return noderouting.Routes(cmd.OutOrStdout(), fam)
			}
			return fmt.Errorf("%q: want rules or routes", args[0])
		},
	}
	cmd.Flags().StringVar(&family, "family", "4", "address family: 4 or 6")
	return cmd
}
