package noderouting

import (
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
)

// TestRulesAndRoutes reads this namespace's real rules and tables: every
// Linux namespace has the local, main and default rules and a local table.
func TestRulesAndRoutes(t *testing.T) {
	var out strings.Builder
	if err := Rules(&out, netlink.FAMILY_V4); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"0:\tfrom all lookup local", "32766:\tfrom all lookup main", "32767:\tfrom all lookup default"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("rules lack %q:\n%s", want, out.String())
		}
	}
	out.Reset()
	if err := Routes(&out, netlink.FAMILY_V4); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "local 127.0.0.1 dev lo table local proto kernel scope host src 127.0.0.1") {
		t.Errorf("routes lack the loopback local route:\n%s", out.String())
	}
}
