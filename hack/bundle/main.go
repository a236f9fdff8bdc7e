// Command bundle writes the OLM bundle (bundle/) from config/: `make bundle`.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/lbstack/lbstack/pkg/bundle"
)

func main() {
	root := flag.String("root", ".", "repository root")
	ver := flag.String("version", "0.1.0", "operator version (semver)")
	image := flag.String("image", "quay.io/lbstack/lbstack:v0.1.0", "operator image")
	flag.Parse()
	if err := run(*root, *ver, *image); err != nil {
		fmt.Fprintln(os.Stderr, "bundle:", err)
		os.Exit(1)
	}
}

func run(root, ver, image string) error {
	files, err := bundle.Generate(bundle.Options{Root: root, Version: ver, Image: image})
	if err != nil {
		return err
	}
	// Remove what an earlier run generated, so a file no longer generated
	// does not linger.
	for _, d := range []string{"manifests", "metadata", "tests"} {
		if err := os.RemoveAll(filepath.Join(root, "bundle", d)); err != nil {
			return err
		}
	}
	var names []string
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := filepath.Join(root, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, files[n], 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", n)
	}
	return nil
}
