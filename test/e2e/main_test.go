// Package e2e is the lab-driven end-to-end suite: TestMain brings the local
// lab up once (or reuses a running one, leaving it running), and each test
// drives it like a user - kubectl-level objects in, router RIB and process
// state out. It needs root and skips, saying so, without it.
package e2e

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/test/lab"
)

// probeImage is the image name the suite registers for its test program
// (testdata/probe); the lab kubelet runs it as a real process.
const probeImage = "lbstack-e2e-probe:test"

var (
	theLab     *lab.Lab
	skipReason string
	// runSecretsExisted records whether /run/secrets existed on the host
	// before the suite: containers get their token there through a mount
	// namespace of their own, and the host must never see it appear.
	runSecretsExisted bool
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
	_, err = os.Stat("/run/secrets")
	runSecretsExisted = err == nil

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

	code := 1
	if err := registerProbe(root, l); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
	} else {
		code = m.Run()
	}
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

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}

// prepare builds what the lab runs - the lab CLI (the kubelet), lbstack
// (its image's stand-in) and, when missing, the control-plane binaries
// (`make lab-assets`, which `make test`'s tools do not include).
func prepare(root string) error {
	assets := filepath.Join(root, "bin", "k8s-"+lab.K8sVersion)
	for _, b := range []string{"kube-controller-manager", "kube-scheduler", "kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(assets, b)); err != nil {
			fmt.Printf("e2e: %s missing: running `make lab-assets` (minutes the first time)\n", b)
			cmd := exec.Command("make", "-C", root, "lab-assets")
			cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("make lab-assets: %w", err)
			}
			break
		}
	}
	for _, b := range [][]string{
		{"-o", filepath.Join(root, "bin", "lab"), "./test/lab/cmd/lab"},
		{"-o", filepath.Join(root, "bin", "lbstack"), "."},
	} {
		cmd := exec.Command(goTool(), append([]string{"build"}, b...)...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("go build %s: %w\n%s", strings.Join(b, " "), err, out)
		}
	}
	return nil
}

// registerProbe builds the test program into the lab's directory and
// registers it as probeImage with the lab kubelet.
func registerProbe(root string, l *lab.Lab) error {
	bin := filepath.Join(l.State.Dir, "e2e", "probe")
	cmd := exec.Command(goTool(), "build", "-o", bin, "./test/e2e/testdata/probe")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build the probe program: %w\n%s", err, out)
	}
	return lab.RegisterImage(l.State.Dir, probeImage, lab.Image{Binary: bin, Entrypoint: "/probe"})
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

// grantProbe creates the probe's service account with one permission -
// get the config map probe-allowed - and that config map.
func grantProbe(t testing.TB, l *lab.Lab, ns string) {
	t.Helper()
	ctx := context.Background()
	c := l.Kube
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "probe"}}, metav1.CreateOptions{}))
	must(c.CoreV1().ConfigMaps(ns).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "probe-allowed"}, Data: map[string]string{"k": "v"}}, metav1.CreateOptions{}))
	must(c.RbacV1().Roles(ns).Create(ctx, &rbacv1.Role{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"probe-allowed"}, Verbs: []string{"get"}}},
	}, metav1.CreateOptions{}))
	must(c.RbacV1().RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		RoleRef:    rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "Role", Name: "probe"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: "probe", Namespace: ns}},
	}, metav1.CreateOptions{}))
}

// probeReport mirrors testdata/probe's Report.
type probeReport struct {
	PID           int               `json:"pid"`
	Hostname      string            `json:"hostname"`
	NetNS         string            `json:"netns"`
	MountNS       string            `json:"mountns"`
	Namespace     string            `json:"namespace"`
	HasCA         bool              `json:"hasCA"`
	TokenSubject  string            `json:"tokenSubject"`
	TokenPod      string            `json:"tokenPod"`
	Allowed       string            `json:"allowed"`
	ForbiddenCode int               `json:"forbiddenCode"`
	Env           map[string]string `json:"env"`
}

var httpClient = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}

// getReport asks a probe process for its report (pod addresses are lab
// addresses, routed from the host to their node).
func getReport(addr string, port int) (*probeReport, error) {
	resp, err := httpClient.Get(fmt.Sprintf("http://%s:%d/report", addr, port))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("report: %s", resp.Status)
	}
	var r probeReport
	return &r, json.NewDecoder(resp.Body).Decode(&r)
}

func setProbe(t testing.TB, addr string, port int, query string) {
	t.Helper()
	resp, err := httpClient.Get(fmt.Sprintf("http://%s:%d/set?%s", addr, port, query))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
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
