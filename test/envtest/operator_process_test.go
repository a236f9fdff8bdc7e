package envtest_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/test/envtest"
)

// buildLbstack builds bin/lbstack from the repository into a temporary
// directory: the binary a pod runs, not the test binary.
func buildLbstack(tb testing.TB) string {
	tb.Helper()
	bin := filepath.Join(tb.TempDir(), "lbstack")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Dir = env.Root
	if out, err := build.CombinedOutput(); err != nil {
		tb.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// operatorProcess is `lbstack operator` run against the API server, with
// its webhook server and probes on loopback ports of their own.
type operatorProcess struct {
	cmd             *exec.Cmd
	health, webhook int
	exited          chan error
}

// startOperatorProcess starts bin as the operator (certificates in a Secret
// named certSecret; envtest installs and injects its own webhook
// configuration), with extraEnv, stopped and cleaned up when the test ends
// (its log shown if the test failed).
func startOperatorProcess(tb testing.TB, bin, certSecret string, extraEnv ...string) *operatorProcess {
	tb.Helper()
	dir := tb.TempDir()
	p := &operatorProcess{health: freePort(tb), webhook: freePort(tb), exited: make(chan error, 1)}
	p.cmd = exec.Command(bin, "operator",
		"--kubeconfig", envtest.WriteKubeconfig(tb, env.Config),
		"--metrics-bind-address", "0",
		"--health-probe-bind-address", "127.0.0.1:"+strconv.Itoa(p.health),
		"--webhook-host", "127.0.0.1", "--webhook-port", strconv.Itoa(p.webhook),
		"--cert-dir", filepath.Join(dir, "certs"),
		"--cert-secret", certSecret,
		"--webhook-configuration=", "--conversion-crds=",
		"--cert-extra-dns-names", "localhost")
	p.cmd.Env = append(append(os.Environ(), "OPERATOR_NAMESPACE="+envtest.Namespace), extraEnv...)
	logPath := filepath.Join(dir, "operator.log")
	logf, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	go func() { p.exited <- p.cmd.Wait() }()
	tb.Cleanup(func() {
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.exited
		}
		_ = env.Client.Delete(context.Background(), &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: envtest.Namespace, Name: certSecret}})
		if tb.Failed() {
			b, _ := os.ReadFile(logPath)
			tb.Logf("operator log:\n%s", b)
		}
	})
	return p
}

// alive fails once the operator has exited.
func (p *operatorProcess) alive() error {
	select {
	case err := <-p.exited:
		p.exited <- err
		return fmt.Errorf("operator exited: %v", err)
	default:
		return nil
	}
}

// waitReady waits until the operator is ready: its webhook server serves
// with its certificate.
func (p *operatorProcess) waitReady(tb testing.TB) {
	tb.Helper()
	waitFor(tb, 2*time.Minute, func() error {
		if err := p.alive(); err != nil {
			tb.Fatal(err)
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", p.health))
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("readyz %d", resp.StatusCode)
		}
		return nil
	})
}
