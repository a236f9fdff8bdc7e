package symrouting

// Check ids: stable, CamelCase, one per kind of inconsistency.
const (
	// Peer VRF defined in a NodeNetworkConfigurationPolicy (check 1).
	CheckVRFNotDefined         = "VRFNotDefined"
	CheckVRFInterfaceInvalid   = "VRFInterfaceInvalid"
	CheckVRFNotOnPeerNodes     = "VRFNotOnPeerNodes"
	CheckVRFRouteTableMissing  = "VRFRouteTableMissing"
	CheckVRFRouteTableReserved = "VRFRouteTableReserved"
	CheckVRFRouteTableConflict = "VRFRouteTableConflict"
	CheckVRFPortNoAddress      = "VRFPortNoAddress"
	CheckPolicyUnparsable      = "PolicyUnparsable"

	// The VRF on the nodes (check 2, 8).
	CheckNMStateNotInstalled  = "NMStateNotInstalled"
	CheckNodeStateMissing     = "NodeStateMissing"
	CheckVRFNotOnNode         = "VRFNotOnNode"
	CheckEnactmentFailed      = "EnactmentFailed"
	CheckEnactmentProgressing = "EnactmentProgressing"

	// EgressService network (check 3).
	CheckEgressNetworkMismatch = "EgressNetworkMismatch"
	CheckEgressNetworkInvalid  = "EgressNetworkInvalid"
	CheckEgressNetworkEmpty    = "EgressNetworkEmpty"
	CheckEgressNoVRFPeer       = "EgressNoVRFPeer"
	CheckEgressNodesWithoutVRF = "EgressNodesWithoutVRF"

	// EgressService and its Service (check 4).
	CheckEgressServiceNoService       = "EgressServiceNoService"
	CheckEgressServiceNotLoadBalancer = "EgressServiceNotLoadBalancer"
	CheckEgressServiceNoIngress       = "EgressServiceNoIngress"
	CheckEgressServiceNameTooLong     = "EgressServiceNameTooLong"
	CheckEgressServicePoolNotFound    = "EgressServicePoolNotFound"
	CheckServiceAnnotationConflict    = "ServiceAnnotationConflict"

	// sourceIPBy (check 5).
	CheckAdvertisementNodeSelector = "AdvertisementNodeSelector"
	CheckAdvertisementNonVRFPeer   = "AdvertisementNonVRFPeer"
	CheckPoolNotRequested          = "PoolNotRequested"
	CheckPoolAutoAssign            = "PoolAutoAssign"
	CheckPoolShared                = "PoolShared"
	CheckOVNConfigUnknown          = "OVNConfigUnknown"
	CheckRoutingViaHostDisabled    = "RoutingViaHostDisabled"

	// Route rules (check 6).
	CheckMainTableRuleMissing     = "MainTableRuleMissing"
	CheckMasqueradeRuleMissing    = "MasqueradeRuleMissing"
	CheckMainTableNetworksUnknown = "MainTableNetworksUnknown"

	// Backend (check 7).
	CheckBackendCannotBindVRF = "BackendCannotBindVRF"
)

// CheckInfo describes one check id.
type CheckInfo struct {
	ID          string
	Description string
}

var checkInfos = []CheckInfo{
	{CheckVRFNotDefined, "a BGPPeer's spec.vrf is not an interface of any NodeNetworkConfigurationPolicy's desiredState"},
	{CheckVRFInterfaceInvalid, "the interface a BGPPeer's spec.vrf names is not `type: vrf` with `state: up`"},
	{CheckVRFNotOnPeerNodes, "some nodes of a VRF BGPPeer are not selected by any policy defining the VRF"},
	{CheckVRFRouteTableMissing, "the VRF has no vrf.route-table-id > 0"},
	{CheckVRFRouteTableReserved, "the VRF's route-table-id is 253, 254 or 255 (default, main, local tables)"},
	{CheckVRFRouteTableConflict, "two policies define the VRF of one BGPPeer with different route-table-ids"},
	{CheckVRFPortNoAddress, "no vrf.port of the VRF gets an enabled static IPv4/IPv6 address in the same desiredState"},
	{CheckPolicyUnparsable, "a NodeNetworkConfigurationPolicy's desiredState (or a NodeNetworkState's currentState) cannot be parsed"},
	{CheckNMStateNotInstalled, "a BGPPeer uses a VRF but the NMState CRDs are not installed"},
	{CheckNodeStateMissing, "a node of a VRF BGPPeer has no NodeNetworkState, so the VRF cannot be checked there"},
	{CheckVRFNotOnNode, "a node's NodeNetworkState does not show the VRF up with the policy's route-table-id"},
	{CheckEnactmentFailed, "the enactment of the VRF policy on a node failed or was aborted"},
	{CheckEnactmentProgressing, "the enactment of the VRF policy on a node is missing, pending, progressing or behind the policy's generation"},
	{CheckEgressNetworkMismatch, "an EgressService's spec.network differs from the route-table-id of the VRF its traffic is advertised through"},
	{CheckEgressNetworkInvalid, "an EgressService's spec.network is not a number, is >= 1000 (reserved by OpenShift) or names table 253-255"},
	{CheckEgressNetworkEmpty, "an EgressService has no spec.network although its Service is advertised to a VRF BGPPeer"},
	{CheckEgressNoVRFPeer, "an EgressService sets spec.network but no BGPAdvertisement announces its Service to a VRF BGPPeer"},
	{CheckEgressNodesWithoutVRF, "an EgressService's spec.nodeSelector lets OVN pick an egress node on which no policy defines the VRF"},
	{CheckEgressServiceNoService, "no Service has the EgressService's namespace and name"},
	{CheckEgressServiceNotLoadBalancer, "the EgressService's Service is not of type LoadBalancer"},
	{CheckEgressServiceNoIngress, "the EgressService's Service has no load-balancer ingress address"},
	{CheckEgressServiceNameTooLong, "<namespace>-<name> of an EgressService is longer than 63 characters, too long for OVN's node label"},
	{CheckEgressServicePoolNotFound, "the pool the EgressService's Service asks for, or holding its address, does not exist"},
	{CheckServiceAnnotationConflict, "the EgressService's Service sets a MetalLB annotation in both spellings (metallb.io and metallb.universe.tf) to different values"},
	{CheckAdvertisementNodeSelector, "a BGPAdvertisement of the Service's pool does not select only the node OVN labels egress-service.k8s.ovn.org/<ns>-<name>"},
	{CheckAdvertisementNonVRFPeer, "a BGPAdvertisement of the Service's pool also announces to BGPPeers outside the EgressService's VRF"},
	{CheckPoolNotRequested, "the Service does not ask for its pool (address-pool annotation or loadBalancerIP) and the pool auto-assigns"},
	{CheckPoolAutoAssign, "the Service's pool has autoAssign true: another Service may get an address there and be advertised the same way"},
	{CheckPoolShared, "another LoadBalancer Service holds an address of the EgressService's pool"},
	{CheckOVNConfigUnknown, "sourceIPBy Network needs routingViaHost but there is no operator.openshift.io Network \"cluster\" to check"},
	{CheckRoutingViaHostDisabled, "sourceIPBy Network needs OVN gatewayConfig.routingViaHost true"},
	{CheckMainTableRuleMissing, "no route rule (route-table 254, priority < 1000) keeps a cluster or service network in the main table"},
	{CheckMasqueradeRuleMissing, "no route rule (route-table 254, priority < 1000) keeps OVN's masquerade subnet in the main table"},
	{CheckMainTableNetworksUnknown, "the cluster and service networks are unknown, so the route rules cannot be checked"},
	{CheckBackendCannotBindVRF, "the MetalLB spec.bgpBackend is frr-k8s or frr-k8s-external, which lbstack does not run, so it cannot bind the VRF"},
}

// Checks lists every check id with a one-line description, in a stable
// order (for documentation).
func Checks() []CheckInfo {
	return append([]CheckInfo(nil), checkInfos...)
}
