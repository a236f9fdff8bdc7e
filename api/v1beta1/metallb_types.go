package v1beta1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// MetalLBLogLevel is the verbosity of the stack's components.
// +kubebuilder:validation:Enum=all;debug;info;warn;error;none
type MetalLBLogLevel string

// Log levels.
const (
	LogLevelAll   MetalLBLogLevel = "all"
	LogLevelDebug MetalLBLogLevel = "debug"
	LogLevelInfo  MetalLBLogLevel = "info"
	LogLevelWarn  MetalLBLogLevel = "warn"
	LogLevelError MetalLBLogLevel = "error"
	LogLevelNone  MetalLBLogLevel = "none"
)

// BGPType is the BGP implementation the speakers use.
// +kubebuilder:validation:Enum=native;frr;frr-k8s;frr-k8s-external;calico
type BGPType string

// BGP backends.
const (
	// BGPTypeNative embeds GoBGP in the speaker.
	BGPTypeNative BGPType = "native"
	// BGPTypeFRR runs FRR beside the speaker (needed for BFD and VRFs).
	BGPTypeFRR BGPType = "frr"
	// BGPTypeFRRK8s delegates to an frr-k8s daemon deployed by the operator.
	BGPTypeFRRK8s BGPType = "frr-k8s"
	// BGPTypeFRRK8sExternal delegates to an frr-k8s deployed by someone else.
	BGPTypeFRRK8sExternal BGPType = "frr-k8s-external"
	// BGPTypeCalico leaves BGP to Calico (lbstack extension, issue #19):
	// the speakers run no BGP sessions (layer 2 keeps working), and the
	// operator keeps the serviceLoadBalancerIPs and prefixAdvertisements of
	// Calico's default BGPConfiguration in step with the pools that
	// BGPAdvertisements select, so that Calico's nodes announce the
	// addresses (docs/calico.md).
	BGPTypeCalico BGPType = "calico"
)

// Supported reports whether lbstack runs this backend: native, frr or
// calico (the frr-k8s modes are MetalLB's, accepted by the schema and
// refused by lbstack with a message).
func (t BGPType) Supported() bool {
	return t == BGPTypeNative || t == BGPTypeFRR || t == BGPTypeCalico
}

// MetalLBSpec configures the whole load-balancer stack.
type MetalLBSpec struct {
	// LogLevel sets the verbosity of the controller and speakers.
	// +optional
	LogLevel MetalLBLogLevel `json:"logLevel,omitempty"`

	// NodeSelector limits the nodes the speaker DaemonSet runs on.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// SpeakerTolerations are added to the speaker pods.
	// +optional
	SpeakerTolerations []corev1.Toleration `json:"speakerTolerations,omitempty"`

	// ControllerNodeSelector limits the nodes the controller runs on.
	// +optional
	ControllerNodeSelector map[string]string `json:"controllerNodeSelector,omitempty"`

	// ControllerTolerations are added to the controller pod.
	// +optional
	ControllerTolerations []corev1.Toleration `json:"controllerTolerations,omitempty"`

	// ControllerConfig tunes the controller Deployment.
	// +optional
	ControllerConfig *Config `json:"controllerConfig,omitempty"`

	// SpeakerConfig tunes the speaker DaemonSet.
	// +optional
	SpeakerConfig *Config `json:"speakerConfig,omitempty"`

	// LoadBalancerClass makes the stack serve only Services with this
	// spec.loadBalancerClass; empty serves Services without a class. It is a
	// label-style qualified name ("example.com/bare-metal"), as a Service's
	// spec.loadBalancerClass must be.
	// +optional
	// +kubebuilder:validation:MaxLength=316
	// +kubebuilder:validation:Pattern=`^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$`
	LoadBalancerClass string `json:"loadBalancerClass,omitempty"`

	// BGPType chooses the BGP implementation: native (embedded GoBGP), frr
	// (FRR sidecar; needed for BFD and VRF-bound peers), or calico (no BGP
	// sessions in the speakers: Calico's nodes announce the addresses of the
	// pools BGPAdvertisements select, through the serviceLoadBalancerIPs of
	// Calico's default BGPConfiguration, which the operator keeps). Defaults
	// to frr.
	// +optional
	BGPType BGPType `json:"bgpBackend,omitempty"`

	// FRRK8SConfig configures the frr-k8s backends.
	// +optional
	FRRK8SConfig *FRRK8SConfig `json:"frrk8sConfig,omitempty"`
}

// FRRK8SConfig configures the frr-k8s backends.
type FRRK8SConfig struct {
	// AlwaysBlock lists CIDRs that are never accepted from peers.
	// +optional
	AlwaysBlock []string `json:"alwaysBlock,omitempty"`
}

// Config tunes the pods of one component.
type Config struct {
	// PriorityClassName is set on the component's pods (a PriorityClass
	// name: a DNS subdomain).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	PriorityClassName string `json:"priorityClassName,omitempty"`

	// RuntimeClassName is set on the component's pods (a RuntimeClass
	// name: a DNS subdomain).
	// +optional
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	RuntimeClassName string `json:"runtimeClassName,omitempty"`

	// Affinity is set on the component's pods.
	// +optional
	Affinity *corev1.Affinity `json:"affinity,omitempty"`

	// Annotations are added to the component's pods.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// Resources are the resource requests and limits of the component's main
	// container.
	// +optional
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
}

// MetalLBStatus reports the health of the stack.
type MetalLBStatus struct {
	// Conditions are Available, Progressing, Degraded and Upgradeable.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Condition types of the MetalLB object.
const (
	ConditionAvailable   = "Available"
	ConditionProgressing = "Progressing"
	ConditionDegraded    = "Degraded"
	ConditionUpgradeable = "Upgradeable"
)

// MetalLB is the one object that runs the stack: the operator renders the
// controller, the speakers and everything they need from it.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:printcolumn:name="Available",type=string,JSONPath=`.status.conditions[?(@.type=="Available")].status`
// +kubebuilder:printcolumn:name="Progressing",type=string,JSONPath=`.status.conditions[?(@.type=="Progressing")].status`
// +kubebuilder:printcolumn:name="Degraded",type=string,JSONPath=`.status.conditions[?(@.type=="Degraded")].status`
// +kubebuilder:printcolumn:name="Backend",type=string,JSONPath=`.spec.bgpBackend`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type MetalLB struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the desired stack.
	Spec MetalLBSpec `json:"spec,omitempty"`

	// Status is the observed health of the stack.
	// +optional
	Status MetalLBStatus `json:"status,omitempty"`
}

// MetalLBList is a list of MetalLB.
//
// +kubebuilder:object:root=true
type MetalLBList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []MetalLB `json:"items"`
}

func init() {
	SchemeBuilder.Register(&MetalLB{}, &MetalLBList{})
}
