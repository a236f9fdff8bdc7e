// Package mustgather runs `lbstack must-gather` against a real API server
// where lbstack is not installed at all: no metallb.io API, no namespace,
// no pods.
package mustgather

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	crenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"

	"github.com/lbstack/lbstack/pkg/mustgather"
	"github.com/lbstack/lbstack/test/envtest"
)

func TestWithoutTheOperator(t *testing.T) {
	assets, err := envtest.AssetsDir()
	if err != nil {
		t.Fatal(err)
	}
	te := &crenvtest.Environment{BinaryAssetsDirectory: assets}
	cfg, err := te.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = te.Stop() })
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer,
			Ports: []corev1.ServicePort{{Port: 80}}},
	}
	if _, err := kube.CoreV1().Services("default").Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dest := t.TempDir()
	res, err := mustgather.Run(ctx, cfg, mustgather.Options{DestDir: dest})
	if err != nil {
		errs, _ := os.ReadFile(filepath.Join(dest, "errors.txt"))
		t.Fatalf("must-gather failed where nothing is missing but the operator: %v\n%s", err, errs)
	}
	if res.OperatorInstalled || res.Namespace != mustgather.DefaultNamespace {
		t.Errorf("result %+v", res)
	}
	read := func(rel string) string {
		data, err := os.ReadFile(filepath.Join(dest, rel))
		if err != nil {
			t.Error(err)
		}
		return string(data)
	}
	sum := read("summary.txt")
	for _, want := range []string{"OPERATOR NOT INSTALLED", "default/web has no address", "lbstack is not installed"} {
		if !strings.Contains(sum, want) {
			t.Errorf("summary.txt does not say %q:\n%s", want, sum)
		}
	}
	for rel, want := range map[string]string{
		"metallb.io/ABSENT.txt":                "not served",
		"namespaces/metallb-system/ABSENT.txt": "does not exist",
		"nmstate/ABSENT.txt":                   "NMState",
		"ovn/ABSENT.txt":                       "EgressService",
		"olm/ABSENT.txt":                       "OLM",
		"speakers/NONE.txt":                    "No speaker pod",
		"services/default/web/service.yaml":    "name: web",
		"cluster/api-resources.txt":            "services",
		"version":                              "lbstack/must-gather",
	} {
		if got := read(rel); !strings.Contains(got, want) {
			t.Errorf("%s = %q, want it to mention %q", rel, got, want)
		}
	}
	if e := read("errors.txt"); e != "" {
		t.Errorf("errors.txt:\n%s", e)
	}

	// A speaker pod nothing can run in (no kubelet here: it stays
	// Pending) is a partial failure: noted, the run goes on, the exit
	// status says so.
	if _, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: mustgather.DefaultNamespace}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: mustgather.DefaultNamespace, Name: "speaker-x", Labels: map[string]string{"component": "speaker"}},
		Spec:       corev1.PodSpec{NodeName: "node-a", Containers: []corev1.Container{{Name: "speaker", Image: "lbstack"}}},
	}
	if _, err := kube.CoreV1().Pods(pod.Namespace).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	dest = t.TempDir()
	_, err = mustgather.Run(ctx, cfg, mustgather.Options{DestDir: dest})
	if err == nil || !strings.Contains(err.Error(), "1 item(s) could not be collected") {
		t.Fatalf("err = %v, want one failure", err)
	}
	if e := read("errors.txt"); !strings.Contains(e, "speakers/node-a/") || !strings.Contains(e, "Pending") {
		t.Errorf("errors.txt = %q", e)
	}
	if got := read("namespaces/metallb-system/pods/speaker-x/logs/speaker.log"); !strings.Contains(got, "has not started") {
		t.Errorf("log of a container that never started = %q", got)
	}
	if sum := read("summary.txt"); !strings.Contains(sum, "1 item(s) could not be collected") || !strings.Contains(sum, "pod speaker-x") {
		t.Errorf("summary.txt:\n%s", sum)
	}
}
