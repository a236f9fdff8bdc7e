package election

import (
	"maps"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

// Elector is Decide kept up to date one Service at a time: the speaker
// builds one when the configuration, the nodes or the live speakers
// change (which may change every address's owner) and updates it for
// each Service whose Service or EndpointSlices changed, at a cost
// proportional to that Service's addresses (and the Services sharing
// them) rather than to the cluster. Its Result is always the one Decide
// gives for the same inputs (tested by replaying random changes on both).
// Pure: no Kubernetes client, no locking.
type Elector struct {
	cfg        *config.Config
	node       string
	nodes      []*corev1.Node
	nodeLabels map[string]string
	live       map[string]bool

	// services are each Service's addresses with an owner, by key.
	services map[string][]elected
	// holders are, per address, the Services with it that elected an
	// owner, sorted by key: Decide's owner is the last one's.
	holders map[netip.Addr][]elected
	owner   map[netip.Addr]string
	// mine are this node's announcements by address, and mineSvcs its
	// Services' addresses: their slices are replaced, never modified, so
	// that what Result and Announce handed out stays as it was.
	mine     map[netip.Addr]Announcement
	mineSvcs map[string][]netip.Addr
	// announce is mine sorted, nil when it must be built again.
	announce []Announcement
	sorted   bool
}

// elected is one address of one Service with its owner and, when the
// owner is this node, what the advertisements that select the Service
// and this node ask of the interfaces.
type elected struct {
	key   string
	addr  netip.Addr
	owner string
	// all: some advertisement names no interface (every suitable one);
	// else ifaces are the named ones, sorted, without duplicates.
	all    bool
	ifaces []string
}

// NewElector elects every Service of in, as Decide does, and keeps the
// parts. The Service keys of in are unique.
func NewElector(in Input) *Elector {
	e := &Elector{
		cfg: in.Config, node: in.Node, nodes: in.Nodes, live: in.Live,
		services: map[string][]elected{}, holders: map[netip.Addr][]elected{}, owner: map[netip.Addr]string{},
		mine: map[netip.Addr]Announcement{}, mineSvcs: map[string][]netip.Addr{}, sorted: true,
	}
	for _, n := range in.Nodes {
		if n.Name == in.Node {
			e.nodeLabels = n.Labels
		}
	}
	bySvc := make(map[string][]*discoveryv1.EndpointSlice, len(in.EndpointSlices))
	for _, s := range in.EndpointSlices {
		if name := s.Labels[discoveryv1.LabelServiceName]; name != "" {
			bySvc[s.Namespace+"/"+name] = append(bySvc[s.Namespace+"/"+name], s)
		}
	}
	for _, svc := range in.Services {
		key := lbservice.Key(svc)
		e.Update(key, svc, bySvc[key])
	}
	return e
}

// Update elects Service key's addresses again: svc is its current
// version (nil when it is gone; a Service not of type LoadBalancer has
// none) and eps its EndpointSlices (others are ignored). It reports
// whether what this node announces (Announce, Result's Announce and
// Services) changed.
func (e *Elector) Update(key string, svc *corev1.Service, eps []*discoveryv1.EndpointSlice) bool {
	now := e.elect(key, svc, eps)
	old := e.services[key]
	if slices.EqualFunc(old, now, sameElected) {
		return false
	}
	if len(now) == 0 {
		delete(e.services, key)
	} else {
		e.services[key] = now
	}
	// The addresses the Service had and has, each once: both lists are
	// sorted by address (IngressAddrs).
	changed := false
	i, j := 0, 0
	for i < len(old) || j < len(now) {
		var addr netip.Addr
		switch {
		case j == len(now) || (i < len(old) && old[i].addr.Less(now[j].addr)):
			addr = old[i].addr
			i++
		case i == len(old) || now[j].addr.Less(old[i].addr):
			addr = now[j].addr
			j++
		default:
			addr = old[i].addr
			i++
			j++
		}
		if e.reelect(addr, key, now) {
			changed = true
		}
	}
	var mineAddrs []netip.Addr
	for _, el := range now {
		if el.owner == e.node {
			mineAddrs = append(mineAddrs, el.addr)
		}
	}
	if len(mineAddrs) == 0 {
		delete(e.mineSvcs, key)
	} else {
		e.mineSvcs[key] = mineAddrs
	}
	return changed
}

// reelect puts Service key's entry for addr (from now, if there) among
// the address's holders in place of its old one, and recomputes the
// owner and this node's announcement of the address. It reports whether
// the announcement changed.
func (e *Elector) reelect(addr netip.Addr, key string, now []elected) bool {
	// holders' slices are the Elector's own: edited in place.
	hs := e.holders[addr]
	at, found := slices.BinarySearchFunc(hs, key, func(h elected, k string) int { return strings.Compare(h.key, k) })
	if found {
		hs = slices.Delete(hs, at, at+1)
	}
	if k := slices.IndexFunc(now, func(el elected) bool { return el.addr == addr }); k >= 0 {
		hs = slices.Insert(hs, at, now[k])
	}
	if len(hs) == 0 {
		delete(e.holders, addr)
		delete(e.owner, addr)
	} else {
		e.holders[addr] = hs
		e.owner[addr] = hs[len(hs)-1].owner
	}
	// This node's announcement: the Services elected here, in key order,
	// on the union of the interfaces they ask for (every one if any asks
	// for every one).
	a := Announcement{Addr: addr}
	all, here := false, false
	for _, h := range hs {
		if h.owner != e.node {
			continue
		}
		here = true
		a.Services = append(a.Services, h.key)
		all = all || h.all
		if !all {
			a.Interfaces = append(a.Interfaces, h.ifaces...)
		}
	}
	if all {
		a.Interfaces = nil
	} else if len(a.Interfaces) > 0 {
		slices.Sort(a.Interfaces)
		a.Interfaces = slices.Compact(a.Interfaces)
	} else {
		a.Interfaces = nil
	}
	prev, had := e.mine[addr]
	switch {
	case !here && !had:
		return false
	case !here:
		delete(e.mine, addr)
	case had && slices.Equal(prev.Services, a.Services) && slices.Equal(prev.Interfaces, a.Interfaces):
		return false
	default:
		e.mine[addr] = a
	}
	e.sorted = false
	return true
}

// elect is Decide's election of one Service's addresses, sorted by
// address.
func (e *Elector) elect(key string, svc *corev1.Service, eps []*discoveryv1.EndpointSlice) []elected {
	if e.cfg == nil || svc == nil || svc.Spec.Type != corev1.ServiceTypeLoadBalancer {
		return nil
	}
	var out []elected
	for _, addr := range lbservice.IngressAddrs(svc) {
		pool := e.cfg.PoolFor(addr)
		if pool == nil || len(pool.L2Advertisements) == 0 {
			continue
		}
		owner, ok := Elect(addr, Candidates(pool.L2Advertisements, svc, e.nodes, eps), e.live)
		if !ok {
			continue
		}
		el := elected{key: key, addr: addr, owner: owner}
		if owner == e.node {
			for _, adv := range pool.L2Advertisements {
				if !adv.MatchesService(svc.Labels) || !adv.MatchesNode(e.nodeLabels) {
					continue
				}
				if len(adv.Interfaces) == 0 {
					el.all = true
				} else {
					el.ifaces = append(el.ifaces, adv.Interfaces...)
				}
			}
			if el.all {
				el.ifaces = nil
			} else {
				slices.Sort(el.ifaces)
				el.ifaces = slices.Compact(el.ifaces)
			}
		}
		out = append(out, el)
	}
	return out
}

func sameElected(a, b elected) bool {
	return a.key == b.key && a.addr == b.addr && a.owner == b.owner && a.all == b.all && slices.Equal(a.ifaces, b.ifaces)
}

// Announce is what this node announces, sorted by address: Result's
// Announce without the rest, at a cost proportional to this node's
// announcements. The slice and what it holds are never modified; the
// caller must not modify them either.
func (e *Elector) Announce() []Announcement {
	if !e.sorted {
		e.announce = nil
		if len(e.mine) > 0 {
			e.announce = slices.SortedFunc(maps.Values(e.mine), func(x, y Announcement) int { return x.Addr.Compare(y.Addr) })
		}
		e.sorted = true
	}
	return e.announce
}

// Owner returns the node elected for a layer-2 address, as Result's
// Owner has it.
func (e *Elector) Owner(addr netip.Addr) (string, bool) {
	n, ok := e.owner[addr]
	return n, ok
}

// Result is Decide's Result for the current inputs. Its maps are new
// (the Owner map holds every layer-2 address of the cluster: use Announce
// and Owner where a change must cost what it changes); the slices in it
// are shared with the Elector, never modified by it, and must not be
// modified by the caller.
func (e *Elector) Result() Result {
	return Result{Announce: e.Announce(), Owner: maps.Clone(e.owner), Services: maps.Clone(e.mineSvcs)}
}
