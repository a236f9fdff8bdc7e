package cli

import (
	"strings"
	"testing"
)

// TestNodeRouting reads this namespace's real rules and tables: every
// Linux namespace has the local, main and default rules and a local table.
func TestNodeRouting(t *testing.T) {
	out, err := run("node-routing", "rules")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"0:\tfrom all lookup local", "32766:\tfrom all lookup main", "32767:\tfrom all lookup default"} {
		if !strings.Contains(out, want) {
			t.Errorf("rules lack %q:\n%s", want, out)
		}
	}
	out, err = run("node-routing", "routes")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1") {
		t.Errorf("routes lack the loopback local route:\n%s", out)
	}
	if _, err := run("node-routing", "links"); err == nil || !strings.Contains(err.Error(), "want rules or routes") {
		t.Errorf("bad argument: %v", err)
	}
}
