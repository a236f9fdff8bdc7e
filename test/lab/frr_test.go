package lab

import (
	"os"
	"path/filepath"
	"testing"
)

// TestUntraversable: the first directory on the way that the frr user may
// not search is named, by owner, group and other bits.
func TestUntraversable(t *testing.T) {
	base, err := os.MkdirTemp("", "lbs-trav-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	if err := os.Chmod(base, 0o755); err != nil {
		t.Fatal(err)
	}
	closed := filepath.Join(base, "closed")
	inner := filepath.Join(closed, "frr")
	if err := os.MkdirAll(inner, 0o755); err != nil {
		t.Fatal(err)
	}
	const frrUID, frrGID = 4242, 4343 // owns nothing here (root does)
	for _, tc := range []struct {
		name string
		mode os.FileMode
		uid  int
		gid  int
		want string
	}{
		{name: "open to others", mode: 0o755, uid: frrUID, gid: frrGID},
		{name: "closed to others", mode: 0o700, uid: frrUID, gid: frrGID, want: closed},
		{name: "closed to others, open to the group", mode: 0o710, uid: frrUID, gid: 0},
		{name: "closed to others, open to the owner", mode: 0o700, uid: 0, gid: frrGID},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := os.Chmod(closed, tc.mode); err != nil {
				t.Fatal(err)
			}
			got, _, err := untraversable(inner, tc.uid, tc.gid)
			if err != nil || got != tc.want {
				t.Errorf("untraversable = %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}
