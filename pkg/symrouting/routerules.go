package symrouting

import (
	"fmt"
	"net/netip"
	"slices"
)

// Route rules (check 6): on the nodes of a VRF, rules sending the cluster,
// service and OVN masquerade networks to the main table come before the
// VRF's l3mdev rule, or that traffic would follow the VRF.

// checkRules checks that the policies applying to d's nodes keep the
// cluster, service and masquerade networks in the main table.
func (c *checker) checkRules(pv *peerVRF, d *vrfDef, portFam [2]bool) {
	var rules []nmRule
	rules = append(rules, d.pol.state.RouteRules.Config...)
	if len(d.nodes) > 0 {
		for _, q := range c.policies {
			if q == d.pol || !q.ok {
				continue
			}
			all := true
			for _, n := range d.nodes {
				all = all && q.nodes[n]
			}
			if all {
				rules = append(rules, q.state.RouteRules.Config...)
			}
		}
	}
	kept := func(p netip.Prefix) bool {
		for i := range rules {
			if rules[i].keepsInMain(p) {
				return true
			}
		}
		return false
	}
	source := c.in.NetworksSource
	if source == "" {
		source = "the given main-table networks"
	}
	used := portFam
	type need struct {
		p    netip.Prefix
		what string
	}
	var needs []need
	for _, p := range c.in.ClusterNetworks {
		needs = append(needs, need{p.Masked(), "cluster network"})
	}
	for _, p := range c.in.ServiceNetworks {
		needs = append(needs, need{p.Masked(), "service network"})
	}
	for _, n := range needs {
		used[famIdx(n.p)] = true
	}
	for _, n := range needs {
		if kept(n.p) {
			continue
		}
		c.add(CheckMainTableRuleMissing, Error, "spec.desiredState.route-rules.config", []ObjectRef{d.pol.ref, pv.ref},
			"%s has no route rule keeping the %s %s (from %s) in the main table, so on the nodes of VRF %s (%s) that traffic would follow the VRF: add {ip-to: %s, priority: 998, route-table: 254} to spec.desiredState.route-rules.config",
			d.pol.ref, n.what, n.p, source, pv.vrf, pv.ref, n.p)
	}
	if c.in.OVN != nil {
		for fi, inUse := range used {
			if inUse {
				c.checkMasquerade(pv, d, fi, kept)
			}
		}
	}
}

func famIdx(p netip.Prefix) int {
	if p.Addr().Is4() {
		return 0
	}
	return 1
}

// famOf is the family index of an address (0 IPv4, 1 IPv6).
func famOf(a netip.Addr) int {
	if a.Unmap().Is4() {
		return 0
	}
	return 1
}

func (c *checker) checkMasquerade(pv *peerVRF, d *vrfDef, fi int, kept func(netip.Prefix) bool) {
	famName := familyNames[fi]
	explicit := [2]string{c.in.OVN.InternalMasqueradeSubnetV4, c.in.OVN.InternalMasqueradeSubnetV6}[fi]
	missing := func(p netip.Prefix, from ObjectRef, fromText string) {
		c.add(CheckMasqueradeRuleMissing, Error, "spec.desiredState.route-rules.config", []ObjectRef{d.pol.ref, from, pv.ref},
			"%s has no route rule keeping OVN's masquerade subnet %s (%s) in the main table for VRF %s (%s): add {ip-to: %s, priority: 998, route-table: 254} to spec.desiredState.route-rules.config",
			d.pol.ref, p, fromText, pv.vrf, pv.ref, p)
	}
	if explicit != "" {
		p, err := parsePrefix(explicit)
		if err == nil && !kept(p) {
			missing(p, operatorNetwork, fmt.Sprintf("%s spec.defaultNetwork.ovnKubernetesConfig.gatewayConfig.%s.internalMasqueradeSubnet", operatorNetwork, famName))
		}
		return
	}
	// The annotation OVN sets on each node.
	fromNodes := map[netip.Prefix][]string{}
	var order []netip.Prefix
	for _, n := range c.nodes {
		if len(d.nodes) > 0 && !slices.Contains(d.nodes, n.Name) {
			continue
		}
		p, ok := NodeMasqueradeSubnet(n, fi)
		if !ok {
			continue
		}
		if _, ok := fromNodes[p]; !ok {
			order = append(order, p)
		}
		fromNodes[p] = append(fromNodes[p], n.Name)
	}
	if len(order) > 0 {
		for _, p := range order {
			if !kept(p) {
				var refs []ObjectRef
				for _, n := range fromNodes[p] {
					refs = append(refs, ObjectRef{Kind: KindNode, Name: n})
				}
				missing(p, refs[0], fmt.Sprintf("annotation %s of %s", NodeMasqueradeAnnotation, refsString(refs)))
			}
		}
		return
	}
	defaults := MasqueradeDefaults[fi]
	for _, p := range defaults {
		if kept(p) {
			return
		}
	}
	c.add(CheckMasqueradeRuleMissing, Error, "spec.desiredState.route-rules.config", []ObjectRef{d.pol.ref, operatorNetwork, pv.ref},
		"%s keeps neither OVN %s masquerade default in the main table for VRF %s (%s): %s sets no internalMasqueradeSubnet and no node has annotation %s, so the subnet is %s on clusters installed before OpenShift 4.17 or %s on newer ones; add {ip-to: <the one your cluster uses>, priority: 998, route-table: 254} to spec.desiredState.route-rules.config",
		d.pol.ref, famName, pv.vrf, pv.ref, operatorNetwork, NodeMasqueradeAnnotation, defaults[0], defaults[1])
}

// checkNetworksKnown reports, once, that the main-table networks are unknown.
func (c *checker) checkNetworksKnown() {
	if c.in.NetworksSource != "" || len(c.in.ClusterNetworks)+len(c.in.ServiceNetworks) > 0 || !c.in.NMStateInstalled {
		return
	}
	var refs []ObjectRef
	for _, name := range c.cfg.PeerNames {
		if c.cfg.Peers[name].VRF != "" {
			refs = append(refs, c.peerRef(name))
		}
	}
	if len(refs) == 0 {
		return
	}
	c.add(CheckMainTableNetworksUnknown, Unknown, "spec.mainTableNetworks", refs,
		"the cluster and service networks are unknown, so whether route rules keep them out of the VRF of %s cannot be checked: list them in a SymmetricRouting's spec.mainTableNetworks, or run on OpenShift (config.openshift.io/v1 Network \"cluster\")",
		refsString(refs))
}
