// Package v1alpha1 holds lbstack's own API (group lbstack.io): kinds that
// have no MetalLB equivalent. SymmetricRouting is the one declaration the
// operator expands into the NMState policy, VRF-bound BGPPeer, pools,
// advertisements and OVN EgressServices that symmetric routing needs.
//
// +kubebuilder:object:generate=true
// +groupName=lbstack.io
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version used to register these objects.
	GroupVersion = schema.GroupVersion{Group: "lbstack.io", Version: "v1alpha1"}

	// SchemeBuilder adds the Go types to a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types in this group-version to the given scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
