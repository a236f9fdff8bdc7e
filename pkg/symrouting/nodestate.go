package symrouting

import (
	"fmt"
	"strings"

	"github.com/nmstate/kubernetes-nmstate/api/shared"
	corev1 "k8s.io/api/core/v1"
)

// The VRF on the nodes (check 2): each node of a VRF peer shows the VRF in
// its NodeNetworkState, and the enactment of the defining policy there is
// Available at the policy's generation.

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

func nmstateCondition(t string) shared.ConditionType { return shared.ConditionType(t) }
