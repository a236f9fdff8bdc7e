package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CommunitySpec holds named BGP community aliases.
type CommunitySpec struct {
	// Communities maps alias names to community values.
	// +optional
	Communities []CommunityAlias `json:"communities,omitempty"`
}

// CommunityAlias gives a BGP community value a name that BGPAdvertisements
// can use instead of the value.
type CommunityAlias struct {
	// Name is the alias used in BGPAdvertisement.spec.communities.
	Name string `json:"name,omitempty"`

	// Value is the community: "AA:NN" (standard) or "large:G:L1:L2" (large).
	Value string `json:"value,omitempty"`
}

// CommunityStatus is empty.
type CommunityStatus struct{}

// Community is a set of named BGP community aliases.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
type Community struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec holds the aliases.
	Spec CommunitySpec `json:"spec,omitempty"`

	// Status is unused and kept for compatibility.
	// +optional
	Status CommunityStatus `json:"status,omitempty"`
}

// CommunityList is a list of Community.
//
// +kubebuilder:object:root=true
type CommunityList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []Community `json:"items"`
}

func init() {
	SchemeBuilder.Register(&Community{}, &CommunityList{})
}
