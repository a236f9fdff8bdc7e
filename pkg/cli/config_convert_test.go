package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const legacyConfigMap = `apiVersion: v1
kind: ConfigMap
metadata:
  namespace: lb
  name: config
data:
  config: |
    peers:
    - peer-address: 198.18.0.254
      peer-asn: 64513
      my-asn: 64512
      password: secret
    address-pools:
    - name: IPPool-A
      protocol: bgp
      addresses:
      - 198.51.100.0/24
`

// runConfig runs `config <args>` with stdin and returns stdout and stderr.
func runConfig(stdin string, args ...string) (string, string, error) {
	cmd := newConfigCommand()
	var out, errOut bytes.Buffer
	cmd.SetIn(strings.NewReader(stdin))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	cmd.SetArgs(args)
	cmd.SilenceUsage = true
	cmd.SilenceErrors = true
	err := cmd.Execute()
	return out.String(), errOut.String(), err
}

func TestConfigConvertInputs(t *testing.T) {
	file := filepath.Join(t.TempDir(), "cm.yaml")
	if err := os.WriteFile(file, []byte(legacyConfigMap), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		stdin string
		args  []string
		ns    string
	}{
		{"stdin without -f", legacyConfigMap, []string{"convert"}, "lb"},
		{"stdin with -f -", legacyConfigMap, []string{"convert", "-f", "-"}, "lb"},
		{"file", "", []string{"convert", "-f", file}, "lb"},
		{"--namespace", legacyConfigMap, []string{"convert", "--namespace", "metallb-system"}, "metallb-system"},
		{"-n", "", []string{"convert", "-n", "other", "--file", file}, "other"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runConfig(tc.stdin, tc.args...)
			if err != nil {
				t.Fatalf("%v\nstderr:\n%s", err, errOut)
			}
			for _, want := range []string{
				"kind: IPAddressPool\nmetadata:\n  annotations:\n    metallb.io/legacy-name: IPPool-A\n  name: ippool-a\n  namespace: " + tc.ns + "\n",
				"apiVersion: metallb.io/v1beta2\nkind: BGPPeer\n",
				"kind: BGPAdvertisement\nmetadata:\n  name: ippool-a\n",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			// Warnings go to stderr as YAML comments, every line.
			if !strings.Contains(errOut, `IPAddressPool "ippool-a": renamed from "IPPool-A"`) || !strings.Contains(errOut, "spec.passwordSecret") {
				t.Errorf("stderr lacks the warnings:\n%s", errOut)
			}
			for line := range strings.Lines(errOut) {
				if !strings.HasPrefix(line, "# ") {
					t.Errorf("stderr line is not a comment: %q", line)
				}
			}
			if strings.Contains(out, "status:") || strings.Contains(out, "creationTimestamp") {
				t.Errorf("stdout carries noise:\n%s", out)
			}
		})
	}
}

func TestConfigConvertErrors(t *testing.T) {
	tests := []struct {
		name  string
		stdin string
		args  []string
		want  []string
	}{
		{"unknown field", "peers:\n- peer-adress: 1.2.3.4\n", []string{"convert"}, []string{"standard input", `unknown field "peer-adress"`, "peer-address"}},
		{"missing file", "", []string{"convert", "-f", filepath.Join(t.TempDir(), "nope.yaml")}, []string{"nope.yaml"}},
		{"empty input", "", []string{"convert"}, []string{"holds no configuration"}},
		{"bad namespace", legacyConfigMap, []string{"convert", "--namespace", "Not_A_Namespace"}, []string{"Not_A_Namespace"}},
		{"positional argument", "", []string{"convert", "cm.yaml"}, []string{"unknown command"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := runConfig(tc.stdin, tc.args...)
			if err == nil {
				t.Fatalf("no error; stdout:\n%s", out)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if out != "" {
				t.Errorf("stdout on error:\n%s", out)
			}
		})
	}
}

func TestConfigConvertHelp(t *testing.T) {
	out, _, err := runConfig("", "convert", "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"config convert [-f FILE|-] [--namespace NS]", "data.config", "standard input", "metallb.io/legacy-name", "--namespace", "-f, --file", "metallb-system"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
	out, _, err = runConfig("", "--help")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "convert") {
		t.Errorf("config --help does not list convert:\n%s", out)
	}
}
