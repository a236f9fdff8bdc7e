package symrouting

import (
	"fmt"
	"slices"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/config"
)

// VRF peers: the VRF a BGPPeer's spec.vrf names is defined by NMState
// policies on the peer's nodes (checks 1, 7, 8); checkPeer then checks it on
// the nodes (nodestate.go) and the route rules around it (routerules.go).

// vrfDef is one policy defining a peer's VRF (type vrf, state up).
type vrfDef struct {
	pol   *policy
	idx   int
	iface *nmIface
	// nodes are the peer's nodes the policy applies to, sorted.
	nodes []string
}

func (d *vrfDef) field(sub string) string {
	return fmt.Sprintf("spec.desiredState.interfaces[%d]%s", d.idx, sub)
}

// peerVRF is what the peer checks learnt about a VRF peer; the
// EgressService checks start from it.
type peerVRF struct {
	peer *config.Peer
	ref  ObjectRef
	vrf  string
	// table is the VRF's route-table-id (0: unknown), from policy tablePol.
	table    int64
	tablePol ObjectRef
	// nodes are the nodes some policy defines the VRF on; nil when the
	// nodes or the policies are unknown.
	nodes map[string]bool
}

// peerNodes returns the names of the nodes that establish the peer's
// session (its spec.nodeSelectors, every node when empty), sorted.
func (c *checker) peerNodes(p *config.Peer) []string {
	var out []string
	for _, n := range c.nodes {
		if p.MatchesNode(n.Labels) {
			out = append(out, n.Name)
		}
	}
	return out
}

// describeEndpoint names where the peer is, as its spec says it.
func describeEndpoint(p *config.Peer) string {
	switch {
	case p.Address.IsValid():
		return "spec.peerAddress " + p.Address.String()
	case p.Interface != "":
		return "spec.interface " + p.Interface
	}
	return "no valid spec.peerAddress"
}

func (c *checker) checkPeer(p *config.Peer) {
	ref := c.peerRef(p.Name)
	vrf := p.VRF
	pv := &peerVRF{peer: p, ref: ref, vrf: vrf}
	c.vrfs[p.Name] = pv

	c.checkBackend(pv)
	if !c.in.NMStateInstalled {
		// A VRF may well be configured outside Kubernetes (host
		// provisioning, MachineConfig): without NMState it cannot be
		// checked, which is not an inconsistency.
		c.add(CheckNMStateNotInstalled, Unknown, "spec.vrf", []ObjectRef{ref, {Kind: "crd", Name: "nodenetworkconfigurationpolicies.nmstate.io"}},
			"%s spec.vrf is %q but the NMState CRDs (nodenetworkconfigurationpolicies.nmstate.io) are not installed, so whether the VRF exists on the peer's nodes cannot be checked: make sure it is configured on the hosts, or install the Kubernetes NMState operator and define an interface %s of type vrf in a NodeNetworkConfigurationPolicy",
			ref, vrf, vrf)
		return
	}

	peerNodes := c.peerNodes(p)
	defs := c.vrfDefs(pv, peerNodes)
	if len(c.nodes) > 0 && len(defs) > 0 {
		pv.nodes = map[string]bool{}
		for _, d := range defs {
			for n := range d.pol.nodes {
				pv.nodes[n] = true
			}
		}
	}
	var portFamilies [2]bool // v4, v6
	for _, d := range defs {
		c.checkVRFDef(pv, &d, &portFamilies)
	}
	for _, d := range defs {
		c.checkNodes(pv, &d)
		c.checkRules(pv, &d, portFamilies)
	}
}

// checkBackend reports a backend lbstack does not run: nothing would bind
// the session to the VRF.
func (c *checker) checkBackend(pv *peerVRF) {
	switch c.in.Backend {
	case v1beta1.BGPTypeFRRK8s, v1beta1.BGPTypeFRRK8sExternal:
		mlb := c.in.MetalLB
		if mlb.Kind == "" {
			mlb = ObjectRef{Kind: KindMetalLB}
		}
		c.add(CheckBackendCannotBindVRF, Error, "spec.bgpBackend", []ObjectRef{mlb, pv.ref},
			"%s spec.bgpBackend is %q, which lbstack does not run, so nothing binds %s to VRF %s: set spec.bgpBackend to frr (or native), or configure the VRF session in frr-k8s yourself",
			mlb, c.in.Backend, pv.ref, pv.vrf)
	}
}

// vrfDefs returns the policies defining the peer's VRF on the peer's nodes,
// reporting a VRF that is not a VRF, not up, not defined at all or not on
// every node of the peer.
func (c *checker) vrfDefs(pv *peerVRF, peerNodes []string) []vrfDef {
	ref, vrf := pv.ref, pv.vrf
	filter := len(c.nodes) > 0 && len(peerNodes) > 0
	var defs []vrfDef
	var elsewhere []ObjectRef // policies defining the VRF on other nodes only
	invalid := false
	for _, pol := range c.policies {
		if !pol.ok {
			continue
		}
		i := pol.state.iface(vrf)
		if i < 0 {
			continue
		}
		d := vrfDef{pol: pol, idx: i, iface: &pol.state.Interfaces[i]}
		if d.iface.Type != "vrf" {
			invalid = true
			c.add(CheckVRFInterfaceInvalid, Error, d.field(".type"), []ObjectRef{pol.ref, ref},
				"%s defines interface %s with type %q, but %s spec.vrf needs a VRF device: set its type to vrf (with vrf.port and vrf.route-table-id), or point spec.vrf at the VRF",
				pol.ref, vrf, d.iface.Type, ref)
			continue
		}
		if !d.iface.up() {
			invalid = true
			c.add(CheckVRFInterfaceInvalid, Error, d.field(".state"), []ObjectRef{pol.ref, ref},
				"%s sets VRF %s to state %q, but %s spec.vrf uses it: set its state to up",
				pol.ref, vrf, d.iface.State, ref)
			continue
		}
		for _, n := range peerNodes {
			if pol.nodes[n] {
				d.nodes = append(d.nodes, n)
			}
		}
		if filter && len(d.nodes) == 0 {
			elsewhere = append(elsewhere, pol.ref)
			continue
		}
		defs = append(defs, d)
	}

	switch {
	case len(defs) == 0 && len(elsewhere) == 0 && !invalid:
		objs := []ObjectRef{ref}
		var known []string
		for _, pol := range c.policies {
			for _, ifc := range pol.state.Interfaces {
				if ifc.Type == "vrf" && ifc.State != "absent" {
					known = append(known, fmt.Sprintf("%s (%s)", ifc.Name, pol.ref))
					objs = append(objs, pol.ref)
				}
			}
		}
		hint := "no policy defines any VRF"
		if len(known) > 0 {
			hint = "defined VRFs: " + joinNames(known)
		}
		c.add(CheckVRFNotDefined, Error, "spec.vrf", slices.Compact(objs),
			"%s spec.vrf is %q but no nodenetworkconfigurationpolicy defines an interface %s of type vrf (%s): set spec.vrf to an existing VRF, or add the VRF to a policy selecting the peer's nodes",
			ref, vrf, vrf, hint)
	case filter && len(defs)+len(elsewhere) > 0:
		// (A VRF defined only as something else is VRFInterfaceInvalid.)
		covered := map[string]bool{}
		for _, d := range defs {
			for _, n := range d.nodes {
				covered[n] = true
			}
		}
		var missing []string
		for _, n := range peerNodes {
			if !covered[n] {
				missing = append(missing, n)
			}
		}
		if len(missing) > 0 {
			objs := []ObjectRef{ref}
			for _, d := range defs {
				objs = append(objs, d.pol.ref)
			}
			objs = append(objs, elsewhere...)
			c.add(CheckVRFNotOnPeerNodes, Error, "spec.nodeSelectors", objs,
				"%s spec.vrf is %q but %s, which define(s) that VRF, do(es) not select node(s) %s where the peer's spec.nodeSelectors put the session: restrict the peer's spec.nodeSelectors to the VRF's nodes, or widen the policy's spec.nodeSelector (and label the nodes)",
				ref, vrf, refsString(objs[1:]), joinNames(missing))
		}
	}
	return defs
}

// checkVRFDef checks the route-table-id and ports of one policy's VRF and
// records the address families its ports have in fam.
func (c *checker) checkVRFDef(pv *peerVRF, d *vrfDef, fam *[2]bool) {
	t := d.iface.table()
	switch {
	case t <= 0:
		c.add(CheckVRFRouteTableMissing, Error, d.field(".vrf.route-table-id"), []ObjectRef{d.pol.ref, pv.ref},
			"%s defines VRF %s, used by %s, without a vrf.route-table-id > 0: set one (a free table below 1000, not 253-255) and use it as the EgressService spec.network",
			d.pol.ref, pv.vrf, pv.ref)
	case t >= 253 && t <= 255:
		c.add(CheckVRFRouteTableReserved, Error, d.field(".vrf.route-table-id"), []ObjectRef{d.pol.ref, pv.ref},
			"%s gives VRF %s, used by %s, route-table-id %d, one of the default/main/local tables (253-255): pick a free table below 1000",
			d.pol.ref, pv.vrf, pv.ref, t)
	case pv.table == 0:
		pv.table, pv.tablePol = t, d.pol.ref
	case pv.table != t:
		c.add(CheckVRFRouteTableConflict, Error, d.field(".vrf.route-table-id"), []ObjectRef{d.pol.ref, pv.tablePol, pv.ref},
			"%s gives VRF %s route-table-id %d but %s gives it %d, and %s uses it on the nodes of both: use the same route-table-id in both policies",
			d.pol.ref, pv.vrf, t, pv.tablePol, pv.table, pv.ref)
	}
	var ports []string
	if d.iface.VRF != nil {
		ports = d.iface.VRF.Port
	}
	addressed := false
	for _, port := range ports {
		j := d.pol.state.iface(port)
		if j < 0 {
			continue
		}
		for _, a := range d.pol.state.Interfaces[j].addrs() {
			addressed = true
			fam[famOf(a)] = true
		}
	}
	if !addressed {
		what := "has no vrf.port"
		if len(ports) > 0 {
			what = fmt.Sprintf("has port(s) %s but gives none of them an enabled static ipv4/ipv6 address", joinNames(ports))
		}
		c.add(CheckVRFPortNoAddress, Error, d.field(".vrf.port"), []ObjectRef{d.pol.ref, pv.ref},
			"VRF %s in %s %s, so %s (%s) cannot be reached through it: enslave the interface facing the peer (vrf.port) and give it a static address in the same desiredState",
			pv.vrf, d.pol.ref, what, pv.ref, describeEndpoint(pv.peer))
	}
}
