// Package e2e is the lab-driven end-to-end suite: TestMain brings the local
// lab up once (or reuses a running one, leaving it running), and each test
// drives it like a user - kubectl-level objects in, router RIB and process
// state out. It needs root and skips, saying so, without it.
package e2e

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/test/lab"
)

var (
	theLab     *lab.Lab
	skipReason string
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	flag.Parse()
	switch {
	case os.Geteuid() != 0:
		skipReason = "the lab e2e suite needs root (network namespaces, veths, mounts): run it as root (`make e2e` or `make test`)"
	case testing.Short():
		skipReason = "the lab e2e suite does not run with -short"
	case flag.Lookup("test.run").Value.String() == "^$" && flag.Lookup("test.bench").Value.String() == "":
		// `make fuzz`: no test or benchmark of this package runs;
		// bringing the lab up would be wasted. (`make bench` runs the lab
		// benchmarks.)
		skipReason = "no test selected"
	}
	if skipReason != "" {
		fmt.Println("e2e: skipping:", skipReason)
		return m.Run()
	}
	root, err := lab.RepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	if err := prepare(root); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	ctx := context.Background()
	l, err := lab.Up(ctx, lab.Options{Root: root, Owner: os.Getpid(), Out: os.Stdout})
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e: lab up:", err)
		return 1
	}
	theLab = l
	how := "brought up"
	if l.Reused {
		how = "reused (it was running; the suite leaves it running)"
	}
	// The figure `make test` prints for the lab tier.
	fmt.Printf("e2e: lab %s in %.1fs\n", how, l.UpTime.Seconds())

	code := m.Run()
	if !l.Reused {
		start := time.Now()
		err := lab.Down(ctx, l.State.Dir, lab.DownOptions{Out: os.Stdout, KeepLogs: code != 0})
		if err != nil {
			fmt.Fprintln(os.Stderr, "e2e: lab down:", err)
			code = 1
		}
		fmt.Printf("e2e: lab down in %.1fs\n", time.Since(start).Seconds())
		if code != 0 {
			fmt.Printf("e2e: component and container logs kept in %s (`make lab-down` removes them)\n", filepath.Join(l.State.Dir, "logs"))
		}
	}
	return code
}

// prepare builds and downloads what the lab needs (`make lab-prereqs`:
// Go modules, the Kubernetes binaries, Debian packages, the .debs and
// programs the images are made of, bin/lab, bin/lbstack), before the lab
// brings up its guard routes. Everything cached makes it a few seconds.
func prepare(root string) error {
	cmd := exec.Command("make", "-C", root, "--no-print-directory", "lab-prereqs")
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("make lab-prereqs: %w\n%s", err, out.String())
	}
	fmt.Printf("e2e: make lab-prereqs in %.1fs\n", time.Since(start).Seconds())
	return nil
}

// requireLab returns the lab, or skips the test with the reason.
func requireLab(t testing.TB) *lab.Lab {
	t.Helper()
	if skipReason != "" {
		t.Skip(skipReason)
	}
	if theLab == nil {
		t.Fatal("the lab is not up")
	}
	return theLab
}

// eventually polls f until it reports done, failing with f's last message
// after timeout.
func eventually(t testing.TB, timeout time.Duration, what string, f func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var msg string
	for {
		var ok bool
		ok, msg = f()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true after %s: %s", what, timeout, msg)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// newNamespace creates a namespace for one test and deletes it at the end,
// waiting until it is gone (which needs the kubelet to stop every pod).
func newNamespace(t testing.TB, l *lab.Lab, prefix string) string {
	t.Helper()
	ctx := context.Background()
	ns, err := l.Kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "e2e-" + prefix + "-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.Kube.CoreV1().Namespaces().Delete(ctx, ns.Name, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete namespace %s: %v", ns.Name, err)
			return
		}
		deadline := time.Now().Add(90 * time.Second)
		for time.Now().Before(deadline) {
			if _, err := l.Kube.CoreV1().Namespaces().Get(ctx, ns.Name, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				return
			}
			time.Sleep(500 * time.Millisecond)
		}
		t.Errorf("namespace %s not deleted after 90s", ns.Name)
	})
	eventually(t, 30*time.Second, "default service account of "+ns.Name, func() (bool, string) {
		_, err := l.Kube.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, fmt.Sprint(err)
	})
	return ns.Name
}

// netnsID is a named namespace's identity as /proc/PID/ns/net shows it.
func netnsID(t testing.TB, name string) string {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(lab.NetnsPath(name), &st); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("net:[%d]", st.Ino)
}

func podReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func nodeIndex(t testing.TB, name string) int {
	t.Helper()
	var i int
	if _, err := fmt.Sscanf(name, lab.NetnsPrefix+"node%d", &i); err != nil {
		t.Fatalf("%q is not a lab node", name)
	}
	return i
}
