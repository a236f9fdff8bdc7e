package render_test

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lbstack/lbstack/bindata"
	"github.com/lbstack/lbstack/pkg/render"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

func base() render.Params {
	return render.Params{
		Namespace: "metallb-system",
		OwnerName: "metallb",
		Images: render.Images{
			Controller: "quay.io/lbstack/lbstack:v0.1.0",
			Speaker:    "quay.io/lbstack/lbstack:v0.1.0",
			FRR:        "quay.io/lbstack/lbstack-frr:v0.1.0",
		},
		LogLevel:            "info",
		BGPBackend:          "native",
		MemberlistSecretKey: "c2VjcmV0LWZvci10ZXN0cw==",
	}
}

// The golden cases: each one is a file under testdata/golden.
func cases() map[string]render.Params {
	out := map[string]render.Params{}
	out["native"] = base()

	frr := base()
	frr.BGPBackend = "frr"
	out["frr"] = frr

	// bgpBackend calico: the speakers run no BGP sessions, so no FRR.
	calico := base()
	calico.BGPBackend = "calico"
	out["calico"] = calico

	tuned := base()
	tuned.BGPBackend = "frr"
	tuned.LogLevel = "debug"
	tuned.LoadBalancerClass = "lbstack.io/bare-metal"
	tuned.Images = render.Images{
		Controller: "registry.local:5000/lbstack:v1",
		Speaker:    "registry.local:5000/lbstack-speaker:v1",
		FRR:        "registry.local:5000/frr@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
	}
	tuned.Speaker = render.Component{
		NodeSelector: map[string]string{"node-role.kubernetes.io/worker": "", "lb": "yes"},
		Tolerations: []corev1.Toleration{{
			Key: "example.com/lb", Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoExecute,
		}},
		PriorityClassName: "system-node-critical",
		RuntimeClassName:  "runc",
		Annotations:       map[string]string{"example.com/team": "net: edge"},
		Resources: &corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("200Mi")},
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
		},
		Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
			RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: []corev1.NodeSelectorTerm{{
				MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "kubernetes.io/arch", Operator: corev1.NodeSelectorOpIn, Values: []string{"amd64", "arm64"}}},
			}}},
		}},
	}
	tuned.Controller = render.Component{
		NodeSelector:      map[string]string{"node-role.kubernetes.io/infra": ""},
		Tolerations:       []corev1.Toleration{{Key: "node-role.kubernetes.io/infra", Operator: corev1.TolerationOpExists}},
		PriorityClassName: "system-cluster-critical",
		RuntimeClassName:  "kata",
		Annotations:       map[string]string{"example.com/scrape": "true"},
		Resources:         &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}},
		Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{Weight: 10, PodAffinityTerm: corev1.PodAffinityTerm{TopologyKey: "kubernetes.io/hostname"}}},
		}},
	}
	tuned.ServiceMonitors = true
	out["tuned-frr-monitoring"] = tuned

	ocp := base()
	ocp.OpenShift = true
	out["openshift-native"] = ocp
	return out
}

func TestGolden(t *testing.T) {
	for name, p := range cases() {
		t.Run(name, func(t *testing.T) {
			objs, err := render.Render(bindata.FS, p)
			if err != nil {
				t.Fatal(err)
			}
			got, err := render.ToYAML(objs)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", "golden", name+".yaml")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./pkg/render -update)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from the rendered output; run `go test ./pkg/render -update` and review the diff", path)
			}
		})
	}
}

func find(objs []*unstructured.Unstructured, kind, name string) *unstructured.Unstructured {
	for _, o := range objs {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	return nil
}

func containers(t *testing.T, o *unstructured.Unstructured, field string) map[string]map[string]any {
	t.Helper()
	list, _, err := unstructured.NestedSlice(o.Object, "spec", "template", "spec", field)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, c := range list {
		m := c.(map[string]any)
		out[m["name"].(string)] = m
	}
	return out
}

// TestCalicoLayout: with bgpBackend calico the speaker DaemonSet is the
// speaker alone, told to run no BGP sessions; nothing of FRR is rendered.
func TestCalicoLayout(t *testing.T) {
	objs, err := render.Render(bindata.FS, cases()["calico"])
	if err != nil {
		t.Fatal(err)
	}
	if find(objs, "ConfigMap", "lbstack-frr-startup") != nil {
		t.Error("calico renders the FRR startup ConfigMap")
	}
	ds := find(objs, "DaemonSet", "lbstack-speaker")
	if ds == nil {
		t.Fatal("calico renders no speaker DaemonSet (layer 2 needs it)")
	}
	c := containers(t, ds, "containers")
	if len(c) != 1 || c["speaker"] == nil {
		t.Errorf("calico speaker containers = %v, want only speaker", keys(c))
	}
	if ic := containers(t, ds, "initContainers"); len(ic) != 0 {
		t.Errorf("calico speaker init containers = %v, want none", keys(ic))
	}
	var found bool
	for _, a := range c["speaker"]["args"].([]any) {
		found = found || a == "--bgp-backend=calico"
	}
	if !found {
		t.Errorf("speaker args %v lack --bgp-backend=calico", c["speaker"]["args"])
	}
}

// Structural checks beside the golden files: they say what matters.
func TestFRRLayout(t *testing.T) {
	c := cases()
	native, err := render.Render(bindata.FS, c["native"])
	if err != nil {
		t.Fatal(err)
	}
	frr, err := render.Render(bindata.FS, c["frr"])
	if err != nil {
		t.Fatal(err)
	}
	if find(native, "ConfigMap", "lbstack-frr-startup") != nil {
		t.Error("native renders the FRR startup ConfigMap")
	}
	if find(frr, "ConfigMap", "lbstack-frr-startup") == nil {
		t.Error("frr does not render the FRR startup ConfigMap")
	}
	nc := containers(t, find(native, "DaemonSet", "lbstack-speaker"), "containers")
	if len(nc) != 1 || nc["speaker"] == nil {
		t.Errorf("native speaker containers = %v, want only speaker", keys(nc))
	}
	ds := find(frr, "DaemonSet", "lbstack-speaker")
	fc := containers(t, ds, "containers")
	for _, n := range []string{"speaker", "frr", "reloader"} {
		if fc[n] == nil {
			t.Errorf("frr speaker lacks container %s (has %v)", n, keys(fc))
		}
	}
	if fc["frr"]["image"] != "quay.io/lbstack/lbstack-frr:v0.1.0" {
		t.Errorf("frr container image = %v", fc["frr"]["image"])
	}
	if args := fc["reloader"]["args"].([]any); args[0] != "frr-reloader" {
		t.Errorf("reloader args = %v", args)
	}
	if ic := containers(t, ds, "initContainers"); ic["cp-frr-files"] == nil {
		t.Error("frr speaker lacks the cp-frr-files init container")
	}
	// FRR's configuration and sockets are shared by FRR and the reloader
	// only; the speaker hands its state over through a directory of its
	// own (FRR sources /etc/frr/daemons as root: a speaker that could write
	// it could run anything there).
	for n, want := range map[string]map[string]bool{
		"frr":      {"/etc/frr": true, "/var/run/frr": true, "/etc/lbstack-frr": false},
		"reloader": {"/etc/frr": true, "/var/run/frr": true, "/etc/lbstack-frr": true},
		"speaker":  {"/etc/frr": false, "/var/run/frr": false, "/etc/lbstack-frr": true},
	} {
		mounts := map[string]bool{}
		for _, m := range fc[n]["volumeMounts"].([]any) {
			mounts[m.(map[string]any)["mountPath"].(string)] = true
		}
		for path, shared := range want {
			if mounts[path] != shared {
				t.Errorf("container %s mounts %s: %v, want %v (mounts %v)", n, path, mounts[path], shared, mounts)
			}
		}
	}
	if hn, _, _ := unstructured.NestedBool(ds.Object, "spec", "template", "spec", "hostNetwork"); !hn {
		t.Error("speaker is not on the host network")
	}
}

func keys(m map[string]map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestEveryObjectLabelledAndNamespacedRight(t *testing.T) {
	for name, p := range cases() {
		objs, err := render.Render(bindata.FS, p)
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			l := o.GetLabels()
			if l[render.ManagedByLabel] != render.ManagedByValue || l[render.OwnerLabel] != "metallb-system.metallb" {
				t.Errorf("%s: %s %s labels %v", name, o.GetKind(), o.GetName(), l)
			}
			clusterScoped := o.GetKind() == "ClusterRole" || o.GetKind() == "ClusterRoleBinding"
			if clusterScoped != (o.GetNamespace() == "") {
				t.Errorf("%s: %s %s namespace %q", name, o.GetKind(), o.GetName(), o.GetNamespace())
			}
		}
	}
}

func TestImagesWithRegistryPort(t *testing.T) {
	objs, err := render.Render(bindata.FS, cases()["tuned-frr-monitoring"])
	if err != nil {
		t.Fatal(err)
	}
	c := containers(t, find(objs, "Deployment", "lbstack-controller"), "containers")
	if c["controller"]["image"] != "registry.local:5000/lbstack:v1" {
		t.Errorf("controller image = %v", c["controller"]["image"])
	}
	if find(objs, "ServiceMonitor", "lbstack-speaker-monitor") == nil {
		t.Error("ServiceMonitors requested but not rendered")
	}
}

func TestOpenShift(t *testing.T) {
	c := cases()
	vanilla, _ := render.Render(bindata.FS, c["native"])
	ocp, err := render.Render(bindata.FS, c["openshift-native"])
	if err != nil {
		t.Fatal(err)
	}
	if find(vanilla, "RoleBinding", "lbstack-speaker-scc") != nil || find(ocp, "RoleBinding", "lbstack-speaker-scc") == nil {
		t.Error("the SCC binding must be rendered on OpenShift only")
	}
	uid, _, _ := unstructured.NestedInt64(find(ocp, "Deployment", "lbstack-controller").Object, "spec", "template", "spec", "securityContext", "runAsUser")
	if uid != 0 {
		t.Errorf("OpenShift assigns UIDs; runAsUser %d rendered", uid)
	}
	// Integers stay int64, as the API machinery (and the operator's drift
	// check) expect.
	uid, found, err := unstructured.NestedInt64(find(vanilla, "Deployment", "lbstack-controller").Object, "spec", "template", "spec", "securityContext", "runAsUser")
	if err != nil || !found || uid != 65532 {
		t.Errorf("vanilla controller runAsUser = %d, %v, %v", uid, found, err)
	}
}

func TestMissingParameters(t *testing.T) {
	p := base()
	p.Images.Controller = ""
	p.MemberlistSecretKey = ""
	_, err := render.Render(bindata.FS, p)
	if err == nil || !strings.Contains(err.Error(), "Images.Controller, MemberlistSecretKey") {
		t.Fatalf("err = %v", err)
	}
	p = base()
	p.BGPBackend = "frr-k8s"
	if _, err := render.Render(bindata.FS, p); err == nil {
		t.Fatal("frr-k8s rendered")
	}
}
