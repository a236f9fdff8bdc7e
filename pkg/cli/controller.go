package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/assigner"
)

// Webhook modes of `lbstack controller`.
const (
	webhookEnabled  = "enabled"
	webhookDisabled = "disabled"
)

// controllerFlags are the flags of `lbstack controller`: the webhook's
// (the controller serves the webhooks too) plus its own.
type controllerFlags struct {
	webhookFlags
	lbClass, metricsAddr, webhookMode, pprofAddr string
	port, burst, workers                         int
	leaderElect                                  bool
	qps                                          float32
}

func (f *controllerFlags) add(cmd *cobra.Command) {
	f.webhookFlags.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.lbClass, "lb-class", "", "spec.loadBalancerClass of the Services to serve; empty serves the Services without a class")
	fl.StringVar(&f.metricsAddr, "metrics-bind-address", ":7472", `address of the Prometheus /metrics endpoint ("0" disables it)`)
	fl.IntVar(&f.port, "port", 7472, "port of the /metrics endpoint on every address (MetalLB's flag; overrides --metrics-bind-address when set)")
	fl.StringVar(&f.webhookMode, "webhook-mode", webhookEnabled, "enabled: also serve the admission and conversion webhooks; disabled: do not")
	fl.BoolVar(&f.leaderElect, "leader-elect", false, "elect a leader among replicas (Lease lbstack-controller in --namespace); only the leader assigns addresses")
	fl.Float32Var(&f.qps, "kube-api-qps", -1, "client-side limit of requests per second to the API server; negative: none (API Priority and Fairness applies)")
	fl.IntVar(&f.burst, "kube-api-burst", 1000, "client-side burst of requests to the API server (with --kube-api-qps > 0)")
	fl.IntVar(&f.workers, "workers", assigner.DefaultMaxConcurrentReconciles, "Services reconciled in parallel")
	fl.StringVar(&f.pprofAddr, "pprof-bind-address", "0", `address of Go's /debug/pprof profiles (heap, CPU), to diagnose memory and CPU at scale; "0" (the default) disables it`)
}

func newControllerCommand() *cobra.Command {
	var f controllerFlags
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Run the controller: assign LoadBalancer addresses and serve admission webhooks",
		Long: `Run the controller: give every LoadBalancer Service (of --lb-class) its
addresses from the IPAddressPools, as MetalLB does, and report the
configuration's state in ConfigurationState "controller" (docs/controller.md).
With --webhook-mode enabled (the default) it also serves the admission and
conversion webhooks, as ` + "`lbstack webhook`" + ` does.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := setupLogging(f.logLevel); err != nil {
				return err
			}
			if cmd.Flags().Changed("port") {
				f.metricsAddr = fmt.Sprintf(":%d", f.port)
			}
			ctx, cancel := untilSignal(cmd.Context())
			defer cancel()
			return runController(ctx, f)
		},
	}
	f.add(cmd)
	return cmd
}

func runController(ctx context.Context, f controllerFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	switch f.webhookMode {
	case webhookEnabled, webhookDisabled:
	default:
		return fmt.Errorf("--webhook-mode %q: want %s or %s", f.webhookMode, webhookEnabled, webhookDisabled)
	}
	metrics, err := f.serving.metricsOptions(f.metricsAddr)
	if err != nil {
		return err
	}
	o := assigner.ProcessOptions{
		Assigner: assigner.Options{
			Namespace: f.server.Namespace, LBClass: f.lbClass, BGPBackend: v1beta1.BGPType(f.bgpBackend), MaxConcurrentReconciles: f.workers,
		},
		Metrics: metrics, HealthAddr: f.healthAddr, LeaderElection: f.leaderElect, PprofAddr: f.pprofAddr,
	}
	if f.webhookMode == webhookEnabled {
		wh, err := f.serverOptions()
		if err != nil {
			return err
		}
		o.Webhooks = &wh
	}
	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = f.qps, f.burst
	return assigner.RunProcess(ctx, cfg, o)
}
