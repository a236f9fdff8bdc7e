package calico

import "fmt"

// Severity grades a Finding.
type Severity string

const (
	// Error: part of the configuration is not announced, or is announced
	// differently than the metallb.io objects say.
	Error Severity = "Error"
	// Warning: announcements work, but something is ignored or unexpected.
	Warning Severity = "Warning"
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
)

// ObjectRef names one object. Namespace is empty for cluster-scoped
// objects (Calico's).
type ObjectRef struct{ Kind, Namespace, Name string }

// String returns the reference as messages print it:
// `bgpadvertisement "metallb-system/adv"`,
// `bgpconfiguration.crd.projectcalico.org "default"`.
func (r ObjectRef) String() string {
	switch {
	case r.Name == "":
		return r.Kind
	case r.Namespace == "":
		return fmt.Sprintf("%s %q", r.Kind, r.Name)
	default:
		return fmt.Sprintf("%s %q", r.Kind, r.Namespace+"/"+r.Name)
	}
}

// Finding is one inconsistency between the metallb.io objects and what
// Calico announces.
type Finding struct {
	// Check is the stable CamelCase id of the check (see Checks).
	Check string
	// Severity grades the finding.
	Severity Severity
	// Objects are the objects involved, the one to change first.
	Objects []ObjectRef
	// Field is the field of Objects[0] the finding is about.
	Field string
	// Message names the object and the field, says what Calico does
	// instead and what to change.
	Message string
}

func (f Finding) String() string {
	return fmt.Sprintf("%s %s: %s", f.Severity, f.Check, f.Message)
}

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
