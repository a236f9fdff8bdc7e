// Package cli wires lbstack's subcommands. Each component lives in its own
// package; this one only parses flags and hands over.
package cli

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/lbstack/lbstack/pkg/version"
)

// NewRoot returns the `lbstack` command with every subcommand attached.
func NewRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "lbstack",
		Short: "Bare-metal load balancing for Kubernetes, speaking MetalLB's metallb.io API",
		Long: `lbstack runs the bare-metal load-balancer stack: the operator renders the
controller (address management, admission webhooks) and the per-node speakers
(BGP and layer-2 announcements) from one MetalLB object. One binary, one image:
each component is a subcommand.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(
		newVersionCommand(),
		newWebhookCommand(),
		newConfigCommand(),
		newOperatorCommand(),
		newControllerCommand(),
		newSpeakerCommand(),
		newFRRReloaderCommand(),
		newInstallBinaryCommand(),
		newSpeakerStateCommand(),
		newNodeRoutingCommand(),
		newMustGatherCommand(),
	)
	return root
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version of this binary",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprintln(cmd.OutOrStdout(), version.String())
			return err
		},
	}
}

// untilSignal is the context of every long-running subcommand, the one way
// they handle signals: it ends on SIGTERM or SIGINT, or when the caller's
// context ends (ExecuteContext). Not ctrl.SetupSignalHandler: tests run
// commands in-process, more than once, which its one-per-process handler
// would not allow.
func untilSignal(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, syscall.SIGTERM, os.Interrupt)
}
