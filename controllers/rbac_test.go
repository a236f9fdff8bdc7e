package controllers

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/bindata"
	"github.com/lbstack/lbstack/pkg/render"
)

// TestOperatorWritesOnlyItsOwnClusterObjects: the operator's ClusterRole
// limits updates, patches and deletes of ClusterRoles and bindings to the
// names it renders; every cluster-scoped RBAC object any MetalLB spec
// renders must be among them, or the operator could not keep it.
func TestOperatorWritesOnlyItsOwnClusterObjects(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var allowed []string
	var unrestricted []string
	for _, doc := range splitYAML(data) {
		var cr rbacv1.ClusterRole
		if err := yaml.Unmarshal(doc, &cr); err != nil {
			t.Fatal(err)
		}
		if cr.Kind != "ClusterRole" {
			continue
		}
		for _, r := range cr.Rules {
			if !slices.Contains(r.APIGroups, "rbac.authorization.k8s.io") {
				continue
			}
			writes := slices.ContainsFunc(r.Verbs, func(v string) bool { return v == "update" || v == "patch" || v == "delete" || v == "*" })
			if !writes {
				continue
			}
			if len(r.ResourceNames) == 0 {
				unrestricted = append(unrestricted, r.Resources...)
			}
			allowed = append(allowed, r.ResourceNames...)
		}
	}
	if len(unrestricted) > 0 {
		t.Errorf("the operator may update, patch or delete any of %v", unrestricted)
	}
	for _, p := range []render.Params{
		ParamsFor(&v1beta1.MetalLB{Spec: v1beta1.MetalLBSpec{BGPType: v1beta1.BGPTypeNative}}, testImages(), false, false, "a2V5"),
		ParamsFor(&v1beta1.MetalLB{Spec: v1beta1.MetalLBSpec{BGPType: v1beta1.BGPTypeFRR}}, testImages(), true, true, "a2V5"),
	} {
		p.Namespace, p.OwnerName = "metallb-system", "metallb"
		objs, err := render.Render(bindata.FS, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			if (o.GetKind() == "ClusterRole" || o.GetKind() == "ClusterRoleBinding") && !slices.Contains(allowed, o.GetName()) {
				t.Errorf("%s %s is rendered, but the operator's ClusterRole does not let it update it (resourceNames %v)", o.GetKind(), o.GetName(), allowed)
			}
		}
	}
}

func splitYAML(data []byte) [][]byte { return bytes.Split(data, []byte("\n---")) }
