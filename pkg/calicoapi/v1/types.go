package v1

import (
	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is crd.projectcalico.org/v1.
var GroupVersion = schema.GroupVersion{Group: "crd.projectcalico.org", Version: "v1"}

// DefaultBGPConfigurationName is the BGPConfiguration every Calico node
// reads (node-specific ones are named node.<nodename>).
const DefaultBGPConfigurationName = "default"

// BGPConfiguration is Calico's BGP configuration; the one named "default"
// holds the cluster-wide settings (serviceLoadBalancerIPs,
// prefixAdvertisements, communities, asNumber, listenPort).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type BGPConfiguration struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              v3.BGPConfigurationSpec `json:"spec,omitempty"`
}

// BGPConfigurationList is a list of BGPConfigurations.
//
// +kubebuilder:object:root=true
type BGPConfigurationList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPConfiguration `json:"items"`
}

// BGPPeer is one BGP peering of Calico's nodes (all of them, one node, or
// the nodes a selector matches).
//
// +kubebuilder:object:root=true
// +kubebuilder:resource:scope=Cluster
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              v3.BGPPeerSpec `json:"spec,omitempty"`
}

// BGPPeerList is a list of BGPPeers.
//
// +kubebuilder:object:root=true
type BGPPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPPeer `json:"items"`
}

// AddToScheme registers the kinds of this package.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &BGPConfiguration{}, &BGPConfigurationList{}, &BGPPeer{}, &BGPPeerList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
