package controllers

// The operator process: it finds out what the cluster offers
// (pkg/platform), caches what its reconcilers read, runs the MetalLB
// reconciler, the symmetric-routing one (pkg/symrouting/reconciler) and the
// Calico mode's (pkg/calico/reconciler), and
// serves the metallb.io admission and conversion webhooks (pkg/webhook), so
// that nothing is admitted unchecked before a MetalLB object exists.

import (
	"context"
	"errors"
	"fmt"

	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/apiutil"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	calicoreconciler "github.com/lbstack/lbstack/pkg/calico/reconciler"
	"github.com/lbstack/lbstack/pkg/platform"
	"github.com/lbstack/lbstack/pkg/render"
	"github.com/lbstack/lbstack/pkg/scheme"
	srreconciler "github.com/lbstack/lbstack/pkg/symrouting/reconciler"
	"github.com/lbstack/lbstack/pkg/webhook"
)

// OperatorOptions configure the operator process.
type OperatorOptions struct {
	// Namespace is the operator's (and the stack's) namespace.
	Namespace string
	// Metrics serves the operator's /metrics.
	Metrics metricsserver.Options
	// HealthAddr serves /healthz and /readyz.
	HealthAddr string
	// LeaderElection lets several replicas run safely.
	LeaderElection bool
	// Webhooks, when set, is the webhook server the operator runs.
	Webhooks *webhook.ServerOptions
	// CertModeSet says Webhooks.Certs.Mode was chosen; otherwise, on
	// OpenShift, the service CA provides the serving certificate.
	CertModeSet bool
	// Getenv reads the images' environment (see render.ImagesFromEnv) and
	// POD_NAME, the operator's own pod, whose image is the default.
	Getenv func(string) string
}

// RunOperator runs the operator process until ctx ends.
func RunOperator(ctx context.Context, cfg *rest.Config, o OperatorOptions) error {
	log := ctrl.Log.WithName("operator")
	found, err := platform.Detect(cfg)
	if err != nil {
		return err
	}
	log.Info("platform", "openshift", found.OpenShift, "serviceMonitors", found.ServiceMonitors, "namespace", o.Namespace)

	s := scheme.New()
	// Symmetric routing: NMState, OVN-Kubernetes and OpenShift's Network
	// objects are optional; the coordinator watches those served now.
	if err := srreconciler.AddToScheme(s); err != nil {
		return err
	}
	if err := calicoreconciler.AddToScheme(s); err != nil {
		return err
	}
	srAPIs, calicoAPIs, err := detectOptionalAPIs(cfg)
	if err != nil {
		// What was found is used; what could not be asked counts as absent.
		log.Error(err, "discovering the optional APIs (symmetric routing, Calico)")
	}
	log.Info("symmetric routing APIs", "nmstate", srAPIs.NMState, "ovn", srAPIs.OVN,
		"configNetwork", srAPIs.ConfigNetwork, "operatorNetwork", srAPIs.OperatorNetwork)
	log.Info("Calico APIs", "crd.projectcalico.org/v1", calicoAPIs.CRDs, "projectcalico.org/v3", calicoAPIs.V3)
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                  s,
		Metrics:                 o.Metrics,
		HealthProbeBindAddress:  o.HealthAddr,
		LeaderElection:          o.LeaderElection,
		LeaderElectionID:        "lbstack-operator.metallb.io",
		LeaderElectionNamespace: o.Namespace,
		// Everything the operator renders lives in its namespace (or is
		// cluster-scoped): cache only that namespace, except the Services
		// and EgressServices symmetric routing checks.
		Cache: OperatorCacheOptionsWithCalico(o.Namespace, srAPIs, calicoAPIs),
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	self := ""
	if o.Getenv("OPERATOR_IMAGE") == "" {
		self = platform.OwnImage(ctx, mgr.GetAPIReader(), o.Namespace, o.Getenv("POD_NAME"))
	}
	images, err := render.ImagesFromEnv(o.Getenv, self)
	if err != nil {
		return err
	}
	log.Info("component images", "controller", images.Controller, "speaker", images.Speaker, "frr", images.FRR)
	owner, err := platform.OwnDeployment(ctx, mgr.GetAPIReader(), o.Namespace, o.Getenv("POD_NAME"))
	if err != nil {
		log.Info("the MetalLB object owns the rendered objects: the operator's Deployment was not found", "reason", err.Error())
	} else {
		log.Info("the operator's Deployment owns the rendered objects: removing the operator removes the stack", "deployment", owner.Name)
	}
	if err := (&MetalLBReconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: s, Namespace: o.Namespace,
		Images: images, OpenShift: found.OpenShift, ServiceMonitors: found.ServiceMonitors, Owner: owner,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	if err := (&srreconciler.Reconciler{
		Client: mgr.GetClient(), APIReader: mgr.GetAPIReader(), Scheme: s, Namespace: o.Namespace,
		Recorder: mgr.GetEventRecorderFor("lbstack-symmetric-routing"), APIs: srAPIs,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	// Without Calico's CRDs the coordinator watches no Calico kind: with
	// bgpBackend calico it only says, in the MetalLB object's condition,
	// that Calico is missing.
	if err := (&calicoreconciler.Reconciler{
		Client: mgr.GetClient(), Namespace: o.Namespace,
		Recorder: mgr.GetEventRecorderFor("lbstack-calico"), APIs: calicoAPIs,
	}).SetupWithManager(mgr); err != nil {
		return err
	}
	wh := o.Webhooks
	if wh != nil && found.OpenShift && !o.CertModeSet {
		// The service CA signs the serving certificate and injects its CA.
		certs := &wh.Certs
		if err := platform.AnnotateForServiceCA(ctx, cfg, platform.ServiceCATargets{
			Namespace: certs.Namespace, Service: certs.ServiceName, Secret: certs.SecretName,
			ValidatingWebhookConfiguration: certs.ValidatingWebhookConfiguration, ConversionCRDs: certs.ConversionCRDs,
		}); err != nil {
			return err
		}
		external := *wh
		external.Certs.Mode = webhook.CertsExternal
		wh = &external
	}
	return webhook.RunManager(ctx, mgr, wh)
}

// detectOptionalAPIs asks the API server which of the optional APIs
// symmetric routing and the Calico mode use are served.
func detectOptionalAPIs(cfg *rest.Config) (srreconciler.APIs, calicoreconciler.APIs, error) {
	hc, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return srreconciler.APIs{}, calicoreconciler.APIs{}, fmt.Errorf("HTTP client for discovery: %w", err)
	}
	mapper, err := apiutil.NewDynamicRESTMapper(cfg, hc)
	if err != nil {
		return srreconciler.APIs{}, calicoreconciler.APIs{}, fmt.Errorf("discovery: %w", err)
	}
	sr, srErr := srreconciler.DetectAPIs(mapper)
	ca, caErr := calicoreconciler.DetectAPIs(mapper)
	return sr, ca, errors.Join(srErr, caErr)
}
