package speaker_test

import (
	"fmt"
	"os/exec"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/test/envtest"
)

// The scale benchmarks run the speaker as the process a pod runs:
// `lbstack speaker` (envtest.BenchCommand), as the
// speaker's service account with the RBAC the operator renders, its CPU
// accounted by a control group of its own (children included, in
// nanoseconds), its memory its own VmHWM, and its API writes read from
// the API server's audit log under its user.

// benchProcess is a component run as a process for a benchmark.
type benchProcess struct {
	name string
	cmd  *exec.Cmd
	cpu  *envtest.CPUGroup
}

// startBenchProcess starts cmd as startLogged does (its output in
// dir/name.log, stopped when the benchmark ends), in a CPU accounting
// group of its own, removed after it stopped. A process that ends before
// the benchmark does fails it; its log is shown.
func startBenchProcess(b *testing.B, dir, name string, cmd *exec.Cmd) *benchProcess {
	b.Helper()
	p := &benchProcess{name: name, cmd: cmd, cpu: envtest.NewCPUGroup(b, name)}
	done := startLogged(b, dir, name, cmd)
	// It starts outside the group: only its first instructions are not
	// counted (its cold start is measured in seconds).
	if err := p.cpu.Add(cmd.Process.Pid); err != nil {
		b.Fatal(err)
	}
	// Registered after startLogged's cleanup, so it runs before the stop.
	stopping := make(chan struct{})
	b.Cleanup(func() { close(stopping) })
	go func() {
		select {
		case <-stopping:
		case <-done:
			// Not Fatal: this is not the benchmark's goroutine.
			b.Errorf("%s ended before the benchmark did (%v)", name, cmd.ProcessState)
		}
	}()
	return p
}

// CPU is the CPU time of the process and everything it started.
func (p *benchProcess) CPU(b *testing.B) time.Duration {
	d, err := p.cpu.Usage()
	if err != nil {
		b.Fatalf("%s: %v", p.name, err)
	}
	return d
}

// PeakRSS is the process's own peak resident set, in MiB.
func (p *benchProcess) PeakRSS() float64 {
	kb, _ := envtest.StatusKB(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid), "VmHWM")
	return float64(kb) / 1024
}

// speakerIdentity creates the speaker's service account and RBAC as the
// operator renders them and returns its user and a kubeconfig for it.
func speakerIdentity(tb testing.TB, env *envtest.Env, c client.Client) (user, kubeconfig string) {
	user = envtest.RenderedRBAC(tb, c, "lbstack-speaker")
	return user, envtest.WriteKubeconfig(tb, envtest.As(env.Config, user))
}

// speakerArgs are the arguments of `lbstack speaker` in the benchmarks:
// node me, the stack's namespace, no metrics or health listener, a resync
// of an hour (the changes measured are events, not the safety net), and
// more than client-go's default request rate (at 5 a second the cold
// start's 20,000 status writes would take an hour here).
func speakerArgs(me, kubeconfig, backend string, more ...string) []string {
	return append([]string{"speaker", "--node-name", me, "--namespace", envtest.Namespace, "--kubeconfig", kubeconfig,
		"--bgp-backend", backend, "--resync", "1h", "--metrics-bind-address", "0", "--health-probe-bind-address", "0",
		"--kube-api-qps", "500", "--kube-api-burst", "1000", "--log-level", "info"}, more...)
}
