package symrouting_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lbstack/lbstack/pkg/mustgather"
	"github.com/lbstack/lbstack/pkg/symrouting"
)

// TestMustGatherRunsTheChecks: must-gather runs the operator's checks on
// the cluster as it is (no operator needed) and writes every finding.
func TestMustGatherRunsTheChecks(t *testing.T) {
	cleanup(t, env.Client)
	t.Cleanup(func() { cleanup(t, env.Client) })
	setupScenario(t)
	putFile("egress-service.yaml", `network: "2"`, `network: "3"`)(t)

	dest := t.TempDir()
	// Nothing runs in this cluster (no kubelet, no speaker): only the
	// collection of pods and speakers can fail, never the checks.
	_, _ = mustgather.Run(context.Background(), env.Config, mustgather.Options{DestDir: dest})
	data, err := os.ReadFile(filepath.Join(dest, "symmetric-routing", "findings.txt"))
	if err != nil {
		t.Fatal(err)
	}
	findings := string(data)
	for _, want := range []string{
		"Error " + symrouting.CheckEgressNetworkMismatch + " spec.network: " + `egressservice "test/server1" spec.network is "3"`,
		"Warning " + symrouting.CheckPoolAutoAssign,
	} {
		if !strings.Contains(findings, want) {
			t.Errorf("findings.txt lacks %q:\n%s", want, findings)
		}
	}
	sum, _ := os.ReadFile(filepath.Join(dest, "summary.txt"))
	if !strings.Contains(string(sum), "== Symmetric routing") || !strings.Contains(string(sum), symrouting.CheckEgressNetworkMismatch) {
		t.Errorf("summary.txt has no symmetric-routing findings:\n%s", sum)
	}
	if errs, _ := os.ReadFile(filepath.Join(dest, "errors.txt")); strings.Contains(string(errs), "symmetric-routing") {
		t.Errorf("errors.txt: %s", errs)
	}
}
