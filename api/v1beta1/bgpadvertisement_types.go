package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// BGPAdvertisementSpec says how the addresses of some pools are announced
// over BGP: to which peers, from which nodes, with which attributes.
//
// +kubebuilder:validation:XValidation:rule="!has(self.serviceSelectors) || size(self.serviceSelectors) == 0 || ((!has(self.aggregationLength) || self.aggregationLength == 32) && (!has(self.aggregationLengthV6) || self.aggregationLengthV6 == 128))",message="serviceSelectors can only be used with the default aggregationLength (32) and aggregationLengthV6 (128)"
type BGPAdvertisementSpec struct {
	// AggregationLength is the prefix length announced for IPv4 service
	// addresses: 32 announces each address, shorter lengths announce the
	// covering aggregate.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=32
	// +kubebuilder:default:=32
	AggregationLength *int32 `json:"aggregationLength,omitempty"`

	// AggregationLengthV6 is the prefix length announced for IPv6 service
	// addresses.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=128
	// +kubebuilder:default:=128
	AggregationLengthV6 *int32 `json:"aggregationLengthV6,omitempty"`

	// LocalPref is the BGP LOCAL_PREF attribute of the announcements (iBGP
	// peers only).
	// +optional
	LocalPref uint32 `json:"localPref,omitempty"`

	// Communities are the BGP communities attached to the announcements: a
	// standard community "AA:NN", a large community "large:G:L1:L2", or the
	// name of an alias defined in a Community object.
	// +optional
	Communities []string `json:"communities,omitempty"`

	// IPAddressPools names the pools whose addresses this advertisement
	// announces. With neither pools nor pool selectors, every pool is.
	// +optional
	IPAddressPools []string `json:"ipAddressPools,omitempty"`

	// IPAddressPoolSelectors selects the announced pools by label.
	// +optional
	IPAddressPoolSelectors []metav1.LabelSelector `json:"ipAddressPoolSelectors,omitempty"`

	// NodeSelectors limits the nodes that announce; empty means every node.
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// Peers limits the BGPPeers (by name) the announcements go to; empty
	// means every peer.
	// +optional
	Peers []string `json:"peers,omitempty"`

	// ServiceSelectors limits the advertisement to Services with matching
	// labels. Only allowed with the default aggregation lengths.
	// +optional
	ServiceSelectors []metav1.LabelSelector `json:"serviceSelectors,omitempty"`
}

// BGPAdvertisementStatus is empty; the per-service state is in
// ServiceBGPStatus objects.
type BGPAdvertisementStatus struct{}

// BGPAdvertisement announces the addresses of some pools over BGP.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="IPAddressPools",type=string,JSONPath=`.spec.ipAddressPools`
// +kubebuilder:printcolumn:name="IPAddressPool Selectors",type=string,JSONPath=`.spec.ipAddressPoolSelectors`
// +kubebuilder:printcolumn:name="Peers",type=string,JSONPath=`.spec.peers`
// +kubebuilder:printcolumn:name="Node Selectors",type=string,JSONPath=`.spec.nodeSelectors`,priority=10
type BGPAdvertisement struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the advertisement's desired configuration.
	Spec BGPAdvertisementSpec `json:"spec,omitempty"`

	// Status is unused and kept for compatibility.
	// +optional
	Status BGPAdvertisementStatus `json:"status,omitempty"`
}

// BGPAdvertisementList is a list of BGPAdvertisement.
//
// +kubebuilder:object:root=true
type BGPAdvertisementList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPAdvertisement `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BGPAdvertisement{}, &BGPAdvertisementList{})
}
