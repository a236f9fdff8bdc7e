package symrouting_test

import (
	"os"
	"strings"
	"testing"
)

// TestAdmissionWarnings: applying a VRF peer or an advertisement that
// disagrees with the rest of the scenario is accepted (the objects of one
// scenario arrive in any order) but kubectl prints the finding.
func TestAdmissionWarnings(t *testing.T) {
	cleanup(t, env.Client)
	t.Cleanup(func() { cleanup(t, env.Client) })
	setupScenario(t)
	cases := []struct {
		name, file, from, to string
		want                 []string
	}{
		{"peer bound to a VRF no policy defines", "frr-via-vrf.yaml", "vrf: ens4vrf", "vrf: ens5vrf",
			[]string{"Warning: symmetric routing (VRFNotDefined)", `bgppeer "metallb-system/frrviavrf" spec.vrf is "ens5vrf"`}},
		{"advertisement not selecting the egress node", "first-adv.yaml", "test-server1", "test-server2",
			[]string{"Warning: symmetric routing (AdvertisementNodeSelector)", `bgpadvertisement "metallb-system/first-adv"`}},
		{"the scenario as written", "frr-via-vrf.yaml", "", "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			data := string(scenarioFile(t, tc.file))
			if tc.from != "" {
				data = strings.Replace(data, tc.from, tc.to, 1)
			}
			path := t.TempDir() + "/" + tc.file
			writeFile(t, path, data)
			out, errOut, err := env.Kubectl("apply", "-f", path)
			if err != nil {
				t.Fatalf("kubectl apply: %v\n%s%s", err, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(errOut, w) {
					t.Errorf("kubectl's warnings lack %q:\n%s", w, errOut)
				}
			}
			if tc.want == nil && strings.Contains(errOut, "symmetric routing") {
				t.Errorf("unexpected symmetric-routing warning:\n%s", errOut)
			}
			// Put the scenario's file back.
			if out, errOut, err := env.Kubectl("apply", "-f", scenarioDir(t)+"/"+tc.file); err != nil {
				t.Fatalf("restore: %v\n%s%s", err, out, errOut)
			}
		})
	}
}

func writeFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}
