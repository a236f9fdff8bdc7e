package assigner

// The `lbstack controller` process: a manager that runs the address
// assigner under leader election and, unless the operator serves them, the
// admission and conversion webhooks (pkg/webhook).

import (
	"context"
	"fmt"
	"os"
	"runtime/debug"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/lbstack/lbstack/pkg/scheme"
	"github.com/lbstack/lbstack/pkg/webhook"
)

// ProcessOptions configure the controller process.
type ProcessOptions struct {
	// Assigner is what the assigner serves; its Namespace is the stack's.
	Assigner Options
	// Metrics serves /metrics; HealthAddr /healthz and /readyz.
	Metrics    metricsserver.Options
	HealthAddr string
	// PprofAddr serves Go's /debug/pprof ("0" or empty: not served).
	PprofAddr string
	// LeaderElection: only the leader among replicas assigns addresses
	// (Lease lbstack-controller in the stack's namespace).
	LeaderElection bool
	// Webhooks, when set, is the webhook server the controller also runs.
	Webhooks *webhook.ServerOptions
}

// gcPercent is the controller's garbage-collection target when GOGC is not
// set. Go's default (100) lets the heap grow to twice what it keeps: at
// 10,000 Services the controller keeps 50-70 MB and its resident peak sat
// at 195-208 MiB, 54 MiB of it the binary's own pages. At 50 the peak was
// 163-166 MiB for about 15% more CPU while addresses are written
// (docs/scale.md).
const gcPercent = 50

// RunProcess runs the controller process until ctx ends.
func RunProcess(ctx context.Context, cfg *rest.Config, o ProcessOptions) error {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	ns := o.Assigner.Namespace
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  scheme.New(),
		Cache:                   CacheOptions(ns),
		Metrics:                 o.Metrics,
		HealthProbeBindAddress:  o.HealthAddr,
		PprofBindAddress:        o.PprofAddr,
		LeaderElection:          o.LeaderElection,
		LeaderElectionID:        "lbstack-controller",
		LeaderElectionNamespace: ns,
		// A controller that stops (a rollout replacing it) gives the Lease
		// up at once, so the new one takes over in about a second rather
		// than after the lease duration.
		LeaderElectionReleaseOnCancel: true,
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	if _, err := Setup(mgr, o.Assigner); err != nil {
		return err
	}
	return webhook.RunManager(ctx, mgr, o.Webhooks)
}
