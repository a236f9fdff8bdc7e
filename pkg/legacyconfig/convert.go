// Package legacyconfig converts MetalLB's legacy configuration (the
// `config` key of the ConfigMap that MetalLB v0.12 and earlier read) into
// the equivalent metallb.io objects: IPAddressPool, BGPPeer (v1beta2),
// BGPAdvertisement, L2Advertisement, BFDProfile and Community.
//
// Nothing is dropped: every field of the ConfigMap lands in an object, a
// name that had to change keeps its original in the metallb.io/legacy-name
// annotation, community aliases stay aliases (one Community object holds
// them), and whatever MetalLB or admission would refuse is converted as
// written and reported as a Warning.
package legacyconfig

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/bgptimers"
)

const (
	// LegacyNameAnnotation holds an object's name in the legacy ConfigMap
	// when the Kubernetes name had to differ from it.
	LegacyNameAnnotation = "metallb.io/legacy-name"
	// DefaultNamespace is where the objects go when neither the ConfigMap
	// nor Options say.
	DefaultNamespace = "metallb-system"
	// CommunityObjectName names the one Community object that holds the
	// bgp-communities aliases.
	CommunityObjectName = "communities"
)

const (
	kindIPAddressPool    = "IPAddressPool"
	kindBGPPeer          = "BGPPeer"
	kindBGPAdvertisement = "BGPAdvertisement"
	kindL2Advertisement  = "L2Advertisement"
	kindBFDProfile       = "BFDProfile"
	kindCommunity        = "Community"
)

// Options tune Convert.
type Options struct {
	// Namespace for every object. Empty means the ConfigMap's namespace, or
	// DefaultNamespace for bare configuration text.
	Namespace string
}

// Warning is something the user must know about the conversion: a renamed
// object, or a value that MetalLB or admission would refuse.
type Warning struct {
	// Kind and Name identify the converted object the warning is about;
	// both are empty when it is about the input as a whole.
	Kind, Name string
	Message    string
}

// String is the warning on one line, naming the object it is about.
func (w Warning) String() string {
	if w.Kind == "" {
		return oneLine(w.Message)
	}
	return oneLine(fmt.Sprintf("%s %q: %s", w.Kind, w.Name, w.Message))
}

// Result is the converted configuration.
type Result struct {
	// Namespace of every object.
	Namespace string
	// From describes the input, for the header of the YAML output.
	From string

	BFDProfiles       []v1beta1.BFDProfile
	Communities       []v1beta1.Community
	IPAddressPools    []v1beta1.IPAddressPool
	BGPPeers          []v1beta2.BGPPeer
	BGPAdvertisements []v1beta1.BGPAdvertisement
	L2Advertisements  []v1beta1.L2Advertisement

	Warnings []Warning
}

// Objects returns every object, in an order that applies cleanly: objects
// come before the objects that refer to them.
func (r *Result) Objects() []client.Object {
	var out []client.Object
	for i := range r.BFDProfiles {
		out = append(out, &r.BFDProfiles[i])
	}
	for i := range r.Communities {
		out = append(out, &r.Communities[i])
	}
	for i := range r.IPAddressPools {
		out = append(out, &r.IPAddressPools[i])
	}
	for i := range r.BGPPeers {
		out = append(out, &r.BGPPeers[i])
	}
	for i := range r.BGPAdvertisements {
		out = append(out, &r.BGPAdvertisements[i])
	}
	for i := range r.L2Advertisements {
		out = append(out, &r.L2Advertisements[i])
	}
	return out
}

// ConvertBytes is Parse followed by Convert.
func ConvertBytes(data []byte, opts Options) (*Result, error) {
	src, err := Parse(data)
	if err != nil {
		return nil, err
	}
	return Convert(src, opts)
}

// Convert turns a parsed legacy configuration into metallb.io objects.
func Convert(src *Source, opts Options) (*Result, error) {
	ns := opts.Namespace
	if ns != "" {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return nil, fmt.Errorf("namespace %q: %s", ns, strings.Join(errs, "; "))
		}
	}
	if ns == "" {
		ns = src.ConfigMapNamespace
	}
	if ns == "" {
		ns = DefaultNamespace
	}
	if err := checkStructure(&src.Config); err != nil {
		return nil, err
	}
	c := &converter{cfg: &src.Config, res: &Result{Namespace: ns}}
	c.res.From = "MetalLB configuration text"
	if src.FromConfigMap {
		c.res.From = "MetalLB ConfigMap " + cmRef(src)
	}
	c.res.Warnings = append(c.res.Warnings, src.Warnings...)
	if src.FromConfigMap && opts.Namespace != "" && src.ConfigMapNamespace != "" && opts.Namespace != src.ConfigMapNamespace {
		c.warn("", "", "the objects are in namespace %q (--namespace), not in the ConfigMap's namespace %q", opts.Namespace, src.ConfigMapNamespace)
	}
	c.bfdProfiles()
	c.communities()
	c.pools()
	if err := c.peers(); err != nil {
		return nil, err
	}
	return c.res, nil
}

type converter struct {
	cfg *Config
	res *Result
	// bfdNames maps a legacy BFD profile name to its object name.
	bfdNames map[string]string
}

func (c *converter) warn(kind, name, format string, args ...any) {
	c.res.Warnings = append(c.res.Warnings, Warning{Kind: kind, Name: name, Message: fmt.Sprintf(format, args...)})
}

func (c *converter) meta(kind, apiVersion string, n assignedName, legacy string) (metav1.TypeMeta, metav1.ObjectMeta) {
	om := metav1.ObjectMeta{Name: n.name, Namespace: c.res.Namespace}
	if n.renamed {
		om.Annotations = map[string]string{LegacyNameAnnotation: legacy}
	}
	return metav1.TypeMeta{APIVersion: apiVersion, Kind: kind}, om
}

// renamed warns about an object whose name is not the one it had, or not
// the one it would naturally get. hint, when not empty, ends the warning.
func (c *converter) renamed(kind, what string, n assignedName, legacy, hint string) {
	var msg string
	switch {
	case n.renamed && NormalizeName(legacy) == "":
		msg = fmt.Sprintf("%s %q has no usable Kubernetes name; it is named %q and the original is kept in annotation %s", what, legacy, n.name, LegacyNameAnnotation)
	case n.renamed && n.name != n.wanted:
		msg = fmt.Sprintf("%s %q would be %q as a Kubernetes name, but another %s already has that name; it is named %q and the original is kept in annotation %s",
			what, legacy, n.wanted, kind, n.name, LegacyNameAnnotation)
	case n.renamed:
		msg = fmt.Sprintf("renamed from %q (%s): Kubernetes names are lowercase RFC 1123; the original is kept in annotation %s", legacy, what, LegacyNameAnnotation)
	case n.name != n.wanted:
		msg = fmt.Sprintf("named %q because %q is already taken by another %s", n.name, n.wanted, kind)
	default:
		return
	}
	if hint != "" {
		msg += "; " + hint
	}
	c.warn(kind, n.name, "%s", msg)
}

func (c *converter) bfdProfiles() {
	reqs := make([]nameRequest, len(c.cfg.BFDProfiles))
	for i, b := range c.cfg.BFDProfiles {
		reqs[i] = nameRequest{legacy: b.Name}
	}
	names := assignNames(reqs, newNamer(), func(i int) string { return fmt.Sprintf("bfdprofile-%d", i+1) })
	c.bfdNames = map[string]string{}
	for i, b := range c.cfg.BFDProfiles {
		n := names[i]
		what := fmt.Sprintf("bfd-profiles[%d]", i)
		if prev, dup := c.bfdNames[b.Name]; dup {
			c.warn(kindBFDProfile, n.name, "%s repeats the name %q of BFDProfile %q (MetalLB refused duplicate names); peers that use %q get %q",
				what, b.Name, prev, b.Name, prev)
		} else {
			c.bfdNames[b.Name] = n.name
			c.renamed(kindBFDProfile, what, n, b.Name, "")
		}
		tm, om := c.meta(kindBFDProfile, v1beta1.GroupVersion.String(), n, b.Name)
		c.res.BFDProfiles = append(c.res.BFDProfiles, v1beta1.BFDProfile{TypeMeta: tm, ObjectMeta: om, Spec: v1beta1.BFDProfileSpec{
			ReceiveInterval:  clonePtr(b.ReceiveInterval),
			TransmitInterval: clonePtr(b.TransmitInterval),
			DetectMultiplier: clonePtr(b.DetectMultiplier),
			EchoInterval:     clonePtr(b.EchoInterval),
			EchoMode:         clonePtr(b.EchoMode),
			PassiveMode:      clonePtr(b.PassiveMode),
			MinimumTTL:       clonePtr(b.MinimumTTL),
		}})
		for _, msg := range []string{
			checkRange("receive-interval", b.ReceiveInterval, 10, 60000),
			checkRange("transmit-interval", b.TransmitInterval, 10, 60000),
			checkRange("detect-multiplier", b.DetectMultiplier, 2, 255),
			checkRange("echo-interval", b.EchoInterval, 10, 60000),
			checkRange("minimum-ttl", b.MinimumTTL, 1, 254),
		} {
			if msg != "" {
				c.warn(kindBFDProfile, n.name, "%s", msg)
			}
		}
	}
}

func (c *converter) communities() {
	if len(c.cfg.BGPCommunities) == 0 {
		return
	}
	aliases := make([]string, 0, len(c.cfg.BGPCommunities))
	for a := range c.cfg.BGPCommunities {
		aliases = append(aliases, a)
	}
	sort.Strings(aliases)
	obj := v1beta1.Community{
		TypeMeta:   metav1.TypeMeta{APIVersion: v1beta1.GroupVersion.String(), Kind: kindCommunity},
		ObjectMeta: metav1.ObjectMeta{Name: CommunityObjectName, Namespace: c.res.Namespace},
	}
	for _, a := range aliases {
		v := c.cfg.BGPCommunities[a]
		obj.Spec.Communities = append(obj.Spec.Communities, v1beta1.CommunityAlias{Name: a, Value: v})
		if a == "" {
			c.warn(kindCommunity, CommunityObjectName, "bgp-communities has an alias with an empty name (for %q): no advertisement can use it", v)
		}
		if !validCommunity(v) {
			c.warn(kindCommunity, CommunityObjectName, "alias %q: %q is not a community value (AA:NN with 16-bit halves, or large:G:L1:L2): MetalLB refused it, and so does admission", a, v)
		}
	}
	c.res.Communities = append(c.res.Communities, obj)
}

func (c *converter) pools() {
	reqs := make([]nameRequest, len(c.cfg.Pools))
	for i, p := range c.cfg.Pools {
		reqs[i] = nameRequest{legacy: p.Name}
	}
	names := assignNames(reqs, newNamer(), func(i int) string { return fmt.Sprintf("pool-%d", i+1) })
	seen := map[string]string{}
	var entries []poolEntry
	bgpNames, l2Names := newNamer(), newNamer()
	for i, p := range c.cfg.Pools {
		n := names[i]
		what := fmt.Sprintf("address-pools[%d]", i)
		if prev, dup := seen[p.Name]; dup {
			c.warn(kindIPAddressPool, n.name, "%s repeats the name %q of IPAddressPool %q (MetalLB refused duplicate pool names); this one is named %q",
				what, p.Name, prev, n.name)
		} else {
			seen[p.Name] = n.name
			c.renamed(kindIPAddressPool, what, n, p.Name, fmt.Sprintf(
				"Services that ask for the pool by its old name (annotation metallb.universe.tf/address-pool or metallb.io/address-pool: %q) should now say %q", p.Name, n.name))
		}
		tm, om := c.meta(kindIPAddressPool, v1beta1.GroupVersion.String(), n, p.Name)
		pool := v1beta1.IPAddressPool{TypeMeta: tm, ObjectMeta: om, Spec: v1beta1.IPAddressPoolSpec{
			Addresses:     append([]string{}, p.Addresses...),
			AutoAssign:    clonePtr(p.AutoAssign),
			AvoidBuggyIPs: p.AvoidBuggyIPs,
		}}
		c.res.IPAddressPools = append(c.res.IPAddressPools, pool)
		if len(p.Addresses) == 0 {
			c.warn(kindIPAddressPool, n.name, "the pool has no addresses: MetalLB refused it, and so does admission")
		}
		for _, a := range p.Addresses {
			r, err := parseAddresses(a)
			if err != nil {
				c.warn(kindIPAddressPool, n.name, "%s: MetalLB refused it, and so does admission", err)
				continue
			}
			entries = append(entries, poolEntry{pool: n.name, entry: a, r: r})
		}
		switch p.Protocol {
		case ProtocolBGP:
			c.bgpAdvertisements(p, n.name, bgpNames)
		case ProtocolLayer2:
			an, _ := l2Names.claim(n.name)
			c.advName(kindL2Advertisement, an, n.name)
			c.res.L2Advertisements = append(c.res.L2Advertisements, v1beta1.L2Advertisement{
				TypeMeta:   metav1.TypeMeta{APIVersion: v1beta1.GroupVersion.String(), Kind: kindL2Advertisement},
				ObjectMeta: metav1.ObjectMeta{Name: an, Namespace: c.res.Namespace},
				Spec:       v1beta1.L2AdvertisementSpec{IPAddressPools: []string{n.name}},
			})
		}
	}
	c.res.Warnings = append(c.res.Warnings, overlaps(entries)...)
}

func (c *converter) advName(kind, got, want string) {
	if got != want {
		c.warn(kind, got, "named %q because %q is already taken by another %s", got, want, kind)
	}
}

func (c *converter) bgpAdvertisements(p AddressPool, pool string, names *namer) {
	ads := p.BGPAdvertisements
	if len(ads) == 0 {
		ads = []BGPAdvertisement{{}} // MetalLB announced a bgp pool without advertisements with the defaults
	}
	for i, ad := range ads {
		want := pool
		if i > 0 {
			want = withSuffix(pool, fmt.Sprintf("-%d", i+1))
		}
		name, _ := names.claim(want)
		c.advName(kindBGPAdvertisement, name, want)
		spec := v1beta1.BGPAdvertisementSpec{
			AggregationLength:   clonePtr(ad.AggregationLength),
			AggregationLengthV6: clonePtr(ad.AggregationLengthV6),
			IPAddressPools:      []string{pool},
		}
		if ad.LocalPref != nil {
			spec.LocalPref = *ad.LocalPref
		}
		if l := ad.AggregationLength; l != nil && (*l < 1 || *l > 32) {
			c.warn(kindBGPAdvertisement, name, "aggregation-length %d is outside 1..32: admission refuses it", *l)
		}
		if l := ad.AggregationLengthV6; l != nil && (*l < 1 || *l > 128) {
			c.warn(kindBGPAdvertisement, name, "aggregation-length-v6 %d is outside 1..128: admission refuses it", *l)
		}
		seen := map[string]bool{}
		for _, cm := range ad.Communities {
			if seen[cm] {
				c.warn(kindBGPAdvertisement, name, "community %q is listed twice: MetalLB used it once, and so does the converted advertisement (admission refuses repeats)", cm)
				continue
			}
			seen[cm] = true
			spec.Communities = append(spec.Communities, cm)
			if _, alias := c.cfg.BGPCommunities[cm]; !alias && !validCommunity(cm) {
				c.warn(kindBGPAdvertisement, name, "community %q is neither an alias in bgp-communities nor a community value (AA:NN or large:G:L1:L2): MetalLB refused it, and so does admission", cm)
			}
		}
		c.res.BGPAdvertisements = append(c.res.BGPAdvertisements, v1beta1.BGPAdvertisement{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1beta1.GroupVersion.String(), Kind: kindBGPAdvertisement},
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.res.Namespace},
			Spec:       spec,
		})
	}
}

func (c *converter) peers() error {
	reqs := make([]nameRequest, len(c.cfg.Peers))
	for i, p := range c.cfg.Peers {
		reqs[i] = nameRequest{legacy: p.Name, generated: fmt.Sprintf("peer%d", i+1)}
	}
	names := assignNames(reqs, newNamer(), func(i int) string { return fmt.Sprintf("peer%d", i+1) })
	specs := map[string]string{}
	for i, p := range c.cfg.Peers {
		n := names[i]
		what := fmt.Sprintf("peers[%d]", i)
		c.renamed(kindBGPPeer, what, n, p.Name, "")
		spec, err := c.peerSpec(p, n.name)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		tm, om := c.meta(kindBGPPeer, v1beta2.GroupVersion.String(), n, p.Name)
		c.res.BGPPeers = append(c.res.BGPPeers, v1beta2.BGPPeer{TypeMeta: tm, ObjectMeta: om, Spec: spec})
		key, _ := json.Marshal(spec)
		if prev, dup := specs[string(key)]; dup {
			c.warn(kindBGPPeer, n.name, "same session as BGPPeer %q: MetalLB refused duplicate peers", prev)
		} else {
			specs[string(key)] = n.name
		}
	}
	return nil
}

func (c *converter) peerSpec(p Peer, name string) (v1beta2.BGPPeerSpec, error) {
	w := func(format string, args ...any) { c.warn(kindBGPPeer, name, format, args...) }
	spec := v1beta2.BGPPeerSpec{
		MyASN:        p.MyASN,
		ASN:          p.ASN,
		Address:      p.Addr,
		SrcAddress:   p.SrcAddr,
		RouterID:     p.RouterID,
		Password:     p.Password,
		EBGPMultiHop: p.EBGPMultiHop,
		VRFName:      p.VRF,
	}
	if p.MyASN == 0 {
		w("my-asn is missing or 0: MetalLB refused the peer, and so does admission")
	}
	if p.ASN == 0 {
		w("peer-asn is missing or 0: MetalLB refused the peer, and so does admission")
	}
	if p.EBGPMultiHop && p.ASN == p.MyASN {
		w("ebgp-multihop on an iBGP session (peer-asn = my-asn): MetalLB refused it, and so does admission")
	}
	for _, f := range []struct{ field, value string }{{"peer-address", p.Addr}, {"source-address", p.SrcAddr}, {"router-id", p.RouterID}} {
		if f.value == "" && f.field != "peer-address" {
			continue
		}
		if a, err := netip.ParseAddr(f.value); err != nil || a.Zone() != "" {
			w("%s %q is not an IP address: MetalLB refused it, and so does admission", f.field, f.value)
		}
	}
	if p.Port != 0 {
		port := p.Port
		spec.Port = &port
		if port > 16384 {
			w("peer-port %d is above 16384, the most the BGPPeer schema accepts", port)
		}
	}
	hold, err := c.timer(p.HoldTime, "hold-time", w)
	if err != nil {
		return spec, err
	}
	if hold != nil && !bgptimers.HoldTimeAllowed(hold.Duration) {
		w("hold-time %s is neither 0 nor at least 3s: MetalLB refused it, and so does admission", hold.Duration)
	}
	keepalive, err := c.timer(p.KeepaliveTime, "keepalive-time", w)
	if err != nil {
		return spec, err
	}
	switch {
	case keepalive == nil || hold == nil || keepalive.Duration < 0 || bgptimers.KeepaliveAllowed(keepalive.Duration, hold.Duration):
	case hold.Duration == 0:
		w("keepalive-time %s with hold-time 0: a zero hold time turns keepalives off, so admission refuses any other keepalive-time than 0", keepalive.Duration)
	default:
		w("keepalive-time %s is not below hold-time %s: admission refuses it", keepalive.Duration, hold.Duration)
	}
	if keepalive != nil && keepalive.Duration < 0 {
		w("keepalive-time %s is negative: admission refuses it", keepalive.Duration)
	}
	spec.HoldTime, spec.KeepaliveTime = hold, keepalive
	for i, ns := range p.NodeSelectors {
		sel := metav1.LabelSelector{}
		if len(ns.MatchLabels) > 0 {
			sel.MatchLabels = make(map[string]string, len(ns.MatchLabels))
			for k, v := range ns.MatchLabels {
				sel.MatchLabels[k] = v
			}
		}
		for _, e := range ns.MatchExpressions {
			sel.MatchExpressions = append(sel.MatchExpressions, metav1.LabelSelectorRequirement{
				Key:      e.Key,
				Operator: metav1.LabelSelectorOperator(e.Operator),
				Values:   slices.Clone(e.Values),
			})
		}
		if _, err := metav1.LabelSelectorAsSelector(&sel); err != nil {
			w("node-selectors[%d] is not a valid label selector (%v): MetalLB refused it, and so does admission", i, err)
		}
		spec.NodeSelectors = append(spec.NodeSelectors, sel)
	}
	if p.Password != "" {
		w("the TCP MD5 password stays in clear text in spec.password, as it was in the ConfigMap; consider a Secret of type kubernetes.io/basic-auth (key \"password\") referenced by spec.passwordSecret instead")
		if strings.ContainsAny(p.Password, "\r\n") {
			w("the password contains a line break: admission refuses it")
		}
	}
	if p.BFDProfile != "" {
		if ref, ok := c.bfdNames[p.BFDProfile]; ok {
			spec.BFDProfile = ref
		} else {
			ref = p.BFDProfile
			if !validName(ref) {
				if ref = NormalizeName(ref); ref == "" {
					ref = p.BFDProfile
				}
			}
			spec.BFDProfile = ref
			w("bfd-profile %q is not defined in bfd-profiles (MetalLB refused this); the BGPPeer refers to BFDProfile %q, which must be created", p.BFDProfile, ref)
		}
	}
	return spec, nil
}

// timer converts a hold-time or keepalive-time the way MetalLB v0.12 did:
// a Go duration, truncated to whole seconds.
func (c *converter) timer(s, field string, w func(string, ...any)) (*metav1.Duration, error) {
	if s == "" {
		return nil, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return nil, fmt.Errorf("%s %q is not a duration such as 90s or 1m30s", field, s)
	}
	rounded := d.Truncate(time.Second)
	if rounded != d {
		w("%s %q is not a whole number of seconds: MetalLB used %s, and so does the BGPPeer", field, s, rounded)
	}
	return &metav1.Duration{Duration: rounded}, nil
}

func clonePtr[T any](p *T) *T {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}
