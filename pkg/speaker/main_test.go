package speaker_test

import (
	"os"
	"testing"

	"github.com/lbstack/lbstack/test/envtest"
)

func TestMain(m *testing.M) {
	// Tests that restart the speaker, or run it with reduced privileges,
	// run it as a process of its own: this binary, as `lbstack`.
	envtest.RunCLIIfAsked()
	os.Exit(m.Run())
}
