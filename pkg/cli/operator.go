package cli

import (
	"context"
	"fmt"
	"net/http"
	"os"

	"github.com/spf13/cobra"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/lbstack/lbstack/controllers"
	"github.com/lbstack/lbstack/pkg/platform"
	"github.com/lbstack/lbstack/pkg/render"
	"github.com/lbstack/lbstack/pkg/scheme"
	lbwebhook "github.com/lbstack/lbstack/pkg/webhook"
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
		Long: `Run the operator: render the controller Deployment, the speaker DaemonSet (with
the FRR sidecar layout for bgpBackend frr), their RBAC, NetworkPolicies and
ServiceMonitors from the MetalLB object, keep them as rendered, and report
status. The operator also serves the metallb.io admission and conversion
webhooks, so nothing is admitted unchecked before a MetalLB object exists.

Images: CONTROLLER_IMAGE, SPEAKER_IMAGE (default OPERATOR_IMAGE, else the
operator pod's own image) and FRR_IMAGE (default: lbstack's FRR image beside the
speaker's, REPOSITORY-frr:TAG, the Dockerfile's frr target).
The namespace defaults to $OPERATOR_NAMESPACE, then $METALLB_NAMESPACE.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("namespace") {
				if ns := os.Getenv("OPERATOR_NAMESPACE"); ns != "" {
					f.namespace = ns
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

// detectSymmetricRoutingAPIs asks the API server which of the optional
// APIs symmetric routing uses are served.
func detectSymmetricRoutingAPIs(cfg *rest.Config) (controllers.SymmetricRoutingAPIs, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return controllers.SymmetricRoutingAPIs{}, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return controllers.SymmetricRoutingAPIs{}, fmt.Errorf("discovery: %w", err)
	}
	return controllers.DetectSymmetricRoutingAPIs(mapper)
}

func runOperator(ctx context.Context, f operatorFlags, certModeSet bool) error {
	log := ctrl.Log.WithName("operator")
	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	found, err := platform.Detect(cfg)
	if err != nil {
		return err
	}
	log.Info("platform", "openshift", found.OpenShift, "serviceMonitors", found.ServiceMonitors, "namespace", f.namespace)

	s := scheme.New()
	// Symmetric routing: NMState, OVN-Kubernetes and OpenShift's Network
	// objects are optional; the coordinator watches those served now.
	if err := controllers.AddSymmetricRoutingToScheme(s); err != nil {
		return err
	}
	srAPIs, err := detectSymmetricRoutingAPIs(cfg)
	if err != nil {
		// What was found is used; what could not be asked counts as absent.
		log.Error(err, "discovering the APIs symmetric routing uses")
	}
	log.Info("symmetric routing APIs", "nmstate", srAPIs.NMState, "ovn", srAPIs.OVN,
		"configNetwork", srAPIs.ConfigNetwork, "operatorNetwork", srAPIs.OperatorNetwork)
	metrics, err := f.serving.metricsOptions(f.metricsAddr)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  s,
		Metrics:                 metrics,
		HealthProbeBindAddress:  f.healthAddr,
		LeaderElection:          f.leaderElection,
		LeaderElectionID:        "lbstack-operator.metallb.io",
		LeaderElectionNamespace: f.namespace,
		// Everything the operator renders lives in its namespace (or is
		// cluster-scoped): cache only that namespace, except the Services
		// and EgressServices symmetric routing checks.
		Cache: controllers.OperatorCacheOptions(f.namespace, srAPIs),
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	self := ""
	if os.Getenv("OPERATOR_IMAGE") == "" {
		self = platform.OwnImage(ctx, mgr.GetAPIReader(), f.namespace, os.Getenv("POD_NAME"))
	}
	images, err := render.ImagesFromEnv(os.Getenv, self)
	if err != nil {
		return err
	}
	log.Info("component images", "controller", images.Controller, "speaker", images.Speaker, "frr", images.FRR)
	if err := (&controllers.MetalLBReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: s, Namespace: f.namespace,
		Images: images, OpenShift: found.OpenShift, ServiceMonitors: found.ServiceMonitors,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&controllers.SymmetricRoutingReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: s, Namespace: f.namespace,
		Recorder: mgr.GetEventRecorderFor("lbstack-symmetric-routing"), APIs: srAPIs,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := mgr.AddHealthzCheck("ping", func(*http.Request) error { return nil }); err != nil {
		return err
	}
	if !f.serveWebhooks {
		if err := mgr.AddReadyzCheck("ping", func(*http.Request) error { return nil }); err != nil {
			return err
		}
		return mgr.Start(ctx)
	}
	if found.OpenShift && !certModeSet {
		// The service CA signs the serving certificate and injects its CA.
		f.certMode = lbwebhook.CertsExternal
		if err := platform.AnnotateForServiceCA(ctx, cfg, platform.ServiceCATargets{
			Namespace: f.namespace, Service: f.serviceName, Secret: f.certSecret,
			ValidatingWebhookConfiguration: f.webhookConfig, ConversionCRDs: f.conversionCRDs,
		}); err != nil {
			return err
		}
	}
	startErr, err := addWebhookServer(ctx, mgr, f.webhookFlags)
	if err != nil {
		return err
	}
	return lbwebhook.Run(ctx, mgr, startErr)
}
