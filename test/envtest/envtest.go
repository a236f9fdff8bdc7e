// Package envtest starts a real kube-apiserver and etcd (built from pinned
// modules by `make envtest-assets`) with lbstack's CRDs installed, for the
// envtest tier. Every suite uses Start; nothing here is a fake.
package envtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crenvtest "sigs.k8s.io/controller-runtime/pkg/envtest"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/lbstack/lbstack/pkg/scheme"
	lbwebhook "github.com/lbstack/lbstack/pkg/webhook"
)

// K8sVersion is the Kubernetes release the envtest assets are built from;
// it must match K8S_VERSION in the Makefile (a unit test checks).
const K8sVersion = "v1.34.4"

// Namespace is the namespace the stack lives in by convention.
const Namespace = "metallb-system"

// Env is a running API server with lbstack's CRDs.
type Env struct {
	Env    *crenvtest.Environment
	Config *rest.Config
	Client client.Client
	Scheme *runtime.Scheme
	// Root is the repository root.
	Root string

	stopWebhook func()
	// webhookCache is the cache the webhook server's view is kept from.
	webhookCache cache.Cache
	// webhook is the validator whose view the webhook server serves from.
	webhook *lbwebhook.Validator
}

// WaitWebhookForgets waits until the webhook server's cache holds no
// object of the lists' kinds in the stack's namespace: after a test
// deletes them, the next must not be checked against them (a watch lags
// by milliseconds).
func (e *Env) WaitWebhookForgets(tb testing.TB, lists ...client.ObjectList) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, l := range lists {
		for {
			err := e.webhookCache.List(context.Background(), l, client.InNamespace(Namespace))
			if err == nil && meta.LenList(l) == 0 {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("the webhook's cache still holds %d %T (err %v)", meta.LenList(l), l, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// The pools and the MetalLB object are read from the view, which
		// the cache's event handlers update after the cache's store.
		for e.webhook != nil {
			held := e.webhook.WatchedVersions(l)
			if len(held) == 0 {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("the webhook's view still holds %T %v", l, held)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// WaitWebhookSees waits until the webhook server's cache holds each of
// objs at its resourceVersion (as objs were returned by a create or
// update): the webhook reads Secrets, Nodes, Namespaces and the
// metallb.io objects other than the pools from its cache, as in a
// cluster, and a test that creates a Secret and at once a peer naming it
// must wait, as a user's second `kubectl apply` a moment later does.
func (e *Env) WaitWebhookSees(tb testing.TB, objs ...client.Object) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, o := range objs {
		cur := o.DeepCopyObject().(client.Object)
		for {
			err := e.webhookCache.Get(context.Background(), client.ObjectKeyFromObject(o), cur)
			if err == nil && cur.GetResourceVersion() == o.GetResourceVersion() {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("the webhook's cache does not show %T %s at resourceVersion %s (err %v)", o, client.ObjectKeyFromObject(o), o.GetResourceVersion(), err)
			}
			time.Sleep(10 * time.Millisecond)
		}
		// The view (pools, MetalLB) follows the cache's store: wait until
		// it holds the version the cache shows now.
		for e.webhook != nil {
			held := e.webhook.WatchedVersions(o)
			if held == nil {
				break
			}
			if err := e.webhookCache.Get(context.Background(), client.ObjectKeyFromObject(o), cur); err == nil && held[o.GetName()] == cur.GetResourceVersion() {
				break
			}
			if time.Now().After(deadline) {
				tb.Fatalf("the webhook's view does not show %T %s at resourceVersion %s (it holds %v)", o, client.ObjectKeyFromObject(o), cur.GetResourceVersion(), held)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// RepoRoot finds the lbstack repository root by walking up from the
// working directory to the go.mod of module github.com/lbstack/lbstack.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		data, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(bytes.TrimSpace(data), []byte("module github.com/lbstack/lbstack\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("lbstack repository root not found above the working directory")
		}
		dir = parent
	}
}

// AssetsDir returns the directory holding kube-apiserver, etcd and kubectl:
// $KUBEBUILDER_ASSETS when set, else bin/k8s-<version> in the repository.
func AssetsDir() (string, error) {
	dir := os.Getenv("KUBEBUILDER_ASSETS")
	if dir == "" {
		root, err := RepoRoot()
		if err != nil {
			return "", err
		}
		dir = filepath.Join(root, "bin", "k8s-"+K8sVersion)
	}
	for _, b := range []string{"kube-apiserver", "etcd", "kubectl"} {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return "", fmt.Errorf("envtest asset %s missing in %s: run `make envtest-assets` (or `make test`)", b, dir)
		}
	}
	return dir, nil
}

// ScenariosDir returns the seed scenarios directory: $LBSTACK_SCENARIOS, or
// the repository's config/samples/scenarios.
func ScenariosDir() (string, error) {
	if d := os.Getenv("LBSTACK_SCENARIOS"); d != "" {
		return d, nil
	}
	root, err := RepoRoot()
	if err != nil {
		return "", err
	}
	d := filepath.Join(root, "config", "samples", "scenarios")
	if _, err := os.Stat(d); err != nil {
		return "", fmt.Errorf("seed scenarios not found at %s (set LBSTACK_SCENARIOS): %w", d, err)
	}
	return d, nil
}

// Options change what Start installs.
type Options struct {
	// ExtraCRDDirs are further directories of CRD manifests to install,
	// relative to the repository root unless absolute: e.g. test/crds/nmstate,
	// test/crds/ovn, test/crds/openshift (APIs of other projects, which
	// lbstack reads but never installs).
	ExtraCRDDirs []string
	// APIServerArgs set kube-apiserver flags (name without dashes →
	// value), e.g. a larger service-cluster-ip-range for thousands of
	// Services.
	APIServerArgs map[string]string
}

// Start runs an API server with the CRDs from config/crd/bases and returns
// it; it is stopped when the test (or benchmark) ends. It also creates the
// stack's namespace.
func Start(tb testing.TB) *Env {
	tb.Helper()
	return StartWith(tb, Options{})
}

// StartWith is Start with options.
func StartWith(tb testing.TB, opts Options) *Env {
	tb.Helper()
	env, err := StartEnvWith(opts)
	if err != nil {
		tb.Fatalf("start envtest: %v", err)
	}
	tb.Cleanup(func() {
		if err := env.Stop(); err != nil {
			tb.Errorf("stop envtest: %v", err)
		}
	})
	return env
}

// StartEnv is Start for callers without a testing.TB (TestMain); the caller
// must call Stop.
func StartEnv() (*Env, error) { return StartEnvWith(Options{}) }

// StartEnvWith is StartWith for callers without a testing.TB.
func StartEnvWith(opts Options) (*Env, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	s := scheme.New()
	// Tests inspect CRDs (stored versions, conversion settings) too.
	if err := apiextensionsv1.AddToScheme(s); err != nil {
		return nil, err
	}
	crdDirs := []string{filepath.Join(root, "config", "crd", "bases")}
	for _, d := range opts.ExtraCRDDirs {
		if !filepath.IsAbs(d) {
			d = filepath.Join(root, d)
		}
		crdDirs = append(crdDirs, d)
	}
	te := &crenvtest.Environment{
		CRDDirectoryPaths:     crdDirs,
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
		Scheme:                s,
		// The generated ValidatingWebhookConfiguration; envtest points it
		// at the local webhook server with its own CA.
		WebhookInstallOptions: crenvtest.WebhookInstallOptions{
			Paths: []string{filepath.Join(root, "config", "webhook", "manifests.yaml")},
		},
	}
	for name, v := range opts.APIServerArgs {
		te.ControlPlane.GetAPIServer().Configure().Set(name, v)
	}
	cfg, err := te.Start()
	if err != nil {
		return nil, err
	}
	c, err := client.New(cfg, client.Options{Scheme: s})
	if err != nil {
		_ = te.Stop()
		return nil, err
	}
	env := &Env{Env: te, Config: cfg, Client: c, Scheme: s, Root: root}
	if err := env.startWebhookServer(); err != nil {
		_ = te.Stop()
		return nil, err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	if err := c.Create(context.Background(), ns); err != nil {
		_ = te.Stop()
		return nil, fmt.Errorf("create namespace %s: %w", Namespace, err)
	}
	return env, nil
}

// startWebhookServer serves lbstack's webhooks (validation of every kind
// and BGPPeer conversion) over TLS at the address and with the certificate
// envtest configured in the API server: envtest installs the generated
// ValidatingWebhookConfiguration and points the BGPPeer CRD's conversion at
// it (the scheme has convertible types). As in `lbstack webhook`, the
// validator keeps its view of the metallb.io objects from a cache's
// informers (the stack's namespace) and reads Secrets, Nodes and
// Namespaces from that cache.
func (e *Env) startWebhookServer() error {
	opts := e.Env.WebhookInstallOptions
	srv := crwebhook.NewServer(crwebhook.Options{
		Host:    opts.LocalServingHost,
		Port:    opts.LocalServingPort,
		CertDir: opts.LocalServingCertDir,
	})
	informers, err := cache.New(e.Config, cache.Options{
		Scheme:            e.Scheme,
		DefaultNamespaces: map[string]cache.Config{Namespace: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
	})
	if err != nil {
		return fmt.Errorf("webhook cache: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	v := &lbwebhook.Validator{Reader: e.Client, Cached: informers, Namespace: Namespace, Scheme: e.Scheme, Mapper: e.Client.RESTMapper()}
	if err := v.Watch(ctx, informers); err != nil {
		cancel()
		return err
	}
	v.Register(srv)
	done := make(chan error, 2)
	go func() { done <- srv.Start(ctx) }()
	go func() {
		if err := informers.Start(ctx); err != nil {
			done <- fmt.Errorf("webhook cache: %w", err)
		}
	}()
	e.stopWebhook = func() { cancel(); <-done }
	e.webhookCache = informers
	e.webhook = v
	started := srv.StartedChecker()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if err := started(nil); err == nil && informers.WaitForCacheSync(ctx) {
			return nil
		} else if time.Now().After(deadline) {
			e.stopWebhook()
			return fmt.Errorf("webhook server did not start: %w", err)
		}
		select {
		case err := <-done:
			cancel()
			return fmt.Errorf("webhook server exited: %w", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop stops the webhook server, the API server and etcd.
func (e *Env) Stop() error {
	if e.stopWebhook != nil {
		e.stopWebhook()
	}
	return e.Env.Stop()
}

// Kubectl runs the kubectl built with the assets against this API server as
// the admin user and returns stdout, stderr and the error.
func (e *Env) Kubectl(args ...string) (string, string, error) {
	stdout, stderr, err := e.Env.ControlPlane.KubeCtl().Run(args...)
	var out, errOut []byte
	if stdout != nil {
		out, _ = io.ReadAll(stdout)
	}
	if stderr != nil {
		errOut, _ = io.ReadAll(stderr)
	}
	return string(out), string(errOut), err
}

// Document is one YAML document of a multi-document manifest file.
type Document struct {
	// Text is the document exactly as written.
	Text string
	// APIVersion and Kind are read from the document.
	APIVersion, Kind string
}

// SplitYAML splits a manifest file into its documents, keeping each one's
// text as written.
func SplitYAML(r io.Reader) ([]Document, error) {
	var docs []Document
	var cur strings.Builder
	flush := func() {
		text := cur.String()
		cur.Reset()
		if strings.TrimSpace(stripComments(text)) == "" {
			return
		}
		d := Document{Text: text}
		for _, line := range strings.Split(text, "\n") {
			if v, ok := strings.CutPrefix(line, "apiVersion:"); ok && d.APIVersion == "" {
				d.APIVersion = strings.Trim(strings.TrimSpace(v), `"'`)
			}
			if v, ok := strings.CutPrefix(line, "kind:"); ok && d.Kind == "" {
				d.Kind = strings.Trim(strings.TrimSpace(v), `"'`)
			}
		}
		docs = append(docs, d)
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimRight(line, " \t") == "---" {
			flush()
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	flush()
	return docs, nil
}

func stripComments(text string) string {
	var b strings.Builder
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		b.WriteString(line)
		b.WriteByte('\n')
	}
	return b.String()
}
