package cli

import (
	"strings"
	"testing"
)

// TestNodeRouting runs the command; pkg/mustgather/noderouting checks what
// it prints.
func TestNodeRouting(t *testing.T) {
	out, err := run("node-routing", "rules")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "from all lookup main") {
		t.Errorf("rules lack the main table's rule:\n%s", out)
	}
	if _, err := run("node-routing", "links"); err == nil || !strings.Contains(err.Error(), "want rules or routes") {
		t.Errorf("bad argument: %v", err)
	}
	if _, err := run("node-routing", "rules", "--family", "5"); err == nil || !strings.Contains(err.Error(), "want 4 or 6") {
		t.Errorf("bad family: %v", err)
	}
}
