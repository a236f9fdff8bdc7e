// Package symrouting checks that the objects behind "symmetric routing" on
// OpenShift-like clusters agree with each other. Symmetric routing makes the
// egress traffic of a LoadBalancer Service leave through the same VRF, from
// the same node and with the same source address, as its ingress traffic
// arrives. It takes five objects from three projects:
//
//   - a NodeNetworkConfigurationPolicy (NMState) creating the VRF (type vrf,
//     vrf.route-table-id, vrf.port with a static address) and route rules
//     keeping cluster, service and OVN masquerade traffic in the main table;
//   - a BGPPeer (metallb.io/v1beta2) with spec.vrf naming that VRF;
//   - an IPAddressPool and a BGPAdvertisement announcing the Service's
//     address only to the VRF peer, only from the node OVN labels
//     egress-service.k8s.ovn.org/<namespace>-<name>;
//   - an EgressService (OVN-Kubernetes) named like the Service, whose
//     spec.network is the VRF's route-table-id.
//
// Nothing in the cluster says when they disagree; Check does, from listed
// objects only (no API access). It is pure logic: callers gather Inputs.
// It reads the metallb.io objects through pkg/config (config.Resolve), so
// which pool holds an address and which advertisements announce a pool to
// which peers from which nodes follow the rules the rest of lbstack
// applies, and the Services through pkg/lbservice, as the address assigner
// reads them.
//
// # Entry points
//
// Every BGPPeer with a non-empty spec.vrf, and every EgressService. From an
// EgressService, Check follows: its Service (same namespace and name) → the
// pool named in the metallb.io/address-pool annotation, or else the pool
// holding its first ingress address → the BGPAdvertisements covering that
// pool (spec.ipAddressPools, spec.ipAddressPoolSelectors, all pools when
// both are empty; spec.serviceSelectors must match the Service) → their
// peers (spec.peers, all peers when empty) → the VRF → the policies.
//
// # Checks
//
// Each finding carries a stable Check id (see Checks for the full list):
//
//  1. The peer's VRF is defined (VRFNotDefined, VRFInterfaceInvalid,
//     VRFNotOnPeerNodes, VRFRouteTableMissing, VRFRouteTableReserved,
//     VRFRouteTableConflict, VRFPortNoAddress, PolicyUnparsable): an
//     interface of type vrf, state up, in a policy whose spec.nodeSelector
//     covers every node the peer's spec.nodeSelectors select (all nodes
//     when empty); with a route-table-id > 0 (not 253-255); with a
//     vrf.port given an enabled static address in the same desiredState.
//  2. The VRF is on the nodes (NodeStateMissing, VRFNotOnNode,
//     EnactmentFailed, EnactmentProgressing): each peer node's
//     NodeNetworkState shows it up with the same table, and the enactment
//     <node>.<policy> is Available at the policy's generation.
//  3. EgressService spec.network (EgressNetworkMismatch,
//     EgressNetworkInvalid, EgressNetworkEmpty, EgressNoVRFPeer): numeric,
//     below 1000 (OpenShift reserves the rest), not 253-255, equal to the
//     VRF's route-table-id; not empty when a VRF peer gets the Service.
//     Its spec.nodeSelector only lets OVN pick nodes that have the VRF
//     (EgressNodesWithoutVRF).
//  4. The EgressService's Service (EgressServiceNoService,
//     EgressServiceNotLoadBalancer, EgressServiceNoIngress,
//     EgressServiceNameTooLong, EgressServicePoolNotFound,
//     ServiceAnnotationConflict): exists, is a LoadBalancer with an ingress
//     address, <namespace>-<name> fits a 63-character label name, and its
//     MetalLB annotations do not say two things in their two spellings.
//  5. sourceIPBy LoadBalancerIP (the default): every advertisement of the
//     pool selects only the node labelled egress-service.k8s.ovn.org/<ns>-<name>
//     (AdvertisementNodeSelector) and announces only to peers in the
//     EgressService's VRF (AdvertisementNonVRFPeer); the pool is dedicated
//     (PoolNotRequested, PoolAutoAssign: warnings; PoolShared: another
//     Service holds one of its addresses). sourceIPBy Network: OVN
//     routingViaHost must be true (RoutingViaHostDisabled; OVNConfigUnknown
//     when there is no operator.openshift.io Network "cluster").
//  6. Route rules (MainTableRuleMissing, MasqueradeRuleMissing,
//     MainTableNetworksUnknown): for each address family in use, rules with
//     route-table 254 and priority < 1000 (before the VRF's l3mdev rule) in
//     the policies applying to the VRF's nodes cover every cluster network,
//     service network and OVN masquerade subnet (configured, else the
//     k8s.ovn.org/node-masquerade-subnet node annotation, else either
//     platform default). Masquerade is only checked on OVN (Inputs.OVN set).
//  7. Backend (BackendCannotBindVRF): frr-k8s and frr-k8s-external are not
//     run by lbstack and cannot be made to bind the VRF; native and frr can.
//  8. Installed APIs (NMStateNotInstalled): a VRF peer needs NMState.
//
// Messages name both objects involved and the field, and say what to do.
package symrouting
