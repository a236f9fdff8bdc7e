package speaker

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/configstate"
)

// configurationStateName is the name of the ConfigurationState of a node's
// speaker, in the stack's namespace.
func configurationStateName(node string) string { return "speaker-" + node }

// writeConfigurationState records the outcome in ConfigurationState
// speaker-<node>: the conditions every component reports about the
// configuration (configstate.FromBuild), and the Announcing condition,
// what this node announces with: apply errors, skipped sessions, the last
// valid configuration. errorSummary lists the configuration errors, or
// else the apply error, skipped and pending sessions and warnings.
func (r *reconciler) writeConfigurationState(ctx context.Context, built config.Result, applyErr error, skipped map[string]error, problems []string) error {
	key := types.NamespacedName{Namespace: r.opts.Namespace, Name: configurationStateName(r.opts.NodeName)}
	now := metav1.Now()
	w, err := configstate.Write(ctx, r.client, r.client, key, map[string]string{labelStatusNode: r.opts.NodeName},
		func(prev v1beta1.ConfigurationStateStatus) v1beta1.ConfigurationStateStatus {
			st := configstate.FromBuild(prev, built, r.lastGood != nil, "the speaker", now)
			st.ErrorSummary = errorSummary(built, applyErr, skipped, problems)
			ok, reason, msg := announcing(built, r.lastGood != nil, applyErr, skipped)
			configstate.SetCondition(&st, configstate.ConditionAnnouncing, ok, reason, msg, now)
			return st
		})
	if err != nil || !w.Changed {
		return err
	}
	// An event per new error, not per reconcile: the status is written
	// only when something changed.
	st := w.Object.Status
	if cfgErr := built.Err(); cfgErr != nil && w.Previous.ErrorSummary != st.ErrorSummary {
		r.recorder.Event(w.Object, corev1.EventTypeWarning, "ConfigurationInvalid", truncate(cfgErr.Error(), 1000))
	}
	if applyErr != nil && w.Previous.ErrorSummary != st.ErrorSummary {
		r.recorder.Event(w.Object, corev1.EventTypeWarning, "BGPApplyFailed", truncate(applyErr.Error(), 1000))
	}
	return nil
}

// errorSummary is the configuration errors when there are, or else what
// keeps this node from announcing as configured.
func errorSummary(built config.Result, applyErr error, skipped map[string]error, problems []string) string {
	if cfgErr := built.Err(); cfgErr != nil {
		return cfgErr.Error()
	}
	var notes []string
	if applyErr != nil {
		notes = append(notes, applyErr.Error())
	}
	for _, name := range slices.Sorted(maps.Keys(skipped)) {
		notes = append(notes, fmt.Sprintf("session %s skipped by the BGP backend: %v", name, skipped[name]))
	}
	notes = append(notes, problems...)
	for _, w := range built.Warnings {
		notes = append(notes, w.Error())
	}
	return strings.Join(notes, "\n")
}

// announcing is the Announcing condition: whether this node announces, and
// with what.
func announcing(built config.Result, serving bool, applyErr error, skipped map[string]error) (ok bool, reason, msg string) {
	switch {
	case applyErr != nil:
		return false, "ApplyFailed", applyErr.Error()
	case !serving:
		return false, "NoValidConfiguration", "no valid configuration loaded yet"
	case built.Config == nil:
		return true, "LastValidConfiguration", "announcing with the last valid configuration"
	case len(built.DisabledPeers) > 0 || len(skipped) > 0:
		return true, "SessionsSkipped", skippedMessage(built, skipped)
	}
	return true, "Applied", "the BGP state of this node is applied"
}

// skippedMessage says which sessions this node does not run as
// configured, and that the others announce.
func skippedMessage(built config.Result, skipped map[string]error) string {
	var parts []string
	for _, name := range built.DisabledPeers {
		if slices.Contains(built.RetainedPeers, name) {
			parts = append(parts, fmt.Sprintf("bgppeer %q runs its last valid version", name))
		} else {
			parts = append(parts, fmt.Sprintf("bgppeer %q is left out", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(skipped)) {
		parts = append(parts, fmt.Sprintf("session %q is skipped by the BGP backend", name))
	}
	return "announcing every other session; " + strings.Join(parts, ", ") + " (see errorSummary)"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
