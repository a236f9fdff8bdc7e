package olm_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	olmv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/pkg/bundle"
	"github.com/lbstack/lbstack/test/envtest"
	"github.com/lbstack/lbstack/test/lab"
	"github.com/lbstack/lbstack/test/olm"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	r, err := envtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// makeVars are the `NAME := value` assignments of the Makefile.
func makeVars(t *testing.T) map[string]string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, m := range regexp.MustCompile(`(?m)^([A-Z_]+)\s*:=\s*(\S+)\s*$`).FindAllStringSubmatch(string(data), -1) {
		vars[m[1]] = m[2]
	}
	return vars
}

// tool is a program `make olm-tools` builds. `make test` names it in the
// environment (and builds it first): then it must exist. A bare `go test`
// finds it under bin/ by the Makefile's version, and skips without it.
func tool(t *testing.T, env, name, versionVar string) string {
	t.Helper()
	if p := os.Getenv(env); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v (make olm-tools)", env, p, err)
		}
		return p
	}
	p := filepath.Join(repoRoot(t), "bin", name+"-"+makeVars(t)[versionVar])
	if _, err := os.Stat(p); err != nil {
		t.Skipf("%s not built (make olm-tools; make test sets %s): %v", name, env, err)
	}
	return p
}

func opm(t *testing.T) string { return tool(t, "LBSTACK_OPM", "opm", "OPM_VERSION") }

func operatorSDK(t *testing.T) string {
	return tool(t, "LBSTACK_OPERATOR_SDK", "operator-sdk", "OPERATOR_SDK_VERSION")
}

// goModVersion is the version a go.mod requires of a module.
func goModVersion(t *testing.T, gomod, module string) string {
	t.Helper()
	data, err := os.ReadFile(gomod)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(module) + `\s+(v\S+)`).FindStringSubmatch(string(data))
	if m == nil {
		t.Fatalf("%s does not require %s", gomod, module)
	}
	return m[1]
}

// The Makefile builds the tools at the versions its variables (and so
// bin/ paths) say, the lab's image builders and the bundle's scorecard
// name the same: one pin each.
func TestToolVersionsAgree(t *testing.T) {
	r := repoRoot(t)
	vars := makeVars(t)
	olmMod := filepath.Join(r, "test", "olmtools", "go.mod")
	sdkMod := filepath.Join(r, "test", "olmtools", "sdk", "go.mod")
	for _, c := range []struct{ what, makeVar, gomod, module, lab string }{
		{"OLM", "OLM_VERSION", olmMod, "github.com/operator-framework/operator-lifecycle-manager", lab.OLMVersion},
		{"opm", "OPM_VERSION", olmMod, "github.com/operator-framework/operator-registry", lab.OPMVersion},
		{"grpc_health_probe", "GRPC_HEALTH_PROBE_VERSION", olmMod, "github.com/grpc-ecosystem/grpc-health-probe", lab.GRPCHealthProbeVersion},
		{"operator-sdk", "OPERATOR_SDK_VERSION", sdkMod, "github.com/operator-framework/operator-sdk", lab.OperatorSDKVersion},
	} {
		mod := goModVersion(t, c.gomod, c.module)
		if vars[c.makeVar] != mod {
			t.Errorf("%s: Makefile %s=%q, %s requires %s", c.what, c.makeVar, vars[c.makeVar], c.gomod, mod)
		}
		if c.lab != "" && c.lab != mod {
			t.Errorf("%s: the lab builds images of %s, %s requires %s", c.what, c.lab, c.gomod, mod)
		}
	}
	want := "quay.io/operator-framework/scorecard-test:" + vars["OPERATOR_SDK_VERSION"]
	for what, img := range map[string]string{"the bundle's scorecard config names": bundle.ScorecardImage, "the lab builds": lab.ScorecardTestImage} {
		if img != want {
			t.Errorf("%s %s, the pinned operator-sdk's is %s", what, img, want)
		}
	}
}

// blob is one FBC object, with the fields these tests read.
type blob struct {
	Schema, Name, Package, Image, DefaultChannel string
	Entries                                      []struct{ Name, Replaces, SkipRange string }
	Properties                                   []struct {
		Type  string
		Value json.RawMessage
	}
}

func readFBC(t *testing.T, path string) []blob {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []blob
	for _, doc := range strings.Split(string(data), "\n---\n") {
		doc = strings.TrimPrefix(doc, "---\n")
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var b blob
		if err := yaml.Unmarshal([]byte(doc), &b); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		out = append(out, b)
	}
	return out
}

// The catalog holds lbstack's package, one channel whose head 0.2.0
// replaces 0.1.0, and each release's bundle under its bundle image; opm
// validates it (WriteCatalog runs `opm validate`), and the 0.1.0 bundle
// is the checked-in bundle/.
func TestCatalog(t *testing.T) {
	r, out := repoRoot(t), t.TempDir()
	if err := olm.WriteCatalog(olm.CatalogOptions{Root: r, Out: out, OPM: opm(t)}); err != nil {
		t.Fatal(err)
	}
	fbcPath := filepath.Join(olm.CatalogDir(out), "lbstack", "catalog.yaml")
	blobs := readFBC(t, fbcPath)
	bundles := map[string]blob{}
	var pkgs, channels []blob
	for _, b := range blobs {
		switch b.Schema {
		case "olm.package":
			pkgs = append(pkgs, b)
		case "olm.channel":
			channels = append(channels, b)
		case "olm.bundle":
			bundles[b.Name] = b
		default:
			t.Errorf("unexpected blob %s %s", b.Schema, b.Name)
		}
	}
	if len(pkgs) != 1 || pkgs[0].Name != "lbstack" || pkgs[0].DefaultChannel != "candidate" {
		t.Errorf("packages %+v", pkgs)
	}
	if len(channels) != 1 || channels[0].Name != "candidate" || len(channels[0].Entries) != 2 {
		t.Fatalf("channels %+v", channels)
	}
	head := channels[0].Entries[1]
	if head.Name != "lbstack.v0.2.0" || head.Replaces != "lbstack.v0.1.0" || head.SkipRange != ">=0.1.0 <0.2.0" {
		t.Errorf("channel head %+v", head)
	}
	for _, rel := range olm.Releases {
		name := "lbstack.v" + rel.Version
		b, ok := bundles[name]
		if !ok {
			t.Errorf("no bundle %s", name)
			continue
		}
		if b.Image != olm.BundleImage(rel.Version) || b.Package != "lbstack" {
			t.Errorf("bundle %s: image %s package %s", name, b.Image, b.Package)
		}
		// The CSV inside says the same upgrade edge as the channel.
		csv := bundleCSV(t, b)
		if csv.Name != name || csv.Spec.Replaces != rel.Replaces || csv.Annotations["olm.skipRange"] != rel.SkipRange ||
			csv.Annotations["containerImage"] != olm.OperatorImage(rel.Version) {
			t.Errorf("bundle %s: CSV %s replaces %q skipRange %q image %s", name, csv.Name, csv.Spec.Replaces,
				csv.Annotations["olm.skipRange"], csv.Annotations["containerImage"])
		}
	}
	// The lab installs, as 0.1.0, what is checked in.
	for _, sub := range []string{"manifests", "metadata", "tests"} {
		compareDirs(t, filepath.Join(r, "bundle", sub), filepath.Join(olm.BundleDir(out, "0.1.0"), sub))
	}

	// opm validate can fail: a channel with two heads is refused.
	data, err := os.ReadFile(fbcPath)
	if err != nil {
		t.Fatal(err)
	}
	broken := bytes.Replace(data, []byte("  replaces: lbstack.v0.1.0\n"), []byte("  replaces: lbstack.v0.0.9\n"), 1)
	if bytes.Equal(broken, data) {
		t.Fatal("the catalog has no replaces edge to break: update this test")
	}
	if err := os.WriteFile(fbcPath, broken, 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(opm(t), "validate", olm.CatalogDir(out)).CombinedOutput(); err == nil {
		t.Errorf("opm validate accepted a channel with two heads:\n%s", out)
	}
}

// bundleCSV decodes the ClusterServiceVersion among a bundle's
// olm.bundle.object properties.
func bundleCSV(t *testing.T, b blob) olmv1alpha1.ClusterServiceVersion {
	t.Helper()
	for _, p := range b.Properties {
		if p.Type != "olm.bundle.object" {
			continue
		}
		var v struct{ Data string }
		if err := json.Unmarshal(p.Value, &v); err != nil {
			t.Fatal(err)
		}
		raw, err := base64.StdEncoding.DecodeString(v.Data)
		if err != nil {
			t.Fatal(err)
		}
		var csv olmv1alpha1.ClusterServiceVersion
		if err := json.Unmarshal(raw, &csv); err == nil && csv.Kind == "ClusterServiceVersion" {
			return csv
		}
	}
	t.Fatalf("bundle %s carries no CSV", b.Name)
	return olmv1alpha1.ClusterServiceVersion{}
}

func compareDirs(t *testing.T, want, got string) {
	t.Helper()
	seen := map[string]bool{}
	_ = filepath.WalkDir(want, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		seen[rel] = true
		w, _ := os.ReadFile(p)
		g, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil || !bytes.Equal(w, g) {
			t.Errorf("%s differs from the checked-in bundle's (run `make bundle`)", filepath.Join(got, rel))
		}
		return nil
	})
	_ = filepath.WalkDir(got, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if rel, _ := filepath.Rel(got, p); !seen[rel] {
			t.Errorf("%s is not in the checked-in bundle", p)
		}
		return nil
	})
}

// sdkSelectors are the optional validator sets issue 18 asks for, run
// with the Kubernetes version the lab runs (deprecated APIs are checked
// against it).
var sdkSelectors = []string{"suite=operatorframework", "name=good-practices"}

// knownSDKWarnings are the operator-sdk warnings docs/olm.md explains
// (section "Validation"); each must appear, word for word, in a warning
// and in docs/olm.md. Any other warning fails the test.
var knownSDKWarnings = []string{
	"Migrate the API(s) for endpointslices",
	"Kind=ConfigurationState: provided API should have an example annotation",
	"Kind=ServiceL2Status: provided API should have an example annotation",
	"Kind=ServiceBGPStatus: provided API should have an example annotation",
}

type sdkResult struct {
	Passed  bool `json:"passed"`
	Outputs []struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"outputs"`
}

// sdkValidate runs operator-sdk bundle validate on dir with one optional
// selector and returns its errors and warnings.
func sdkValidate(t *testing.T, dir, selector string) (errs, warns []string) {
	t.Helper()
	cmd := exec.Command(operatorSDK(t), "bundle", "validate", dir, "--select-optional", selector,
		"--optional-values=k8s-version=1.34", "--output=json-alpha1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var ee *exec.ExitError
	if runErr != nil && !errors.As(runErr, &ee) {
		t.Fatalf("operator-sdk bundle validate %s: %v", dir, runErr)
	}
	// A failed validation exits 1 and still prints its result.
	var res sdkResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("operator-sdk bundle validate %s --select-optional %s: %v, %v\nstdout:\n%s\nstderr:\n%s", dir, selector, runErr, err, stdout.String(), stderr.String())
	}
	for _, o := range res.Outputs {
		switch o.Type {
		case "error":
			errs = append(errs, o.Message)
		case "warning":
			warns = append(warns, o.Message)
		}
	}
	if !res.Passed && len(errs) == 0 {
		errs = append(errs, "validation did not pass (no error reported): "+stderr.String())
	}
	return errs, warns
}

// unexplained returns the warnings no known key explains (the key must be
// in docs too), and the known keys no warning used.
func unexplained(warns, known []string, docs string) (bad, unused []string) {
	used := map[string]bool{}
	for _, w := range warns {
		ok := false
		for _, k := range known {
			if strings.Contains(w, k) && strings.Contains(docs, k) {
				ok, used[k] = true, true
			}
		}
		if !ok {
			bad = append(bad, w)
		}
	}
	for _, k := range known {
		if !used[k] {
			unused = append(unused, k)
		}
	}
	return bad, unused
}

// operator-sdk bundle validate, OperatorHub's operatorframework suite and
// good practices, on the checked-in bundle and on the catalog's later
// release: no error, and no warning docs/olm.md does not explain.
func TestOperatorSDKBundleValidate(t *testing.T) {
	r, out := repoRoot(t), t.TempDir()
	operatorSDK(t) // skip early without it
	docs, err := os.ReadFile(filepath.Join(r, "docs", "olm.md"))
	if err != nil {
		t.Fatal(err)
	}
	later := olm.Releases[len(olm.Releases)-1]
	files, err := bundle.Generate(bundle.Options{Root: r, Version: later.Version, Image: olm.OperatorImage(later.Version),
		Replaces: later.Replaces, SkipRange: later.SkipRange})
	if err != nil {
		t.Fatal(err)
	}
	laterDir := olm.BundleDir(out, later.Version)
	if _, err := bundle.Write(laterDir, files); err != nil {
		t.Fatal(err)
	}
	var allWarns []string
	for _, dir := range []string{filepath.Join(r, "bundle"), laterDir} {
		for _, sel := range sdkSelectors {
			errs, warns := sdkValidate(t, dir, sel)
			for _, e := range errs {
				t.Errorf("%s, %s: error: %s", dir, sel, e)
			}
			bad, _ := unexplained(warns, knownSDKWarnings, string(docs))
			for _, w := range bad {
				t.Errorf("%s, %s: warning not explained in docs/olm.md: %s", dir, sel, w)
			}
			allWarns = append(allWarns, warns...)
		}
	}
	// A warning that no longer appears leaves the list (and the docs).
	if _, unused := unexplained(allWarns, knownSDKWarnings, string(docs)); len(unused) > 0 {
		t.Errorf("known warnings operator-sdk no longer reports (remove them here and from docs/olm.md): %q", unused)
	}
}

// The check can fail: operator-sdk reports a CSV that supports
// OwnNamespace beside a conversion webhook as an error, and a warning the
// docs do not explain is caught.
func TestOperatorSDKBundleValidateCanFail(t *testing.T) {
	operatorSDK(t) // skip early without it
	dir := t.TempDir()
	if err := bundle.CopyWithEveryInstallMode(filepath.Join(repoRoot(t), "bundle"), dir); err != nil {
		t.Fatal(err)
	}
	if errs, _ := sdkValidate(t, dir, sdkSelectors[0]); len(errs) == 0 {
		t.Error("operator-sdk accepted a CSV with a conversion webhook and the OwnNamespace install mode")
	}
	docs := "**\"Migrate the API(s) for endpointslices\"**"
	if bad, _ := unexplained([]string{"Warning: Value lbstack.v0.1.0: something new"}, knownSDKWarnings, docs); len(bad) != 1 {
		t.Error("an unexplained warning went unnoticed")
	}
	if bad, _ := unexplained([]string{"Kind=ServiceL2Status: provided API should have an example annotation"}, knownSDKWarnings, docs); len(bad) != 1 {
		t.Error("a warning explained in the test's list but not in the docs went unnoticed")
	}
}
