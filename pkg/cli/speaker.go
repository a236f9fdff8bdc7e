package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/l2"
	"github.com/lbstack/lbstack/pkg/scheme"
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
	serving    servingFlags
}

func newSpeakerCommand() *cobra.Command {
	var f speakerFlags
	cmd := &cobra.Command{
		Use:   "speaker",
		Short: "Run the per-node speaker: announce service addresses over BGP and in layer 2",
		Long: `Run the speaker of one node: read the metallb.io configuration, the LoadBalancer
Services, their EndpointSlices and the node, decide which addresses this node
announces to which BGP peers (pkg/speaker), and make the BGP backend announce them.
In layer 2 the speakers elect one node per address (pkg/l2/election, the same
answer on every node), learn who is alive from memberlist (key from
METALLB_ML_SECRET_KEY_PATH, address METALLB_ML_BIND_ADDR:--ml-bindport), and
the elected node answers ARP/NDP for it (pkg/l2). Reports the configuration's
state in ConfigurationState speaker-<node>, and each announced Service in a
ServiceBGPStatus or ServiceL2Status. --bgp-backend native embeds GoBGP;
--bgp-backend frr hands the state to the frr-reloader sidecar next to FRR.`,
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
	fl.StringVar(&f.bgpBackend, "bgp-backend", string(v1beta1.BGPTypeNative), "BGP backend: native (embedded GoBGP) or frr (FRR sidecar, needed for BFD)")
	fl.StringVar(&f.healthAddr, "health-probe-bind-address", speaker.DefaultLocalAddr, "loopback address of /healthz, /readyz and "+speaker.DebugStatePath+" (0 disables)")
	fl.StringVar(&f.metrics, "metrics-bind-address", ":7472", "address of the Prometheus /metrics endpoint (0 disables)")
	fl.DurationVar(&f.resync, "resync", time.Minute, "how often the state is recomputed and re-applied even without changes")
	fl.IntVar(&f.metricsPort, "port", 0, "metrics port (MetalLB's flag; overrides --metrics-bind-address with :PORT)")
	fl.StringVar(&f.lbClass, "lb-class", "", "serve only Services with this spec.loadBalancerClass (empty: Services without a class)")
	fl.IntVar(&f.mlBindPort, "ml-bindport", 7946, "memberlist port of layer-2 mode")
	fl.StringVar(&f.frrHandoff, "frr-handoff-dir", "/etc/lbstack-frr", "with --bgp-backend frr: the volume shared with the frr-reloader sidecar")
	f.serving.add(fl)
	return cmd
}

// options are the speaker's options from the flags and, for layer 2, the
// environment of the pod.
func (f *speakerFlags) options() speaker.Options {
	return speaker.Options{
		NodeName: f.nodeName, Namespace: f.namespace, BGPBackend: v1beta1.BGPType(f.bgpBackend),
		FRRHandoffDir: f.frrHandoff, LBClass: f.lbClass, Resync: f.resync,
		Layer2: l2.Options{
			BindAddr:  os.Getenv("METALLB_ML_BIND_ADDR"),
			Port:      f.mlBindPort,
			KeyPath:   os.Getenv("METALLB_ML_SECRET_KEY_PATH"),
			PodLabels: envOr("METALLB_ML_LABELS", "app=lbstack,component=speaker"),
		},
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
	metrics, err := f.serving.metricsOptions(f.metrics)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme.New(),
		Metrics: metrics,
		Cache:   speaker.CacheOptions(f.namespace),
		// Health and debug have their own loopback server (below).
		HealthProbeBindAddress: "0",
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	sp, err := speaker.Setup(mgr, opts)
	if err != nil {
		return err
	}
	if f.healthAddr != "0" && f.healthAddr != "" {
		local, err := newLocalServer(f.healthAddr)
		if err != nil {
			return fmt.Errorf("--health-probe-bind-address %w", err)
		}
		for name, check := range sp.LiveChecks() {
			local.check("/healthz", name, check)
		}
		for name, check := range sp.ReadyChecks() {
			local.check("/readyz", name, check)
		}
		local.handle(speaker.DebugStatePath, sp.DebugState())
		if err := mgr.Add(local); err != nil {
			return err
		}
	}
	return mgr.Start(ctx)
}
