package configstate

import (
	"context"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/scheme"
)

// Write creates the object with its labels, writes a changed status, and
// writes nothing when the status is the same.
func TestWrite(t *testing.T) {
	c := fake.NewClientBuilder().WithScheme(scheme.New()).WithStatusSubresource(&v1beta1.ConfigurationState{}).Build()
	ctx := context.Background()
	key := types.NamespacedName{Namespace: "metallb-system", Name: "speaker-n1"}
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	valid := func(prev v1beta1.ConfigurationStateStatus) v1beta1.ConfigurationStateStatus {
		st := FromBuild(prev, config.Result{Config: &config.Config{}}, true, "the speaker", t0)
		SetCondition(&st, ConditionAnnouncing, true, "Applied", "applied", t0)
		return st
	}
	w, err := Write(ctx, c, c, key, map[string]string{"metallb.io/node": "n1"}, valid)
	if err != nil || !w.Changed {
		t.Fatalf("first write: %+v %v", w, err)
	}
	var cs v1beta1.ConfigurationState
	if err := c.Get(ctx, key, &cs); err != nil {
		t.Fatal(err)
	}
	if cs.Labels["metallb.io/node"] != "n1" || cs.Status.Result != v1beta1.ConfigurationValid ||
		!meta.IsStatusConditionTrue(cs.Status.Conditions, ConditionValid) || !meta.IsStatusConditionTrue(cs.Status.Conditions, ConditionAnnouncing) {
		t.Errorf("written %+v", cs)
	}
	w, err = Write(ctx, c, c, key, nil, valid)
	if err != nil || w.Changed {
		t.Errorf("same status written again: %+v %v", w, err)
	}
	w, err = Write(ctx, c, c, key, nil, func(prev v1beta1.ConfigurationStateStatus) v1beta1.ConfigurationStateStatus {
		return FromBuild(prev, config.Result{Errors: []config.Problem{{Message: "bad"}}}, true, "the speaker", t0)
	})
	if err != nil || !w.Changed || w.Previous.Result != v1beta1.ConfigurationValid || w.Object.Status.Result != v1beta1.ConfigurationInvalid {
		t.Errorf("invalid: %+v %v", w, err)
	}
	if c := meta.FindStatusCondition(w.Object.Status.Conditions, ConditionStale); c == nil || c.Reason != "LastValidConfigurationInUse" {
		t.Errorf("Stale %+v", c)
	}
	// Conditions FromBuild does not set (Announcing) are kept.
	if meta.FindStatusCondition(w.Object.Status.Conditions, ConditionAnnouncing) == nil {
		t.Errorf("Announcing dropped: %+v", w.Object.Status.Conditions)
	}
}
