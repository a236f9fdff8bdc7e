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

func TestPrintArguments(t *testing.T) {
	for _, tc := range []struct {
		what, family, err, contains string
	}{
		{"rules", "4", "", "from all lookup main"},
		{"rules", "ipv6", "", "from all lookup main"},
		{"routes", "inet", "", "table local"},
		{"rules", "5", `--family "5": want 4 or 6`, ""},
		{"tables", "4", `"tables": want rules or routes`, ""},
	} {
		var out strings.Builder
		err := Print(&out, tc.what, tc.family)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("Print(%q, %q) err = %v, want %q", tc.what, tc.family, err, tc.err)
			}
			continue
		}
		if err != nil || !strings.Contains(out.String(), tc.contains) {
			t.Errorf("Print(%q, %q) = %v, output lacks %q:\n%s", tc.what, tc.family, err, tc.contains, out.String())
		}
	}
}
