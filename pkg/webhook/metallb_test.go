package webhook

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
)

func TestValidateMetalLBSpec(t *testing.T) {
	secs := int64(30)
	cases := []struct {
		name string
		spec v1beta1.MetalLBSpec
		// want are the fields named in the errors, in order; none for valid.
		want []string
	}{
		{name: "empty", spec: v1beta1.MetalLBSpec{}},
		{name: "class plain name", spec: v1beta1.MetalLBSpec{LoadBalancerClass: "bare-metal"}},
		{name: "class prefixed", spec: v1beta1.MetalLBSpec{LoadBalancerClass: "example.com/bare-metal"}},
		{name: "class with newline", spec: v1beta1.MetalLBSpec{LoadBalancerClass: "x\n- name: evil"}, want: []string{"spec.loadBalancerClass"}},
		{name: "class with comment", spec: v1beta1.MetalLBSpec{LoadBalancerClass: "x #1"}, want: []string{"spec.loadBalancerClass"}},
		{name: "class with template", spec: v1beta1.MetalLBSpec{LoadBalancerClass: "{{.Namespace}}"}, want: []string{"spec.loadBalancerClass"}},
		{name: "class with quote", spec: v1beta1.MetalLBSpec{LoadBalancerClass: `a"b`}, want: []string{"spec.loadBalancerClass"}},
		{name: "class with variable reference", spec: v1beta1.MetalLBSpec{LoadBalancerClass: "$(NODE_NAME)"}, want: []string{"spec.loadBalancerClass"}},
		{name: "node selector value", spec: v1beta1.MetalLBSpec{NodeSelector: map[string]string{"lb": "a b"}}, want: []string{"spec.nodeSelector"}},
		{name: "controller node selector key", spec: v1beta1.MetalLBSpec{ControllerNodeSelector: map[string]string{"a\nb": "x"}}, want: []string{"spec.controllerNodeSelector"}},
		{name: "priority class", spec: v1beta1.MetalLBSpec{SpeakerConfig: &v1beta1.Config{PriorityClassName: "High"}}, want: []string{"spec.speakerConfig.priorityClassName"}},
		{name: "runtime class", spec: v1beta1.MetalLBSpec{ControllerConfig: &v1beta1.Config{RuntimeClassName: "kata #2"}}, want: []string{"spec.controllerConfig.runtimeClassName"}},
		{name: "annotation key", spec: v1beta1.MetalLBSpec{SpeakerConfig: &v1beta1.Config{Annotations: map[string]string{"bad key": "v"}}}, want: []string{"spec.speakerConfig.annotations"}},
		{name: "annotation value may be anything", spec: v1beta1.MetalLBSpec{SpeakerConfig: &v1beta1.Config{Annotations: map[string]string{"example.com/x": "a\n# b 'c' {{d}}"}}}},
		{name: "toleration fine", spec: v1beta1.MetalLBSpec{SpeakerTolerations: []corev1.Toleration{
			{Key: "example.com/lb", Operator: corev1.TolerationOpEqual, Value: "true", Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &secs},
			{Operator: corev1.TolerationOpExists},
		}}},
		{name: "toleration key", spec: v1beta1.MetalLBSpec{SpeakerTolerations: []corev1.Toleration{{Key: "a b", Operator: corev1.TolerationOpExists}}}, want: []string{"spec.speakerTolerations[0].key"}},
		{name: "toleration value with Exists", spec: v1beta1.MetalLBSpec{ControllerTolerations: []corev1.Toleration{{Key: "a", Operator: corev1.TolerationOpExists, Value: "x"}}}, want: []string{"spec.controllerTolerations[0].value"}},
		{name: "toleration operator", spec: v1beta1.MetalLBSpec{SpeakerTolerations: []corev1.Toleration{{Key: "a", Operator: "In"}}}, want: []string{"spec.speakerTolerations[0].operator"}},
		{name: "toleration without key needs Exists", spec: v1beta1.MetalLBSpec{SpeakerTolerations: []corev1.Toleration{{Operator: corev1.TolerationOpEqual}}}, want: []string{"spec.speakerTolerations[0].operator"}},
		{name: "toleration effect", spec: v1beta1.MetalLBSpec{SpeakerTolerations: []corev1.Toleration{{Key: "a", Operator: corev1.TolerationOpExists, Effect: "Sometimes"}}}, want: []string{"spec.speakerTolerations[0].effect"}},
		{name: "toleration seconds without NoExecute", spec: v1beta1.MetalLBSpec{SpeakerTolerations: []corev1.Toleration{{Key: "a", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule, TolerationSeconds: &secs}}}, want: []string{"spec.speakerTolerations[0].effect"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			errs := ValidateMetalLBSpec(&tc.spec)
			var got []string
			for _, e := range errs {
				got = append(got, e.Field)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("fields %q, want %q (%v)", got, tc.want, errs)
			}
		})
	}
}
