package calico

import (
	"github.com/lbstack/lbstack/pkg/finding"
)

// Severity, ObjectRef and Finding are pkg/finding's, shared with the
// symmetric-routing checks.
type (
	Severity  = finding.Severity
	ObjectRef = finding.ObjectRef
	Finding   = finding.Finding
)

const (
	// Error: part of the configuration is not announced, or is announced
	// differently than the metallb.io objects say.
	Error = finding.Error
	// Warning: announcements work, but something is ignored or unexpected.
	Warning = finding.Warning
)

// Object kinds as they appear in ObjectRef.Kind: lower-case, like
// kubectl's resource names; Calico's with their group, which tells them
// from metallb.io's kinds of the same name.
const (
	KindPool             = "ipaddresspool"
	KindBGPPeer          = "bgppeer"
	KindBGPAdvertisement = "bgpadvertisement"
	KindCalicoBGPConfig  = "bgpconfiguration.crd.projectcalico.org"
	KindCalicoBGPPeer    = "bgppeer.crd.projectcalico.org"
	KindService          = "service"
)

// Check ids: stable, CamelCase, one per kind of inconsistency.
const (
	// BGPAdvertisement fields Calico cannot express.
	CheckLocalPrefIgnored        = "LocalPrefIgnored"
	CheckAggregationBeyondPool   = "AggregationBeyondPool"
	CheckAdvertisementPeers      = "AdvertisementPeers"
	CheckAdvertisementNodes      = "AdvertisementNodeSelectors"
	CheckAdvertisementServiceSel = "AdvertisementServiceSelectors"

	// BGP sessions: metallb.io BGPPeers are ignored, Calico's must exist.
	CheckBGPPeerIgnored       = "BGPPeerIgnored"
	CheckCalicoBGPPeerMissing = "CalicoBGPPeerMissing"

	// Calico's default BGPConfiguration does not exist.
	CheckBGPConfigurationMissing = "BGPConfigurationMissing"

	// A Service with externalTrafficPolicy Local relies on Calico's host
	// routes.
	CheckServiceLocalHostRoutes = "ServiceLocalHostRoutes"

	// The current BGPConfiguration's serviceLoadBalancerIPs.
	CheckLoadBalancerIPInvalid       = "ServiceLoadBalancerIPInvalid"
	CheckLoadBalancerIPNoPool        = "ServiceLoadBalancerIPNoPool"
	CheckLoadBalancerIPBeyondPools   = "ServiceLoadBalancerIPBeyondPools"
	CheckLoadBalancerIPNotAdvertised = "ServiceLoadBalancerIPNotAdvertised"
)

// CheckInfo describes one check id.
type CheckInfo struct {
	ID          string
	Severity    Severity
	Description string
}

var checkInfos = []CheckInfo{
	{CheckLocalPrefIgnored, Warning, "a BGPAdvertisement sets spec.localPref, but Calico sets no LOCAL_PREF on the routes it announces"},
	{CheckAggregationBeyondPool, Warning, "a BGPAdvertisement's aggregationLength (or aggregationLengthV6) is shorter than a CIDR of its pools: Calico announces only the pools' own CIDRs and host routes, never a wider aggregate"},
	{CheckAdvertisementPeers, Warning, "a BGPAdvertisement limits spec.peers, but Calico announces to every Calico BGPPeer of its nodes"},
	{CheckAdvertisementNodes, Warning, "a BGPAdvertisement sets spec.nodeSelectors, but Calico announces from every node with a session"},
	{CheckAdvertisementServiceSel, Warning, "a BGPAdvertisement sets spec.serviceSelectors, but Calico announces every LoadBalancer address in serviceLoadBalancerIPs"},
	{CheckCalicoBGPPeerMissing, Error, "a BGPAdvertisement selects pools but no Calico BGPPeer exists, so no router learns the addresses"},
	{CheckBGPConfigurationMissing, Error, "Calico's default BGPConfiguration does not exist, so Calico announces no LoadBalancer address; lbstack never creates it"},
	{CheckServiceLocalHostRoutes, Warning, "a Service with externalTrafficPolicy Local is announced by Calico as a host route from the nodes with an endpoint only, beside its pool's CIDR from every node"},
	{CheckBGPPeerIgnored, Warning, "a metallb.io BGPPeer exists, but the speakers run no BGP sessions when Calico announces"},
	{CheckLoadBalancerIPInvalid, Error, "an entry of the BGPConfiguration's spec.serviceLoadBalancerIPs is not a CIDR"},
	{CheckLoadBalancerIPNoPool, Warning, "an entry of spec.serviceLoadBalancerIPs overlaps no IPAddressPool"},
	{CheckLoadBalancerIPBeyondPools, Warning, "an entry of spec.serviceLoadBalancerIPs holds addresses of a pool and addresses outside every pool, which Calico announces too"},
	{CheckLoadBalancerIPNotAdvertised, Warning, "an entry of spec.serviceLoadBalancerIPs overlaps a pool no BGPAdvertisement selects, so Calico announces addresses the metallb.io objects keep to layer 2 or to no one"},
}

// Checks lists every check id with its severity and a description.
func Checks() []CheckInfo {
	return append([]CheckInfo(nil), checkInfos...)
}
