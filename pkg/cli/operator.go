package cli

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"

	"github.com/lbstack/lbstack/controllers"
	"github.com/lbstack/lbstack/pkg/render"
	"github.com/lbstack/lbstack/pkg/scheme"
	srreconciler "github.com/lbstack/lbstack/pkg/symrouting/reconciler"
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
			return runOperator(ctrl.SetupSignalHandler(), f, cmd.Flags().Changed("cert-mode"))
		},
	}
	f.add(cmd)
	fl := cmd.Flags()
	fl.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", "address of the operator's /metrics (0 disables)")
	fl.BoolVar(&f.leaderElection, "leader-elect", false, "elect a leader (run several replicas safely)")
	fl.BoolVar(&f.serveWebhooks, "serve-webhooks", true, "serve the metallb.io admission and conversion webhooks")
	return cmd
}

// Platform is what the operator found out about the cluster.
type Platform struct {
	OpenShift       bool
	ServiceMonitors bool
}

// DetectPlatform asks discovery whether this is OpenShift (the
// config.openshift.io group is served) and whether the Prometheus Operator's
// ServiceMonitor kind exists. No OpenShift Go module is needed for this.
func DetectPlatform(cfg *rest.Config) (Platform, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return Platform{}, err
	}
	groups, err := dc.ServerGroups()
	if err != nil {
		return Platform{}, fmt.Errorf("discovery: %w", err)
	}
	var p Platform
	for _, g := range groups.Groups {
		switch g.Name {
		case "config.openshift.io":
			p.OpenShift = true
		case "monitoring.coreos.com":
			if rl, err := dc.ServerResourcesForGroupVersion("monitoring.coreos.com/v1"); err == nil {
				for _, r := range rl.APIResources {
					if r.Kind == "ServiceMonitor" {
						p.ServiceMonitors = true
					}
				}
			}
		}
	}
	return p, nil
}

// detectSymmetricRoutingAPIs asks the API server which of the optional
// APIs symmetric routing uses are served.
func detectSymmetricRoutingAPIs(cfg *rest.Config) (srreconciler.APIs, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return srreconciler.APIs{}, err
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return srreconciler.APIs{}, fmt.Errorf("discovery: %w", err)
	}
	return srreconciler.DetectAPIs(mapper)
}

// Images returns the component images from the environment: CONTROLLER_IMAGE
// and SPEAKER_IMAGE default to self (OPERATOR_IMAGE or the operator pod's
// image), FRR_IMAGE to the upstream FRR image.
func Images(getenv func(string) string, self string) (render.Images, error) {
	if v := getenv("OPERATOR_IMAGE"); v != "" {
		self = v
	}
	img := render.Images{Controller: getenv("CONTROLLER_IMAGE"), Speaker: getenv("SPEAKER_IMAGE"), FRR: getenv("FRR_IMAGE")}
	if img.Controller == "" {
		img.Controller = self
	}
	if img.Speaker == "" {
		img.Speaker = self
	}
	if img.Controller == "" || img.Speaker == "" {
		return img, errors.New("no image for the controller and speakers: set OPERATOR_IMAGE (or CONTROLLER_IMAGE and SPEAKER_IMAGE), or run the operator in a pod with POD_NAME set")
	}
	if img.FRR == "" {
		// lbstack's FRR image (the Dockerfile's frr target) is published
		// beside the speaker's.
		img.FRR = render.Companion(img.Speaker, "frr")
	}
	return img, nil
}

// ownImage reads the operator pod's own image (POD_NAME, in ns), so that
// an install that only changes the image (kustomize `images:`) deploys the
// same image for every component.
func ownImage(ctx context.Context, c client.Reader, ns string) string {
	name := os.Getenv("POD_NAME")
	if name == "" || os.Getenv("OPERATOR_IMAGE") != "" {
		return ""
	}
	var pod corev1.Pod
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &pod); err != nil {
		return ""
	}
	for _, c := range pod.Spec.Containers {
		if c.Name == "operator" {
			return c.Image
		}
	}
	if len(pod.Spec.Containers) > 0 {
		return pod.Spec.Containers[0].Image
	}
	return ""
}

func runOperator(ctx context.Context, f operatorFlags, certModeSet bool) error {
	log := ctrl.Log.WithName("operator")
	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	platform, err := DetectPlatform(cfg)
	if err != nil {
		return err
	}
	log.Info("platform", "openshift", platform.OpenShift, "serviceMonitors", platform.ServiceMonitors, "namespace", f.namespace)

	s := scheme.New()
	// Symmetric routing: NMState, OVN-Kubernetes and OpenShift's Network
	// objects are optional; the coordinator watches those served now.
	if err := srreconciler.AddToScheme(s); err != nil {
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
	images, err := Images(os.Getenv, ownImage(ctx, mgr.GetAPIReader(), f.namespace))
	if err != nil {
		return err
	}
	log.Info("component images", "controller", images.Controller, "speaker", images.Speaker, "frr", images.FRR)
	if err := (&controllers.MetalLBReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: s, Namespace: f.namespace,
		Images: images, OpenShift: platform.OpenShift, ServiceMonitors: platform.ServiceMonitors,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&srreconciler.Reconciler{
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
	if platform.OpenShift && !certModeSet {
		// The service CA signs the serving certificate and injects its CA.
		f.certMode = lbwebhook.CertsExternal
		if err := annotateForServiceCA(ctx, cfg, f.webhookFlags); err != nil {
			return err
		}
	}
	return serveWebhooks(ctx, mgr, f.webhookFlags)
}

// serveWebhooks adds the webhook server (and its certificates) to mgr, as
// `lbstack webhook` does on its own manager, and starts mgr.
func serveWebhooks(ctx context.Context, mgr ctrl.Manager, f webhookFlags) error {
	startErr, err := addWebhookServer(ctx, mgr, f)
	if err != nil {
		return err
	}
	return runManager(ctx, mgr, startErr)
}

// Annotations of OpenShift's service CA operator.
const (
	serviceCASecretAnnotation = "service.beta.openshift.io/serving-cert-secret-name"
	serviceCAInjectAnnotation = "service.beta.openshift.io/inject-cabundle"
)

// ServiceCATargets name what OpenShift's service CA must serve and inject.
type ServiceCATargets struct {
	Namespace, Service, Secret     string
	ValidatingWebhookConfiguration string
	ConversionCRDs                 []string
}

func annotateForServiceCA(ctx context.Context, cfg *rest.Config, f webhookFlags) error {
	return AnnotateForServiceCA(ctx, cfg, ServiceCATargets{
		Namespace: f.namespace, Service: f.serviceName, Secret: f.certSecret,
		ValidatingWebhookConfiguration: f.webhookConfig, ConversionCRDs: f.conversionCRDs,
	})
}

// AnnotateForServiceCA asks OpenShift's service CA for the webhook's serving
// certificate (into the Secret the operator pod mounts) and for caBundle
// injection into the webhook configuration and the conversion CRDs.
func AnnotateForServiceCA(ctx context.Context, cfg *rest.Config, t ServiceCATargets) error {
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return err
	}
	type target struct {
		apiVersion, kind, ns, name, key, value string
	}
	targets := []target{{"v1", "Service", t.Namespace, t.Service, serviceCASecretAnnotation, t.Secret}}
	if t.ValidatingWebhookConfiguration != "" {
		targets = append(targets, target{"admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", "", t.ValidatingWebhookConfiguration, serviceCAInjectAnnotation, "true"})
	}
	for _, crd := range t.ConversionCRDs {
		targets = append(targets, target{"apiextensions.k8s.io/v1", "CustomResourceDefinition", "", crd, serviceCAInjectAnnotation, "true"})
	}
	for _, t := range targets {
		u := &unstructured.Unstructured{}
		u.SetAPIVersion(t.apiVersion)
		u.SetKind(t.kind)
		u.SetNamespace(t.ns)
		u.SetName(t.name)
		patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, t.key, t.value))
		pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err := c.Patch(pctx, u, client.RawPatch(types.MergePatchType, patch))
		cancel()
		if err != nil {
			return fmt.Errorf("annotate %s %s for the service CA: %w", t.kind, t.name, err)
		}
	}
	return nil
}
