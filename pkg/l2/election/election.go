// Package election decides which node announces a layer-2 address. It is
// pure: every speaker runs it on the same inputs (configuration, nodes,
// endpoints, live speakers) and so reaches the same answer without talking
// to the others, which is what keeps exactly one node answering ARP/NDP for
// an address.
package election

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

// Candidate is a node that may be elected to announce an address.
type Candidate struct {
	Name string
	// Weight is the node's preference score: the sum of the weights of the
	// preferredNodeSelectors terms it matches (see Candidates for several
	// advertisements). Higher wins.
	Weight int64
}

// Candidates returns the nodes that may announce the Service's addresses
// under the given L2 advertisements (those of the address's pool), sorted by
// name. A node is a candidate when at least one advertisement selects both
// the Service and the node, the node is not excluded
// (lbservice.NodeExcluded), and it can deliver the traffic: for
// externalTrafficPolicy Local it has a serving endpoint of the Service
// itself, for Cluster the Service has a serving endpoint anywhere (else no
// node is a candidate: announcing an address nobody serves only attracts
// traffic to drop).
//
// When several advertisements select a node its weight is the highest of
// their NodePreference scores, not their sum: overlapping advertisements
// are alternative statements of intent, and adding them up would let an
// unrelated advertisement tip the election.
func Candidates(advs []*config.L2Advertisement, svc *corev1.Service, nodes []*corev1.Node, eps []*discoveryv1.EndpointSlice) []Candidate {
	local := svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
	if !local && !lbservice.HasEndpoints(svc, eps, "") {
		return nil
	}
	var out []Candidate
	for _, n := range nodes {
		if lbservice.NodeExcluded(n) != "" {
			continue
		}
		if local && !lbservice.HasEndpoints(svc, eps, n.Name) {
			continue
		}
		weight, selected := int64(0), false
		for _, adv := range advs {
			if !adv.MatchesService(svc.Labels) || !adv.MatchesNode(n.Labels) {
				continue
			}
			if w := adv.NodePreference(n.Labels); !selected || w > weight {
				weight = w
			}
			selected = true
		}
		if selected {
			out = append(out, Candidate{Name: n.Name, Weight: weight})
		}
	}
	slices.SortFunc(out, func(a, b Candidate) int { return cmp.Compare(a.Name, b.Name) })
	return out
}

// Rank orders the candidates for an address, best first: highest weight,
// then the lowest hash of (node name, address), then name (only reached on
// a hash collision). The hash spreads addresses of equal-weight nodes
// across them, and is keyed by the address rather than the Service so that
// Services sharing an address (metallb.io/allow-shared-ip) are always
// elected to the same node: only one node can answer ARP for an address.
// The input is not modified.
func Rank(addr netip.Addr, candidates []Candidate) []Candidate {
	type ranked struct {
		Candidate
		hash [sha256.Size]byte
	}
	rs := make([]ranked, len(candidates))
	for i, c := range candidates {
		rs[i] = ranked{Candidate: c, hash: nodeHash(c.Name, addr)}
	}
	slices.SortFunc(rs, func(a, b ranked) int {
		if c := cmp.Compare(b.Weight, a.Weight); c != 0 {
			return c
		}
		if c := bytes.Compare(a.hash[:], b.hash[:]); c != 0 {
			return c
		}
		return cmp.Compare(a.Name, b.Name)
	})
	out := make([]Candidate, len(rs))
	for i, r := range rs {
		out[i] = r.Candidate
	}
	return out
}

// Elect returns the node that announces addr: the best-ranked candidate
// (Rank) whose speaker is live. ok is false when no candidate is live.
// live holds the names of the nodes whose speaker is up (the memberlist
// view, or every node's speaker when membership is not used); a node
// missing from it is skipped, so that when the elected node's speaker dies
// the next one takes over.
func Elect(addr netip.Addr, candidates []Candidate, live map[string]bool) (node string, ok bool) {
	for _, c := range Rank(addr, candidates) {
		if live[c.Name] {
			return c.Name, true
		}
	}
	return "", false
}

// nodeHash is the spreading key of a node for an address. The separator
// keeps ("a1", 2.3.4.5) and ("a", 12.3.4.5) apart. The address is
// unmapped so that an IPv4-mapped spelling elects the same node.
func nodeHash(node string, addr netip.Addr) [sha256.Size]byte {
	return sha256.Sum256([]byte(node + "#" + addr.Unmap().String()))
}
