package speaker

import (
	"context"
	"fmt"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/lbstack/lbstack/pkg/scheme"
	"github.com/lbstack/lbstack/pkg/serving"
)

// ProcessOptions configure the `lbstack speaker` process.
type ProcessOptions struct {
	Speaker Options
	// Metrics serves /metrics.
	Metrics metricsserver.Options
	// HealthAddr is the loopback address of /healthz, /readyz and
	// DebugStatePath; "" or "0" disables them.
	HealthAddr string
	// PprofAddr serves Go's /debug/pprof ("0" or empty: not served).
	PprofAddr string
}

// RunProcess runs the speaker of one node until ctx ends: a manager with
// the speaker's cache and reconciler, and its local health and debug server.
func RunProcess(ctx context.Context, cfg *rest.Config, o ProcessOptions) error {
	if err := o.Speaker.Validate(); err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme.New(),
		Metrics: o.Metrics,
		Cache:   CacheOptions(o.Speaker.Namespace),
		// Health and debug have their own loopback server (below).
		HealthProbeBindAddress: "0",
		PprofBindAddress:       o.PprofAddr,
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	sp, err := Setup(mgr, o.Speaker)
	if err != nil {
		return err
	}
	if o.HealthAddr != "0" && o.HealthAddr != "" {
		local, err := serving.NewLocalServer(o.HealthAddr)
		if err != nil {
			return fmt.Errorf("--health-probe-bind-address %w", err)
		}
		for name, check := range sp.LiveChecks() {
			local.Check("/healthz", name, check)
		}
		for name, check := range sp.ReadyChecks() {
			local.Check("/readyz", name, check)
		}
		local.Handle(DebugStatePath, sp.DebugState())
		if err := mgr.Add(local); err != nil {
			return err
		}
	}
	return mgr.Start(ctx)
}
