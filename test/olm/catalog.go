// Package olm writes lbstack's OLM catalog for the lab (docs/olm.md): the
// bundles of two releases, the second replacing the first, and a
// file-based catalog (FBC) serving both in one channel, rendered and
// validated by opm (`make olm-catalog`). Its tests run operator-sdk's and
// opm's validators in `make test`.
package olm

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/pkg/bundle"
)

// Release is one lbstack version in the catalog.
type Release struct {
	// Version of the operator (semver, no leading v).
	Version string
	// Replaces is the CSV this release upgrades, empty for the first.
	Replaces string
	// SkipRange lets OLM upgrade straight from any version in it.
	SkipRange string
}

// Releases are the catalog's versions, oldest first: the lab installs the
// first and upgrades to the second.
var Releases = []Release{
	{Version: "0.1.0"},
	{Version: "0.2.0", Replaces: bundle.Package + ".v0.1.0", SkipRange: ">=0.1.0 <0.2.0"},
}

// Image names of the catalog; the lab registry serves its images under
// these names (quay.io is among the registries it mirrors).
const (
	// BundleImageRepository holds the bundle images, tagged v<version>.
	BundleImageRepository = "quay.io/lbstack/lbstack-bundle"
	// CatalogImage is the CatalogSource's spec.image.
	CatalogImage = "quay.io/lbstack/lbstack-catalog:latest"
	// OperatorImageRepository is the operator's image; each release's
	// CSV names its tag v<version>.
	OperatorImageRepository = "quay.io/lbstack/lbstack"
)

// BundleImage is the bundle image of a version.
func BundleImage(version string) string { return BundleImageRepository + ":v" + version }

// OperatorImage is the operator image a version's CSV deploys.
func OperatorImage(version string) string { return OperatorImageRepository + ":v" + version }

// bundleImageTemplate is opm render's --alpha-image-ref-template: a bundle
// directory has no image name of its own.
const bundleImageTemplate = BundleImageRepository + ":v{{.Version}}"

// CatalogOptions say where the catalog is written.
type CatalogOptions struct {
	// Root is the repository (config/ and pkg/bundle's icon).
	Root string
	// Out receives bundles/<version>/ (each a bundle directory) and
	// catalog/ (the FBC root: catalog/lbstack/catalog.yaml).
	Out string
	// OPM is the opm program (bin/opm-v1.61.0).
	OPM string
}

// BundleDir is where WriteCatalog writes a version's bundle under out.
func BundleDir(out, version string) string { return filepath.Join(out, "bundles", version) }

// CatalogDir is the FBC root under out.
func CatalogDir(out string) string { return filepath.Join(out, "catalog") }

// WriteCatalog writes every release's bundle and the file-based catalog,
// then runs `opm validate` on the catalog.
func WriteCatalog(o CatalogOptions) error {
	var rendered [][]byte
	for _, r := range Releases {
		files, err := bundle.Generate(bundle.Options{
			Root: o.Root, Version: r.Version, Image: OperatorImage(r.Version),
			Replaces: r.Replaces, SkipRange: r.SkipRange,
		})
		if err != nil {
			return fmt.Errorf("bundle %s: %w", r.Version, err)
		}
		dir := BundleDir(o.Out, r.Version)
		if _, err := bundle.Write(dir, files); err != nil {
			return fmt.Errorf("bundle %s: %w", r.Version, err)
		}
		// opm renders the olm.bundle blob as it would from the bundle
		// image: properties (package, GVKs, CSV metadata, every manifest
		// as olm.bundle.object) and related images.
		out, err := run(o.OPM, "render", dir, "--output=yaml", "--alpha-image-ref-template="+bundleImageTemplate)
		if err != nil {
			return fmt.Errorf("bundle %s: %w", r.Version, err)
		}
		rendered = append(rendered, out)
	}
	fbc, err := catalogHead(o.Root)
	if err != nil {
		return err
	}
	for _, b := range rendered {
		if !bytes.HasPrefix(b, []byte("---\n")) {
			fbc = append(fbc, "---\n"...)
		}
		fbc = append(fbc, b...)
	}
	dir := filepath.Join(CatalogDir(o.Out), bundle.Package)
	if err := os.RemoveAll(CatalogDir(o.Out)); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "catalog.yaml"), fbc, 0o644); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	if _, err := run(o.OPM, "validate", CatalogDir(o.Out)); err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	return nil
}

// catalogHead is the catalog's olm.package and olm.channel blobs: the
// upgrade graph lives in the channel's entries (the CSVs' replaces and
// skipRange say the same, for tools that read bundles alone).
func catalogHead(root string) ([]byte, error) {
	icon, err := os.ReadFile(filepath.Join(root, "pkg", "bundle", "icon.svg"))
	if err != nil {
		return nil, fmt.Errorf("catalog: package icon: %w", err)
	}
	pkg := map[string]any{
		"schema":         "olm.package",
		"name":           bundle.Package,
		"defaultChannel": bundle.Channel,
		"description":    "Bare-metal load balancing for Services of type LoadBalancer, speaking MetalLB's metallb.io API.",
		"icon":           map[string]any{"base64data": base64.StdEncoding.EncodeToString(icon), "mediatype": "image/svg+xml"},
	}
	var entries []map[string]any
	for _, r := range Releases {
		e := map[string]any{"name": bundle.Package + ".v" + r.Version}
		if r.Replaces != "" {
			e["replaces"] = r.Replaces
		}
		if r.SkipRange != "" {
			e["skipRange"] = r.SkipRange
		}
		entries = append(entries, e)
	}
	ch := map[string]any{"schema": "olm.channel", "package": bundle.Package, "name": bundle.Channel, "entries": entries}
	var out []byte
	for _, blob := range []any{pkg, ch} {
		b, err := yaml.Marshal(blob)
		if err != nil {
			return nil, fmt.Errorf("catalog: %w", err)
		}
		out = append(out, "---\n"...)
		out = append(out, b...)
	}
	return out, nil
}

// run runs a tool and returns its standard output; a failure carries its
// standard error.
func run(prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(prog, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w\n%s", filepath.Base(prog), strings.Join(args, " "), err, stderr.String())
	}
	return out, nil
}
