// Package frr renders the FRR configuration (frr.conf, FRR 8.4) that makes
// a bgp.DesiredState true: the same state the native (GoBGP) backend
// consumes, so that both backends agree on what a state means. The
// renderer (Render) is pure: no files, no daemons. Backend (backend.go)
// is the bgp.Backend of frr mode: it renders and hands the text to a
// Reloader (reload.go), which writes frr.conf and reloads the running FRR
// in place with frr-reload.py; Status and BFDPeers read FRR over vtysh.
//
// Layout of the output, modelled on MetalLB's FRR mode:
//
//   - global settings: `frr defaults traditional`, hostname, logging,
//     forwarding as the node has it, next-hop tracking through the default
//     route, `bgp route-map delay-timer 0` (route-map edits apply at once);
//   - per announcement set (the sessions a prefix goes to, with the
//     attributes each gives it: see tags.go) a route-map `lbs-tag-T` that
//     sets route tag T;
//   - per session: a route-map OUT with one entry per tag the session
//     announces (`match tag T` and the session's attributes for it),
//     ending in an explicit deny, and a route-map IN that denies
//     everything (received routes are never installed);
//   - one `router bgp ASN [vrf NAME]` per VRF, holding every session of
//     that VRF, and per address family the `network P route-map
//     lbs-tag-T` statements of every prefix some session of the VRF
//     announces plus the activation and route-maps of the sessions
//     carrying that family;
//   - a `bfd` block with the BFD profiles the sessions use.
//
// Output is deterministic: sessions sorted by name, routes by prefix,
// routers by VRF (default VRF first), profiles by name. What FRR cannot
// express is reported as an error naming the session.
package frr

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lbstack/lbstack/pkg/bfd"
	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/bgptimers"
	"github.com/lbstack/lbstack/pkg/community"
	"github.com/lbstack/lbstack/pkg/config"
)

// Options are the node-level settings of the rendered configuration; the
// BGP sessions and routes come from the DesiredState.
type Options struct {
	// Hostname is FRR's hostname (the node name); "lbstack" when empty. It
	// must be one word.
	Hostname string
	// LogLevel is FRR's log level for `log stdout LEVEL`: one of
	// emergencies, alerts, critical, errors, warnings, notifications,
	// informational, debugging; "informational" when empty. "debugging"
	// also turns on the BGP, BFD and zebra debug logs MetalLB turns on.
	LogLevel string
	// IPForwarding and IPv6Forwarding state the node's forwarding settings
	// (`[no] ip forwarding`, `[no] ipv6 forwarding`): the configuration
	// must state them as the node has them, or a reload flips forwarding
	// (NodeForwarding reads them). nil leaves the line out.
	IPForwarding, IPv6Forwarding *bool
	// ExtraConfig is appended verbatim at the end (MetalLB's extra FRR
	// configuration). It is not validated here.
	ExtraConfig string
}

// DefaultHostname is the hostname when Options.Hostname is empty.
const DefaultHostname = "lbstack"

// DefaultLogLevel is the log level when Options.LogLevel is empty.
const DefaultLogLevel = "informational"

var logLevels = []string{"emergencies", "alerts", "critical", "errors", "warnings", "notifications", "informational", "debugging"}

// The limits FRR 8.4 puts on values the state carries.
const (
	// maxTimer is the largest keepalive, hold or connect time in seconds.
	maxTimer = 65535
	// maxRouteMapSeq is the last route-map sequence number; the final
	// deny of every route-map OUT takes it.
	maxRouteMapSeq = 65535
	// routeMapStep is the sequence number of single-entry route-maps
	// (IN, the tags').
	routeMapStep = 10
)

// bgpPort is the port FRR connects to unless a neighbour says otherwise.
const bgpPort uint16 = 179

// Render returns the complete frr.conf for the state, or an error when any
// session cannot be expressed (RenderState leaves those out instead).
func Render(d bgp.DesiredState, opts Options) (string, error) {
	text, skipped, err := RenderState(d, opts)
	if err != nil {
		return "", err
	}
	if !skipped.Empty() {
		return "", fmt.Errorf("frr: %w", skipped)
	}
	return text, nil
}

// RenderState returns the frr.conf for the state. The state is normalised
// first (bgp.DesiredState.Normalize), so routes of a family a session does
// not carry are dropped and LOCAL_PREF is only set towards iBGP peers. A
// session FRR cannot express (a value its configuration language cannot
// carry, a second AS in one VRF, ...) is left out with its routes and
// named in skipped: the text configures every other session, so one bad
// peer never stops a node's other announcements. err is for what no
// configuration can be written without (the options).
func RenderState(d bgp.DesiredState, opts Options) (text string, skipped *bgp.SkippedError, err error) {
	r, err := render(d, opts)
	if err != nil {
		return "", nil, err
	}
	return joinSegments(r.segs), r.skipped, nil
}

// rendering is a rendered configuration with what Backend.ApplyChanges
// needs to edit it: the model and the state it expresses.
type rendering struct {
	segs []segment
	m    *model
	// norm is the state normalised, without the sessions skipped.
	norm    bgp.DesiredState
	skipped *bgp.SkippedError
}

func render(d bgp.DesiredState, opts Options) (*rendering, error) {
	skipped := &bgp.SkippedError{}
	norm, nerr := d.Normalize()
	if sk, ok := nerr.(*bgp.SkippedError); ok {
		skipped.Merge(sk)
	} else if nerr != nil {
		return nil, fmt.Errorf("frr: %w", nerr)
	}
	hostname := opts.Hostname
	if hostname == "" {
		hostname = DefaultHostname
	}
	if !isWord(hostname) {
		return nil, fmt.Errorf("frr: hostname %q is not one word", hostname)
	}
	level := opts.LogLevel
	if level == "" {
		level = DefaultLogLevel
	}
	if !slices.Contains(logLevels, level) {
		return nil, fmt.Errorf("frr: log level %q is not one of %s", level, strings.Join(logLevels, ", "))
	}

	m := buildModel(norm, skipped)

	var w writer
	w.line("frr defaults traditional")
	w.line("hostname %s", hostname)
	w.line("log stdout %s", level)
	w.line("log timestamp precision 3")
	if level == "debugging" {
		for _, l := range debugLines {
			w.line("%s", l)
		}
	}
	if f := opts.IPForwarding; f != nil {
		w.line("%sip forwarding", no(!*f))
	}
	if f := opts.IPv6Forwarding; f != nil {
		w.line("%sipv6 forwarding", no(!*f))
	}
	w.line("ip nht resolve-via-default")
	w.line("ipv6 nht resolve-via-default")
	w.line("bgp route-map delay-timer 0")
	w.line("!")

	for _, t := range m.tags {
		writeTagMap(&w, t)
	}
	for _, r := range m.routers {
		for _, n := range r.neighbors {
			writeFilters(&w, n)
		}
	}
	for _, r := range m.routers {
		writeRouter(&w, r)
	}
	if len(m.profiles) > 0 {
		w.line("bfd")
		for _, p := range m.profiles {
			writeProfile(&w, p)
		}
		w.line("exit")
		w.line("!")
	}
	if extra := strings.TrimRight(opts.ExtraConfig, "\n"); extra != "" {
		w.line("%s", extra)
		w.line("!")
	}
	if skipped.Empty() {
		skipped = nil
	}
	return &rendering{segs: w.done(), m: m, norm: norm.Without(skipped), skipped: skipped}, nil
}

var debugLines = []string{
	"debug zebra events",
	"debug zebra nht",
	"debug zebra kernel",
	"debug zebra rib",
	"debug zebra nexthop",
	"debug bgp neighbor-events",
	"debug bgp updates",
	"debug bgp keepalives",
	"debug bgp nht",
	"debug bgp zebra",
	"debug bfd network",
	"debug bfd peer",
	"debug bfd zebra",
}

func no(b bool) string {
	if b {
		return "no "
	}
	return ""
}

// model is the state arranged as FRR wants it.
type model struct {
	routers  []*router
	profiles []bfd.Profile
	// tags are the tags in use, ascending; tagOf has each announcement
	// set's (setKey).
	tags  []uint32
	tagOf map[string]uint32
}

// router is one `router bgp` block: every session of one VRF.
type router struct {
	vrf      string
	asn      uint32
	routerID netip.Addr
	// neighbors sorted by session name.
	neighbors []*neighbor
	// networks of each family: every prefix a session of the router
	// announces, sorted, and the tag of each (parallel).
	networks4, networks6 []netip.Prefix
	tags4, tags6         []uint32
}

// neighbor is one session with its rendering decisions.
type neighbor struct {
	s bgp.Session
	// id is the FRR-safe form of the session name used in filter names.
	id string
	// keepalive and hold in seconds; set tells whether to render them.
	keepalive, hold int
	timersSet       bool
	connect         int
	// profile is the FRR name of the BFD profile; empty for no BFD.
	profile string
	// routes are the session's routes (normalised, sorted by prefix).
	routes []bgp.Route
	// entries are the route-map OUT entries, by sequence number: one per
	// tag whose announcement set holds the session.
	entries []*outEntry
}

// outEntry is one entry of a session's route-map OUT: the routes of one
// tag, with the attributes the session gives them.
type outEntry struct {
	seq       int
	tag       uint32
	v6        bool
	std       []string
	large     []string
	localPref uint32
}

func (n *neighbor) inMap() string  { return "lbs-" + n.id + "-in" }
func (n *neighbor) outMap() string { return "lbs-" + n.id + "-out" }

// routerKey identifies a router block: FRR runs one BGP instance per VRF.
type routerKey struct{ vrf string }

// buildModel arranges the sessions FRR can express; each other one is
// added to skipped, with why.
func buildModel(d bgp.DesiredState, skipped *bgp.SkippedError) *model {
	routers := map[routerKey]*router{}
	// owner tells which session set a router's AS and router ID, for
	// error messages.
	owner := map[routerKey]string{}
	peers := map[routerKey]map[netip.Addr]string{}
	profiles := map[string]bfd.Profile{}
	profileOwner := map[string]string{}
	for _, s := range d.Sessions {
		n, err := newNeighbor(s, d.Routes[s.Name])
		if err != nil {
			skipped.Add(s.Name, err)
			continue
		}
		k := routerKey{vrf: s.VRF}
		r, ok := routers[k]
		if !ok {
			r = &router{vrf: s.VRF, asn: s.MyASN, routerID: s.RouterID}
			routers[k] = r
			owner[k] = s.Name
			peers[k] = map[netip.Addr]string{}
		}
		switch {
		case r.asn != s.MyASN:
			skipped.Add(s.Name, fmt.Errorf("session %q: myASN %d differs from myASN %d of session %q in %s; FRR runs one BGP instance per VRF",
				s.Name, s.MyASN, r.asn, owner[k], vrfDesc(s.VRF)))
			continue
		case r.routerID != s.RouterID:
			skipped.Add(s.Name, fmt.Errorf("session %q: router ID %s differs from router ID %s of session %q in %s; FRR runs one BGP instance per VRF",
				s.Name, s.RouterID, r.routerID, owner[k], vrfDesc(s.VRF)))
			continue
		}
		if other, dup := peers[k][s.PeerAddr]; dup {
			skipped.Add(s.Name, fmt.Errorf("session %q: peer address %s is also the peer of session %q in %s; FRR keys neighbors by address",
				s.Name, s.PeerAddr, other, vrfDesc(s.VRF)))
			continue
		}
		if p := s.BFDProfile; p != nil {
			if prev, ok := profiles[n.profile]; ok && prev != *p {
				skipped.Add(s.Name, fmt.Errorf("session %q: BFD profile %q differs from the profile of the same name of session %q",
					s.Name, p.Name, profileOwner[n.profile]))
				continue
			}
			if _, ok := profiles[n.profile]; !ok {
				profiles[n.profile] = *p
				profileOwner[n.profile] = s.Name
			}
		}
		peers[k][s.PeerAddr] = s.Name
		r.neighbors = append(r.neighbors, n)
	}
	m := &model{}
	for _, r := range routers {
		if len(r.neighbors) == 0 {
			continue
		}
		m.routers = append(m.routers, r)
	}
	slices.SortFunc(m.routers, func(a, b *router) int { return cmp.Compare(a.vrf, b.vrf) })
	assignTags(m, skipped)
	for name, p := range profiles {
		p.Name = name
		m.profiles = append(m.profiles, p)
	}
	slices.SortFunc(m.profiles, func(a, b bfd.Profile) int { return cmp.Compare(a.Name, b.Name) })
	return m
}

func vrfDesc(vrf string) string {
	if vrf == "" {
		return "the default VRF"
	}
	return fmt.Sprintf("VRF %q", vrf)
}

// newNeighbor checks what FRR cannot express for a session and computes
// its rendering: timers, BFD profile name and its (normalised) routes.
func newNeighbor(s bgp.Session, routes []bgp.Route) (*neighbor, error) {
	fail := func(format string, args ...any) error {
		return fmt.Errorf("session %q: %s", s.Name, fmt.Sprintf(format, args...))
	}
	n := &neighbor{s: s, id: SanitizeName(s.Name, maxNameLen)}
	if s.VRF != "" {
		if why := config.VRFNameProblem(s.VRF); why != "" {
			return nil, fail("invalid VRF: %s", why)
		}
	}
	if s.PeerAddr.Zone() != "" || s.SourceAddr.Zone() != "" {
		return nil, fail("addresses with a zone (%s) cannot be configured in FRR; use an interface peer", s.PeerAddr)
	}
	if s.PeerAddr.Is4In6() {
		return nil, fail("peer address %s is an IPv4-mapped IPv6 address; give it as IPv4", s.PeerAddr)
	}
	if s.Password != "" {
		if why := config.FRRPasswordProblem(s.Password); why != "" {
			return nil, fail("password %s", why)
		}
	}
	var err error
	n.keepalive, n.hold, n.timersSet, err = timers(s.KeepaliveTime, s.HoldTime)
	if err != nil {
		return nil, fail("%v", err)
	}
	ct := s.EffectiveConnectTime()
	n.connect = int(ct / time.Second)
	if n.connect < 1 || n.connect > maxTimer {
		return nil, fail("connect time %s is outside FRR's range 1s..%ds", ct, maxTimer)
	}
	if p := s.BFDProfile; p != nil {
		if p.Name == "" {
			return nil, fail("BFD profile has no name")
		}
		if why := config.BFDProfileProblem(p); why != "" {
			return nil, fail("BFD profile %q: %s", p.Name, why)
		}
		n.profile = SanitizeName(p.Name, maxProfileName)
	}
	n.routes = routes
	return n, nil
}

// timers returns the keepalive and hold times in whole seconds (BGP
// carries seconds; fractions are dropped, as the native backend does).
// When only one is given the other follows MetalLB's rule (keepalive is a
// third of hold; hold three times keepalive). set is false when both are
// nil: FRR keeps its defaults.
func timers(keepalive, hold *time.Duration) (ka, ht int, set bool, err error) {
	h, k, set := bgptimers.Derive(hold, keepalive)
	if !set {
		return 0, 0, false, nil
	}
	if k < 0 || h < 0 {
		return 0, 0, false, fmt.Errorf("negative keepalive (%s) or hold time (%s)", k, h)
	}
	ka, ht = int(k/time.Second), int(h/time.Second)
	switch {
	case ka > maxTimer || ht > maxTimer:
		return 0, 0, false, fmt.Errorf("keepalive %ds or hold time %ds is above FRR's maximum of %ds", ka, ht, maxTimer)
	case !bgptimers.HoldTimeAllowed(time.Duration(ht) * time.Second):
		return 0, 0, false, fmt.Errorf("hold time %s must be 0 or at least 3s", h)
	case ht == 0:
		// A hold time of 0 disables keepalives (bgptimers.KeepaliveAllowed).
		ka = 0
	}
	return ka, ht, true, nil
}

// commKey is a compact identity of a (sorted) community list.
func commKey(cs []community.Community) string {
	if len(cs) == 0 {
		return ""
	}
	b := make([]byte, 0, 12*len(cs))
	for _, c := range cs {
		b = append(b, byte(c.Type))
		if c.Type == community.Large {
			b = strconv.AppendUint(b, uint64(c.Global), 10)
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(c.Local1), 10)
			b = append(b, ':')
			b = strconv.AppendUint(b, uint64(c.Local2), 10)
		} else {
			b = strconv.AppendUint(b, uint64(c.Uint32()), 10)
		}
		b = append(b, ' ')
	}
	return string(b)
}

// networkLine is the network statement of p with tag t, as written
// under its address family.
func networkLine(p netip.Prefix, t uint32) string {
	b := make([]byte, 0, 80)
	b = append(b, "  network "...)
	b = p.AppendTo(b)
	b = append(b, " route-map "...)
	b = append(b, tagMapPrefix...)
	b = strconv.AppendUint(b, uint64(t), 10)
	return string(b)
}

// writeTagMap writes the route-map the network statements of tag t name:
// it only sets the tag, which the sessions' route-maps OUT match.
func writeTagMap(w *writer, t uint32) {
	w.line("route-map %s permit %d", tagMap(t), routeMapStep)
	w.line(" set tag %d", t)
	w.line("exit")
	w.line("!")
}

// writeFilters writes a session's route-maps.
func writeFilters(w *writer, n *neighbor) {
	for _, g := range n.entries {
		w.line("route-map %s permit %d", n.outMap(), g.seq)
		w.line(" match tag %d", g.tag)
		if len(g.std) > 0 {
			w.line(" set community %s additive", strings.Join(g.std, " "))
		}
		if len(g.large) > 0 {
			w.line(" set large-community %s additive", strings.Join(g.large, " "))
		}
		if g.localPref != 0 {
			w.line(" set local-preference %d", g.localPref)
		}
		if nh := n.s.NextHopIPv4; !g.v6 && nh.IsValid() {
			w.line(" set ip next-hop %s", nh)
		}
		if nh := n.s.NextHopIPv6; g.v6 && nh.IsValid() {
			w.line(" set ipv6 next-hop global %s", nh)
		}
		w.line("exit")
	}
	// Everything else is denied; the entry also makes the route-map exist
	// when the session announces nothing.
	w.line("route-map %s deny %d", n.outMap(), maxRouteMapSeq)
	w.line("exit")
	// Received routes are never installed.
	w.line("route-map %s deny %d", n.inMap(), routeMapStep)
	w.line("exit")
	w.line("!")
}

func writeRouter(w *writer, r *router) {
	if r.vrf == "" {
		w.line("router bgp %d", r.asn)
	} else {
		w.line("router bgp %d vrf %s", r.asn, r.vrf)
	}
	w.line(" bgp router-id %s", r.routerID)
	w.line(" no bgp ebgp-requires-policy")
	w.line(" no bgp default ipv4-unicast")
	w.line(" no bgp network import-check")
	w.line(" bgp graceful-restart preserve-fw-state")
	for _, n := range r.neighbors {
		writeNeighbor(w, r, n)
	}
	for _, v6 := range []bool{false, true} {
		writeFamily(w, r, v6)
	}
	w.line("exit")
	w.line("!")
}

func writeNeighbor(w *writer, r *router, n *neighbor) {
	s := &n.s
	a := s.PeerAddr.String()
	remote := strconv.FormatUint(uint64(s.PeerASN), 10)
	if s.DynamicASN != "" {
		remote = s.DynamicASN
	}
	w.line(" neighbor %s remote-as %s", a, remote)
	w.line(" neighbor %s description %s", a, SanitizeName(s.Name, maxDescription))
	if s.LocalASN != 0 && s.LocalASN != r.asn {
		w.line(" neighbor %s local-as %d no-prepend replace-as", a, s.LocalASN)
	}
	if s.Port != bgpPort {
		w.line(" neighbor %s port %d", a, s.Port)
	}
	if n.timersSet {
		w.line(" neighbor %s timers %d %d", a, n.keepalive, n.hold)
	}
	w.line(" neighbor %s timers connect %d", a, n.connect)
	if s.Password != "" {
		w.line(" neighbor %s password %s", a, s.Password)
	}
	if s.EBGPMultiHop {
		w.line(" neighbor %s ebgp-multihop", a)
	} else if s.PeerAddr.Is6() && !s.IBGP() {
		// MetalLB does the same for single-hop IPv6 eBGP: FRR's connected
		// check fails for a peer whose global address is not on a
		// connected prefix of the node (for example reached through a
		// link-local next hop).
		w.line(" neighbor %s disable-connected-check", a)
	}
	if s.SourceAddr.IsValid() {
		w.line(" neighbor %s update-source %s", a, s.SourceAddr)
	}
	if s.GracefulRestart {
		w.line(" neighbor %s graceful-restart", a)
	}
	if n.profile != "" {
		w.line(" neighbor %s bfd", a)
		w.line(" neighbor %s bfd profile %s", a, n.profile)
	}
}

func writeFamily(w *writer, r *router, v6 bool) {
	fam, networks, tags := "ipv4", r.networks4, r.tags4
	if v6 {
		fam, networks, tags = "ipv6", r.networks6, r.tags6
	}
	var active []*neighbor
	for _, n := range r.neighbors {
		if (v6 && n.s.CarriesIPv6()) || (!v6 && n.s.CarriesIPv4()) {
			active = append(active, n)
		}
	}
	if len(active) == 0 && len(networks) == 0 {
		return
	}
	w.line(" !")
	w.line(" address-family %s unicast", fam)
	lines := make([]string, len(networks))
	for i, p := range networks {
		lines[i] = networkLine(p, tags[i])
	}
	w.block(blockKey{vrf: r.vrf, v6: v6}, networks, tags, lines)
	for _, n := range active {
		a := n.s.PeerAddr.String()
		w.line("  neighbor %s activate", a)
		w.line("  neighbor %s route-map %s in", a, n.inMap())
		w.line("  neighbor %s route-map %s out", a, n.outMap())
	}
	w.line(" exit-address-family")
}

func writeProfile(w *writer, p bfd.Profile) {
	w.line(" profile %s", p.Name)
	if p.ReceiveInterval != 0 {
		w.line("  receive-interval %d", p.ReceiveInterval)
	}
	if p.TransmitInterval != 0 {
		w.line("  transmit-interval %d", p.TransmitInterval)
	}
	if p.DetectMultiplier != 0 {
		w.line("  detect-multiplier %d", p.DetectMultiplier)
	}
	if p.EchoMode {
		w.line("  echo-mode")
	}
	if p.EchoInterval != 0 {
		// MetalLB's single echoInterval sets both directions, as FRR's
		// deprecated `echo-interval` did.
		w.line("  echo receive-interval %d", p.EchoInterval)
		w.line("  echo transmit-interval %d", p.EchoInterval)
	}
	if p.PassiveMode {
		w.line("  passive-mode")
	}
	if p.MinimumTTL != 0 {
		w.line("  minimum-ttl %d", p.MinimumTTL)
	}
	w.line(" exit")
}

// writer accumulates lines: the configuration as a sequence of fixed
// text and blocks of lines, one line per prefix (the network statements
// of an address family), which Backend.ApplyChanges edits in place.
type writer struct {
	b    strings.Builder
	segs []segment
}

// segment is fixed text, or a block when blk is set.
type segment struct {
	text string
	blk  *block
}

// blockKey names a block: the network statements of a router's address
// family.
type blockKey struct {
	vrf string
	v6  bool
}

// block is the network statements of one address family, one per
// prefix, in prefix order (bgp.ComparePrefixes), without newlines, with
// each prefix's tag.
type block struct {
	key      blockKey
	prefixes []netip.Prefix
	tags     []uint32
	lines    []string
}

func (w *writer) line(format string, args ...any) {
	fmt.Fprintf(&w.b, format, args...)
	w.b.WriteByte('\n')
}

func (w *writer) block(k blockKey, prefixes []netip.Prefix, tags []uint32, lines []string) {
	w.flush()
	w.segs = append(w.segs, segment{blk: &block{key: k, prefixes: prefixes, tags: tags, lines: lines}})
}

func (w *writer) flush() {
	if w.b.Len() > 0 {
		w.segs = append(w.segs, segment{text: w.b.String()})
		w.b.Reset()
	}
}

// done returns the segments written.
func (w *writer) done() []segment {
	w.flush()
	return w.segs
}

// joinSegments is the text of segments.
func joinSegments(segs []segment) string {
	n := 0
	for _, s := range segs {
		n += len(s.text)
		if s.blk != nil {
			for _, l := range s.blk.lines {
				n += len(l) + 1
			}
		}
	}
	var b strings.Builder
	b.Grow(n)
	for _, s := range segs {
		b.WriteString(s.text)
		if s.blk != nil {
			for _, l := range s.blk.lines {
				b.WriteString(l)
				b.WriteByte('\n')
			}
		}
	}
	return b.String()
}
