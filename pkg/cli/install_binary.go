package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
)

// newInstallBinaryCommand copies this binary to a path: the speaker pod's
// init container puts lbstack into a volume so that the frr-reloader can
// run inside FRR's image, next to vtysh and frr-reload.py.
func newInstallBinaryCommand() *cobra.Command {
	return &cobra.Command{
		Use:    "install-binary DEST",
		Short:  "Copy this lbstack binary to DEST (for containers of other images)",
		Args:   cobra.ExactArgs(1),
		Hidden: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			return installBinary(args[0])
		},
	}
}

func installBinary(dest string) error {
	// /proc/self/exe is the running binary even where its path is not
	// visible (another mount namespace, a deleted file).
	in, err := os.Open("/proc/self/exe")
	if err != nil {
		self, err2 := os.Executable()
		if err2 != nil {
			return fmt.Errorf("find this binary: %w", err2)
		}
		if in, err = os.Open(self); err != nil {
			return err
		}
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dest), ".lbstack-*")
	if err != nil {
		return fmt.Errorf("install %s: %w", dest, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return fmt.Errorf("install %s: %w", dest, err)
	}
	if err := tmp.Chmod(0o755); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), dest); err != nil {
		return fmt.Errorf("install %s: %w", dest, err)
	}
	return nil
}
