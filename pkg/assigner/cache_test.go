package assigner

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/pkg/lbservice"
)

func TestStripService(t *testing.T) {
	s := svc("s", annotate(corev1.LastAppliedConfigAnnotation, `{"big":"manifest"}`, lbservice.AnnotationAddressPool, "a"))
	s.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}
	out, err := stripService(s)
	if err != nil {
		t.Fatal(err)
	}
	got := out.(*corev1.Service)
	if got.ManagedFields != nil || len(got.Annotations) != 1 || got.Annotations[lbservice.AnnotationAddressPool] != "a" {
		t.Errorf("stripped: managedFields %v, annotations %v", got.ManagedFields, got.Annotations)
	}
	if o, _ := stripService("not a service"); o != "not a service" {
		t.Errorf("other objects must pass unchanged, got %v", o)
	}
}
