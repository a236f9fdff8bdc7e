package lab

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// run executes a command and returns its stdout; a failure carries the
// command line and its stderr, so the user sees what the lab tried.
func run(ctx context.Context, name string, args ...string) (string, error) {
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// ip runs iproute2's ip.
func ip(ctx context.Context, args ...string) (string, error) { return run(ctx, "ip", args...) }

// ipIn runs ip inside a lab namespace (ip -n NS ...), which needs no extra
// process inside the namespace.
func ipIn(ctx context.Context, netns string, args ...string) (string, error) {
	return ip(ctx, append([]string{"-n", netns}, args...)...)
}

// inNetns runs a command inside a network namespace via `ip netns exec`,
// which also gives the command a /sys of that namespace.
func inNetns(ctx context.Context, netns, name string, args ...string) (string, error) {
	return ip(ctx, append([]string{"netns", "exec", netns, name}, args...)...)
}

// sysctlIn sets sysctls in a namespace with one process.
func sysctlIn(ctx context.Context, netns string, kv ...string) error {
	_, err := inNetns(ctx, netns, "sysctl", append([]string{"-q", "-w"}, kv...)...)
	return err
}
