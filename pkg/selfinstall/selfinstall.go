// Package selfinstall owns copying the running lbstack binary into place:
// the speaker pod's init container (`lbstack install-binary`) puts it into a
// volume so that containers of other images run it (the frr-reloader runs
// inside FRR's image, next to vtysh and frr-reload.py).
package selfinstall

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// To copies the running binary to dest (mode 0755), through a temporary
// file in dest's directory and a rename, so that dest is never a partial
// copy.
func To(dest string) error {
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
