package config

import (
	"fmt"
	"net/netip"
	"time"
	"unicode"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/bgptimers"
)

// notNative ends the message of a feature the native backend lacks.
const notNative = "not supported with bgpBackend native; use bgpBackend frr"

// maxMD5KeyLen is Linux's TCP_MD5SIG_MAXKEYLEN: a longer password cannot
// be installed, so the session would never come up.
const maxMD5KeyLen = 80

// maxBGPTime is the largest hold time BGP can carry (16 bits of seconds).
const maxBGPTime = bgptimers.Max

func (b *builder) buildPeers(objs []*v1beta2.BGPPeer) {
	b.peerByName = make(map[string]*Peer, len(objs))
	for _, obj := range objs {
		p := b.buildPeer(obj)
		b.peers = append(b.peers, p)
		b.peerByName[p.Name] = p
	}
	b.checkDuplicatePeers()
	if !b.native {
		b.checkFRRInstances()
	}
}

func (b *builder) buildPeer(obj *v1beta2.BGPPeer) *Peer {
	ref := ObjectRef{Kind: KindBGPPeer, Name: obj.Name}
	s := obj.Spec
	p := &Peer{
		Name:                   obj.Name,
		MyASN:                  s.MyASN,
		PeerASN:                s.ASN,
		DynamicASN:             s.DynamicASN,
		LocalASN:               s.LocalASN,
		Port:                   DefaultBGPPort,
		BFDProfileName:         s.BFDProfile,
		EBGPMultiHop:           s.EBGPMultiHop,
		VRF:                    s.VRFName,
		EnableGracefulRestart:  s.EnableGracefulRestart,
		DualStackAddressFamily: s.DualStackAddressFamily,
		DisableMP:              s.DisableMP,
	}

	// AS numbers.
	if s.MyASN == 0 {
		b.c.errorf(ref, "spec.myASN", nil, "myASN is required (the speaker's AS number, 1..4294967295)")
	}
	switch {
	case s.ASN != 0 && s.DynamicASN != "":
		b.c.errorf(ref, "spec.dynamicASN", nil, "set peerASN or dynamicASN, not both (peerASN is %d)", s.ASN)
	case s.ASN == 0 && s.DynamicASN == "":
		b.c.errorf(ref, "spec.peerASN", nil, "one of peerASN and dynamicASN is required")
	}
	if s.DynamicASN != "" {
		switch {
		case s.DynamicASN != v1beta2.InternalASNMode && s.DynamicASN != v1beta2.ExternalASNMode:
			b.c.errorf(ref, "spec.dynamicASN", nil, "dynamicASN %q is neither %q nor %q", s.DynamicASN, v1beta2.InternalASNMode, v1beta2.ExternalASNMode)
		case b.native:
			// GoBGP v3 configures a neighbor with one peer AS; it cannot
			// learn it from the OPEN message.
			b.c.errorf(ref, "spec.dynamicASN", nil, "dynamicASN is %s", notNative)
		}
	}
	if s.LocalASN != 0 && s.LocalASN == s.MyASN && !b.native {
		// FRR refuses "neighbor X local-as" equal to the router's AS, so
		// the rendered configuration would not load.
		b.c.errorf(ref, "spec.localASN", nil, "localASN %d equals myASN; FRR refuses a local-as equal to its own AS: leave localASN unset", s.LocalASN)
	}

	// Where the peer is.
	switch {
	case s.Address != "" && s.Interface != "":
		b.c.errorf(ref, "spec.interface", nil, "set peerAddress or interface, not both (peerAddress is %q)", s.Address)
	case s.Address == "" && s.Interface == "":
		b.c.errorf(ref, "spec.peerAddress", nil, "one of peerAddress and interface is required")
	}
	if s.Address != "" {
		if a, err := parseAddr(s.Address); err != nil {
			b.c.errorf(ref, "spec.peerAddress", nil, "invalid peerAddress: %v", err)
		} else {
			p.Address = a
		}
	}
	if s.Interface != "" {
		if why := checkLinkName(s.Interface); why != "" {
			b.c.errorf(ref, "spec.interface", nil, "invalid interface: %s", why)
		} else if b.native {
			// Unnumbered BGP needs FRR's "neighbor IFNAME interface".
			b.c.errorf(ref, "spec.interface", nil, "unnumbered peering (interface) is %s", notNative)
		} else {
			p.Interface = s.Interface
		}
	}
	if s.Port != nil {
		if *s.Port == 0 {
			b.c.errorf(ref, "spec.peerPort", nil, "peerPort 0 is not a TCP port; leave it unset for %d", DefaultBGPPort)
		} else {
			p.Port = *s.Port
		}
	}
	if s.SrcAddress != "" {
		src, err := parseAddr(s.SrcAddress)
		switch {
		case err != nil:
			b.c.errorf(ref, "spec.sourceAddress", nil, "invalid sourceAddress: %v", err)
		case p.Address.IsValid() && src.Is4() != p.Address.Is4():
			b.c.errorf(ref, "spec.sourceAddress", nil, "sourceAddress %s and peerAddress %s are of different IP families", src, p.Address)
		default:
			p.SrcAddress = src
		}
	}
	if s.RouterID != "" {
		// A BGP identifier is 32 bits, written as an IPv4 address.
		if id, err := netip.ParseAddr(s.RouterID); err != nil || !id.Is4() {
			b.c.errorf(ref, "spec.routerID", nil, "routerID %q must be an IPv4 address (the BGP identifier is 32 bits)", s.RouterID)
		} else {
			p.RouterID = id
		}
	}
	if s.VRFName != "" {
		if why := VRFNameProblem(s.VRFName); why != "" {
			b.c.errorf(ref, "spec.vrf", nil, "invalid vrf: %s", why)
		}
	}
	if s.EBGPMultiHop && s.MyASN != 0 && (s.ASN != 0 || s.DynamicASN != "") && p.IBGP() {
		b.c.errorf(ref, "spec.ebgpMultiHop", nil, "ebgpMultiHop applies to eBGP sessions only, and this session is iBGP (%s)", ibgpReason(p))
	}

	// Timers.
	p.HoldTime, p.KeepaliveTime = b.peerTimers(ref, s.HoldTime, s.KeepaliveTime)
	if s.ConnectTime != nil {
		d := s.ConnectTime.Duration
		if d < time.Second || d > maxBGPTime || d%time.Second != 0 {
			b.c.errorf(ref, "spec.connectTime", nil, "connectTime %s must be whole seconds between 1s and 65535s", d)
		} else {
			p.ConnectTime = &d
		}
	}

	p.NodeSelectors = parseSelectors(&b.c, ref, "spec.nodeSelectors", s.NodeSelectors)
	b.peerPassword(ref, obj, p)
	b.peerBFD(ref, s.BFDProfile, p)

	if s.DisableMP && s.DualStackAddressFamily {
		b.c.warnf(ref, "spec.disableMP", nil, "disableMP is deprecated and contradicts dualStackAddressFamily: true, which wins")
	}
	return p
}

func ibgpReason(p *Peer) string {
	if p.DynamicASN != "" {
		return "dynamicASN is internal"
	}
	if p.LocalASN != 0 {
		return fmt.Sprintf("peerASN %d equals localASN", p.PeerASN)
	}
	return fmt.Sprintf("peerASN %d equals myASN", p.PeerASN)
}

// peerTimers validates and derives hold and keepalive times like MetalLB:
// only hold set → keepalive = hold/3; only keepalive set → hold =
// 3×keepalive; neither → nil, nil (backend defaults). Hold must be 0 or at
// least 3s (RFC 4271) and at most 65535s; keepalive must be below hold, or
// 0 when hold is 0. The rules are pkg/bgptimers'; the messages are
// admission's.
func (b *builder) peerTimers(ref ObjectRef, ht, ka *metav1.Duration) (*time.Duration, *time.Duration) {
	if ht == nil && ka == nil {
		return nil, nil
	}
	ok := true
	if ht != nil && ht.Duration < 0 {
		b.c.errorf(ref, "spec.holdTime", nil, "holdTime %s is negative", ht.Duration)
		ok = false
	}
	if ka != nil && ka.Duration < 0 {
		b.c.errorf(ref, "spec.keepaliveTime", nil, "keepaliveTime %s is negative", ka.Duration)
		ok = false
	}
	if !ok {
		return nil, nil
	}
	if ht == nil && ka.Duration > maxBGPTime/3 {
		b.c.errorf(ref, "spec.keepaliveTime", nil, "keepaliveTime %s implies a holdTime of 3×%s, above the BGP maximum of 65535s", ka.Duration, ka.Duration)
		return nil, nil
	}
	hold, keep, _ := bgptimers.Derive(durationOf(ht), durationOf(ka))
	holdField, holdWhat := "spec.holdTime", fmt.Sprintf("holdTime %s", hold)
	if ht == nil {
		holdField, holdWhat = "spec.keepaliveTime", fmt.Sprintf("keepaliveTime %s implies a holdTime of %s, which", keep, hold)
	}
	switch {
	case !bgptimers.HoldTimeAllowed(hold):
		b.c.errorf(ref, holdField, nil, "%s must be 0 or at least 3s", holdWhat)
		ok = false
	case hold > maxBGPTime:
		b.c.errorf(ref, holdField, nil, "%s is above the BGP maximum of 65535s", holdWhat)
		ok = false
	case hold == 0 && !bgptimers.KeepaliveAllowed(keep, hold):
		b.c.errorf(ref, "spec.keepaliveTime", nil, "keepaliveTime %s must be 0 when holdTime is 0 (a zero hold time turns keepalives off)", keep)
		ok = false
	case hold == 0 && b.native:
		// GoBGP reads a zero hold time as "use the default" (90 s).
		b.c.errorf(ref, holdField, nil, "a holdTime of 0 (keepalives off) is %s", notNative)
		ok = false
	case !bgptimers.KeepaliveAllowed(keep, hold):
		b.c.errorf(ref, "spec.keepaliveTime", nil, "keepaliveTime %s must be lower than holdTime %s", keep, hold)
		ok = false
	}
	if !ok {
		return nil, nil
	}
	return &hold, &keep
}

// durationOf returns d's duration, nil for nil.
func durationOf(d *metav1.Duration) *time.Duration {
	if d == nil {
		return nil
	}
	return &d.Duration
}

func (b *builder) peerPassword(ref ObjectRef, obj *v1beta2.BGPPeer, p *Peer) {
	s := obj.Spec
	sr := s.PasswordSecret
	if s.Password != "" && sr.Name != "" {
		b.c.errorf(ref, "spec.passwordSecret", nil, "set password or passwordSecret, not both")
		return
	}
	if s.Password != "" {
		if why := b.passwordProblem(s.Password); why != "" {
			b.c.errorf(ref, "spec.password", nil, "password %s", why)
			return
		}
		p.Password = s.Password
		return
	}
	if sr.Name == "" {
		if sr.Namespace != "" {
			b.c.errorf(ref, "spec.passwordSecret.name", nil, "passwordSecret has a namespace but no name")
		}
		return
	}
	if sr.Namespace != "" && !b.inNamespace(sr.Namespace) {
		b.c.errorf(ref, "spec.passwordSecret.namespace", nil, "passwordSecret is in namespace %q; password secrets must be in the stack's namespace %q", sr.Namespace, b.opts.Namespace)
		return
	}
	if why := checkObjectName(sr.Name); why != "" {
		b.c.errorf(ref, "spec.passwordSecret.name", nil, "passwordSecret %s", why)
		return
	}
	p.PasswordSecret = sr.Name
	sref := ObjectRef{Kind: KindSecret, Name: sr.Name}
	secret, found := b.secrets[sr.Name]
	if !found {
		p.PasswordPending = true
		b.c.warnf(ref, "spec.passwordSecret", []ObjectRef{sref}, "%s does not exist (yet); the session waits for its password", sref)
		return
	}
	if secret.Type != corev1.SecretTypeBasicAuth {
		b.c.errorf(ref, "spec.passwordSecret", []ObjectRef{sref}, "%s is of type %q; a BGP password secret must be of type %q", sref, secret.Type, corev1.SecretTypeBasicAuth)
		return
	}
	pw, ok := secret.Data[corev1.BasicAuthPasswordKey]
	if !ok {
		if v, inString := secret.StringData[corev1.BasicAuthPasswordKey]; inString {
			pw, ok = []byte(v), true
		}
	}
	if !ok {
		b.c.errorf(ref, "spec.passwordSecret", []ObjectRef{sref}, "%s has no %q key", sref, corev1.BasicAuthPasswordKey)
		return
	}
	if why := b.passwordProblem(string(pw)); why != "" {
		b.c.errorf(ref, "spec.passwordSecret", []ObjectRef{sref}, "the password in %s %s", sref, why)
		return
	}
	p.Password = string(pw)
}

// passwordProblem reports why the configured backend cannot use pw as a
// session's TCP MD5 password, or "".
func (b *builder) passwordProblem(pw string) string {
	if b.native {
		return checkPassword(pw)
	}
	return FRRPasswordProblem(pw)
}

// checkPassword reports why a TCP MD5 password cannot be used, or "".
// Control characters would break the rendered FRR configuration.
func checkPassword(pw string) string {
	if !utf8.ValidString(pw) {
		return "is not valid UTF-8"
	}
	if len(pw) > maxMD5KeyLen {
		return fmt.Sprintf("is %d bytes long; TCP MD5 keys are at most %d bytes", len(pw), maxMD5KeyLen)
	}
	for _, r := range pw {
		if unicode.IsControl(r) {
			return fmt.Sprintf("contains the control character %q", r)
		}
	}
	return ""
}

func (b *builder) peerBFD(ref ObjectRef, name string, p *Peer) {
	if name == "" {
		return
	}
	if b.native {
		// GoBGP has no BFD; BFD is FRR's job here.
		b.c.errorf(ref, "spec.bfdProfile", nil, "BFD (bfdProfile) is %s", notNative)
		return
	}
	if why := checkObjectName(name); why != "" {
		b.c.errorf(ref, "spec.bfdProfile", nil, "bfdProfile %s", why)
		return
	}
	pref := ObjectRef{Kind: KindBFDProfile, Name: name}
	prof, ok := b.bfd[name]
	if !ok {
		b.c.warnf(ref, "spec.bfdProfile", []ObjectRef{pref}, "%s does not exist (yet); the session runs without BFD until it does", pref)
		return
	}
	p.BFDProfile = prof
}

// peerKey identifies the BGP session a peer describes on one node: two
// peers with the same key on the same node are the same session.
func peerKey(p *Peer) (string, bool) {
	switch {
	case p.Address.IsValid():
		return fmt.Sprintf("%s|%s|%d", p.VRF, p.Address, p.Port), true
	case p.Interface != "":
		return fmt.Sprintf("%s|if:%s", p.VRF, p.Interface), true
	}
	return "", false
}

func describeSession(p *Peer) string {
	vrf := p.VRF
	if vrf == "" {
		vrf = "default"
	}
	if p.Address.IsValid() {
		return fmt.Sprintf("address %s, port %d, VRF %s", p.Address, p.Port, vrf)
	}
	return fmt.Sprintf("interface %s, VRF %s", p.Interface, vrf)
}

// checkDuplicatePeers refuses two peers describing the same session
// (address and port, or interface, in one VRF) on nodes both can select.
// Peers are grouped by session key first, so only true candidates are
// compared.
func (b *builder) checkDuplicatePeers() {
	groups := make(map[string][]*Peer)
	var order []string
	for _, p := range b.peers {
		k, ok := peerKey(p)
		if !ok {
			continue
		}
		if _, seen := groups[k]; !seen {
			order = append(order, k)
		}
		groups[k] = append(groups[k], p)
	}
	for _, k := range order {
		g := groups[k]
		for j := 1; j < len(g); j++ {
			for i := 0; i < j; i++ {
				if mayShareNode(g[i].NodeSelectors, g[j].NodeSelectors, b.nodes) {
					other := ObjectRef{Kind: KindBGPPeer, Name: g[i].Name}
					f := "spec.peerAddress"
					if !g[j].Address.IsValid() {
						f = "spec.interface"
					}
					b.c.errorf(ObjectRef{Kind: KindBGPPeer, Name: g[j].Name}, f, []ObjectRef{other},
						"same BGP session (%s) as %s on nodes both select", describeSession(g[j]), other)
					break
				}
			}
		}
	}
}

// checkFRRInstances enforces FRR's model: one BGP instance per VRF on a
// node, with one AS and one router ID, so peers that can share a node and
// a VRF must agree on myASN and routerID.
func (b *builder) checkFRRInstances() {
	byVRF := make(map[string][]*Peer)
	var order []string
	for _, p := range b.peers {
		if _, seen := byVRF[p.VRF]; !seen {
			order = append(order, p.VRF)
		}
		byVRF[p.VRF] = append(byVRF[p.VRF], p)
	}
	for _, vrf := range order {
		g := byVRF[vrf]
		vrfName := vrf
		if vrfName == "" {
			vrfName = "default"
		}
		// A peer already reported for an attribute is not the reference for
		// later peers on that attribute: the one odd peer gets one error,
		// not one per peer after it.
		asnBad := make([]bool, len(g))
		idBad := make([]bool, len(g))
		for j := 1; j < len(g); j++ {
			ref := ObjectRef{Kind: KindBGPPeer, Name: g[j].Name}
			for i := 0; i < j && !(asnBad[j] && idBad[j]); i++ {
				asnDiff := !asnBad[i] && !asnBad[j] && g[i].MyASN != g[j].MyASN && g[i].MyASN != 0 && g[j].MyASN != 0
				idDiff := !idBad[i] && !idBad[j] && g[i].RouterID != g[j].RouterID
				if (!asnDiff && !idDiff) || !mayShareNode(g[i].NodeSelectors, g[j].NodeSelectors, b.nodes) {
					continue
				}
				other := ObjectRef{Kind: KindBGPPeer, Name: g[i].Name}
				if asnDiff {
					b.c.errorf(ref, "spec.myASN", []ObjectRef{other},
						"myASN %d differs from myASN %d of %s; with bgpBackend frr, peers in the same VRF (%s) on the same node share one BGP instance and its AS",
						g[j].MyASN, g[i].MyASN, other, vrfName)
					asnBad[j] = true
				}
				if idDiff {
					b.c.errorf(ref, "spec.routerID", []ObjectRef{other},
						"routerID %s differs from routerID %s of %s; with bgpBackend frr, peers in the same VRF (%s) on the same node share one BGP instance and its router ID",
						describeRouterID(g[j].RouterID), describeRouterID(g[i].RouterID), other, vrfName)
					idBad[j] = true
				}
			}
		}
	}
}

func describeRouterID(a netip.Addr) string {
	if !a.IsValid() {
		return "(unset: the node's address)"
	}
	return a.String()
}
