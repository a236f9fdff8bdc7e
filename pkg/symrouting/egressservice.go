package symrouting

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/lbservice"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
)

// EgressServices (checks 3, 4): an EgressService applies to a LoadBalancer
// Service of its name, whose pool's advertisements reach a VRF peer; its
// spec.network is that VRF's route table and its nodes have the VRF. The
// sourceIPBy checks (check 5) are in sourceip.go.

// maxLabelName is the longest name part of a label key.
const maxLabelName = 63

func (c *checker) checkEgressService(es *ovnv1.EgressService) {
	ref := esRef(es)
	label := ovnv1.NodeLabel(es.Namespace, es.Name)
	if n := len(es.Namespace) + 1 + len(es.Name); n > maxLabelName {
		c.add(CheckEgressServiceNameTooLong, Error, "metadata.name", []ObjectRef{ref, {Kind: KindService, Namespace: es.Namespace, Name: es.Name}},
			"%s: %q is %d characters, longer than the 63 a label name allows, so OVN cannot label the egress node %s: shorten the namespace or the name of the service and its egressservice",
			ref, es.Namespace+"-"+es.Name, n, label)
	}
	svc := c.service(es)
	if svc == nil {
		return
	}
	intent := c.readAnnotations(svc, ref)
	ingress := lbservice.IngressAddrs(svc)
	if len(ingress) == 0 {
		c.add(CheckEgressServiceNoIngress, Error, "status.loadBalancer.ingress", []ObjectRef{svcRef(svc), ref},
			"%s has no load-balancer ingress address, so %s has no source address to use: check the service's events for why MetalLB did not assign one",
			svcRef(svc), ref)
	}
	pool := c.servicePool(es, svc, intent, ingress)
	if pool == nil {
		c.checkNetwork(es, nil, nil)
		return
	}

	// The VRF peers its addresses are announced to.
	ads := c.adsFor(pool, svc)
	chosen, chosenAd := c.chooseVRFPeer(es, ads)
	c.checkNetwork(es, chosen, chosenAd)
	if chosen != nil && chosen.nodes != nil {
		c.checkEgressNodes(es, chosen)
	}
	if es.Spec.Network != "" && chosen == nil {
		c.add(CheckEgressNoVRFPeer, Warning, "spec.network", []ObjectRef{ref, c.poolRef(pool.Name)},
			"%s spec.network is %q but no bgpadvertisement announces %s (the pool of %s) to a bgppeer with spec.vrf, so replies do not come back through that table: advertise the pool to the VRF peer only, or clear spec.network",
			ref, es.Spec.Network, c.poolRef(pool.Name), svcRef(svc))
	}
	c.checkSourceIP(es, svc, intent, pool, ads, chosen, ingress)
}

// service returns the LoadBalancer Service the EgressService applies to,
// or nil after reporting why there is none.
func (c *checker) service(es *ovnv1.EgressService) *corev1.Service {
	ref := esRef(es)
	var svc *corev1.Service
	for _, s := range c.services {
		if s.Namespace == es.Namespace && s.Name == es.Name {
			svc = s
			break
		}
	}
	if svc == nil {
		wanted := ObjectRef{Kind: KindService, Namespace: es.Namespace, Name: es.Name}
		var hints []string
		for _, s := range c.services {
			if s.Namespace == es.Namespace && s.Spec.Type == corev1.ServiceTypeLoadBalancer && !c.hasEgressService(s) {
				hints = append(hints, s.Name)
			}
		}
		hint := ""
		if len(hints) > 0 {
			hint = fmt.Sprintf(" (LoadBalancer services of namespace %s without an egressservice: %s)", es.Namespace, joinNames(hints))
		}
		c.add(CheckEgressServiceNoService, Error, "metadata.name", []ObjectRef{ref, wanted},
			"%s has no %s: an egressservice applies to the LoadBalancer service of the same namespace and name; rename the egressservice to the service's name%s",
			ref, wanted, hint)
		c.checkNetwork(es, nil, nil)
		return nil
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		sref := svcRef(svc)
		c.add(CheckEgressServiceNotLoadBalancer, Error, "spec.type", []ObjectRef{sref, ref},
			"%s spec.type is %q but %s only applies to LoadBalancer services: set spec.type to LoadBalancer",
			sref, svc.Spec.Type, ref)
		c.checkNetwork(es, nil, nil)
		return nil
	}
	return svc
}

func (c *checker) hasEgressService(s *corev1.Service) bool {
	for i := range c.in.EgressServices {
		if c.in.EgressServices[i].Namespace == s.Namespace && c.in.EgressServices[i].Name == s.Name {
			return true
		}
	}
	return false
}

// serviceIntent is what a Service asks MetalLB for in its annotations.
type serviceIntent struct {
	// pool is the pool the address-pool annotation names, and poolFrom
	// the annotation it came from; "" when unset (or conflicting).
	pool, poolFrom string
	// requested are the addresses spec.loadBalancerIP and the
	// loadBalancerIPs annotation ask for.
	requested []netip.Addr
}

// readAnnotations reads the Service's MetalLB annotations like the address
// assigner does (pkg/lbservice). Two spellings of a setting that disagree
// are reported, and the setting is taken as unset: the assigner refuses
// the Service, which keeps the address it holds, if any, so the checks
// follow that address.
func (c *checker) readAnnotations(svc *corev1.Service, esref ObjectRef) serviceIntent {
	var in serviceIntent
	conflict := func(err error, consequence string) bool {
		var ce *lbservice.AnnotationConflictError
		if !errors.As(err, &ce) {
			return false
		}
		sref := svcRef(svc)
		c.add(CheckServiceAnnotationConflict, Error, "metadata.annotations", []ObjectRef{sref, esref},
			"%s: %v: MetalLB refuses the service while they do; %s is checked as if the service %s", sref, err, esref, consequence)
		return true
	}
	pool, from, err := lbservice.Annotation(svc.Annotations, lbservice.AnnotationAddressPool, lbservice.AnnotationAddressPoolLegacy)
	if !conflict(err, "asked for no pool (its pool is the one holding its address)") {
		in.pool, in.poolFrom = pool, from
	}
	raw := []string{svc.Spec.LoadBalancerIP}
	ips, _, err := lbservice.Annotation(svc.Annotations, lbservice.AnnotationLoadBalancerIPs, lbservice.AnnotationLoadBalancerIPsLegacy)
	if !conflict(err, "asked for no address") {
		raw = append(raw, strings.Split(ips, ",")...)
	}
	for _, r := range raw {
		if a, err := netip.ParseAddr(strings.TrimSpace(r)); err == nil {
			in.requested = append(in.requested, a.Unmap())
		}
	}
	return in
}

// servicePool returns the pool of the Service's addresses: the one its
// address-pool annotation names, else the one holding its first ingress
// address; nil after reporting why there is none.
func (c *checker) servicePool(es *ovnv1.EgressService, svc *corev1.Service, intent serviceIntent, ingress []netip.Addr) *config.Pool {
	ref, sref := esRef(es), svcRef(svc)
	if intent.pool != "" {
		pool := c.cfg.Pools[intent.pool]
		if pool == nil {
			c.add(CheckEgressServicePoolNotFound, Error, "metadata.annotations", []ObjectRef{sref, {Kind: KindPool, Name: intent.pool}, ref},
				"%s asks for ipaddresspool %q (annotation %s), which does not exist, so the path of %s cannot be traced: create the pool or fix the annotation",
				sref, intent.pool, intent.poolFrom, ref)
		}
		return pool
	}
	if len(ingress) == 0 {
		return nil
	}
	pool := c.cfg.PoolFor(ingress[0])
	if pool == nil {
		c.add(CheckEgressServicePoolNotFound, Unknown, "status.loadBalancer.ingress", []ObjectRef{sref, ref},
			"%s has address %s, which is in no ipaddresspool, so the advertisements and peers of %s cannot be traced: give the service an address from a dedicated pool (annotation %s)",
			sref, ingress[0], ref, lbservice.AnnotationAddressPool)
	}
	return pool
}

// adsFor returns the BGPAdvertisements announcing svc's addresses from
// pool, sorted by name.
func (c *checker) adsFor(pool *config.Pool, svc *corev1.Service) []*config.BGPAdvertisement {
	var out []*config.BGPAdvertisement
	for _, a := range pool.BGPAdvertisements {
		if a.MatchesService(svc.Labels) {
			out = append(out, a)
		}
	}
	return out
}

// peersOf returns the existing peers an advertisement announces to, sorted
// by name.
func (c *checker) peersOf(a *config.BGPAdvertisement) []*config.Peer {
	var out []*config.Peer
	for _, name := range c.cfg.PeerNames {
		if a.ReachesPeer(name) {
			out = append(out, c.cfg.Peers[name])
		}
	}
	return out
}

// chooseVRFPeer returns the VRF peer the Service's traffic is announced to,
// and the advertisement doing it: the one whose VRF's table is the
// EgressService's spec.network, else the first; nil when no advertisement
// reaches a VRF peer.
func (c *checker) chooseVRFPeer(es *ovnv1.EgressService, ads []*config.BGPAdvertisement) (*peerVRF, *config.BGPAdvertisement) {
	var vrfPeers []*peerVRF
	var via []*config.BGPAdvertisement
	for _, a := range ads {
		for _, p := range c.peersOf(a) {
			if pv := c.vrfs[p.Name]; pv != nil && !slices.Contains(vrfPeers, pv) {
				vrfPeers = append(vrfPeers, pv)
				via = append(via, a)
			}
		}
	}
	if len(vrfPeers) == 0 {
		return nil, nil
	}
	if n, err := strconv.ParseInt(es.Spec.Network, 10, 64); err == nil {
		for i, pv := range vrfPeers {
			if pv.table == n {
				return pv, via[i]
			}
		}
	}
	return vrfPeers[0], via[0]
}

// checkEgressNodes checks that OVN can only pick an egress node where the
// VRF exists.
func (c *checker) checkEgressNodes(es *ovnv1.EgressService, pv *peerVRF) {
	sel, err := metav1.LabelSelectorAsSelector(&es.Spec.NodeSelector)
	if err != nil {
		return
	}
	var without []string
	for _, n := range c.nodes {
		if sel.Matches(labels.Set(n.Labels)) && !pv.nodes[n.Name] {
			without = append(without, n.Name)
		}
	}
	if len(without) == 0 {
		return
	}
	c.add(CheckEgressNodesWithoutVRF, Error, "spec.nodeSelector", []ObjectRef{esRef(es), pv.ref},
		"%s spec.nodeSelector (%s) lets OVN pick node(s) %s as egress node, where no nodenetworkconfigurationpolicy defines VRF %s that %s uses: restrict spec.nodeSelector to the VRF's nodes (e.g. the labels of the policy's spec.nodeSelector)",
		esRef(es), describeSelectors([]labels.Selector{sel}), joinNames(without), pv.vrf, pv.ref)
}

// checkNetwork checks spec.network against the VRF the Service is
// announced through (chosen, via advertisement ad; nil when unknown).
func (c *checker) checkNetwork(es *ovnv1.EgressService, chosen *peerVRF, ad *config.BGPAdvertisement) {
	ref := esRef(es)
	nw := es.Spec.Network
	objs := []ObjectRef{ref}
	vrfText := ""
	want := ""
	if chosen != nil {
		objs = append(objs, chosen.ref)
		vrfText = fmt.Sprintf("VRF %s that %s uses", chosen.vrf, chosen.ref)
		if chosen.table > 0 {
			objs = append(objs, chosen.tablePol)
			want = strconv.FormatInt(chosen.table, 10)
		}
	}
	if nw == "" {
		if chosen == nil {
			return
		}
		fix := "set spec.network to the VRF's route-table-id"
		if want != "" {
			fix = fmt.Sprintf("set spec.network to %q (route-table-id of %s in %s)", want, chosen.vrf, chosen.tablePol)
		}
		c.add(CheckEgressNetworkEmpty, Error, "spec.network", objs,
			"%s spec.network is empty, so its traffic leaves through the main table, but %s announces its service to %s in VRF %s: %s",
			ref, c.adRef(ad.Name), chosen.ref, chosen.vrf, fix)
		return
	}
	n, err := strconv.ParseInt(nw, 10, 64)
	bad := ""
	switch {
	case err != nil:
		bad = "not a routing table number"
	case n <= 0:
		bad = "not a valid routing table"
	case n >= 253 && n <= 255:
		bad = "one of the default/main/local tables (253-255)"
	case n >= 1000:
		bad = "1000 or more, tables OpenShift reserves for itself"
	}
	if bad != "" {
		fix := "use a numeric table below 1000, not 253-255, as the VRF's route-table-id and as spec.network"
		switch {
		case chosen != nil && want != "" && err != nil:
			fix = fmt.Sprintf("set spec.network to %q, the route-table-id of the %s in %s", want, vrfText, chosen.tablePol)
		case chosen != nil && want != "":
			fix = fmt.Sprintf("pick a free table below 1000 (not 253-255) for the %s (vrf.route-table-id in %s) and set spec.network to the same number", vrfText, chosen.tablePol)
		}
		c.add(CheckEgressNetworkInvalid, Error, "spec.network", objs,
			"%s spec.network is %q, %s: %s", ref, nw, bad, fix)
		return
	}
	if want != "" && n != chosen.table {
		c.add(CheckEgressNetworkMismatch, Error, "spec.network", objs,
			"%s spec.network is %q but the %s has route-table-id %d in %s: set spec.network to %q",
			ref, nw, vrfText, chosen.table, chosen.tablePol, want)
	}
}
