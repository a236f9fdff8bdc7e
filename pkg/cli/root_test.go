package cli

import (
	"bytes"
	"context"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
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

// Every long-running command ends on SIGTERM through untilSignal, which,
// unlike controller-runtime's handler, may be set up more than once.
func TestUntilSignal(t *testing.T) {
	for range 2 {
		ctx, cancel := untilSignal(context.Background())
		if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("the context outlived SIGTERM")
		}
		cancel()
	}
	parent, end := context.WithCancel(context.Background())
	ctx, cancel := untilSignal(parent)
	defer cancel()
	end()
	<-ctx.Done()
}
