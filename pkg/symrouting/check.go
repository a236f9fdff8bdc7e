package symrouting

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/config"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
)

// Service annotations MetalLB reads (as in pkg/controller).
const (
	annotationAddressPool           = "metallb.io/address-pool"
	annotationAddressPoolLegacy     = "metallb.universe.tf/address-pool"
	annotationLoadBalancerIPs       = "metallb.io/loadBalancerIPs"
	annotationLoadBalancerIPsLegacy = "metallb.universe.tf/loadBalancerIPs"
)

// maxLabelName is the longest name part of a label key.
const maxLabelName = 63

// operatorNetwork is operator.openshift.io/v1 Network "cluster".
var operatorNetwork = ObjectRef{Kind: KindOperatorNetwork, Name: "cluster"}

// Check cross-checks the objects of in and returns the inconsistencies in
// a deterministic order: errors first, then warnings, then what could not
// be checked. An empty result means consistent.
func Check(in Inputs) []Finding {
	c := newChecker(in)
	for _, p := range c.peers {
		if p.Spec.VRFName != "" {
			c.checkPeer(p)
		}
	}
	c.checkNetworksKnown()
	for _, es := range sortedPtrs(in.EgressServices, func(e *ovnv1.EgressService) string { return e.Namespace + "/" + e.Name }) {
		c.checkEgressService(es)
	}
	return c.result()
}

type policy struct {
	obj   *nmstatev1.NodeNetworkConfigurationPolicy
	ref   ObjectRef
	state nmState
	ok    bool
	nodes map[string]bool
}

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

// peerVRF is what the peer checks learnt about a VRF peer.
type peerVRF struct {
	peer *v1beta2.BGPPeer
	ref  ObjectRef
	vrf  string
	// table is the VRF's route-table-id (0: unknown), from policy tablePol.
	table    int64
	tablePol ObjectRef
	// nodes are the nodes some policy defines the VRF on; nil when the
	// nodes or the policies are unknown.
	nodes map[string]bool
}

type checker struct {
	in          Inputs
	out         []Finding
	nodes       []*corev1.Node
	policies    []*policy
	states      map[string]*nmstatev1beta1.NodeNetworkState
	enactments  map[string]*nmstatev1beta1.NodeNetworkConfigurationEnactment
	peers       []*v1beta2.BGPPeer
	ads         []*v1beta1.BGPAdvertisement
	pools       []*v1beta1.IPAddressPool
	services    []*corev1.Service
	vrfs        map[string]*peerVRF
	done        map[string]bool
	parsedState map[string]*nmState
}

func sortedPtrs[T any](items []T, key func(*T) string) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	slices.SortStableFunc(out, func(a, b *T) int { return cmp.Compare(key(a), key(b)) })
	return out
}

func nsName(m metav1.Object) string { return m.GetNamespace() + "/" + m.GetName() }

func newChecker(in Inputs) *checker {
	c := &checker{
		in:          in,
		states:      map[string]*nmstatev1beta1.NodeNetworkState{},
		enactments:  map[string]*nmstatev1beta1.NodeNetworkConfigurationEnactment{},
		vrfs:        map[string]*peerVRF{},
		done:        map[string]bool{},
		parsedState: map[string]*nmState{},
	}
	c.nodes = sortedPtrs(in.Nodes, func(n *corev1.Node) string { return n.Name })
	for i := range in.States {
		c.states[in.States[i].Name] = &in.States[i]
	}
	for i := range in.Enactments {
		c.enactments[in.Enactments[i].Name] = &in.Enactments[i]
	}
	c.peers = sortedPtrs(in.Peers, func(p *v1beta2.BGPPeer) string { return nsName(p) })
	c.ads = sortedPtrs(in.Advertisements, func(a *v1beta1.BGPAdvertisement) string { return nsName(a) })
	c.pools = sortedPtrs(in.Pools, func(p *v1beta1.IPAddressPool) string { return nsName(p) })
	c.services = sortedPtrs(in.Services, func(s *corev1.Service) string { return nsName(s) })
	for _, obj := range sortedPtrs(in.Policies, func(p *nmstatev1.NodeNetworkConfigurationPolicy) string { return p.Name }) {
		p := &policy{obj: obj, ref: ObjectRef{Kind: KindPolicy, Name: obj.Name}, nodes: map[string]bool{}}
		st, err := parseState(obj.Spec.DesiredState.Raw)
		if err != nil {
			c.add(CheckPolicyUnparsable, Error, "spec.desiredState", []ObjectRef{p.ref},
				"%s spec.desiredState cannot be parsed as nmstate YAML (%v), so the VRFs it defines cannot be checked: fix the policy", p.ref, err)
		} else {
			p.state, p.ok = st, true
		}
		sel := labels.SelectorFromSet(obj.Spec.NodeSelector)
		for _, n := range c.nodes {
			if sel.Matches(labels.Set(n.Labels)) {
				p.nodes[n.Name] = true
			}
		}
		c.policies = append(c.policies, p)
	}
	return c
}

func (c *checker) add(check string, sev Severity, field string, objs []ObjectRef, format string, args ...any) {
	c.out = append(c.out, Finding{Check: check, Severity: sev, Objects: objs, Field: field, Message: fmt.Sprintf(format, args...)})
}

func (c *checker) once(key string) bool {
	if c.done[key] {
		return false
	}
	c.done[key] = true
	return true
}

var severityRank = map[Severity]int{Error: 0, Warning: 1, Unknown: 2}

func (c *checker) result() []Finding {
	out := c.out
	slices.SortStableFunc(out, func(a, b Finding) int {
		return cmp.Or(
			cmp.Compare(severityRank[a.Severity], severityRank[b.Severity]),
			cmp.Compare(a.Objects[0].String(), b.Objects[0].String()),
			cmp.Compare(a.Check, b.Check),
			cmp.Compare(a.Field, b.Field),
			cmp.Compare(a.Message, b.Message),
		)
	})
	return slices.CompactFunc(out, func(a, b Finding) bool {
		return a.Check == b.Check && a.Field == b.Field && a.Message == b.Message
	})
}

func peerRef(p *v1beta2.BGPPeer) ObjectRef {
	return ObjectRef{Kind: KindBGPPeer, Namespace: p.Namespace, Name: p.Name}
}

func nodeNames(nodes []*corev1.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
	}
	return out
}

// peerNodes returns the names of the nodes the peer's spec.nodeSelectors
// select (every node when empty), sorted.
func (c *checker) peerNodes(p *v1beta2.BGPPeer) []string {
	if len(p.Spec.NodeSelectors) == 0 {
		return nodeNames(c.nodes)
	}
	var sels []labels.Selector
	for i := range p.Spec.NodeSelectors {
		if s, err := metav1.LabelSelectorAsSelector(&p.Spec.NodeSelectors[i]); err == nil {
			sels = append(sels, s)
		}
	}
	var out []string
	for _, n := range c.nodes {
		for _, s := range sels {
			if s.Matches(labels.Set(n.Labels)) {
				out = append(out, n.Name)
				break
			}
		}
	}
	return out
}

func joinNames(names []string) string { return strings.Join(names, ", ") }

func refsString(refs []ObjectRef) string {
	s := make([]string, len(refs))
	for i, r := range refs {
		s[i] = r.String()
	}
	return strings.Join(s, ", ")
}

// ---- VRF peers (checks 1, 2, 6, 7, 8) ----

func (c *checker) checkPeer(p *v1beta2.BGPPeer) {
	ref := peerRef(p)
	vrf := p.Spec.VRFName
	pv := &peerVRF{peer: p, ref: ref, vrf: vrf}
	c.vrfs[nsName(p)] = pv

	switch c.in.Backend {
	case v1beta1.BGPTypeFRRK8s, v1beta1.BGPTypeFRRK8sExternal:
		mlb := c.in.MetalLB
		if mlb.Kind == "" {
			mlb = ObjectRef{Kind: KindMetalLB}
		}
		c.add(CheckBackendCannotBindVRF, Error, "spec.bgpBackend", []ObjectRef{mlb, ref},
			"%s spec.bgpBackend is %q, which lbstack does not run, so nothing binds %s to VRF %s: set spec.bgpBackend to frr (or native), or configure the VRF session in frr-k8s yourself",
			mlb, c.in.Backend, ref, vrf)
	}

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
	case filter:
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

// checkVRFDef checks the route-table-id and ports of one policy's VRF.
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
			if a.Is4() {
				fam[0] = true
			} else {
				fam[1] = true
			}
		}
	}
	if !addressed {
		what := "has no vrf.port"
		if len(ports) > 0 {
			what = fmt.Sprintf("has port(s) %s but gives none of them an enabled static ipv4/ipv6 address", joinNames(ports))
		}
		c.add(CheckVRFPortNoAddress, Error, d.field(".vrf.port"), []ObjectRef{d.pol.ref, pv.ref},
			"VRF %s in %s %s, so %s (spec.peerAddress %s) cannot be reached through it: enslave the interface facing the peer (vrf.port) and give it a static address in the same desiredState",
			pv.vrf, d.pol.ref, what, pv.ref, pv.peer.Spec.Address)
	}
}

// checkNodes checks the VRF on each node: NodeNetworkState and enactment.
func (c *checker) checkNodes(pv *peerVRF, d *vrfDef) {
	want := d.iface.table()
	for _, n := range d.nodes {
		nodeRef := ObjectRef{Kind: KindNode, Name: n}
		if c.once("nns\x00" + n + "\x00" + pv.vrf) {
			c.checkNodeState(pv, d, nodeRef, want)
		}
		if c.once("nnce\x00" + n + "\x00" + d.pol.obj.Name) {
			c.checkEnactment(d.pol, n)
		}
	}
}

func (c *checker) checkNodeState(pv *peerVRF, d *vrfDef, nodeRef ObjectRef, want int64) {
	n := nodeRef.Name
	nns := c.states[n]
	if nns == nil {
		c.add(CheckNodeStateMissing, Unknown, "status.currentState", []ObjectRef{nodeRef, d.pol.ref, pv.ref},
			"%s has no nodenetworkstate, so whether VRF %s (from %s, for %s) is up there cannot be checked: make sure the nmstate handler runs on the node",
			nodeRef, pv.vrf, d.pol.ref, pv.ref)
		return
	}
	nnsRef := ObjectRef{Kind: KindState, Name: n}
	st, err := parseState(nns.Status.CurrentState.Raw)
	if err != nil {
		c.add(CheckPolicyUnparsable, Unknown, "status.currentState", []ObjectRef{nnsRef, d.pol.ref},
			"%s status.currentState cannot be parsed (%v), so VRF %s of %s cannot be checked on the node", nnsRef, err, pv.vrf, d.pol.ref)
		return
	}
	enact := ObjectRef{Kind: KindEnactment, Name: n + "." + d.pol.obj.Name}
	i := st.iface(pv.vrf)
	switch {
	case i < 0:
		c.add(CheckVRFNotOnNode, Error, "status.currentState.interfaces", []ObjectRef{nnsRef, d.pol.ref, pv.ref},
			"%s shows no interface %s, which %s defines for %s: the policy is not applied on the node; see %s for why",
			nnsRef, pv.vrf, d.pol.ref, pv.ref, enact)
	case st.Interfaces[i].Type != "vrf" || st.Interfaces[i].State != "up":
		c.add(CheckVRFNotOnNode, Error, fmt.Sprintf("status.currentState.interfaces[%d].state", i), []ObjectRef{nnsRef, d.pol.ref, pv.ref},
			"%s shows interface %s with type %q and state %q, but %s defines it as an up VRF for %s: see %s for why it is not applied",
			nnsRef, pv.vrf, st.Interfaces[i].Type, st.Interfaces[i].State, d.pol.ref, pv.ref, enact)
	case want > 0 && st.Interfaces[i].table() != want:
		c.add(CheckVRFNotOnNode, Error, fmt.Sprintf("status.currentState.interfaces[%d].vrf.route-table-id", i), []ObjectRef{nnsRef, d.pol.ref, pv.ref},
			"%s shows VRF %s with route-table-id %d but %s sets %d (VRF of %s): the policy is not applied on the node yet; see %s",
			nnsRef, pv.vrf, st.Interfaces[i].table(), d.pol.ref, want, pv.ref, enact)
	}
}

func (c *checker) checkEnactment(pol *policy, node string) {
	name := node + "." + pol.obj.Name
	ref := ObjectRef{Kind: KindEnactment, Name: name}
	e := c.enactments[name]
	if e == nil {
		c.add(CheckEnactmentProgressing, Warning, "status.conditions", []ObjectRef{ref, pol.ref},
			"%s does not exist: the nmstate handler has not started applying %s on node %s yet; wait, or check the nmstate handler pod on the node",
			ref, pol.ref, node)
		return
	}
	conds := e.Status.Conditions
	for _, t := range []string{"Failing", "Aborted"} {
		if cd := conds.Find(nmstateCondition(t)); cd != nil && cd.Status == corev1.ConditionTrue {
			c.add(CheckEnactmentFailed, Error, "status.conditions", []ObjectRef{ref, pol.ref},
				"%s is %s: %s could not be applied on node %s (%s: %s): fix the policy's spec.desiredState",
				ref, t, pol.ref, node, cd.Reason, cd.Message)
			return
		}
	}
	gen := pol.obj.Generation
	if cd := conds.Find(nmstateCondition("Available")); cd != nil && cd.Status == corev1.ConditionTrue {
		if e.Status.PolicyGeneration >= gen {
			return
		}
		c.add(CheckEnactmentProgressing, Warning, "status.policyGeneration", []ObjectRef{ref, pol.ref},
			"%s status.policyGeneration is %d but %s is at metadata.generation %d: node %s still runs an older desiredState; wait for the enactment to catch up",
			ref, e.Status.PolicyGeneration, pol.ref, gen, node)
		return
	}
	state, msg := "not Available", ""
	for _, t := range []string{"Progressing", "Pending"} {
		if cd := conds.Find(nmstateCondition(t)); cd != nil && cd.Status == corev1.ConditionTrue {
			state, msg = "still "+strings.ToLower(t), cd.Message
			break
		}
	}
	if msg != "" {
		msg = " (" + msg + ")"
	}
	c.add(CheckEnactmentProgressing, Warning, "status.conditions", []ObjectRef{ref, pol.ref},
		"%s is %s%s: %s is not applied on node %s yet; wait for the enactment to become Available",
		ref, state, msg, pol.ref, node)
}

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
	for _, p := range c.peers {
		if p.Spec.VRFName != "" {
			refs = append(refs, peerRef(p))
		}
	}
	if len(refs) == 0 {
		return
	}
	c.add(CheckMainTableNetworksUnknown, Unknown, "spec.mainTableNetworks", refs,
		"the cluster and service networks are unknown, so whether route rules keep them out of the VRF of %s cannot be checked: list them in a SymmetricRouting's spec.mainTableNetworks, or run on OpenShift (config.openshift.io/v1 Network \"cluster\")",
		refsString(refs))
}

// ---- EgressServices (checks 3, 4, 5) ----

func esRef(es *ovnv1.EgressService) ObjectRef {
	return ObjectRef{Kind: KindEgressService, Namespace: es.Namespace, Name: es.Name}
}

func svcRef(s *corev1.Service) ObjectRef {
	return ObjectRef{Kind: KindService, Namespace: s.Namespace, Name: s.Name}
}

func poolRef(p *v1beta1.IPAddressPool) ObjectRef {
	return ObjectRef{Kind: KindPool, Namespace: p.Namespace, Name: p.Name}
}

func adRef(a *v1beta1.BGPAdvertisement) ObjectRef {
	return ObjectRef{Kind: KindAdvertisement, Namespace: a.Namespace, Name: a.Name}
}

func (c *checker) service(ns, name string) *corev1.Service {
	for _, s := range c.services {
		if s.Namespace == ns && s.Name == name {
			return s
		}
	}
	return nil
}

func poolAnnotation(s *corev1.Service) string {
	if v := s.Annotations[annotationAddressPool]; v != "" {
		return v
	}
	return s.Annotations[annotationAddressPoolLegacy]
}

func ingressAddrs(s *corev1.Service) []netip.Addr {
	var out []netip.Addr
	for _, ing := range s.Status.LoadBalancer.Ingress {
		if a, err := netip.ParseAddr(ing.IP); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

// requestedAddrs are the addresses the Service asks for explicitly.
func requestedAddrs(s *corev1.Service) []netip.Addr {
	var out []netip.Addr
	raw := []string{s.Spec.LoadBalancerIP}
	for _, k := range []string{annotationLoadBalancerIPs, annotationLoadBalancerIPsLegacy} {
		raw = append(raw, strings.Split(s.Annotations[k], ",")...)
	}
	for _, r := range raw {
		if a, err := netip.ParseAddr(strings.TrimSpace(r)); err == nil {
			out = append(out, a.Unmap())
		}
	}
	return out
}

func poolContains(p *v1beta1.IPAddressPool, a netip.Addr) bool {
	for _, s := range p.Spec.Addresses {
		if r, err := config.ParseRange(s); err == nil && r.Contains(a) {
			return true
		}
	}
	return false
}

func anyMatches(sels []metav1.LabelSelector, l map[string]string) bool {
	for i := range sels {
		if s, err := metav1.LabelSelectorAsSelector(&sels[i]); err == nil && s.Matches(labels.Set(l)) {
			return true
		}
	}
	return false
}

// adsFor returns the BGPAdvertisements announcing svc's addresses from pool.
func (c *checker) adsFor(pool *v1beta1.IPAddressPool, svc *corev1.Service) []*v1beta1.BGPAdvertisement {
	var out []*v1beta1.BGPAdvertisement
	for _, a := range c.ads {
		if a.Namespace != pool.Namespace {
			continue
		}
		covers := len(a.Spec.IPAddressPools) == 0 && len(a.Spec.IPAddressPoolSelectors) == 0 ||
			slices.Contains(a.Spec.IPAddressPools, pool.Name) ||
			anyMatches(a.Spec.IPAddressPoolSelectors, pool.Labels)
		if !covers {
			continue
		}
		if len(a.Spec.ServiceSelectors) > 0 && !anyMatches(a.Spec.ServiceSelectors, svc.Labels) {
			continue
		}
		out = append(out, a)
	}
	return out
}

// peersOf returns the existing peers an advertisement announces to.
func (c *checker) peersOf(a *v1beta1.BGPAdvertisement) []*v1beta2.BGPPeer {
	var out []*v1beta2.BGPPeer
	for _, p := range c.peers {
		if p.Namespace == a.Namespace && (len(a.Spec.Peers) == 0 || slices.Contains(a.Spec.Peers, p.Name)) {
			out = append(out, p)
		}
	}
	return out
}

func (c *checker) checkEgressService(es *ovnv1.EgressService) {
	ref := esRef(es)
	label := ovnv1.NodeLabel(es.Namespace, es.Name)
	if n := len(es.Namespace) + 1 + len(es.Name); n > maxLabelName {
		c.add(CheckEgressServiceNameTooLong, Error, "metadata.name", []ObjectRef{ref, {Kind: KindService, Namespace: es.Namespace, Name: es.Name}},
			"%s: %q is %d characters, longer than the 63 a label name allows, so OVN cannot label the egress node %s: shorten the namespace or the name of the service and its egressservice",
			ref, es.Namespace+"-"+es.Name, n, label)
	}
	svc := c.service(es.Namespace, es.Name)
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
		return
	}
	sref := svcRef(svc)
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		c.add(CheckEgressServiceNotLoadBalancer, Error, "spec.type", []ObjectRef{sref, ref},
			"%s spec.type is %q but %s only applies to LoadBalancer services: set spec.type to LoadBalancer",
			sref, svc.Spec.Type, ref)
		c.checkNetwork(es, nil, nil)
		return
	}
	ingress := ingressAddrs(svc)
	if len(ingress) == 0 {
		c.add(CheckEgressServiceNoIngress, Error, "status.loadBalancer.ingress", []ObjectRef{sref, ref},
			"%s has no load-balancer ingress address, so %s has no source address to use: check the service's events for why MetalLB did not assign one",
			sref, ref)
	}

	// The pool.
	var pool *v1beta1.IPAddressPool
	if name := poolAnnotation(svc); name != "" {
		for _, p := range c.pools {
			if p.Name == name {
				pool = p
				break
			}
		}
		if pool == nil {
			c.add(CheckEgressServicePoolNotFound, Error, "metadata.annotations", []ObjectRef{sref, {Kind: KindPool, Name: name}, ref},
				"%s asks for ipaddresspool %q (annotation %s), which does not exist, so the path of %s cannot be traced: create the pool or fix the annotation",
				sref, name, annotationAddressPool, ref)
		}
	} else if len(ingress) > 0 {
		for _, p := range c.pools {
			if poolContains(p, ingress[0]) {
				pool = p
				break
			}
		}
		if pool == nil {
			c.add(CheckEgressServicePoolNotFound, Unknown, "status.loadBalancer.ingress", []ObjectRef{sref, ref},
				"%s has address %s, which is in no ipaddresspool, so the advertisements and peers of %s cannot be traced: give the service an address from a dedicated pool (annotation %s)",
				sref, ingress[0], ref, annotationAddressPool)
		}
	}
	if pool == nil {
		c.checkNetwork(es, nil, nil)
		return
	}
	pref := poolRef(pool)

	// The VRF peers its addresses are announced to.
	ads := c.adsFor(pool, svc)
	var vrfPeers []*peerVRF
	var via []*v1beta1.BGPAdvertisement
	for _, a := range ads {
		for _, p := range c.peersOf(a) {
			if pv := c.vrfs[nsName(p)]; pv != nil && !slices.Contains(vrfPeers, pv) {
				vrfPeers = append(vrfPeers, pv)
				via = append(via, a)
			}
		}
	}
	var chosen *peerVRF
	var chosenAd *v1beta1.BGPAdvertisement
	if len(vrfPeers) > 0 {
		chosen, chosenAd = vrfPeers[0], via[0]
		if n, err := strconv.ParseInt(es.Spec.Network, 10, 64); err == nil {
			for i, pv := range vrfPeers {
				if pv.table == n {
					chosen, chosenAd = pv, via[i]
					break
				}
			}
		}
	}
	c.checkNetwork(es, chosen, chosenAd)
	if chosen != nil && chosen.nodes != nil {
		c.checkEgressNodes(es, chosen)
	}
	if es.Spec.Network != "" && chosen == nil {
		c.add(CheckEgressNoVRFPeer, Warning, "spec.network", []ObjectRef{ref, pref},
			"%s spec.network is %q but no bgpadvertisement announces %s (the pool of %s) to a bgppeer with spec.vrf, so replies do not come back through that table: advertise the pool to the VRF peer only, or clear spec.network",
			ref, es.Spec.Network, pref, sref)
	}

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
		for _, a := range ads {
			c.checkAdNodeSelector(es, a, label, sref)
			if chosen != nil {
				c.checkAdPeers(es, a, chosen, pref)
			}
		}
		c.checkPoolDedicated(es, svc, pool, ingress)
	}
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
		esRef(es), describeSelectors([]metav1.LabelSelector{es.Spec.NodeSelector}), joinNames(without), pv.vrf, pv.ref)
}

func (c *checker) hasEgressService(s *corev1.Service) bool {
	for i := range c.in.EgressServices {
		if c.in.EgressServices[i].Namespace == s.Namespace && c.in.EgressServices[i].Name == s.Name {
			return true
		}
	}
	return false
}

// checkNetwork checks spec.network against the VRF the Service is
// announced through (chosen, via advertisement ad; nil when unknown).
func (c *checker) checkNetwork(es *ovnv1.EgressService, chosen *peerVRF, ad *v1beta1.BGPAdvertisement) {
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
			ref, adRef(ad), chosen.ref, chosen.vrf, fix)
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

// requiresLabel reports whether sel only selects nodes carrying label
// (with the empty value OVN sets).
func requiresLabel(sel *metav1.LabelSelector, label string) bool {
	if v, ok := sel.MatchLabels[label]; ok {
		return v == ""
	}
	for _, e := range sel.MatchExpressions {
		if e.Key != label {
			continue
		}
		switch e.Operator {
		case metav1.LabelSelectorOpExists:
			return true
		case metav1.LabelSelectorOpIn:
			if slices.Contains(e.Values, "") {
				return true
			}
		}
	}
	return false
}

func describeSelectors(sels []metav1.LabelSelector) string {
	if len(sels) == 0 {
		return "every node"
	}
	s := make([]string, 0, len(sels))
	for i := range sels {
		if sel, err := metav1.LabelSelectorAsSelector(&sels[i]); err == nil {
			s = append(s, "{"+sel.String()+"}")
		} else {
			s = append(s, "{invalid}")
		}
	}
	return strings.Join(s, " or ")
}

func (c *checker) checkAdNodeSelector(es *ovnv1.EgressService, a *v1beta1.BGPAdvertisement, label string, sref ObjectRef) {
	ok := len(a.Spec.NodeSelectors) > 0
	for i := range a.Spec.NodeSelectors {
		ok = ok && requiresLabel(&a.Spec.NodeSelectors[i], label)
	}
	if ok {
		return
	}
	ar := adRef(a)
	c.add(CheckAdvertisementNodeSelector, Error, "spec.nodeSelectors", []ObjectRef{ar, esRef(es)},
		"%s spec.nodeSelectors selects %s, not only the node OVN labels %s for %s, so %s is announced from nodes its egress traffic does not leave from: set spec.nodeSelectors to [{matchLabels: {%s: \"\"}}]",
		ar, describeSelectors(a.Spec.NodeSelectors), label, esRef(es), sref, label)
}

func (c *checker) checkAdPeers(es *ovnv1.EgressService, a *v1beta1.BGPAdvertisement, chosen *peerVRF, pref ObjectRef) {
	ar := adRef(a)
	var vrfNames []string
	for _, p := range c.peers {
		if p.Namespace == a.Namespace && p.Spec.VRFName == chosen.vrf {
			vrfNames = append(vrfNames, p.Name)
		}
	}
	if len(a.Spec.Peers) == 0 {
		objs := []ObjectRef{ar, esRef(es)}
		var others []string
		for _, p := range c.peersOf(a) {
			if p.Spec.VRFName != chosen.vrf {
				objs = append(objs, peerRef(p))
				others = append(others, peerRef(p).String())
			}
		}
		if len(others) > 0 {
			c.add(CheckAdvertisementNonVRFPeer, Error, "spec.peers", objs,
				"%s spec.peers is empty, so it announces %s of %s to every peer, including %s outside VRF %s, and replies may arrive where egress traffic does not leave: set spec.peers to [%s]",
				ar, pref, esRef(es), strings.Join(others, ", "), chosen.vrf, joinNames(vrfNames))
		}
		return
	}
	for i, name := range a.Spec.Peers {
		for _, p := range c.peers {
			if p.Namespace != a.Namespace || p.Name != name || p.Spec.VRFName == chosen.vrf {
				continue
			}
			in := "outside any VRF"
			if p.Spec.VRFName != "" {
				in = "in VRF " + p.Spec.VRFName
			}
			c.add(CheckAdvertisementNonVRFPeer, Error, fmt.Sprintf("spec.peers[%d]", i), []ObjectRef{ar, peerRef(p), esRef(es)},
				"%s spec.peers[%d] is %s, %s, but %s sends its traffic through VRF %s: announce %s only to peers in VRF %s (%s)",
				ar, i, peerRef(p), in, esRef(es), chosen.vrf, pref, chosen.vrf, joinNames(vrfNames))
		}
	}
}

func (c *checker) checkPoolDedicated(es *ovnv1.EgressService, svc *corev1.Service, pool *v1beta1.IPAddressPool, ingress []netip.Addr) {
	ref, sref, pref := esRef(es), svcRef(svc), poolRef(pool)
	autoAssign := pool.Spec.AutoAssign == nil || *pool.Spec.AutoAssign
	asks := poolAnnotation(svc) == pool.Name
	for _, a := range requestedAddrs(svc) {
		asks = asks || poolContains(pool, a)
	}
	switch {
	case !asks && autoAssign:
		c.add(CheckPoolNotRequested, Warning, "metadata.annotations", []ObjectRef{sref, pref, ref},
			"%s got its address from %s without asking for it, and the pool auto-assigns, so the address %s depends on may change and other services may share the pool: annotate the service with %s: %s and set the pool's spec.autoAssign to false",
			sref, pref, ref, annotationAddressPool, pool.Name)
	case autoAssign:
		c.add(CheckPoolAutoAssign, Warning, "spec.autoAssign", []ObjectRef{pref, ref},
			"%s spec.autoAssign is true (the default), so another service may get an address there and be announced only from the egress node of %s, to its VRF peers: set spec.autoAssign to false",
			pref, ref)
	}
	for _, other := range c.services {
		if other == svc || other.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		for _, a := range ingressAddrs(other) {
			if poolContains(pool, a) && !slices.Contains(ingress, a) {
				oref := svcRef(other)
				c.add(CheckPoolShared, Error, "status.loadBalancer.ingress", []ObjectRef{pref, oref, ref},
					"%s holds %s from %s, the pool of %s, so it is announced only from that service's egress node and only to its VRF peers: give %s an address from another pool (annotation %s)",
					oref, a, pref, ref, oref, annotationAddressPool)
				break
			}
		}
	}
}

func nmstateCondition(t string) shared.ConditionType { return shared.ConditionType(t) }
