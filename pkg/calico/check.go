package calico

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	corev1 "k8s.io/api/core/v1"

	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/iprange"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

// DefaultASNumber is the AS of Calico's nodes when neither the
// BGPConfiguration nor the node's Calico Node sets one.
const DefaultASNumber = 64512

// Inputs is everything Check looks at; Check never modifies it.
type Inputs struct {
	// Config is the built metallb.io configuration (config.Build).
	Config *config.Config
	// Namespace is the stack's namespace, where the metallb.io objects
	// live (for messages).
	Namespace string
	// Current is the spec of Calico's default BGPConfiguration as it is
	// now, lbstack's own entries included; nil when there is none.
	Current *v3.BGPConfigurationSpec
	// CurrentRead says Current was looked for: a nil Current is then
	// reported (CheckBGPConfigurationMissing); otherwise it is not.
	CurrentRead bool
	// CalicoBGPPeers are Calico's BGPPeers (read from
	// crd.projectcalico.org/v1 or projectcalico.org/v3: the spec is the
	// same). CalicoBGPPeersListed says they were listed; when false, their
	// absence is not reported.
	CalicoBGPPeers       []CalicoBGPPeer
	CalicoBGPPeersListed bool
	// Services are the cluster's Services (any type; only LoadBalancer
	// Services of LBClass with externalTrafficPolicy Local are checked).
	Services []*corev1.Service
	// LBClass is the spec.loadBalancerClass the stack serves; empty serves
	// the Services without a class.
	LBClass string
}

// CalicoBGPPeer is one Calico BGPPeer: its name and spec.
type CalicoBGPPeer struct {
	Name string
	Spec v3.BGPPeerSpec
}

// Check reports what the Calico announcement mode cannot do as the
// metallb.io objects say, and the serviceLoadBalancerIPs entries that do
// not match the pools. Findings come in a stable order: advertisements,
// then peers (each sorted by name), then the entries in spec order.
func Check(in Inputs) []Finding {
	if in.Config == nil {
		return nil
	}
	ch := &checker{in: in, desired: Compute(in.Config), poolCIDRs: map[string][]netip.Prefix{}}
	for _, p := range ch.desired.Pools {
		ch.poolCIDRs[p.Name] = p.CIDRs
	}
	for _, adv := range in.Config.BGPAdvs {
		ch.checkAdvertisement(adv)
	}
	for _, name := range in.Config.PeerNames {
		ch.checkPeer(in.Config.Peers[name])
	}
	if in.CurrentRead && in.Current == nil {
		ch.checkMissingConfiguration()
	}
	ch.checkLocalServices()
	if in.Current != nil {
		for i, e := range in.Current.ServiceLoadBalancerIPs {
			ch.checkLoadBalancerIP(i, e.CIDR)
		}
	}
	return ch.out
}

type checker struct {
	in      Inputs
	desired Desired
	// poolCIDRs are the CIDRs of the announced pools (desired.Pools) by name.
	poolCIDRs map[string][]netip.Prefix
	out       []Finding
}

func (c *checker) add(check string, sev Severity, field string, objs []ObjectRef, format string, args ...any) {
	c.out = append(c.out, Finding{Check: check, Severity: sev, Objects: objs, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) ref(kind, name string) ObjectRef {
	return ObjectRef{Kind: kind, Namespace: c.in.Namespace, Name: name}
}

var defaultBGPConfig = ObjectRef{Kind: KindCalicoBGPConfig, Name: "default"}

func (c *checker) checkAdvertisement(adv *config.BGPAdvertisement) {
	ref := c.ref(KindBGPAdvertisement, adv.Name)
	both := []ObjectRef{ref, defaultBGPConfig}
	if adv.LocalPref != 0 {
		c.add(CheckLocalPrefIgnored, Warning, "spec.localPref", both,
			"%s spec.localPref is %d, but Calico sets no LOCAL_PREF on the routes it announces for the spec.serviceLoadBalancerIPs of %s: remove spec.localPref, or set the preference on the router",
			ref, adv.LocalPref, defaultBGPConfig)
	}
	if len(adv.Pools) > 0 && c.in.CalicoBGPPeersListed && len(c.in.CalicoBGPPeers) == 0 {
		c.add(CheckCalicoBGPPeerMissing, Error, "spec.ipAddressPools", []ObjectRef{ref, {Kind: KindCalicoBGPPeer}},
			"%s announces ipaddresspool %s (spec.ipAddressPools, spec.ipAddressPoolSelectors), but no %s exists: Calico's nodes peer only with each other, so no router learns these addresses; create a Calico BGPPeer (crd.projectcalico.org/v1) for each router",
			ref, strings.Join(adv.Pools, ", "), KindCalicoBGPPeer)
	}
	c.checkAggregation(ref, adv, true)
	c.checkAggregation(ref, adv, false)
	if len(adv.Peers) > 0 {
		c.add(CheckAdvertisementPeers, Warning, "spec.peers", both,
			"%s spec.peers lists %s, but Calico announces the spec.serviceLoadBalancerIPs of %s to every Calico BGPPeer of its nodes: remove spec.peers, and choose the sessions with Calico BGPPeers (crd.projectcalico.org/v1)",
			ref, strings.Join(adv.Peers, ", "), defaultBGPConfig)
	}
	if len(adv.NodeSelectors) > 0 {
		c.add(CheckAdvertisementNodes, Warning, "spec.nodeSelectors", both,
			"%s spec.nodeSelectors is set, but Calico announces the spec.serviceLoadBalancerIPs of %s from every node that has a BGP session (for externalTrafficPolicy Local, from the nodes with an endpoint): remove spec.nodeSelectors, or limit the sessions with the nodeSelector of the Calico BGPPeers",
			ref, defaultBGPConfig)
	}
	if len(adv.ServiceSelectors) > 0 {
		c.add(CheckAdvertisementServiceSel, Warning, "spec.serviceSelectors", both,
			"%s spec.serviceSelectors is set, but Calico announces every LoadBalancer address in the spec.serviceLoadBalancerIPs of %s, whatever the Service: remove spec.serviceSelectors, or move the Services that must not be announced to a pool no BGPAdvertisement selects",
			ref, defaultBGPConfig)
	}
}

// checkAggregation: Calico announces a pool's own CIDRs (for Services with
// externalTrafficPolicy Cluster) and host routes (Local), never an
// aggregate. An aggregation length at or above every CIDR's length only
// changes which of those routes a router sees; a shorter one would cover
// addresses the pools' CIDRs do not, which Calico cannot announce.
func (c *checker) checkAggregation(ref ObjectRef, adv *config.BGPAdvertisement, v4 bool) {
	length, field := adv.AggregationLength, "spec.aggregationLength"
	if !v4 {
		length, field = adv.AggregationLengthV6, "spec.aggregationLengthV6"
	}
	var widest netip.Prefix // the pool CIDR the aggregate must not exceed: the longest prefix
	var widestPool string
	for _, name := range adv.Pools {
		for _, p := range c.poolCIDRs[name] {
			if p.Addr().Is4() == v4 && (!widest.IsValid() || p.Bits() > widest.Bits()) {
				widest, widestPool = p, name
			}
		}
	}
	if !widest.IsValid() || length >= widest.Bits() {
		return
	}
	pool := c.ref(KindPool, widestPool)
	c.add(CheckAggregationBeyondPool, Warning, field, []ObjectRef{ref, pool, defaultBGPConfig},
		"%s %s is %d, but %s holds %s: Calico announces only the pools' own CIDRs (the spec.serviceLoadBalancerIPs of %s) and host routes, never a /%d aggregate covering addresses outside them; set %s to at least %d, or remove it",
		ref, field, length, pool, widest, defaultBGPConfig, length, field, widest.Bits())
}

func (c *checker) checkPeer(p *config.Peer) {
	ref := c.ref(KindBGPPeer, p.Name)
	var calicoPeer string
	switch {
	case p.Address.IsValid() && p.PeerASN != 0:
		ip := p.Address.String()
		if p.Port != config.DefaultBGPPort {
			ip = netip.AddrPortFrom(p.Address, p.Port).String()
		}
		calicoPeer = fmt.Sprintf("create a Calico BGPPeer (crd.projectcalico.org/v1) with peerIP %s and asNumber %d", ip, p.PeerASN)
		if len(p.NodeSelectors) > 0 {
			calicoPeer += " and a nodeSelector choosing the same nodes"
		}
	default:
		// Calico peers by address and AS only (no unnumbered sessions, no
		// dynamic AS).
		calicoPeer = "create a Calico BGPPeer (crd.projectcalico.org/v1) with the router's peerIP and asNumber"
	}
	objs := []ObjectRef{ref, defaultBGPConfig}
	if same := c.calicoPeerFor(p); same != "" {
		// The router already has its Calico BGPPeer.
		cref := ObjectRef{Kind: KindCalicoBGPPeer, Name: same}
		objs[1] = cref
		calicoPeer = fmt.Sprintf("%s already peers with %s", cref, p.Address)
	}
	msg := fmt.Sprintf("%s is ignored (its whole spec): the speakers run no BGP sessions while Calico announces (layer 2 keeps working) the spec.serviceLoadBalancerIPs of %s; Calico's nodes peer instead: %s, then delete %s", ref, defaultBGPConfig, calicoPeer, ref)
	if calicoAS := c.calicoASNumber(); p.MyASN != calicoAS {
		msg += fmt.Sprintf("; its spec.myASN is %d but Calico's nodes use AS %d (spec.asNumber of %s): set that asNumber to %d or change the router", p.MyASN, calicoAS, defaultBGPConfig, p.MyASN)
	}
	c.add(CheckBGPPeerIgnored, Warning, "spec", objs, "%s", msg)
}

// calicoPeerFor is the name of a Calico BGPPeer with the peer's address
// (and port, when not 179), or "".
func (c *checker) calicoPeerFor(p *config.Peer) string {
	if !p.Address.IsValid() {
		return ""
	}
	for _, cp := range c.in.CalicoBGPPeers {
		s := strings.TrimSpace(cp.Spec.PeerIP)
		port := uint16(config.DefaultBGPPort)
		addr, err := netip.ParseAddr(s)
		if err != nil {
			ap, err := netip.ParseAddrPort(s)
			if err != nil {
				continue
			}
			addr, port = ap.Addr(), ap.Port()
		}
		if addr.Unmap() == p.Address.Unmap() && port == p.Port {
			return cp.Name
		}
	}
	return ""
}

// checkMissingConfiguration: Calico announces LoadBalancer addresses only
// from the serviceLoadBalancerIPs of its default BGPConfiguration, which
// lbstack never creates (the object's other fields are the cluster's BGP
// design: AS number, mesh, listen port).
func (c *checker) checkMissingConfiguration() {
	if len(c.desired.Pools) == 0 {
		return
	}
	var advs []string
	seen := map[string]bool{}
	for _, p := range c.desired.Pools {
		for _, a := range p.Advertisements {
			if !seen[a] {
				seen[a] = true
				advs = append(advs, a)
			}
		}
	}
	slices.Sort(advs)
	adv := c.ref(KindBGPAdvertisement, advs[0])
	var pools []string
	for _, p := range c.desired.Pools {
		pools = append(pools, p.Name)
	}
	c.add(CheckBGPConfigurationMissing, Error, "spec.serviceLoadBalancerIPs", []ObjectRef{defaultBGPConfig, adv},
		"%s does not exist, so Calico announces none of ipaddresspool %s that %s (and %d more BGPAdvertisement(s)) select: its spec.serviceLoadBalancerIPs is where lbstack writes them; create it with the AS number, node-to-node mesh and listen port your Calico network uses, and lbstack adds its entries (it never creates Calico's configuration itself)",
		defaultBGPConfig, strings.Join(pools, ", "), adv, len(advs)-1)
}

// checkLocalServices: for a Service with externalTrafficPolicy Local,
// Calico announces its address as a host route (/32, /128) from the nodes
// with a ready endpoint only, inside the pool's CIDR that every node
// announces. That works only when the router accepts and prefers host
// routes, and while no endpoint is ready the traffic follows the CIDR to
// nodes that drop it.
func (c *checker) checkLocalServices() {
	cidrPool := map[netip.Prefix]string{}
	for _, p := range c.desired.Pools {
		for _, cidr := range p.CIDRs {
			cidrPool[cidr] = p.Name
		}
	}
	if len(cidrPool) == 0 {
		return
	}
	svcs := slices.Clone(c.in.Services)
	slices.SortFunc(svcs, func(a, b *corev1.Service) int { return strings.Compare(lbservice.Key(a), lbservice.Key(b)) })
	for _, svc := range svcs {
		if svc == nil || svc.Spec.Type != corev1.ServiceTypeLoadBalancer ||
			svc.Spec.ExternalTrafficPolicy != corev1.ServiceExternalTrafficPolicyLocal || !lbservice.ClassMatches(svc, c.in.LBClass) {
			continue
		}
		for _, a := range lbservice.IngressAddrs(svc) {
			cidr, pool := c.announcedCIDR(a, cidrPool)
			if pool == "" {
				continue
			}
			ref := ObjectRef{Kind: KindService, Namespace: svc.Namespace, Name: svc.Name}
			pref := c.ref(KindPool, pool)
			c.add(CheckServiceLocalHostRoutes, Warning, "spec.externalTrafficPolicy", []ObjectRef{ref, pref, defaultBGPConfig},
				"%s spec.externalTrafficPolicy is Local: Calico announces its address %s as the host route %s only from the nodes with a ready endpoint, beside %s of %s that every node announces (spec.serviceLoadBalancerIPs of %s); the routers must accept and prefer host routes (no prefix-length filter), and while the Service has no ready endpoint its traffic follows %s to nodes that drop it; set spec.externalTrafficPolicy to Cluster, or make sure the routers take host routes",
				ref, a, netip.PrefixFrom(a, a.BitLen()), cidr, pref, defaultBGPConfig, cidr)
			break // one finding per Service
		}
	}
}

// announcedCIDR is the announced pool CIDR holding a, and its pool.
func (c *checker) announcedCIDR(a netip.Addr, cidrPool map[netip.Prefix]string) (netip.Prefix, string) {
	for _, cidr := range c.desired.ServiceLoadBalancerIPs {
		if cidr.Contains(a) {
			return cidr, cidrPool[cidr]
		}
	}
	return netip.Prefix{}, ""
}

// calicoASNumber is the AS Calico's nodes present unless a Calico Node
// overrides it.
func (c *checker) calicoASNumber() uint32 {
	if c.in.Current != nil && c.in.Current.ASNumber != nil {
		return uint32(*c.in.Current.ASNumber)
	}
	return DefaultASNumber
}

// checkLoadBalancerIP checks one entry of the current
// spec.serviceLoadBalancerIPs against the pools. Calico announces the whole
// CIDR for Services with externalTrafficPolicy Cluster, so an entry is
// right only when it holds pool addresses that a BGPAdvertisement selects,
// and nothing else.
func (c *checker) checkLoadBalancerIP(i int, cidr string) {
	field := fmt.Sprintf("spec.serviceLoadBalancerIPs[%d].cidr", i)
	objs := []ObjectRef{defaultBGPConfig}
	p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
	if err != nil {
		c.add(CheckLoadBalancerIPInvalid, Error, field, objs,
			"%s %s is %q, not a CIDR: Calico cannot use it; fix or remove the entry", defaultBGPConfig, field, cidr)
		return
	}
	p = p.Masked()
	if slices.Contains(c.desired.ServiceLoadBalancerIPs, p) {
		return
	}
	first, last := p.Addr(), iprange.LastAddr(p)
	var overlaps []netip.Prefix // parts of the entry inside some pool
	var silent []string         // pools no BGPAdvertisement selects that the entry overlaps
	for _, name := range c.in.Config.PoolNames {
		pool := c.in.Config.Pools[name]
		hit := false
		for _, r := range pool.Ranges {
			if r.First.Is4() != first.Is4() || r.Last.Compare(first) < 0 || r.First.Compare(last) > 0 {
				continue
			}
			hit = true
			overlaps = append(overlaps, iprange.Summarize(iprange.MaxAddr(r.First, first), iprange.MinAddr(r.Last, last))...)
		}
		if hit {
			objs = append(objs, c.ref(KindPool, name))
			if len(pool.BGPAdvertisements) == 0 {
				silent = append(silent, c.ref(KindPool, name).String())
			}
		}
	}
	switch {
	case len(overlaps) == 0:
		c.add(CheckLoadBalancerIPNoPool, Warning, field, objs,
			"%s %s is %s, which overlaps no IPAddressPool: Calico announces it, but lbstack assigns no address from it; remove the entry unless another load-balancer implementation assigns those addresses",
			defaultBGPConfig, field, p)
		return
	case !coversExactly(overlaps, first, last):
		c.add(CheckLoadBalancerIPBeyondPools, Warning, field, objs,
			"%s %s is %s, which holds addresses outside every IPAddressPool: Calico announces the whole CIDR for Services with externalTrafficPolicy Cluster, so routers send traffic for those addresses to the cluster; replace the entry with the pools' CIDRs (lbstack writes them)",
			defaultBGPConfig, field, p)
	}
	if len(silent) > 0 {
		c.add(CheckLoadBalancerIPNotAdvertised, Warning, field, objs,
			"%s %s is %s, which overlaps %s that no BGPAdvertisement selects: Calico announces those addresses over BGP anyway; remove the entry, or select the pool with a BGPAdvertisement",
			defaultBGPConfig, field, p, strings.Join(silent, ", "))
	}
}

// coversExactly reports whether the prefixes (pairwise disjoint) together
// hold every address of first..last.
func coversExactly(ps []netip.Prefix, first, last netip.Addr) bool {
	slices.SortFunc(ps, iprange.ComparePrefixes)
	next := first
	for _, p := range ps {
		if p.Addr() != next {
			return false
		}
		end := iprange.LastAddr(p)
		if end == last {
			return true
		}
		next = end.Next()
	}
	return false
}
