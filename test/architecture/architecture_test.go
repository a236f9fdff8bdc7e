// Package architecture_test holds the layout rules of docs/design.md ("Package
// map") as tests, so that a change that breaks one fails here rather than in
// a review: which packages may import which, that leaf packages stay leaves,
// that small helpers are written once, and that pkg/cli stays flags and
// wiring.
package architecture_test

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/lbstack/lbstack/"

// root is the repository's top directory.
func root(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "go.mod")); err != nil {
		t.Fatalf("no go.mod in %s: %v", dir, err)
	}
	return dir
}

// pkg is one package of the product tree, with its non-test imports of
// this module (module prefix removed).
type pkg struct {
	dir     string // relative to the root, e.g. "pkg/config"
	imports []string
	files   []string // non-test .go files, absolute
}

func packages(t *testing.T) map[string]pkg {
	t.Helper()
	top := root(t)
	out := map[string]pkg{}
	for _, base := range []string{"api", "bindata", "controllers", "pkg", "test"} {
		err := filepath.WalkDir(filepath.Join(top, base), func(path string, d fs.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return err
			}
			if n := d.Name(); n == "testdata" || strings.HasPrefix(n, ".") {
				return filepath.SkipDir
			}
			bp, err := build.Default.ImportDir(path, 0)
			if err != nil {
				if _, ok := err.(*build.NoGoError); ok {
					return nil
				}
				return err
			}
			rel, _ := filepath.Rel(top, path)
			p := pkg{dir: filepath.ToSlash(rel)}
			for _, imp := range bp.Imports {
				if strings.HasPrefix(imp, module) {
					p.imports = append(p.imports, strings.TrimPrefix(imp, module))
				}
			}
			for _, f := range bp.GoFiles {
				p.files = append(p.files, filepath.Join(path, f))
			}
			out[p.dir] = p
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestImportRules: the product never imports test code; nothing under pkg/
// or api/ imports controllers/ (the operator's reconcilers sit on top),
// except pkg/cli, the composition root that main.go runs; api/ imports only
// api/.
func TestImportRules(t *testing.T) {
	for dir, p := range packages(t) {
		for _, imp := range p.imports {
			switch {
			case !strings.HasPrefix(dir, "test/") && strings.HasPrefix(imp, "test/"):
				t.Errorf("%s imports test code %s", dir, imp)
			case dir != "pkg/cli" && (strings.HasPrefix(dir, "pkg/") || strings.HasPrefix(dir, "api/")) && (imp == "controllers" || strings.HasPrefix(imp, "controllers/")):
				t.Errorf("%s imports %s: nothing under pkg/ or api/ may import controllers/", dir, imp)
			case strings.HasPrefix(dir, "api/") && !strings.HasPrefix(imp, "api/"):
				t.Errorf("%s imports %s: the API types import only other API types", dir, imp)
			}
		}
	}
}

// leaves import no package of this module: they are what the others share.
var leaves = []string{
	"pkg/lbservice",  // what every component reads from a Service
	"pkg/finding",    // what consistency checks report
	"pkg/ownedapply", // writing generated objects only when they differ
	"pkg/iprange",    // address arithmetic and range parsing
	"pkg/community",  // BGP community values
	"pkg/bfd",        // the BFD profile value
	"pkg/bgptimers",  // the hold and keepalive time rules
	"pkg/loglevel",   // MetalLB's log level names
	"pkg/version",
	"pkg/selfinstall",
	"pkg/serving",
	"pkg/l2/membership",
	"pkg/l2/responder",
	"pkg/mustgather/noderouting",
}

func TestLeavesStayLeaves(t *testing.T) {
	all := packages(t)
	for _, leaf := range leaves {
		p, ok := all[leaf]
		if !ok {
			t.Errorf("leaf %s does not exist (update the list and docs/design.md)", leaf)
			continue
		}
		if len(p.imports) > 0 {
			t.Errorf("%s is a leaf but imports %v", leaf, p.imports)
		}
	}
}

// forbidden are edges that exist only for a helper that belongs in a leaf.
var forbidden = map[string][]string{
	"pkg/bgp":          {"pkg/config"},
	"pkg/l2/election":  {"pkg/speaker"},
	"pkg/symrouting":   {"pkg/assigner", "pkg/speaker"},
	"pkg/config":       {"pkg/ipam"},
	"pkg/assigner":     {"pkg/speaker", "pkg/symrouting"},
	"pkg/speaker":      {"pkg/assigner", "pkg/symrouting"},
	"pkg/webhook":      {"pkg/assigner", "pkg/speaker"},
	"pkg/legacyconfig": {"pkg/config"},
	"pkg/ipam":         {"pkg/config"},
	// The Calico mode's rules read a built config.Config; the components
	// and the coordinator that will run them sit above.
	"pkg/calico": {"pkg/assigner", "pkg/speaker", "pkg/symrouting", "pkg/webhook", "pkg/calico/reconciler"},
	// The Calico coordinator is I/O around pkg/calico: it runs in the
	// operator beside the symmetric-routing one, and shares nothing with
	// the components.
	"pkg/calico/reconciler": {"pkg/assigner", "pkg/speaker", "pkg/webhook", "pkg/symrouting", "pkg/symrouting/reconciler"},
}

func TestNoHelperOnlyEdges(t *testing.T) {
	all := packages(t)
	for from, tos := range forbidden {
		p, ok := all[from]
		if !ok {
			t.Errorf("%s does not exist (update this test and docs/design.md)", from)
			continue
		}
		for _, to := range tos {
			if slices.Contains(p.imports, to) {
				t.Errorf("%s imports %s", from, to)
			}
		}
	}
}

// pure are rule packages that take objects and return results: no client,
// no server, no processes. Callers at the edges do the I/O.
var pure = []string{"pkg/config", "pkg/calico", "pkg/symrouting", "pkg/ipam", "pkg/iprange", "pkg/community"}

// ioImports are the import paths (prefixes) that mean I/O.
var ioImports = []string{"k8s.io/client-go", "sigs.k8s.io/controller-runtime/pkg/client", "sigs.k8s.io/controller-runtime/pkg/manager", "net/http", "os/exec"}

func TestPurePackagesDoNoIO(t *testing.T) {
	top := root(t)
	for _, dir := range pure {
		bp, err := build.Default.ImportDir(filepath.Join(top, dir), 0)
		if err != nil {
			t.Errorf("%s: %v (update the list and docs/design.md)", dir, err)
			continue
		}
		for _, imp := range bp.Imports {
			for _, io := range ioImports {
				if imp == io || strings.HasPrefix(imp, io+"/") {
					t.Errorf("%s is pure logic but imports %s: move the I/O to its caller", dir, imp)
				}
			}
		}
	}
}

// writtenOnce are helpers that once had copies in several packages: each
// may be declared (as a function or a type) only in its home.
var writtenOnce = map[string]string{
	"lastAddr":        "",
	"ingressIPs":      "",
	"ingressAddrs":    "",
	"IngressAddrs":    "pkg/lbservice",
	"servesClass":     "",
	"serves":          "",
	"ClassMatches":    "pkg/lbservice",
	"HasEndpoints":    "pkg/lbservice",
	"NodeExcluded":    "pkg/lbservice",
	"poolAnnotation":  "",
	"Subset":          "pkg/ownedapply",
	"subset":          "",
	"needsApply":      "",
	"hashOf":          "",
	"parseRangeAddr":  "",
	"LastAddr":        "pkg/iprange",
	"MinAddr":         "pkg/iprange",
	"MaxAddr":         "pkg/iprange",
	"minAddr":         "",
	"maxAddr":         "",
	"comparePrefix":   "",
	"comparePrefixes": "",
	"U128":            "pkg/iprange",
}

func TestHelpersWrittenOnce(t *testing.T) {
	fset := token.NewFileSet()
	for dir, p := range packages(t) {
		if strings.HasPrefix(dir, "test/") {
			continue
		}
		for _, file := range p.files {
			f, err := parser.ParseFile(fset, file, nil, parser.SkipObjectResolution)
			if err != nil {
				t.Fatal(err)
			}
			for _, d := range f.Decls {
				var names []string
				switch d := d.(type) {
				case *ast.FuncDecl:
					if d.Recv == nil {
						names = append(names, d.Name.Name)
					}
				case *ast.GenDecl:
					for _, s := range d.Specs {
						if ts, ok := s.(*ast.TypeSpec); ok {
							names = append(names, ts.Name.Name)
						}
					}
				}
				for _, n := range names {
					if home, listed := writtenOnce[n]; listed && home != dir {
						if home == "" {
							t.Errorf("%s declares %s, a copy that was removed; use the leaf that owns it", file, n)
						} else {
							t.Errorf("%s declares %s, which lives in %s", file, n, home)
						}
					}
				}
			}
		}
	}
}

// TestCLIIsWiring: pkg/cli parses flags and hands over to the package that
// owns each component; its code stays under 800 lines.
func TestCLIIsWiring(t *testing.T) {
	p, ok := packages(t)["pkg/cli"]
	if !ok {
		t.Fatal("no pkg/cli")
	}
	lines := 0
	for _, f := range p.files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines += strings.Count(string(b), "\n")
	}
	if lines >= 800 {
		t.Errorf("pkg/cli has %d lines of code (tests aside); move logic to the package that owns it", lines)
	}
	t.Logf("pkg/cli: %d lines", lines)
}
