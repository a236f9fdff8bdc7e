package speaker_test

// `lbstack speaker` end to end: API server, speaker, embedded GoBGP and a
// real FRR router. The whole test body runs in a child process inside the
// node namespace of a test/lab/frrtest lab (the API server it starts then
// lives there too, on 127.0.0.1), so the speaker's BGP session can only
// reach the lab router; the parent only builds the lab and waits.

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/bindata"
	"github.com/lbstack/lbstack/pkg/cli"
	"github.com/lbstack/lbstack/pkg/render"
	"github.com/lbstack/lbstack/test/envtest"
	"github.com/lbstack/lbstack/test/lab/frrtest"
)

const (
	childEnv  = "LBSTACK_SPEAKER_FRR_CHILD"
	frrDirEnv = "LBSTACK_SPEAKER_FRR_DIR"
)

func TestSpeakerCommandFRR(t *testing.T) {
	inNodeNamespace(t, "TestSpeakerCommandFRR", "", speakerFRRChild)
}

// inNodeNamespace runs body in a child process: the test binary again,
// running only the test named name, inside the node namespace of a new
// test/lab/frrtest lab whose router runs bgpdConf (frrtest.DefaultConfig
// when empty). In that child, body runs with the directory of the
// router's sockets. The parent only builds the lab and waits.
func inNodeNamespace(t *testing.T, name, bgpdConf string, body func(t *testing.T, frrDir string)) {
	if os.Getenv(childEnv) == name {
		body(t, os.Getenv(frrDirEnv))
		return
	}
	if _, err := envtest.AssetsDir(); err != nil {
		t.Skipf("envtest assets missing (make envtest-assets): %v", err)
	}
	lab := frrtest.Start(t, bgpdConf)
	// kube-apiserver derives its advertise address from the default
	// route's interface and refuses to start without one. The default
	// route points at the lab link without a gateway: a packet to any
	// other address would only cause an unanswered ARP on the link (the
	// router owns no such address), so nothing leaves the lab.
	if out, err := exec.Command("ip", "-n", lab.NodeNS, "route", "add", "default", "dev", lab.NodeLink).CombinedOutput(); err != nil {
		t.Fatalf("default route in %s: %v\n%s", lab.NodeNS, err, out)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := lab.StartInNode("speaker-test", []string{childEnv + "=" + name, frrDirEnv + "=" + lab.Dir},
		exe, "-test.run=^"+name+"$", "-test.v", "-test.count=1")
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the test in the node namespace failed (%v); its output is in the log above", err)
		}
	case <-time.After(4 * time.Minute):
		t.Fatal("the test in the node namespace did not finish in 4 minutes")
	}
	// The child's own output proves it ran the assertions, not a skip.
	out, err := os.ReadFile(lab.Dir + "/speaker-test.log")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "--- PASS: "+name) {
		t.Fatalf("child did not pass:\n%s", out)
	}
}

func speakerFRRChild(t *testing.T, frrDir string) {
	router := frrtest.Router{T: t, Dir: frrDir}
	env := envtest.Start(t)
	c := env.Client
	ctx := context.Background()
	ns := envtest.Namespace
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"n1", "n2"} {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"kubernetes.io/hostname": name}}}
		must(c.Create(ctx, n))
	}
	var n1 corev1.Node
	must(c.Get(ctx, client.ObjectKey{Name: "n1"}, &n1))
	n1.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: frrtest.NodeV4}}
	must(c.Status().Update(ctx, &n1))

	must(c.Create(ctx, &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "pool", Namespace: ns},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24"}}}))
	must(c.Create(ctx, &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "adv", Namespace: ns},
		Spec: v1beta1.BGPAdvertisementSpec{Communities: []string{"65535:120", "large:65535:300:100"}}}))
	must(c.Create(ctx, &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "router", Namespace: ns},
		Spec: v1beta2.BGPPeerSpec{MyASN: frrtest.NodeAS, ASN: frrtest.RouterAS, Address: frrtest.RouterV4,
			ConnectTime: &metav1.Duration{Duration: time.Second}}}))

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
	must(c.Create(ctx, svc))
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.5"}}
	must(c.Status().Update(ctx, svc))
	must(c.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, NodeName: ptr.To("n2")}},
	}))

	user := envtest.RenderedRBAC(t, c, "lbstack-speaker")
	// The node namespace is ours alone: a fixed port cannot collide.
	const metricsAddr = "127.0.0.1:17472"
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		root := cli.NewRoot()
		root.SetArgs([]string{"speaker", "--node-name", "n1", "--namespace", ns, "--kubeconfig", envtest.WriteKubeconfig(t, envtest.As(env.Config, user)),
			"--bgp-backend", "native", "--log-level", "info", "--metrics-bind-address", metricsAddr})
		done <- root.ExecuteContext(runCtx)
	}()
	stopped := false
	stopSpeaker := func() {
		if stopped {
			return
		}
		stopped = true
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("speaker: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("speaker did not stop")
		}
	}
	t.Cleanup(stopSpeaker)

	statusPeers := func() (map[string][]string, error) {
		var l v1beta1.ServiceBGPStatusList
		if err := c.List(ctx, &l, client.InNamespace(ns), client.MatchingLabels{"metallb.io/node": "n1"}); err != nil {
			return nil, err
		}
		m := map[string][]string{}
		for _, s := range l.Items {
			m[s.Status.ServiceNamespace+"/"+s.Status.ServiceName] = s.Status.Peers
		}
		return m, nil
	}

	// Cluster policy, endpoint on another node: n1 announces.
	frrtest.Eventually(t, 60*time.Second, "203.0.113.5/32 at the router with communities, ServiceBGPStatus", func() string {
		p, ok := router.Paths("203.0.113.5/32")[frrtest.NodeV4]
		if !ok {
			return fmt.Sprintf("no path from %s (neighbor %+v)", frrtest.NodeV4, router.Neighbor(frrtest.NodeV4))
		}
		if p.Communities() != "65535:120" || p.Large() != "65535:300:100" || len(p.Nexthops) == 0 || p.Nexthops[0].IP != frrtest.NodeV4 {
			return fmt.Sprintf("path %+v", p)
		}
		st, err := statusPeers()
		if err != nil {
			return err.Error()
		}
		if peers := st["default/web"]; len(st) != 1 || len(peers) != 1 || peers[0] != "router" {
			return fmt.Sprintf("ServiceBGPStatus of n1: %v", st)
		}
		return ""
	})
	before := router.Neighbor(frrtest.NodeV4).ConnectionsEstablished
	// /metrics is HTTPS for authenticated, authorized clients only: a
	// monitoring service account bound to lbstack-metrics-reader.
	promToken := metricsToken(t, c, "prom", true)
	nobodyToken := metricsToken(t, c, "nobody", false)
	scrape := func(token string) (int, string, error) {
		req, _ := http.NewRequest(http.MethodGet, "https://"+metricsAddr+"/metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		// The certificate is self-signed (made at start, nothing written).
		cl := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		resp, err := cl.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body), nil
	}
	for _, tc := range []struct {
		who, token string
		want       int
	}{{"anonymous", "", http.StatusUnauthorized}, {"a token without the role", nobodyToken, http.StatusForbidden}} {
		frrtest.Eventually(t, 10*time.Second, "metrics refused to "+tc.who, func() string {
			code, _, err := scrape(tc.token)
			if err != nil {
				return err.Error()
			}
			if code != tc.want {
				return fmt.Sprintf("status %d, want %d", code, tc.want)
			}
			return ""
		})
	}
	if resp, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("/metrics answered plain HTTP")
		}
	}
	// Health and the speaker's own view: on loopback, no authentication.
	frrtest.Eventually(t, 10*time.Second, "healthz, readyz and debug state on 127.0.0.1:7473", func() string {
		for _, path := range []string{"/healthz", "/readyz", "/debug/state"} {
			resp, err := http.Get("http://127.0.0.1:7473" + path)
			if err != nil {
				return err.Error()
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Sprintf("%s: %d %s", path, resp.StatusCode, body)
			}
		}
		return ""
	})
	frrtest.Eventually(t, 10*time.Second, "session metrics", func() string {
		code, body, err := scrape(promToken)
		if err != nil {
			return err.Error()
		}
		if code != http.StatusOK {
			return fmt.Sprintf("status %d: %s", code, body)
		}
		for _, want := range []string{`lbstack_bgp_session_up{peer="router",vrf=""} 1`, `lbstack_bgp_announced_prefixes{peer="router",vrf=""} 1`} {
			if !strings.Contains(body, want) {
				return "no " + want
			}
		}
		if !strings.Contains(body, `lbstack_bgp_updates_total{peer="router",vrf=""}`) {
			return "no lbstack_bgp_updates_total"
		}
		return ""
	})

	// Local policy with the only endpoint on n2: n1 withdraws, its
	// status goes, the session stays.
	must(c.Get(ctx, client.ObjectKeyFromObject(svc), svc))
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	must(c.Update(ctx, svc))
	frrtest.Eventually(t, 30*time.Second, "route withdrawn, status removed", func() string {
		if ps := router.Paths("203.0.113.5/32"); len(ps) != 0 {
			return fmt.Sprintf("router still has %v", ps)
		}
		st, err := statusPeers()
		if err != nil {
			return err.Error()
		}
		if len(st) != 0 {
			return fmt.Sprintf("ServiceBGPStatus of n1: %v", st)
		}
		return ""
	})
	if after := router.Neighbor(frrtest.NodeV4).ConnectionsEstablished; after != before {
		t.Errorf("connectionsEstablished %d -> %d: a Service change reset the session", before, after)
	}

	// Stopping the speaker closes the session: the router drops the
	// node at once, not after the hold time.
	must(c.Get(ctx, client.ObjectKeyFromObject(svc), svc))
	svc.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	must(c.Update(ctx, svc))
	frrtest.Eventually(t, 30*time.Second, "announced again", func() string {
		if _, ok := router.Paths("203.0.113.5/32")[frrtest.NodeV4]; !ok {
			return "no path"
		}
		return ""
	})
	stopSpeaker()
	frrtest.Eventually(t, 10*time.Second, "session closed and route gone after the speaker stopped", func() string {
		if n := router.Neighbor(frrtest.NodeV4); n.State == "Established" {
			return "still established"
		}
		if ps := router.Paths("203.0.113.5/32"); len(ps) != 0 {
			return fmt.Sprintf("router still has %v", ps)
		}
		return ""
	})
}

// metricsToken returns a token of a new service account name in the
// stack's namespace, bound to the rendered lbstack-metrics-reader
// ClusterRole when reader.
func metricsToken(t *testing.T, c client.Client, name string, reader bool) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: envtest.Namespace, Name: name}}
	if err := c.Create(ctx, sa); err != nil {
		t.Fatal(err)
	}
	if reader {
		objs, err := render.Render(bindata.FS, render.Params{Namespace: envtest.Namespace, OwnerName: "metallb", LogLevel: "info",
			BGPBackend: "native", MemberlistSecretKey: "a2V5", Images: render.Images{Controller: "x", Speaker: "x"}})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, o := range objs {
			if o.GetKind() == "ClusterRole" && o.GetName() == "lbstack-metrics-reader" {
				found = true
				if err := c.Create(ctx, o); err != nil && !apierrors.IsAlreadyExists(err) {
					t.Fatal(err)
				}
			}
		}
		if !found {
			t.Fatal("no lbstack-metrics-reader ClusterRole rendered")
		}
		if err := c.Create(ctx, &rbacv1.ClusterRoleBinding{ObjectMeta: metav1.ObjectMeta{Name: name + "-metrics"},
			RoleRef:  rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "lbstack-metrics-reader"},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Namespace: envtest.Namespace, Name: name}}}); err != nil {
			t.Fatal(err)
		}
	}
	tr := &authenticationv1.TokenRequest{}
	if err := c.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatalf("token for %s: %v", name, err)
	}
	return tr.Status.Token
}
