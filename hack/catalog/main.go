// Command catalog writes lbstack's OLM catalog for the lab: the bundles of
// every release (test/olm.Releases) and a file-based catalog serving
// them, validated by opm (`make olm-catalog`, docs/olm.md).
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/lbstack/lbstack/test/olm"
)

func main() {
	var o olm.CatalogOptions
	flag.StringVar(&o.Root, "root", ".", "repository root")
	flag.StringVar(&o.Out, "out", "bin/olm-catalog", "directory for bundles/<version>/ and catalog/")
	flag.StringVar(&o.OPM, "opm", "", "opm program (make olm-tools)")
	flag.Parse()
	if o.OPM == "" {
		fmt.Fprintln(os.Stderr, "catalog: --opm is required")
		os.Exit(2)
	}
	if err := olm.WriteCatalog(o); err != nil {
		fmt.Fprintln(os.Stderr, "catalog:", err)
		os.Exit(1)
	}
	fmt.Println("wrote", olm.CatalogDir(o.Out))
}
