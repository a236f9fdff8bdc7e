package symrouting

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/lbservice"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
)

// operatorNetwork is operator.openshift.io/v1 Network "cluster".
var operatorNetwork = ObjectRef{Kind: KindOperatorNetwork, Name: "cluster"}

// Check cross-checks the objects of in and returns the inconsistencies in
// a deterministic order: errors first, then warnings, then what could not
// be checked. An empty result means consistent.
func Check(in Inputs) []Finding {
	c := newChecker(in)
	for _, name := range c.cfg.PeerNames {
		if p := c.cfg.Peers[name]; p.VRF != "" {
			c.checkPeer(p)
		}
	}
	c.checkNetworksKnown()
	for _, es := range sortedPtrs(in.EgressServices, func(e *ovnv1.EgressService) string { return e.Namespace + "/" + e.Name }) {
		c.checkEgressService(es)
	}
	return c.result()
}

// checker holds the state of one Check.
type checker struct {
	in  Inputs
	out []Finding
	// cfg is the metallb.io configuration of in as pkg/config resolves it:
	// which pool holds an address, which advertisements announce a pool
	// to which peers from which nodes. It is resolved even when Build
	// refuses it (config.Resolve): a VRF peer is checked whatever else
	// is wrong with it, as the user fixes both at once.
	cfg *config.Config
	// peerObjs, adObjs and poolObjs are the metallb.io objects by name:
	// their namespace for references, and their spec as written where a
	// message quotes or indexes it.
	peerObjs map[string]*v1beta2.BGPPeer
	adObjs   map[string]*v1beta1.BGPAdvertisement
	poolObjs map[string]*v1beta1.IPAddressPool

	nodes      []*corev1.Node
	policies   []*policy
	states     map[string]*nmstatev1beta1.NodeNetworkState
	enactments map[string]*nmstatev1beta1.NodeNetworkConfigurationEnactment
	services   []*corev1.Service
	// vrfs are the VRF peers checked, by name.
	vrfs map[string]*peerVRF
	done map[string]bool
}

// policy is one NodeNetworkConfigurationPolicy, parsed.
type policy struct {
	obj   *nmstatev1.NodeNetworkConfigurationPolicy
	ref   ObjectRef
	state nmState
	ok    bool
	nodes map[string]bool
}

func sortedPtrs[T any](items []T, key func(*T) string) []*T {
	out := make([]*T, len(items))
	for i := range items {
		out[i] = &items[i]
	}
	slices.SortStableFunc(out, func(a, b *T) int { return cmp.Compare(key(a), key(b)) })
	return out
}

// byName indexes objects by name, the first of a name winning (Inputs'
// metallb.io objects are of one namespace, where names are unique).
func byName[T any](items []T, name func(*T) string) map[string]*T {
	out := make(map[string]*T, len(items))
	for i := range items {
		if _, dup := out[name(&items[i])]; !dup {
			out[name(&items[i])] = &items[i]
		}
	}
	return out
}

func newChecker(in Inputs) *checker {
	cfg, _ := config.Resolve(config.Resources{
		Pools:   in.Pools,
		Peers:   in.Peers,
		BGPAdvs: in.Advertisements,
		Nodes:   in.Nodes,
	}, config.Options{BGPBackend: in.Backend})
	c := &checker{
		in:         in,
		cfg:        cfg,
		peerObjs:   byName(in.Peers, func(p *v1beta2.BGPPeer) string { return p.Name }),
		adObjs:     byName(in.Advertisements, func(a *v1beta1.BGPAdvertisement) string { return a.Name }),
		poolObjs:   byName(in.Pools, func(p *v1beta1.IPAddressPool) string { return p.Name }),
		states:     map[string]*nmstatev1beta1.NodeNetworkState{},
		enactments: map[string]*nmstatev1beta1.NodeNetworkConfigurationEnactment{},
		vrfs:       map[string]*peerVRF{},
		done:       map[string]bool{},
	}
	c.nodes = sortedPtrs(in.Nodes, func(n *corev1.Node) string { return n.Name })
	for i := range in.States {
		c.states[in.States[i].Name] = &in.States[i]
	}
	for i := range in.Enactments {
		c.enactments[in.Enactments[i].Name] = &in.Enactments[i]
	}
	c.services = sortedPtrs(in.Services, lbservice.Key)
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

// once reports whether key is seen for the first time: a node or an
// enactment shared by several VRF peers is checked once.
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

// References to the metallb.io objects of the configuration, in the
// namespace of the object listed under that name.

func (c *checker) peerRef(name string) ObjectRef {
	return ObjectRef{Kind: KindBGPPeer, Namespace: namespaceOf(c.peerObjs[name]), Name: name}
}

func (c *checker) adRef(name string) ObjectRef {
	return ObjectRef{Kind: KindAdvertisement, Namespace: namespaceOf(c.adObjs[name]), Name: name}
}

func (c *checker) poolRef(name string) ObjectRef {
	return ObjectRef{Kind: KindPool, Namespace: namespaceOf(c.poolObjs[name]), Name: name}
}

func namespaceOf[T any, P interface {
	*T
	GetNamespace() string
}](obj P) string {
	if obj == nil {
		return ""
	}
	return obj.GetNamespace()
}

func esRef(es *ovnv1.EgressService) ObjectRef {
	return ObjectRef{Kind: KindEgressService, Namespace: es.Namespace, Name: es.Name}
}

func svcRef(s *corev1.Service) ObjectRef {
	return ObjectRef{Kind: KindService, Namespace: s.Namespace, Name: s.Name}
}

func nodeNames(nodes []*corev1.Node) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name
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
