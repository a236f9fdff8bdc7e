package config

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
)

// Every rule has a rejected example and an accepted neighbour: the smallest
// change that makes the configuration valid. Messages are compared exactly:
// they are what users read from kubectl, and each must name the object, the
// field and any conflicting object.

type ruleCase struct {
	res      Resources
	opts     *Options // nil: frr backend in metallb-system
	errors   []string // every error's Error(), in Build's order
	warnings []string // every warning's Error(), in Build's order
}

type rule struct {
	name               string
	rejected, accepted ruleCase
}

func (c ruleCase) check(t *testing.T, wantErrors bool) {
	t.Helper()
	opts := frrOpts
	if c.opts != nil {
		opts = *c.opts
	}
	r := Build(c.res, opts)
	if wantErrors && len(c.errors) == 0 {
		t.Fatal("test case lists no expected error")
	}
	if !wantErrors && len(c.errors) > 0 {
		t.Fatal("accepted case lists errors")
	}
	if got := problemStrings(r.Errors); !slices.Equal(got, c.errors) {
		t.Errorf("errors:\n got %s\nwant %s", quoteLines(got), quoteLines(c.errors))
	}
	if got := problemStrings(r.Warnings); !slices.Equal(got, c.warnings) {
		t.Errorf("warnings:\n got %s\nwant %s", quoteLines(got), quoteLines(c.warnings))
	}
	checkConfigPresence(t, r)
}

// checkConfigPresence checks when Build returns a Config: always without
// errors, never with an error outside a BGPPeer, and with the BGPPeers at
// fault left out when every error is theirs.
func checkConfigPresence(t *testing.T, r Result) {
	t.Helper()
	var atFault []string
	peersOnly := true
	for _, p := range r.Errors {
		atFault = append(atFault, p.Object.Name)
		peersOnly = peersOnly && p.Object.Kind == KindBGPPeer
	}
	slices.Sort(atFault)
	atFault = slices.Compact(atFault)
	switch {
	case len(r.Errors) == 0 && (r.Config == nil || len(r.DisabledPeers) > 0):
		t.Fatalf("no errors, but Config %v and disabled peers %v", r.Config != nil, r.DisabledPeers)
	case len(r.Errors) > 0 && !peersOnly && (r.Config != nil || len(r.DisabledPeers) > 0):
		t.Fatalf("errors beyond BGPPeers, but Config %v and disabled peers %v", r.Config != nil, r.DisabledPeers)
	case len(r.Errors) > 0 && peersOnly:
		if r.Config == nil || !slices.Equal(r.DisabledPeers, atFault) {
			t.Fatalf("every error is a BGPPeer's: want a Config without %v, got Config %v, disabled %v", atFault, r.Config != nil, r.DisabledPeers)
		}
		for _, name := range r.DisabledPeers {
			if _, ok := r.Config.Peers[name]; ok && !slices.Contains(r.RetainedPeers, name) {
				t.Fatalf("disabled peer %q is in the Config", name)
			}
		}
	}
}

func problemStrings(ps []Problem) []string {
	var s []string
	for _, p := range ps {
		s = append(s, p.Error())
	}
	return s
}

func quoteLines(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	q := make([]string, len(s))
	for i, l := range s {
		q[i] = fmt.Sprintf("%q", l)
	}
	return "\n  " + strings.Join(q, "\n  ")
}

func runRules(t *testing.T, rules []rule) {
	t.Helper()
	for _, r := range rules {
		t.Run(r.name+"/rejected", func(t *testing.T) { r.rejected.check(t, true) })
		t.Run(r.name+"/accepted", func(t *testing.T) { r.accepted.check(t, false) })
	}
}

func TestNamespaceRules(t *testing.T) {
	elsewhere := func(m *metav1.ObjectMeta) { m.Namespace = "default" }
	p := pool("a", "203.0.113.0/24")
	elsewhere(&p.ObjectMeta)
	pe := peer("p", "198.18.0.254")
	elsewhere(&pe.ObjectMeta)
	ba := bgpAdv("b")
	elsewhere(&ba.ObjectMeta)
	la := l2Adv("l")
	elsewhere(&la.ObjectMeta)
	bf := bfd("f")
	elsewhere(&bf.ObjectMeta)
	co := community("c", "x", "1:1")
	elsewhere(&co.ObjectMeta)
	unset := pool("u", "198.51.100.0/24")
	unset.Namespace = "" // the API server fills it in; taken as the stack's

	runRules(t, []rule{{
		// MetalLB only reads its own namespace: an object elsewhere would be
		// silently ignored, so it is refused at admission.
		name: "every object in the stack namespace",
		rejected: ruleCase{
			res: Resources{Pools: []v1beta1.IPAddressPool{p}, Peers: []v1beta2.BGPPeer{pe}, BGPAdvs: []v1beta1.BGPAdvertisement{ba},
				L2Advs: []v1beta1.L2Advertisement{la}, BFDProfiles: []v1beta1.BFDProfile{bf}, Communities: []v1beta1.Community{co}},
			errors: []string{
				`ipaddresspool "a": metadata.namespace: ipaddresspool "a" is in namespace "default"; every metallb.io object must be in the stack's namespace "metallb-system"`,
				`bgppeer "p": metadata.namespace: bgppeer "p" is in namespace "default"; every metallb.io object must be in the stack's namespace "metallb-system"`,
				`bfdprofile "f": metadata.namespace: bfdprofile "f" is in namespace "default"; every metallb.io object must be in the stack's namespace "metallb-system"`,
				`community "c": metadata.namespace: community "c" is in namespace "default"; every metallb.io object must be in the stack's namespace "metallb-system"`,
				`bgpadvertisement "b": metadata.namespace: bgpadvertisement "b" is in namespace "default"; every metallb.io object must be in the stack's namespace "metallb-system"`,
				`l2advertisement "l": metadata.namespace: l2advertisement "l" is in namespace "default"; every metallb.io object must be in the stack's namespace "metallb-system"`,
			},
		},
		accepted: ruleCase{res: Resources{Pools: []v1beta1.IPAddressPool{pool("a", "203.0.113.0/24"), unset}}},
	}, {
		name: "names are unique per kind",
		rejected: ruleCase{
			res:    Resources{Pools: []v1beta1.IPAddressPool{pool("a", "203.0.113.0/25"), pool("a", "203.0.113.128/25")}},
			errors: []string{`ipaddresspool "a": metadata.name: another ipaddresspool named "a" was given earlier; names are unique in a namespace`},
		},
		accepted: ruleCase{res: Resources{Pools: []v1beta1.IPAddressPool{pool("a", "203.0.113.0/25"), pool("b", "203.0.113.128/25")}}},
	}})
}

func TestPoolRules(t *testing.T) {
	pools := func(ps ...v1beta1.IPAddressPool) Resources { return Resources{Pools: ps} }
	withAlloc := func(sa v1beta1.ServiceAllocation) func(*v1beta1.IPAddressPool) {
		return func(p *v1beta1.IPAddressPool) { p.Spec.AllocateTo = &sa }
	}
	runRules(t, []rule{{
		// A pool without addresses serves nothing and is always a mistake.
		name: "at least one address",
		rejected: ruleCase{res: pools(pool("a")),
			errors: []string{`ipaddresspool "a": spec.addresses: a pool needs at least one address range`}},
		accepted: ruleCase{res: pools(pool("a", "203.0.113.7/32"))},
	}, {
		// Every entry must parse: the allocator and the speakers only see
		// parsed ranges.
		name: "CIDR prefix length",
		rejected: ruleCase{res: pools(pool("a", "203.0.113.0/33")),
			errors: []string{`ipaddresspool "a": spec.addresses[0]: invalid CIDR "203.0.113.0/33": prefix length out of range`}},
		accepted: ruleCase{res: pools(pool("a", "203.0.113.0/32"))},
	}, {
		// MetalLB parses entries with net.ParseCIDR: a bare address is not
		// one. The message says how to write it.
		name: "a single address is a /32",
		rejected: ruleCase{res: pools(pool("a", "203.0.113.7")),
			errors: []string{`ipaddresspool "a": spec.addresses[0]: invalid entry "203.0.113.7": a single address is written as a prefix (203.0.113.7/32)`}},
		accepted: ruleCase{res: pools(pool("a", "203.0.113.7/32"))},
	}, {
		// An inverted range holds nothing; refusing it catches typos.
		name: "range start not after end",
		rejected: ruleCase{res: pools(pool("a", "203.0.113.9-203.0.113.1")),
			errors: []string{`ipaddresspool "a": spec.addresses[0]: invalid range "203.0.113.9-203.0.113.1": start 203.0.113.9 is after end 203.0.113.1`}},
		accepted: ruleCase{res: pools(pool("a", "203.0.113.9-203.0.113.9"))},
	}, {
		// A range spans one address family; IPv4 and IPv6 both work.
		name: "range of one family",
		rejected: ruleCase{res: pools(pool("a", "203.0.113.1-2001:db8::1")),
			errors: []string{`ipaddresspool "a": spec.addresses[0]: invalid range "203.0.113.1-2001:db8::1": start 203.0.113.1 and end 2001:db8::1 are of different IP families`}},
		accepted: ruleCase{res: pools(pool("a", "2001:db8::1-2001:db8::1:1", "203.0.113.1 - 203.0.113.9"))},
	}, {
		// The family of an IPv4-mapped IPv6 prefix would be ambiguous for
		// the allocator and the speakers.
		name: "no IPv4-mapped IPv6",
		rejected: ruleCase{res: pools(pool("a", "::ffff:203.0.113.0/120")),
			errors: []string{`ipaddresspool "a": spec.addresses[0]: invalid CIDR "::ffff:203.0.113.0/120": IPv4-mapped IPv6 prefix; write it as an IPv4 prefix`}},
		accepted: ruleCase{res: pools(pool("a", "203.0.113.0/24"))},
	}, {
		// MetalLB masks host bits silently; so do we, with a warning saying
		// what the pool holds. The rejected neighbour shows why it matters:
		// the masked prefix is what overlaps.
		name: "host bits are masked",
		rejected: ruleCase{res: pools(pool("a", "203.0.113.0/25"), pool("b", "203.0.113.5/24")),
			errors:   []string{`ipaddresspool "b": spec.addresses[0]: 203.0.113.5/24 overlaps 203.0.113.0/25 of ipaddresspool "a"`},
			warnings: []string{`ipaddresspool "b": spec.addresses[0]: 203.0.113.5/24 has host bits set; the pool holds 203.0.113.0/24`}},
		accepted: ruleCase{res: pools(pool("b", "203.0.113.5/24")),
			warnings: []string{`ipaddresspool "b": spec.addresses[0]: 203.0.113.5/24 has host bits set; the pool holds 203.0.113.0/24`}},
	}, {
		// The message of the issue: both pools, both ranges, on the pool
		// given last (the one under admission).
		name: "no overlap across pools",
		rejected: ruleCase{res: pools(pool("a", "203.0.113.128/25"), pool("b", "203.0.113.0/24")),
			errors: []string{`ipaddresspool "b": spec.addresses[0]: 203.0.113.0/24 overlaps 203.0.113.128/25 of ipaddresspool "a"`}},
		accepted: ruleCase{res: pools(pool("a", "203.0.113.128/25"), pool("b", "203.0.113.0/25"))},
	}, {
		name: "no overlap across pools, range against CIDR, IPv6",
		rejected: ruleCase{res: pools(pool("a", "2001:db8::/120", "203.0.113.0/24"), pool("b", "198.51.100.0/24", "2001:db8::ff-2001:db8::1:0")),
			errors: []string{`ipaddresspool "b": spec.addresses[1]: 2001:db8::ff-2001:db8::1:0 overlaps 2001:db8::/120 of ipaddresspool "a"`}},
		accepted: ruleCase{res: pools(pool("a", "2001:db8::/120", "203.0.113.0/24"), pool("b", "198.51.100.0/24", "2001:db8::100-2001:db8::1:0"))},
	}, {
		// The same address twice in one pool would be counted and handed
		// out twice.
		name: "no overlap within a pool",
		rejected: ruleCase{res: pools(pool("a", "203.0.113.0/24", "203.0.113.128/25")),
			errors: []string{`ipaddresspool "a": spec.addresses[1]: 203.0.113.128/25 overlaps spec.addresses[0] 203.0.113.0/24 of the same pool`}},
		accepted: ruleCase{res: pools(pool("a", "203.0.113.0/25", "203.0.113.128/25"))},
	}, {
		// A large range swallowing several later ones: each is reported
		// (the sweep compares with the range reaching furthest, not just the
		// previous one).
		name: "every range inside a wide one is reported",
		rejected: ruleCase{res: pools(pool("wide", "198.51.100.0/24"), pool("x", "198.51.100.10/32"), pool("y", "198.51.100.200-198.51.100.201")),
			errors: []string{
				`ipaddresspool "x": spec.addresses[0]: 198.51.100.10/32 overlaps 198.51.100.0/24 of ipaddresspool "wide"`,
				`ipaddresspool "y": spec.addresses[0]: 198.51.100.200-198.51.100.201 overlaps 198.51.100.0/24 of ipaddresspool "wide"`,
			}},
		accepted: ruleCase{res: pools(pool("wide", "198.51.100.0/25"), pool("x", "198.51.100.130/32"), pool("y", "198.51.100.200-198.51.100.201"))},
	}, {
		// MetalLB refuses duplicates; a name no namespace can have never
		// matches, so it is a typo.
		name: "serviceAllocation namespaces unique and valid",
		rejected: ruleCase{res: pools(poolWith("a", withAlloc(v1beta1.ServiceAllocation{Namespaces: []string{"web", "db", "web", "Bad_NS"}}), "203.0.113.0/24")),
			errors: []string{
				`ipaddresspool "a": spec.serviceAllocation.namespaces[2]: namespace "web" is listed twice (also spec.serviceAllocation.namespaces[0])`,
				`ipaddresspool "a": spec.serviceAllocation.namespaces[3]: "Bad_NS" is not a valid namespace name: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')`,
			}},
		accepted: ruleCase{res: pools(poolWith("a", withAlloc(v1beta1.ServiceAllocation{Namespaces: []string{"web", "db"}}), "203.0.113.0/24"))},
	}, {
		// MetalLB refuses duplicate selectors (a sign of a copy-paste slip).
		name: "serviceAllocation selectors unique",
		rejected: ruleCase{res: pools(poolWith("a", withAlloc(v1beta1.ServiceAllocation{
			NamespaceSelectors: []metav1.LabelSelector{sel("team", "a"), sel("team", "a")},
			ServiceSelectors:   []metav1.LabelSelector{sel("app", "x"), sel("app", "y"), sel("app", "x")},
		}), "203.0.113.0/24")),
			errors: []string{
				`ipaddresspool "a": spec.serviceAllocation.namespaceSelectors[1]: duplicates spec.serviceAllocation.namespaceSelectors[0] (team=a)`,
				`ipaddresspool "a": spec.serviceAllocation.serviceSelectors[2]: duplicates spec.serviceAllocation.serviceSelectors[0] (app=x)`,
			}},
		accepted: ruleCase{res: pools(poolWith("a", withAlloc(v1beta1.ServiceAllocation{
			NamespaceSelectors: []metav1.LabelSelector{sel("team", "a"), sel("team", "b")},
			ServiceSelectors:   []metav1.LabelSelector{sel("app", "x"), sel("app", "y")},
		}), "203.0.113.0/24"))},
	}, {
		// A selector the API machinery cannot parse would match nothing, or
		// panic later; MetalLB also refuses repeated expression values.
		name: "label selectors valid",
		rejected: ruleCase{res: pools(poolWith("a", withAlloc(v1beta1.ServiceAllocation{
			ServiceSelectors: []metav1.LabelSelector{
				{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near", Values: []string{"x"}}}},
				{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b", "a"}}}},
				{MatchLabels: map[string]string{"bad key!": "x"}},
			},
		}), "203.0.113.0/24")),
			errors: []string{
				`ipaddresspool "a": spec.serviceAllocation.serviceSelectors[0]: invalid label selector: "Near" is not a valid label selector operator`,
				`ipaddresspool "a": spec.serviceAllocation.serviceSelectors[1].matchExpressions[0].values[2]: value "a" is listed twice (also values[0])`,
				`ipaddresspool "a": spec.serviceAllocation.serviceSelectors[2]: invalid label selector: key: Invalid value: "bad key!": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')`,
			}},
		accepted: ruleCase{res: pools(poolWith("a", withAlloc(v1beta1.ServiceAllocation{
			ServiceSelectors: []metav1.LabelSelector{
				{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"x"}}}},
				{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"}}}},
				{MatchLabels: map[string]string{"good-key": "x"}},
			},
		}), "203.0.113.0/24"))},
	}})
}

func TestBGPAdvertisementRules(t *testing.T) {
	p1 := pool("p1", "203.0.113.0/24")
	p6 := pool("p6", "2001:db8::/64")
	res := func(advs ...v1beta1.BGPAdvertisement) Resources {
		return Resources{Pools: []v1beta1.IPAddressPool{p1, p6}, Peers: []v1beta2.BGPPeer{peer("up", "198.18.0.254")}, BGPAdvs: advs}
	}
	aggr := func(v4, v6 int32) func(*v1beta1.BGPAdvertisementSpec) {
		return func(s *v1beta1.BGPAdvertisementSpec) {
			if v4 != 0 {
				s.AggregationLength = &v4
			}
			if v6 != 0 {
				s.AggregationLengthV6 = &v6
			}
		}
	}
	pools := func(names ...string) func(*v1beta1.BGPAdvertisementSpec) {
		return func(s *v1beta1.BGPAdvertisementSpec) { s.IPAddressPools = names }
	}
	communities := func(cs ...string) func(*v1beta1.BGPAdvertisementSpec) {
		return func(s *v1beta1.BGPAdvertisementSpec) { s.Communities = cs }
	}
	peers := func(ps ...string) func(*v1beta1.BGPAdvertisementSpec) {
		return func(s *v1beta1.BGPAdvertisementSpec) { s.Peers = ps }
	}
	localPref := func(v uint32) func(*v1beta1.BGPAdvertisementSpec) {
		return func(s *v1beta1.BGPAdvertisementSpec) { s.LocalPref = v }
	}
	nodeSel := func(kv ...string) func(*v1beta1.BGPAdvertisementSpec) {
		return func(s *v1beta1.BGPAdvertisementSpec) { s.NodeSelectors = append(s.NodeSelectors, sel(kv...)) }
	}
	ibgp := func(s *v1beta2.BGPPeerSpec) { s.ASN = s.MyASN }
	many := func(n int) []string {
		var cs []string
		for i := range n {
			cs = append(cs, fmt.Sprintf("65000:%d", i))
		}
		return cs
	}
	twoIBGP := []v1beta2.BGPPeer{peer("r1", "198.18.0.253", ibgp), peer("r2", "198.18.0.252", ibgp, func(s *v1beta2.BGPPeerSpec) { s.NodeSelectors = []metav1.LabelSelector{sel("rack", "2")} })}
	nodes := []corev1.Node{node("n1", map[string]string{"rack": "1"}), node("n2", map[string]string{"rack": "2"})}

	runRules(t, []rule{{
		// The CRD enforces these ranges; Build checks again because the
		// controller and speakers may be fed objects that skipped the schema.
		name: "aggregationLength range",
		rejected: ruleCase{res: res(bgpAdv("a", aggr(33, 0)), bgpAdv("b", aggr(0, 129)), bgpAdv("c", aggr(-1, 0))),
			errors: []string{
				`bgpadvertisement "a": spec.aggregationLength: aggregationLength 33 is out of range 1..32`,
				`bgpadvertisement "b": spec.aggregationLengthV6: aggregationLengthV6 129 is out of range 1..128`,
				`bgpadvertisement "c": spec.aggregationLength: aggregationLength -1 is out of range 1..32`,
			}},
		accepted: ruleCase{res: res(bgpAdv("a", aggr(32, 0)), bgpAdv("b", aggr(0, 128)), bgpAdv("c", aggr(24, 64), pools("p1", "p6")))},
	}, {
		// MetalLB refuses repeated list entries.
		name: "no duplicate pools, peers or communities",
		rejected: ruleCase{res: res(bgpAdv("a", pools("p1", "p1"), peers("up", "up"), communities("65000:1", "65000:1"))),
			errors: []string{
				`bgpadvertisement "a": spec.communities[1]: community "65000:1" is listed twice (also spec.communities[0])`,
				`bgpadvertisement "a": spec.ipAddressPools[1]: pool "p1" is listed twice (also spec.ipAddressPools[0])`,
				`bgpadvertisement "a": spec.peers[1]: peer "up" is listed twice (also spec.peers[0])`,
			}},
		accepted: ruleCase{res: res(bgpAdv("a", pools("p1", "p6"), peers("up"), communities("65000:1", "65000:2")))},
	}, {
		// A pool, a peer or an alias may come later in the same apply: a
		// warning, never an error. A name that can never be an object's is
		// an error.
		name: "references that may arrive later are warnings",
		rejected: ruleCase{res: res(bgpAdv("a", pools("Not_A_Name"), peers("up"))),
			errors: []string{`bgpadvertisement "a": spec.ipAddressPools[0]: pool name "Not_A_Name" is not a valid object name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`}},
		// "1:2:3" is no community literal (MetalLB reads it as an alias
		// name too).
		accepted: ruleCase{res: res(bgpAdv("a", pools("later"), peers("later-peer"), communities("later-alias", "1:2:3"))),
			warnings: []string{
				`bgpadvertisement "a": spec.communities[0]: community alias "later-alias" is not defined by any Community object (yet); it is not attached until it is`,
				`bgpadvertisement "a": spec.communities[1]: community alias "1:2:3" is not defined by any Community object (yet); it is not attached until it is`,
				`bgpadvertisement "a": spec.ipAddressPools[0]: ipaddresspool "later" does not exist (yet); the advertisement applies to it once it does`,
				`bgpadvertisement "a": spec.peers[0]: bgppeer "later-peer" does not exist (yet); nothing is announced to it until it does`,
			}},
	}, {
		// Standard communities are two 16-bit halves, large ones three
		// 32-bit parts; anything shaped like a literal must be one.
		name: "community literals",
		rejected: ruleCase{res: res(bgpAdv("a", communities("65536:1", "1:-1", "large:1:2", "big:1:2:3", "large:4294967296:0:0"))),
			errors: []string{
				`bgpadvertisement "a": spec.communities[0]: invalid community "65536:1": first part "65536": out of range 0..65535`,
				`bgpadvertisement "a": spec.communities[1]: invalid community "1:-1": second part "-1": not a decimal number`,
				`bgpadvertisement "a": spec.communities[2]: invalid community "large:1:2": expected AA:NN (16-bit numbers) or large:G:L1:L2 (32-bit numbers)`,
				`bgpadvertisement "a": spec.communities[3]: invalid community "big:1:2:3": a large community is written large:<uint32>:<uint32>:<uint32>`,
				`bgpadvertisement "a": spec.communities[4]: invalid community "large:4294967296:0:0": global administrator part "4294967296": out of range 0..4294967295`,
			}},
		accepted: ruleCase{res: res(bgpAdv("a", communities("65535:65535", "0:0", "large:4294967295:0:1")))},
	}, {
		// An alias stands for its value; an alias with an invalid value is
		// reported once, on the Community object.
		name: "community aliases resolve",
		rejected: ruleCase{res: func() Resources {
			r := res(bgpAdv("a", communities("no-advertise", "bad")))
			r.Communities = []v1beta1.Community{community("aliases", "no-advertise", "65535:65282", "bad", "1:2:3")}
			return r
		}(),
			errors: []string{`community "aliases": spec.communities[1].value: alias "bad": invalid community "1:2:3": expected AA:NN (16-bit numbers) or large:G:L1:L2 (32-bit numbers)`}},
		accepted: ruleCase{res: func() Resources {
			r := res(bgpAdv("a", communities("no-advertise", "65535:65282", "large-one")))
			r.Communities = []v1beta1.Community{community("aliases", "no-advertise", "65535:65282", "large-one", "large:1:2:3")}
			return r
		}()},
	}, {
		// The limit of the issue (one path attribute kept small).
		name: "at most 63 communities",
		rejected: ruleCase{res: res(bgpAdv("a", communities(many(64)...))),
			errors: []string{`bgpadvertisement "a": spec.communities: 64 communities; at most 63 are allowed`}},
		accepted: ruleCase{res: res(bgpAdv("a", communities(many(63)...)))},
	}, {
		// An aggregate is shared by every Service in its prefix: it cannot
		// follow a per-Service selection.
		name: "serviceSelectors only with default aggregation",
		rejected: ruleCase{res: res(bgpAdv("a", aggr(24, 0), func(s *v1beta1.BGPAdvertisementSpec) {
			s.ServiceSelectors = []metav1.LabelSelector{sel("app", "web")}
		})),
			errors: []string{`bgpadvertisement "a": spec.serviceSelectors: serviceSelectors can only be used with the default aggregationLength (32) and aggregationLengthV6 (128), not 24 and 128`}},
		accepted: ruleCase{res: res(bgpAdv("a", aggr(32, 128), func(s *v1beta1.BGPAdvertisementSpec) {
			s.ServiceSelectors = []metav1.LabelSelector{sel("app", "web")}
		}))},
	}, {
		// Two LOCAL_PREF values for the same route to the same peer from the
		// same node: the router would see one of them at random.
		name: "localPref conflict",
		rejected: ruleCase{res: Resources{Pools: []v1beta1.IPAddressPool{p1}, Peers: twoIBGP,
			BGPAdvs: []v1beta1.BGPAdvertisement{bgpAdv("low", pools("p1"), localPref(100)), bgpAdv("high", pools("p1"), localPref(200))}},
			errors: []string{`bgpadvertisement "high": spec.localPref: localPref 200 conflicts with localPref 100 of bgpadvertisement "low": both announce ipaddresspool "p1" with the same prefix lengths to the same peers from the same nodes`}},
		accepted: ruleCase{res: Resources{Pools: []v1beta1.IPAddressPool{p1}, Peers: twoIBGP, Nodes: nodes,
			BGPAdvs: []v1beta1.BGPAdvertisement{
				bgpAdv("low", pools("p1"), localPref(100), nodeSel("rack", "1")),
				bgpAdv("high", pools("p1"), localPref(200), nodeSel("rack", "2")),                         // other nodes
				bgpAdv("same", pools("p1"), localPref(100), peers("r2"), nodeSel("rack", "1")),            // same value
				bgpAdv("r1", pools("p1"), localPref(400), peers("r1"), aggr(31, 0), nodeSel("rack", "2")), // other prefix
			}}},
	}, {
		name: "localPref conflict through peers lists",
		rejected: ruleCase{res: Resources{Pools: []v1beta1.IPAddressPool{p1}, Peers: twoIBGP,
			BGPAdvs: []v1beta1.BGPAdvertisement{bgpAdv("a", pools("p1"), localPref(100), peers("r1", "r2")), bgpAdv("b", pools("p1"), localPref(200), peers("r2"))}},
			errors: []string{`bgpadvertisement "b": spec.localPref: localPref 200 conflicts with localPref 100 of bgpadvertisement "a": both announce ipaddresspool "p1" with the same prefix lengths to the same peers from the same nodes`}},
		accepted: ruleCase{res: Resources{Pools: []v1beta1.IPAddressPool{p1}, Peers: twoIBGP,
			BGPAdvs: []v1beta1.BGPAdvertisement{bgpAdv("a", pools("p1"), localPref(100), peers("r1")), bgpAdv("b", pools("p1"), localPref(200), peers("r2"))}}},
	}, {
		// LOCAL_PREF is not sent to eBGP peers: harmless, so a warning.
		name: "localPref to eBGP peers warns",
		rejected: ruleCase{res: res(bgpAdv("a", localPref(100), aggr(33, 0))),
			errors:   []string{`bgpadvertisement "a": spec.aggregationLength: aggregationLength 33 is out of range 1..32`},
			warnings: []string{`bgpadvertisement "a": spec.localPref: localPref 100 is only sent to iBGP peers; bgppeer "up" does not receive it (eBGP)`}},
		accepted: ruleCase{res: Resources{Pools: []v1beta1.IPAddressPool{p1}, Peers: twoIBGP, BGPAdvs: []v1beta1.BGPAdvertisement{bgpAdv("a", localPref(100))}}},
	}})
}

// The aggregation rule departs from MetalLB (bgp-ecmp-bfd/expect.md).
func TestAggregationRules(t *testing.T) {
	adv := func(v4, v6 int32, pools ...string) v1beta1.BGPAdvertisement {
		return bgpAdv("agg", func(s *v1beta1.BGPAdvertisementSpec) {
			s.IPAddressPools = pools
			if v4 != 0 {
				s.AggregationLength = &v4
			}
			if v6 != 0 {
				s.AggregationLengthV6 = &v6
			}
		})
	}
	res := func(a v1beta1.BGPAdvertisement, ps ...v1beta1.IPAddressPool) Resources {
		return Resources{Pools: ps, BGPAdvs: []v1beta1.BGPAdvertisement{a}}
	}
	first := pool("first-pool", "203.0.113.1-203.0.113.254")
	runRules(t, []rule{{
		// MetalLB refuses /24 for .1-.254 (its widest CIDR is /26); the /24
		// works as long as it attracts no other pool's traffic.
		name: "aggregate wider than the entry covers no other pool",
		rejected: ruleCase{res: res(adv(24, 0, "first-pool"), first, pool("edge", "203.0.113.255/32")),
			errors:   []string{`bgpadvertisement "agg": spec.aggregationLength: aggregationLength 24 would announce 203.0.113.0/24 for ipaddresspool "first-pool", which covers 203.0.113.255 of ipaddresspool "edge"; use a longer aggregationLength or keep the pools apart`},
			warnings: []string{`bgpadvertisement "agg": spec.aggregationLength: aggregationLength 24 announces 203.0.113.0/24 for ipaddresspool "first-pool", which also covers 203.0.113.0 and 203.0.113.255 outside the pool`}},
		accepted: ruleCase{res: res(adv(24, 0, "first-pool"), first, pool("next", "203.0.114.0/32")),
			warnings: []string{`bgpadvertisement "agg": spec.aggregationLength: aggregationLength 24 announces 203.0.113.0/24 for ipaddresspool "first-pool", which also covers 203.0.113.0 and 203.0.113.255 outside the pool`}},
	}, {
		name: "IPv6 aggregate covers no other pool",
		rejected: ruleCase{res: res(adv(0, 120, "v6"), pool("v6", "2001:db8::10-2001:db8::7f", "2001:db8::1:0/124"), pool("other", "2001:db8::80/125")),
			errors:   []string{`bgpadvertisement "agg": spec.aggregationLengthV6: aggregationLengthV6 120 would announce 2001:db8::/120 for ipaddresspool "v6", which covers 2001:db8::80-2001:db8::87 of ipaddresspool "other"; use a longer aggregationLengthV6 or keep the pools apart`},
			warnings: []string{`bgpadvertisement "agg": spec.aggregationLengthV6: aggregationLengthV6 120 announces 2001:db8::/120 and 2001:db8::1:0/120 for ipaddresspool "v6", which also cover 2001:db8::-2001:db8::f, 2001:db8::80-2001:db8::ff and 2001:db8::1:10-2001:db8::1:ff outside the pool`}},
		accepted: ruleCase{res: res(adv(0, 121, "v6"), pool("v6", "2001:db8::10-2001:db8::7f", "2001:db8::1:0/124"), pool("other", "2001:db8::80/125")),
			warnings: []string{`bgpadvertisement "agg": spec.aggregationLengthV6: aggregationLengthV6 121 announces 2001:db8::/121 and 2001:db8::1:0/121 for ipaddresspool "v6", which also cover 2001:db8::-2001:db8::f and 2001:db8::1:10-2001:db8::1:7f outside the pool`}},
	}, {
		// Where MetalLB accepts the length (no CIDR of the entry is wider),
		// lbstack accepts it too, even if it covers another pool: the other
		// pool's own longer routes win. Refusing would break configurations
		// that work with MetalLB.
		name: "MetalLB-compatible aggregate stays accepted",
		rejected: ruleCase{res: res(adv(25, 0, "first-pool"), first, pool("edge", "203.0.113.0/32")),
			errors:   []string{`bgpadvertisement "agg": spec.aggregationLength: aggregationLength 25 would announce 203.0.113.0/25 for ipaddresspool "first-pool", which covers 203.0.113.0 of ipaddresspool "edge"; use a longer aggregationLength or keep the pools apart`},
			warnings: []string{`bgpadvertisement "agg": spec.aggregationLength: aggregationLength 25 announces 203.0.113.0/25 and 203.0.113.128/25 for ipaddresspool "first-pool", which also cover 203.0.113.0 and 203.0.113.255 outside the pool`}},
		accepted: ruleCase{res: res(adv(26, 0, "first-pool"), first, pool("edge", "203.0.113.0/32")),
			warnings: []string{
				`bgpadvertisement "agg": spec.aggregationLength: aggregationLength 26 announces 203.0.113.0/26 and 203.0.113.192/26 for ipaddresspool "first-pool", which also cover 203.0.113.0 and 203.0.113.255 outside the pool`,
				`bgpadvertisement "agg": spec.aggregationLength: aggregationLength 26 announces 203.0.113.0/26 for ipaddresspool "first-pool", which covers 203.0.113.0 of ipaddresspool "edge"; accepted as MetalLB does (no CIDR of the pool entry is wider than /26), and ipaddresspool "edge"'s own more specific routes win`,
			}},
	}, {
		// A pool whose CIDRs are at least as wide as the aggregate: nothing
		// beyond the pool is announced, nothing to say.
		name: "aggregate inside the pool is silent",
		rejected: ruleCase{res: res(adv(23, 0, "wide"), pool("wide", "198.51.100.0/24"), pool("next", "198.51.101.0/24")),
			errors:   []string{`bgpadvertisement "agg": spec.aggregationLength: aggregationLength 23 would announce 198.51.100.0/23 for ipaddresspool "wide", which covers 198.51.101.0-198.51.101.255 of ipaddresspool "next"; use a longer aggregationLength or keep the pools apart`},
			warnings: []string{`bgpadvertisement "agg": spec.aggregationLength: aggregationLength 23 announces 198.51.100.0/23 for ipaddresspool "wide", which also covers 198.51.101.0-198.51.101.255 outside the pool`}},
		accepted: ruleCase{res: res(adv(24, 0, "wide"), pool("wide", "198.51.100.0/24"), pool("next", "198.51.101.0/24"))},
	}})
}

func TestBGPPeerRules(t *testing.T) {
	peers := func(ps ...v1beta2.BGPPeer) Resources { return Resources{Peers: ps} }
	native := &nativeOpts
	spec := func(f func(*v1beta2.BGPPeerSpec)) func(*v1beta2.BGPPeerSpec) { return f }
	basicAuth := secret("bgp-pass", corev1.SecretTypeBasicAuth, map[string]string{"password": "s3cret"})
	withSecret := spec(func(s *v1beta2.BGPPeerSpec) { s.PasswordSecret = corev1.SecretReference{Name: "bgp-pass"} })
	onRack := func(r string) func(*v1beta2.BGPPeerSpec) {
		return func(s *v1beta2.BGPPeerSpec) { s.NodeSelectors = []metav1.LabelSelector{sel("rack", r)} }
	}
	nodes := []corev1.Node{node("n1", map[string]string{"rack": "1"}), node("n2", map[string]string{"rack": "2"})}

	runRules(t, []rule{{
		// The speaker's AS cannot be guessed.
		name:     "myASN required",
		rejected: ruleCase{res: peers(peer("p", "198.18.0.254", spec(func(s *v1beta2.BGPPeerSpec) { s.MyASN = 0 }))), errors: []string{`bgppeer "p": spec.myASN: myASN is required (the speaker's AS number, 1..4294967295)`}},
		accepted: ruleCase{res: peers(peer("p", "198.18.0.254"))},
	}, {
		// The peer's AS is either configured or learned, not both.
		name: "exactly one of peerASN and dynamicASN",
		rejected: ruleCase{res: peers(
			peer("both", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.DynamicASN = v1beta2.ExternalASNMode })),
			peer("none", "198.18.0.2", spec(func(s *v1beta2.BGPPeerSpec) { s.ASN = 0 })),
			peer("odd", "198.18.0.3", spec(func(s *v1beta2.BGPPeerSpec) { s.ASN = 0; s.DynamicASN = "sometimes" })),
		), errors: []string{
			`bgppeer "both": spec.dynamicASN: set peerASN or dynamicASN, not both (peerASN is 65000)`,
			`bgppeer "none": spec.peerASN: one of peerASN and dynamicASN is required`,
			`bgppeer "odd": spec.dynamicASN: dynamicASN "sometimes" is neither "internal" nor "external"`,
		}},
		accepted: ruleCase{res: peers(
			peer("dyn", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.ASN = 0; s.DynamicASN = v1beta2.ExternalASNMode })),
			peer("static", "198.18.0.2"),
		)},
	}, {
		// A session goes to an address or over an interface (unnumbered).
		name: "exactly one of peerAddress and interface",
		rejected: ruleCase{res: peers(
			peer("both", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.Interface = "eth1" })),
			peer("none", ""),
		), errors: []string{
			`bgppeer "both": spec.interface: set peerAddress or interface, not both (peerAddress is "198.18.0.1")`,
			`bgppeer "none": spec.peerAddress: one of peerAddress and interface is required`,
		}},
		accepted: ruleCase{res: peers(
			peer("addr", "198.18.0.1"),
			peer("unnumbered", "", spec(func(s *v1beta2.BGPPeerSpec) { s.Interface = "eth1" })),
		)},
	}, {
		// Addresses must parse; a source address of the other family can
		// never open the session; a BGP identifier is 32 bits.
		name: "valid addresses",
		rejected: ruleCase{res: peers(
			peer("bad-peer", "198.18.0.256"),
			peer("bad-src", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.SrcAddress = "198.18.0" })),
			peer("src-family", "198.18.0.2", spec(func(s *v1beta2.BGPPeerSpec) { s.SrcAddress = "2001:db8::1" })),
			peer("rid-v6", "198.18.0.3", spec(func(s *v1beta2.BGPPeerSpec) { s.RouterID = "2001:db8::1" })),
			peer("zone", "fe80::1%eth0"),
		), errors: []string{
			`bgppeer "bad-peer": spec.peerAddress: invalid peerAddress: "198.18.0.256" is not an IP address`,
			`bgppeer "bad-src": spec.sourceAddress: invalid sourceAddress: "198.18.0" is not an IP address`,
			`bgppeer "rid-v6": spec.routerID: routerID "2001:db8::1" must be an IPv4 address (the BGP identifier is 32 bits)`,
			`bgppeer "src-family": spec.sourceAddress: sourceAddress 2001:db8::1 and peerAddress 198.18.0.2 are of different IP families`,
			`bgppeer "zone": spec.peerAddress: invalid peerAddress: "fe80::1%eth0" has a zone, which is not allowed here`,
		}},
		accepted: ruleCase{res: peers(
			peer("v4", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.SrcAddress = "198.18.0.10"; s.RouterID = "198.18.0.10" })),
			peer("v6", "2001:db8::1", spec(func(s *v1beta2.BGPPeerSpec) { s.SrcAddress = "2001:db8::10"; s.RouterID = "198.18.0.10" })),
		)},
	}, {
		// Multihop is an eBGP setting (iBGP is multihop by nature), as in
		// MetalLB.
		name: "ebgpMultiHop only on eBGP",
		rejected: ruleCase{res: peers(
			peer("ibgp", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.ASN = s.MyASN; s.EBGPMultiHop = true })),
			peer("dyn-internal", "198.18.0.2", spec(func(s *v1beta2.BGPPeerSpec) {
				s.ASN = 0
				s.DynamicASN = v1beta2.InternalASNMode
				s.EBGPMultiHop = true
			})),
		), errors: []string{
			`bgppeer "dyn-internal": spec.ebgpMultiHop: ebgpMultiHop applies to eBGP sessions only, and this session is iBGP (dynamicASN is internal)`,
			`bgppeer "ibgp": spec.ebgpMultiHop: ebgpMultiHop applies to eBGP sessions only, and this session is iBGP (peerASN 65001 equals myASN)`,
		}},
		accepted: ruleCase{res: peers(
			peer("ebgp", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.EBGPMultiHop = true })),
			peer("dyn-external", "198.18.0.2", spec(func(s *v1beta2.BGPPeerSpec) {
				s.ASN = 0
				s.DynamicASN = v1beta2.ExternalASNMode
				s.EBGPMultiHop = true
			})),
		)},
	}, {
		// RFC 4271: hold time 0 or at least 3s, at most 65535s; keepalives
		// below the hold time (none when it is 0). Missing ones are derived
		// like MetalLB (hold/3, 3×keepalive).
		name: "hold and keepalive times",
		rejected: ruleCase{res: peers(
			peer("short-hold", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.HoldTime = dur(2 * time.Second) })),
			peer("keep-ge-hold", "198.18.0.2", spec(func(s *v1beta2.BGPPeerSpec) {
				s.HoldTime = dur(9 * time.Second)
				s.KeepaliveTime = dur(9 * time.Second)
			})),
			peer("keep-no-hold", "198.18.0.3", spec(func(s *v1beta2.BGPPeerSpec) {
				s.HoldTime = dur(0)
				s.KeepaliveTime = dur(10 * time.Second)
			})),
			peer("short-keep", "198.18.0.4", spec(func(s *v1beta2.BGPPeerSpec) { s.KeepaliveTime = dur(500 * time.Millisecond) })),
			peer("long-hold", "198.18.0.5", spec(func(s *v1beta2.BGPPeerSpec) { s.HoldTime = dur(70000 * time.Second) })),
		), errors: []string{
			`bgppeer "keep-ge-hold": spec.keepaliveTime: keepaliveTime 9s must be lower than holdTime 9s`,
			`bgppeer "keep-no-hold": spec.keepaliveTime: keepaliveTime 10s must be 0 when holdTime is 0 (a zero hold time turns keepalives off)`,
			`bgppeer "long-hold": spec.holdTime: holdTime 19h26m40s is above the BGP maximum of 65535s`,
			`bgppeer "short-hold": spec.holdTime: holdTime 2s must be 0 or at least 3s`,
			`bgppeer "short-keep": spec.keepaliveTime: keepaliveTime 500ms implies a holdTime of 1.5s, which must be 0 or at least 3s`,
		}},
		accepted: ruleCase{res: peers(
			peer("hold-3s", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.HoldTime = dur(3 * time.Second) })),
			peer("keep-lt-hold", "198.18.0.2", spec(func(s *v1beta2.BGPPeerSpec) {
				s.HoldTime = dur(9 * time.Second)
				s.KeepaliveTime = dur(8 * time.Second)
			})),
			peer("hold-0", "198.18.0.3", spec(func(s *v1beta2.BGPPeerSpec) { s.HoldTime = dur(0) })),
			peer("keep-1s", "198.18.0.4", spec(func(s *v1beta2.BGPPeerSpec) { s.KeepaliveTime = dur(time.Second) })),
			peer("hold-max", "198.18.0.5", spec(func(s *v1beta2.BGPPeerSpec) { s.HoldTime = dur(65535 * time.Second) })),
		)},
	}, {
		// GoBGP reads a zero hold time as its 90 s default: only FRR can
		// turn keepalives off.
		name: "holdTime 0 needs the FRR backend",
		rejected: ruleCase{opts: native, res: peers(peer("p", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.HoldTime = dur(0) }))),
			errors: []string{`bgppeer "p": spec.holdTime: a holdTime of 0 (keepalives off) is not supported with bgpBackend native; use bgpBackend frr`}},
		accepted: ruleCase{res: peers(peer("p", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.HoldTime = dur(0) })))},
	}, {
		// FRR and GoBGP take the connect retry in whole seconds.
		name: "connectTime whole seconds 1..65535",
		rejected: ruleCase{res: peers(peer("p", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.ConnectTime = dur(1500 * time.Millisecond) }))),
			errors: []string{`bgppeer "p": spec.connectTime: connectTime 1.5s must be whole seconds between 1s and 65535s`}},
		accepted: ruleCase{res: peers(peer("p", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.ConnectTime = dur(2 * time.Second) })))},
	}, {
		// One password source; a password that cannot be a TCP MD5 key or
		// would break the rendered FRR configuration is refused.
		name: "password or passwordSecret",
		rejected: ruleCase{res: Resources{Secrets: []corev1.Secret{basicAuth}, Peers: []v1beta2.BGPPeer{
			peer("both", "198.18.0.1", withSecret, spec(func(s *v1beta2.BGPPeerSpec) { s.Password = "x" })),
			peer("newline", "198.18.0.2", spec(func(s *v1beta2.BGPPeerSpec) { s.Password = "a\nneighbor 6.6.6.6 remote-as 1" })),
			peer("long", "198.18.0.3", spec(func(s *v1beta2.BGPPeerSpec) { s.Password = strings.Repeat("x", 81) })),
			peer("binary", "198.18.0.4", spec(func(s *v1beta2.BGPPeerSpec) { s.Password = "\xff\xfe" })),
		}}, errors: []string{
			`bgppeer "binary": spec.password: password is not valid UTF-8`,
			`bgppeer "both": spec.passwordSecret: set password or passwordSecret, not both`,
			`bgppeer "long": spec.password: password is 81 bytes long; TCP MD5 keys are at most 80 bytes`,
			`bgppeer "newline": spec.password: password contains the control character '\n'`,
		}},
		accepted: ruleCase{res: Resources{Secrets: []corev1.Secret{basicAuth}, Peers: []v1beta2.BGPPeer{
			peer("secret", "198.18.0.1", withSecret),
			peer("clear", "198.18.0.2", spec(func(s *v1beta2.BGPPeerSpec) { s.Password = `!any#"printable'\` + strings.Repeat("x", 63) })),
		}}},
	}, {
		// FRR's `neighbor X password WORD` takes one word; GoBGP installs
		// any key. The same check the FRR renderer makes, at admission, so
		// a peer FRR cannot configure never reaches a node; a Secret's
		// value (which no webhook sees) too.
		name: "password with whitespace needs the native backend",
		rejected: ruleCase{res: Resources{Secrets: []corev1.Secret{secret("spaced", corev1.SecretTypeBasicAuth, map[string]string{"password": "two words"})}, Peers: []v1beta2.BGPPeer{
			peer("inline", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.Password = "two words" })),
			peer("fromsecret", "198.18.0.2", spec(func(s *v1beta2.BGPPeerSpec) { s.PasswordSecret = corev1.SecretReference{Name: "spaced"} })),
		}}, errors: []string{
			"bgppeer \"fromsecret\": spec.passwordSecret: the password in secret \"spaced\" contains whitespace, which FRR's `neighbor password` cannot express (one word only)",
			"bgppeer \"inline\": spec.password: password contains whitespace, which FRR's `neighbor password` cannot express (one word only)",
		}},
		accepted: ruleCase{opts: native, res: Resources{Secrets: []corev1.Secret{secret("spaced", corev1.SecretTypeBasicAuth, map[string]string{"password": "two words"})}, Peers: []v1beta2.BGPPeer{
			peer("inline", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.Password = "two words" })),
			peer("fromsecret", "198.18.0.2", spec(func(s *v1beta2.BGPPeerSpec) { s.PasswordSecret = corev1.SecretReference{Name: "spaced"} })),
		}}},
	}, {
		// A VRF is a device FRR names in `router bgp ASN vrf NAME`.
		name: "vrf names FRR and Linux accept",
		rejected: ruleCase{res: peers(
			peer("dflt", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.VRFName = "default" })),
			peer("colon", "198.18.0.2", spec(func(s *v1beta2.BGPPeerSpec) { s.VRFName = "red:1" })),
		), errors: []string{
			`bgppeer "colon": spec.vrf: invalid vrf: "red:1" contains ':', which device names cannot`,
			`bgppeer "dflt": spec.vrf: invalid vrf: "default" is FRR's and iproute2's name for the default VRF; leave vrf empty for the default VRF`,
		}},
		accepted: ruleCase{res: peers(peer("red", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.VRFName = "red-1.a_b" })))},
	}, {
		// A missing Secret may come later in the same apply; a Secret of
		// the wrong shape is a mistake.
		name: "passwordSecret type and key",
		rejected: ruleCase{res: Resources{Peers: []v1beta2.BGPPeer{peer("p", "198.18.0.1", withSecret), peer("q", "198.18.0.2", spec(func(s *v1beta2.BGPPeerSpec) {
			s.PasswordSecret = corev1.SecretReference{Name: "no-key"}
		})), peer("r", "198.18.0.3", spec(func(s *v1beta2.BGPPeerSpec) {
			s.PasswordSecret = corev1.SecretReference{Name: "bgp-pass", Namespace: "default"}
		}))}, Secrets: []corev1.Secret{
			secret("bgp-pass", corev1.SecretTypeOpaque, map[string]string{"password": "x"}),
			secret("no-key", corev1.SecretTypeBasicAuth, map[string]string{"username": "x"}),
		}}, errors: []string{
			`bgppeer "p": spec.passwordSecret: secret "bgp-pass" is of type "Opaque"; a BGP password secret must be of type "kubernetes.io/basic-auth"`,
			`bgppeer "q": spec.passwordSecret: secret "no-key" has no "password" key`,
			`bgppeer "r": spec.passwordSecret.namespace: passwordSecret is in namespace "default"; password secrets must be in the stack's namespace "metallb-system"`,
		}},
		accepted: ruleCase{res: Resources{Peers: []v1beta2.BGPPeer{peer("p", "198.18.0.1", withSecret), peer("q", "198.18.0.2", spec(func(s *v1beta2.BGPPeerSpec) {
			s.PasswordSecret = corev1.SecretReference{Name: "later"}
		}))}, Secrets: []corev1.Secret{basicAuth}},
			warnings: []string{`bgppeer "q": spec.passwordSecret: secret "later" does not exist (yet); the session waits for its password`}},
	}, {
		name: "bfdProfile may arrive later",
		rejected: ruleCase{res: peers(peer("p", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.BFDProfile = "Not A Name" }))),
			errors: []string{`bgppeer "p": spec.bfdProfile: bfdProfile "Not A Name" is not a valid object name: a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')`}},
		accepted: ruleCase{res: peers(peer("p", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.BFDProfile = "later" }))),
			warnings: []string{`bgppeer "p": spec.bfdProfile: bfdprofile "later" does not exist (yet); the session runs without BFD until it does`}},
	}, {
		// Two peers for the same session on one node: the speaker can open
		// only one.
		name: "no duplicate sessions",
		rejected: ruleCase{res: Resources{Nodes: nodes, Peers: []v1beta2.BGPPeer{
			peer("a", "198.18.0.254"), peer("b", "198.18.0.254", onRack("2")),
			peer("c", "", spec(func(s *v1beta2.BGPPeerSpec) { s.Interface = "eth1" })),
			peer("d", "", spec(func(s *v1beta2.BGPPeerSpec) { s.Interface = "eth1" })),
		}}, errors: []string{
			`bgppeer "b": spec.peerAddress: same BGP session (address 198.18.0.254, port 179, VRF default) as bgppeer "a" on nodes both select`,
			`bgppeer "d": spec.interface: same BGP session (interface eth1, VRF default) as bgppeer "c" on nodes both select`,
		}},
		accepted: ruleCase{res: Resources{Nodes: nodes, Peers: []v1beta2.BGPPeer{
			peer("a", "198.18.0.254", onRack("1")), peer("b", "198.18.0.254", onRack("2")),
			peer("c", "198.18.0.254", spec(func(s *v1beta2.BGPPeerSpec) { s.Port = ptr[uint16](1179) })),
			peer("d", "198.18.0.254", spec(func(s *v1beta2.BGPPeerSpec) { s.VRFName = "red" })),
		}}},
	}, {
		// FRR has one BGP instance per VRF with one AS and one router ID.
		name: "frr: one AS and router ID per VRF and node",
		rejected: ruleCase{res: peers(
			peer("a", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.RouterID = "198.18.0.10" })),
			peer("b", "198.18.0.2", spec(func(s *v1beta2.BGPPeerSpec) { s.MyASN = 65002; s.RouterID = "198.18.0.10" })),
			peer("c", "198.18.0.3", spec(func(s *v1beta2.BGPPeerSpec) { s.RouterID = "198.18.0.11" })),
		), errors: []string{
			`bgppeer "b": spec.myASN: myASN 65002 differs from myASN 65001 of bgppeer "a"; with bgpBackend frr, peers in the same VRF (default) on the same node share one BGP instance and its AS`,
			`bgppeer "c": spec.routerID: routerID 198.18.0.11 differs from routerID 198.18.0.10 of bgppeer "a"; with bgpBackend frr, peers in the same VRF (default) on the same node share one BGP instance and its router ID`,
		}},
		accepted: ruleCase{res: Resources{Nodes: nodes, Peers: []v1beta2.BGPPeer{
			peer("a", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.RouterID = "198.18.0.10" })),
			peer("b", "198.18.0.2", spec(func(s *v1beta2.BGPPeerSpec) { s.MyASN = 65002; s.VRFName = "red" })),
			peer("c", "198.18.0.3", onRack("1"), spec(func(s *v1beta2.BGPPeerSpec) { s.RouterID = "198.18.0.10" })),
			peer("d", "198.18.0.3", onRack("2"), spec(func(s *v1beta2.BGPPeerSpec) { s.RouterID = "198.18.0.10"; s.LocalASN = 64999 })),
		}}},
	}, {
		// FRR rejects "local-as" equal to its own AS; GoBGP does not mind.
		name: "frr refuses localASN equal to myASN",
		rejected: ruleCase{res: peers(peer("p", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.LocalASN = s.MyASN }))),
			errors: []string{`bgppeer "p": spec.localASN: localASN 65001 equals myASN; FRR refuses a local-as equal to its own AS: leave localASN unset`}},
		accepted: ruleCase{res: peers(peer("p", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.LocalASN = s.MyASN })))}.withOpts(native),
	}, {
		// Both end up as Linux device names and in FRR's configuration text.
		name: "interface and vrf are device names",
		rejected: ruleCase{res: peers(
			peer("a", "", spec(func(s *v1beta2.BGPPeerSpec) { s.Interface = "eth0\nrouter bgp 1" })),
			peer("b", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.VRFName = "a-vrf-name-too-long" })),
		), errors: []string{
			`bgppeer "a": spec.interface: invalid interface: "eth0\nrouter bgp 1" contains '\n', which device names cannot`,
			`bgppeer "b": spec.vrf: invalid vrf: "a-vrf-name-too-long" is longer than 15 bytes, the Linux limit for device names`,
		}},
		accepted: ruleCase{res: peers(
			peer("a", "", spec(func(s *v1beta2.BGPPeerSpec) { s.Interface = "eth0.100" })),
			peer("b", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.VRFName = "ens4vrf" })),
		)},
	}, {
		// GoBGP has no BFD, no unnumbered peering and no dynamic peer AS;
		// everything else it can do is accepted in native mode.
		name: "native backend capabilities",
		rejected: ruleCase{opts: native, res: peers(
			peer("bfd", "198.18.0.1", spec(func(s *v1beta2.BGPPeerSpec) { s.BFDProfile = "fast" })),
			peer("unnumbered", "", spec(func(s *v1beta2.BGPPeerSpec) { s.Interface = "eth1" })),
			peer("dynamic", "198.18.0.3", spec(func(s *v1beta2.BGPPeerSpec) { s.ASN = 0; s.DynamicASN = v1beta2.ExternalASNMode })),
		), errors: []string{
			`bgppeer "bfd": spec.bfdProfile: BFD (bfdProfile) is not supported with bgpBackend native; use bgpBackend frr`,
			`bgppeer "dynamic": spec.dynamicASN: dynamicASN is not supported with bgpBackend native; use bgpBackend frr`,
			`bgppeer "unnumbered": spec.interface: unnumbered peering (interface) is not supported with bgpBackend native; use bgpBackend frr`,
		}},
		accepted: ruleCase{opts: native, res: Resources{Secrets: []corev1.Secret{basicAuth}, Peers: []v1beta2.BGPPeer{
			peer("everything", "198.18.0.1", withSecret, spec(func(s *v1beta2.BGPPeerSpec) {
				s.LocalASN = 64999
				s.EBGPMultiHop = true
				s.EnableGracefulRestart = true
				s.VRFName = "red"
				s.DualStackAddressFamily = true
				s.HoldTime = dur(30 * time.Second)
				s.KeepaliveTime = dur(10 * time.Second)
				s.ConnectTime = dur(5 * time.Second)
				s.RouterID = "198.18.0.10"
				s.SrcAddress = "198.18.0.10"
			})),
			// Different ASes and router IDs on one node: GoBGP's per-peer
			// local AS and one server per VRF/router ID handle it.
			peer("other-as", "198.18.0.2", spec(func(s *v1beta2.BGPPeerSpec) { s.MyASN = 65002; s.Password = "x" })),
		}, BFDProfiles: []v1beta1.BFDProfile{bfd("unused")}}},
	}})
}

func TestBFDProfileRules(t *testing.T) {
	echo := func(s *v1beta1.BFDProfileSpec) { s.EchoMode = ptr(true) }
	withBFD := func(name string) func(*v1beta2.BGPPeerSpec) {
		return func(s *v1beta2.BGPPeerSpec) { s.BFDProfile = name }
	}
	runRules(t, []rule{{
		// FRR's ranges; values outside them make bfdd refuse the profile.
		name: "ranges",
		rejected: ruleCase{res: Resources{BFDProfiles: []v1beta1.BFDProfile{bfd("p", func(s *v1beta1.BFDProfileSpec) {
			s.ReceiveInterval = ptr[uint32](9)
			s.TransmitInterval = ptr[uint32](60001)
			s.EchoInterval = ptr[uint32](5)
			s.DetectMultiplier = ptr[uint32](1)
			s.MinimumTTL = ptr[uint32](255)
		})}}, errors: []string{
			`bfdprofile "p": spec.detectMultiplier: detectMultiplier 1 is out of range 2..255`,
			`bfdprofile "p": spec.echoInterval: echoInterval 5 ms is out of range 10..60000`,
			`bfdprofile "p": spec.minimumTtl: minimumTtl 255 is out of range 1..254`,
			`bfdprofile "p": spec.receiveInterval: receiveInterval 9 ms is out of range 10..60000`,
			`bfdprofile "p": spec.transmitInterval: transmitInterval 60001 ms is out of range 10..60000`,
		}},
		accepted: ruleCase{res: Resources{BFDProfiles: []v1beta1.BFDProfile{bfd("p", func(s *v1beta1.BFDProfileSpec) {
			s.ReceiveInterval = ptr[uint32](10)
			s.TransmitInterval = ptr[uint32](60000)
			s.EchoInterval = ptr[uint32](10)
			s.DetectMultiplier = ptr[uint32](255)
			s.MinimumTTL = ptr[uint32](1)
		})}}},
	}, {
		// Peers name profiles; two profiles of one name are ambiguous.
		name: "unique names",
		rejected: ruleCase{res: Resources{BFDProfiles: []v1beta1.BFDProfile{bfd("p"), bfd("p")}},
			errors: []string{`bfdprofile "p": metadata.name: another bfdprofile named "p" was given earlier; names are unique in a namespace`}},
		accepted: ruleCase{res: Resources{BFDProfiles: []v1beta1.BFDProfile{bfd("p"), bfd("q")}}},
	}, {
		// FRR runs BFD echo over IPv4 only.
		name: "echo mode is IPv4 only",
		rejected: ruleCase{res: Resources{
			BFDProfiles: []v1beta1.BFDProfile{bfd("echo", echo)},
			Pools:       []v1beta1.IPAddressPool{pool("v4", "203.0.113.0/24"), pool("v6", "2001:db8::/64")},
			Peers: []v1beta2.BGPPeer{
				peer("v4-peer", "198.18.0.1", withBFD("echo")),
				peer("v6-peer", "2001:db8:1::1", withBFD("echo")),
				peer("unnumbered", "", withBFD("echo"), func(s *v1beta2.BGPPeerSpec) { s.Interface = "eth1" }),
			},
			BGPAdvs: []v1beta1.BGPAdvertisement{bgpAdv("all")},
		}, errors: []string{
			`bgppeer "unnumbered": spec.bfdProfile: bfdprofile "echo" has echoMode on, which works over IPv4 only, and this peer is unnumbered (interface eth1, IPv6 link-local)`,
			`bgppeer "v4-peer": spec.bfdProfile: bfdprofile "echo" has echoMode on, which works over IPv4 only, and bgpadvertisement "all" announces IPv6 ipaddresspool "v6" to this peer`,
			`bgppeer "v6-peer": spec.bfdProfile: bfdprofile "echo" has echoMode on, which works over IPv4 only, and peerAddress 2001:db8:1::1 is IPv6`,
		}},
		accepted: ruleCase{res: Resources{
			BFDProfiles: []v1beta1.BFDProfile{bfd("echo", echo), bfd("plain")},
			Pools:       []v1beta1.IPAddressPool{pool("v4", "203.0.113.0/24"), pool("v6", "2001:db8::/64")},
			Peers: []v1beta2.BGPPeer{
				peer("v4-peer", "198.18.0.1", withBFD("echo")),
				peer("v6-peer", "2001:db8:1::1", withBFD("plain")),
			},
			BGPAdvs: []v1beta1.BGPAdvertisement{
				bgpAdv("v4", func(s *v1beta1.BGPAdvertisementSpec) { s.IPAddressPools = []string{"v4"} }),
				bgpAdv("v6", func(s *v1beta1.BGPAdvertisementSpec) {
					s.IPAddressPools = []string{"v6"}
					s.Peers = []string{"v6-peer"}
				}),
			},
		}},
	}})
}

func TestCheckDelete(t *testing.T) {
	res := Resources{
		BFDProfiles: []v1beta1.BFDProfile{bfd("fast"), bfd("idle")},
		Peers: []v1beta2.BGPPeer{
			peer("b", "198.18.0.2", func(s *v1beta2.BGPPeerSpec) { s.BFDProfile = "fast" }),
			peer("a", "198.18.0.1", func(s *v1beta2.BGPPeerSpec) { s.BFDProfile = "fast" }),
			peer("c", "198.18.0.3"),
		},
	}
	p := CheckDelete(ObjectRef{Kind: KindBFDProfile, Name: "fast"}, res, frrOpts)
	if p == nil {
		t.Fatal("deleting a profile in use was allowed")
	}
	want := `bfdprofile "fast": cannot be deleted while bgppeer "a" and bgppeer "b" use it (spec.bfdProfile); change or delete those peers first`
	if p.Error() != want {
		t.Errorf("got  %q\nwant %q", p.Error(), want)
	}
	if !p.Involves(ObjectRef{Kind: KindBGPPeer, Name: "a"}) || p.Involves(ObjectRef{Kind: KindBGPPeer, Name: "c"}) {
		t.Errorf("related = %v", p.Related)
	}
	// The accepted neighbour: a profile nobody uses, and other kinds.
	if p := CheckDelete(ObjectRef{Kind: KindBFDProfile, Name: "idle"}, res, frrOpts); p != nil {
		t.Errorf("deleting an unused profile refused: %v", p)
	}
	if p := CheckDelete(ObjectRef{Kind: KindBGPPeer, Name: "a"}, res, frrOpts); p != nil {
		t.Errorf("deleting a peer refused: %v", p)
	}
	// One user: singular wording.
	res.Peers = res.Peers[:1]
	p = CheckDelete(ObjectRef{Kind: KindBFDProfile, Name: "fast"}, res, frrOpts)
	want = `bfdprofile "fast": cannot be deleted while bgppeer "b" uses it (spec.bfdProfile); change or delete that peer first`
	if p == nil || p.Error() != want {
		t.Errorf("got %v, want %q", p, want)
	}
}

func TestL2AdvertisementRules(t *testing.T) {
	res := func(advs ...v1beta1.L2Advertisement) Resources {
		return Resources{Pools: []v1beta1.IPAddressPool{pool("l2", "198.18.0.240/28"), pool("other", "198.18.0.224/28")}, L2Advs: advs}
	}
	ifaces := func(names ...string) func(*v1beta1.L2AdvertisementSpec) {
		return func(s *v1beta1.L2AdvertisementSpec) { s.Interfaces = names }
	}
	pools := func(names ...string) func(*v1beta1.L2AdvertisementSpec) {
		return func(s *v1beta1.L2AdvertisementSpec) { s.IPAddressPools = names }
	}
	prefer := func(w int32) func(*v1beta1.L2AdvertisementSpec) {
		return func(s *v1beta1.L2AdvertisementSpec) {
			s.PreferredNodeSelectors = append(s.PreferredNodeSelectors, v1beta1.PreferredNodeSelector{Weight: w, Preference: sel("zone", fmt.Sprint(w))})
		}
	}
	runRules(t, []rule{{
		// Interface names are Linux device names; duplicates are slips.
		name: "interfaces unique and valid",
		rejected: ruleCase{res: res(l2Adv("a", ifaces("eth0", "eth0", "eth0/1", "eth 1", "averyveryverylong0", ""))),
			errors: []string{
				`l2advertisement "a": spec.interfaces[1]: interface "eth0" is listed twice (also spec.interfaces[0])`,
				`l2advertisement "a": spec.interfaces[2]: invalid interface: "eth0/1" contains '/', which device names cannot`,
				`l2advertisement "a": spec.interfaces[3]: invalid interface: "eth 1" contains ' ', which device names cannot`,
				`l2advertisement "a": spec.interfaces[4]: invalid interface: "averyveryverylong0" is longer than 15 bytes, the Linux limit for device names`,
				`l2advertisement "a": spec.interfaces[5]: invalid interface: must not be empty`,
			}},
		accepted: ruleCase{res: res(l2Adv("a", ifaces("eth0", "eth1", "bond0.100", "averyverylong15")))},
	}, {
		// As for BGP advertisements: a pool may come later in the apply.
		name: "pools unique; unknown pools warn",
		rejected: ruleCase{res: res(l2Adv("a", pools("l2", "l2"))),
			errors: []string{`l2advertisement "a": spec.ipAddressPools[1]: pool "l2" is listed twice (also spec.ipAddressPools[0])`}},
		accepted: ruleCase{res: res(l2Adv("a", pools("l2", "later"))),
			warnings: []string{`l2advertisement "a": spec.ipAddressPools[1]: ipaddresspool "later" does not exist (yet); the advertisement applies to it once it does`}},
	}, {
		// The shape of Kubernetes' preferred scheduling terms.
		name: "preferredNodeSelectors weight 1..100",
		rejected: ruleCase{res: res(l2Adv("a", prefer(0), prefer(101))),
			errors: []string{
				`l2advertisement "a": spec.preferredNodeSelectors[0].weight: weight 0 is out of range 1..100`,
				`l2advertisement "a": spec.preferredNodeSelectors[1].weight: weight 101 is out of range 1..100`,
			}},
		accepted: ruleCase{res: res(l2Adv("a", prefer(1), prefer(100)))},
	}, {
		// Same selector rules as everywhere else.
		name: "selectors valid and unique",
		rejected: ruleCase{res: res(l2Adv("a", func(s *v1beta1.L2AdvertisementSpec) {
			s.NodeSelectors = []metav1.LabelSelector{sel("a", "b"), sel("a", "b")}
			s.IPAddressPoolSelectors = []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "x", Operator: metav1.LabelSelectorOpIn}}}}
		})),
			errors: []string{
				`l2advertisement "a": spec.ipAddressPoolSelectors[0]: invalid label selector: values: Invalid value: null: for 'in', 'notin' operators, values set can't be empty`,
				`l2advertisement "a": spec.nodeSelectors[1]: duplicates spec.nodeSelectors[0] (a=b)`,
			}},
		accepted: ruleCase{res: res(l2Adv("a", func(s *v1beta1.L2AdvertisementSpec) {
			s.NodeSelectors = []metav1.LabelSelector{sel("a", "b"), sel("a", "c")}
			s.IPAddressPoolSelectors = []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "x", Operator: metav1.LabelSelectorOpExists}}}}
		}))},
	}})
}

func TestCommunityRules(t *testing.T) {
	runRules(t, []rule{{
		// An advertisement names an alias; two definitions would make it
		// ambiguous.
		name: "alias names unique across objects",
		rejected: ruleCase{res: Resources{Communities: []v1beta1.Community{
			community("first", "edge", "65000:1"),
			community("second", "edge", "65000:2", "core", "65000:3", "core", "65000:3"),
		}}, errors: []string{
			`community "second": spec.communities[0].name: alias "edge" is also defined by community "first"; alias names are unique across Community objects`,
			`community "second": spec.communities[2].name: alias "core" is defined twice (also spec.communities[1])`,
		}},
		accepted: ruleCase{res: Resources{Communities: []v1beta1.Community{
			community("first", "edge", "65000:1"),
			community("second", "edge-2", "65000:2", "core", "65000:3"),
		}}},
	}, {
		// An alias must stand for a valid community, and a name that reads
		// as a value would shadow that value.
		name: "values valid, names not values",
		rejected: ruleCase{res: Resources{Communities: []v1beta1.Community{community("c", "edge", "65000:70000", "65000:1", "65000:2", "", "1:1")}},
			errors: []string{
				`community "c": spec.communities[0].value: alias "edge": invalid community "65000:70000": second part "70000": out of range 0..65535`,
				`community "c": spec.communities[1].name: alias name "65000:1" reads as a community value; choose a name that does not`,
				`community "c": spec.communities[2].name: an alias needs a name`,
			}},
		accepted: ruleCase{res: Resources{Communities: []v1beta1.Community{community("c", "edge", "65000:65535", "edge:1", "65000:2", "large", "large:1:2:3")}}},
	}})
}

func (c ruleCase) withOpts(o *Options) ruleCase { c.opts = o; return c }
