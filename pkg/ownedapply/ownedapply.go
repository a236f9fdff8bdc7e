// Package ownedapply writes the objects an owner generates (the MetalLB
// object's workloads, a SymmetricRouting's policies, peers and
// EgressServices) and only when they differ from what is live: a
// reconcile that changes nothing makes no write, not even a no-op apply.
//
// The decision is "hash, then compare": each generated object is stamped
// with the hash of its generated form, so a field dropped from the
// generator is noticed (the hash changes, the write removes the field), and
// every generated field must still hold its generated value in the live
// object, so an edit by someone else is repaired. Fields the API server
// defaults or other managers own are ignored.
//
// Two ways to write, for two kinds of ownership:
//   - ServerSideApply, for objects that are ours by name alone (the
//     workloads an operator renders): apply with the field manager, forcing
//     ownership.
//   - CreateOrUpdate, for objects whose name a user chose and which may
//     already exist as someone else's: created when missing, updated only
//     when the owner predicate accepts the live object, otherwise reported
//     as a conflict and never written.
package ownedapply

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Applier writes generated objects when they differ from the live ones.
type Applier struct {
	// Client reads (through the cache, normally) and writes.
	Client client.Client
	// Scheme builds typed objects for reads of the kinds it knows, so the
	// cache's typed informers serve them.
	Scheme *runtime.Scheme
	// HashAnnotation is the annotation that carries an object's hash.
	HashAnnotation string
	// FieldManager is the server-side apply field manager.
	FieldManager string
}

// Hash is the hash of a generated object's JSON form.
func Hash(v any) (string, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16]), nil
}

// stamp sets the hash annotation of o to h.
func (a *Applier) stamp(o client.Object, h string) {
	ann := o.GetAnnotations()
	if ann == nil {
		ann = map[string]string{}
	}
	ann[a.HashAnnotation] = h
	o.SetAnnotations(ann)
}

// ServerSideApply applies o (hashed as given, owner references included)
// unless the live object already carries it.
func (a *Applier) ServerSideApply(ctx context.Context, o *unstructured.Unstructured) error {
	h, err := Hash(o.Object)
	if err != nil {
		return err
	}
	a.stamp(o, h)
	live, found, err := a.live(ctx, o)
	if err != nil {
		return err
	}
	if found && !NeedsApply(o.Object, live, a.HashAnnotation) {
		return nil
	}
	return a.Client.Patch(ctx, o, client.Apply, client.FieldOwner(a.FieldManager), client.ForceOwnership)
}

// live reads the current object as a map: typed kinds through the typed
// informers the caller already runs for its watches.
func (a *Applier) live(ctx context.Context, o *unstructured.Unstructured) (map[string]any, bool, error) {
	gvk := o.GroupVersionKind()
	key := client.ObjectKeyFromObject(o)
	if typed, err := a.Scheme.New(gvk); err == nil {
		obj := typed.(client.Object)
		if err := a.Client.Get(ctx, key, obj); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, false, nil
			}
			return nil, false, err
		}
		m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
		return m, err == nil, err
	}
	u := &unstructured.Unstructured{}
	u.SetGroupVersionKind(gvk)
	if err := a.Client.Get(ctx, key, u); err != nil {
		if apierrors.IsNotFound(err) || meta.IsNoMatchError(err) {
			return nil, false, nil
		}
		return nil, false, err
	}
	return u.Object, true, nil
}

// NeedsApply reports whether the rendered object differs from the live
// one: another hash in hashAnnotation, or a rendered field whose live
// value is different.
func NeedsApply(rendered, live map[string]any, hashAnnotation string) bool {
	lm, _ := live["metadata"].(map[string]any)
	la, _ := lm["annotations"].(map[string]any)
	rm, _ := rendered["metadata"].(map[string]any)
	ra, _ := rm["annotations"].(map[string]any)
	if la[hashAnnotation] != ra[hashAnnotation] {
		return true
	}
	return !Subset(rendered, live)
}

// Outcome is what CreateOrUpdate did.
type Outcome int

const (
	// Unchanged: the live object is ours and already as generated, or our
	// own create has not reached the cache yet (its watch event brings the
	// next reconcile, which checks whose it is).
	Unchanged Outcome = iota
	// Created: the object did not exist and was created.
	Created
	// Updated: the object was ours and differed; it was updated.
	Updated
	// NotOurs: the object exists and the owner predicate rejects it; it was
	// not written. The caller reports the conflict.
	NotOurs
)

// CreateOrUpdate creates o, or updates it when owned accepts the live
// object and it differs from o in its labels, the hash, or its spec. An
// update writes o's spec and labels over the live object and keeps what
// others added (other labels and annotations); status is never written.
func (a *Applier) CreateOrUpdate(ctx context.Context, o client.Object, owned func(live client.Object) bool) (Outcome, error) {
	gvk := o.GetObjectKind().GroupVersionKind()
	want, err := toMap(o)
	if err != nil {
		return Unchanged, err
	}
	h, err := Hash(want)
	if err != nil {
		return Unchanged, err
	}
	a.stamp(o, h)

	obj, err := a.Scheme.New(gvk)
	if err != nil {
		return Unchanged, fmt.Errorf("%s: %w", gvk.Kind, err)
	}
	live := obj.(client.Object)
	err = a.Client.Get(ctx, client.ObjectKeyFromObject(o), live)
	if apierrors.IsNotFound(err) {
		err := a.Client.Create(ctx, o)
		if apierrors.IsAlreadyExists(err) {
			return Unchanged, nil
		}
		if err != nil {
			return Unchanged, err
		}
		return Created, nil
	}
	if err != nil {
		return Unchanged, err
	}
	if !owned(live) {
		return NotOurs, nil
	}
	liveMap, err := toMap(live)
	if err != nil {
		return Unchanged, err
	}
	labels := map[string]any{}
	for k, v := range o.GetLabels() {
		labels[k] = v
	}
	check := map[string]any{
		"metadata": map[string]any{
			"labels":      labels,
			"annotations": map[string]any{a.HashAnnotation: h},
		},
		"spec": want["spec"],
	}
	if Subset(check, liveMap) {
		return Unchanged, nil
	}
	u := &unstructured.Unstructured{Object: liveMap}
	u.SetGroupVersionKind(gvk)
	u.Object["spec"] = want["spec"]
	l := u.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	for k, v := range o.GetLabels() {
		l[k] = v
	}
	u.SetLabels(l)
	a.stamp(u, h)
	delete(u.Object, "status")
	if err := a.Client.Update(ctx, u); err != nil {
		return Unchanged, err
	}
	return Updated, nil
}

func toMap(o any) (map[string]any, error) {
	b, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	return m, json.Unmarshal(b, &m)
}

// Subset reports whether every value in want is in got: maps key by key,
// lists element by element with equal lengths, scalars equal (numbers by
// value, whatever their Go type).
func Subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return len(w) == 0 && got == nil
		}
		for k, v := range w {
			if !Subset(v, g[k]) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return len(w) == 0 && got == nil
		}
		for i := range w {
			if !Subset(w[i], g[i]) {
				return false
			}
		}
		return true
	default:
		if wf, ok := number(want); ok {
			gf, ok := number(got)
			return ok && wf == gf
		}
		return want == got
	}
}

func number(v any) (float64, bool) {
	switch n := v.(type) {
	case int64:
		return float64(n), true
	case int:
		return float64(n), true
	case int32:
		return float64(n), true
	case float64:
		return n, true
	}
	return 0, false
}

// Key names an object by kind, namespace and name, for the set of objects
// generated this time, against which the live owned objects are pruned.
func Key(gvk schema.GroupVersionKind, namespace, name string) string {
	return gvk.GroupKind().String() + "/" + namespace + "/" + name
}
