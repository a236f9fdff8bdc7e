// Package v1beta1 holds the metallb.io/v1beta1 API: address pools,
// advertisements, BFD profiles, communities, the (deprecated) v1beta1 BGPPeer,
// the status kinds and the operator's MetalLB kind. Field names and JSON tags
// match MetalLB v0.15 so that existing manifests apply unchanged.
//
// +kubebuilder:object:generate=true
// +groupName=metallb.io
package v1beta1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version used to register these objects.
	GroupVersion = schema.GroupVersion{Group: "metallb.io", Version: "v1beta1"}

	// SchemeBuilder adds the Go types to a runtime.Scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types in this group-version to the given scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
