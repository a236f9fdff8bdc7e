package config

import (
	"net/netip"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	bfdprofile "github.com/lbstack/lbstack/pkg/bfd" // config's tests have a helper called bfd
)

// Resources is every input of Build: the metallb.io objects and the core
// objects used to resolve them. Order matters only for attribution: when two
// objects conflict, the later one is the Problem's Object (webhooks put the
// object under admission last).
type Resources struct {
	Pools       []v1beta1.IPAddressPool
	Peers       []v1beta2.BGPPeer
	BGPAdvs     []v1beta1.BGPAdvertisement
	L2Advs      []v1beta1.L2Advertisement
	BFDProfiles []v1beta1.BFDProfile
	Communities []v1beta1.Community
	// Secrets are the stack namespace's Secrets (BGP password secrets);
	// Secrets of other namespaces are ignored.
	Secrets []corev1.Secret
	// Nodes resolve node selectors where Build needs to know whether two
	// selectors can select the same node (duplicate peers, local-pref
	// conflicts, routerID/myASN consistency).
	Nodes []corev1.Node
	// Namespaces resolve pools' serviceAllocation.namespaceSelectors into
	// ServiceAllocation.MatchedNamespaces.
	Namespaces []corev1.Namespace
}

// Options are the stack-wide settings Build validates against.
type Options struct {
	// Namespace is the stack's namespace (e.g. "metallb-system"); every
	// metallb.io object must live there. Empty disables the check. An object
	// with an empty namespace is taken to be in it (the API server always
	// fills it in before admission).
	Namespace string
	// BGPBackend is the MetalLB CR's bgpBackend: "native" (GoBGP) or an FRR
	// flavour ("frr", "frr-k8s", "frr-k8s-external"); empty means frr.
	BGPBackend v1beta1.BGPType
	// Previous is the last configuration in use, if any. A BGPPeer whose
	// current object is refused keeps its version from Previous (see
	// Result.RetainedPeers): a bad edit, or a Secret whose new value
	// cannot be a password, freezes that one session instead of dropping
	// it or stopping every other.
	Previous *Config
}

// DefaultBGPPort is the peer port when spec.peerPort is unset.
const DefaultBGPPort = 179

// Config is the validated, fully resolved configuration. Every name in it
// refers to an object present in it unless a field's comment says otherwise.
type Config struct {
	// BGPBackend is Options.BGPBackend with the default applied.
	BGPBackend v1beta1.BGPType

	// Pools by name.
	Pools map[string]*Pool
	// PoolNames are the keys of Pools, sorted.
	PoolNames []string

	// Peers by name.
	Peers map[string]*Peer
	// PeerNames are the keys of Peers, sorted.
	PeerNames []string

	// BFDProfiles by name.
	BFDProfiles map[string]*BFDProfile

	// Communities maps every alias defined by Community objects to its value.
	Communities map[string]Community

	// BGPAdvs and L2Advs are the advertisements, sorted by name.
	BGPAdvs []*BGPAdvertisement
	L2Advs  []*L2Advertisement

	// index holds every range of every pool, for PoolFor.
	index *rangeIndex
	// poolList is the pools in index order (rangeIndex.span.pool).
	poolList []*Pool
}

// PoolFor returns the pool holding a, or nil. O(log n). An IPv4-mapped
// IPv6 address is looked up as the IPv4 address it maps.
func (c *Config) PoolFor(a netip.Addr) *Pool {
	if c == nil || c.index == nil || !a.IsValid() {
		return nil
	}
	s, ok := c.index.find(a.Unmap())
	if !ok {
		return nil
	}
	return c.poolList[s.pool]
}

// Pool is a validated IPAddressPool.
type Pool struct {
	Name string
	// Ranges are the parsed spec.addresses entries, in spec order. Ranges of
	// all pools are pairwise disjoint.
	Ranges []AddrRange
	// CIDRs is the minimal CIDR summary of every range, in spec order.
	CIDRs []netip.Prefix
	// AutoAssign is spec.autoAssign, true when unset.
	AutoAssign bool
	// AvoidBuggyIPs is spec.avoidBuggyIPs: skip IPv4 addresses ending in
	// .0 and .255.
	AvoidBuggyIPs bool
	// ServiceAllocation is spec.serviceAllocation, nil when unset (the pool
	// serves every Service).
	ServiceAllocation *ServiceAllocation
	// Labels are the pool's labels (matched by ipAddressPoolSelectors).
	Labels map[string]string
	// HasIPv4 and HasIPv6 tell which families the pool's ranges hold.
	HasIPv4, HasIPv6 bool
	// BGPAdvertisements and L2Advertisements are the advertisements that
	// announce this pool, sorted by name.
	BGPAdvertisements []*BGPAdvertisement
	L2Advertisements  []*L2Advertisement

	index *rangeIndex
}

// Contains reports whether a belongs to the pool. O(log ranges). An
// IPv4-mapped IPv6 address is looked up as the IPv4 address it maps.
func (p *Pool) Contains(a netip.Addr) bool {
	if p == nil || p.index == nil || !a.IsValid() {
		return false
	}
	_, ok := p.index.find(a.Unmap())
	return ok
}

// ServiceAllocation restricts the Services a pool serves.
type ServiceAllocation struct {
	// Priority orders pools matching the same Service: lowest first; 0 means
	// no priority (after those with one), as in MetalLB.
	Priority int
	// Namespaces is spec.serviceAllocation.namespaces.
	Namespaces map[string]bool
	// NamespaceSelectors and ServiceSelectors are the parsed selectors.
	NamespaceSelectors []labels.Selector
	ServiceSelectors   []labels.Selector
	// MatchedNamespaces is Namespaces plus the names of the
	// Resources.Namespaces that a NamespaceSelector matched when Build ran
	// (MetalLB's "pools by namespace" view). Use Matches for a live answer.
	MatchedNamespaces map[string]bool
}

// RestrictsNamespaces reports whether the allocation limits namespaces.
func (a *ServiceAllocation) RestrictsNamespaces() bool {
	return a != nil && (len(a.Namespaces) > 0 || len(a.NamespaceSelectors) > 0)
}

// RestrictsServices reports whether the allocation limits Services by label.
func (a *ServiceAllocation) RestrictsServices() bool {
	return a != nil && len(a.ServiceSelectors) > 0
}

// Matches reports whether a Service of namespace ns (whose labels are
// nsLabels) with labels svcLabels may take addresses from the pool: the
// namespace must be listed or match a namespace selector (when any are
// set), and the Service must match a service selector (when any are set).
// A nil allocation matches everything.
func (a *ServiceAllocation) Matches(ns string, nsLabels, svcLabels map[string]string) bool {
	if a == nil {
		return true
	}
	if a.RestrictsNamespaces() && !a.Namespaces[ns] && !anySelectorMatches(a.NamespaceSelectors, nsLabels) {
		return false
	}
	if a.RestrictsServices() && !anySelectorMatches(a.ServiceSelectors, svcLabels) {
		return false
	}
	return true
}

// Peer is a validated BGPPeer (v1beta2), every default applied.
type Peer struct {
	Name string
	// MyASN is the speaker's AS.
	MyASN uint32
	// PeerASN is the peer's AS; 0 when DynamicASN is set.
	PeerASN uint32
	// DynamicASN is "internal" or "external" when the peer's AS is learned
	// from its OPEN message; empty when PeerASN is set.
	DynamicASN v1beta2.DynamicASNMode
	// LocalASN, when non-zero, is the AS presented to the peer instead of
	// MyASN (FRR "local-as", GoBGP PeerConf.LocalAsn).
	LocalASN uint32
	// Address is the peer's address; invalid (zero) for an unnumbered peer.
	Address netip.Addr
	// Interface is the node interface of an unnumbered peer; empty otherwise.
	Interface string
	// Port is the peer's TCP port (DefaultBGPPort when unset).
	Port uint16
	// SrcAddress is the local address of the session; invalid when unset.
	SrcAddress netip.Addr
	// RouterID is the BGP router ID (IPv4); invalid when unset, in which case
	// the speaker uses its node's IPv4 address.
	RouterID netip.Addr
	// HoldTime and KeepaliveTime follow MetalLB: when only holdTime is set,
	// keepalive is a third of it; when only keepaliveTime is set, hold is
	// three times it; when neither is set both are nil and the backend keeps
	// its own defaults (FRR's timers of its defaults profile, GoBGP's). A
	// hold time of 0 disables keepalives (keepalive is then 0 too).
	// Backends use whole seconds: BGP carries the hold time in seconds.
	HoldTime, KeepaliveTime *time.Duration
	// ConnectTime is the connect retry interval; nil for the backend default.
	ConnectTime *time.Duration
	// NodeSelectors are the parsed spec.nodeSelectors; empty means every
	// node. Use MatchesNode.
	NodeSelectors []labels.Selector
	// Password is the TCP MD5 password: spec.password, or the "password"
	// key of the passwordSecret. Empty when there is none, and also while
	// the Secret does not exist yet (PasswordPending).
	Password string
	// PasswordSecret is spec.passwordSecret.name, empty when unset.
	PasswordSecret string
	// PasswordPending is true while PasswordSecret names a Secret that does
	// not exist yet (a warning says so). A speaker should not open the
	// session without its password.
	PasswordPending bool
	// BFDProfileName is spec.bfdProfile, empty for no BFD.
	BFDProfileName string
	// BFDProfile is the resolved profile; nil when BFDProfileName is empty or
	// names a profile that does not exist yet (a warning says so): the
	// session then runs without BFD until the profile appears.
	BFDProfile *BFDProfile
	// EBGPMultiHop allows an eBGP peer more than one hop away.
	EBGPMultiHop bool
	// VRF is the VRF of the session; empty for the default VRF.
	VRF string
	// EnableGracefulRestart turns on graceful restart (RFC 4724).
	EnableGracefulRestart bool
	// DualStackAddressFamily carries IPv4 and IPv6 routes over this one
	// session; otherwise the session carries its own family only.
	DualStackAddressFamily bool
	// DisableMP is the deprecated opposite of DualStackAddressFamily (each
	// family over its own session), kept as written. When both are set,
	// DualStackAddressFamily wins (a warning says so).
	DisableMP bool
}

// IBGP reports whether the session is internal: the peer's AS is the AS
// presented to it (LocalASN or MyASN), or dynamicASN is "internal".
func (p *Peer) IBGP() bool {
	if p.DynamicASN != "" {
		return p.DynamicASN == v1beta2.InternalASNMode
	}
	return p.PeerASN == p.localAS()
}

func (p *Peer) localAS() uint32 {
	if p.LocalASN != 0 {
		return p.LocalASN
	}
	return p.MyASN
}

// MatchesNode reports whether a node with these labels establishes the
// session.
func (p *Peer) MatchesNode(nodeLabels map[string]string) bool {
	return len(p.NodeSelectors) == 0 || anySelectorMatches(p.NodeSelectors, nodeLabels)
}

// FRR's BFD defaults, applied to unset BFDProfile fields.
const (
	DefaultBFDReceiveInterval  = 300
	DefaultBFDTransmitInterval = 300
	DefaultBFDDetectMultiplier = 3
	DefaultBFDEchoInterval     = 50
	DefaultBFDMinimumTTL       = 254
)

// BFDProfile is a validated BFDProfile with FRR's defaults filled in. The
// type lives in pkg/bfd so that pkg/bgp can carry it without importing
// pkg/config.
type BFDProfile = bfdprofile.Profile

// BGPAdvertisement is a validated BGPAdvertisement.
type BGPAdvertisement struct {
	Name string
	// Pools are the names of the announced pools (spec.ipAddressPools
	// that exist, plus the pools matched by spec.ipAddressPoolSelectors;
	// every pool when both are empty), sorted.
	Pools []string
	// AggregationLength and AggregationLengthV6 are the announced prefix
	// lengths (defaults 32 and 128).
	AggregationLength   int
	AggregationLengthV6 int
	// LocalPref is the LOCAL_PREF attribute (iBGP only); 0 when unset.
	LocalPref uint32
	// Communities are the resolved communities (aliases replaced by their
	// values), sorted, without duplicates. An alias that does not exist yet
	// is left out (a warning says so).
	Communities []Community
	// NodeSelectors are the parsed spec.nodeSelectors; empty means every
	// node. Use MatchesNode.
	NodeSelectors []labels.Selector
	// Peers are spec.peers, sorted; empty means every peer. Names of peers
	// that do not exist yet are kept (a warning says so). Use ReachesPeer.
	Peers []string
	// ServiceSelectors are the parsed spec.serviceSelectors; empty means
	// every Service. Use MatchesService.
	ServiceSelectors []labels.Selector
}

// MatchesNode reports whether a node with these labels announces.
func (a *BGPAdvertisement) MatchesNode(nodeLabels map[string]string) bool {
	return len(a.NodeSelectors) == 0 || anySelectorMatches(a.NodeSelectors, nodeLabels)
}

// ReachesPeer reports whether the announcements go to the named peer.
func (a *BGPAdvertisement) ReachesPeer(name string) bool {
	return len(a.Peers) == 0 || containsSorted(a.Peers, name)
}

// MatchesService reports whether a Service with these labels is announced.
func (a *BGPAdvertisement) MatchesService(svcLabels map[string]string) bool {
	return len(a.ServiceSelectors) == 0 || anySelectorMatches(a.ServiceSelectors, svcLabels)
}

// L2Advertisement is a validated L2Advertisement.
type L2Advertisement struct {
	Name string
	// Pools are the names of the announced pools, resolved like
	// BGPAdvertisement.Pools.
	Pools []string
	// NodeSelectors are the parsed spec.nodeSelectors; empty means every
	// node may be elected.
	NodeSelectors []labels.Selector
	// Interfaces are spec.interfaces; empty means every suitable interface.
	Interfaces []string
	// ServiceSelectors are the parsed spec.serviceSelectors; empty means
	// every Service.
	ServiceSelectors []labels.Selector
	// PreferredNodes are the weighted preferences of the election.
	PreferredNodes []WeightedSelector
}

// WeightedSelector is one parsed preferredNodeSelectors term.
type WeightedSelector struct {
	Weight   int32
	Selector labels.Selector
}

// MatchesNode reports whether a node with these labels may be elected.
func (a *L2Advertisement) MatchesNode(nodeLabels map[string]string) bool {
	return len(a.NodeSelectors) == 0 || anySelectorMatches(a.NodeSelectors, nodeLabels)
}

// MatchesService reports whether a Service with these labels is announced.
func (a *L2Advertisement) MatchesService(svcLabels map[string]string) bool {
	return len(a.ServiceSelectors) == 0 || anySelectorMatches(a.ServiceSelectors, svcLabels)
}

// NodePreference is the election score of a node: the sum of the weights of
// the preferred terms its labels match.
func (a *L2Advertisement) NodePreference(nodeLabels map[string]string) int64 {
	var total int64
	for _, w := range a.PreferredNodes {
		if w.Selector.Matches(labels.Set(nodeLabels)) {
			total += int64(w.Weight)
		}
	}
	return total
}

func anySelectorMatches(sels []labels.Selector, l map[string]string) bool {
	set := labels.Set(l)
	for _, s := range sels {
		if s.Matches(set) {
			return true
		}
	}
	return false
}
