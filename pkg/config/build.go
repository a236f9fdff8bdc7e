package config

import (
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
)

// builder holds the state of one Build.
type builder struct {
	opts   Options
	native bool
	c      collector

	nodes []labels.Set

	// poolObjs are the pools in the stack's namespace with unique names, in
	// input order; poolExists has their names. pools are their parsed forms
	// (same order, nil-free: a pool with bad entries keeps its good ones so
	// that overlaps are still reported).
	poolObjs   []*v1beta1.IPAddressPool
	poolExists map[string]bool
	pools      []*Pool
	poolByName map[string]*Pool
	poolNames  []string // sorted
	index      *rangeIndex

	peers      []*Peer
	peerByName map[string]*Peer

	bfd map[string]*BFDProfile

	aliases     map[string]Community
	aliasOwners map[string]ObjectRef

	secrets map[string]*corev1.Secret

	bgpAdvs []*BGPAdvertisement
	l2Advs  []*L2Advertisement
}

// Build validates res against opts and returns the resolved Config, or the
// errors that prevent it, and warnings either way. It never panics and
// never calls out; the same input gives the same Result.
func Build(res Resources, opts Options) Result {
	b := resolveObjects(res, opts)
	b.checkBFDEcho()

	r := Result{Errors: sortedProblems(b.c.errs), Warnings: sortedProblems(b.c.warns)}
	if refused, confined := peersAtFault(r.Errors); confined {
		// Every error is a BGPPeer's own: the rest of the configuration
		// is sound, and one peer that cannot run must not stop the others
		// (a Secret's value, which no webhook sees, can make a peer
		// invalid at any time). The refused peers are left out, or keep
		// their last valid version.
		r.DisabledPeers = refused
		r.RetainedPeers = b.replacePeers(refused, opts.Previous)
		r.Config = b.config()
	}
	return r
}

// peersAtFault returns the BGPPeers the errors are about, sorted, and
// whether every error is about a BGPPeer (so that the configuration
// without them is valid).
func peersAtFault(errs []Problem) (names []string, confined bool) {
	for _, p := range errs {
		if p.Object.Kind != KindBGPPeer {
			return nil, false
		}
		names = append(names, p.Object.Name)
	}
	slices.Sort(names)
	return slices.Compact(names), true
}

// replacePeers takes the named peers out of the configuration being built
// and puts back the version previous has of each, if any; it returns the
// names put back.
func (b *builder) replacePeers(names []string, previous *Config) []string {
	var kept []string
	b.peers = slices.DeleteFunc(b.peers, func(p *Peer) bool { return slices.Contains(names, p.Name) })
	for _, name := range names {
		delete(b.peerByName, name)
		if previous == nil {
			continue
		}
		if old := previous.Peers[name]; old != nil {
			b.peers = append(b.peers, old)
			b.peerByName[name] = old
			kept = append(kept, name)
		}
	}
	return kept
}

// inNamespace reports whether an object of namespace ns belongs to the
// stack.
func (b *builder) inNamespace(ns string) bool {
	return b.opts.Namespace == "" || ns == "" || ns == b.opts.Namespace
}

// admit returns the objects that Build considers: in the stack's
// namespace, named, and not a second object of the same kind and name.
// Every other object is an error.
func admit[T any](b *builder, kind string, items []T, meta func(*T) *metav1.ObjectMeta) []*T {
	out := make([]*T, 0, len(items))
	seen := make(map[string]bool, len(items))
	for i := range items {
		m := meta(&items[i])
		ref := ObjectRef{Kind: kind, Name: m.Name}
		switch {
		case m.Name == "":
			b.c.errorf(ref, "metadata.name", nil, "a %s needs a name", kind)
		case !b.inNamespace(m.Namespace):
			b.c.errorf(ref, "metadata.namespace", nil, "%s %q is in namespace %q; every metallb.io object must be in the stack's namespace %q",
				kind, m.Name, m.Namespace, b.opts.Namespace)
		case seen[m.Name]:
			b.c.errorf(ref, "metadata.name", nil, "another %s named %q was given earlier; names are unique in a namespace", kind, m.Name)
		default:
			seen[m.Name] = true
			out = append(out, &items[i])
		}
	}
	return out
}

// config assembles the Config once there are no errors.
func (b *builder) config() *Config {
	cfg := &Config{
		BGPBackend:  b.opts.BGPBackend,
		Pools:       make(map[string]*Pool, len(b.pools)),
		Peers:       make(map[string]*Peer, len(b.peers)),
		BFDProfiles: b.bfd,
		Communities: b.aliases,
		index:       b.index,
		poolList:    b.pools,
	}
	for _, p := range b.pools {
		cfg.Pools[p.Name] = p
	}
	cfg.PoolNames = b.poolNames
	for _, p := range b.peers {
		cfg.Peers[p.Name] = p
		cfg.PeerNames = append(cfg.PeerNames, p.Name)
	}
	slices.Sort(cfg.PeerNames)

	cfg.BGPAdvs = slices.Clone(b.bgpAdvs)
	slices.SortFunc(cfg.BGPAdvs, func(x, y *BGPAdvertisement) int { return strings.Compare(x.Name, y.Name) })
	for _, a := range cfg.BGPAdvs {
		for _, name := range a.Pools {
			if p := cfg.Pools[name]; p != nil {
				p.BGPAdvertisements = append(p.BGPAdvertisements, a)
			}
		}
	}
	cfg.L2Advs = slices.Clone(b.l2Advs)
	slices.SortFunc(cfg.L2Advs, func(x, y *L2Advertisement) int { return strings.Compare(x.Name, y.Name) })
	for _, a := range cfg.L2Advs {
		for _, name := range a.Pools {
			if p := cfg.Pools[name]; p != nil {
				p.L2Advertisements = append(p.L2Advertisements, a)
			}
		}
	}
	return cfg
}

// CheckDelete reports why the object ref cannot be deleted, or nil when it
// can. Today only a BFDProfile is protected: it cannot be deleted while
// peers name it (the message names them).
func CheckDelete(ref ObjectRef, res Resources, opts Options) *Problem {
	if ref.Kind != KindBFDProfile {
		return nil
	}
	b := &builder{opts: opts}
	var users []ObjectRef
	for i := range res.Peers {
		p := &res.Peers[i]
		if b.inNamespace(p.Namespace) && p.Spec.BFDProfile == ref.Name {
			users = append(users, ObjectRef{Kind: KindBGPPeer, Name: p.Name})
		}
	}
	if len(users) == 0 {
		return nil
	}
	verb, them := "use", "those peers"
	if len(users) == 1 {
		verb, them = "uses", "that peer"
	}
	p := newProblem(ref, "", users, "cannot be deleted while %s %s it (spec.bfdProfile); change or delete %s first",
		refList(users, 10), verb, them)
	return &p
}

// refList lists references for a message, sorted, summarising beyond max.
func refList(refs []ObjectRef, max int) string {
	refs = slices.Clone(refs)
	slices.SortFunc(refs, compareRefs)
	refs = slices.Compact(refs)
	s := make([]string, 0, min(len(refs), max))
	for i, r := range refs {
		if i == max {
			break
		}
		s = append(s, r.String())
	}
	return joinList(s, len(refs)-len(s), "")
}

func field(format string, args ...any) string { return fmt.Sprintf(format, args...) }

// resolveObjects runs the steps Build and Resolve share: every object that
// may be admitted (named, in the namespace, not a duplicate) is resolved,
// each problem recorded in the builder.
func resolveObjects(res Resources, opts Options) *builder {
	b := &builder{opts: opts}
	if opts.BGPBackend == "" {
		b.opts.BGPBackend = v1beta1.BGPTypeFRR
	}
	b.native = b.opts.BGPBackend == v1beta1.BGPTypeNative

	for i := range res.Nodes {
		b.nodes = append(b.nodes, labels.Set(res.Nodes[i].Labels))
	}
	b.secrets = make(map[string]*corev1.Secret)
	for i := range res.Secrets {
		s := &res.Secrets[i]
		if b.inNamespace(s.Namespace) {
			if _, dup := b.secrets[s.Name]; !dup {
				b.secrets[s.Name] = s
			}
		}
	}

	b.poolObjs = admit(b, KindIPAddressPool, res.Pools, func(p *v1beta1.IPAddressPool) *metav1.ObjectMeta { return &p.ObjectMeta })
	peerObjs := admit(b, KindBGPPeer, res.Peers, func(p *v1beta2.BGPPeer) *metav1.ObjectMeta { return &p.ObjectMeta })
	bgpAdvObjs := admit(b, KindBGPAdvertisement, res.BGPAdvs, func(p *v1beta1.BGPAdvertisement) *metav1.ObjectMeta { return &p.ObjectMeta })
	l2AdvObjs := admit(b, KindL2Advertisement, res.L2Advs, func(p *v1beta1.L2Advertisement) *metav1.ObjectMeta { return &p.ObjectMeta })
	bfdObjs := admit(b, KindBFDProfile, res.BFDProfiles, func(p *v1beta1.BFDProfile) *metav1.ObjectMeta { return &p.ObjectMeta })
	communityObjs := admit(b, KindCommunity, res.Communities, func(p *v1beta1.Community) *metav1.ObjectMeta { return &p.ObjectMeta })

	b.buildBFDProfiles(bfdObjs)
	b.buildCommunities(communityObjs)
	b.buildPools(res.Namespaces)
	b.buildPeers(peerObjs)
	b.buildBGPAdvs(bgpAdvObjs)
	b.buildL2Advs(l2AdvObjs)
	return b
}
