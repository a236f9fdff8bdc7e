// Command bundle writes the OLM bundle (bundle/) from config/: `make
// bundle`. With --out it writes another version's bundle elsewhere (the
// lab's catalog, `make olm-catalog`) and leaves the checked-in bundle/
// alone.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/lbstack/lbstack/pkg/bundle"
)

func main() {
	var o bundle.Options
	flag.StringVar(&o.Root, "root", ".", "repository root")
	flag.StringVar(&o.Version, "version", "0.1.0", "operator version (semver)")
	flag.StringVar(&o.Image, "image", "quay.io/lbstack/lbstack:v0.1.0", "operator image")
	flag.StringVar(&o.Replaces, "replaces", "", "CSV this version replaces (lbstack.v0.1.0); empty for none")
	flag.StringVar(&o.SkipRange, "skip-range", "", "olm.skipRange of the CSV (\">=0.1.0 <0.2.0\"); empty for none")
	out := flag.String("out", "", "bundle directory to write (default: <root>/bundle)")
	flag.Parse()
	if *out == "" {
		*out = filepath.Join(o.Root, "bundle")
	}
	if err := run(o, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bundle:", err)
		os.Exit(1)
	}
}

func run(o bundle.Options, out string) error {
	files, err := bundle.Generate(o)
	if err != nil {
		return err
	}
	written, err := bundle.Write(out, files)
	for _, p := range written {
		fmt.Println("wrote", p)
	}
	return err
}
