package render_test

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/lbstack/lbstack/bindata"
	"github.com/lbstack/lbstack/pkg/render"
)

// wantCaps are the only capabilities each container adds (after dropping
// ALL); docs/security.md says why each is needed.
var wantCaps = map[string][]corev1.Capability{
	"speaker":      {"NET_RAW"},
	"frr":          {"CHOWN", "DAC_OVERRIDE", "FOWNER", "KILL", "SETUID", "SETGID", "NET_ADMIN", "NET_RAW", "NET_BIND_SERVICE", "SYS_ADMIN"},
	"reloader":     {"DAC_OVERRIDE"},
	"cp-frr-files": nil,
	"cp-lbstack":   nil,
	"controller":   nil,
}

func podSpec(t *testing.T, objs []*unstructured.Unstructured, kind, name string) corev1.PodSpec {
	t.Helper()
	o := find(objs, kind, name)
	if o == nil {
		t.Fatalf("no %s %s", kind, name)
	}
	tmpl, ok := o.Object["spec"].(map[string]any)["template"].(map[string]any)
	if !ok {
		t.Fatalf("%s %s has no pod template", kind, name)
	}
	var pt corev1.PodTemplateSpec
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(tmpl, &pt); err != nil {
		t.Fatal(err)
	}
	return pt.Spec
}

// TestLeastPrivilege: every container of the stack runs with exactly the
// privileges docs/security.md lists: all capabilities dropped and only the
// needed ones added, no privilege escalation, a seccomp profile, a
// read-only root filesystem where the image allows it, resource requests,
// no shared process namespace, and the speaker's probes on loopback.
func TestLeastPrivilege(t *testing.T) {
	for name, p := range cases() {
		objs, err := render.Render(bindata.FS, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, w := range []struct{ kind, name string }{{"DaemonSet", "lbstack-speaker"}, {"Deployment", "lbstack-controller"}} {
			spec := podSpec(t, objs, w.kind, w.name)
			if sc := spec.SecurityContext; sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
				t.Errorf("%s: %s: no RuntimeDefault seccomp profile on the pod", name, w.name)
			}
			if spec.ShareProcessNamespace != nil && *spec.ShareProcessNamespace {
				t.Errorf("%s: %s shares its process namespace", name, w.name)
			}
			for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
				sc := c.SecurityContext
				if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
					t.Errorf("%s: %s/%s may escalate privileges", name, w.name, c.Name)
				}
				if sc == nil || sc.Privileged != nil && *sc.Privileged {
					t.Errorf("%s: %s/%s is privileged", name, w.name, c.Name)
				}
				want, known := wantCaps[c.Name]
				if !known {
					t.Errorf("%s: %s/%s: a container this test does not know", name, w.name, c.Name)
					continue
				}
				if sc == nil || sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
					t.Errorf("%s: %s/%s does not drop ALL capabilities", name, w.name, c.Name)
				} else if !slices.Equal(sc.Capabilities.Add, want) {
					t.Errorf("%s: %s/%s adds %v, want %v", name, w.name, c.Name, sc.Capabilities.Add, want)
				}
				// FRR's own image writes under /var/tmp and /var/log.
				if c.Name != "frr" && (sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem) {
					t.Errorf("%s: %s/%s has a writable root filesystem", name, w.name, c.Name)
				}
				if len(c.Resources.Requests) == 0 {
					t.Errorf("%s: %s/%s requests no resources (the pod would be BestEffort)", name, w.name, c.Name)
				}
			}
		}
		for _, c := range podSpec(t, objs, "DaemonSet", "lbstack-speaker").Containers {
			if c.Name != "speaker" {
				continue
			}
			for what, pr := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
				if pr == nil || pr.HTTPGet == nil || pr.HTTPGet.Host != "127.0.0.1" || pr.HTTPGet.Port.IntValue() != 7473 || pr.HTTPGet.Path == "/metrics" {
					t.Errorf("%s: the speaker's %s probe is %+v, want its own health on 127.0.0.1:7473", name, what, pr)
				}
			}
		}
	}
}
