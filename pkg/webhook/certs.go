package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// Certificate provisioning modes.
const (
	// CertsRotator generates a CA and serving certificate, keeps them in a
	// Secret, rotates them before expiry and injects the CA into the
	// webhook configuration and the BGPPeer CRD's conversion (caBundle).
	CertsRotator = "rotator"
	// CertsExternal uses certificates someone else writes into the cert
	// directory and injects (OpenShift's service CA).
	CertsExternal = "external"
)

// CertOptions say where the serving certificate comes from.
type CertOptions struct {
	Mode string
	// Namespace, SecretName: the Secret holding the CA and serving pair.
	Namespace, SecretName string
	// ServiceName is the webhook Service; the certificate is issued for
	// <service>.<namespace>.svc and its other cluster DNS forms.
	ServiceName string
	// CertDir is where the webhook server reads tls.crt and tls.key.
	CertDir string
	// ValidatingWebhookConfiguration receives the caBundle.
	ValidatingWebhookConfiguration string
	// ConversionCRDs receive the caBundle in spec.conversion.
	ConversionCRDs []string
	// ExtraDNSNames are added to the certificate (tests serve on localhost).
	ExtraDNSNames []string
}

// SetupCerts arranges for a serving certificate in o.CertDir and returns a
// channel closed once it is there (and, with the rotator, the CA is
// injected). The webhook server must only start after that.
func SetupCerts(ctx context.Context, mgr manager.Manager, o CertOptions) (<-chan struct{}, error) {
	ready := make(chan struct{})
	if err := os.MkdirAll(o.CertDir, 0o700); err != nil {
		return nil, fmt.Errorf("cert dir %s: %w", o.CertDir, err)
	}
	switch o.Mode {
	case CertsExternal:
		go func() {
			waitForFile(ctx, filepath.Join(o.CertDir, "tls.crt"))
			close(ready)
		}()
		return ready, nil
	case CertsRotator, "":
	default:
		return nil, fmt.Errorf("unknown certificate mode %q (want %q or %q)", o.Mode, CertsRotator, CertsExternal)
	}

	direct, err := client.New(mgr.GetConfig(), client.Options{Scheme: mgr.GetScheme()})
	if err != nil {
		return nil, err
	}
	// The rotator updates an existing Secret; the install manifests ship
	// an empty one, but create it if someone deleted it.
	key := types.NamespacedName{Namespace: o.Namespace, Name: o.SecretName}
	if err := ensureSecret(ctx, direct, key); err != nil {
		return nil, err
	}
	if err := rotator.AddRotator(mgr, newCertRotator(o, key, ready)); err != nil {
		return nil, fmt.Errorf("certificate rotator: %w", err)
	}
	// The rotator keeps the pair in the Secret; a pod normally mounts it,
	// but the pair is also copied into CertDir so the server works where
	// no Secret volume is mounted (the lab, a binary run by hand). A
	// mounted, read-only CertDir is left to the kubelet.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		syncCertFiles(ctx, direct, key, o.CertDir)
		return nil
	})); err != nil {
		return nil, err
	}
	return ready, nil
}

// newCertRotator is the rotator's configuration: the CA's and the serving
// certificate's names and where the CA is injected. Validity and the
// rotation threshold are the rotator's defaults. (A function of its own so
// that tests can check the certificates it issues without a manager.)
func newCertRotator(o CertOptions, key types.NamespacedName, ready chan struct{}) *rotator.CertRotator {
	svc := o.ServiceName + "." + o.Namespace
	var hooks []rotator.WebhookInfo
	if o.ValidatingWebhookConfiguration != "" {
		hooks = append(hooks, rotator.WebhookInfo{Name: o.ValidatingWebhookConfiguration, Type: rotator.Validating})
	}
	for _, crd := range o.ConversionCRDs {
		hooks = append(hooks, rotator.WebhookInfo{Name: crd, Type: rotator.CRDConversion})
	}
	return &rotator.CertRotator{
		SecretKey:      key,
		CertDir:        o.CertDir,
		CAName:         "lbstack-ca",
		CAOrganization: "lbstack",
		DNSName:        svc + ".svc",
		ExtraDNSNames:  append([]string{o.ServiceName, svc, svc + ".svc.cluster.local"}, o.ExtraDNSNames...),
		IsReady:        ready,
		Webhooks:       hooks,
		FieldOwner:     "lbstack",
	}
}

func ensureSecret(ctx context.Context, c client.Client, key types.NamespacedName) error {
	var s corev1.Secret
	err := c.Get(ctx, key, &s)
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("secret %s: %w", key, err)
	}
	s = corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}, Type: corev1.SecretTypeOpaque}
	if err := c.Create(ctx, &s); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create secret %s: %w", key, err)
	}
	return nil
}

// syncCertFiles copies tls.crt/tls.key from the Secret into dir whenever
// they change, until ctx ends.
func syncCertFiles(ctx context.Context, c client.Client, key types.NamespacedName, dir string) {
	log := logf.FromContext(ctx).WithName("certsync")
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		var s corev1.Secret
		if err := c.Get(ctx, key, &s); err != nil {
			if ctx.Err() == nil {
				log.Error(err, "reading the certificate secret", "secret", key)
			}
		} else if crt, k := s.Data["tls.crt"], s.Data["tls.key"]; len(crt) > 0 && len(k) > 0 {
			// Key first: the server reloads on the certificate's change.
			for _, f := range []struct {
				name string
				data []byte
			}{{"tls.key", k}, {"tls.crt", crt}} {
				if err := writeIfChanged(filepath.Join(dir, f.name), f.data); err != nil {
					if errors.Is(err, fs.ErrPermission) || isReadOnly(err) {
						log.V(1).Info("cert dir not writable, relying on the mounted secret", "dir", dir)
						return
					}
					log.Error(err, "writing certificate file", "file", f.name)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func writeIfChanged(path string, data []byte) error {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return nil
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func isReadOnly(err error) bool { return errors.Is(err, syscall.EROFS) }

func waitForFile(ctx context.Context, path string) {
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
