package controllers

import (
	"maps"
	"strings"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	calicoreconciler "github.com/lbstack/lbstack/pkg/calico/reconciler"
	"github.com/lbstack/lbstack/pkg/pagedlist"
	"github.com/lbstack/lbstack/pkg/render"
	srreconciler "github.com/lbstack/lbstack/pkg/symrouting/reconciler"
)

// OperatorCacheOptions is what the operator's manager caches, and in what
// form. Namespaced objects: its own namespace only, but Services and
// EgressServices everywhere (symmetric routing checks them). Cluster-wide:
// Nodes and Namespaces reduced to what anything here reads (names, labels,
// annotations, node addresses), and only the ClusterRoles and bindings it
// renders. Nothing keeps managedFields. The admission and conversion
// webhooks the operator serves die with it, so its memory must not grow
// with what the cluster holds beyond need (make bench measures it with
// 10,000 Services: BenchmarkOperatorCache).
func OperatorCacheOptions(namespace string, apis srreconciler.APIs) cache.Options {
	return OperatorCacheOptionsWithCalico(namespace, apis, calicoreconciler.APIs{})
}

// OperatorCacheOptionsWithCalico is OperatorCacheOptions plus, when
// Calico's CRDs are served, Calico's default BGPConfiguration with its
// managedFields (what the Calico coordinator owns of it).
func OperatorCacheOptionsWithCalico(namespace string, apis srreconciler.APIs, calicoAPIs calicoreconciler.APIs) cache.Options {
	by := srreconciler.CacheObjects(apis)
	if calicoAPIs.CRDs {
		maps.Copy(by, calicoreconciler.CacheObjects())
	}
	for o, b := range by {
		if _, ok := o.(*corev1.Service); ok {
			b.Transform = slimService
			by[o] = b
		}
	}
	by[&corev1.Namespace{}] = cache.ByObject{Transform: slimNamespace}
	by[&corev1.Node{}] = cache.ByObject{Transform: slimNode}
	owned := labels.SelectorFromSet(labels.Set{render.ManagedByLabel: render.ManagedByValue})
	by[&rbacv1.ClusterRole{}] = cache.ByObject{Label: owned}
	by[&rbacv1.ClusterRoleBinding{}] = cache.ByObject{Label: owned}
	// First lists in pages, each slimmed as it arrives (pkg/pagedlist).
	return pagedlist.InPages(cache.Options{
		DefaultNamespaces: map[string]cache.Config{namespace: {}},
		DefaultTransform:  cache.TransformStripManagedFields(),
		ByObject:          by,
	})
}

// slimService keeps what the symmetric-routing checks read of a Service:
// its spec and status, labels, and MetalLB's annotations (address pool,
// addresses, sharing), not the rest (kubectl's last-applied configuration
// alone often outweighs the Service).
func slimService(o any) (any, error) {
	svc, ok := o.(*corev1.Service)
	if !ok {
		return o, nil
	}
	m := slimMeta(svc.ObjectMeta)
	m.Namespace, m.Annotations = svc.Namespace, nil
	for k, v := range svc.Annotations {
		if strings.HasPrefix(k, "metallb.io/") || strings.HasPrefix(k, "metallb.universe.tf/") {
			if m.Annotations == nil {
				m.Annotations = map[string]string{}
			}
			m.Annotations[k] = v
		}
	}
	return &corev1.Service{TypeMeta: svc.TypeMeta, ObjectMeta: m, Spec: svc.Spec, Status: svc.Status}, nil
}

// slimNamespace keeps a Namespace's identity, labels and annotations.
func slimNamespace(o any) (any, error) {
	ns, ok := o.(*corev1.Namespace)
	if !ok {
		return o, nil
	}
	return &corev1.Namespace{TypeMeta: ns.TypeMeta, ObjectMeta: slimMeta(ns.ObjectMeta), Status: corev1.NamespaceStatus{Phase: ns.Status.Phase}}, nil
}

// slimNode keeps a Node's identity, labels, annotations (OVN's masquerade
// subnet), addresses and taints: not its images, conditions or capacity.
func slimNode(o any) (any, error) {
	n, ok := o.(*corev1.Node)
	if !ok {
		return o, nil
	}
	return &corev1.Node{TypeMeta: n.TypeMeta, ObjectMeta: slimMeta(n.ObjectMeta),
		Spec:   corev1.NodeSpec{Taints: n.Spec.Taints, PodCIDRs: n.Spec.PodCIDRs, PodCIDR: n.Spec.PodCIDR},
		Status: corev1.NodeStatus{Addresses: n.Status.Addresses}}, nil
}

func slimMeta(m metav1.ObjectMeta) metav1.ObjectMeta {
	return metav1.ObjectMeta{Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion, Generation: m.Generation,
		CreationTimestamp: m.CreationTimestamp, DeletionTimestamp: m.DeletionTimestamp, Labels: m.Labels, Annotations: m.Annotations}
}
