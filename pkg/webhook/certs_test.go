package webhook

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/cert-controller/pkg/rotator"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/lbstack/lbstack/pkg/scheme"
)

var certKey = types.NamespacedName{Namespace: testNS, Name: "webhook-server-cert"}

func certOptions() CertOptions {
	return CertOptions{Namespace: testNS, SecretName: certKey.Name, ServiceName: "lbstack-webhook-service", CertDir: "/tmp/certs"}
}

func TestCertRotatorConfiguration(t *testing.T) {
	cases := []struct {
		name      string
		mod       func(*CertOptions)
		wantNames []string
		wantHooks []rotator.WebhookInfo
	}{
		{name: "the service's cluster DNS forms, nothing to inject",
			wantNames: []string{"lbstack-webhook-service", "lbstack-webhook-service.metallb-system", "lbstack-webhook-service.metallb-system.svc.cluster.local"}},
		{name: "extra names come last",
			mod:       func(o *CertOptions) { o.ExtraDNSNames = []string{"localhost"} },
			wantNames: []string{"lbstack-webhook-service", "lbstack-webhook-service.metallb-system", "lbstack-webhook-service.metallb-system.svc.cluster.local", "localhost"}},
		{name: "the CA goes into the validating configuration and every conversion CRD",
			mod: func(o *CertOptions) {
				o.ValidatingWebhookConfiguration = "lbstack-validating"
				o.ConversionCRDs = []string{"bgppeers.metallb.io", "x.lbstack.io"}
			},
			wantNames: []string{"lbstack-webhook-service", "lbstack-webhook-service.metallb-system", "lbstack-webhook-service.metallb-system.svc.cluster.local"},
			wantHooks: []rotator.WebhookInfo{{Name: "lbstack-validating", Type: rotator.Validating}, {Name: "bgppeers.metallb.io", Type: rotator.CRDConversion}, {Name: "x.lbstack.io", Type: rotator.CRDConversion}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := certOptions()
			if tc.mod != nil {
				tc.mod(&o)
			}
			ready := make(chan struct{})
			cr := newCertRotator(o, certKey, ready)
			if cr.SecretKey != certKey || cr.CertDir != "/tmp/certs" || cr.IsReady != ready || cr.FieldOwner != "lbstack" {
				t.Errorf("secret %v, dir %q, ready set %t, owner %q", cr.SecretKey, cr.CertDir, cr.IsReady == ready, cr.FieldOwner)
			}
			if cr.CAName != "lbstack-ca" || cr.CAOrganization != "lbstack" {
				t.Errorf("CA %q of %q", cr.CAName, cr.CAOrganization)
			}
			if cr.DNSName != "lbstack-webhook-service.metallb-system.svc" {
				t.Errorf("DNSName %q", cr.DNSName)
			}
			if !slices.Equal(cr.ExtraDNSNames, tc.wantNames) {
				t.Errorf("ExtraDNSNames %q, want %q", cr.ExtraDNSNames, tc.wantNames)
			}
			if !slices.Equal(cr.Webhooks, tc.wantHooks) {
				t.Errorf("Webhooks %v, want %v", cr.Webhooks, tc.wantHooks)
			}
			// Validity and rotation threshold are left to the rotator's
			// defaults (CA 10 years, serving 1 year, renewed 90 days ahead).
			if cr.CaCertDuration != 0 || cr.ServerCertDuration != 0 || cr.LookaheadInterval != 0 {
				t.Errorf("durations set: CA %s, server %s, lookahead %s", cr.CaCertDuration, cr.ServerCertDuration, cr.LookaheadInterval)
			}
		})
	}
}

func parsePEM(t *testing.T, b []byte) *x509.Certificate {
	t.Helper()
	blk, _ := pem.Decode(b)
	if blk == nil {
		t.Fatal("no PEM block")
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestIssuedCertificates issues a CA and a serving certificate the way
// the rotator does with our configuration, and checks what an API server
// checks: the chain, the names it dials, and validity over time, including
// the rotation decision (a pair not valid at now+lookahead is renewed).
func TestIssuedCertificates(t *testing.T) {
	o := certOptions()
	o.ExtraDNSNames = []string{"localhost"}
	cr := newCertRotator(o, certKey, make(chan struct{}))
	cr.ExtKeyUsages = &[]x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth} // AddRotator's default
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	begin, serverEnd := now.Add(-time.Hour), now.Add(365*24*time.Hour)
	ca, err := cr.CreateCACert(begin, now.Add(10*365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	crt, key, err := cr.CreateCertPEM(ca, begin, serverEnd)
	if err != nil {
		t.Fatal(err)
	}
	caCert := parsePEM(t, ca.CertPEM)
	if !caCert.IsCA || caCert.Subject.CommonName != "lbstack-ca" || !slices.Equal(caCert.Subject.Organization, []string{"lbstack"}) {
		t.Errorf("CA: IsCA %t, subject %v", caCert.IsCA, caCert.Subject)
	}
	srv := parsePEM(t, crt)
	wantSANs := []string{"lbstack-webhook-service.metallb-system.svc", "lbstack-webhook-service", "lbstack-webhook-service.metallb-system", "lbstack-webhook-service.metallb-system.svc.cluster.local", "localhost"}
	if !slices.Equal(srv.DNSNames, wantSANs) || srv.IsCA {
		t.Errorf("serving certificate: SANs %q (want %q), IsCA %t", srv.DNSNames, wantSANs, srv.IsCA)
	}
	// The rotator checks the pair at now+lookahead (90 days by default)
	// and renews it when it is not valid then.
	lookahead := 90 * 24 * time.Hour
	checkedOn := func(day time.Time) time.Time { return day.Add(lookahead) }
	const svcName = "lbstack-webhook-service.metallb-system.svc"
	day := 24 * time.Hour
	cases := []struct {
		name  string
		dns   string
		at    time.Time
		valid bool
	}{
		{"the service name the API server dials", svcName, now, true},
		{"the fully qualified name", "lbstack-webhook-service.metallb-system.svc.cluster.local", now, true},
		{"an extra name", "localhost", now, true},
		{"another service's name", "other.metallb-system.svc", now, false},
		{"not yet valid before its start", svcName, begin.Add(-time.Minute), false},
		{"kept when checked on the day it is issued", svcName, checkedOn(now), true},
		{"kept when checked 91 days before it expires", svcName, checkedOn(serverEnd.Add(-91 * day)), true},
		{"renewed when checked 89 days before it expires", svcName, checkedOn(serverEnd.Add(-89 * day)), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			valid, err := rotator.ValidCert(ca.CertPEM, crt, key, tc.dns, cr.ExtKeyUsages, tc.at)
			if valid != tc.valid {
				t.Errorf("valid %t (%v), want %t", valid, err, tc.valid)
			}
		})
	}
}

func TestEnsureSecret(t *testing.T) {
	existing := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: certKey.Namespace, Name: certKey.Name}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": []byte("crt")}}
	gr := schema.GroupResource{Resource: "secrets"}
	cases := []struct {
		name     string
		existing []client.Object
		funcs    interceptor.Funcs
		wantErr  string
		wantType corev1.SecretType
		wantData bool
	}{
		{name: "an existing Secret is left as it is", existing: []client.Object{existing}, wantType: corev1.SecretTypeTLS, wantData: true},
		{name: "a missing Secret is created empty and Opaque", wantType: corev1.SecretTypeOpaque},
		{name: "another error reading it is returned naming the Secret",
			funcs: interceptor.Funcs{Get: func(ctx context.Context, c client.WithWatch, k client.ObjectKey, o client.Object, opts ...client.GetOption) error {
				return apierrors.NewForbidden(gr, k.Name, errors.New("no"))
			}},
			wantErr: `secret metallb-system/webhook-server-cert: secrets "webhook-server-cert" is forbidden: no`},
		{name: "created meanwhile by someone else is fine",
			funcs: interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
				if err := c.Create(ctx, o.DeepCopyObject().(client.Object), opts...); err != nil {
					return err
				}
				return apierrors.NewAlreadyExists(gr, o.GetName())
			}},
			wantType: corev1.SecretTypeOpaque},
		{name: "a failed create is returned naming the Secret",
			funcs: interceptor.Funcs{Create: func(ctx context.Context, c client.WithWatch, o client.Object, opts ...client.CreateOption) error {
				return apierrors.NewForbidden(gr, o.GetName(), errors.New("quota"))
			}},
			wantErr: `create secret metallb-system/webhook-server-cert: secrets "webhook-server-cert" is forbidden: quota`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(tc.existing...).WithInterceptorFuncs(tc.funcs).Build()
			err := ensureSecret(context.Background(), c, certKey)
			if tc.wantErr != "" {
				if err == nil || err.Error() != tc.wantErr {
					t.Fatalf("error %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var s corev1.Secret
			if err := c.Get(context.Background(), certKey, &s); err != nil {
				t.Fatal(err)
			}
			if s.Type != tc.wantType || (len(s.Data) > 0) != tc.wantData {
				t.Errorf("secret type %q data %v", s.Type, s.Data)
			}
		})
	}
}

func TestWriteIfChanged(t *testing.T) {
	cases := []struct {
		name    string
		old     string // "" : no file
		data    string
		blocked bool // the temporary file's path is taken: any write fails
		wantErr bool
		want    string
	}{
		{name: "a new file is written", data: "A", want: "A"},
		{name: "a changed file is replaced", old: "A", data: "B", want: "B"},
		{name: "an unchanged file is not written at all", old: "A", data: "A", blocked: true, want: "A"},
		{name: "a changed file that cannot be written is an error and is kept", old: "A", data: "B", blocked: true, wantErr: true, want: "A"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "tls.crt")
			if tc.old != "" {
				if err := os.WriteFile(path, []byte(tc.old), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if tc.blocked {
				if err := os.Mkdir(path+".tmp", 0o700); err != nil {
					t.Fatal(err)
				}
			}
			err := writeIfChanged(path, []byte(tc.data))
			if (err != nil) != tc.wantErr {
				t.Fatalf("error %v, want error %t", err, tc.wantErr)
			}
			got, _ := os.ReadFile(path)
			if string(got) != tc.want {
				t.Errorf("file holds %q, want %q", got, tc.want)
			}
			if !tc.blocked {
				if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
					t.Errorf("temporary file left behind: %v", err)
				}
				if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
					t.Errorf("mode %v, want 0600", fi.Mode().Perm())
				}
			}
		})
	}
}

// TestSyncCertFiles runs one pass (the context is already done, so the
// loop ends after it).
func TestSyncCertFiles(t *testing.T) {
	secret := func(data map[string][]byte) *corev1.Secret {
		return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: certKey.Namespace, Name: certKey.Name}, Data: data}
	}
	cases := []struct {
		name     string
		existing []client.Object
		want     map[string]string // file -> content; absent files listed with ""
	}{
		{name: "the pair is copied", existing: []client.Object{secret(map[string][]byte{"tls.crt": []byte("C"), "tls.key": []byte("K"), "ca.crt": []byte("CA")})},
			want: map[string]string{"tls.crt": "C", "tls.key": "K", "ca.crt": ""}},
		{name: "a Secret the rotator has not filled yet writes nothing", existing: []client.Object{secret(map[string][]byte{"tls.crt": []byte("C")})},
			want: map[string]string{"tls.crt": "", "tls.key": ""}},
		{name: "no Secret writes nothing", want: map[string]string{"tls.crt": "", "tls.key": ""}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			c := fake.NewClientBuilder().WithScheme(scheme.New()).WithObjects(tc.existing...).Build()
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			syncCertFiles(ctx, c, certKey, dir)
			for f, want := range tc.want {
				got, err := os.ReadFile(filepath.Join(dir, f))
				if want == "" {
					if err == nil {
						t.Errorf("%s written: %q", f, got)
					}
					continue
				}
				if string(got) != want {
					t.Errorf("%s = %q (%v), want %q", f, got, err, want)
				}
			}
		})
	}
}

func TestWaitForFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "tls.crt")
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitForFile(context.Background(), path) // returns: the file is there
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	waitForFile(ctx, filepath.Join(dir, "missing")) // returns: the context is done
}

func TestSetupCertsModes(t *testing.T) {
	t.Run("unknown mode is an error naming the modes", func(t *testing.T) {
		o := certOptions()
		o.Mode, o.CertDir = "vault", t.TempDir()
		_, err := SetupCerts(context.Background(), nil, o)
		if want := `unknown certificate mode "vault" (want "rotator" or "external")`; err == nil || err.Error() != want {
			t.Fatalf("error %v, want %q", err, want)
		}
	})
	t.Run("a cert dir that cannot be created is an error naming it", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(file, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		o := certOptions()
		o.Mode, o.CertDir = CertsExternal, filepath.Join(file, "certs")
		_, err := SetupCerts(context.Background(), nil, o)
		if err == nil || !strings.HasPrefix(err.Error(), "cert dir "+o.CertDir+": ") {
			t.Fatalf("error %v", err)
		}
	})
	t.Run("external: ready once tls.crt is in the cert dir", func(t *testing.T) {
		o := certOptions()
		o.Mode, o.CertDir = CertsExternal, t.TempDir()
		if err := os.WriteFile(filepath.Join(o.CertDir, "tls.crt"), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
		ready, err := SetupCerts(context.Background(), nil, o)
		if err != nil {
			t.Fatal(err)
		}
		<-ready // closes: the test times out otherwise
	})
	t.Run("external: ready when the context ends without a certificate", func(t *testing.T) {
		o := certOptions()
		o.Mode, o.CertDir = CertsExternal, t.TempDir()
		ctx, cancel := context.WithCancel(context.Background())
		ready, err := SetupCerts(ctx, nil, o)
		if err != nil {
			t.Fatal(err)
		}
		select {
		case <-ready:
			t.Fatal("ready without a certificate")
		default:
		}
		cancel()
		<-ready
	})
}
