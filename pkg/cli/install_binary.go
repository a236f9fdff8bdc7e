package cli

import (
	"github.com/spf13/cobra"

	"github.com/lbstack/lbstack/pkg/selfinstall"
)

// newInstallBinaryCommand copies this binary to a path (see
// pkg/selfinstall): the speaker pod's init container runs it.
func newInstallBinaryCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "install-binary DEST",
		Short:  "Copy this lbstack binary to DEST (for containers of other images)",
		Args:   cobra.ExactArgs(1),
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return selfinstall.To(args[0])
		},
	}
}
