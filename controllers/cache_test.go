package controllers

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestSlimObjects(t *testing.T) {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "s", UID: "u", ResourceVersion: "7",
		Labels: map[string]string{"app": "web"},
		Annotations: map[string]string{
			"metallb.io/address-pool":                          "first-pool",
			"metallb.universe.tf/loadBalancerIPs":              "203.0.113.1",
			"kubectl.kubernetes.io/last-applied-configuration": "{...}",
		},
		ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "kubectl"}}},
		Spec:   corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "203.0.113.1"}}}}}
	o, _ := slimService(svc)
	got := o.(*corev1.Service)
	if got.Namespace != "web" || got.Name != "s" || got.ResourceVersion != "7" || got.Labels["app"] != "web" ||
		len(got.Annotations) != 2 || got.Annotations["metallb.io/address-pool"] != "first-pool" ||
		got.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal || got.Status.LoadBalancer.Ingress[0].IP != "203.0.113.1" ||
		got.ManagedFields != nil {
		t.Errorf("slim Service %+v", got)
	}

	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1", Labels: map[string]string{"zone": "a"},
		Annotations: map[string]string{"k8s.ovn.org/node-masquerade-subnet": `{"ipv4":"169.254.0.0/17"}`}},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "198.18.0.1"}},
			Images: []corev1.ContainerImage{{Names: []string{"big"}, SizeBytes: 1 << 30}}}}
	o, _ = slimNode(node)
	gn := o.(*corev1.Node)
	if gn.Name != "n1" || gn.Labels["zone"] != "a" || gn.Annotations["k8s.ovn.org/node-masquerade-subnet"] == "" ||
		len(gn.Status.Addresses) != 1 || gn.Status.Images != nil {
		t.Errorf("slim Node %+v", gn)
	}
	o, _ = slimNamespace(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "web", Labels: map[string]string{"team": "a"}}})
	if ns := o.(*corev1.Namespace); ns.Name != "web" || ns.Labels["team"] != "a" {
		t.Errorf("slim Namespace %+v", ns)
	}
}
