// Command olm-manifests renders OLM's install manifests from the Helm chart
// in OLM's module, as OLM's release does (`helm template` of deploy/chart
// with deploy/upstream/values.yaml) for the crds.yaml and olm.yaml it
// publishes. The module's deploy/upstream/quickstart is not that release:
// it is OLM 0.18.3's (no OLMConfig CRD, which OLM v0.38's olm-operator
// waits for, and Go-style single-dash flags the cobra-based catalog
// operator refuses). It runs in test/olmtools/sdk because Helm's engine is
// already in that module's graph (operator-sdk's).
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
)

func main() {
	chartDir := flag.String("chart", "", "OLM's deploy/chart")
	valuesPath := flag.String("values", "", "OLM's deploy/upstream/values.yaml")
	namespace := flag.String("namespace", "olm", "the release's namespace")
	crdsOut := flag.String("crds", "", "write the chart's CRDs here")
	olmOut := flag.String("olm", "", "write the rendered templates here")
	flag.Parse()
	if err := run(*chartDir, *valuesPath, *namespace, *crdsOut, *olmOut); err != nil {
		fmt.Fprintln(os.Stderr, "olm-manifests:", err)
		os.Exit(1)
	}
}

func run(chartDir, valuesPath, namespace, crdsOut, olmOut string) error {
	if chartDir == "" || valuesPath == "" || crdsOut == "" || olmOut == "" {
		return fmt.Errorf("--chart, --values, --crds and --olm are required")
	}
	ch, err := loader.Load(chartDir)
	if err != nil {
		return fmt.Errorf("chart %s: %w", chartDir, err)
	}
	vals, err := chartutil.ReadValuesFile(valuesPath)
	if err != nil {
		return fmt.Errorf("values %s: %w", valuesPath, err)
	}
	opts := chartutil.ReleaseOptions{Name: "olm", Namespace: namespace, Revision: 1, IsInstall: true}
	rv, err := chartutil.ToRenderValues(ch, vals.AsMap(), opts, chartutil.DefaultCapabilities)
	if err != nil {
		return err
	}
	files, err := engine.Render(ch, rv)
	if err != nil {
		return fmt.Errorf("render %s: %w", chartDir, err)
	}
	// Templates in file order (their names carry OLM's install order);
	// partials and templates that render nothing are left out.
	var names []string
	for name, body := range files {
		if strings.HasPrefix(path.Base(name), "_") || strings.HasSuffix(name, "NOTES.txt") || strings.TrimSpace(body) == "" {
			continue
		}
		names = append(names, name)
	}
	sort.Strings(names)
	var olm bytes.Buffer
	for _, name := range names {
		fmt.Fprintf(&olm, "---\n# Source: %s\n%s\n", name, strings.TrimSpace(files[name]))
	}
	var crds bytes.Buffer
	objs := ch.CRDObjects()
	sort.Slice(objs, func(i, j int) bool { return objs[i].Filename < objs[j].Filename })
	for _, c := range objs {
		fmt.Fprintf(&crds, "---\n# Source: %s\n%s\n", c.Filename, strings.TrimSpace(string(c.File.Data)))
	}
	if len(objs) == 0 || len(names) == 0 {
		return fmt.Errorf("chart %s rendered %d CRDs and %d templates", chartDir, len(objs), len(names))
	}
	if err := os.WriteFile(crdsOut, crds.Bytes(), 0o644); err != nil {
		return err
	}
	return os.WriteFile(olmOut, olm.Bytes(), 0o644)
}
