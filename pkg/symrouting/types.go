package symrouting

import (
	"net/netip"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/finding"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
)

// Inputs is everything Check looks at. Callers list the objects (any
// order); Check never modifies them.
type Inputs struct {
	Nodes      []corev1.Node
	Policies   []nmstatev1.NodeNetworkConfigurationPolicy
	States     []nmstatev1beta1.NodeNetworkState
	Enactments []nmstatev1beta1.NodeNetworkConfigurationEnactment
	// Peers, Advertisements and Pools are the stack's metallb.io objects
	// (one namespace, as config.Build takes them); Check reads them
	// through config.Resolve, so an object MetalLB refuses is still
	// followed as far as it resolves.
	Peers          []v1beta2.BGPPeer
	Advertisements []v1beta1.BGPAdvertisement
	Pools          []v1beta1.IPAddressPool
	EgressServices []ovnv1.EgressService
	Services       []corev1.Service

	// Backend is the MetalLB object's spec.bgpBackend; "" means frr (the
	// default).
	Backend v1beta1.BGPType
	// MetalLB names the MetalLB object Backend comes from (for messages);
	// zero when unknown.
	MetalLB ObjectRef

	// NMStateInstalled and OVNInstalled say whether the nmstate.io and
	// k8s.ovn.org CRDs exist. Without NMState, VRF peers get one
	// NMStateNotInstalled finding each and no policy checks; without OVN
	// there are no EgressServices to start from.
	NMStateInstalled, OVNInstalled bool

	// ClusterNetworks and ServiceNetworks are the destinations that must
	// stay in the main routing table.
	ClusterNetworks, ServiceNetworks []netip.Prefix
	// NetworksSource says where ClusterNetworks and ServiceNetworks come
	// from, e.g. `config.openshift.io/v1 Network "cluster"`; "" when unknown.
	NetworksSource string

	// OVN is the OVN-Kubernetes configuration from the
	// operator.openshift.io/v1 Network "cluster"; nil when there is none.
	OVN *OVNConfig
}

// OVNConfig is the part of operator.openshift.io/v1 Network "cluster"
// (spec.defaultNetwork.ovnKubernetesConfig) that symmetric routing depends on.
type OVNConfig struct {
	// RoutingViaHost is gatewayConfig.routingViaHost.
	RoutingViaHost bool
	// InternalMasqueradeSubnetV4 and V6 are gatewayConfig.ipv4/ipv6
	// .internalMasqueradeSubnet; "" means the platform default.
	InternalMasqueradeSubnetV4, InternalMasqueradeSubnetV6 string
}

// Severity, ObjectRef and Finding are pkg/finding's, shared with the
// other consistency checks.
type (
	Severity  = finding.Severity
	ObjectRef = finding.ObjectRef
	Finding   = finding.Finding
)

const (
	// Error: symmetric routing does not work as configured.
	Error = finding.Error
	// Warning: it works today but is fragile, or is not done yet.
	Warning = finding.Warning
	// Unknown: the check could not be made; the message says what is missing.
	Unknown = finding.Unknown
)

// Object kinds as they appear in ObjectRef.Kind.
const (
	KindNode          = "node"
	KindPolicy        = "nodenetworkconfigurationpolicy"
	KindState         = "nodenetworkstate"
	KindEnactment     = "nodenetworkconfigurationenactment"
	KindBGPPeer       = "bgppeer"
	KindAdvertisement = "bgpadvertisement"
	KindPool          = "ipaddresspool"
	KindEgressService = "egressservice"
	KindService       = "service"
	KindMetalLB       = "metallb"
	// KindOperatorNetwork is operator.openshift.io/v1 Network.
	KindOperatorNetwork = "network.operator.openshift.io"
)
