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

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
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

// OwnDeployment finds the Deployment that runs the operator pod pod in ns
// (pod → its controlling ReplicaSet → that ReplicaSet's controlling
// Deployment) and returns an owner reference to it. The operator makes
// that Deployment the owner of what it renders, so that removing the
// operator (OLM deleting the CSV, which owns the Deployment; `kubectl
// delete -k config/default`) removes the speakers and the controller with
// it. It returns why it found none when pod is empty, when a link is
// missing or cannot be read: the operator then owns what it renders by
// the MetalLB object alone.
func OwnDeployment(ctx context.Context, c client.Reader, ns, pod string) (*metav1.OwnerReference, error) {
	if pod == "" {
		return nil, fmt.Errorf("POD_NAME is not set")
	}
	var p corev1.Pod
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: pod}, &p); err != nil {
		return nil, fmt.Errorf("pod %s/%s: %w", ns, pod, err)
	}
	rsRef := metav1.GetControllerOf(&p)
	if rsRef == nil || rsRef.Kind != "ReplicaSet" {
		return nil, fmt.Errorf("pod %s/%s: not controlled by a ReplicaSet", ns, pod)
	}
	var rs appsv1.ReplicaSet
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: rsRef.Name}, &rs); err != nil {
		return nil, fmt.Errorf("ReplicaSet %s/%s: %w", ns, rsRef.Name, err)
	}
	dRef := metav1.GetControllerOf(&rs)
	if dRef == nil || dRef.Kind != "Deployment" {
		return nil, fmt.Errorf("ReplicaSet %s/%s: not controlled by a Deployment", ns, rs.Name)
	}
	var d appsv1.Deployment
	if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: dRef.Name}, &d); err != nil {
		return nil, fmt.Errorf("Deployment %s/%s: %w", ns, dRef.Name, err)
	}
	if d.UID != dRef.UID {
		return nil, fmt.Errorf("Deployment %s/%s: replaced since the ReplicaSet was made", ns, d.Name)
	}
	return &metav1.OwnerReference{
		APIVersion: appsv1.SchemeGroupVersion.String(), Kind: "Deployment",
		Name: d.Name, UID: d.UID, Controller: ptrTo(true),
	}, nil
}

func ptrTo[T any](v T) *T { return &v }

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
