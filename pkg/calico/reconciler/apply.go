package reconciler

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/calico"
	calicov1 "github.com/lbstack/lbstack/pkg/calicoapi/v1"
)

// The two fields of spec lbstack owns, by their JSON names.
const (
	fieldLBIPs    = "serviceLoadBalancerIPs"
	fieldPrefixes = "prefixAdvertisements"
)

// sync makes lbstack's fields of the live default BGPConfiguration d's,
// writing only when they differ (values or ownership). It never creates
// the object (live nil: nothing is written; Check reports it). A conflict
// with another field manager is not forced: it comes back as the condition
// to report, with an event on ml the first time. After a write, written
// is the object's spec as the API server returned it.
func (r *Reconciler) sync(ctx context.Context, ml *v1beta1.MetalLB, live *calicov1.BGPConfiguration, d calico.Desired) (_ *metav1.Condition, written *v3.BGPConfigurationSpec, _ error) {
	if live == nil {
		return nil, nil, nil
	}
	want := d.Spec()
	need := map[string]bool{}
	if len(want.ServiceLoadBalancerIPs) > 0 {
		need[fieldLBIPs] = true
	}
	if len(want.PrefixAdvertisements) > 0 {
		need[fieldPrefixes] = true
	}
	owned, err := OwnedFields(live.ManagedFields)
	if err != nil {
		return nil, nil, fmt.Errorf("%s metadata.managedFields: %w", defaultConfigRef, err)
	}
	if maps.Equal(owned, need) && sameFields(live.Spec, want) {
		r.setConflict(nil)
		return nil, nil, nil // the steady state: no write
	}
	if len(owned) == 0 && len(need) == 0 {
		return nil, nil, nil
	}
	body, wantKey, err := applyBody(want)
	if err != nil {
		return nil, nil, err
	}
	r.mu.Lock()
	prev := r.conflict
	r.mu.Unlock()
	if prev != nil && prev.resourceVersion == live.ResourceVersion && prev.want == wantKey {
		// Refused before, and nothing changed since: not tried again.
		return conflictCondition(prev.message), nil, nil
	}
	err = r.Client.Patch(ctx, body, client.Apply, client.FieldOwner(FieldManager))
	if apierrors.IsConflict(err) {
		if managers := conflictingFields(err); len(managers) > 0 {
			msg := conflictMessage(managers, want)
			rv := live.ResourceVersion
			// What no one else owns is still written: the
			// serviceLoadBalancerIPs when only the prefixAdvertisements
			// (which users also set for other CIDRs) are someone else's.
			rest := want
			if _, ok := managers["spec."+fieldLBIPs]; ok {
				rest.ServiceLoadBalancerIPs = nil
			}
			if _, ok := managers["spec."+fieldPrefixes]; ok {
				rest.PrefixAdvertisements = nil
			}
			var written *v3.BGPConfigurationSpec
			if len(rest.ServiceLoadBalancerIPs) > 0 || len(rest.PrefixAdvertisements) > 0 {
				partial, _, err := applyBody(rest)
				if err != nil {
					return nil, nil, err
				}
				if err := r.Client.Patch(ctx, partial, client.Apply, client.FieldOwner(FieldManager)); err != nil {
					return nil, nil, fmt.Errorf("server-side apply of the fields of %s no other manager owns as %q: %w", defaultConfigRef, FieldManager, err)
				}
				rv = partial.GetResourceVersion()
				var after calicov1.BGPConfiguration
				if err := runtime.DefaultUnstructuredConverter.FromUnstructured(partial.Object, &after); err != nil {
					return nil, nil, fmt.Errorf("decode %s as applied: %w", defaultConfigRef, err)
				}
				written = &after.Spec
			}
			r.setConflict(&conflictState{resourceVersion: rv, want: wantKey, message: msg})
			if ml != nil && (prev == nil || prev.message != msg) {
				r.Recorder.Event(ml, corev1.EventTypeWarning, ReasonConflictEventType, msg)
			}
			return conflictCondition(msg), written, nil
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("server-side apply of spec.%s and spec.%s of %s as %q: %w", fieldLBIPs, fieldPrefixes, defaultConfigRef, FieldManager, err)
	}
	r.setConflict(nil)
	logf.FromContext(ctx).Info("applied lbstack's fields of Calico's default BGPConfiguration",
		fieldLBIPs, len(want.ServiceLoadBalancerIPs), fieldPrefixes, len(want.PrefixAdvertisements))
	var after calicov1.BGPConfiguration
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(body.Object, &after); err != nil {
		return nil, nil, fmt.Errorf("decode %s as applied: %w", defaultConfigRef, err)
	}
	return nil, &after.Spec, nil
}

func (r *Reconciler) setConflict(c *conflictState) {
	r.mu.Lock()
	r.conflict = c
	r.mu.Unlock()
}

func conflictCondition(msg string) *metav1.Condition {
	return &metav1.Condition{Status: metav1.ConditionFalse, Reason: ReasonConflict, Message: msg}
}

// sameFields: the live lists hold exactly the wanted values (an empty
// wanted list matches any live one: lbstack owns no entry of it).
func sameFields(live, want v3.BGPConfigurationSpec) bool {
	if len(want.ServiceLoadBalancerIPs) > 0 && !equality.Semantic.DeepEqual(live.ServiceLoadBalancerIPs, want.ServiceLoadBalancerIPs) {
		return false
	}
	if len(want.PrefixAdvertisements) > 0 && !equality.Semantic.DeepEqual(live.PrefixAdvertisements, want.PrefixAdvertisements) {
		return false
	}
	return true
}

// applyBody is the apply configuration holding only lbstack's fields (an
// empty list is left out, which gives lbstack's ownership of it up), and
// its JSON.
func applyBody(want v3.BGPConfigurationSpec) (*unstructured.Unstructured, string, error) {
	spec := map[string]any{}
	b, err := json.Marshal(want)
	if err != nil {
		return nil, "", fmt.Errorf("encode %s spec: %w", defaultConfigRef, err)
	}
	var all map[string]any
	if err := json.Unmarshal(b, &all); err != nil {
		return nil, "", fmt.Errorf("decode %s spec: %w", defaultConfigRef, err)
	}
	for _, f := range []string{fieldLBIPs, fieldPrefixes} {
		if v, ok := all[f]; ok {
			spec[f] = v
		}
	}
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetGroupVersionKind(gvkV1Config)
	u.SetName(calicov1.DefaultBGPConfigurationName)
	if len(spec) > 0 {
		u.Object["spec"] = spec
	}
	key, err := json.Marshal(u.Object)
	if err != nil {
		return nil, "", fmt.Errorf("encode %s apply configuration: %w", defaultConfigRef, err)
	}
	return u, string(key), nil
}

// OwnedFields are the fields of lbstack's (spec.serviceLoadBalancerIPs,
// spec.prefixAdvertisements) that FieldManager's apply entry owns.
func OwnedFields(entries []metav1.ManagedFieldsEntry) (map[string]bool, error) {
	out := map[string]bool{}
	for _, e := range entries {
		if e.Manager != FieldManager || e.Operation != metav1.ManagedFieldsOperationApply || e.FieldsV1 == nil {
			continue
		}
		var top map[string]json.RawMessage
		if err := json.Unmarshal(e.FieldsV1.Raw, &top); err != nil {
			return nil, fmt.Errorf("entry of %q: %w", e.Manager, err)
		}
		var spec map[string]json.RawMessage
		if raw, ok := top["f:spec"]; ok {
			if err := json.Unmarshal(raw, &spec); err != nil {
				return nil, fmt.Errorf("entry of %q, f:spec: %w", e.Manager, err)
			}
		}
		for _, f := range []string{fieldLBIPs, fieldPrefixes} {
			if _, ok := spec["f:"+f]; ok {
				out[f] = true
			}
		}
	}
	return out, nil
}

// conflictingFields are the fields of a server-side apply conflict, each
// with the manager that owns it ("field" -> "manager text").
func conflictingFields(err error) map[string]string {
	st, ok := err.(apierrors.APIStatus)
	if !ok || st.Status().Details == nil {
		return nil
	}
	out := map[string]string{}
	for _, c := range st.Status().Details.Causes {
		if c.Type != metav1.CauseTypeFieldManagerConflict {
			continue
		}
		out[strings.TrimPrefix(c.Field, ".")] = c.Message
	}
	return out
}

// conflictMessage says which field another manager owns, what lbstack
// would write, and what to do.
func conflictMessage(fields map[string]string, want v3.BGPConfigurationSpec) string {
	names := slices.Sorted(maps.Keys(fields))
	var parts []string
	for _, f := range names {
		parts = append(parts, fmt.Sprintf("%s (%s)", f, fields[f]))
	}
	var cidrs []string
	for _, b := range want.ServiceLoadBalancerIPs {
		cidrs = append(cidrs, b.CIDR)
	}
	first := names[0]
	effect := fmt.Sprintf("Calico does not announce what the pools need (serviceLoadBalancerIPs %s)", strings.Join(cidrs, ", "))
	if _, ok := fields["spec."+fieldLBIPs]; !ok {
		effect = fmt.Sprintf("the routes do not carry the BGPAdvertisements' communities (lbstack wrote spec.%s, which no one else owns)", fieldLBIPs)
	}
	return fmt.Sprintf("%s %s is owned by another field manager with a different value: %s; lbstack (field manager %q) never overwrites it, so %s. "+
		"Remove the field from the other manager's configuration (for example `kubectl patch bgpconfiguration.crd.projectcalico.org default --type=json -p '[{\"op\":\"remove\",\"path\":\"/%s\"}]'` and drop it from its manifests), and lbstack writes it then",
		defaultConfigRef, first, strings.Join(parts, "; "), FieldManager, effect, strings.ReplaceAll(first, ".", "/"))
}
