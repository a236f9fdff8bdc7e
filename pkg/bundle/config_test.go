package bundle_test

import (
	"path/filepath"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lbstack/lbstack/pkg/bundle"
)

// TestDefaultInstall checks that `kubectl apply -k config/default` wires
// up: the names the operator's flags default to, the webhook Service
// selecting the operator pod, every namespaced object in metallb-system.
func TestDefaultInstall(t *testing.T) {
	objs, err := bundle.Kustomize(filepath.Join(root(t), "config", "default"))
	if err != nil {
		t.Fatal(err)
	}
	byKind := map[string][]*unstructured.Unstructured{}
	for _, o := range objs {
		byKind[o.GetKind()] = append(byKind[o.GetKind()], o)
		switch o.GetKind() {
		case "Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ValidatingWebhookConfiguration":
		default:
			if o.GetNamespace() != "metallb-system" {
				t.Errorf("%s %s in namespace %q", o.GetKind(), o.GetName(), o.GetNamespace())
			}
		}
	}
	one := func(kind string) *unstructured.Unstructured {
		t.Helper()
		if len(byKind[kind]) != 1 {
			t.Fatalf("%d %s objects", len(byKind[kind]), kind)
		}
		return byKind[kind][0]
	}
	svc, dep, vwc := one("Service"), one("Deployment"), one("ValidatingWebhookConfiguration")
	// The defaults of `lbstack operator --webhook-service --webhook-configuration --cert-secret`.
	if svc.GetName() != "lbstack-webhook-service" || vwc.GetName() != "lbstack-validating-webhook-configuration" || dep.GetName() != "lbstack-operator" {
		t.Errorf("names: service %s, webhook configuration %s, deployment %s", svc.GetName(), vwc.GetName(), dep.GetName())
	}
	sel, _, _ := unstructured.NestedStringMap(svc.Object, "spec", "selector")
	podLabels, _, _ := unstructured.NestedStringMap(dep.Object, "spec", "template", "metadata", "labels")
	for k, v := range sel {
		if podLabels[k] != v {
			t.Errorf("webhook Service selects %v, operator pod labels %v", sel, podLabels)
		}
	}
	hooks, _, _ := unstructured.NestedSlice(vwc.Object, "webhooks")
	for _, h := range hooks {
		name, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "service", "name")
		ns, _, _ := unstructured.NestedString(h.(map[string]any), "clientConfig", "service", "namespace")
		if name != svc.GetName() || ns != "metallb-system" {
			t.Errorf("webhook points at %s/%s", ns, name)
		}
	}
	for _, crd := range byKind["CustomResourceDefinition"] {
		strategy, _, _ := unstructured.NestedString(crd.Object, "spec", "conversion", "strategy")
		name, _, _ := unstructured.NestedString(crd.Object, "spec", "conversion", "webhook", "clientConfig", "service", "name")
		if crd.GetName() == "bgppeers.metallb.io" {
			if strategy != "Webhook" || name != svc.GetName() {
				t.Errorf("BGPPeer conversion: strategy %q service %q", strategy, name)
			}
		} else if strategy == "Webhook" {
			t.Errorf("%s has a conversion webhook", crd.GetName())
		}
	}
	vols, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "volumes")
	if len(vols) != 1 {
		t.Fatalf("operator volumes %v", vols)
	}
	if s, _, _ := unstructured.NestedString(vols[0].(map[string]any), "secret", "secretName"); s != "lbstack-webhook-server-cert" {
		t.Errorf("certificate Secret %q", s)
	}
	sa, _, _ := unstructured.NestedString(dep.Object, "spec", "template", "spec", "serviceAccountName")
	if sa != one("ServiceAccount").GetName() {
		t.Errorf("operator runs as %q", sa)
	}
}
