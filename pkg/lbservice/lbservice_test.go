package lbservice

import (
	"errors"
	"net/netip"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func svcWithIngress(ips ...string) *corev1.Service {
	s := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "s"}}
	for _, ip := range ips {
		s.Status.LoadBalancer.Ingress = append(s.Status.LoadBalancer.Ingress, corev1.LoadBalancerIngress{IP: ip})
	}
	return s
}

func TestIngressAddrs(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string
		want []string
	}{
		{"empty", nil, nil},
		{"one", []string{"192.0.2.1"}, []string{"192.0.2.1"}},
		{"IPv4 sorted before IPv6", []string{"2001:db8::1", "192.0.2.1"}, []string{"192.0.2.1", "2001:db8::1"}},
		{"duplicates dropped", []string{"192.0.2.1", "192.0.2.1"}, []string{"192.0.2.1"}},
		{"IPv4-mapped is IPv4, then a duplicate", []string{"::ffff:192.0.2.1", "192.0.2.1"}, []string{"192.0.2.1"}},
		{"hostname and garbage ignored", []string{"", "lb.example.com", "192.0.2.300", "198.51.100.7"}, []string{"198.51.100.7"}},
		{"zoned ignored", []string{"fe80::1%eth0", "2001:db8::2"}, []string{"2001:db8::2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := IngressAddrs(svcWithIngress(tc.in...))
			var gotS []string
			for _, a := range got {
				gotS = append(gotS, a.String())
			}
			if !slices.Equal(gotS, tc.want) {
				t.Errorf("IngressAddrs(%q) = %q, want %q", tc.in, gotS, tc.want)
			}
		})
	}
	if got := IngressAddrs(svcWithIngress("192.0.2.1")); got[0] != netip.MustParseAddr("192.0.2.1") {
		t.Errorf("got %v", got)
	}
}

func TestClassAndServed(t *testing.T) {
	lb, np := corev1.ServiceTypeLoadBalancer, corev1.ServiceTypeNodePort
	for _, tc := range []struct {
		name          string
		typ           corev1.ServiceType
		class         *string
		served        string
		matches, serv bool
	}{
		{"no class, default stack", lb, nil, "", true, true},
		{"no class, classed stack", lb, nil, "example.com/lb", false, false},
		{"same class", lb, ptr.To("example.com/lb"), "example.com/lb", true, true},
		{"other class", lb, ptr.To("example.com/other"), "example.com/lb", false, false},
		{"class on default stack", lb, ptr.To("example.com/lb"), "", false, false},
		{"NodePort of our class", np, nil, "", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &corev1.Service{Spec: corev1.ServiceSpec{Type: tc.typ, LoadBalancerClass: tc.class}}
			if got := ClassMatches(s, tc.served); got != tc.matches {
				t.Errorf("ClassMatches = %v, want %v", got, tc.matches)
			}
			if got := Served(s, tc.served); got != tc.serv {
				t.Errorf("Served = %v, want %v", got, tc.serv)
			}
		})
	}
}

func TestAnnotation(t *testing.T) {
	for _, tc := range []struct {
		name            string
		ann             map[string]string
		value, from     string
		wantErrContains string
	}{
		{"unset", nil, "", "", ""},
		{"new spelling", map[string]string{AnnotationAddressPool: "a"}, "a", AnnotationAddressPool, ""},
		{"legacy spelling", map[string]string{AnnotationAddressPoolLegacy: " b "}, "b", AnnotationAddressPoolLegacy, ""},
		{"both agree", map[string]string{AnnotationAddressPool: "a", AnnotationAddressPoolLegacy: "a"}, "a", AnnotationAddressPool, ""},
		{"legacy empty", map[string]string{AnnotationAddressPool: "a", AnnotationAddressPoolLegacy: ""}, "a", AnnotationAddressPool, ""},
		{"new blank, legacy set", map[string]string{AnnotationAddressPool: "  ", AnnotationAddressPoolLegacy: "b"}, "b", AnnotationAddressPoolLegacy, ""},
		{"disagree", map[string]string{AnnotationAddressPool: "a", AnnotationAddressPoolLegacy: "b"}, "", "", `annotations metallb.io/address-pool ("a") and metallb.universe.tf/address-pool ("b") disagree; keep one of them`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, from, err := Annotation(tc.ann, AnnotationAddressPool, AnnotationAddressPoolLegacy)
			if tc.wantErrContains != "" {
				var ce *AnnotationConflictError
				if !errors.As(err, &ce) || err.Error() != tc.wantErrContains {
					t.Fatalf("err = %v, want %q", err, tc.wantErrContains)
				}
				return
			}
			if err != nil || v != tc.value || from != tc.from {
				t.Errorf("= %q, %q, %v; want %q, %q", v, from, err, tc.value, tc.from)
			}
		})
	}
}

func TestHasEndpoints(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}}
	slice := func(ns, svcName string, eps ...discoveryv1.Endpoint) *discoveryv1.EndpointSlice {
		return &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: svcName + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: svcName}},
			Endpoints:  eps,
		}
	}
	ep := func(node string, ready, serving *bool, addrs ...string) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: addrs, NodeName: ptr.To(node), Conditions: discoveryv1.EndpointConditions{Ready: ready, Serving: serving}}
	}
	for _, tc := range []struct {
		name     string
		slices   []*discoveryv1.EndpointSlice
		node     string
		expected bool
	}{
		{"no slices", nil, "", false},
		{"ready unset means ready", []*discoveryv1.EndpointSlice{slice("ns", "web", ep("n1", nil, nil, "10.0.0.1"))}, "", true},
		{"not ready", []*discoveryv1.EndpointSlice{slice("ns", "web", ep("n1", ptr.To(false), nil, "10.0.0.1"))}, "", false},
		{"terminating but serving", []*discoveryv1.EndpointSlice{slice("ns", "web", ep("n1", ptr.To(false), ptr.To(true), "10.0.0.1"))}, "", true},
		{"ready but not serving", []*discoveryv1.EndpointSlice{slice("ns", "web", ep("n1", ptr.To(true), ptr.To(false), "10.0.0.1"))}, "", false},
		{"no address", []*discoveryv1.EndpointSlice{slice("ns", "web", ep("n1", nil, nil))}, "", false},
		{"other namespace", []*discoveryv1.EndpointSlice{slice("other", "web", ep("n1", nil, nil, "10.0.0.1"))}, "", false},
		{"other service", []*discoveryv1.EndpointSlice{slice("ns", "api", ep("n1", nil, nil, "10.0.0.1"))}, "", false},
		{"on this node", []*discoveryv1.EndpointSlice{slice("ns", "web", ep("n1", nil, nil, "10.0.0.1"))}, "n1", true},
		{"only on another node", []*discoveryv1.EndpointSlice{slice("ns", "web", ep("n2", nil, nil, "10.0.0.1"))}, "n1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := HasEndpoints(svc, tc.slices, tc.node); got != tc.expected {
				t.Errorf("HasEndpoints = %v, want %v", got, tc.expected)
			}
		})
	}
}

func TestNodeExcluded(t *testing.T) {
	for _, tc := range []struct {
		name string
		node corev1.Node
		want string
	}{
		{"plain", corev1.Node{}, ""},
		{"labelled, empty value", corev1.Node{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{ExcludeLabel: ""}}}, "node is labelled " + ExcludeLabel},
		{"network unavailable", corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionTrue}}}}, "node has condition NetworkUnavailable=True"},
		{"network available", corev1.Node{Status: corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeNetworkUnavailable, Status: corev1.ConditionFalse}}}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := NodeExcluded(&tc.node); got != tc.want {
				t.Errorf("NodeExcluded = %q, want %q", got, tc.want)
			}
		})
	}
	if Key(&corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "b"}}) != "a/b" {
		t.Error("Key")
	}
}
