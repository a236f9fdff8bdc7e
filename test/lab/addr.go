package lab

import (
	"fmt"
	"net/netip"
)

// The lab's address plan. Every address the lab configures comes from the
// benchmarking range 198.18.0.0/15 or from 2001:db8:18::/64 (documentation
// range): the lab must never send a packet to anything real.
const (
	// NetnsPrefix starts the name of every network namespace the lab makes;
	// cleanup finds them by this prefix.
	NetnsPrefix = "lbl-"
	// SwitchNetns holds the bridge all nodes, the router, the client and the
	// host's veth are plugged into.
	SwitchNetns = "lbl-switch"
	// RouterNetns runs the upstream router (FRR).
	RouterNetns = "lbl-router"
	// ClientNetns is the user's client: one leg on the client network
	// behind the router, one on the node segment (for ARP/NDP checks).
	ClientNetns = "lbl-client"
	// HostVeth is the root namespace's leg on the node segment: the API
	// server binds to its address, so nodes reach it over the lab network.
	HostVeth = "lbl-host"
	// Bridge is the bridge's name inside SwitchNetns.
	Bridge = "br0"

	// SegmentPrefix is the node segment; nodes are .1-.N, the router .254.
	SegmentPrefix = "198.18.0.0/24"
	// SegmentPrefix6 is the node segment's IPv6 prefix.
	SegmentPrefix6 = "2001:db8:18::/64"
	// APIServerAddr is the host's address on the segment. It is kept below
	// 198.18.0.240/28, the layer-2 pool of the l2-and-bgp-basics scenario,
	// so the API server never sits on an address a service may get.
	APIServerAddr = "198.18.0.200"
	// ClientSegmentAddr is the client's address on the node segment.
	ClientSegmentAddr  = "198.18.0.201"
	ClientSegmentAddr6 = "2001:db8:18::c9"
	// RouterAddr is the router's address on the segment, as in every scenario.
	RouterAddr  = "198.18.0.254"
	RouterAddr6 = "2001:db8:18::fe"
	// ClientNetPrefix is the client network behind the router.
	ClientNetPrefix = "198.19.20.0/24"
	// RouterClientAddr and ClientAddr are the two ends of the client network.
	RouterClientAddr = "198.19.20.254"
	ClientAddr       = "198.19.20.1"
	// ClusterPodCIDR holds every node's pod range: node i gets
	// 198.18.(128+i).0/24.
	ClusterPodCIDR = "198.18.128.0/17"
	// ServiceCIDR is the Service ClusterIP range, served by each node's
	// kube-proxy.
	ServiceCIDR = "198.19.240.0/20"
	// ServiceCIDR6 is the secondary (IPv6) ClusterIP range: it makes the
	// API server dual-stack, so dual-stack LoadBalancer Services (and their
	// IPv6 pool addresses) can exist. Pods stay IPv4-only.
	ServiceCIDR6 = "2001:db8:19f0::/112"

	// Ports, all away from the defaults (which may be taken on a
	// developer's machine) and from the ephemeral range.
	APIServerPort = 16443
	// RegistryPort is the lab registry's, on the API server's address.
	RegistryPort   = 5000
	EtcdClientPort = 12379
	EtcdPeerPort   = 12380
	KCMPort        = 20257
	SchedulerPort  = 20259

	// MaxNodes bounds the node count so node addresses (.1-.N) and pod
	// ranges (198.18.128+i.0/24) stay inside the plan.
	MaxNodes = 50
)

// PoolPrefixes are the service-address ranges the router accepts from BGP
// peers. Anything else a speaker announces is refused by the router's
// import policy, so a bug can never make the lab route a real address.
var PoolPrefixes = []string{
	"203.0.113.0/24",
	"198.51.100.0/24",
	"198.18.0.0/15",
	"2001:db8::/32",
}

// NodeName is the name of node i (1-based): both its Kubernetes Node name and
// its network namespace.
func NodeName(i int) string { return fmt.Sprintf("%snode%d", NetnsPrefix, i) }

// NodeAddr is node i's IPv4 address on the segment.
func NodeAddr(i int) string { return fmt.Sprintf("198.18.0.%d", i) }

// NodeAddr6 is node i's IPv6 address on the segment.
func NodeAddr6(i int) string { return fmt.Sprintf("2001:db8:18::%x", i) }

// NodeMAC is node i's MAC on the segment: locally administered and readable
// in neighbour tables (02:18:00:00:00:<i>).
func NodeMAC(i int) string { return fmt.Sprintf("02:18:00:00:00:%02x", i) }

// NodePodCIDR is node i's pod range.
func NodePodCIDR(i int) string { return fmt.Sprintf("198.18.%d.0/24", 128+i) }

// NodePodGateway is the gateway address of node i's pod range: the node's
// end of every pod veth holds it.
func NodePodGateway(i int) string { return fmt.Sprintf("198.18.%d.1", 128+i) }

// RouterMAC and ClientMAC are the router's and client's MACs on the segment.
const (
	RouterMAC = "02:18:00:00:00:fe"
	ClientMAC = "02:18:00:00:00:c9"
	HostMAC   = "02:18:00:00:00:c8"
)

// RegistryHost is the lab registry as the nodes reach it
// (APIServerAddr:RegistryPort).
const RegistryHost = "198.18.0.200:5000"

// APIServerURL is the API server's URL as every lab component sees it.
func APIServerURL() string { return fmt.Sprintf("https://%s:%d", APIServerAddr, APIServerPort) }

// InLabRange reports whether addr is one the lab may send traffic to: the
// lab's own ranges and the service pools.
func InLabRange(addr netip.Addr) bool {
	for _, p := range PoolPrefixes {
		if netip.MustParsePrefix(p).Contains(addr.Unmap()) {
			return true
		}
	}
	return false
}

// nodeIndexFromName is the inverse of NodeName; it returns 0 when name is
// not a lab node.
func nodeIndexFromName(name string) int {
	var i int
	if _, err := fmt.Sscanf(name, NetnsPrefix+"node%d", &i); err != nil || NodeName(i) != name {
		return 0
	}
	return i
}
