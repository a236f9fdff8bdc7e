package envtest_test

import (
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"k8s.io/client-go/discovery"

	"github.com/lbstack/lbstack/test/envtest"
)

// TestK8sVersionMatchesMakefile keeps the helper's asset directory in step
// with the version the Makefile builds.
func TestK8sVersionMatchesMakefile(t *testing.T) {
	root, err := envtest.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	mk, err := os.ReadFile(filepath.Join(root, "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^K8S_VERSION\s*:=\s*(\S+)`).FindSubmatch(mk)
	if m == nil {
		t.Fatal("K8S_VERSION not found in Makefile")
	}
	if string(m[1]) != envtest.K8sVersion {
		t.Errorf("Makefile K8S_VERSION %s != envtest.K8sVersion %s", m[1], envtest.K8sVersion)
	}
	// The server reports the version it was stamped with, so clients that
	// parse it (kubectl, controller-runtime) work.
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	v, err := dc.ServerVersion()
	if err != nil {
		t.Fatal(err)
	}
	if v.GitVersion != envtest.K8sVersion {
		t.Errorf("kube-apiserver reports %s, want %s", v.GitVersion, envtest.K8sVersion)
	}
}
