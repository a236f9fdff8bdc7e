package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOperatorFlags(t *testing.T) {
	out, err := run("operator", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"--namespace", "--leader-elect", "--health-probe-bind-address", "--metrics-bind-address", "--cert-mode", "--webhook-port"} {
		if !strings.Contains(out, f) {
			t.Errorf("operator --help lacks %s", f)
		}
	}
	if _, err := run("operator", "--kubeconfig", "/nonexistent/kubeconfig"); err == nil {
		t.Error("operator ran without a cluster")
	}
}

// The objects the certificate rotator patches by default are the ones the
// operator's ClusterRole names (its writes are limited to them).
func TestOperatorCertTargetsMatchItsRBAC(t *testing.T) {
	role, err := os.ReadFile(filepath.Join("..", "..", "config", "rbac", "role.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := newOperatorCommand()
	for flag, want := range map[string]string{"webhook-configuration": "lbstack-validating-webhook-configuration", "conversion-crds": "[bgppeers.metallb.io]"} {
		f := cmd.Flags().Lookup(flag)
		if f == nil {
			t.Fatalf("operator has no --%s", flag)
		}
		if f.DefValue != want {
			t.Errorf("--%s defaults to %s, want %s", flag, f.DefValue, want)
		}
		name := strings.Trim(want, "[]")
		if !strings.Contains(string(role), "resourceNames:\n  - "+name+"\n") {
			t.Errorf("config/rbac/role.yaml does not let the operator write %s", name)
		}
	}
}
