package reconciler

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	v1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
	"github.com/lbstack/lbstack/pkg/ownedapply"
	"github.com/lbstack/lbstack/pkg/symrouting"
	"github.com/lbstack/lbstack/pkg/symrouting/generate"
	"github.com/lbstack/lbstack/pkg/symrouting/load"
)

// What to install, for the NMStateMissing and OVNMissing messages.
const (
	installNMState = "the Kubernetes NMState operator (nmstate.io CRDs nodenetworkconfigurationpolicies, nodenetworkstates, nodenetworkconfigurationenactments) is not installed, so the VRF policy cannot be created: install it (on OpenShift: the Kubernetes NMState Operator and an NMState instance) and restart the lbstack operator"
	installOVN     = "OVN-Kubernetes' EgressService API (egressservices.k8s.ovn.org) is not installed, so the EgressServices cannot be created: use OVN-Kubernetes as the cluster network plugin (the OpenShift default) and restart the lbstack operator"
)

// ownedKinds are the kinds generated for a SymmetricRouting, with whether
// they live in the operator's namespace (else cluster-scoped, or, for
// EgressServices, in the Services' namespaces).
type ownedKind struct {
	gvk     schema.GroupVersionKind
	list    func() client.ObjectList
	kind    string // symrouting.ObjectRef kind
	inOpsNS bool
	served  func(APIs) bool
}

var ownedKinds = []ownedKind{
	{nmstatev1.GroupVersion.WithKind("NodeNetworkConfigurationPolicy"), func() client.ObjectList { return &nmstatev1.NodeNetworkConfigurationPolicyList{} },
		symrouting.KindPolicy, false, func(a APIs) bool { return a.NMState }},
	{v1beta2.GroupVersion.WithKind("BGPPeer"), func() client.ObjectList { return &v1beta2.BGPPeerList{} },
		symrouting.KindBGPPeer, true, func(APIs) bool { return true }},
	{v1beta1.GroupVersion.WithKind("IPAddressPool"), func() client.ObjectList { return &v1beta1.IPAddressPoolList{} },
		symrouting.KindPool, true, func(APIs) bool { return true }},
	{v1beta1.GroupVersion.WithKind("BGPAdvertisement"), func() client.ObjectList { return &v1beta1.BGPAdvertisementList{} },
		symrouting.KindAdvertisement, true, func(APIs) bool { return true }},
	{ovnv1.EgressServiceGVK, func() client.ObjectList { return &ovnv1.EgressServiceList{} },
		symrouting.KindEgressService, false, func(a APIs) bool { return a.OVN }},
}

func ownedKindOf(gvk schema.GroupVersionKind) *ownedKind {
	for i := range ownedKinds {
		if ownedKinds[i].gvk.GroupKind() == gvk.GroupKind() {
			return &ownedKinds[i]
		}
	}
	return nil
}

// srRef is the checker's reference to a generated object.
func srRef(o client.Object) symrouting.ObjectRef {
	k := ownedKindOf(o.GetObjectKind().GroupVersionKind())
	kind := ""
	if k != nil {
		kind = k.kind
	}
	return symrouting.ObjectRef{Kind: kind, Namespace: o.GetNamespace(), Name: o.GetName()}
}

// srOutcome is what one reconcile of a SymmetricRouting found out.
type srOutcome struct {
	conditions []metav1.Condition
	objects    []v1alpha1.GeneratedObject
	findings   []string
	hosts      map[string]string
	// warning is the event to emit (reason, message) when it is new.
	warnReason, warnMessage string
}

func (o *srOutcome) set(t string, status metav1.ConditionStatus, reason, msg string) {
	o.conditions = append(o.conditions, metav1.Condition{Type: t, Status: status, Reason: reason, Message: msg})
}

func (o *srOutcome) find(t string) *metav1.Condition {
	return meta.FindStatusCondition(o.conditions, t)
}

func (r *Reconciler) reconcileSR(ctx context.Context, name string) error {
	var sr v1alpha1.SymmetricRouting
	if err := r.Client.Get(ctx, types.NamespacedName{Name: name}, &sr); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !sr.DeletionTimestamp.IsZero() {
		return r.finalizeSR(ctx, &sr)
	}
	if !controllerutil.ContainsFinalizer(&sr, Finalizer) {
		patch := client.MergeFrom(sr.DeepCopy())
		controllerutil.AddFinalizer(&sr, Finalizer)
		if err := r.Client.Patch(ctx, &sr, patch); err != nil {
			return err
		}
	}
	st, err := load.Load(ctx, r.Client, r.Namespace, r.APIs)
	if err != nil {
		return err
	}
	out, syncErr := r.syncSR(ctx, &sr, st)
	r.emitSREvent(&sr, out)
	if err := r.writeSRStatus(ctx, &sr, out); err != nil {
		return errors.Join(syncErr, err)
	}
	return syncErr
}

// syncSR validates, generates, applies and prunes, then computes the
// conditions. The error is one to retry (a failed write).
func (r *Reconciler) syncSR(ctx context.Context, sr *v1alpha1.SymmetricRouting, st *load.State) (*srOutcome, error) {
	out := &srOutcome{}
	notYet := func(reason, msg string) {
		for _, t := range []string{ConditionPolicyEnacted, ConditionEgressAssigned, ConditionConsistent} {
			out.set(t, metav1.ConditionUnknown, reason, "not checked: "+msg)
		}
	}
	if errs := generate.Validate(sr); len(errs) > 0 {
		msg := "the spec is invalid: " + errs.ToAggregate().Error()
		out.set(ConditionGenerated, metav1.ConditionFalse, ReasonInvalidSpec, msg)
		notYet(ReasonInvalidSpec, "the spec is invalid")
		out.set(ConditionReady, metav1.ConditionFalse, ReasonInvalidSpec, msg)
		out.warnReason, out.warnMessage = ReasonInvalidSpec, msg
		return out, nil
	}

	gen := sr
	var missing []string // reasons
	var missingMsg []string
	needNMState := sr.Spec.VRF.ExistingPolicy == ""
	if !r.APIs.NMState {
		missing, missingMsg = append(missing, ReasonNMStateMissing), append(missingMsg, installNMState)
		if needNMState && len(st.Inputs.ClusterNetworks)+len(st.Inputs.ServiceNetworks)+len(st.Masquerade)+len(sr.Spec.MainTableNetworks) == 0 {
			// The policy is dropped below; Generate still wants
			// main-table networks for it, which do not matter here.
			gen = sr.DeepCopy()
			gen.Spec.MainTableNetworks = []string{"0.0.0.0/32"}
		}
	}
	if !r.APIs.OVN {
		missing, missingMsg = append(missing, ReasonOVNMissing), append(missingMsg, installOVN)
	}
	objs, err := generate.Generate(gen, generate.Inputs{
		Namespace:       r.Namespace,
		ServiceNetworks: st.Inputs.ServiceNetworks,
		ClusterNetworks: st.Inputs.ClusterNetworks,
		OtherNetworks:   st.Masquerade,
	})
	if err != nil {
		msg := err.Error()
		out.set(ConditionGenerated, metav1.ConditionFalse, "GenerateFailed", msg)
		notYet("GenerateFailed", "nothing was generated")
		out.set(ConditionReady, metav1.ConditionFalse, "GenerateFailed", msg)
		out.warnReason, out.warnMessage = "GenerateFailed", msg
		return out, nil
	}
	if !r.APIs.NMState {
		objs.Policies = nil
	}
	if !r.APIs.OVN {
		objs.EgressServices = nil
	}

	// Apply.
	var conflicts []string
	var errs []error
	want := map[string]bool{}
	owned := map[symrouting.ObjectRef]bool{}
	for _, o := range objs.All() {
		gvk := o.GetObjectKind().GroupVersionKind()
		want[ownedapply.Key(gvk, o.GetNamespace(), o.GetName())] = true
		conflict, err := r.applySR(ctx, sr, o)
		switch {
		case err != nil:
			errs = append(errs, fmt.Errorf("%s %s: %w", gvk.Kind, client.ObjectKeyFromObject(o), err))
		case conflict != "":
			conflicts = append(conflicts, conflict)
		default:
			owned[srRef(o)] = true
			out.objects = append(out.objects, v1alpha1.GeneratedObject{
				APIVersion: gvk.GroupVersion().String(), Kind: gvk.Kind, Namespace: o.GetNamespace(), Name: o.GetName(),
			})
		}
	}
	// Prune what is ours and no longer generated.
	items, err := r.listOwnedSR(ctx, r.Client, sr)
	if err != nil {
		errs = append(errs, err)
	}
	for _, o := range items {
		if want[ownedapply.Key(o.GetObjectKind().GroupVersionKind(), o.GetNamespace(), o.GetName())] {
			continue
		}
		logf.FromContext(ctx).Info("deleting an object no longer generated", "symmetricrouting", sr.Name,
			"kind", o.GetObjectKind().GroupVersionKind().Kind, "namespace", o.GetNamespace(), "name", o.GetName())
		if err := r.Client.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("delete %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, client.ObjectKeyFromObject(o), err))
		}
	}
	applyErr := errors.Join(errs...)

	// Generated.
	switch {
	case len(missing) > 0:
		msg := strings.Join(missingMsg, "; ") + fmt.Sprintf("; generated the other %d object(s)", len(out.objects))
		if len(conflicts) > 0 {
			msg += "; " + strings.Join(conflicts, "; ")
		}
		out.set(ConditionGenerated, metav1.ConditionFalse, missing[0], msg)
	case len(conflicts) > 0:
		out.set(ConditionGenerated, metav1.ConditionFalse, ReasonConflict, strings.Join(conflicts, "; "))
	case applyErr != nil:
		out.set(ConditionGenerated, metav1.ConditionFalse, "ApplyFailed", fmt.Sprintf("writing the generated objects failed: %v; retrying", applyErr))
	default:
		out.set(ConditionGenerated, metav1.ConditionTrue, "Generated", fmt.Sprintf("%d object(s) generated and up to date", len(out.objects)))
	}

	// PolicyEnacted.
	var policies []string
	for _, p := range objs.Policies {
		policies = append(policies, p.Name)
	}
	if sr.Spec.VRF.ExistingPolicy != "" {
		policies = append(policies, sr.Spec.VRF.ExistingPolicy)
		owned[symrouting.ObjectRef{Kind: symrouting.KindPolicy, Name: sr.Spec.VRF.ExistingPolicy}] = true
	}
	if !r.APIs.NMState {
		out.set(ConditionPolicyEnacted, metav1.ConditionFalse, ReasonNMStateMissing, installNMState)
	} else {
		status, reason, msg := policyEnacted(st, policies)
		out.set(ConditionPolicyEnacted, status, reason, msg)
	}

	// EgressAssigned.
	if !r.APIs.OVN {
		out.set(ConditionEgressAssigned, metav1.ConditionFalse, ReasonOVNMissing, installOVN)
	} else {
		status, reason, msg, hosts := egressAssigned(st, objs.EgressServices)
		out.hosts = hosts
		out.set(ConditionEgressAssigned, status, reason, msg)
	}

	// Consistent.
	for _, s := range sr.Spec.Services {
		owned[symrouting.ObjectRef{Kind: symrouting.KindService, Namespace: s.Namespace, Name: s.Name}] = true
	}
	in := st.Inputs
	if len(in.ClusterNetworks)+len(in.ServiceNetworks) == 0 && len(sr.Spec.MainTableNetworks) > 0 {
		for _, s := range sr.Spec.MainTableNetworks {
			if p, err := netip.ParsePrefix(s); err == nil {
				in.ClusterNetworks = append(in.ClusterNetworks, p)
			}
		}
		in.NetworksSource = fmt.Sprintf("symmetricrouting %q spec.mainTableNetworks", sr.Name)
	}
	var mine []symrouting.Finding
	for _, f := range symrouting.Check(in) {
		if slices.ContainsFunc(f.Objects, func(ref symrouting.ObjectRef) bool { return owned[ref] }) {
			mine = append(mine, f)
			out.findings = append(out.findings, findingLine(f))
		}
	}
	c := consistentCondition(mine, true, sr.Generation)
	if c.Reason == "NoErrors" {
		c.Message = "the generated objects agree with the cluster; " + strings.TrimPrefix(c.Message, "the symmetric-routing objects agree; ")
	} else if c.Status == metav1.ConditionTrue {
		c.Message = "the generated objects agree with each other and with the cluster"
	}
	out.set(ConditionConsistent, c.Status, c.Reason, c.Message)

	// Ready.
	var notReady []string
	reason := ""
	for _, t := range []string{ConditionGenerated, ConditionPolicyEnacted, ConditionEgressAssigned, ConditionConsistent} {
		if c := out.find(t); c.Status != metav1.ConditionTrue {
			notReady = append(notReady, fmt.Sprintf("%s: %s", t, c.Message))
			if reason == "" {
				reason = c.Reason
			}
		}
	}
	switch {
	case len(missing) > 0:
		out.set(ConditionReady, metav1.ConditionFalse, missing[0], strings.Join(missingMsg, "; "))
		out.warnReason, out.warnMessage = missing[0], strings.Join(missingMsg, "; ")
	case len(conflicts) > 0:
		out.set(ConditionReady, metav1.ConditionFalse, ReasonConflict, strings.Join(conflicts, "; "))
		out.warnReason, out.warnMessage = ReasonConflict, strings.Join(conflicts, "; ")
	case len(notReady) > 0:
		out.set(ConditionReady, metav1.ConditionFalse, reason, strings.Join(notReady, "; "))
	default:
		out.set(ConditionReady, metav1.ConditionTrue, "Ready", "generated, enacted on every node, egress hosts assigned, consistent")
	}
	return out, applyErr
}

// applySR creates o, or updates it when it is ours and differs; an object
// that is not ours is never written and is returned as a conflict.
func (r *Reconciler) applySR(ctx context.Context, sr *v1alpha1.SymmetricRouting, o client.Object) (string, error) {
	a := ownedapply.Applier{Client: r.Client, Scheme: r.Scheme, HashAnnotation: HashAnnotation}
	out, err := a.CreateOrUpdate(ctx, o, func(live client.Object) bool { return ownedBy(live, sr) })
	switch {
	case err != nil:
		return "", err
	case out == ownedapply.NotOurs:
		return fmt.Sprintf("%s exists and was not generated for this symmetricrouting (it lacks label %s=%s and an owner reference to it), so it is left alone: delete or rename it, or change the name the declaration generates",
			srRef(o), generate.SymmetricRoutingLabel, sr.Name), nil
	case out == ownedapply.Updated:
		logf.FromContext(ctx).Info("updated a generated object", "symmetricrouting", sr.Name, "object", srRef(o).String())
	}
	return "", nil
}

// listOwnedSR lists every object generated for sr (label and owner UID).
func (r *Reconciler) listOwnedSR(ctx context.Context, rd client.Reader, sr *v1alpha1.SymmetricRouting) ([]client.Object, error) {
	var out []client.Object
	var errs []error
	for _, k := range ownedKinds {
		if !k.served(r.APIs) {
			continue
		}
		list := k.list()
		opts := []client.ListOption{client.MatchingLabels{generate.SymmetricRoutingLabel: sr.Name}}
		if k.inOpsNS {
			opts = append(opts, client.InNamespace(r.Namespace))
		}
		if err := rd.List(ctx, list, opts...); err != nil {
			if meta.IsNoMatchError(err) {
				continue
			}
			errs = append(errs, fmt.Errorf("list %s: %w", k.gvk.Kind, err))
			continue
		}
		_ = meta.EachListItem(list, func(ro runtime.Object) error {
			o := ro.(client.Object)
			if ownedBy(o, sr) {
				o.GetObjectKind().SetGroupVersionKind(k.gvk)
				out = append(out, o)
			}
			return nil
		})
	}
	return out, errors.Join(errs...)
}

// finalizeSR deletes every object generated for sr, then releases it.
func (r *Reconciler) finalizeSR(ctx context.Context, sr *v1alpha1.SymmetricRouting) error {
	if !controllerutil.ContainsFinalizer(sr, Finalizer) {
		return nil
	}
	var rd client.Reader = r.Client
	if r.APIReader != nil {
		rd = r.APIReader // nothing just created may be missed
	}
	items, err := r.listOwnedSR(ctx, rd, sr)
	if err != nil {
		return err
	}
	var errs []error
	for _, o := range items {
		if err := r.Client.Delete(ctx, o); client.IgnoreNotFound(err) != nil {
			errs = append(errs, fmt.Errorf("delete %s %s: %w", o.GetObjectKind().GroupVersionKind().Kind, client.ObjectKeyFromObject(o), err))
		}
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	r.mu.Lock()
	delete(r.srEvents, sr.Name)
	r.mu.Unlock()
	patch := client.MergeFrom(sr.DeepCopy())
	controllerutil.RemoveFinalizer(sr, Finalizer)
	return r.Client.Patch(ctx, sr, patch)
}

// policyEnacted: every policy Available at its generation on every node it
// selects (from the enactments <node>.<policy>).
func policyEnacted(st *load.State, names []string) (metav1.ConditionStatus, string, string) {
	if len(names) == 0 {
		return metav1.ConditionTrue, "NoPolicy", "no NMState policy is involved"
	}
	enactments := map[string]int{}
	for i := range st.Inputs.Enactments {
		enactments[st.Inputs.Enactments[i].Name] = i
	}
	var failed, waiting, done []string
	noNodes := []string{}
	for _, name := range names {
		var pol *nmstatev1.NodeNetworkConfigurationPolicy
		for i := range st.Inputs.Policies {
			if st.Inputs.Policies[i].Name == name {
				pol = &st.Inputs.Policies[i]
			}
		}
		if pol == nil {
			waiting = append(waiting, fmt.Sprintf("nodenetworkconfigurationpolicy %q does not exist yet", name))
			continue
		}
		sel := labels.SelectorFromSet(pol.Spec.NodeSelector)
		var nodes []string
		for _, n := range st.Inputs.Nodes {
			if sel.Matches(labels.Set(n.Labels)) {
				nodes = append(nodes, n.Name)
			}
		}
		if len(nodes) == 0 {
			noNodes = append(noNodes, fmt.Sprintf("nodenetworkconfigurationpolicy %q selects no node (spec.nodeSelector %v): label the nodes that have the VRF's port", name, pol.Spec.NodeSelector))
			continue
		}
		for _, n := range nodes {
			en := n + "." + name
			i, ok := enactments[en]
			if !ok {
				waiting = append(waiting, fmt.Sprintf("enactment %s does not exist yet", en))
				continue
			}
			e := &st.Inputs.Enactments[i]
			conds := e.Status.Conditions
			isTrue := func(t string) *nmstateshared.Condition {
				if c := conds.Find(nmstateshared.ConditionType(t)); c != nil && c.Status == corev1.ConditionTrue {
					return c
				}
				return nil
			}
			switch {
			case isTrue("Failing") != nil || isTrue("Aborted") != nil:
				c := isTrue("Failing")
				if c == nil {
					c = isTrue("Aborted")
				}
				failed = append(failed, fmt.Sprintf("enactment %s is %s: %s", en, c.Type, c.Message))
			case isTrue("Available") != nil && e.Status.PolicyGeneration >= pol.Generation:
				done = append(done, n)
			default:
				waiting = append(waiting, fmt.Sprintf("enactment %s is not Available at policy generation %d", en, pol.Generation))
			}
		}
	}
	switch {
	case len(failed) > 0:
		return metav1.ConditionFalse, "EnactmentFailed", strings.Join(failed, "; ")
	case len(noNodes) > 0:
		return metav1.ConditionFalse, "NoNodes", strings.Join(noNodes, "; ")
	case len(waiting) > 0:
		return metav1.ConditionFalse, "Progressing", strings.Join(waiting, "; ")
	}
	return metav1.ConditionTrue, "Enacted", fmt.Sprintf("Available on node(s) %s", strings.Join(done, ", "))
}

// egressAssigned: OVN reported a host for every generated EgressService.
func egressAssigned(st *load.State, ess []*ovnv1.EgressService) (metav1.ConditionStatus, string, string, map[string]string) {
	var hosts map[string]string
	var waiting, assigned []string
	for _, want := range ess {
		key := want.Namespace + "/" + want.Name
		host := ""
		for i := range st.Inputs.EgressServices {
			if e := &st.Inputs.EgressServices[i]; e.Namespace == want.Namespace && e.Name == want.Name {
				host = e.Status.Host
			}
		}
		if host == "" {
			waiting = append(waiting, key)
			continue
		}
		if hosts == nil {
			hosts = map[string]string{}
		}
		hosts[key] = host
		assigned = append(assigned, key+" on "+host)
	}
	if len(waiting) > 0 {
		return metav1.ConditionFalse, "Pending", fmt.Sprintf("OVN-Kubernetes has not picked an egress host for egressservice(s) %s yet (status.host is empty): check that spec.nodeSelector matches ready nodes and that the Service has an address", strings.Join(waiting, ", ")), hosts
	}
	if len(assigned) == 0 {
		return metav1.ConditionTrue, "NoEgressService", "no EgressService is generated", hosts
	}
	return metav1.ConditionTrue, "Assigned", strings.Join(assigned, ", "), hosts
}

// emitSREvent reports a Warning on the SymmetricRouting when its problem
// changed (a steady state emits nothing).
func (r *Reconciler) emitSREvent(sr *v1alpha1.SymmetricRouting, out *srOutcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.srEvents == nil {
		r.srEvents = map[string]string{}
	}
	key := out.warnReason + "\x00" + out.warnMessage
	if out.warnReason == "" {
		delete(r.srEvents, sr.Name)
		return
	}
	if r.srEvents[sr.Name] == key {
		return
	}
	r.srEvents[sr.Name] = key
	r.Recorder.Event(sr, corev1.EventTypeWarning, out.warnReason, out.warnMessage)
}

// writeSRStatus writes the status when it changed; conditions keep their
// lastTransitionTime unless their status flips (meta.SetStatusCondition).
func (r *Reconciler) writeSRStatus(ctx context.Context, sr *v1alpha1.SymmetricRouting, out *srOutcome) error {
	before := sr.DeepCopy()
	s := &sr.Status
	s.ObservedGeneration = sr.Generation
	for _, c := range out.conditions {
		c.ObservedGeneration = sr.Generation
		meta.SetStatusCondition(&s.Conditions, c)
	}
	s.Objects = out.objects
	s.Findings = out.findings
	s.EgressHosts = out.hosts
	if equality.Semantic.DeepEqual(before.Status, sr.Status) {
		return nil
	}
	return r.Client.Status().Patch(ctx, sr, client.MergeFrom(before))
}

// ownedBy reports whether o was generated for sr: it carries the
// symmetric-routing label with sr's name and an owner reference to sr's UID.
func ownedBy(o client.Object, sr *v1alpha1.SymmetricRouting) bool {
	if o.GetLabels()[generate.SymmetricRoutingLabel] != sr.Name {
		return false
	}
	for _, ref := range o.GetOwnerReferences() {
		if ref.UID == sr.UID {
			return true
		}
	}
	return false
}
