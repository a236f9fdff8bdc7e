package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// SymmetricRouting makes the return traffic of LoadBalancer Services leave
// through the VRF their requests came in on. From this one object the
// operator generates and owns: a NodeNetworkConfigurationPolicy (nmstate.io)
// creating the VRF, its routes and route rules (unless spec.vrf.existingPolicy
// names one already there); a BGPPeer (metallb.io/v1beta2) bound to the VRF;
// per Service a dedicated IPAddressPool and a BGPAdvertisement towards that
// peer from the node OVN-Kubernetes picks; and per Service an EgressService
// (k8s.ovn.org/v1) whose network is the VRF's route table.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=symr
// +kubebuilder:printcolumn:name="VRF",type=string,JSONPath=`.spec.vrf.name`
// +kubebuilder:printcolumn:name="Table",type=integer,JSONPath=`.spec.vrf.routeTableID`
// +kubebuilder:printcolumn:name="Ready",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].status`
// +kubebuilder:printcolumn:name="Reason",type=string,JSONPath=`.status.conditions[?(@.type=="Ready")].reason`
type SymmetricRouting struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   SymmetricRoutingSpec   `json:"spec,omitempty"`
	Status SymmetricRoutingStatus `json:"status,omitempty"`
}

// SymmetricRoutingSpec is the whole declaration.
type SymmetricRoutingSpec struct {
	// VRF is the VRF on the nodes that carries the Services' traffic.
	VRF SymmetricVRF `json:"vrf"`

	// Peer is the upstream router, reached through the VRF.
	Peer SymmetricPeer `json:"peer"`

	// Services are the LoadBalancer Services kept symmetric. Each gets a
	// dedicated pool (it must ask for it with the metallb.io/address-pool
	// annotation), an advertisement from its egress node and an
	// EgressService.
	// +kubebuilder:validation:MinItems=1
	Services []SymmetricService `json:"services"`

	// SourceIPBy is the EgressServices' source address mode:
	// LoadBalancerIP (the Service's address, the default) or Network (the
	// node's address in the VRF; needs OVN's routingViaHost).
	// +kubebuilder:validation:Enum=LoadBalancerIP;Network
	// +kubebuilder:default=LoadBalancerIP
	// +optional
	SourceIPBy string `json:"sourceIPBy,omitempty"`

	// MainTableNetworks are destinations the VRF's route rules keep in the
	// main table besides those the operator discovers (on OpenShift the
	// cluster and service networks from config.openshift.io/v1 Network and
	// OVN's masquerade subnet). Elsewhere, list the cluster (pod) and
	// service CIDRs here.
	// +optional
	MainTableNetworks []string `json:"mainTableNetworks,omitempty"`
}

// SymmetricVRF describes the VRF. Either existingPolicy names a
// NodeNetworkConfigurationPolicy that already creates it, or port plus
// addresses (one address set shared by the selected nodes) or
// nodeAddresses (one policy per node) describe the policy to generate.
type SymmetricVRF struct {
	// Name is the VRF device's name.
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=15
	Name string `json:"name"`

	// RouteTableID is the VRF's routing table; it is also the
	// EgressServices' network. OpenShift reserves 1000 and above; 253-255
	// are the kernel's default, main and local tables.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=999
	RouteTableID int32 `json:"routeTableID"`

	// NodeSelector picks the nodes that have the VRF: the policy's nodes
	// and the nodes OVN may pick as egress node.
	// +optional
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`

	// ExistingPolicy names a NodeNetworkConfigurationPolicy, not owned by
	// the operator, that already creates the VRF; nothing NMState is
	// generated then, and the policy is checked instead.
	// +optional
	ExistingPolicy string `json:"existingPolicy,omitempty"`

	// Port is the interface enslaved to the VRF.
	// +optional
	Port string `json:"port,omitempty"`

	// Addresses (CIDR notation) are given to the port on every selected
	// node; use with a single node, or use nodeAddresses.
	// +optional
	Addresses []string `json:"addresses,omitempty"`

	// NodeAddresses give each node its own port addresses; the operator
	// generates one policy per node.
	// +optional
	NodeAddresses []SymmetricNodeAddresses `json:"nodeAddresses,omitempty"`

	// Gateway is the next hop of the VRF table's default route; defaults
	// to the peer's address.
	// +optional
	Gateway string `json:"gateway,omitempty"`

	// RouteMetric is the default route's metric. Defaults to 150.
	// +optional
	RouteMetric *int32 `json:"routeMetric,omitempty"`

	// RulePriority is the priority of the route rules that keep cluster
	// traffic in the main table; below 1000. Defaults to 998.
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=999
	// +optional
	RulePriority *int32 `json:"rulePriority,omitempty"`

	// MaxUnavailable is copied to the generated policies.
	// +optional
	MaxUnavailable *intstr.IntOrString `json:"maxUnavailable,omitempty"`
}

// SymmetricNodeAddresses are one node's port addresses.
type SymmetricNodeAddresses struct {
	// Node is the node's name.
	Node string `json:"node"`
	// Addresses in CIDR notation.
	// +kubebuilder:validation:MinItems=1
	Addresses []string `json:"addresses"`
}

// SymmetricPeer is the upstream router.
type SymmetricPeer struct {
	// Name of the generated BGPPeer; defaults to the SymmetricRouting's name.
	// +optional
	Name string `json:"name,omitempty"`
	// MyASN is the nodes' AS number.
	MyASN uint32 `json:"myASN"`
	// ASN is the router's AS number.
	ASN uint32 `json:"peerASN"`
	// Address is the router's address on the VRF's network.
	Address string `json:"peerAddress"`
	// Port is the router's BGP port.
	// +optional
	Port uint16 `json:"peerPort,omitempty"`
	// BFDProfile names a metallb.io BFDProfile for the session.
	// +optional
	BFDProfile string `json:"bfdProfile,omitempty"`
	// PasswordSecret names a kubernetes.io/basic-auth Secret in the
	// operator's namespace holding the session's TCP MD5 password.
	// +optional
	PasswordSecret string `json:"passwordSecret,omitempty"`
	// HoldTime of the session.
	// +optional
	HoldTime *metav1.Duration `json:"holdTime,omitempty"`
}

// SymmetricService is one LoadBalancer Service kept symmetric.
type SymmetricService struct {
	// Namespace of the Service (and of its EgressService).
	Namespace string `json:"namespace"`
	// Name of the Service (and of its EgressService).
	Name string `json:"name"`
	// Addresses of the Service's dedicated pool (CIDRs or ranges).
	// +kubebuilder:validation:MinItems=1
	Addresses []string `json:"addresses"`
	// PoolName names the generated IPAddressPool; defaults to
	// <symmetricrouting>-<namespace>-<name>.
	// +optional
	PoolName string `json:"poolName,omitempty"`
	// AdvertisementName names the generated BGPAdvertisement; defaults to
	// the pool's name.
	// +optional
	AdvertisementName string `json:"advertisementName,omitempty"`
}

// SymmetricRoutingStatus reports progress and consistency.
type SymmetricRoutingStatus struct {
	// ObservedGeneration is the generation the status describes.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: Ready (everything generated, enacted and consistent),
	// Generated (objects written), PolicyEnacted (NMState reports the
	// policies Available on every node), EgressAssigned (OVN picked a host
	// for every EgressService), Consistent (every check passes).
	// +optional
	Conditions []metav1.Condition `json:"conditions,omitempty"`
	// Objects lists what the operator generated.
	// +optional
	Objects []GeneratedObject `json:"objects,omitempty"`
	// Findings are the consistency checks that failed, one line each.
	// +optional
	Findings []string `json:"findings,omitempty"`
	// EgressHosts maps namespace/name of each Service to the node OVN
	// picked for it.
	// +optional
	EgressHosts map[string]string `json:"egressHosts,omitempty"`
}

// GeneratedObject names one object the operator owns for a declaration.
type GeneratedObject struct {
	APIVersion string `json:"apiVersion"`
	Kind       string `json:"kind"`
	// +optional
	Namespace string `json:"namespace,omitempty"`
	Name      string `json:"name"`
}

// +kubebuilder:object:root=true

// SymmetricRoutingList is a list of SymmetricRouting.
type SymmetricRoutingList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []SymmetricRouting `json:"items"`
}

func init() {
	SchemeBuilder.Register(&SymmetricRouting{}, &SymmetricRoutingList{})
}
