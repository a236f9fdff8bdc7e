package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is k8s.ovn.org/v1.
var GroupVersion = schema.GroupVersion{Group: "k8s.ovn.org", Version: "v1"}

// EgressServiceGVK identifies EgressService objects.
var EgressServiceGVK = GroupVersion.WithKind("EgressService")

// SourceIPMode says which source address OVN gives a Service's egress
// traffic.
type SourceIPMode string

const (
	// SourceIPLoadBalancer: traffic leaves with the Service's first
	// load-balancer ingress address, from the host OVN picks.
	SourceIPLoadBalancer SourceIPMode = "LoadBalancerIP"
	// SourceIPNetwork: traffic leaves with the address of the host's
	// interface in the chosen network.
	SourceIPNetwork SourceIPMode = "Network"
)

// EgressService makes the egress traffic of the same-named LoadBalancer
// Service leave from one node (labelled
// egress-service.k8s.ovn.org/<namespace>-<name>) and, when Network is set,
// through the routing table Network names.
type EgressService struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   EgressServiceSpec   `json:"spec,omitempty"`
	Status EgressServiceStatus `json:"status,omitempty"`
}

// EgressServiceSpec is the user's request.
type EgressServiceSpec struct {
	// SourceIPBy is LoadBalancerIP or Network.
	SourceIPBy SourceIPMode `json:"sourceIPBy,omitempty"`
	// NodeSelector limits the nodes OVN may pick as the egress host.
	NodeSelector metav1.LabelSelector `json:"nodeSelector,omitempty"`
	// Network is the routing table (number or interface name) egress
	// traffic uses; empty means the main table.
	Network string `json:"network,omitempty"`
}

// EgressServiceStatus is what OVN-Kubernetes reports.
type EgressServiceStatus struct {
	// Host is the node OVN picked, or ALL when no host is needed.
	Host string `json:"host,omitempty"`
}

// EgressServiceList is a list of EgressService.
type EgressServiceList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []EgressService `json:"items"`
}

// NodeLabelPrefix starts the label OVN sets on the node it picked for an
// EgressService: egress-service.k8s.ovn.org/<namespace>-<name>.
const NodeLabelPrefix = "egress-service.k8s.ovn.org/"

// NodeLabel is the label OVN puts on the egress node of the EgressService
// (and Service) namespace/name.
func NodeLabel(namespace, name string) string {
	return NodeLabelPrefix + namespace + "-" + name
}

// AddToScheme registers EgressService and EgressServiceList.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &EgressService{}, &EgressServiceList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}

// DeepCopyObject makes EgressService a runtime.Object.
func (in *EgressService) DeepCopyObject() runtime.Object { return in.DeepCopy() }

// DeepCopyObject makes EgressServiceList a runtime.Object.
func (in *EgressServiceList) DeepCopyObject() runtime.Object { return in.DeepCopy() }
