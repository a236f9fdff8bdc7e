package webhook

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"sync/atomic"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/pagedlist"
	"github.com/lbstack/lbstack/pkg/scheme"
)

// ServerOptions say what the webhook server serves, and where.
type ServerOptions struct {
	// Namespace is the stack's namespace (see Validator).
	Namespace string
	// Host and Port the server listens on (all addresses when Host is empty).
	Host string
	Port int
	// Certs say where the serving certificate comes from; the server reads
	// it from Certs.CertDir.
	Certs CertOptions
	// TLSOpts are the TLS settings every server of the component shares.
	TLSOpts []func(*tls.Config)
	// BGPBackend, when set, is the backend rules are checked against (see
	// Validator).
	BGPBackend v1beta1.BGPType
}

// addServer adds the admission and conversion webhooks to mgr: certificates
// (generated and rotated, or provided), the TLS server (started once a
// certificate is in place) and a readyz check that passes once the server
// serves. Errors of the deferred start arrive on the returned channel.
func addServer(ctx context.Context, mgr ctrl.Manager, o ServerOptions) (<-chan error, error) {
	log := ctrl.Log.WithName("webhook")
	ready, err := SetupCerts(ctx, mgr, o.Certs)
	if err != nil {
		return nil, err
	}
	srv := crwebhook.NewServer(crwebhook.Options{Host: o.Host, Port: o.Port, CertDir: o.Certs.CertDir, TLSOpts: o.TLSOpts})
	v := &Validator{
		Reader: mgr.GetAPIReader(), Cached: mgr.GetCache(), Namespace: o.Namespace, BGPBackend: o.BGPBackend, Scheme: mgr.GetScheme(),
		Mapper: mgr.GetRESTMapper(),
	}
	if err := v.Watch(ctx, mgr.GetCache()); err != nil {
		return nil, err
	}
	v.Register(srv)

	// The server starts once a certificate is in place; until then the
	// pod is not ready, so no Service endpoint points at it.
	var started atomic.Bool
	startErr := make(chan error, 1)
	go func() {
		select {
		case <-ready:
			log.Info("certificates ready, starting the webhook server", "port", o.Port)
			if err := mgr.Add(srv); err != nil {
				startErr <- err
				return
			}
			started.Store(true)
		case <-ctx.Done():
		}
	}()
	if err := mgr.AddReadyzCheck("webhook", func(r *http.Request) error {
		if !started.Load() {
			return errors.New("waiting for certificates")
		}
		if !v.view().hasSynced() {
			return errors.New("waiting for the watch of the metallb.io objects to list them")
		}
		return srv.StartedChecker()(r)
	}); err != nil {
		return nil, err
	}
	return startErr, nil
}

// RunManager runs mgr, with a /healthz that passes while it runs and the
// webhook server o describes (nil: none, and /readyz passes at once), until
// ctx ends or the server's deferred start fails. `lbstack webhook`,
// `lbstack controller` and `lbstack operator` all serve the webhooks so.
func RunManager(ctx context.Context, mgr ctrl.Manager, o *ServerOptions) error {
	ping := func(*http.Request) error { return nil }
	if err := mgr.AddHealthzCheck("ping", ping); err != nil {
		return err
	}
	var startErr <-chan error // nil: nothing starts late
	if o == nil {
		if err := mgr.AddReadyzCheck("ping", ping); err != nil {
			return err
		}
	} else {
		var err error
		if startErr, err = addServer(ctx, mgr, *o); err != nil {
			return err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- mgr.Start(ctx) }()
	select {
	case err := <-errc:
		return err
	case err := <-startErr:
		return err
	}
}

// Serve runs the webhook server on a manager of its own until ctx ends (the
// `lbstack webhook` process): health probes on healthAddr, no metrics,
// Secrets cached from the stack's namespace only.
func Serve(ctx context.Context, cfg *rest.Config, healthAddr string, o ServerOptions) error {
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme.New(),
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: healthAddr,
		// Secrets are read from the cache, of the stack's namespace only.
		Cache: pagedlist.InPages(cache.Options{DefaultNamespaces: map[string]cache.Config{o.Namespace: {}}, DefaultTransform: cache.TransformStripManagedFields()}),
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	return RunManager(ctx, mgr, &o)
}
