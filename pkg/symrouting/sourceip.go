package symrouting

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/lbservice"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
)

// sourceIPBy (check 5). With LoadBalancerIP (the default) the Service's
// address is the source of its egress traffic, so it must be announced
// only from the egress node, only to the VRF's peers, from a pool no other
// Service uses. With Network, OVN must route through the host.

func (c *checker) checkSourceIP(es *ovnv1.EgressService, svc *corev1.Service, intent serviceIntent, pool *config.Pool, ads []*config.BGPAdvertisement, chosen *peerVRF, ingress []netip.Addr) {
	ref := esRef(es)
	switch es.Spec.SourceIPBy {
	case ovnv1.SourceIPNetwork:
		switch {
		case c.in.OVN == nil:
			c.add(CheckOVNConfigUnknown, Unknown, "spec.sourceIPBy", []ObjectRef{ref, operatorNetwork},
				"%s spec.sourceIPBy is Network, which needs OVN's routingViaHost, but there is no %s to check it in: make sure spec.defaultNetwork.ovnKubernetesConfig.gatewayConfig.routingViaHost is true",
				ref, operatorNetwork)
		case !c.in.OVN.RoutingViaHost:
			c.add(CheckRoutingViaHostDisabled, Error, "spec.defaultNetwork.ovnKubernetesConfig.gatewayConfig.routingViaHost", []ObjectRef{operatorNetwork, ref},
				"%s spec.defaultNetwork.ovnKubernetesConfig.gatewayConfig.routingViaHost is false but %s spec.sourceIPBy is Network, which needs traffic routed through the host: set routingViaHost to true, or use sourceIPBy LoadBalancerIP",
				operatorNetwork, ref)
		}
	default: // LoadBalancerIP, the default
		label := ovnv1.NodeLabel(es.Namespace, es.Name)
		for _, a := range ads {
			c.checkAdNodeSelector(es, a, label, svcRef(svc))
			if chosen != nil {
				c.checkAdPeers(es, a, chosen, c.poolRef(pool.Name))
			}
		}
		c.checkPoolDedicated(es, svc, intent, pool, ingress)
	}
}

// requiresLabel reports whether sel only selects nodes carrying label
// with the empty value OVN sets. A selector that selects nothing (an
// invalid one, see config.Resolve) selects no other node either.
func requiresLabel(sel labels.Selector, label string) bool {
	reqs, selectable := sel.Requirements()
	if !selectable {
		return true
	}
	found := false
	for _, r := range reqs {
		if r.Key() != label {
			continue
		}
		switch r.Operator() {
		case selection.Exists:
			found = true
		case selection.Equals, selection.DoubleEquals, selection.In:
			if !r.Values().Has("") {
				// It wants a value OVN never sets.
				return false
			}
			found = true
		}
	}
	return found
}

// describeSelectors prints node selectors for a message.
func describeSelectors(sels []labels.Selector) string {
	if len(sels) == 0 {
		return "every node"
	}
	s := make([]string, 0, len(sels))
	for _, sel := range sels {
		if _, selectable := sel.Requirements(); !selectable {
			s = append(s, "{invalid}")
			continue
		}
		s = append(s, "{"+sel.String()+"}")
	}
	return strings.Join(s, " or ")
}

func (c *checker) checkAdNodeSelector(es *ovnv1.EgressService, a *config.BGPAdvertisement, label string, sref ObjectRef) {
	ok := len(a.NodeSelectors) > 0
	for _, sel := range a.NodeSelectors {
		ok = ok && requiresLabel(sel, label)
	}
	if ok {
		return
	}
	ar := c.adRef(a.Name)
	c.add(CheckAdvertisementNodeSelector, Error, "spec.nodeSelectors", []ObjectRef{ar, esRef(es)},
		"%s spec.nodeSelectors selects %s, not only the node OVN labels %s for %s, so %s is announced from nodes its egress traffic does not leave from: set spec.nodeSelectors to [{matchLabels: {%s: \"\"}}]",
		ar, describeSelectors(a.NodeSelectors), label, esRef(es), sref, label)
}

func (c *checker) checkAdPeers(es *ovnv1.EgressService, a *config.BGPAdvertisement, chosen *peerVRF, pref ObjectRef) {
	ar := c.adRef(a.Name)
	var vrfNames []string
	for _, name := range c.cfg.PeerNames {
		if c.cfg.Peers[name].VRF == chosen.vrf {
			vrfNames = append(vrfNames, name)
		}
	}
	if len(a.Peers) == 0 {
		objs := []ObjectRef{ar, esRef(es)}
		var others []string
		for _, p := range c.peersOf(a) {
			if p.VRF != chosen.vrf {
				objs = append(objs, c.peerRef(p.Name))
				others = append(others, c.peerRef(p.Name).String())
			}
		}
		if len(others) > 0 {
			c.add(CheckAdvertisementNonVRFPeer, Error, "spec.peers", objs,
				"%s spec.peers is empty, so it announces %s of %s to every peer, including %s outside VRF %s, and replies may arrive where egress traffic does not leave: set spec.peers to [%s]",
				ar, pref, esRef(es), strings.Join(others, ", "), chosen.vrf, joinNames(vrfNames))
		}
		return
	}
	var written []string
	if obj := c.adObjs[a.Name]; obj != nil {
		written = obj.Spec.Peers
	}
	for _, p := range c.peersOf(a) {
		if p.VRF == chosen.vrf {
			continue
		}
		in := "outside any VRF"
		if p.VRF != "" {
			in = "in VRF " + p.VRF
		}
		pr := c.peerRef(p.Name)
		c.add(CheckAdvertisementNonVRFPeer, Error, fmt.Sprintf("spec.peers[%d]", slices.Index(written, p.Name)), []ObjectRef{ar, pr, esRef(es)},
			"%s spec.peers[%d] is %s, %s, but %s sends its traffic through VRF %s: announce %s only to peers in VRF %s (%s)",
			ar, slices.Index(written, p.Name), pr, in, esRef(es), chosen.vrf, pref, chosen.vrf, joinNames(vrfNames))
	}
}

func (c *checker) checkPoolDedicated(es *ovnv1.EgressService, svc *corev1.Service, intent serviceIntent, pool *config.Pool, ingress []netip.Addr) {
	ref, sref, pref := esRef(es), svcRef(svc), c.poolRef(pool.Name)
	asks := intent.pool == pool.Name
	for _, a := range intent.requested {
		asks = asks || pool.Contains(a)
	}
	switch {
	case !asks && pool.AutoAssign:
		c.add(CheckPoolNotRequested, Warning, "metadata.annotations", []ObjectRef{sref, pref, ref},
			"%s got its address from %s without asking for it, and the pool auto-assigns, so the address %s depends on may change and other services may share the pool: annotate the service with %s: %s and set the pool's spec.autoAssign to false",
			sref, pref, ref, lbservice.AnnotationAddressPool, pool.Name)
	case pool.AutoAssign:
		c.add(CheckPoolAutoAssign, Warning, "spec.autoAssign", []ObjectRef{pref, ref},
			"%s spec.autoAssign is true (the default), so another service may get an address there and be announced only from the egress node of %s, to its VRF peers: set spec.autoAssign to false",
			pref, ref)
	}
	for _, other := range c.services {
		if other == svc || other.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		for _, a := range lbservice.IngressAddrs(other) {
			if pool.Contains(a) && !slices.Contains(ingress, a) {
				oref := svcRef(other)
				c.add(CheckPoolShared, Error, "status.loadBalancer.ingress", []ObjectRef{pref, oref, ref},
					"%s holds %s from %s, the pool of %s, so it is announced only from that service's egress node and only to its VRF peers: give %s an address from another pool (annotation %s)",
					oref, a, pref, ref, oref, lbservice.AnnotationAddressPool)
				break
			}
		}
	}
}
