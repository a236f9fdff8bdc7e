// Package platform owns what the operator finds out about the cluster and
// the pod it runs in (OpenShift or not, the Prometheus Operator's
// ServiceMonitor, its own image) and what it asks of OpenShift: the service
// CA's serving certificate and caBundle injection for the webhooks. No
// OpenShift Go module is needed for any of it.
package platform

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Platform is what the operator found out about the cluster.
type Platform struct {
	OpenShift       bool
	ServiceMonitors bool
}

// Detect asks discovery whether this is OpenShift (the config.openshift.io
// group is served) and whether the Prometheus Operator's ServiceMonitor
// kind exists.
func Detect(cfg *rest.Config) (Platform, error) {
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return Platform{}, fmt.Errorf("discovery client: %w", err)
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

// OwnImage reads the image of the operator pod pod in ns (its "operator"
// container, else its first), so that an install that only changes the
// image (kustomize `images:`) deploys the same image for every component.
// It is empty when pod is, or when the pod cannot be read: the images then
// come from the environment alone (render.ImagesFromEnv says what is missing).
func OwnImage(ctx context.Context, c client.Reader, ns, pod string) string {
	if pod == "" {
		return ""
	}
	var p corev1.Pod
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: pod}, &p); err != nil {
		return ""
	}
	for _, c := range p.Spec.Containers {
		if c.Name == "operator" {
			return c.Image
		}
	}
	if len(p.Spec.Containers) > 0 {
		return p.Spec.Containers[0].Image
	}
	return ""
}

// Served reports whether the API server serves gvk, as mapper knows it:
// a kind it has no match for is not served (an optional API: Calico's,
// NMState's, OVN's), any other failure to find out is an error.
func Served(mapper meta.RESTMapper, gvk schema.GroupVersionKind) (bool, error) {
	_, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	switch {
	case err == nil:
		return true, nil
	case meta.IsNoMatchError(err):
		return false, nil
	default:
		return false, fmt.Errorf("discovering %s: %w", gvk, err)
	}
}
