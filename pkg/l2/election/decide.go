package election

import (
	"cmp"
	"net/netip"
	"slices"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

// Input is everything one node's layer-2 decision depends on; every node
// gets the same (but Node) and so elects the same owners.
type Input struct {
	Config *config.Config
	// Node is this node's name.
	Node  string
	Nodes []*corev1.Node
	// Services are the LoadBalancer Services this speaker serves.
	Services       []*corev1.Service
	EndpointSlices []*discoveryv1.EndpointSlice
	// Live are the nodes whose speaker is up.
	Live map[string]bool
}

// Announcement is one address this node answers for.
type Announcement struct {
	Addr netip.Addr
	// Interfaces are the interface names the advertisements ask for; nil
	// means every suitable interface.
	Interfaces []string
	// Services are the "namespace/name" keys of the Services with this
	// address (several when shared).
	Services []string
}

// Result is one node's layer-2 decision.
type Result struct {
	// Announce lists the addresses this node owns, sorted.
	Announce []Announcement
	// Owner maps each layer-2 address with an owner to the elected node,
	// on every node (for events and debugging).
	Owner map[netip.Addr]string
	// Services maps the "namespace/name" of each Service this node
	// announces to its addresses.
	Services map[string][]netip.Addr
}

// Decide elects, for every layer-2 address of every Service, the node that
// answers for it, and returns what this node announces. An address is
// layer 2 when its pool has L2Advertisements; the candidates and their
// ranking are Candidates' and Rank's; a Service's addresses are elected
// independently (IPv4 and IPv6 may land on different nodes, as each has
// its own neighbour protocol).
func Decide(in Input) Result {
	res := Result{Owner: map[netip.Addr]string{}, Services: map[string][]netip.Addr{}}
	if in.Config == nil {
		return res
	}
	byNode := make(map[string]*corev1.Node, len(in.Nodes))
	for _, n := range in.Nodes {
		byNode[n.Name] = n
	}
	// Each Service looks at its own EndpointSlices only (not every slice
	// of the cluster: quadratic with thousands of Services).
	bySvc := make(map[string][]*discoveryv1.EndpointSlice, len(in.EndpointSlices))
	for _, s := range in.EndpointSlices {
		if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
			bySvc[s.Namespace+"/"+name] = append(bySvc[s.Namespace+"/"+name], s)
		}
	}
	mine := map[netip.Addr]*Announcement{}
	svcs := slices.Clone(in.Services)
	slices.SortFunc(svcs, func(a, b *corev1.Service) int { return cmp.Compare(lbservice.Key(a), lbservice.Key(b)) })
	for _, svc := range svcs {
		if svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		key := lbservice.Key(svc)
		for _, addr := range lbservice.IngressAddrs(svc) {
			pool := in.Config.PoolFor(addr)
			if pool == nil || len(pool.L2Advertisements) == 0 {
				continue
			}
			cands := Candidates(pool.L2Advertisements, svc, in.Nodes, bySvc[key])
			owner, ok := Elect(addr, cands, in.Live)
			if !ok {
				continue
			}
			res.Owner[addr] = owner
			if owner != in.Node {
				continue
			}
			a := mine[addr]
			if a == nil {
				a = &Announcement{Addr: addr, Interfaces: []string{}}
				mine[addr] = a
			}
			a.Services = append(a.Services, key)
			res.Services[key] = append(res.Services[key], addr)
			node := byNode[in.Node]
			var nodeLabels map[string]string
			if node != nil {
				nodeLabels = node.Labels
			}
			for _, adv := range pool.L2Advertisements {
				if !adv.MatchesService(svc.Labels) || !adv.MatchesNode(nodeLabels) {
					continue
				}
				if len(adv.Interfaces) == 0 {
					a.Interfaces = nil // every suitable interface
				} else if a.Interfaces != nil {
					a.Interfaces = append(a.Interfaces, adv.Interfaces...)
				}
			}
		}
	}
	for _, a := range mine {
		if a.Interfaces != nil {
			slices.Sort(a.Interfaces)
			a.Interfaces = slices.Compact(a.Interfaces)
			if len(a.Interfaces) == 0 {
				a.Interfaces = nil
			}
		}
		res.Announce = append(res.Announce, *a)
	}
	slices.SortFunc(res.Announce, func(x, y Announcement) int { return x.Addr.Compare(y.Addr) })
	return res
}
