package calico

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"

	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/iprange"
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
	// CalicoBGPPeers are the specs of Calico's BGPPeers (read from
	// crd.projectcalico.org/v1 or projectcalico.org/v3: the spec is the
	// same). CalicoBGPPeersListed says they were listed; when false, their
	// absence is not reported.
	CalicoBGPPeers       []v3.BGPPeerSpec
	CalicoBGPPeersListed bool
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
	if adv.LocalPref != 0 {
		c.add(CheckLocalPrefIgnored, Warning, "spec.localPref", []ObjectRef{ref},
			"%s spec.localPref is %d, but Calico sets no LOCAL_PREF on the routes it announces: remove spec.localPref, or set the preference on the router",
			ref, adv.LocalPref)
	}
	if len(adv.Pools) > 0 && c.in.CalicoBGPPeersListed && len(c.in.CalicoBGPPeers) == 0 {
		c.add(CheckCalicoBGPPeerMissing, Error, "spec.ipAddressPools", []ObjectRef{ref},
			"%s announces ipaddresspool %s (spec.ipAddressPools, spec.ipAddressPoolSelectors), but no Calico BGPPeer exists: Calico's nodes peer only with each other, so no router learns these addresses; create a Calico BGPPeer (crd.projectcalico.org/v1) for each router",
			ref, strings.Join(adv.Pools, ", "))
	}
	c.checkAggregation(ref, adv, true)
	c.checkAggregation(ref, adv, false)
	if len(adv.Peers) > 0 {
		c.add(CheckAdvertisementPeers, Warning, "spec.peers", []ObjectRef{ref},
			"%s spec.peers lists %s, but Calico announces to every Calico BGPPeer of its nodes: remove spec.peers, and choose the sessions with Calico BGPPeers (crd.projectcalico.org/v1)",
			ref, strings.Join(adv.Peers, ", "))
	}
	if len(adv.NodeSelectors) > 0 {
		c.add(CheckAdvertisementNodes, Warning, "spec.nodeSelectors", []ObjectRef{ref},
			"%s spec.nodeSelectors is set, but Calico announces from every node that has a BGP session (for externalTrafficPolicy Local, from the nodes with an endpoint): remove spec.nodeSelectors, or limit the sessions with the nodeSelector of the Calico BGPPeers",
			ref)
	}
	if len(adv.ServiceSelectors) > 0 {
		c.add(CheckAdvertisementServiceSel, Warning, "spec.serviceSelectors", []ObjectRef{ref},
			"%s spec.serviceSelectors is set, but Calico announces every LoadBalancer address in its serviceLoadBalancerIPs, whatever the Service: remove spec.serviceSelectors, or move the Services that must not be announced to a pool no BGPAdvertisement selects",
			ref)
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
	c.add(CheckAggregationBeyondPool, Warning, field, []ObjectRef{ref, pool},
		"%s %s is %d, but %s holds %s: Calico announces only the pools' own CIDRs and host routes, never a /%d aggregate covering addresses outside them; set %s to at least %d, or remove it",
		ref, field, length, pool, widest, length, field, widest.Bits())
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
	msg := fmt.Sprintf("%s is ignored (its whole spec): the speakers run no BGP sessions while Calico announces (layer 2 keeps working); Calico's nodes peer instead: %s, then delete %s", ref, calicoPeer, ref)
	if calicoAS := c.calicoASNumber(); p.MyASN != calicoAS {
		msg += fmt.Sprintf("; its spec.myASN is %d but Calico's nodes use AS %d (spec.asNumber of %s): set that asNumber to %d or change the router", p.MyASN, calicoAS, defaultBGPConfig, p.MyASN)
	}
	c.add(CheckBGPPeerIgnored, Warning, "spec", []ObjectRef{ref}, "%s", msg)
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
