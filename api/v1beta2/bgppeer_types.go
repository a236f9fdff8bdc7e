package v1beta2

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// DynamicASNMode tells the speaker to learn the peer's AS from its OPEN
// message instead of configuring it.
// +kubebuilder:validation:Enum=internal;external
type DynamicASNMode string

const (
	// InternalASNMode accepts a peer in the speaker's own AS (iBGP).
	InternalASNMode DynamicASNMode = "internal"
	// ExternalASNMode accepts a peer in any other AS (eBGP).
	ExternalASNMode DynamicASNMode = "external"
)

// BGPPeerSpec describes one BGP session that speakers establish.
type BGPPeerSpec struct {
	// MyASN is the AS number of the speaker's end of the session.
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	MyASN uint32 `json:"myASN"`

	// ASN is the AS number expected from the peer. Exactly one of peerASN
	// and dynamicASN must be set.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	ASN uint32 `json:"peerASN,omitempty"`

	// LocalASN, when set, is the AS number presented to the peer instead of
	// myASN (FRR's "neighbor X local-as"), for migrations between ASes.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=4294967295
	LocalASN uint32 `json:"localASN,omitempty"`

	// DynamicASN learns the peer's AS from its OPEN message: "internal"
	// expects myASN, "external" any other AS. Exactly one of peerASN and
	// dynamicASN must be set.
	// +optional
	DynamicASN DynamicASNMode `json:"dynamicASN,omitempty"`

	// Address is the peer's IP address. Exactly one of peerAddress and
	// interface must be set.
	// +optional
	Address string `json:"peerAddress,omitempty"`

	// Interface is the node interface over which an unnumbered BGP session
	// (IPv6 link-local) is established. Exactly one of peerAddress and
	// interface must be set. FRR mode only.
	// +optional
	Interface string `json:"interface,omitempty"`

	// SrcAddress is the local address the session is established from.
	// +optional
	SrcAddress string `json:"sourceAddress,omitempty"`

	// Port is the peer's TCP port.
	// +optional
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16384
	// +kubebuilder:default:=179
	Port *uint16 `json:"peerPort,omitempty"`

	// HoldTime is the requested BGP hold time: 0 or at least 3s. When only
	// keepaliveTime is set, holdTime is 3 times it.
	// +optional
	HoldTime *metav1.Duration `json:"holdTime,omitempty"`

	// KeepaliveTime is the requested BGP keepalive interval, below holdTime.
	// When only holdTime is set, keepaliveTime is a third of it.
	// +optional
	KeepaliveTime *metav1.Duration `json:"keepaliveTime,omitempty"`

	// ConnectTime is how long the speaker waits between attempts to connect
	// to the peer: whole seconds between 1s and 65535s.
	// +optional
	// +kubebuilder:validation:XValidation:rule="duration(self).getSeconds() >= 1 && duration(self).getSeconds() <= 65535",message="connectTime must be between 1s and 65535s"
	// +kubebuilder:validation:XValidation:rule="duration(self).getMilliseconds() % 1000 == 0",message="connectTime must be a whole number of seconds"
	ConnectTime *metav1.Duration `json:"connectTime,omitempty"`

	// RouterID is the BGP router ID the speaker uses; by default the node's
	// IPv4 address.
	// +optional
	RouterID string `json:"routerID,omitempty"`

	// NodeSelectors limits the nodes that establish this session; empty
	// means every node.
	// +optional
	NodeSelectors []metav1.LabelSelector `json:"nodeSelectors,omitempty"`

	// Password is the TCP MD5 password of the session, in clear text. Use
	// passwordSecret to keep it out of the object.
	// +optional
	Password string `json:"password,omitempty"`

	// PasswordSecret names a Secret of type kubernetes.io/basic-auth in the
	// stack's namespace whose "password" key is the TCP MD5 password.
	// +optional
	PasswordSecret corev1.SecretReference `json:"passwordSecret,omitempty"`

	// BFDProfile names the BFDProfile of the BFD session run alongside this
	// BGP session (FRR mode). Empty means no BFD.
	// +optional
	BFDProfile string `json:"bfdProfile,omitempty"`

	// EnableGracefulRestart turns on BGP graceful restart (RFC 4724) so that
	// the peer keeps routes while a speaker restarts. It cannot be changed
	// after creation.
	// +optional
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="enableGracefulRestart cannot be changed after creation"
	EnableGracefulRestart bool `json:"enableGracefulRestart,omitempty"`

	// EBGPMultiHop allows an eBGP peer that is more than one hop away.
	// +optional
	EBGPMultiHop bool `json:"ebgpMultiHop,omitempty"`

	// VRFName is the VRF the session is established in; empty means the
	// default VRF.
	// +optional
	VRFName string `json:"vrf,omitempty"`

	// DisableMP separates IPv4 and IPv6 routes into distinct sessions.
	// Deprecated: use dualStackAddressFamily.
	// +optional
	DisableMP bool `json:"disableMP,omitempty"`

	// DualStackAddressFamily carries both IPv4 and IPv6 routes over this one
	// session (multiprotocol BGP); otherwise a session carries its own
	// family only.
	// +optional
	DualStackAddressFamily bool `json:"dualStackAddressFamily,omitempty"`
}

// BGPPeerStatus is empty; per-node session state is reported elsewhere.
type BGPPeerStatus struct{}

// BGPPeer is a BGP router that speakers establish sessions with.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:storageversion
// +kubebuilder:resource:shortName=bgppeer
// +kubebuilder:printcolumn:name="Address",type=string,JSONPath=`.spec.peerAddress`
// +kubebuilder:printcolumn:name="ASN",type=string,JSONPath=`.spec.peerASN`
// +kubebuilder:printcolumn:name="BFD Profile",type=string,JSONPath=`.spec.bfdProfile`
// +kubebuilder:printcolumn:name="Multi Hops",type=string,JSONPath=`.spec.ebgpMultiHop`
// +kubebuilder:printcolumn:name="VRF",type=string,JSONPath=`.spec.vrf`,priority=10
type BGPPeer struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the session's configuration.
	Spec BGPPeerSpec `json:"spec,omitempty"`

	// Status is unused and kept for compatibility.
	// +optional
	Status BGPPeerStatus `json:"status,omitempty"`
}

// BGPPeerList is a list of BGPPeer.
//
// +kubebuilder:object:root=true
type BGPPeerList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []BGPPeer `json:"items"`
}

func init() {
	SchemeBuilder.Register(&BGPPeer{}, &BGPPeerList{})
}
