package controllers

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/bindata"
	"github.com/lbstack/lbstack/pkg/ownedapply"
	"github.com/lbstack/lbstack/pkg/render"
)

const (
	// FieldManager owns every field the operator applies.
	FieldManager = render.ManagedByValue
	// Finalizer holds the MetalLB object until the cluster-scoped objects
	// rendered for it are deleted (owner references cannot reach them).
	Finalizer = "metallb.io/lbstack-cleanup"
	// HashAnnotation carries the hash of the object as last applied; an
	// object whose hash matches and whose applied fields are all still in
	// place is not applied again (see pkg/ownedapply).
	HashAnnotation = "lbstack.metallb.io/applied-hash"

	memberlistSecret = "lbstack-memberlist"
	memberlistKey    = "secretkey"
	controllerName   = "lbstack-controller"
	speakerName      = "lbstack-speaker"
)

var (
	gvkServiceMonitor = schema.GroupVersionKind{Group: "monitoring.coreos.com", Version: "v1", Kind: "ServiceMonitor"}
	// prunable are the kinds the templates render; objects of these kinds
	// labelled for a MetalLB object and no longer rendered are deleted.
	prunable = []schema.GroupVersionKind{
		appsv1.SchemeGroupVersion.WithKind("Deployment"),
		appsv1.SchemeGroupVersion.WithKind("DaemonSet"),
		corev1.SchemeGroupVersion.WithKind("ServiceAccount"),
		corev1.SchemeGroupVersion.WithKind("Secret"),
		corev1.SchemeGroupVersion.WithKind("ConfigMap"),
		corev1.SchemeGroupVersion.WithKind("Service"),
		rbacv1.SchemeGroupVersion.WithKind("Role"),
		rbacv1.SchemeGroupVersion.WithKind("RoleBinding"),
		rbacv1.SchemeGroupVersion.WithKind("ClusterRole"),
		rbacv1.SchemeGroupVersion.WithKind("ClusterRoleBinding"),
		networkingv1.SchemeGroupVersion.WithKind("NetworkPolicy"),
	}
)

// MetalLBReconciler renders the stack for the MetalLB object and keeps it.
type MetalLBReconciler struct {
	// Client reads (through the manager's cache) and writes.
	Client client.Client
	// APIReader reads around the cache where a stale read would cause a
	// write (the memberlist key).
	APIReader client.Reader
	Scheme    *runtime.Scheme
	// Namespace is the operator's namespace; MetalLB objects elsewhere are
	// refused at admission and ignored here.
	Namespace string
	// Images of the components.
	Images render.Images
	// OpenShift renders the SCC bindings.
	OpenShift bool
	// ServiceMonitors renders ServiceMonitors (the CRD is served).
	ServiceMonitors bool
	// Templates; bindata.FS when nil.
	Templates fs.FS
	// Owner, when set, owns every namespaced object rendered: the
	// operator's own Deployment (platform.OwnDeployment), so that removing
	// the operator (OLM deleting its CSV, `kubectl delete -k`) removes the
	// speakers and the controller with it. Unset (the operator run outside
	// a Deployment), the MetalLB object owns them. Either way the MetalLB
	// object's deletion removes them (cleanup), and every object carries
	// the owner label the watches map back by.
	Owner *metav1.OwnerReference
}

// SetupWithManager watches the MetalLB objects and everything rendered
// for them: an edit or deletion of an owned object triggers a reconcile
// that repairs it.
func (r *MetalLBReconciler) SetupWithManager(mgr ctrl.Manager) error {
	managed := builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
		return o.GetLabels()[render.ManagedByLabel] == render.ManagedByValue
	}))
	b := ctrl.NewControllerManagedBy(mgr).
		Named("metallb").
		For(&v1beta1.MetalLB{}).
		// Every rendered object carries its MetalLB object in a label;
		// owner references may name the operator's Deployment instead
		// (Owner), and cluster-scoped objects carry none: map them all
		// back by the label.
		Watches(&appsv1.Deployment{}, byOwnerLabel, managed).
		Watches(&appsv1.DaemonSet{}, byOwnerLabel, managed).
		Watches(&corev1.ServiceAccount{}, byOwnerLabel, managed).
		Watches(&corev1.Secret{}, byOwnerLabel, managed).
		Watches(&corev1.ConfigMap{}, byOwnerLabel, managed).
		Watches(&corev1.Service{}, byOwnerLabel, managed).
		Watches(&rbacv1.Role{}, byOwnerLabel, managed).
		Watches(&rbacv1.RoleBinding{}, byOwnerLabel, managed).
		Watches(&networkingv1.NetworkPolicy{}, byOwnerLabel, managed).
		Watches(&rbacv1.ClusterRole{}, byOwnerLabel, managed).
		Watches(&rbacv1.ClusterRoleBinding{}, byOwnerLabel, managed).
		// The stack's namespace: its Pod Security labels decide whether
		// speakers may run (see podSecurityProblem).
		Watches(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(r.metalLBsOf))
	if r.ServiceMonitors {
		sm := &unstructured.Unstructured{}
		sm.SetGroupVersionKind(gvkServiceMonitor)
		b = b.Watches(sm, byOwnerLabel, managed)
	}
	return b.Complete(r)
}

// metalLBsOf maps the stack's Namespace to its MetalLB objects.
func (r *MetalLBReconciler) metalLBsOf(ctx context.Context, o client.Object) []reconcile.Request {
	if o.GetName() != r.Namespace {
		return nil
	}
	var l v1beta1.MetalLBList
	if err := r.Client.List(ctx, &l, client.InNamespace(r.Namespace)); err != nil {
		return nil
	}
	out := make([]reconcile.Request, 0, len(l.Items))
	for _, m := range l.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: m.Namespace, Name: m.Name}})
	}
	return out
}

var byOwnerLabel = handler.EnqueueRequestsFromMapFunc(ownerFromLabel)

func ownerFromLabel(_ context.Context, o client.Object) []reconcile.Request {
	ns, name, ok := strings.Cut(o.GetLabels()[render.OwnerLabel], ".")
	if !ok {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: ns, Name: name}}}
}

// Reconcile renders the stack for one MetalLB object, applies what changed,
// prunes what is no longer rendered and reports status.
func (r *MetalLBReconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := logf.FromContext(ctx)
	var ml v1beta1.MetalLB
	if err := r.Client.Get(ctx, req.NamespacedName, &ml); err != nil {
		return reconcile.Result{}, client.IgnoreNotFound(err)
	}
	if ml.Namespace != r.Namespace {
		// Admission refuses these; one created while the webhook was
		// down is left alone rather than fought over.
		log.Info("ignoring a MetalLB object outside the operator's namespace", "namespace", r.Namespace)
		return reconcile.Result{}, nil
	}
	if !ml.DeletionTimestamp.IsZero() {
		return reconcile.Result{}, r.cleanup(ctx, &ml)
	}
	if !controllerutil.ContainsFinalizer(&ml, Finalizer) {
		patch := client.MergeFrom(ml.DeepCopy())
		controllerutil.AddFinalizer(&ml, Finalizer)
		if err := r.Client.Patch(ctx, &ml, patch); err != nil {
			return reconcile.Result{}, err
		}
	}

	st := status{}
	applyErr := r.sync(ctx, &ml, &st)
	if applyErr != nil {
		st.degraded("ApplyFailed", fmt.Sprintf("applying the rendered objects failed: %v; the operator retries with back-off (check the operator's RBAC and logs)", applyErr))
	}
	if err := r.writeStatus(ctx, &ml, st); err != nil {
		return reconcile.Result{}, errors.Join(applyErr, err)
	}
	return reconcile.Result{}, applyErr
}

// sync renders, applies, prunes and reads the rollout state into st.
func (r *MetalLBReconciler) sync(ctx context.Context, ml *v1beta1.MetalLB, st *status) error {
	backend := ml.Spec.BGPType
	if backend == "" {
		backend = v1beta1.BGPTypeFRR
	}
	if backend != v1beta1.BGPTypeNative && backend != v1beta1.BGPTypeFRR && backend != v1beta1.BGPTypeCalico {
		st.unsupported = fmt.Sprintf("spec.bgpBackend %q is not supported by lbstack; set it to \"native\" (embedded GoBGP), \"frr\" (FRR sidecar, needed for BFD and VRFs) or \"calico\" (Calico's nodes announce)", backend)
		return nil
	}
	key, err := r.memberlistKey(ctx, ml.Namespace)
	if err != nil {
		return err
	}
	p := ParamsFor(ml, r.Images, r.OpenShift, r.ServiceMonitors, key)
	fsys := r.Templates
	if fsys == nil {
		fsys = bindata.FS
	}
	objs, err := render.Render(fsys, p)
	if err != nil {
		return err
	}
	want := map[string]bool{}
	var errs []error
	for _, o := range objs {
		want[ownedapply.Key(o.GroupVersionKind(), o.GetNamespace(), o.GetName())] = true
		if o.GetNamespace() != "" {
			if r.Owner != nil {
				o.SetOwnerReferences([]metav1.OwnerReference{*r.Owner})
			} else if err := controllerutil.SetControllerReference(ml, o, r.Scheme); err != nil {
				return err
			}
		}
		if err := r.apply(ctx, o); err != nil {
			errs = append(errs, fmt.Errorf("%s %s: %w", o.GetKind(), o.GetName(), err))
		}
	}
	if err := r.prune(ctx, ml, want); err != nil {
		errs = append(errs, err)
	}
	r.rollout(ctx, ml.Namespace, st)
	return errors.Join(errs...)
}

// ParamsFor turns a MetalLB object into render parameters.
func ParamsFor(ml *v1beta1.MetalLB, images render.Images, openShift, serviceMonitors bool, memberlistKey string) render.Params {
	backend := string(ml.Spec.BGPType)
	if backend == "" {
		backend = string(v1beta1.BGPTypeFRR)
	}
	level := string(ml.Spec.LogLevel)
	if level == "" {
		level = string(v1beta1.LogLevelInfo)
	}
	comp := func(ns map[string]string, tol []corev1.Toleration, c *v1beta1.Config) render.Component {
		out := render.Component{NodeSelector: ns, Tolerations: tol}
		if c != nil {
			out.PriorityClassName = c.PriorityClassName
			out.RuntimeClassName = c.RuntimeClassName
			out.Affinity = c.Affinity
			out.Annotations = c.Annotations
			out.Resources = c.Resources
		}
		return out
	}
	return render.Params{
		Namespace:           ml.Namespace,
		OwnerName:           ml.Name,
		Images:              images,
		LogLevel:            level,
		LoadBalancerClass:   ml.Spec.LoadBalancerClass,
		BGPBackend:          backend,
		OpenShift:           openShift,
		ServiceMonitors:     serviceMonitors,
		MemberlistSecretKey: memberlistKey,
		Controller:          comp(ml.Spec.ControllerNodeSelector, ml.Spec.ControllerTolerations, ml.Spec.ControllerConfig),
		Speaker:             comp(ml.Spec.NodeSelector, ml.Spec.SpeakerTolerations, ml.Spec.SpeakerConfig),
	}
}

// memberlistKey returns the key in the memberlist Secret, or a new random
// one when there is none. The cache is checked first; a miss is confirmed
// against the API server so a lagging cache never rotates the key.
func (r *MetalLBReconciler) memberlistKey(ctx context.Context, ns string) (string, error) {
	key := types.NamespacedName{Namespace: ns, Name: memberlistSecret}
	var s corev1.Secret
	err := r.Client.Get(ctx, key, &s)
	if apierrors.IsNotFound(err) && r.APIReader != nil {
		err = r.APIReader.Get(ctx, key, &s)
	}
	switch {
	case err == nil && len(s.Data[memberlistKey]) > 0:
		return string(s.Data[memberlistKey]), nil
	case err == nil || apierrors.IsNotFound(err):
		b := make([]byte, 128)
		if _, err := rand.Read(b); err != nil {
			return "", err
		}
		return base64.StdEncoding.EncodeToString(b), nil
	default:
		return "", err
	}
}

// apply server-side applies o unless the live object already carries it
// (see pkg/ownedapply: a no-op apply is still a write request and a
// managedFields round trip, so the steady state must not apply at all).
func (r *MetalLBReconciler) apply(ctx context.Context, o *unstructured.Unstructured) error {
	a := ownedapply.Applier{Client: r.Client, Scheme: r.Scheme, HashAnnotation: HashAnnotation, FieldManager: FieldManager}
	return a.ServerSideApply(ctx, o)
}

// prune deletes objects labelled for ml that the current spec no longer
// renders.
func (r *MetalLBReconciler) prune(ctx context.Context, ml *v1beta1.MetalLB, want map[string]bool) error {
	var errs []error
	for _, gvk := range r.renderedKinds() {
		items, err := r.listOwned(ctx, gvk, ml)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, o := range items {
			if want[ownedapply.Key(gvk, o.GetNamespace(), o.GetName())] {
				continue
			}
			logf.FromContext(ctx).Info("pruning an object no longer rendered", "kind", gvk.Kind, "name", o.GetName())
			if err := r.Client.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("prune %s %s: %w", gvk.Kind, o.GetName(), err))
			}
		}
	}
	return errors.Join(errs...)
}

// renderedKinds are the kinds the templates may render: prunable, and
// ServiceMonitors where their CRD is served.
func (r *MetalLBReconciler) renderedKinds() []schema.GroupVersionKind {
	if !r.ServiceMonitors {
		return prunable
	}
	return append(prunable[:len(prunable):len(prunable)], gvkServiceMonitor)
}

// listOwned lists the objects of one kind labelled for ml (in its
// namespace for namespaced kinds).
func (r *MetalLBReconciler) listOwned(ctx context.Context, gvk schema.GroupVersionKind, ml *v1beta1.MetalLB) ([]client.Object, error) {
	listGVK := gvk.GroupVersion().WithKind(gvk.Kind + "List")
	var list client.ObjectList
	if l, err := r.Scheme.New(listGVK); err == nil {
		list = l.(client.ObjectList)
	} else {
		u := &unstructured.UnstructuredList{}
		u.SetGroupVersionKind(listGVK)
		list = u
	}
	opts := []client.ListOption{client.MatchingLabels{
		render.ManagedByLabel: render.ManagedByValue,
		render.OwnerLabel:     render.OwnerLabelValue(ml.Namespace, ml.Name),
	}}
	if !clusterScoped(gvk) {
		opts = append(opts, client.InNamespace(ml.Namespace))
	}
	if err := r.Client.List(ctx, list, opts...); err != nil {
		if meta.IsNoMatchError(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("list %s: %w", gvk.Kind, err)
	}
	var out []client.Object
	err := meta.EachListItem(list, func(o runtime.Object) error {
		out = append(out, o.(client.Object))
		return nil
	})
	return out, err
}

func clusterScoped(gvk schema.GroupVersionKind) bool {
	return gvk.Group == rbacv1.GroupName && (gvk.Kind == "ClusterRole" || gvk.Kind == "ClusterRoleBinding")
}

// cleanup deletes every object rendered for ml and releases the
// finalizer. Namespaced objects owned by ml would go with it anyway; those
// owned by the operator's Deployment (Owner) and the cluster-scoped ones
// would not.
func (r *MetalLBReconciler) cleanup(ctx context.Context, ml *v1beta1.MetalLB) error {
	if !controllerutil.ContainsFinalizer(ml, Finalizer) {
		return nil
	}
	var errs []error
	for _, gvk := range r.renderedKinds() {
		items, err := r.listOwned(ctx, gvk, ml)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, o := range items {
			if err := r.Client.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
				errs = append(errs, fmt.Errorf("delete %s %s: %w", gvk.Kind, o.GetName(), err))
			}
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	patch := client.MergeFrom(ml.DeepCopy())
	controllerutil.RemoveFinalizer(ml, Finalizer)
	return r.Client.Patch(ctx, ml, patch)
}

// status collects what the conditions are computed from.
type status struct {
	unsupported                     string
	degradedReason, degradedMessage string
	controller                      *appsv1.Deployment
	speaker                         *appsv1.DaemonSet
	// podSecurity says why the namespace's Pod Security admission refuses
	// the speakers; empty when it does not.
	podSecurity string
}

// Pod Security admission's enforce label, and the level the speakers need
// (host network, a host port, NET_RAW, root).
const (
	podSecurityEnforceLabel = "pod-security.kubernetes.io/enforce"
	podSecurityPrivileged   = "privileged"
)

// podSecurityProblem reports why the labels of the stack's namespace make
// Pod Security admission refuse the speaker pods, or "".
func podSecurityProblem(ns string, labels map[string]string) string {
	level, set := labels[podSecurityEnforceLabel]
	if !set || level == podSecurityPrivileged {
		return ""
	}
	return fmt.Sprintf("namespace %s enforces the Pod Security level %q (label %s), which refuses the speaker pods: they need host networking and NET_RAW, which only %q allows; "+
		"run `kubectl label namespace %s %s=%s --overwrite` (see docs/install.md)", ns, level, podSecurityEnforceLabel, podSecurityPrivileged, ns, podSecurityEnforceLabel, podSecurityPrivileged)
}

func (s *status) degraded(reason, msg string) {
	s.degradedReason, s.degradedMessage = reason, msg
}

func (r *MetalLBReconciler) rollout(ctx context.Context, ns string, st *status) {
	var nsObj corev1.Namespace
	if err := r.Client.Get(ctx, types.NamespacedName{Name: ns}, &nsObj); err == nil {
		st.podSecurity = podSecurityProblem(ns, nsObj.Labels)
	}
	var d appsv1.Deployment
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: controllerName}, &d); err == nil {
		st.controller = &d
	}
	var ds appsv1.DaemonSet
	if err := r.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: speakerName}, &ds); err == nil {
		st.speaker = &ds
	}
}

// Conditions computes the four conditions from the collected state.
func (s status) conditions(generation int64) []metav1.Condition {
	cond := func(t string, ok bool, reason, msg string) metav1.Condition {
		st := metav1.ConditionFalse
		if ok {
			st = metav1.ConditionTrue
		}
		return metav1.Condition{Type: t, Status: st, Reason: reason, Message: msg, ObservedGeneration: generation}
	}
	if s.unsupported != "" {
		return []metav1.Condition{
			cond(v1beta1.ConditionAvailable, false, "UnsupportedBGPBackend", s.unsupported),
			cond(v1beta1.ConditionProgressing, false, "UnsupportedBGPBackend", s.unsupported),
			cond(v1beta1.ConditionDegraded, true, "UnsupportedBGPBackend", s.unsupported),
			cond(v1beta1.ConditionUpgradeable, true, "AsExpected", "nothing blocks an operator upgrade"),
		}
	}
	var waiting []string
	available := true
	if d := s.controller; d == nil {
		waiting = append(waiting, "the controller Deployment does not exist yet")
		available = false
	} else {
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		if d.Status.AvailableReplicas < 1 {
			available = false
		}
		if d.Status.ObservedGeneration < d.Generation || d.Status.UpdatedReplicas < want || d.Status.AvailableReplicas < want || d.Status.Replicas > want {
			waiting = append(waiting, fmt.Sprintf("controller Deployment %s: %d of %d pods updated and available (kubectl -n %s describe deployment %s)",
				d.Name, min(d.Status.UpdatedReplicas, d.Status.AvailableReplicas), want, d.Namespace, d.Name))
		}
	}
	noNodes := false
	if ds := s.speaker; ds == nil {
		waiting = append(waiting, "the speaker DaemonSet does not exist yet")
		available = false
	} else {
		st := ds.Status
		if st.ObservedGeneration >= ds.Generation && st.DesiredNumberScheduled == 0 {
			noNodes = true
			available = false
		} else {
			if st.NumberAvailable < st.DesiredNumberScheduled || st.DesiredNumberScheduled == 0 {
				available = false
			}
			if st.ObservedGeneration < ds.Generation || st.UpdatedNumberScheduled < st.DesiredNumberScheduled || st.NumberAvailable < st.DesiredNumberScheduled {
				waiting = append(waiting, fmt.Sprintf("speaker DaemonSet %s: %d of %d pods updated, %d available (kubectl -n %s get pods -l component=speaker -o wide)",
					ds.Name, st.UpdatedNumberScheduled, st.DesiredNumberScheduled, st.NumberAvailable, ds.Namespace))
			}
		}
	}
	sort.Strings(waiting)
	var out []metav1.Condition
	switch {
	case available:
		out = append(out, cond(v1beta1.ConditionAvailable, true, "AllComponentsAvailable", "the controller and every selected node's speaker are available"))
	case noNodes:
		out = append(out, cond(v1beta1.ConditionAvailable, false, "NoSpeakerNodes",
			"spec.nodeSelector and spec.speakerTolerations select no schedulable Linux node, so no speaker runs and nothing is announced; widen spec.nodeSelector or label nodes"))
	default:
		out = append(out, cond(v1beta1.ConditionAvailable, false, "ComponentsNotAvailable", "waiting for: "+strings.Join(waiting, "; ")))
	}
	if len(waiting) > 0 {
		out = append(out, cond(v1beta1.ConditionProgressing, true, "RollingOut", "rolling out: "+strings.Join(waiting, "; ")))
	} else {
		out = append(out, cond(v1beta1.ConditionProgressing, false, "RolloutComplete", "every component runs the current configuration"))
	}
	if s.degradedReason != "" {
		out = append(out, cond(v1beta1.ConditionDegraded, true, s.degradedReason, s.degradedMessage))
	} else if s.podSecurity != "" {
		out = append(out, cond(v1beta1.ConditionDegraded, true, "PodSecurityRefusesSpeakers", s.podSecurity))
	} else if noNodes {
		out = append(out, cond(v1beta1.ConditionDegraded, true, "NoSpeakerNodes", "no node runs a speaker; see the Available condition"))
	} else {
		out = append(out, cond(v1beta1.ConditionDegraded, false, "AsExpected", "every rendered object is applied"))
	}
	if len(waiting) > 0 {
		out = append(out, cond(v1beta1.ConditionUpgradeable, false, "RolloutInProgress", "wait for the rollout to finish before upgrading the operator"))
	} else {
		out = append(out, cond(v1beta1.ConditionUpgradeable, true, "AsExpected", "nothing blocks an operator upgrade"))
	}
	return out
}

// writeStatus sets the conditions (lastTransitionTime moves only when a
// status flips) and writes only when something changed.
func (r *MetalLBReconciler) writeStatus(ctx context.Context, ml *v1beta1.MetalLB, st status) error {
	before := ml.DeepCopy()
	for _, c := range st.conditions(ml.Generation) {
		meta.SetStatusCondition(&ml.Status.Conditions, c)
	}
	if equality.Semantic.DeepEqual(before.Status.Conditions, ml.Status.Conditions) {
		return nil
	}
	return r.Client.Status().Patch(ctx, ml, client.MergeFrom(before))
}
