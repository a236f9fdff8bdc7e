package speaker_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/test/envtest"
	"github.com/lbstack/lbstack/test/lab/frrtest"
)

// badPeerRouter peers with the node twice: over IPv4, and over IPv6 with a
// TCP MD5 password; the IPv6 session carries IPv4 routes too (the node's
// peer is dual-stack), so every Service reaches the router over both.
const badPeerRouter = `frr defaults traditional
hostname lbs-router
log stdout
bgp route-map delay-timer 0
!
router bgp 64513
 bgp router-id 198.18.0.254
 no bgp ebgp-requires-policy
 no bgp network import-check
 neighbor 198.18.0.1 remote-as 64512
 neighbor 198.18.0.1 timers connect 1
 neighbor 2001:db8:18::1 remote-as 64512
 neighbor 2001:db8:18::1 timers connect 1
 neighbor 2001:db8:18::1 password s3cret
 !
 address-family ipv6 unicast
  neighbor 2001:db8:18::1 activate
 exit-address-family
!
`

// TestSpeakerOneBadPeerNeverStopsTheOthers: a password Secret's value is
// never seen by a webhook, so it can turn bad at any time. The speaker
// keeps that one peer at its last valid version (its session stays up),
// says so, and every other change keeps flowing to the router; a speaker
// that never saw a valid version of the peer leaves it out and still
// announces over every other session. On a speaker that refuses the whole
// configuration instead (MetalLB's behaviour, and lbstack's before),
// nothing new would ever be announced.
func TestSpeakerOneBadPeerNeverStopsTheOthers(t *testing.T) {
	inNodeNamespace(t, "TestSpeakerOneBadPeerNeverStopsTheOthers", badPeerRouter, badPeerChild)
}

func badPeerChild(t *testing.T, frrDir string) {
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
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"kubernetes.io/hostname": "n1"}}}
	must(c.Create(ctx, n))
	n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: frrtest.NodeV4}, {Type: corev1.NodeInternalIP, Address: frrtest.NodeV6}}
	must(c.Status().Update(ctx, n))

	pw := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pw6", Namespace: ns}, Type: corev1.SecretTypeBasicAuth,
		Data: map[string][]byte{"password": []byte("s3cret")}}
	must(c.Create(ctx, pw))
	must(c.Create(ctx, &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "pool", Namespace: ns},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24"}}}))
	must(c.Create(ctx, &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "adv", Namespace: ns}}))
	second := &metav1.Duration{Duration: time.Second}
	must(c.Create(ctx, &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "v4", Namespace: ns},
		Spec: v1beta2.BGPPeerSpec{MyASN: frrtest.NodeAS, ASN: frrtest.RouterAS, Address: frrtest.RouterV4, ConnectTime: second}}))
	must(c.Create(ctx, &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "v6", Namespace: ns},
		Spec: v1beta2.BGPPeerSpec{MyASN: frrtest.NodeAS, ASN: frrtest.RouterAS, Address: frrtest.RouterV6, ConnectTime: second,
			DualStackAddressFamily: true, PasswordSecret: corev1.SecretReference{Name: "pw6"}}}))

	service := func(name, ip string) {
		t.Helper()
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
		must(c.Create(ctx, svc))
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		must(c.Status().Update(ctx, svc))
		must(c.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: name + "-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: name}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, NodeName: ptr.To("n1")}},
		}))
	}
	// via says which sessions the router learned prefix over.
	via := func(prefix string, want ...string) func() string {
		return func() string {
			paths := router.Paths(prefix)
			for _, peer := range want {
				if _, ok := paths[peer]; !ok {
					return fmt.Sprintf("%s not learned from %s (paths %v)", prefix, peer, paths)
				}
			}
			if len(paths) != len(want) {
				return fmt.Sprintf("%s learned from %d peers, want %v", prefix, len(paths), want)
			}
			return ""
		}
	}
	// The speaker runs as a process of its own (see TestMain), so that a
	// restart is a restart: nothing of the first run is left in memory.
	kubeconfig := envtest.WriteKubeconfig(t, envtest.As(env.Config, envtest.RenderedRBAC(t, c, "lbstack-speaker")))
	runs := 0
	startSpeaker := func() func() {
		runs++
		cmd := envtest.CLICommand(t, nil, "speaker", "--node-name", "n1", "--namespace", ns,
			"--kubeconfig", kubeconfig, "--bgp-backend", "native", "--log-level", "info", "--metrics-bind-address", "0")
		log, err := os.Create(filepath.Join(t.TempDir(), fmt.Sprintf("speaker-%d.log", runs)))
		must(err)
		cmd.Stdout, cmd.Stderr = log, log
		must(cmd.Start())
		done := make(chan error, 1)
		go func() { done <- cmd.Wait(); log.Close() }()
		stopped := false
		stopIt := func() {
			if stopped {
				return
			}
			stopped = true
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("speaker run %d: %v", runs, err)
				}
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				t.Errorf("speaker run %d did not stop on SIGTERM", runs)
			}
			if t.Failed() {
				out, _ := os.ReadFile(log.Name())
				t.Logf("---- speaker run %d ----\n%s", runs, out)
			}
		}
		t.Cleanup(stopIt)
		return stopIt
	}
	announcing := func(reason, contains string) func() string {
		return func() string {
			var cs v1beta1.ConfigurationState
			if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "speaker-n1"}, &cs); err != nil {
				return err.Error()
			}
			cond := meta.FindStatusCondition(cs.Status.Conditions, "Announcing")
			if cond == nil || cond.Status != metav1.ConditionTrue || cond.Reason != reason || !strings.Contains(cond.Message, contains) {
				return fmt.Sprintf("Announcing %+v, want True %s with %q", cond, reason, contains)
			}
			if reason != "Applied" && (cs.Status.Result != v1beta1.ConfigurationInvalid || !strings.Contains(cs.Status.ErrorSummary, `the password in secret "pw6" contains the control character`)) {
				return fmt.Sprintf("status %+v: want Invalid naming the Secret", cs.Status)
			}
			return ""
		}
	}

	stop := startSpeaker()
	service("a", "203.0.113.1")
	frrtest.Eventually(t, 60*time.Second, "203.0.113.1 over both sessions", via("203.0.113.1/32", frrtest.NodeV4, frrtest.NodeV6))
	frrtest.Eventually(t, 10*time.Second, "ConfigurationState Applied", announcing("Applied", "applied"))
	established := router.Neighbor(frrtest.NodeV6).ConnectionsEstablished

	// The Secret's new value cannot be a TCP MD5 key. No webhook saw it.
	must(c.Get(ctx, client.ObjectKeyFromObject(pw), pw))
	pw.Data["password"] = []byte("s3cret\nneighbor 6.6.6.6 remote-as 1")
	must(c.Update(ctx, pw))
	frrtest.Eventually(t, 30*time.Second, "the refusal reported: peer v6 at its last valid version",
		announcing("SessionsSkipped", `bgppeer "v6" runs its last valid version`))
	// Everything else keeps flowing, over both sessions: the refused peer
	// runs as it last did (its password has not changed on the router).
	// Configuration changes too: a new pool is in use at once.
	service("b", "203.0.113.2")
	frrtest.Eventually(t, 30*time.Second, "a new Service announced over both sessions", via("203.0.113.2/32", frrtest.NodeV4, frrtest.NodeV6))
	must(c.Create(ctx, &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "pool2", Namespace: ns},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.0/24"}}}))
	service("d", "198.51.100.1")
	frrtest.Eventually(t, 30*time.Second, "a Service of a pool created after the refusal announced", via("198.51.100.1/32", frrtest.NodeV4, frrtest.NodeV6))
	must(c.Delete(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "default"}}))
	frrtest.Eventually(t, 30*time.Second, "a deleted Service withdrawn", via("203.0.113.1/32"))
	if got := router.Neighbor(frrtest.NodeV6).ConnectionsEstablished; got != established {
		t.Errorf("the refused peer's session was reset (%d -> %d connections)", established, got)
	}

	// A speaker that starts now never saw a valid version of peer v6: it
	// leaves it out, and announces over v4.
	stop()
	stop = startSpeaker()
	frrtest.Eventually(t, 30*time.Second, "the refusal reported: peer v6 left out", announcing("SessionsSkipped", `bgppeer "v6" is left out`))
	frrtest.Eventually(t, 60*time.Second, "203.0.113.2 over the v4 session only", via("203.0.113.2/32", frrtest.NodeV4))
	service("c", "203.0.113.3")
	frrtest.Eventually(t, 30*time.Second, "a new Service announced over v4", via("203.0.113.3/32", frrtest.NodeV4))

	// The Secret fixed: the peer comes back.
	must(c.Get(ctx, client.ObjectKeyFromObject(pw), pw))
	pw.Data["password"] = []byte("s3cret")
	must(c.Update(ctx, pw))
	frrtest.Eventually(t, 60*time.Second, "peer v6 back", via("203.0.113.3/32", frrtest.NodeV4, frrtest.NodeV6))
	frrtest.Eventually(t, 10*time.Second, "ConfigurationState Applied again", announcing("Applied", "applied"))
	stop()
}
