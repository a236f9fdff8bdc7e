package speaker_test

import (
	"os"
	"strings"
	"testing"

	"github.com/lbstack/lbstack/pkg/cli"
)

// cliArgsEnv, when set, makes the test binary run `lbstack` with these
// arguments (separated by \x1f, the unit separator) instead of the tests: a test that must restart
// a speaker runs it as a process of its own, as a pod would.
const cliArgsEnv = "LBSTACK_TEST_CLI_ARGS"

func TestMain(m *testing.M) {
	if args := os.Getenv(cliArgsEnv); args != "" {
		root := cli.NewRoot()
		root.SetArgs(strings.Split(args, "\x1f"))
		if err := root.Execute(); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
