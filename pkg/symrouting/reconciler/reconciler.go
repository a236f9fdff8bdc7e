// Package reconciler is the symmetric-routing coordinator that `lbstack
// operator` runs: it expands every SymmetricRouting declaration into the
// objects it owns (pkg/symrouting/generate), writes them through
// pkg/ownedapply, reports progress and consistency in its status, and runs
// the cluster-wide checks (pkg/symrouting) on hand-made objects too.
// reconciler.go wires the watches and the cluster-wide checks;
// declaration.go reconciles one SymmetricRouting.
package reconciler

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
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

	v1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
	"github.com/lbstack/lbstack/pkg/symrouting"
	"github.com/lbstack/lbstack/pkg/symrouting/load"
)

// The symmetric-routing coordinator's permissions (see doc.go and rbac.go
// for the rest): the declarations, the objects generated for them, and what
// the consistency checks read.
//
// +kubebuilder:rbac:groups=lbstack.io,resources=symmetricroutings,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=lbstack.io,resources=symmetricroutings/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=lbstack.io,resources=symmetricroutings/finalizers,verbs=update
// +kubebuilder:rbac:groups=metallb.io,namespace=metallb-system,resources=bgppeers;bgpadvertisements;ipaddresspools,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=nmstate.io,resources=nodenetworkconfigurationpolicies,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=nmstate.io,resources=nodenetworkstates;nodenetworkconfigurationenactments,verbs=get;list;watch
// +kubebuilder:rbac:groups=k8s.ovn.org,resources=egressservices,verbs=get;list;watch;create;update;patch;delete
// +kubebuilder:rbac:groups=config.openshift.io,resources=networks,verbs=get;list;watch
// +kubebuilder:rbac:groups=operator.openshift.io,resources=networks,verbs=get;list;watch

const (
	// Finalizer holds a SymmetricRouting until every object
	// generated for it is deleted (the garbage collector would do it through
	// the owner references, but not every cluster runs one in time, and
	// envtest runs none).
	Finalizer = "lbstack.io/symmetric-routing"
	// HashAnnotation carries the hash of a generated object
	// as last written, so that a field dropped from the generated object is
	// noticed (see needsSRUpdate).
	HashAnnotation = "lbstack.io/symmetric-routing-hash"
	// ConditionSymmetricRoutingConsistent is the MetalLB object's condition
	// summing up the cluster-wide symmetric-routing checks.
	ConditionSymmetricRoutingConsistent = "SymmetricRoutingConsistent"

	// SymmetricRouting condition types.
	ConditionReady          = "Ready"
	ConditionGenerated      = "Generated"
	ConditionPolicyEnacted  = "PolicyEnacted"
	ConditionEgressAssigned = "EgressAssigned"
	ConditionConsistent     = "Consistent"

	// Reasons of the SymmetricRouting conditions.
	ReasonInvalidSpec    = "InvalidSpec"
	ReasonNMStateMissing = "NMStateMissing"
	ReasonOVNMissing     = "OVNMissing"
	ReasonConflict       = "Conflict"

	// srClusterKey names the cluster-wide check in the work queue; the
	// SymmetricRouting keys have no namespace, so it cannot collide.
	srClusterKey = "symmetric-routing-checks"
)

// APIs says which optional APIs the cluster serves (see
// load.APIs). They are detected once at startup: installing NMState or
// OVN-Kubernetes later needs an operator restart for the watches (the
// reconciler says so).
type APIs = load.APIs

// DetectAPIs asks mapper which of the optional APIs exist.
func DetectAPIs(mapper meta.RESTMapper) (APIs, error) {
	return load.Detect(mapper)
}

// AddToScheme registers the foreign types the coordinator
// reads and writes: NMState's nmstate.io v1 and v1beta1 and the minimal
// EgressService copy (k8s.ovn.org/v1).
func AddToScheme(s *runtime.Scheme) error {
	return load.AddToScheme(s)
}

// CacheObjects are the manager cache's ByObject entries the
// coordinator needs: the operator's cache holds its own namespace only,
// but Services and EgressServices live in the applications' namespaces.
func CacheObjects(apis APIs) map[client.Object]cache.ByObject {
	all := map[string]cache.Config{cache.AllNamespaces: {}}
	out := map[client.Object]cache.ByObject{&corev1.Service{}: {Namespaces: all}}
	if apis.OVN {
		out[&ovnv1.EgressService{}] = cache.ByObject{Namespaces: all}
	}
	return out
}

// Reconciler coordinates symmetric routing:
//
//   - every SymmetricRouting is expanded (pkg/symrouting/generate) into the
//     NMState policy, BGPPeer, pools, advertisements and EgressServices it
//     owns, which are created, kept and pruned, and its status reports
//     progress (enactments, egress hosts) and consistency;
//   - the whole cluster, hand-made objects included, is checked
//     (pkg/symrouting) and every new finding is reported as a Warning event
//     on the object to change, and summed up in the MetalLB object's
//     SymmetricRoutingConsistent condition.
type Reconciler struct {
	// Client reads through the manager's cache and writes.
	Client client.Client
	// APIReader, when set, lists the objects to delete with a
	// SymmetricRouting around the cache, so none just created is missed.
	APIReader client.Reader
	Scheme    *runtime.Scheme
	// Namespace is the operator's namespace: the MetalLB object, BGPPeers,
	// pools and advertisements live there.
	Namespace string
	// Recorder emits the events.
	Recorder record.EventRecorder
	// APIs are the optional APIs found at startup.
	APIs APIs

	mu sync.Mutex
	// emitted are the keys of the findings already reported as events.
	emitted map[string]bool
	// srEvents are, per SymmetricRouting, the last warning reported as an
	// event (reason and message), so that a steady state emits none.
	srEvents map[string]string
}

// SetupWithManager watches the declarations, every kind they generate or
// the checks read (the optional ones only when served), and maps every
// change to the cluster-wide check plus every SymmetricRouting: the
// reconciler is level-based and recomputes everything.
func (r *Reconciler) SetupWithManager(mgr ctrl.Manager) error {
	if r.Recorder == nil {
		r.Recorder = mgr.GetEventRecorderFor("lbstack-symmetric-routing")
	}
	all := handler.EnqueueRequestsFromMapFunc(r.mapAll)
	nodeChanges := builder.WithPredicates(predicate.Funcs{
		// Node status (heartbeats, conditions) does not matter: labels
		// select the VRF nodes, annotations carry OVN's masquerade subnet.
		UpdateFunc: func(e event.UpdateEvent) bool {
			return !maps.Equal(e.ObjectOld.GetLabels(), e.ObjectNew.GetLabels()) ||
				!maps.Equal(e.ObjectOld.GetAnnotations(), e.ObjectNew.GetAnnotations())
		},
	})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("symmetricrouting").
		Watches(&v1alpha1.SymmetricRouting{}, handler.EnqueueRequestsFromMapFunc(r.mapSR)).
		Watches(&v1beta2.BGPPeer{}, all).
		Watches(&v1beta1.BGPAdvertisement{}, all).
		Watches(&v1beta1.IPAddressPool{}, all).
		Watches(&v1beta1.MetalLB{}, all).
		Watches(&corev1.Service{}, all).
		Watches(&corev1.Node{}, all, nodeChanges)
	if r.APIs.NMState {
		b = b.Watches(&nmstatev1.NodeNetworkConfigurationPolicy{}, all).
			Watches(&nmstatev1beta1.NodeNetworkState{}, all).
			Watches(&nmstatev1beta1.NodeNetworkConfigurationEnactment{}, all)
	}
	if r.APIs.OVN {
		b = b.Watches(&ovnv1.EgressService{}, all)
	}
	for _, on := range []struct {
		served bool
		gvk    schema.GroupVersionKind
	}{{r.APIs.ConfigNetwork, load.GVKConfigNetwork}, {r.APIs.OperatorNetwork, load.GVKOperatorNetwork}} {
		if on.served {
			u := &unstructured.Unstructured{}
			u.SetGroupVersionKind(on.gvk)
			b = b.Watches(u, all)
		}
	}
	return b.Complete(r)
}

func (r *Reconciler) clusterRequest() reconcile.Request {
	return reconcile.Request{NamespacedName: types.NamespacedName{Namespace: r.Namespace, Name: srClusterKey}}
}

func (r *Reconciler) mapSR(_ context.Context, o client.Object) []reconcile.Request {
	return []reconcile.Request{r.clusterRequest(), {NamespacedName: types.NamespacedName{Name: o.GetName()}}}
}

func (r *Reconciler) mapAll(ctx context.Context, _ client.Object) []reconcile.Request {
	out := []reconcile.Request{r.clusterRequest()}
	var list v1alpha1.SymmetricRoutingList
	if err := r.Client.List(ctx, &list); err != nil {
		logf.FromContext(ctx).Error(err, "list SymmetricRoutings")
		return out
	}
	for _, sr := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: types.NamespacedName{Name: sr.Name}})
	}
	return out
}

// Reconcile runs the cluster-wide check (the cluster key) or one
// SymmetricRouting (cluster-scoped, so its key has no namespace).
func (r *Reconciler) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	if req.Namespace != "" {
		if req.Name != srClusterKey {
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, r.reconcileCluster(ctx)
	}
	return reconcile.Result{}, r.reconcileSR(ctx, req.Name)
}

// ---- the cluster-wide check (hand-made objects) ----

// findingKey identifies a finding for the event deduplication.
func findingKey(f symrouting.Finding) string {
	return f.Check + "\x00" + f.Objects[0].String() + "\x00" + f.Field + "\x00" + f.Message
}

func (r *Reconciler) reconcileCluster(ctx context.Context) error {
	st, err := load.Load(ctx, r.Client, r.Namespace, r.APIs)
	if err != nil {
		return err
	}
	findings := symrouting.Check(st.Inputs)

	// Events: one per finding that appeared since the last run.
	r.mu.Lock()
	if r.emitted == nil {
		r.emitted = map[string]bool{}
	}
	current := map[string]bool{}
	for _, f := range findings {
		key := findingKey(f)
		current[key] = true
		if r.emitted[key] {
			continue
		}
		if obj := st.Resolve(f.Objects); obj != nil {
			eventType := corev1.EventTypeWarning
			if f.Severity == symrouting.Unknown {
				eventType = corev1.EventTypeNormal
			}
			r.Recorder.Event(obj, eventType, f.Check, f.Message)
		}
	}
	r.emitted = current
	r.mu.Unlock()

	// The MetalLB object's condition.
	var errs []error
	for i := range st.MetalLBs {
		ml := &st.MetalLBs[i]
		if !ml.DeletionTimestamp.IsZero() {
			continue
		}
		before := ml.DeepCopy()
		meta.SetStatusCondition(&ml.Status.Conditions, consistentCondition(findings, st.Checked(), ml.Generation))
		if equality.Semantic.DeepEqual(before.Status.Conditions, ml.Status.Conditions) {
			continue
		}
		// The MetalLB reconciler writes the other conditions of the same
		// list: the optimistic lock keeps either from dropping the other's.
		if err := r.Client.Status().Patch(ctx, ml, client.MergeFromWithOptions(before, client.MergeFromWithOptimisticLock{})); err != nil {
			errs = append(errs, fmt.Errorf("MetalLB %s status: %w", ml.Name, err))
		}
	}
	return errors.Join(errs...)
}

// maxListedFindings is how many findings a condition message spells out.
const maxListedFindings = 3

func consistentCondition(findings []symrouting.Finding, anything bool, generation int64) metav1.Condition {
	var errs, others []string
	for _, f := range findings {
		if f.Severity == symrouting.Error {
			errs = append(errs, findingLine(f))
		} else {
			others = append(others, findingLine(f))
		}
	}
	c := metav1.Condition{Type: ConditionSymmetricRoutingConsistent, ObservedGeneration: generation}
	switch {
	case len(errs) > 0:
		c.Status, c.Reason = metav1.ConditionFalse, "Inconsistent"
		c.Message = summarize(errs, "error(s)") + "; each is also an event on the object to change"
	case !anything:
		c.Status, c.Reason = metav1.ConditionTrue, "NothingToCheck"
		c.Message = "no BGPPeer with spec.vrf and no EgressService: symmetric routing is not configured"
	case len(others) > 0:
		c.Status, c.Reason = metav1.ConditionTrue, "NoErrors"
		c.Message = "the symmetric-routing objects agree; " + summarize(others, "warning(s) or unchecked item(s)")
	default:
		c.Status, c.Reason = metav1.ConditionTrue, "Consistent"
		c.Message = "the VRF BGPPeers, NMState policies, advertisements, pools and EgressServices agree"
	}
	return c
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

// findingLine is a finding as status.findings and condition messages
// print it: `<Check>: <Message>`.
func findingLine(f symrouting.Finding) string { return f.Check + ": " + f.Message }
