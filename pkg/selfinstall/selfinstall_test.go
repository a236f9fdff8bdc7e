package selfinstall

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestToCopiesItself(t *testing.T) {
	dest := filepath.Join(t.TempDir(), "lbstack")
	if err := To(dest); err != nil {
		t.Fatal(err)
	}
	self, _ := os.Executable()
	want, _ := os.ReadFile(self)
	got, err := os.ReadFile(dest)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("copy differs from the running binary (%v)", err)
	}
	if st, _ := os.Stat(dest); st.Mode().Perm() != 0o755 {
		t.Errorf("mode %v, want 0755", st.Mode().Perm())
	}
	if err := To(filepath.Join(t.TempDir(), "missing", "x")); err == nil {
		t.Errorf("no error for a destination in a missing directory")
	}
}
