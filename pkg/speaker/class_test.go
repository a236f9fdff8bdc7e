package speaker

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/lbstack/lbstack/pkg/lbservice"
)

func TestServesClass(t *testing.T) {
	tests := []struct {
		name    string
		class   *string
		lbClass string
		want    bool
	}{
		{"no class, default speaker", nil, "", true},
		{"no class, classed speaker", nil, "lbstack.io/edge", false},
		{"same class", ptr.To("lbstack.io/edge"), "lbstack.io/edge", true},
		{"other class", ptr.To("other.io/lb"), "lbstack.io/edge", false},
		{"class set, default speaker", ptr.To("other.io/lb"), "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc := &corev1.Service{Spec: corev1.ServiceSpec{LoadBalancerClass: tt.class}}
			if got := lbservice.ClassMatches(svc, tt.lbClass); got != tt.want {
				t.Errorf("servesClass = %v, want %v", got, tt.want)
			}
		})
	}
}
