package controllers

import (
	"regexp"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/render"
)

var reason = regexp.MustCompile(`^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`)

func TestConditions(t *testing.T) {
	one := int32(1)
	ready := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "lbstack-controller", Generation: 2}, Spec: appsv1.DeploymentSpec{Replicas: &one},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 1, UpdatedReplicas: 1, AvailableReplicas: 1}}
	ds := func(desired, updated, available int32) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "lbstack-speaker", Generation: 3},
			Status: appsv1.DaemonSetStatus{ObservedGeneration: 3, DesiredNumberScheduled: desired, UpdatedNumberScheduled: updated, NumberAvailable: available}}
	}
	for _, tc := range []struct {
		name string
		st   status
		want map[string]string // type -> status/reason
	}{
		{"all available", status{controller: ready, speaker: ds(3, 3, 3)}, map[string]string{
			"Available": "True/AllComponentsAvailable", "Progressing": "False/RolloutComplete", "Degraded": "False/AsExpected", "Upgradeable": "True/AsExpected"}},
		{"rolling", status{controller: ready, speaker: ds(3, 1, 2)}, map[string]string{
			"Available": "False/ComponentsNotAvailable", "Progressing": "True/RollingOut", "Degraded": "False/AsExpected", "Upgradeable": "False/RolloutInProgress"}},
		{"no nodes", status{controller: ready, speaker: ds(0, 0, 0)}, map[string]string{
			"Available": "False/NoSpeakerNodes", "Degraded": "True/NoSpeakerNodes"}},
		{"nothing yet", status{}, map[string]string{"Available": "False/ComponentsNotAvailable", "Progressing": "True/RollingOut"}},
		{"apply failed", status{controller: ready, speaker: ds(1, 1, 1), degradedReason: "ApplyFailed", degradedMessage: "x"}, map[string]string{
			"Available": "True/AllComponentsAvailable", "Degraded": "True/ApplyFailed"}},
		{"unsupported", status{unsupported: "spec.bgpBackend \"frr-k8s\" is not supported"}, map[string]string{
			"Available": "False/UnsupportedBGPBackend", "Degraded": "True/UnsupportedBGPBackend"}},
	} {
		conds := tc.st.conditions(7)
		if len(conds) != 4 {
			t.Fatalf("%s: %d conditions", tc.name, len(conds))
		}
		got := map[string]string{}
		for _, c := range conds {
			got[c.Type] = string(c.Status) + "/" + c.Reason
			if !reason.MatchString(c.Reason) || c.Message == "" || c.ObservedGeneration != 7 {
				t.Errorf("%s: %s reason %q message %q generation %d", tc.name, c.Type, c.Reason, c.Message, c.ObservedGeneration)
			}
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("%s: %s = %s, want %s", tc.name, k, got[k], v)
			}
		}
	}
}

func TestParamsDefaults(t *testing.T) {
	p := ParamsFor(&v1beta1.MetalLB{ObjectMeta: metav1.ObjectMeta{Name: "metallb", Namespace: "ns"}}, testImages(), false, false, "k")
	if p.BGPBackend != "frr" || p.LogLevel != "info" {
		t.Errorf("defaults: backend %q log level %q (the MetalLB Operator defaults frr, info)", p.BGPBackend, p.LogLevel)
	}
	cfg := &v1beta1.Config{PriorityClassName: "p", RuntimeClassName: "r", Annotations: map[string]string{"a": "b"}}
	p = ParamsFor(&v1beta1.MetalLB{Spec: v1beta1.MetalLBSpec{SpeakerConfig: cfg, NodeSelector: map[string]string{"n": "1"}}}, testImages(), false, false, "k")
	if p.Speaker.PriorityClassName != "p" || p.Speaker.RuntimeClassName != "r" || p.Speaker.Annotations["a"] != "b" || p.Speaker.NodeSelector["n"] != "1" || p.Controller.PriorityClassName != "" {
		t.Errorf("speaker %+v controller %+v", p.Speaker, p.Controller)
	}
}

func testImages() render.Images {
	return render.Images{Controller: "c", Speaker: "s", FRR: "f"}
}
