// Package calico holds the pure logic of the Calico announcement mode
// (issue #19): lbstack assigns LoadBalancer addresses, Calico's nodes
// announce them.
//
// Calico announces a Service's LoadBalancer address only when it falls in
// one of the CIDRs of spec.serviceLoadBalancerIPs of its default
// BGPConfiguration, and tags the routes inside a CIDR with the communities
// of spec.prefixAdvertisements for that CIDR. So the metallb.io
// configuration maps onto those two fields (Compute): every pool that a
// BGPAdvertisement selects becomes the CIDRs covering exactly its addresses
// (Calico announces a whole CIDR for Services with externalTrafficPolicy
// Cluster, so a wider CIDR would announce addresses outside the pools), and
// the communities of the advertisements selecting a pool become prefix
// advertisements of its CIDRs.
//
// What metallb.io can say and Calico cannot (a local preference, an
// aggregate wider than the pool's CIDRs, per-peer or per-node
// announcements, Service selectors), the metallb.io BGPPeers this mode
// ignores, a missing Calico BGPPeer or default BGPConfiguration, Services
// with externalTrafficPolicy Local (which Calico announces as host routes
// from the nodes with an endpoint only), and serviceLoadBalancerIPs entries
// that do not match the pools are reported by Check as findings, the way
// pkg/symrouting reports its checks: they never stop the configuration.
// Each finding names the metallb.io object (or Service) and the Calico
// object involved, and the field.
//
// No Kubernetes I/O: callers read Calico's objects and write the result
// (server-side apply of the fields Spec returns).
package calico
