package bundle_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/operator-framework/api/pkg/manifests"
	olmv1alpha1 "github.com/operator-framework/api/pkg/operators/v1alpha1"
	"github.com/operator-framework/api/pkg/validation"
	verrors "github.com/operator-framework/api/pkg/validation/errors"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/pkg/bundle"
	"github.com/lbstack/lbstack/test/envtest"
)

func root(t *testing.T) string {
	t.Helper()
	r, err := envtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBundleIsFresh regenerates the bundle in memory and compares it with
// bundle/ (test/generated does the same through `make bundle`).
func TestBundleIsFresh(t *testing.T) {
	r := root(t)
	files, err := bundle.Generate(bundle.Options{Root: r, Version: "0.1.0", Image: "quay.io/lbstack/lbstack:v0.1.0"})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(r, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale or missing: run `make bundle`", name)
		}
	}
}

// validate runs the default bundle validators plus OperatorHub's and the
// good-practices validator on bundle/.
func validate(t *testing.T, dir string) (errs, warns []verrors.Error) {
	t.Helper()
	b, err := manifests.GetBundleFromDir(dir)
	if err != nil {
		t.Fatalf("load bundle %s: %v", dir, err)
	}
	objs := b.ObjectsToValidate()
	objs = append(objs, map[string]string{"k8s-version": "1.34"})
	vals := validation.DefaultBundleValidators.WithValidators(
		validation.OperatorHubV2Validator,
		validation.StandardCapabilitiesValidator,
		validation.StandardCategoriesValidator,
		validation.GoodPracticesValidator,
	)
	for _, res := range vals.Validate(objs...) {
		for _, e := range res.Errors {
			errs = append(errs, e)
		}
		for _, w := range res.Warnings {
			warns = append(warns, w)
		}
	}
	return errs, warns
}

// knownWarnings are the validator warnings docs/olm.md explains; each key
// must appear in a warning's text and in docs/olm.md.
var knownWarnings = []string{
	"Migrate the API(s) for endpointslices",
	"Kind=ConfigurationState: provided API should have an example annotation",
	"Kind=ServiceL2Status: provided API should have an example annotation",
	"Kind=ServiceBGPStatus: provided API should have an example annotation",
}

func TestBundleValidates(t *testing.T) {
	r := root(t)
	errs, warns := validate(t, filepath.Join(r, "bundle"))
	for _, e := range errs {
		t.Errorf("bundle validation error: %s", e.Error())
	}
	docs, _ := os.ReadFile(filepath.Join(r, "docs", "olm.md"))
	for _, w := range warns {
		explained := false
		for _, k := range knownWarnings {
			if strings.Contains(w.Error(), k) && strings.Contains(string(docs), k) {
				explained = true
			}
		}
		if !explained {
			t.Errorf("bundle validation warning not explained in docs/olm.md: %s", w.Error())
		}
	}
}

// The validators must be able to fail: a CSV with OwnNamespace supported
// beside a conversion webhook is refused.
func TestValidationCatchesAConversionWebhookWithOwnNamespace(t *testing.T) {
	dir := t.TempDir()
	if err := bundle.CopyWithEveryInstallMode(filepath.Join(root(t), "bundle"), dir); err != nil {
		t.Fatal(err)
	}
	if errs, _ := validate(t, dir); len(errs) == 0 {
		t.Error("a CSV with a conversion webhook and OwnNamespace install mode validated")
	}
}

func TestMustGatherImageFor(t *testing.T) {
	for in, want := range map[string]string{
		"quay.io/lbstack/lbstack:v0.1.0":         "quay.io/lbstack/lbstack-must-gather:v0.1.0",
		"127.0.0.1:5000/lbstack/lbstack:e2e":     "127.0.0.1:5000/lbstack/lbstack-must-gather:e2e",
		"127.0.0.1:5000/lbstack":                 "127.0.0.1:5000/lbstack-must-gather",
		"quay.io/lbstack/lbstack@sha256:0123abc": "quay.io/lbstack/lbstack-must-gather@sha256:0123abc",
	} {
		if got := bundle.MustGatherImageFor(in); got != want {
			t.Errorf("bundle.MustGatherImageFor(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCSVContents(t *testing.T) {
	r := root(t)
	data, err := os.ReadFile(filepath.Join(r, "bundle", "manifests", "lbstack.clusterserviceversion.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var csv olmv1alpha1.ClusterServiceVersion
	if err := yaml.Unmarshal(data, &csv); err != nil {
		t.Fatal(err)
	}
	if csv.Annotations["operatorframework.io/suggested-namespace"] != "metallb-system" {
		t.Error("suggested namespace")
	}
	// The namespace OperatorHub creates admits the speakers: on a cluster
	// enforcing the restricted Pod Security level by default they would
	// otherwise be refused.
	var ns corev1.Namespace
	if err := json.Unmarshal([]byte(csv.Annotations["operatorframework.io/suggested-namespace-template"]), &ns); err != nil ||
		ns.Name != "metallb-system" || ns.Kind != "Namespace" {
		t.Errorf("suggested namespace template %q: %v", csv.Annotations["operatorframework.io/suggested-namespace-template"], err)
	}
	for _, mode := range []string{"enforce", "audit", "warn"} {
		if ns.Labels["pod-security.kubernetes.io/"+mode] != "privileged" {
			t.Errorf("the suggested namespace lacks pod-security.kubernetes.io/%s=privileged: %v", mode, ns.Labels)
		}
	}
	// Disconnected support is claimed only with every image pinned by digest.
	if csv.Annotations["features.operators.openshift.io/disconnected"] == "true" {
		for _, img := range csv.Spec.RelatedImages {
			if !strings.Contains(img.Image, "@sha256:") {
				t.Errorf("disconnected support claimed, but related image %s is not pinned by digest", img.Image)
			}
		}
	}
	var examples []map[string]any
	if err := json.Unmarshal([]byte(csv.Annotations["alm-examples"]), &examples); err != nil || len(examples) != 9 {
		t.Errorf("alm-examples: %d objects, %v", len(examples), err)
	}
	kinds := map[string]bool{}
	for _, c := range csv.Spec.CustomResourceDefinitions.Owned {
		kinds[c.Kind+"/"+c.Version] = true
		if c.DisplayName == "" || c.Description == "" {
			t.Errorf("owned CRD %s lacks a display name or description", c.Name)
		}
	}
	if !kinds["BGPPeer/v1beta1"] || !kinds["BGPPeer/v1beta2"] || !kinds["MetalLB/v1beta1"] {
		t.Errorf("owned CRDs %v", kinds)
	}
	var conv, validating int
	for _, w := range csv.Spec.WebhookDefinitions {
		switch w.Type {
		case olmv1alpha1.ConversionWebhook:
			conv++
			if len(w.ConversionCRDs) != 1 || w.ConversionCRDs[0] != "bgppeers.metallb.io" || *w.WebhookPath != "/convert" {
				t.Errorf("conversion webhook %+v", w)
			}
		case olmv1alpha1.ValidatingAdmissionWebhook:
			validating++
		}
	}
	if conv != 1 || validating != 8 {
		t.Errorf("webhooks: %d conversion, %d validating", conv, validating)
	}
	for _, m := range csv.Spec.InstallModes {
		if m.Supported != (m.Type == olmv1alpha1.InstallModeTypeAllNamespaces) {
			t.Errorf("install mode %s supported=%v", m.Type, m.Supported)
		}
	}
	d := csv.Spec.InstallStrategy.StrategySpec.DeploymentSpecs[0].Spec.Template.Spec
	if len(d.Volumes) != 0 || !strings.Contains(strings.Join(d.Containers[0].Args, " "), "--cert-mode=external") {
		t.Errorf("under OLM the operator must use OLM's certificate: volumes %v args %v", d.Volumes, d.Containers[0].Args)
	}
	if mg := csv.Annotations["operators.openshift.io/must-gather-image"]; mg != bundle.MustGatherImageFor(csv.Annotations["containerImage"]) || !strings.Contains(mg, "-must-gather:") {
		t.Errorf("must-gather image annotation %q", mg)
	}
	if len(csv.Spec.RelatedImages) != 3 || csv.Spec.MinKubeVersion == "" || len(csv.Spec.Icon) != 1 {
		t.Errorf("relatedImages %v minKubeVersion %q icons %d", csv.Spec.RelatedImages, csv.Spec.MinKubeVersion, len(csv.Spec.Icon))
	}
}

// The kustomize install labels its namespace as the bundle suggests.
func TestKustomizeNamespaceAdmitsTheSpeakers(t *testing.T) {
	objs, err := bundle.Kustomize(filepath.Join(root(t), "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "Namespace" {
			continue
		}
		for k, v := range bundle.PodSecurityLabels {
			if o.GetLabels()[k] != v {
				t.Errorf("namespace %s: label %s=%q, want %q", o.GetName(), k, o.GetLabels()[k], v)
			}
		}
		return
	}
	t.Fatal("config/default has no Namespace")
}

// A later release names the CSV it upgrades and the range it skips; a
// name of another package or a range that does not parse is refused.
func TestReplacesAndSkipRange(t *testing.T) {
	r := root(t)
	files, err := bundle.Generate(bundle.Options{Root: r, Version: "0.2.0", Image: "quay.io/lbstack/lbstack:v0.2.0",
		Replaces: "lbstack.v0.1.0", SkipRange: ">=0.1.0 <0.2.0"})
	if err != nil {
		t.Fatal(err)
	}
	var csv olmv1alpha1.ClusterServiceVersion
	if err := yaml.Unmarshal(files[filepath.Join("bundle", "manifests", "lbstack.clusterserviceversion.yaml")], &csv); err != nil {
		t.Fatal(err)
	}
	if csv.Name != "lbstack.v0.2.0" || csv.Spec.Replaces != "lbstack.v0.1.0" || csv.Annotations["olm.skipRange"] != ">=0.1.0 <0.2.0" {
		t.Errorf("CSV %s replaces %q skipRange %q", csv.Name, csv.Spec.Replaces, csv.Annotations["olm.skipRange"])
	}
	for _, o := range []bundle.Options{
		{Replaces: "metallb-operator.v0.1.0"},
		{SkipRange: "0.1.0 to 0.2.0"},
	} {
		o.Root, o.Version, o.Image = r, "0.2.0", "quay.io/lbstack/lbstack:v0.2.0"
		if _, err := bundle.Generate(o); err == nil {
			t.Errorf("Generate accepted replaces %q skip range %q", o.Replaces, o.SkipRange)
		}
	}
}

// Write puts a bundle where it is told, leaves files it does not generate
// and removes the generated files a previous run left.
func TestWrite(t *testing.T) {
	dir := t.TempDir()
	for p, data := range map[string]string{"README.md": "kept", "manifests/old.yaml": "stale"} {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	written, err := bundle.Write(dir, map[string][]byte{"bundle/manifests/csv.yaml": []byte("csv"), "bundle/metadata/annotations.yaml": []byte("a")})
	if err != nil || len(written) != 2 {
		t.Fatalf("Write: %v %v", written, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "manifests", "old.yaml")); !os.IsNotExist(err) {
		t.Error("a stale generated file survived")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "README.md")); err != nil || string(b) != "kept" {
		t.Error("README.md was not kept")
	}
	if b, err := os.ReadFile(filepath.Join(dir, "manifests", "csv.yaml")); err != nil || string(b) != "csv" {
		t.Error("manifests/csv.yaml not written")
	}
	if _, err := bundle.Write(dir, map[string][]byte{"config/x.yaml": nil}); err == nil {
		t.Error("Write accepted a file outside bundle/")
	}
}
