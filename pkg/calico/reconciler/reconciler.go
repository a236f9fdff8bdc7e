// Package reconciler is the Calico announcement mode's coordinator that
// `lbstack operator` runs (issue #19). With bgpBackend calico it keeps the
// fields lbstack owns in Calico's default BGPConfiguration
// (spec.serviceLoadBalancerIPs and spec.prefixAdvertisements, computed by
// pkg/calico) in step with the metallb.io objects, and reports the
// consistency checks of pkg/calico as events and as the MetalLB object's
// CalicoConsistent condition. Without bgpBackend calico it gives its
// fields up.
//
// It writes with server-side apply under its own field manager
// (FieldManager), never forced: a value another manager owns is left as
// it is and reported as a conflict. It never creates Calico's
// configuration: a missing default BGPConfiguration is a finding. A
// reconcile that changes nothing makes no write.
//
// It writes crd.projectcalico.org/v1 (the CRDs Calico stores its
// configuration in, present on every Calico cluster) and reads
// projectcalico.org/v3 for the checks when Calico's API server serves it;
// ownership and the no-write decision always use the v1 object, whose
// managedFields are the ones lbstack's applies touch.
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/lbstack/lbstack/pkg/platform"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/calico"
	calicov1 "github.com/lbstack/lbstack/pkg/calicoapi/v1"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/configload"
	"github.com/lbstack/lbstack/pkg/finding"
)

// The Calico coordinator's permissions: it reads the metallb.io
// configuration and Services (granted in controllers/), patches (applies)
// Calico's BGPConfiguration and reads Calico's BGPPeers, in both of
// Calico's API groups.
//
// +kubebuilder:rbac:groups=crd.projectcalico.org,resources=bgpconfigurations,verbs=get;list;watch;patch
// +kubebuilder:rbac:groups=crd.projectcalico.org,resources=bgppeers,verbs=get;list;watch
// +kubebuilder:rbac:groups=projectcalico.org,resources=bgpconfigurations;bgppeers,verbs=get;list;watch

const (
	// FieldManager is the server-side apply field manager of lbstack's
	// fields in Calico's default BGPConfiguration.
	FieldManager = "lbstack-calico"
	// ConditionCalicoConsistent is the MetalLB object's condition for the
	// Calico mode: lbstack's fields written, and the checks' findings.
	ConditionCalicoConsistent = "CalicoConsistent"

	// Reasons of the condition.
	ReasonConsistent    = "Consistent"
	ReasonNoErrors      = "NoErrors"
	ReasonInconsistent  = "Inconsistent"
	ReasonConflict      = "Conflict"
	ReasonCRDsMissing   = "CalicoCRDsMissing"
	ReasonApplyFailed   = "ApplyFailed"
	ReasonConfigInvalid = "ConfigurationInvalid"

	// ReasonConflictEventType is the reason of the event on the MetalLB
	// object when another field manager owns a field lbstack must write.
	ReasonConflictEventType = "CalicoFieldConflict"

	// key is the one work-queue key: every change recomputes everything.
	key = "calico"
)

// APIs says which of Calico's APIs the cluster serves, detected once at
// start: installing Calico later needs an operator restart (the condition
// says so).
type APIs struct {
	// CRDs: crd.projectcalico.org/v1 BGPConfiguration and BGPPeer.
	CRDs bool
	// V3: projectcalico.org/v3 BGPConfiguration and BGPPeer (Calico's API
	// server).
	V3 bool
}

// GVKs of the kinds looked for.
var (
	gvkV1Config = calicov1.GroupVersion.WithKind("BGPConfiguration")
	gvkV1Peer   = calicov1.GroupVersion.WithKind("BGPPeer")
	gvkV3Config = schema.GroupVersionKind{Group: v3.GroupName, Version: "v3", Kind: "BGPConfiguration"}
	gvkV3Peer   = schema.GroupVersionKind{Group: v3.GroupName, Version: "v3", Kind: "BGPPeer"}
)

// DetectAPIs asks mapper which of Calico's APIs exist. An API the mapper
// cannot tell about counts as absent.
func DetectAPIs(mapper meta.RESTMapper) (APIs, error) {
	served := func(gvk schema.GroupVersionKind) (bool, error) { return platform.Served(mapper, gvk) }
	var a APIs
	var errs []error
	for _, c := range []struct {
		out  *bool
		gvks []schema.GroupVersionKind
	}{{&a.CRDs, []schema.GroupVersionKind{gvkV1Config, gvkV1Peer}}, {&a.V3, []schema.GroupVersionKind{gvkV3Config, gvkV3Peer}}} {
		all := true
		for _, gvk := range c.gvks {
			ok, err := served(gvk)
			if err != nil {
				errs = append(errs, err)
			}
			all = all && ok
		}
		*c.out = all
	}
	return a, errors.Join(errs...)
}

// AddToScheme registers Calico's kinds the coordinator reads and writes.
func AddToScheme(s *runtime.Scheme) error {
	if err := calicov1.AddToScheme(s); err != nil {
		return err
	}
	return v3.AddToScheme(s)
}

// CacheObjects are the manager cache's ByObject entries the coordinator
// needs: only the default BGPConfiguration, with its managedFields (the
// operator's cache strips them elsewhere), which say what lbstack owns.
func CacheObjects() map[client.Object]cache.ByObject {
	return map[client.Object]cache.ByObject{
		&calicov1.BGPConfiguration{}: {
			Field:     fields.OneTermEqualSelector("metadata.name", calicov1.DefaultBGPConfigurationName),
			Transform: func(o any) (any, error) { return o, nil },
		},
	}
}

// Reconciler keeps lbstack's fields of Calico's default BGPConfiguration
// and reports the Calico mode's checks.
type Reconciler struct {
	// Client reads through the manager's cache and writes.
	Client client.Client
	// Namespace is the stack's namespace (MetalLB object, metallb.io
	// objects).
	Namespace string
	// Recorder emits the events.
	Recorder record.EventRecorder
	// APIs are Calico's APIs found at start.
	APIs APIs

	mu sync.Mutex
	// emitted are the findings already reported as events.
	emitted map[string]bool
	// conflict is the last apply refused for a conflict: while neither
	// the live object nor the wanted fields changed, it is not tried again.
	conflict *conflictState
}

type conflictState struct {
	resourceVersion string
	want            string
	message         string
}

// SetupWithManager watches the MetalLB object, the metallb.io objects the
// configuration is built from, LoadBalancer Services (for the
// externalTrafficPolicy Local check) and, when served, Calico's
// BGPConfiguration and BGPPeers; every change reconciles the one key.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorderFor("lbstack-calico")
	}
	all := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: r.Namespace, Name: key}}}
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("calico").
		Watches(&v1beta1.MetalLB{}, all).
		Watches(&v1beta1.IPAddressPool{}, all).
		Watches(&v1beta2.BGPPeer{}, all).
		Watches(&v1beta1.BGPAdvertisement{}, all).
		Watches(&v1beta1.Community{}, all).
		Watches(&corev1.Service{}, all, builder.WithPredicates(servicePredicate()))
	if r.APIs.CRDs {
		b = b.Watches(&calicov1.BGPConfiguration{}, all).Watches(&calicov1.BGPPeer{}, all)
	}
	if r.APIs.V3 {
		b = b.Watches(&v3.BGPConfiguration{}, all).Watches(&v3.BGPPeer{}, all)
	}
	return b.Complete(r)
}

// servicePredicate passes the Service changes the Local check can see:
// LoadBalancer Services appearing, going, or changing type, class, traffic
// policy or addresses.
func servicePredicate() predicate.Funcs {
	lb := func(o client.Object) bool {
		s, ok := o.(*corev1.Service)
		return ok && s.Spec.Type == corev1.ServiceTypeLoadBalancer
	}
	return predicate.Funcs{
		CreateFunc: func(e event.CreateEvent) bool { return lb(e.Object) },
		DeleteFunc: func(e event.DeleteEvent) bool { return lb(e.Object) },
		UpdateFunc: func(e event.UpdateEvent) bool {
			o, ok1 := e.ObjectOld.(*corev1.Service)
			n, ok2 := e.ObjectNew.(*corev1.Service)
			if !ok1 || !ok2 || (!lb(o) && !lb(n)) {
				return false
			}
			return o.Spec.Type != n.Spec.Type || o.Spec.ExternalTrafficPolicy != n.Spec.ExternalTrafficPolicy ||
				!equality.Semantic.DeepEqual(o.Spec.LoadBalancerClass, n.Spec.LoadBalancerClass) ||
				!equality.Semantic.DeepEqual(o.Status.LoadBalancer, n.Status.LoadBalancer)
		},
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

// Reconcile computes lbstack's fields, writes them when they differ, and
// reports.
func (r *Reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (reconcile.Result, error) {
	ml, err := r.metalLB(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	calicoMode := ml != nil && ml.DeletionTimestamp.IsZero() && ml.Spec.BGPType == v1beta1.BGPTypeCalico
	if !r.APIs.CRDs {
		if ml != nil && calicoMode {
			return reconcile.Result{}, r.setCondition(ctx, ml, metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonCRDsMissing,
				Message: fmt.Sprintf("spec.bgpBackend is calico, but the API server served no %s or %s when the operator started: Calico is not installed, so no address is announced over BGP; install Calico, then restart the operator",
					gvkV1Config.GroupKind(), gvkV1Peer.GroupKind())})
		}
		return reconcile.Result{}, r.clearCondition(ctx, ml)
	}

	live, err := r.liveConfiguration(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	if !calicoMode {
		// The mode, or the MetalLB object, went away: give lbstack's
		// fields up, keep everyone else's.
		cond, _, err := r.sync(ctx, ml, live, calico.Desired{})
		if err != nil || cond != nil {
			if ml != nil && ml.DeletionTimestamp.IsZero() {
				if cond == nil {
					cond = &metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonApplyFailed,
						Message: fmt.Sprintf("removing lbstack's spec.serviceLoadBalancerIPs and spec.prefixAdvertisements from %s failed: %v; the operator retries", defaultConfigRef, err)}
				}
				return reconcile.Result{}, errors.Join(err, r.setCondition(ctx, ml, *cond))
			}
			return reconcile.Result{}, err
		}
		return reconcile.Result{}, r.clearCondition(ctx, ml)
	}

	in, err := r.inputs(ctx, ml, live)
	if err != nil {
		return reconcile.Result{}, err
	}
	if in.Config == nil {
		return reconcile.Result{}, r.setCondition(ctx, ml, metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonConfigInvalid,
			Message: fmt.Sprintf("the metallb.io configuration is refused (%v), so %s keeps what lbstack last wrote; see the ConfigurationState objects", in.buildErr, defaultConfigRef)})
	}
	cond, written, applyErr := r.sync(ctx, ml, live, calico.Compute(in.Config))
	if written != nil {
		// Checked as it is now, not as it was before lbstack's write.
		in.Current = written
	}
	findings := calico.Check(in.Inputs)
	r.emitEvents(ml, findings)
	if applyErr != nil {
		cond = &metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonApplyFailed,
			Message: fmt.Sprintf("writing spec.serviceLoadBalancerIPs and spec.prefixAdvertisements of %s failed: %v; the operator retries", defaultConfigRef, applyErr)}
	}
	if cond == nil {
		c := consistentCondition(findings)
		cond = &c
	}
	return reconcile.Result{}, errors.Join(applyErr, r.setCondition(ctx, ml, *cond))
}

var defaultConfigRef = calico.ObjectRef{Kind: calico.KindCalicoBGPConfig, Name: calicov1.DefaultBGPConfigurationName}

// metalLB is the MetalLB object of the namespace (the first by name), or
// nil.
func (r *Reconciler) metalLB(ctx context.Context) (*v1beta1.MetalLB, error) {
	var list v1beta1.MetalLBList
	if err := r.Client.List(ctx, &list, client.InNamespace(r.Namespace)); err != nil {
		return nil, fmt.Errorf("list MetalLB objects in %s: %w", r.Namespace, err)
	}
	if len(list.Items) == 0 {
		return nil, nil
	}
	slices.SortFunc(list.Items, func(a, b v1beta1.MetalLB) int { return strings.Compare(a.Name, b.Name) })
	return &list.Items[0], nil
}

// liveConfiguration is the crd.projectcalico.org/v1 default
// BGPConfiguration, or nil.
func (r *Reconciler) liveConfiguration(ctx context.Context) (*calicov1.BGPConfiguration, error) {
	var bc calicov1.BGPConfiguration
	err := r.Client.Get(ctx, client.ObjectKey{Name: calicov1.DefaultBGPConfigurationName}, &bc)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("get %s: %w", defaultConfigRef, err)
	}
	return &bc, nil
}

type inputs struct {
	calico.Inputs
	buildErr error
}

// inputs reads what calico.Check needs; Config is nil when the metallb.io
// configuration is refused as a whole.
func (r *Reconciler) inputs(ctx context.Context, ml *v1beta1.MetalLB, live *calicov1.BGPConfiguration) (inputs, error) {
	res, err := configload.Load(ctx, r.Client, configload.Options{Namespace: r.Namespace})
	if err != nil {
		return inputs{}, fmt.Errorf("read the metallb.io configuration: %w", err)
	}
	built := config.Build(res, config.Options{Namespace: r.Namespace, BGPBackend: v1beta1.BGPTypeCalico})
	in := inputs{buildErr: built.Err()}
	in.Config, in.Namespace, in.LBClass, in.CurrentRead = built.Config, r.Namespace, ml.Spec.LoadBalancerClass, true
	if live != nil {
		in.Current = &live.Spec
	}
	var svcs corev1.ServiceList
	if err := r.Client.List(ctx, &svcs); err != nil {
		return inputs{}, fmt.Errorf("list Services: %w", err)
	}
	for i := range svcs.Items {
		in.Services = append(in.Services, &svcs.Items[i])
	}
	var peers calicov1.BGPPeerList
	if err := r.Client.List(ctx, &peers); err != nil {
		return inputs{}, fmt.Errorf("list %s: %w", gvkV1Peer.GroupKind(), err)
	}
	for _, p := range peers.Items {
		in.CalicoBGPPeers = append(in.CalicoBGPPeers, calico.CalicoBGPPeer{Name: p.Name, Spec: p.Spec})
	}
	in.CalicoBGPPeersListed = true
	if r.APIs.V3 {
		// Calico's API server's view (its defaults applied) is what the
		// checks compare with.
		var v3Peers v3.BGPPeerList
		if err := r.Client.List(ctx, &v3Peers); err != nil {
			return inputs{}, fmt.Errorf("list %s: %w", gvkV3Peer.GroupKind(), err)
		}
		in.CalicoBGPPeers = nil
		for _, p := range v3Peers.Items {
			in.CalicoBGPPeers = append(in.CalicoBGPPeers, calico.CalicoBGPPeer{Name: p.Name, Spec: p.Spec})
		}
		var bc v3.BGPConfiguration
		switch err := r.Client.Get(ctx, client.ObjectKey{Name: calicov1.DefaultBGPConfigurationName}, &bc); {
		case err == nil:
			in.Current = &bc.Spec
		case apierrors.IsNotFound(err):
			in.Current = nil
		default:
			return inputs{}, fmt.Errorf("get %s (projectcalico.org/v3): %w", defaultConfigRef, err)
		}
	}
	return in, nil
}

// ---- events and the condition ----

func findingKey(f calico.Finding) string {
	return f.Check + "\x00" + f.Objects[0].String() + "\x00" + f.Field + "\x00" + f.Message
}

// emitEvents reports every finding that appeared since the last run as an
// event on the MetalLB object.
func (r *Reconciler) emitEvents(ml *v1beta1.MetalLB, findings []calico.Finding) {
	r.mu.Lock()
	defer r.mu.Unlock()
	current := map[string]bool{}
	for _, f := range findings {
		k := findingKey(f)
		current[k] = true
		if r.emitted[k] {
			continue
		}
		eventType := corev1.EventTypeWarning
		if f.Severity == finding.Unknown {
			eventType = corev1.EventTypeNormal
		}
		r.Recorder.Event(ml, eventType, f.Check, f.Message)
	}
	r.emitted = current
}

// maxListedFindings is how many findings a condition message spells out.
const maxListedFindings = 3

func consistentCondition(findings []calico.Finding) metav1.Condition {
	var errs, others []string
	for _, f := range findings {
		line := f.Check + ": " + f.Message
		if f.Severity == calico.Error {
			errs = append(errs, line)
		} else {
			others = append(others, line)
		}
	}
	switch {
	case len(errs) > 0:
		return metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonInconsistent,
			Message: summarize(errs, "error(s)") + "; each is also an event on this object"}
	case len(others) > 0:
		return metav1.Condition{Status: metav1.ConditionTrue, Reason: ReasonNoErrors,
			Message: fmt.Sprintf("lbstack's fields of %s are written; ", defaultConfigRef) + summarize(others, "warning(s)")}
	default:
		return metav1.Condition{Status: metav1.ConditionTrue, Reason: ReasonConsistent,
			Message: fmt.Sprintf("lbstack's fields of %s are written and agree with the metallb.io objects", defaultConfigRef)}
	}
}

func summarize(lines []string, what string) string {
	n := len(lines)
	shown := lines[:min(n, maxListedFindings)]
	s := fmt.Sprintf("%d %s: %s", n, what, strings.Join(shown, "; "))
	if n > len(shown) {
		s += fmt.Sprintf(" (and %d more)", n-len(shown))
	}
	return s
}

// setCondition writes the CalicoConsistent condition when it changed.
func (r *Reconciler) setCondition(ctx context.Context, ml *v1beta1.MetalLB, c metav1.Condition) error {
	c.Type, c.ObservedGeneration = ConditionCalicoConsistent, ml.Generation
	before := ml.DeepCopy()
	meta.SetStatusCondition(&ml.Status.Conditions, c)
	return r.patchStatus(ctx, before, ml)
}

// clearCondition removes the condition (the mode is not in use).
func (r *Reconciler) clearCondition(ctx context.Context, ml *v1beta1.MetalLB) error {
	if ml == nil || !ml.DeletionTimestamp.IsZero() {
		return nil
	}
	before := ml.DeepCopy()
	meta.RemoveStatusCondition(&ml.Status.Conditions, ConditionCalicoConsistent)
	return r.patchStatus(ctx, before, ml)
}

func (r *Reconciler) patchStatus(ctx context.Context, before, ml *v1beta1.MetalLB) error {
	if equality.Semantic.DeepEqual(before.Status.Conditions, ml.Status.Conditions) {
		return nil
	}
	// The MetalLB reconciler writes the other conditions of the same list:
	// the optimistic lock keeps either from dropping the other's.
	if err := r.Client.Status().Patch(ctx, ml, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
		return fmt.Errorf("MetalLB %s/%s status.conditions %s: %w", ml.Namespace, ml.Name, ConditionCalicoConsistent, err)
	}
	logf.FromContext(ctx).V(1).Info("condition written", "type", ConditionCalicoConsistent)
	return nil
}
