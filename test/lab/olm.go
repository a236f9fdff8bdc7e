package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/lbstack/lbstack/test/olm"
)

// OLM in the lab (docs/olm.md, "In the lab"): OLM v0.38.0 installed from
// its own quickstart manifests, its images and lbstack's bundles and
// catalog built here (olmimages.go) and served by the lab registry.

// OLMNamespace is where OLM runs and where the lab's CatalogSource lives
// (OLM's global catalog namespace).
const OLMNamespace = "olm"

// OLMCatalogSource is the name of the lab's CatalogSource serving
// olm.CatalogImage.
const OLMCatalogSource = "lbstack-catalog"

// OLMSources are this lab's OLM inputs (`make olm-tools`, `make image-debs`).
func (s *State) OLMSources() OLMSources {
	return OLMSourcesIn(filepath.Join(s.Root, "bin"), s.DebsDir)
}

// OLMCatalogOut is where `make olm-catalog` wrote the bundles and catalog.
func (s *State) OLMCatalogOut() string { return filepath.Join(s.Root, "bin", "olm-catalog") }

// BuildOLMImages builds OLM's and opm's images, every release's bundle
// image, the catalog image and the scorecard's images into the lab
// registry. The lbstack images each release's CSV names are tags of the
// lab's own build (BuildOLMCatalogImages); a test that needs a release to
// run a different binary pushes it afterwards (PushLbstackImage).
func (l *Lab) BuildOLMImages() error {
	store, src := l.State.ImageStore(), l.State.OLMSources()
	if err := BuildOLMImages(store, src); err != nil {
		return err
	}
	if err := BuildOLMCatalogImages(store, src, l.State.OLMCatalogOut()); err != nil {
		return err
	}
	return BuildScorecardImages(store, src)
}

// olmManifestPaths writes OLM's CRDs and its olm.yaml, as the lab applies
// them, into the lab's state directory.
func (l *Lab) olmManifestPaths() (crdsPath, olmPath string, err error) {
	crds, olmYAML, err := l.State.OLMSources().OLMInstallManifests()
	if err != nil {
		return "", "", err
	}
	olmYAML = withoutDocument(olmYAML, "kind: CatalogSource", "name: operatorhubio-catalog")
	dir := filepath.Join(l.State.Dir, "olm")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", "", err
	}
	crdsPath, olmPath = filepath.Join(dir, "crds.yaml"), filepath.Join(dir, "olm.yaml")
	if err := os.WriteFile(crdsPath, crds, 0o644); err != nil {
		return "", "", err
	}
	return crdsPath, olmPath, os.WriteFile(olmPath, olmYAML, 0o644)
}

// withoutDocument drops the YAML documents holding every one of marks.
// The lab drops OperatorHub's community CatalogSource from olm.yaml: its
// image is on the internet, which the lab's nodes cannot reach, and a
// catalog that never serves only adds failing pods and resolution noise.
func withoutDocument(manifests []byte, marks ...string) []byte {
	docs := bytes.Split(manifests, []byte("\n---\n"))
	var keep [][]byte
	for _, d := range docs {
		all := true
		for _, m := range marks {
			if !bytes.Contains(d, []byte(m)) {
				all = false
			}
		}
		if !all {
			keep = append(keep, d)
		}
	}
	return bytes.Join(keep, []byte("\n---\n"))
}

// InstallOLM installs OLM as its install.sh does: the CRDs, until they
// are established, then olm.yaml; it waits for OLM's two operators and
// for the packageserver CSV (OLM's aggregated API) to succeed.
func (l *Lab) InstallOLM(ctx context.Context) error {
	crds, olmYAML, err := l.olmManifestPaths()
	if err != nil {
		return err
	}
	if _, err := l.Kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-f", crds); err != nil {
		return fmt.Errorf("OLM's CRDs: %w", err)
	}
	if _, err := l.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s", "-f", crds); err != nil {
		return fmt.Errorf("OLM's CRDs: %w", err)
	}
	if _, err := l.Kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-f", olmYAML); err != nil {
		return fmt.Errorf("OLM's olm.yaml: %w", err)
	}
	for _, d := range []string{"olm-operator", "catalog-operator"} {
		if _, err := l.Kubectl(ctx, "-n", OLMNamespace, "rollout", "status", "deployment/"+d, "--timeout=180s"); err != nil {
			pods, _ := l.Kubectl(ctx, "-n", OLMNamespace, "get", "pods", "-o", "wide")
			return fmt.Errorf("OLM's %s: %w\n%s", d, err, pods)
		}
	}
	if err := l.WaitCSV(ctx, OLMNamespace, "packageserver", "Succeeded", 3*time.Minute); err != nil {
		return fmt.Errorf("OLM's packageserver: %w", err)
	}
	return nil
}

// RemoveOLM removes OLM in the order its objects need: every CSV first,
// while OLM runs (the olm-operator holds a finalizer on each, and owns
// packageserver's APIService, which once stale makes every namespace
// deletion in the cluster fail its discovery), then olm.yaml, then the
// CRDs.
func (l *Lab) RemoveOLM(ctx context.Context) error {
	crds, olmYAML, err := l.olmManifestPaths()
	if err != nil {
		return err
	}
	var errs []string
	if out, err := l.Kubectl(ctx, "get", "crd", "clusterserviceversions.operators.coreos.com", "--ignore-not-found", "-o", "name"); err == nil && out != "" {
		if _, err := l.Kubectl(ctx, "delete", "csv", "--all", "--all-namespaces", "--wait=true", "--timeout=90s"); err != nil {
			errs = append(errs, err.Error())
			// What OLM could not finalize in time: release it, or the
			// namespaces below never go.
			names, _ := l.Kubectl(ctx, "get", "csv", "--all-namespaces", "-o", `jsonpath={range .items[*]}{.metadata.namespace}/{.metadata.name}{"\n"}{end}`)
			for _, nn := range strings.Fields(names) {
				ns, name, _ := strings.Cut(nn, "/")
				_, _ = l.Kubectl(ctx, "-n", ns, "patch", "csv", name, "--type=merge", "-p", `{"metadata":{"finalizers":null}}`)
			}
		}
	}
	if _, err := l.Kubectl(ctx, "delete", "apiservice", "v1.packages.operators.coreos.com", "--ignore-not-found"); err != nil {
		errs = append(errs, err.Error())
	}
	if _, err := l.Kubectl(ctx, "delete", "--ignore-not-found", "--wait=true", "--timeout=100s", "-f", olmYAML); err != nil {
		errs = append(errs, err.Error())
	}
	if _, err := l.Kubectl(ctx, "delete", "--ignore-not-found", "--wait=true", "--timeout=100s", "-f", crds); err != nil {
		errs = append(errs, err.Error())
	}
	if len(errs) > 0 {
		return fmt.Errorf("remove OLM: %s", strings.Join(errs, "; "))
	}
	return nil
}

// WaitCSV waits until the ClusterServiceVersion ns/name reports phase.
func (l *Lab) WaitCSV(ctx context.Context, ns, name, phase string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last string
	for {
		out, err := l.Kubectl(ctx, "-n", ns, "get", "csv", name, "-o", "jsonpath={.status.phase} {.status.reason}: {.status.message}")
		if err == nil && strings.HasPrefix(out, phase+" ") {
			return nil
		}
		last = fmt.Sprintf("%s %v", out, err)
		if time.Now().After(deadline) {
			return fmt.Errorf("CSV %s/%s not %s after %s (last: %s)", ns, name, phase, timeout, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// OLMCatalogSourceYAML is the lab's CatalogSource: lbstack's file-based
// catalog image, in OLM's global catalog namespace, its pod run under the
// restricted Pod Security profile.
func OLMCatalogSourceYAML() string {
	return fmt.Sprintf(`apiVersion: operators.coreos.com/v1alpha1
kind: CatalogSource
metadata:
  name: %s
  namespace: %s
spec:
  sourceType: grpc
  image: %s
  displayName: lbstack (lab)
  publisher: lbstack
  grpcPodConfig:
    securityContextConfig: restricted
`, OLMCatalogSource, OLMNamespace, olm.CatalogImage)
}

// OLMSubscriptionYAML is what a user applies to install lbstack from the
// lab's catalog (docs/olm.md shows it): the namespace with the Pod
// Security labels the speakers need, an AllNamespaces OperatorGroup and a
// Subscription to the candidate channel. approval is Automatic or Manual;
// startingCSV, when set, is the version to install first.
func OLMSubscriptionYAML(approval, startingCSV string) string {
	y := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %[1]s
  labels:
    pod-security.kubernetes.io/enforce: privileged
    pod-security.kubernetes.io/audit: privileged
    pod-security.kubernetes.io/warn: privileged
---
apiVersion: operators.coreos.com/v1
kind: OperatorGroup
metadata:
  name: lbstack
  namespace: %[1]s
---
apiVersion: operators.coreos.com/v1alpha1
kind: Subscription
metadata:
  name: lbstack
  namespace: %[1]s
spec:
  channel: candidate
  name: lbstack
  source: %[2]s
  sourceNamespace: %[3]s
  installPlanApproval: %[4]s
`, StackNamespace, OLMCatalogSource, OLMNamespace, approval)
	if startingCSV != "" {
		y += "  startingCSV: " + startingCSV + "\n"
	}
	return y
}

// InstallStackWithOLM installs lbstack as a user of an OLM cluster does
// (`make lab LAB_INSTALL=olm`): OLM, the lab's catalog, then the
// Namespace, OperatorGroup and an automatic Subscription, until the CSV
// OLM installs has succeeded and the operator runs. A kustomize install
// of lbstack is removed first (`make undeploy`'s order).
func (l *Lab) InstallStackWithOLM(ctx context.Context, out io.Writer) error {
	if owners, err := l.Kubectl(ctx, "-n", StackNamespace, "get", "deployment", "lbstack-operator", "--ignore-not-found", "-o", "jsonpath={.metadata.labels.olm\\.owner}"); err == nil && owners == "" {
		if exists, _ := l.Kubectl(ctx, "-n", StackNamespace, "get", "deployment", "lbstack-operator", "--ignore-not-found", "-o", "name"); exists != "" {
			fmt.Fprintln(out, "lab: removing the kustomize install of lbstack first")
			if err := l.UninstallStack(ctx); err != nil {
				return err
			}
		}
	}
	if err := l.BuildOLMImages(); err != nil {
		return fmt.Errorf("OLM's images (make olm-tools olm-catalog): %w", err)
	}
	if err := l.InstallOLM(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "lab: OLM %s installed (olm-operator, catalog-operator, packageserver)\n", OLMVersion)
	dir := filepath.Join(l.State.Dir, "olm")
	for _, f := range []struct{ name, yaml string }{
		{"catalogsource.yaml", OLMCatalogSourceYAML()},
		{"subscription.yaml", OLMSubscriptionYAML("Automatic", "")},
	} {
		path := filepath.Join(dir, f.name)
		if err := os.WriteFile(path, []byte(f.yaml), 0o644); err != nil {
			return err
		}
		if _, err := l.Kubectl(ctx, "apply", "-f", path); err != nil {
			return err
		}
		fmt.Fprintf(out, "lab: applied %s\n", path)
	}
	var csv string
	deadline := time.Now().Add(5 * time.Minute)
	for {
		csv, _ = l.Kubectl(ctx, "-n", StackNamespace, "get", "subscription", "lbstack", "-o", "jsonpath={.status.installedCSV}")
		if csv != "" {
			if err := l.WaitCSV(ctx, StackNamespace, csv, "Succeeded", time.Until(deadline)); err != nil {
				return err
			}
			break
		}
		if time.Now().After(deadline) {
			cond, _ := l.Kubectl(ctx, "-n", StackNamespace, "get", "subscription", "lbstack", "-o", "jsonpath={.status.conditions}")
			return fmt.Errorf("OLM installed nothing for Subscription lbstack in 5 minutes: %s", cond)
		}
		time.Sleep(time.Second)
	}
	if _, err := l.Kubectl(ctx, "-n", StackNamespace, "rollout", "status", "deployment/lbstack-operator", "--timeout=110s"); err != nil {
		return err
	}
	fmt.Fprintf(out, "lab: OLM installed %s: CSV Succeeded, operator running\n", csv)
	return nil
}
