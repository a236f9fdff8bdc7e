package platform

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/pkg/scheme"
)

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

// AnnotateForServiceCA asks OpenShift's service CA for the webhook's serving
// certificate (into the Secret the operator pod mounts) and for caBundle
// injection into the webhook configuration and the conversion CRDs.
func AnnotateForServiceCA(ctx context.Context, cfg *rest.Config, t ServiceCATargets) error {
	c, err := client.New(cfg, client.Options{Scheme: scheme.New()})
	if err != nil {
		return fmt.Errorf("client for the service CA annotations: %w", err)
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
