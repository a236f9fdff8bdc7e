package assigner

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func holding(ip string, age time.Duration) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.CreationTimestamp = metav1.NewTime(time.Unix(1_700_000_000, 0).Add(-age))
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
	}
}

func class(c string) func(*corev1.Service) {
	return func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To(c) }
}

func TestDiagnose(t *testing.T) {
	small := pool("small", "203.0.113.0/31")
	cases := []struct {
		name    string
		lbClass string
		cfgErr  string
		noCfg   bool
		svcs    []*corev1.Service
		want    map[string][]string // key -> substrings; missing key -> no entry
	}{
		{
			name: "requested pool does not exist",
			svcs: []*corev1.Service{svc("web", annotate("metallb.io/address-pool", "nope"))},
			want: map[string][]string{"ns/web": {`"nope"`, "metallb.io/address-pool"}},
		},
		{
			name: "pool exhausted by older Services",
			svcs: []*corev1.Service{
				svc("a", holding("203.0.113.0", time.Hour)),
				svc("b", holding("203.0.113.1", time.Hour)),
				svc("c"),
			},
			want: map[string][]string{"ns/c": {"small", "add addresses to the pool"}},
		},
		{
			name: "sharing conflict on an explicit address",
			svcs: []*corev1.Service{
				svc("a", holding("203.0.113.0", time.Hour)),
				svc("b", loadBalancerIP("203.0.113.0")),
			},
			want: map[string][]string{"ns/b": {"203.0.113.0", "allow-shared-ip"}},
		},
		{
			name: "address outside every pool",
			svcs: []*corev1.Service{svc("b", loadBalancerIP("198.51.100.7"))},
			want: map[string][]string{"ns/b": {"198.51.100.7"}},
		},
		{
			name:    "class this stack does not serve",
			lbClass: "",
			svcs:    []*corev1.Service{svc("x", class("other.io/lb"))},
			want:    map[string][]string{"ns/x": {"wrong loadBalancerClass", `"other.io/lb"`, "without spec.loadBalancerClass"}},
		},
		{
			name:    "stack with a class, Service without",
			lbClass: "lbstack.io/lb",
			svcs:    []*corev1.Service{svc("x")},
			want:    map[string][]string{"ns/x": {"wrong loadBalancerClass", "no spec.loadBalancerClass", `"lbstack.io/lb"`}},
		},
		{
			name:   "configuration refused",
			noCfg:  true,
			cfgErr: `ipaddresspool "b": spec.addresses[0]: overlaps`,
			svcs:   []*corev1.Service{svc("x")},
			want:   map[string][]string{"ns/x": {"configuration is refused", "overlaps"}},
		},
		{
			name: "would be assigned: the controller is the problem",
			svcs: []*corev1.Service{svc("x")},
			want: map[string][]string{"ns/x": {"would assign 203.0.113.0", "not running"}},
		},
		{
			name: "holding Services and other types have no entry",
			svcs: []*corev1.Service{svc("a", holding("203.0.113.0", time.Hour)), svc("c", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeClusterIP })},
			want: map[string][]string{},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := DiagnoseInput{LBClass: tc.lbClass, Services: tc.svcs, ConfigError: tc.cfgErr}
			if !tc.noCfg {
				in.Config = buildConfig(t, small)
			}
			got := Diagnose(in)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d diagnoses %v, want %d", len(got), got, len(tc.want))
			}
			for key, subs := range tc.want {
				msg, ok := got[key]
				if !ok {
					t.Fatalf("no diagnosis for %s: %v", key, got)
				}
				for _, s := range subs {
					if !strings.Contains(msg, s) {
						t.Errorf("%s: %q does not mention %q", key, msg, s)
					}
				}
			}
		})
	}
}
