package speaker_test

// The `lbstack speaker` command against a real API server (envtest): it
// reads the configuration through its informers, reports it in
// ConfigurationState speaker-<node>, keeps the last valid configuration
// when a new one is invalid, and removes ServiceBGPStatus objects of this
// node that it does not announce.
//
// No BGP session is opened here on purpose: the peer's password Secret is
// missing, so the session waits for it. This test runs in the host's
// network namespace, where a session would send SYNs through the default
// route; sessions are tested against FRR in network namespaces in
// pkg/bgp/native.

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/cli"
	"github.com/lbstack/lbstack/test/envtest"
	"github.com/lbstack/lbstack/test/lab/frrtest"
)

func TestSpeakerCommandEnvtest(t *testing.T) {
	if _, err := envtest.AssetsDir(); err != nil {
		t.Skipf("envtest assets missing (make envtest-assets): %v", err)
	}
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

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"kubernetes.io/hostname": "n1"}}}
	must(c.Create(ctx, node))
	node.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.18.0.1"}}
	must(c.Status().Update(ctx, node))

	must(c.Create(ctx, &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "pool", Namespace: ns},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/24"}}}))
	must(c.Create(ctx, &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "adv", Namespace: ns}}))
	must(c.Create(ctx, &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "router", Namespace: ns},
		Spec: v1beta2.BGPPeerSpec{MyASN: 64512, ASN: 64513, Address: "198.18.0.254", PasswordSecret: corev1.SecretReference{Name: "pw"}}}))

	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}}}}
	must(c.Create(ctx, svc))
	svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.5"}}
	must(c.Status().Update(ctx, svc))
	must(c.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, NodeName: ptr.To("n1")}},
	}))
	// A status left by an earlier run of this node's speaker.
	stale := &v1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Name: "stale", Namespace: ns,
		Labels: map[string]string{"metallb.io/node": "n1", "metallb.io/service-name": "gone", "metallb.io/service-namespace": "default"}}}
	must(c.Create(ctx, stale))

	// The speaker runs as its own service account, with exactly the RBAC
	// the operator renders for it.
	user := envtest.RenderedRBAC(t, c, "lbstack-speaker")
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		root := cli.NewRoot()
		root.SetArgs([]string{"speaker", "--node-name", "n1", "--namespace", ns, "--kubeconfig", envtest.WriteKubeconfig(t, envtest.As(env.Config, user)),
			"--bgp-backend", "native", "--log-level", "error", "--metrics-bind-address", "0",
			// The host's network namespace: no fixed port.
			"--health-probe-bind-address", "0"})
		done <- root.ExecuteContext(runCtx)
	}()
	t.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("speaker: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("speaker did not stop")
		}
	})

	state := func() (*v1beta1.ConfigurationState, string) {
		var cs v1beta1.ConfigurationState
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "speaker-n1"}, &cs); err != nil {
			return nil, err.Error()
		}
		return &cs, ""
	}
	frrtest.Eventually(t, 30*time.Second, "ConfigurationState Valid, session waiting for its password, stale status removed", func() string {
		cs, why := state()
		if cs == nil {
			return why
		}
		if cs.Status.Result != v1beta1.ConfigurationValid || !strings.Contains(cs.Status.ErrorSummary, `waiting for password Secret "pw"`) {
			return fmt.Sprintf("status %+v", cs.Status)
		}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "stale"}, &v1beta1.ServiceBGPStatus{}); !apierrors.IsNotFound(err) {
			return fmt.Sprintf("stale ServiceBGPStatus still there (%v)", err)
		}
		return ""
	})

	// A Secret of the wrong type makes the peer invalid: reported, and the
	// speaker keeps the peer's last valid version (waiting for its
	// password) while the rest of the configuration stays current.
	must(c.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "pw", Namespace: ns}, Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{"password": []byte("x")}}))
	frrtest.Eventually(t, 30*time.Second, "ConfigurationState Invalid, the peer at its last valid version", func() string {
		cs, why := state()
		if cs == nil {
			return why
		}
		cond := meta.FindStatusCondition(cs.Status.Conditions, "Announcing")
		if cs.Status.Result != v1beta1.ConfigurationInvalid || !strings.Contains(cs.Status.ErrorSummary, "kubernetes.io/basic-auth") ||
			cond == nil || cond.Reason != "SessionsSkipped" || !strings.Contains(cond.Message, `bgppeer "router" runs its last valid version`) {
			return fmt.Sprintf("status %+v", cs.Status)
		}
		var evs corev1.EventList
		if err := c.List(ctx, &evs, client.InNamespace(ns)); err != nil {
			return err.Error()
		}
		for _, e := range evs.Items {
			if e.Reason == "ConfigurationInvalid" && e.InvolvedObject.Name == "speaker-n1" && strings.Contains(e.Message, "basic-auth") {
				return ""
			}
		}
		return "no ConfigurationInvalid event on speaker-n1"
	})
}
