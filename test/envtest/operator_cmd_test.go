package envtest_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/platform"
	"github.com/lbstack/lbstack/test/envtest"
)

// TestOperatorCommand runs the real `lbstack operator` binary against the
// API server: it generates its webhook certificate, serves the webhooks
// (ready only then), reconciles a MetalLB object with the image from its
// environment, and releases the finalizer on deletion.
func TestOperatorCommand(t *testing.T) {
	ctx := context.Background()
	cleanMetalLBObjects(t)
	p := startOperatorProcess(t, buildLbstack(t), "lbstack-test-operator-cert", "OPERATOR_IMAGE=registry.local:5000/lbstack:cmd")
	webhook := p.webhook
	p.waitReady(t)
	// The webhook server answers TLS with the generated certificate.
	conn, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(webhook), &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		t.Fatalf("webhook server: %v", err)
	}
	names := conn.ConnectionState().PeerCertificates[0].DNSNames
	conn.Close()
	if !strings.Contains(strings.Join(names, ","), "lbstack-webhook-service.metallb-system.svc") {
		t.Errorf("webhook certificate names %v", names)
	}
	// TLS 1.3 only and no HTTP/2 by default (issue 17): a TLS 1.2 client is
	// refused, and a client offering h2 gets HTTP/1.1.
	if c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(webhook), &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12}); err == nil {
		c.Close()
		t.Error("the webhook server accepted TLS 1.2")
	}
	c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(webhook), &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2", "http/1.1"}})
	if err != nil {
		t.Fatalf("webhook server: %v", err)
	}
	if st := c.ConnectionState(); st.NegotiatedProtocol != "http/1.1" || st.Version != tls.VersionTLS13 {
		t.Errorf("negotiated %q over TLS %x, want http/1.1 over TLS 1.3", st.NegotiatedProtocol, st.Version)
	}
	c.Close()

	ml := &v1beta1.MetalLB{ObjectMeta: metav1.ObjectMeta{Name: "metallb", Namespace: envtest.Namespace}, Spec: v1beta1.MetalLBSpec{BGPType: v1beta1.BGPTypeFRR}}
	if err := env.Client.Create(ctx, ml); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		var cur v1beta1.MetalLB
		if env.Client.Get(ctx, client.ObjectKeyFromObject(ml), &cur) == nil {
			cur.Finalizers = nil
			_ = env.Client.Update(ctx, &cur)
			_ = env.Client.Delete(ctx, &cur)
		}
		cleanRendered(ctx)
	})
	eventually(t, "speaker DaemonSet rendered with the operator's image", func() error {
		var ds appsv1.DaemonSet
		if err := env.Client.Get(ctx, types.NamespacedName{Namespace: envtest.Namespace, Name: "lbstack-speaker"}, &ds); err != nil {
			return err
		}
		imgs := map[string]string{}
		for _, c := range ds.Spec.Template.Spec.Containers {
			imgs[c.Name] = c.Image
		}
		if imgs["speaker"] != "registry.local:5000/lbstack:cmd" || imgs["reloader"] != "registry.local:5000/lbstack-frr:cmd" || imgs["frr"] != "registry.local:5000/lbstack-frr:cmd" {
			return fmt.Errorf("images %v", imgs)
		}
		return nil
	})
	if err := env.Client.Delete(ctx, ml); err != nil {
		t.Fatal(err)
	}
	eventually(t, "MetalLB object deleted (finalizer released by the operator)", func() error {
		err := env.Client.Get(ctx, client.ObjectKeyFromObject(ml), &v1beta1.MetalLB{})
		if apierrors.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("still there: %v", err)
	})
}

// TestServiceCAAnnotations checks what the operator asks of OpenShift's
// service CA (it does this when discovery finds config.openshift.io): the
// serving certificate into the Secret it mounts, the CA injected into the
// webhook configuration and the BGPPeer CRD.
func TestServiceCAAnnotations(t *testing.T) {
	ctx := context.Background()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "lbstack-test-webhook-service", Namespace: envtest.Namespace},
		Spec:       corev1.ServiceSpec{Ports: []corev1.ServicePort{{Port: 443}}},
	}
	if err := env.Client.Create(ctx, svc); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, svc) })
	var vwcs admissionregistrationv1.ValidatingWebhookConfigurationList
	if err := env.Client.List(ctx, &vwcs); err != nil || len(vwcs.Items) == 0 {
		t.Fatalf("webhook configurations: %v", err)
	}
	vwc := vwcs.Items[0].Name
	crd := "bgppeers.metallb.io"
	if err := platform.AnnotateForServiceCA(ctx, env.Config, platform.ServiceCATargets{
		Namespace: envtest.Namespace, Service: svc.Name, Secret: "lbstack-webhook-server-cert",
		ValidatingWebhookConfiguration: vwc, ConversionCRDs: []string{crd},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, o := range []client.Object{&admissionregistrationv1.ValidatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: vwc}}, &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: crd}}} {
			_ = env.Client.Patch(ctx, o, client.RawPatch(types.MergePatchType, []byte(`{"metadata":{"annotations":{"service.beta.openshift.io/inject-cabundle":null}}}`)))
		}
	})
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(svc), svc); err != nil {
		t.Fatal(err)
	}
	if got := svc.Annotations["service.beta.openshift.io/serving-cert-secret-name"]; got != "lbstack-webhook-server-cert" {
		t.Errorf("service annotation %q", got)
	}
	var v admissionregistrationv1.ValidatingWebhookConfiguration
	var c apiextensionsv1.CustomResourceDefinition
	if err := env.Client.Get(ctx, types.NamespacedName{Name: vwc}, &v); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, types.NamespacedName{Name: crd}, &c); err != nil {
		t.Fatal(err)
	}
	if v.Annotations["service.beta.openshift.io/inject-cabundle"] != "true" || c.Annotations["service.beta.openshift.io/inject-cabundle"] != "true" {
		t.Errorf("inject-cabundle: webhook configuration %v, CRD %v", v.Annotations, c.Annotations)
	}
}
