package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// L2AdvertisementSpec says how the addresses of some pools are announced in
// layer 2 (ARP for IPv4, NDP for IPv6).
type L2AdvertisementSpec struct {
	// IPAddressPools names the pools whose addresses this advertisement
	// announces. With neither pools nor pool selectors, every pool is.
	// +optional
	IPAddressPools []string `json:"ipAddressPools,omitempty"`

	// IPAddressPoolSelectors selects the announced pools by label.
	// +optional
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors,omitempty"`

	// NodeSelectors limits the nodes that may be elected to announce; empty
	// means every node.
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// Interfaces limits the node interfaces that answer ARP/NDP; empty means
	// every suitable interface.
	// +optional
	Interfaces []string `json:"interfaces,omitempty"`

	// ServiceSelectors limits the advertisement to Services with matching
	// labels.
	// +optional
	ServiceSelectors []metav1.LabelSelector `json:"serviceSelectors,omitempty"`

	// PreferredNodeSelectors weighs the election of the announcing node: a
	// node's score is the sum of the weights of the terms it matches, and
	// the highest score wins.
	// +optional
	PreferredNodeSelectors []PreferredNodeSelector `json:"preferredNodeSelectors,omitempty"`
}

// PreferredNodeSelector is a weighted node preference for the layer-2
// election.
type PreferredNodeSelector struct {
	// Weight is added to the score of nodes matching Preference.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=100
	Weight int32 `json:"weight"`

	// Preference selects the preferred nodes by label.
	Preference metav1.LabelSelector `json:"preference"`
}

// L2AdvertisementStatus is empty; the per-service state is in
// ServiceL2Status objects.
type L2AdvertisementStatus struct{}

// L2Advertisement announces the addresses of some pools in layer 2.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="IPAddressPools",type=string,JSONPath=`.spec.ipAddressPools`
// +kubebuilder:printcolumn:name="IPAddressPool Selectors",type=string,JSONPath=`.spec.ipAddressPoolSelectors`
// +kubebuilder:printcolumn:name="Interfaces",type=string,JSONPath=`.spec.interfaces`
// +kubebuilder:printcolumn:name="Node Selectors",type=string,JSONPath=`.spec.nodeSelectors`,priority=10
type L2Advertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the advertisement's desired configuration.
	Spec L2AdvertisementSpec `json:"spec,omitempty"`

	// Status is unused and kept for compatibility.
	// +optional
	Status L2AdvertisementStatus `json:"status,omitempty"`
}

// L2AdvertisementList is a list of L2Advertisement.
//
// +kubebuilder:object:root=true
type L2AdvertisementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []L2Advertisement `json:"items"`
}

func init() {
	SchemeBuilder.Register(&L2Advertisement{}, &L2AdvertisementList{})
}
