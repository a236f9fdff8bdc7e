package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/l2"
	"github.com/lbstack/lbstack/pkg/speaker"
)

// speakerFlags are the flags of `lbstack speaker`.
type speakerFlags struct {
	nodeName   string
	namespace  string
	logLevel   string
	kubeconfig string
	bgpBackend string
	healthAddr string
	metrics    string
	pprofAddr  string
	resync     time.Duration
	// metricsPort is MetalLB's --port (the metrics port); when set it
	// overrides --metrics-bind-address.
	metricsPort int
	// lbClass is the spec.loadBalancerClass served; empty serves Services
	// without a class.
	lbClass string
	// mlBindPort is the memberlist port of layer-2 mode (gossip among
	// the speakers, for sub-second failure detection).
	mlBindPort int
	// frrHandoff is the directory shared with the frr-reloader sidecar.
	frrHandoff string
	qps        float32 // --kube-api-qps and --kube-api-burst
	burst      int
	serving    servingFlags
}

func newSpeakerCommand() *cobra.Command {
	var f speakerFlags
	cmd := &cobra.Command{
		Use:   "speaker",
		Short: "Run the per-node speaker: announce service addresses over BGP and in layer 2",
		Long: `Run the speaker of one node: decide which addresses this node announces, to
which BGP peers (--bgp-backend native embeds GoBGP; frr hands the state to the
frr-reloader sidecar; calico runs no BGP session, Calico's nodes announce) and in layer 2 (one node per address, elected with
memberlist; METALLB_ML_* environment), and report in ConfigurationState
speaker-<node>, ServiceBGPStatus and ServiceL2Status. See docs/bgp.md and
docs/layer2.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := setupLogging(f.logLevel); err != nil {
				return err
			}
			ctx, cancel := untilSignal(cmd.Context())
			defer cancel()
			return f.run(ctx)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.nodeName, "node-name", envOr("NODE_NAME", ""), "name of this node (env NODE_NAME)")
	fl.StringVar(&f.namespace, "namespace", envOr("METALLB_NAMESPACE", "metallb-system"), "the stack's namespace (env METALLB_NAMESPACE)")
	fl.StringVar(&f.logLevel, "log-level", "info", "all|debug|info|warn|error|none")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (in-cluster configuration when empty)")
	fl.StringVar(&f.bgpBackend, "bgp-backend", string(v1beta1.BGPTypeNative), "BGP backend: native (embedded GoBGP), frr (FRR sidecar, needed for BFD) or calico (no BGP sessions: Calico announces; layer 2 only)")
	fl.StringVar(&f.healthAddr, "health-probe-bind-address", speaker.DefaultLocalAddr, "loopback address of /healthz, /readyz and "+speaker.DebugStatePath+" (0 disables)")
	fl.StringVar(&f.metrics, "metrics-bind-address", ":7472", "address of the Prometheus /metrics endpoint (0 disables)")
	fl.StringVar(&f.pprofAddr, "pprof-bind-address", "0", `address of Go's /debug/pprof profiles (heap, CPU), to diagnose memory and CPU at scale; "0" (the default) disables it`)
	fl.DurationVar(&f.resync, "resync", time.Minute, "how often the state is recomputed and re-applied even without changes")
	fl.IntVar(&f.metricsPort, "port", 0, "metrics port (MetalLB's flag; overrides --metrics-bind-address with :PORT)")
	fl.StringVar(&f.lbClass, "lb-class", "", "serve only Services with this spec.loadBalancerClass (empty: Services without a class)")
	fl.IntVar(&f.mlBindPort, "ml-bindport", 7946, "memberlist port of layer-2 mode")
	fl.StringVar(&f.frrHandoff, "frr-handoff-dir", "/etc/lbstack-frr", "with --bgp-backend frr: the volume shared with the frr-reloader sidecar")
	fl.Float32Var(&f.qps, "kube-api-qps", 5, "client-side limit of requests per second to the API server (the status objects' writes wait behind it, never the routes); negative: none")
	fl.IntVar(&f.burst, "kube-api-burst", 10, "client-side burst of requests to the API server (with --kube-api-qps > 0)")
	f.serving.add(fl)
	return cmd
}

// options are the speaker's options from the flags and, for layer 2, the
// environment of the pod.
func (f *speakerFlags) options() speaker.Options {
	return speaker.Options{
		NodeName: f.nodeName, Namespace: f.namespace, BGPBackend: v1beta1.BGPType(f.bgpBackend),
		FRRHandoffDir: f.frrHandoff, LBClass: f.lbClass, Resync: f.resync,
		Layer2: l2.OptionsFromEnv(f.mlBindPort, os.Getenv),
	}
}

func (f *speakerFlags) run(ctx context.Context) error {
	opts := f.options()
	if err := opts.Validate(); err != nil {
		return err
	}
	if f.metricsPort > 0 {
		f.metrics = fmt.Sprintf(":%d", f.metricsPort)
	}
	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	cfg.QPS, cfg.Burst = f.qps, f.burst
	metrics, err := f.serving.metricsOptions(f.metrics)
	if err != nil {
		return err
	}
	return speaker.RunProcess(ctx, cfg, speaker.ProcessOptions{Speaker: opts, Metrics: metrics, HealthAddr: f.healthAddr, PprofAddr: f.pprofAddr})
}
