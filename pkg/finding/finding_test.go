package finding

import "testing"

func TestStrings(t *testing.T) {
	for _, tc := range []struct {
		got, want string
	}{
		{ObjectRef{Kind: "bgppeer", Namespace: "metallb-system", Name: "frrviavrf"}.String(), `bgppeer "metallb-system/frrviavrf"`},
		{ObjectRef{Kind: "bgpconfiguration.crd.projectcalico.org", Name: "default"}.String(), `bgpconfiguration.crd.projectcalico.org "default"`},
		{ObjectRef{Kind: "node"}.String(), "node"},
		{Finding{Check: "PoolAutoAssign", Severity: Warning, Message: "set spec.autoAssign"}.String(), "Warning PoolAutoAssign: set spec.autoAssign"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}
