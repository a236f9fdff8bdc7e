// The speaker's per-node BGP decisions, as pure functions: from the
// validated configuration, this node, the LoadBalancer Services and their
// EndpointSlices they compute the bgp.DesiredState the node's BGP backend
// must realise. No Kubernetes client here; the reconciler feeds them.

package speaker

import (
	"cmp"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

// Input is everything one node's decision depends on.
type Input struct {
	Config *config.Config
	Node   *corev1.Node
	// Services are the cluster's Services; only type LoadBalancer ones with
	// ingress IPs are considered.
	Services []*corev1.Service
	// EndpointSlices are the cluster's slices, matched to Services by the
	// kubernetes.io/service-name label and namespace.
	EndpointSlices []*discoveryv1.EndpointSlice
}

// Result is the decision for one node.
type Result struct {
	// State is what the BGP backend must realise (normalised).
	State bgp.DesiredState
	// Announced maps "namespace/name" of each Service this node announces
	// to the sorted names of the sessions (peers) that get at least one of
	// its routes: the content of ServiceBGPStatus.
	Announced map[string][]string
	// Skipped explains, per "namespace/name", why a LoadBalancer Service
	// with ingress addresses is not announced by this node; for events and
	// debugging.
	Skipped map[string]string
	// Problems are configuration issues that keep a session down (no
	// router ID, password pending).
	Problems []string
}

// NodeIPv4 and NodeIPv6 return the node's first InternalIP of the family,
// else its first ExternalIP of the family, else an invalid address.
func NodeIPv4(n *corev1.Node) netip.Addr { return nodeIP(n, true) }

// NodeIPv6 is NodeIPv4 for IPv6.
func NodeIPv6(n *corev1.Node) netip.Addr { return nodeIP(n, false) }

func nodeIP(n *corev1.Node, v4 bool) netip.Addr {
	for _, t := range []corev1.NodeAddressType{corev1.NodeInternalIP, corev1.NodeExternalIP} {
		for _, a := range n.Status.Addresses {
			if a.Type != t {
				continue
			}
			ip, err := netip.ParseAddr(a.Address)
			if err != nil {
				continue
			}
			ip = ip.Unmap()
			if ip.Is4() == v4 {
				return ip
			}
		}
	}
	return netip.Addr{}
}

// Sessions returns the node's sessions: one per peer whose nodeSelectors
// match, with the router ID defaulting to the node's IPv4 address. A peer
// that cannot be opened yet (password Secret missing, no router ID) is left
// out, with a problem saying why: opening it without its password would
// only produce MD5 failures at the router.
func Sessions(cfg *config.Config, node *corev1.Node) ([]bgp.Session, []string) {
	var out []bgp.Session
	var problems []string
	for _, name := range cfg.PeerNames {
		p := cfg.Peers[name]
		if !p.MatchesNode(node.Labels) {
			continue
		}
		if p.PasswordPending {
			problems = append(problems, fmt.Sprintf("peer %s: waiting for password Secret %q", p.Name, p.PasswordSecret))
			continue
		}
		if !p.Address.IsValid() {
			problems = append(problems, fmt.Sprintf("peer %s: unnumbered (interface) peering needs bgpBackend frr", p.Name))
			continue
		}
		rid := p.RouterID
		if !rid.IsValid() {
			rid = NodeIPv4(node)
		}
		if !rid.IsValid() {
			problems = append(problems, fmt.Sprintf("peer %s: no routerID set and node %s has no IPv4 address to use as one", p.Name, node.Name))
			continue
		}
		s := bgp.Session{
			Name:            p.Name,
			MyASN:           p.MyASN,
			PeerASN:         p.PeerASN,
			LocalASN:        p.LocalASN,
			DynamicASN:      string(p.DynamicASN),
			PeerAddr:        p.Address,
			Port:            p.Port,
			SourceAddr:      p.SrcAddress,
			RouterID:        rid,
			HoldTime:        p.HoldTime,
			KeepaliveTime:   p.KeepaliveTime,
			ConnectTime:     p.ConnectTime,
			Password:        p.Password,
			EBGPMultiHop:    p.EBGPMultiHop,
			GracefulRestart: p.EnableGracefulRestart,
			VRF:             p.VRF,
			DualStack:       p.DualStackAddressFamily,
			BFDProfile:      p.BFDProfile,
		}
		if s.DualStack {
			// The session's local address is a next hop of its own family
			// only; the other family needs the node's address of it.
			if p.Address.Is4() {
				s.NextHopIPv6 = NodeIPv6(node)
			} else {
				s.NextHopIPv4 = NodeIPv4(node)
			}
		}
		out = append(out, s)
	}
	return out, problems
}

// Decide computes the node's BGP state. Sessions are set up even on an
// excluded node (the exclusion is about traffic, and keeping sessions
// avoids churn when the condition flips); such a node announces nothing.
// A route is one (address, advertisement): the address must be in a pool,
// the advertisement must announce that pool and select this node and the
// Service, and it goes to the sessions the advertisement reaches. For
// externalTrafficPolicy Local the node needs a serving local endpoint; for
// Cluster the Service needs a serving endpoint anywhere.
func Decide(in Input) (Result, error) {
	res := Result{Announced: map[string][]string{}, Skipped: map[string]string{}}
	if in.Config == nil || in.Node == nil {
		return res, fmt.Errorf("speaker decision needs a configuration and a node")
	}
	sessions, problems := Sessions(in.Config, in.Node)
	res.Problems = problems
	state := bgp.DesiredState{Sessions: sessions, Routes: map[string][]bgp.Route{}}
	excluded := lbservice.NodeExcluded(in.Node)

	svcs := slices.Clone(in.Services)
	slices.SortFunc(svcs, func(a, b *corev1.Service) int { return cmp.Compare(lbservice.Key(a), lbservice.Key(b)) })
	bySvc := slicesByService(in.EndpointSlices)
	for _, svc := range svcs {
		d, ok := decideService(in.Config, in.Node, sessions, excluded, svc, bySvc[lbservice.Key(svc)])
		if !ok {
			continue
		}
		key := lbservice.Key(svc)
		if d.skipped != "" {
			res.Skipped[key] = d.skipped
			continue
		}
		res.Announced[key] = d.peers
		for name, rs := range d.routes {
			state.Routes[name] = append(state.Routes[name], rs...)
		}
	}
	// A session the state cannot carry is left out (and said), never the
	// node's whole state: the others keep announcing.
	norm, err := state.Normalize()
	var skipped *bgp.SkippedError
	if errors.As(err, &skipped) {
		for _, name := range slices.Sorted(maps.Keys(skipped.Sessions)) {
			res.Problems = append(res.Problems, skipped.Sessions[name].Error())
		}
	} else if err != nil {
		return res, fmt.Errorf("node %s: %w", in.Node.Name, err)
	}
	res.State = norm
	return res, nil
}

// slicesByService groups EndpointSlices by the "namespace/name" of their
// Service, so that each Service looks at its own only (not every slice of
// the cluster: quadratic with thousands of Services).
func slicesByService(eps []*discoveryv1.EndpointSlice) map[string][]*discoveryv1.EndpointSlice {
	out := make(map[string][]*discoveryv1.EndpointSlice, len(eps))
	for _, s := range eps {
		if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
			k := s.Namespace + "/" + name
			out[k] = append(out[k], s)
		}
	}
	return out
}

// serviceDecision is one Service's part of a node's decision.
type serviceDecision struct {
	// routes are the Service's routes by session name (not merged).
	routes map[string][]bgp.Route
	// peers are the sorted names of the sessions with routes of it.
	peers []string
	// skipped says why the node does not announce it ("" when it does).
	skipped string
}

// decideService decides one Service for the node; ok is false when the
// Service is not considered at all (not type LoadBalancer, no ingress
// address). eps may be every slice of the cluster or only the Service's.
func decideService(cfg *config.Config, node *corev1.Node, sessions []bgp.Session, excluded string, svc *corev1.Service, eps []*discoveryv1.EndpointSlice) (d serviceDecision, ok bool) {
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return d, false
	}
	addrs := lbservice.IngressAddrs(svc)
	if len(addrs) == 0 {
		return d, false
	}
	if excluded != "" {
		d.skipped = excluded
		return d, true
	}
	if why := endpointsReason(svc, eps, node.Name); why != "" {
		d.skipped = why
		return d, true
	}
	var why string
	for _, a := range addrs {
		pool := cfg.PoolFor(a)
		if pool == nil {
			why = fmt.Sprintf("address %s is in no pool", a)
			continue
		}
		got := false
		for _, adv := range pool.BGPAdvertisements {
			if !adv.MatchesNode(node.Labels) || !adv.MatchesService(svc.Labels) {
				continue
			}
			prefix := advPrefix(adv, a)
			for i := range sessions {
				s := &sessions[i]
				if !adv.ReachesPeer(s.Name) || !s.Carries(prefix) {
					continue
				}
				if d.routes == nil {
					d.routes = map[string][]bgp.Route{}
				}
				d.routes[s.Name] = append(d.routes[s.Name], bgp.Route{
					Prefix:      prefix,
					Communities: slices.Clone(adv.Communities),
					LocalPref:   adv.LocalPref,
				})
				got = true
			}
		}
		if !got {
			why = fmt.Sprintf("no BGPAdvertisement of pool %s selects this node and Service for a session of this node", pool.Name)
		}
	}
	if len(d.routes) == 0 {
		if why == "" {
			why = "no session"
		}
		return serviceDecision{skipped: why}, true
	}
	d.peers = slices.Sorted(maps.Keys(d.routes))
	return d, true
}

// endpointsReason reports why the Service's endpoints keep this node from
// announcing it, or "".
func endpointsReason(svc *corev1.Service, eps []*discoveryv1.EndpointSlice, node string) string {
	if svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal {
		if !lbservice.HasEndpoints(svc, eps, node) {
			return "externalTrafficPolicy Local and no serving endpoint on this node"
		}
		return ""
	}
	if !lbservice.HasEndpoints(svc, eps, "") {
		return "no serving endpoint"
	}
	return ""
}

// advPrefix is the announced prefix of address a under an advertisement:
// a masked to aggregationLength (IPv4) or aggregationLengthV6.
func advPrefix(adv *config.BGPAdvertisement, a netip.Addr) netip.Prefix {
	bits := adv.AggregationLength
	if a.Is6() {
		bits = adv.AggregationLengthV6
	}
	if bits <= 0 || bits > a.BitLen() {
		bits = a.BitLen()
	}
	return netip.PrefixFrom(a, bits).Masked()
}

// ReceivedBy narrows announced ("namespace/name" → session names) to the
// sessions that are Established, so ServiceBGPStatus lists the peers that
// actually received the route, not those that would once they come up. A
// Service no Established session carries is left out. pending is true when
// some announced session is not Established yet: the caller looks again
// soon, as nothing else tells it when a session comes up.
func ReceivedBy(announced map[string][]string, sessions []bgp.SessionStatus) (received map[string][]string, pending bool) {
	up := make(map[string]bool, len(sessions))
	for _, s := range sessions {
		up[s.Name] = s.State == bgp.StateEstablished
	}
	received = make(map[string][]string, len(announced))
	for key, peers := range announced {
		var got []string
		for _, p := range peers {
			if up[p] {
				got = append(got, p)
			} else {
				pending = true
			}
		}
		if len(got) > 0 {
			received[key] = got
		}
	}
	return received, pending
}
