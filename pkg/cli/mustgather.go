package cli

import (
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lbstack/lbstack/pkg/mustgather"
)

func newMustGatherCommand() *cobra.Command {
	var (
		opts       mustgather.Options
		kubeconfig string
		sinceTime  string
	)
	cmd := &cobra.Command{
		Use:   "must-gather",
		Short: "Collect everything needed to debug the stack into one directory",
		Long: `must-gather collects the MetalLB and lbstack objects, the stack's workloads and
logs, LoadBalancer Services with their EndpointSlices and events, nodes, the
NMState/OVN/OpenShift objects, each speaker's FRR state and routing tables, and
a summary.txt; never a Secret value (docs/must-gather.md). What cannot be
collected is listed in errors.txt, the run goes on, and the exit status is
non-zero. --since and --since-time default to $MUST_GATHER_SINCE and
$MUST_GATHER_SINCE_TIME (oc adm must-gather --image=...).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := opts.SinceFromEnv(cmd.Flags().Changed("since"), sinceTime, os.Getenv); err != nil {
				return err
			}
			cfg, err := restConfig(kubeconfig)
			if err != nil {
				return err
			}
			opts.Progress = cmd.ErrOrStderr()
			res, err := mustgather.Run(cmd.Context(), cfg, opts)
			if res != nil {
				_ = res.WriteSummary(cmd.OutOrStdout(), opts.DestDir)
			}
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.DestDir, "dest-dir", "must-gather.local", "directory to write into (created if missing)")
	f.DurationVar(&opts.Since, "since", 0, "only logs newer than this duration, e.g. 2h (default: all; $"+mustgather.EnvSince+")")
	f.StringVar(&sinceTime, "since-time", "", "only logs after this RFC 3339 time ($"+mustgather.EnvSinceTime+")")
	f.StringVar(&kubeconfig, "kubeconfig", "", "kubeconfig file (default: in-cluster, then $KUBECONFIG or ~/.kube/config)")
	f.StringVar(&opts.Namespace, "namespace", "", "the stack's namespace (default: found from the MetalLB object, OLM, else metallb-system)")
	f.DurationVar(&opts.ExecTimeout, "exec-timeout", 30*time.Second, "timeout of each command run in a speaker pod")
	return cmd
}
