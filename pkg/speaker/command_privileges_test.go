package speaker_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/utils/ptr"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/bindata"
	"github.com/lbstack/lbstack/pkg/render"
	"github.com/lbstack/lbstack/test/envtest"
	"github.com/lbstack/lbstack/test/lab/frrtest"
)

// renderedContainer returns a container of the speaker DaemonSet exactly as
// the operator renders it for backend.
func renderedContainer(t *testing.T, backend, name string) corev1.Container {
	t.Helper()
	objs, err := render.Render(bindata.FS, render.Params{Namespace: envtest.Namespace, OwnerName: "metallb", LogLevel: "info",
		BGPBackend: backend, MemberlistSecretKey: "a2V5", Images: render.Images{Controller: "x", Speaker: "x", FRR: "frr"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() != "DaemonSet" {
			continue
		}
		var ds struct {
			Spec struct {
				Template corev1.PodTemplateSpec `json:"template"`
			} `json:"spec"`
		}
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &ds); err != nil {
			t.Fatal(err)
		}
		for _, c := range ds.Spec.Template.Spec.Containers {
			if c.Name == name {
				return c
			}
		}
	}
	t.Fatalf("no container %s in the rendered DaemonSet", name)
	return corev1.Container{}
}

// capsFlag turns a container's capabilities into setpriv's bounding set:
// with everything dropped, a process of uid 0 gets exactly the added
// capabilities (permitted and effective), as a container runtime gives
// them.
func capsFlag(t *testing.T, c corev1.Container) (string, uint64) {
	t.Helper()
	sc := c.SecurityContext
	if sc == nil || sc.Capabilities == nil || len(sc.Capabilities.Drop) != 1 || sc.Capabilities.Drop[0] != "ALL" {
		t.Fatalf("container %s does not drop ALL capabilities", c.Name)
	}
	flag := "-all"
	var mask uint64
	for _, cp := range sc.Capabilities.Add {
		bit, ok := capBits[string(cp)]
		if !ok {
			t.Fatalf("capability %s: not in this test's table", cp)
		}
		mask |= 1 << bit
		flag += ",+" + strings.ToLower(string(cp))
	}
	return flag, mask
}

// capBits are the capability numbers of linux/capability.h.
var capBits = map[string]uint{"CHOWN": 0, "DAC_OVERRIDE": 1, "FOWNER": 3, "KILL": 5, "SETGID": 6, "SETUID": 7,
	"NET_BIND_SERVICE": 10, "NET_ADMIN": 12, "NET_RAW": 13, "SYS_ADMIN": 21}

// TestSpeakerRunsWithItsManifestPrivileges runs `lbstack speaker` with
// exactly the privileges its container gets from the rendered DaemonSet
// (uid 0, all capabilities dropped but the added ones, no privilege
// escalation) and checks everything that needs a privilege still works:
// a TCP MD5 session, a session bound to a device (SO_BINDTODEVICE needs
// NET_RAW), and ARP answers for a layer-2 address (raw sockets). The
// speaker once had NET_ADMIN too; nothing needs it.
func TestSpeakerRunsWithItsManifestPrivileges(t *testing.T) {
	if _, err := exec.LookPath("setpriv"); err != nil {
		t.Skip("needs setpriv (util-linux)")
	}
	if _, err := exec.LookPath("arping"); err != nil {
		t.Skip("needs arping (Debian package iputils-arping)")
	}
	inNodeNamespace(t, "TestSpeakerRunsWithItsManifestPrivileges", badPeerRouter, privilegesChild)
}

func privilegesChild(t *testing.T, frrDir string) {
	router := frrtest.Router{T: t, Dir: frrDir}
	speakerC := renderedContainer(t, "native", "speaker")
	caps, mask := capsFlag(t, speakerC)
	sc := speakerC.SecurityContext
	if sc.RunAsUser == nil || *sc.RunAsUser != 0 || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Fatalf("the speaker's securityContext changed (%+v): update this test", sc)
	}
	// The node's link and the router's, and the router's namespace: the
	// frrtest lab names them lbs<id>n, lbs<id>r and lbs-<id>-r.
	links, err := os.ReadDir("/sys/class/net")
	must(t, err)
	nodeLink := ""
	for _, l := range links {
		if strings.HasPrefix(l.Name(), "lbs") && strings.HasSuffix(l.Name(), "n") {
			nodeLink = l.Name()
		}
	}
	if nodeLink == "" {
		t.Fatal("no lab link in the node namespace")
	}
	id := strings.TrimSuffix(strings.TrimPrefix(nodeLink, "lbs"), "n")
	routerNS, routerLink := "lbs-"+id+"-r", "lbs"+id+"r"

	env := envtest.Start(t)
	c := env.Client
	ctx := context.Background()
	ns := envtest.Namespace
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"kubernetes.io/hostname": "n1"}}}
	must(t, c.Create(ctx, n))
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: frrtest.NodeV4}, {Type: corev1.NodeInternalIP, Address: frrtest.NodeV6}}
	must(t, c.Status().Update(ctx, n))
	must(t, c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pw6", Namespace: ns}, Type: corev1.SecretTypeBasicAuth,
		Data: map[string][]byte{"password": []byte("s3cret")}}))
	second := &metav1.Duration{Duration: time.Second}
	must(t, c.Create(ctx, &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "bgp", Namespace: ns},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24"}}}))
	must(t, c.Create(ctx, &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: ns},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.18.0.240/28"}}}))
	must(t, c.Create(ctx, &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "bgp", Namespace: ns},
		Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"bgp"}}}))
	must(t, c.Create(ctx, &v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: ns},
		Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2"}}}))
	// The IPv4 session is bound to the node's link (vrf names the device
	// the session's socket is bound to); the IPv6 one uses TCP MD5.
	must(t, c.Create(ctx, &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "v4", Namespace: ns},
		Spec: v1beta2.BGPPeerSpec{MyASN: frrtest.NodeAS, ASN: frrtest.RouterAS, Address: frrtest.RouterV4, ConnectTime: second, VRFName: nodeLink}}))
	must(t, c.Create(ctx, &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "v6", Namespace: ns},
		Spec: v1beta2.BGPPeerSpec{MyASN: frrtest.NodeAS, ASN: frrtest.RouterAS, Address: frrtest.RouterV6, ConnectTime: second,
			DualStackAddressFamily: true, PasswordSecret: corev1.SecretReference{Name: "pw6"}}}))
	for name, ip := range map[string]string{"bgp": "203.0.113.9", "l2": "198.18.0.241"} {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
		must(t, c.Create(ctx, svc))
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		must(t, c.Status().Update(ctx, svc))
		must(t, c.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, NodeName: ptr.To("n1")}},
		}))
	}

	cmd := envtest.CLICommand(t, []string{"setpriv", "--bounding-set=" + caps, "--inh-caps=-all", "--no-new-privs", "--"},
		"speaker", "--node-name", "n1", "--namespace", ns, "--bgp-backend", "native", "--log-level", "info", "--metrics-bind-address", "0",
		"--kubeconfig", envtest.WriteKubeconfig(t, envtest.As(env.Config, envtest.RenderedRBAC(t, c, "lbstack-speaker"))))
	logPath := filepath.Join(t.TempDir(), "speaker.log")
	log, err := os.Create(logPath)
	must(t, err)
	cmd.Stdout, cmd.Stderr = log, log
	must(t, cmd.Start())
	done := make(chan error, 1)
	go func() { done <- cmd.Wait(); log.Close() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			t.Error("the speaker did not stop on SIGTERM")
		}
		if t.Failed() {
			out, _ := os.ReadFile(logPath)
			t.Logf("---- speaker ----\n%s", out)
		}
	})

	frrtest.Eventually(t, 60*time.Second, "203.0.113.9 over the bound IPv4 session and the MD5 IPv6 session", func() string {
		paths := router.Paths("203.0.113.9/32")
		for _, peer := range []string{frrtest.NodeV4, frrtest.NodeV6} {
			if _, ok := paths[peer]; !ok {
				return fmt.Sprintf("not learned from %s (paths %v)", peer, paths)
			}
		}
		return ""
	})
	frrtest.Eventually(t, 30*time.Second, "198.18.0.241 answered in ARP from the node", func() string {
		out, err := exec.Command("ip", "netns", "exec", routerNS, "arping", "-c", "1", "-w", "2", "-I", routerLink, "198.18.0.241").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Unicast reply from 198.18.0.241") {
			return fmt.Sprintf("arping: %v\n%s", err, out)
		}
		return ""
	})
	// All of it was done by a process with only those capabilities, which
	// could not gain more (read now: setpriv has long exec'd the speaker).
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	must(t, err)
	var capEff, capBnd uint64
	var nnp int
	for _, line := range strings.Split(string(status), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 {
			continue
		}
		switch f[0] {
		case "CapEff:":
			capEff, _ = strconv.ParseUint(f[1], 16, 64)
		case "CapBnd:":
			capBnd, _ = strconv.ParseUint(f[1], 16, 64)
		case "NoNewPrivs:":
			nnp, _ = strconv.Atoi(f[1])
		}
	}
	if capEff != mask || capBnd != mask || nnp != 1 {
		t.Fatalf("the speaker runs with CapEff %x CapBnd %x NoNewPrivs %d, want %x %x 1", capEff, capBnd, nnp, mask, mask)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
