package legacyconfig

// The types below are MetalLB's legacy configuration file, the `config` key
// of the ConfigMap that MetalLB v0.12 and earlier read. Field names follow
// MetalLB v0.12's internal/config (decoded there with gopkg.in/yaml.v2 in
// strict mode, which is what Parse does too), plus the few fields the brief
// of this converter adds: a peer's `keepalive-time`, `vrf` and `name`.

// Protocol is how an address pool is announced.
type Protocol string

// The protocols of a legacy address pool.
const (
	ProtocolBGP    Protocol = "bgp"
	ProtocolLayer2 Protocol = "layer2"
)

// Config is the whole legacy configuration.
type Config struct {
	Peers          []Peer            `yaml:"peers,omitempty"`
	BGPCommunities map[string]string `yaml:"bgp-communities,omitempty"`
	Pools          []AddressPool     `yaml:"address-pools,omitempty"`
	BFDProfiles    []BFDProfile      `yaml:"bfd-profiles,omitempty"`
}

// Peer is one BGP peer.
type Peer struct {
	// Name is not part of MetalLB's format; when present it names the
	// BGPPeer instead of peer<N>.
	Name          string         `yaml:"name,omitempty"`
	MyASN         uint32         `yaml:"my-asn,omitempty"`
	ASN           uint32         `yaml:"peer-asn,omitempty"`
	Addr          string         `yaml:"peer-address,omitempty"`
	SrcAddr       string         `yaml:"source-address,omitempty"`
	Port          uint16         `yaml:"peer-port,omitempty"`
	HoldTime      string         `yaml:"hold-time,omitempty"`
	KeepaliveTime string         `yaml:"keepalive-time,omitempty"`
	RouterID      string         `yaml:"router-id,omitempty"`
	NodeSelectors []NodeSelector `yaml:"node-selectors,omitempty"`
	Password      string         `yaml:"password,omitempty"`
	BFDProfile    string         `yaml:"bfd-profile,omitempty"`
	EBGPMultiHop  bool           `yaml:"ebgp-multihop,omitempty"`
	VRF           string         `yaml:"vrf,omitempty"`
}

// NodeSelector limits the nodes that peer; MetalLB turned it into a label
// selector.
type NodeSelector struct {
	MatchLabels      map[string]string     `yaml:"match-labels,omitempty"`
	MatchExpressions []SelectorRequirement `yaml:"match-expressions,omitempty"`
}

// SelectorRequirement is one match-expressions entry.
type SelectorRequirement struct {
	Key      string   `yaml:"key"`
	Operator string   `yaml:"operator"`
	Values   []string `yaml:"values,omitempty"`
}

// AddressPool is one address pool.
type AddressPool struct {
	Name              string             `yaml:"name"`
	Protocol          Protocol           `yaml:"protocol"`
	Addresses         []string           `yaml:"addresses"`
	AvoidBuggyIPs     bool               `yaml:"avoid-buggy-ips,omitempty"`
	AutoAssign        *bool              `yaml:"auto-assign,omitempty"`
	BGPAdvertisements []BGPAdvertisement `yaml:"bgp-advertisements,omitempty"`
}

// BGPAdvertisement is one way a bgp pool's addresses are announced.
type BGPAdvertisement struct {
	AggregationLength   *int32   `yaml:"aggregation-length,omitempty"`
	AggregationLengthV6 *int32   `yaml:"aggregation-length-v6,omitempty"`
	LocalPref           *uint32  `yaml:"localpref,omitempty"`
	Communities         []string `yaml:"communities,omitempty"`
}

// BFDProfile is one BFD profile (intervals in milliseconds).
type BFDProfile struct {
	Name             string  `yaml:"name"`
	ReceiveInterval  *uint32 `yaml:"receive-interval,omitempty"`
	TransmitInterval *uint32 `yaml:"transmit-interval,omitempty"`
	DetectMultiplier *uint32 `yaml:"detect-multiplier,omitempty"`
	EchoInterval     *uint32 `yaml:"echo-interval,omitempty"`
	EchoMode         *bool   `yaml:"echo-mode,omitempty"`
	PassiveMode      *bool   `yaml:"passive-mode,omitempty"`
	MinimumTTL       *uint32 `yaml:"minimum-ttl,omitempty"`
}
