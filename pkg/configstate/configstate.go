// Package configstate writes ConfigurationState objects: how the
// controller and each speaker report the configuration they run with. One
// vocabulary of conditions for every component, and one writer that
// creates the object when missing and writes its status only when it
// changes (a no-op reconcile makes no write).
package configstate

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/config"
)

// Condition types of a ConfigurationState. Every component reports Valid,
// Stale and Warnings (FromBuild); a speaker also reports Announcing.
const (
	// ConditionValid: the current metallb.io objects form a valid
	// configuration.
	ConditionValid = "Valid"
	// ConditionStale: the component is not using the current
	// configuration (it is invalid): it keeps the last valid one, or has
	// none yet.
	ConditionStale = "Stale"
	// ConditionWarnings: the configuration has warnings, such as references
	// to objects that do not exist yet.
	ConditionWarnings = "Warnings"
	// ConditionAnnouncing (speakers): what the node announces with - the
	// BGP state applied, sessions skipped, or nothing yet.
	ConditionAnnouncing = "Announcing"
)

// maxInCondition is how many problems a condition's message lists.
const maxInCondition = 100

// FromBuild is the status a component reports for a Build result: Result,
// and the Valid, Stale and Warnings conditions. who names the component in
// the messages ("the controller"); serving says whether it has a valid
// configuration in use (the current one, or the last valid one when the
// current one is invalid). prev's conditions are kept (a speaker's
// Announcing among them) and keep their transition time while their status
// does not change. ErrorSummary is the caller's: it says what the
// component does about the problems.
func FromBuild(prev v1beta1.ConfigurationStateStatus, built config.Result, serving bool, who string, now metav1.Time) v1beta1.ConfigurationStateStatus {
	st := v1beta1.ConfigurationStateStatus{Result: v1beta1.ConfigurationValid, Conditions: slices.Clone(prev.Conditions)}
	switch {
	case built.Config != nil && len(built.Errors) > 0:
		// Only BGPPeers are refused: the rest of the configuration is in
		// use, and the speakers leave those peers out (or keep their last
		// valid version).
		st.Result = v1beta1.ConfigurationInvalid
		SetCondition(&st, ConditionValid, false, "PeersRefused", Summarize(built.Errors, maxInCondition), now)
		SetCondition(&st, ConditionStale, false, "Current", who+" uses the current configuration; the speakers leave the refused BGPPeers out or keep their last valid version", now)
	case built.Config != nil:
		SetCondition(&st, ConditionValid, true, "Valid", "the configuration is valid and in use", now)
		SetCondition(&st, ConditionStale, false, "Current", who+" uses the current configuration", now)
	default:
		st.Result = v1beta1.ConfigurationInvalid
		SetCondition(&st, ConditionValid, false, "Invalid", Summarize(built.Errors, maxInCondition), now)
		if serving {
			SetCondition(&st, ConditionStale, true, "LastValidConfigurationInUse", "the current configuration is invalid; "+who+" keeps using the last valid configuration", now)
		} else {
			SetCondition(&st, ConditionStale, true, "NoValidConfiguration", "no valid configuration has been loaded; "+who+" waits for one", now)
		}
	}
	if len(built.Warnings) > 0 {
		SetCondition(&st, ConditionWarnings, true, "Warnings", Summarize(built.Warnings, maxInCondition), now)
	} else {
		SetCondition(&st, ConditionWarnings, false, "NoWarnings", "", now)
	}
	return st
}

// SetCondition sets one condition of st. Its transition time moves only
// when its status changes.
func SetCondition(st *v1beta1.ConfigurationStateStatus, typ string, ok bool, reason, msg string, now metav1.Time) {
	s := metav1.ConditionFalse
	if ok {
		s = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&st.Conditions, metav1.Condition{Type: typ, Status: s, Reason: reason, Message: msg, LastTransitionTime: now})
}

// Summarize joins problems into one line, listing at most max of them.
func Summarize(ps []config.Problem, max int) string {
	s := make([]string, 0, min(len(ps), max))
	for i, p := range ps {
		if i == max {
			break
		}
		s = append(s, p.Error())
	}
	out := strings.Join(s, "; ")
	if len(ps) > max {
		out += fmt.Sprintf("; and %d more", len(ps)-max)
	}
	return out
}

// Written is the outcome of Write.
type Written struct {
	// Object is the ConfigurationState as written (or as found, when
	// nothing changed).
	Object *v1beta1.ConfigurationState
	// Previous is the status before the write.
	Previous v1beta1.ConfigurationStateStatus
	// Changed says whether the status was written.
	Changed bool
}

// Write makes the status of ConfigurationState key what status returns for
// its current status, creating the object (with labels) when it is
// missing. It writes nothing when the status does not change. reader may
// be the cache or the API server; the writes go through c.
func Write(ctx context.Context, reader client.Reader, c client.Client, key types.NamespacedName, labels map[string]string,
	status func(prev v1beta1.ConfigurationStateStatus) v1beta1.ConfigurationStateStatus) (Written, error) {
	cs := &v1beta1.ConfigurationState{}
	if err := reader.Get(ctx, key, cs); err != nil {
		if !apierrors.IsNotFound(err) {
			return Written{}, fmt.Errorf("read configurationstate %s: %w", key, err)
		}
		cs = &v1beta1.ConfigurationState{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name, Labels: labels}}
		if err := c.Create(ctx, cs); err != nil {
			return Written{}, fmt.Errorf("create configurationstate %s: %w", key, err)
		}
	}
	out := Written{Object: cs, Previous: cs.Status}
	st := status(cs.Status)
	if equality.Semantic.DeepEqual(cs.Status, st) {
		return out, nil
	}
	orig := cs.DeepCopy()
	cs.Status = st
	if err := c.Status().Patch(ctx, cs, client.MergeFrom(orig)); err != nil {
		return out, fmt.Errorf("write configurationstate %s status: %w", key, err)
	}
	out.Changed = true
	return out, nil
}
