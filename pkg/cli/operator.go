package cli

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/lbstack/lbstack/controllers"
)

// operatorFlags are the flags of `lbstack operator`: the webhook server's
// (it serves the admission webhooks, see docs/design.md) plus its own.
type operatorFlags struct {
	webhookFlags
	metricsAddr    string
	leaderElection bool
	serveWebhooks  bool
}

func newOperatorCommand() *cobra.Command {
	var f operatorFlags
	cmd := &cobra.Command{
		Use:   "operator",
		Short: "Run the operator: reconcile the MetalLB object into the stack's workloads",
		Long: `Run the operator: render the controller, the speakers, their RBAC, NetworkPolicies
and ServiceMonitors from the MetalLB object, keep them as rendered, report
status, and serve the metallb.io webhooks (docs/operator.md). Images:
CONTROLLER_IMAGE, SPEAKER_IMAGE, FRR_IMAGE (defaults: the operator's own image,
and REPOSITORY-frr:TAG beside it). Namespace: --namespace, else
$OPERATOR_NAMESPACE, else $METALLB_NAMESPACE.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("namespace") {
				if ns := os.Getenv("OPERATOR_NAMESPACE"); ns != "" {
					f.server.Namespace = ns
				}
			}
			if err := setupLogging(f.logLevel); err != nil {
				return err
			}
			ctx, cancel := untilSignal(cmd.Context())
			defer cancel()
			return runOperator(ctx, f, cmd.Flags().Changed("cert-mode"))
		},
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", "address of the operator's /metrics (0 disables)")
	fl.BoolVar(&f.leaderElection, "leader-elect", false, "elect a leader (run several replicas safely)")
	fl.BoolVar(&f.serveWebhooks, "serve-webhooks", true, "serve the metallb.io admission and conversion webhooks")
	return cmd
}

func runOperator(ctx context.Context, f operatorFlags, certModeSet bool) error {
	metrics, err := f.serving.metricsOptions(f.metricsAddr)
	if err != nil {
		return err
	}
	o := controllers.OperatorOptions{
		Namespace: f.server.Namespace, Metrics: metrics, HealthAddr: f.healthAddr, LeaderElection: f.leaderElection,
		CertModeSet: certModeSet, Getenv: os.Getenv,
	}
	if f.serveWebhooks {
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
	return controllers.RunOperator(ctx, cfg, o)
}
