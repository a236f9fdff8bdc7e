package legacyconfig

import (
	"strings"
	"testing"
	"testing/iotest"
)

func TestConvertReader(t *testing.T) {
	res, err := ConvertReader(strings.NewReader("address-pools:\n- name: IPPool-A\n  protocol: layer2\n  addresses: [198.51.100.0/24]\n"), "cm.yaml", Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.IPAddressPools) != 1 || len(res.L2Advertisements) != 1 {
		t.Errorf("converted %d pools, %d L2 advertisements", len(res.IPAddressPools), len(res.L2Advertisements))
	}
	var w strings.Builder
	if err := res.WriteWarnings(&w); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(w.String(), `# warning: IPAddressPool "ippool-a": renamed from "IPPool-A"`) {
		t.Errorf("warnings:\n%s", w.String())
	}
	for line := range strings.Lines(w.String()) {
		if !strings.HasPrefix(line, "# warning: ") {
			t.Errorf("warning line is not a comment: %q", line)
		}
	}

	for _, tc := range []struct {
		name string
		in   func() *strings.Reader
		want string
	}{
		{"too large", func() *strings.Reader { return strings.NewReader(strings.Repeat("#", MaxInput+1)) }, "cm.yaml is larger than 8388608 bytes"},
		{"not the configuration", func() *strings.Reader { return strings.NewReader("peers: 3\n") }, "cm.yaml: "},
	} {
		if _, err := ConvertReader(tc.in(), "cm.yaml", Options{}); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one with %q", tc.name, err, tc.want)
		}
	}
	if _, err := ConvertReader(iotest.ErrReader(iotest.ErrTimeout), "standard input", Options{}); err == nil || !strings.Contains(err.Error(), "reading standard input: timeout") {
		t.Errorf("read error: %v", err)
	}
}
