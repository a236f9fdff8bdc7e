package v1beta1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ConfigurationResult is the outcome of loading the configuration.
// +kubebuilder:validation:Enum=Valid;Invalid;Unknown
type ConfigurationResult string

const (
	// ConfigurationValid means the configuration loaded without error.
	ConfigurationValid ConfigurationResult = "Valid"
	// ConfigurationInvalid means the configuration was refused; see ErrorSummary.
	ConfigurationInvalid ConfigurationResult = "Invalid"
	// ConfigurationUnknown means the configuration has not been loaded yet.
	ConfigurationUnknown ConfigurationResult = "Unknown"
)

// ConfigurationStateSpec is empty: the object only carries status.
type ConfigurationStateSpec struct{}

// ConfigurationStateStatus is the result of the last configuration load by
// one component (the controller, or the speaker of one node).
type ConfigurationStateStatus struct {
	// Result is Valid, Invalid or Unknown.
	// +optional
	Result ConfigurationResult `json:"result,omitempty"`

	// ErrorSummary is the error that made the configuration Invalid, naming
	// the object and field at fault, or the unresolved references that are
	// waited for.
	// +optional
	ErrorSummary string `json:"errorSummary,omitempty"`

	// Conditions are the detailed conditions of the configuration load.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// ConfigurationState reports whether a component accepted the current
// metallb.io configuration.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Result",type=string,JSONPath=`.status.result`
// +kubebuilder:printcolumn:name="ErrorSummary",type=string,JSONPath=`.status.errorSummary`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type ConfigurationState struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is empty.
	Spec ConfigurationStateSpec `json:"spec,omitempty"`

	// Status is the result of the last load.
	// +optional
	Status ConfigurationStateStatus `json:"status,omitempty"`
}

// ConfigurationStateList is a list of ConfigurationState.
//
// +kubebuilder:object:root=true
type ConfigurationStateList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []ConfigurationState `json:"items"`
}

func init() {
	SchemeBuilder.Register(&ConfigurationState{}, &ConfigurationStateList{})
}
