package speaker_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/test/envtest"
	"github.com/lbstack/lbstack/test/lab/frrtest"
)

// TestFRRPodRunsWithItsManifestPrivileges assembles the FRR speaker pod on
// a node from the rendered DaemonSet's securityContexts: FRR's daemons with
// the frr container's capabilities, `lbstack frr-reloader` as root with the
// reloader's (DAC_OVERRIDE alone), the speaker with its own (NET_RAW), all
// without privilege escalation, sharing FRR's configuration and sockets
// between FRR and the reloader and only a handoff directory between the
// reloader and the speaker, as the pod's volumes do. A Service's route
// reaches the router.
func TestFRRPodRunsWithItsManifestPrivileges(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	for _, f := range []string{"/usr/bin/python3", "/usr/lib/frr/frr-reload.py"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs %s (Debian's python3 and frr-pythontools)", f)
		}
	}
	inNodeNamespace(t, "TestFRRPodRunsWithItsManifestPrivileges", "", frrPodChild)
}

// withCaps is the setpriv prefix that runs a command as uid 0 with only
// the container's capabilities and no_new_privs, as its runtime would.
func withCaps(t *testing.T, c corev1.Container) []string {
	t.Helper()
	caps, _ := capsFlag(t, c)
	if sc := c.SecurityContext; sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Fatalf("container %s may escalate privileges: update this test", c.Name)
	}
	return []string{"setpriv", "--bounding-set=" + caps, "--inh-caps=-all", "--no-new-privs", "--"}
}

// startLogged starts cmd with its output in dir/name.log (shown if the
// test fails) and stops it at cleanup (SIGTERM, then SIGKILL after 30 s).
// The channel it returns is closed once the process has ended (then
// cmd.ProcessState says how).
func startLogged(tb testing.TB, dir, name string, cmd *exec.Cmd) <-chan struct{} {
	tb.Helper()
	logPath := filepath.Join(dir, name+".log")
	log, err := os.Create(logPath)
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", name, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	tb.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			tb.Logf("%s did not stop in 30 s after SIGTERM; killed", name)
			_ = cmd.Process.Kill()
			<-done
		}
		if tb.Failed() {
			out, _ := os.ReadFile(logPath)
			if len(out) > 6000 {
				out = out[len(out)-6000:]
			}
			tb.Logf("---- %s ----\n%s", name, out)
		}
	})
	return done
}

func frrPodChild(t *testing.T, frrDir string) {
	router := frrtest.Router{T: t, Dir: frrDir}
	frrC, reloaderC, speakerC := renderedContainer(t, "frr", "frr"), renderedContainer(t, "frr", "reloader"), renderedContainer(t, "frr", "speaker")

	// The pod's volumes: FRR's configuration and sockets (owned by the
	// frr user, as the image's start script leaves them) and the handoff.
	u, err := user.Lookup("frr")
	must(t, err)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	base, err := os.MkdirTemp("", "lbs-frrpod-")
	must(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(base) })
	must(t, os.Chmod(base, 0o755))
	etcFRR, runFRR, handoff := filepath.Join(base, "etc-frr"), filepath.Join(base, "run-frr"), filepath.Join(base, "handoff")
	for _, d := range []string{etcFRR, runFRR} {
		must(t, os.Mkdir(d, 0o755))
		must(t, os.Chown(d, uid, gid))
	}
	must(t, os.Mkdir(handoff, 0o777)) // an emptyDir
	must(t, os.WriteFile(filepath.Join(etcFRR, "vtysh.conf"), []byte("service integrated-vtysh-config\n"), 0o644))
	must(t, os.Chown(filepath.Join(etcFRR, "vtysh.conf"), uid, gid))
	pathspace := fmt.Sprintf("lbs-frrpod-%d", os.Getpid())
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Join("/run/frr", pathspace)) })

	// FRR's daemons, as the frr container's start script runs them.
	for _, d := range []string{"zebra", "bgpd", "bfdd", "staticd"} {
		argv := []string{"/usr/lib/frr/" + d, "-N", pathspace, "--vty_socket", runFRR, "-z", filepath.Join(runFRR, "zserv.api"),
			"-i", filepath.Join(runFRR, d+".pid"), "-f", "/dev/null", "-u", "frr", "-g", "frr", "--log", "stdout", "-A", "127.0.0.1"}
		switch d {
		case "bgpd":
			argv = append(argv, "-p", "0")
		case "bfdd":
			argv = append(argv, "--bfdctl", filepath.Join(runFRR, "bfdd.sock"))
		}
		startLogged(t, base, d, exec.Command(withCaps(t, frrC)[0], append(withCaps(t, frrC)[1:], argv...)...))
		frrtest.Eventually(t, 15*time.Second, d+" up", func() string {
			if _, err := os.Stat(filepath.Join(runFRR, d+".vty")); err != nil {
				return err.Error()
			}
			return ""
		})
	}

	startLogged(t, base, "reloader", envtest.CLICommand(t, withCaps(t, reloaderC), "frr-reloader", "--log-level=info",
		"--frr-config="+filepath.Join(etcFRR, "frr.conf"), "--vty-socket="+runFRR, "--handoff-dir="+handoff))

	env := envtest.Start(t)
	c := env.Client
	ctx := context.Background()
	ns := envtest.Namespace
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"kubernetes.io/hostname": "n1"}}}
	must(t, c.Create(ctx, n))
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: frrtest.NodeV4}}
	must(t, c.Status().Update(ctx, n))
	must(t, c.Create(ctx, &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "bgp", Namespace: ns},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24"}}}))
	must(t, c.Create(ctx, &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "bgp", Namespace: ns}}))
	must(t, c.Create(ctx, &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "router", Namespace: ns},
		Spec: v1beta2.BGPPeerSpec{MyASN: frrtest.NodeAS, ASN: frrtest.RouterAS, Address: frrtest.RouterV4, ConnectTime: &metav1.Duration{Duration: time.Second}}}))
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
	must(t, c.Create(ctx, svc))
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.11"}}
	must(t, c.Status().Update(ctx, svc))
	must(t, c.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, NodeName: ptr.To("n1")}},
	}))
	_, kubeconfig := speakerIdentity(t, env, c)
	startLogged(t, base, "speaker", envtest.CLICommand(t, withCaps(t, speakerC), "speaker", "--node-name", "n1", "--namespace", ns,
		"--bgp-backend", "frr", "--frr-handoff-dir", handoff, "--log-level", "info", "--metrics-bind-address", "0",
		"--kubeconfig", kubeconfig))

	frrtest.Eventually(t, 90*time.Second, "203.0.113.11 at the router through FRR", func() string {
		if _, ok := router.Paths("203.0.113.11/32")[frrtest.NodeV4]; !ok {
			return fmt.Sprintf("no path (neighbor %+v)", router.Neighbor(frrtest.NodeV4))
		}
		return ""
	})
	// The speaker reached nothing of FRR's but the handoff directory.
	if _, err := os.Stat(filepath.Join(etcFRR, "lbstack-desired.json")); err == nil {
		t.Error("the desired state landed in FRR's /etc/frr")
	}
}
