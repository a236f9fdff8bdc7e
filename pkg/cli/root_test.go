package cli

import (
	"bytes"
	"strings"
	"testing"
)

func run(args ...string) (string, error) {
	root := NewRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestEverySubcommandHasHelp(t *testing.T) {
	for _, sub := range []string{"operator", "controller", "speaker", "must-gather", "version"} {
		t.Run(sub, func(t *testing.T) {
			out, err := run(sub, "--help")
			if err != nil {
				t.Fatalf("%s --help: %v", sub, err)
			}
			if !strings.Contains(out, "lbstack "+sub) {
				t.Errorf("%s --help does not show its usage:\n%s", sub, out)
			}
		})
	}
}

func TestVersion(t *testing.T) {
	out, err := run("version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out, "lbstack ") {
		t.Errorf("version output = %q", out)
	}
}
