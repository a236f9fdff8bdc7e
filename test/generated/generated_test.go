// Package generated checks that the checked-in generated files (deepcopy,
// CRDs, RBAC, webhook configuration, the OLM bundle) are what
// `make generate manifests bundle` produces from the current sources.
package generated

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lbstack/lbstack/test/envtest"
)

// generatedPaths are the files and trees the generators own.
var generatedPaths = []string{"api", "pkg/ovnapi", "pkg/calicoapi", "test/crds/nmstate", "test/crds/calico", "config/crd", "config/rbac", "config/webhook", "bundle"}

// TestGeneratedFilesAreFresh copies the sources to a scratch directory,
// regenerates there with the same Makefile targets, and compares.
func TestGeneratedFilesAreFresh(t *testing.T) {
	root, err := envtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	scratch := t.TempDir()
	if err := copyTree(root, scratch); err != nil {
		t.Fatal(err)
	}
	// Remove every generated file from the copy so a generator that stopped
	// producing one is caught too.
	for _, p := range generatedPaths {
		_ = filepath.WalkDir(filepath.Join(scratch, p), func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && isGenerated(path) {
				return os.Remove(path)
			}
			return nil
		})
	}
	cmd := exec.Command("make", "-C", scratch, "generate", "manifests", "bundle", "BIN="+filepath.Join(root, "bin"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("make generate manifests bundle: %v\n%s", err, out)
	}
	for _, p := range generatedPaths {
		compareTrees(t, filepath.Join(root, p), filepath.Join(scratch, p))
	}
}

func isGenerated(path string) bool {
	base := filepath.Base(path)
	return strings.HasPrefix(base, "zz_generated.") ||
		strings.Contains(filepath.ToSlash(path), "config/crd/bases/") ||
		strings.Contains(filepath.ToSlash(path), "test/crds/nmstate/") ||
		strings.Contains(filepath.ToSlash(path), "test/crds/calico/") ||
		base == "role.yaml" ||
		strings.HasSuffix(filepath.ToSlash(path), "config/webhook/manifests.yaml") ||
		isBundle(filepath.ToSlash(path))
}

// isBundle: everything `make bundle` writes (bundle/README.md is not).
func isBundle(path string) bool {
	for _, p := range []string{"bundle/manifests/", "bundle/metadata/", "bundle/tests/"} {
		if strings.Contains(path, p) {
			return true
		}
	}
	return strings.HasSuffix(path, "bundle/bundle.Dockerfile")
}

func compareTrees(t *testing.T, want, got string) {
	t.Helper()
	seen := map[string]bool{}
	_ = filepath.WalkDir(got, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isGenerated(path) {
			return err
		}
		rel, _ := filepath.Rel(got, path)
		seen[rel] = true
		g, _ := os.ReadFile(path)
		w, err := os.ReadFile(filepath.Join(want, rel))
		if err != nil {
			t.Errorf("%s is generated but not checked in: run `make generate manifests bundle`", filepath.Join(filepath.Base(want), rel))
			return nil
		}
		if !bytes.Equal(g, w) {
			t.Errorf("%s is stale: run `make generate manifests bundle` and commit the result", filepath.Join(filepath.Base(want), rel))
		}
		return nil
	})
	_ = filepath.WalkDir(want, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !isGenerated(path) {
			return err
		}
		rel, _ := filepath.Rel(want, path)
		if !seen[rel] {
			t.Errorf("%s is checked in but no longer generated: remove it", filepath.Join(filepath.Base(want), rel))
		}
		return nil
	})
}

// copyTree copies the repository sources, skipping tool caches and VCS data.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() && (rel == "bin" || rel == ".git" || rel == ".lab" || strings.HasPrefix(rel, "test/tools")) {
			return filepath.SkipDir
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}
