package lab

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"sort"
	"strings"
)

// RouterConfig is the upstream router's BGP and BFD configuration, as in a
// scenario's expect.md. It renders to one frr.conf.
type RouterConfig struct {
	ASN      uint32 `json:"asn"`
	RouterID string `json:"routerID"`
	// Keepalive and Hold are the BGP timers in seconds.
	Keepalive int `json:"keepalive"`
	Hold      int `json:"hold"`
	// MaximumPaths is the ECMP width (eBGP and iBGP).
	MaximumPaths int `json:"maximumPaths"`
	// BFD is the profile used by peers with BFD on.
	BFD   BFDProfile   `json:"bfd"`
	Peers []RouterPeer `json:"peers"`
}

// BFDProfile is the router side's BFD timers.
type BFDProfile struct {
	ReceiveMS  int `json:"receiveMS"`
	TransmitMS int `json:"transmitMS"`
	Multiplier int `json:"multiplier"`
}

// RouterPeer is one BGP neighbour of the router.
type RouterPeer struct {
	Address string `json:"address"`
	ASN     uint32 `json:"asn"`
	BFD     bool   `json:"bfd,omitempty"`
	// Password turns on TCP MD5 for the session.
	Password string `json:"password,omitempty"`
	// Port is the peer's BGP port when not 179 (Calico's listenPort).
	Port int `json:"port,omitempty"`
}

// Render returns the router's frr.conf. The router accepts only the lab's
// service ranges (PoolPrefixes) and announces nothing back, so a
// misbehaving speaker can neither make the lab route a real address nor
// learn routes from the router.
func (c RouterConfig) Render() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("frr defaults traditional")
	// The router forwards between the client network and the nodes.
	w("ip forwarding")
	w("ipv6 forwarding")
	// Route-map edits take effect at once (the default delays them 5 s).
	w("bgp route-map delay-timer 0")
	w("!")
	w("bfd")
	w(" profile lab")
	w("  receive-interval %d", c.BFD.ReceiveMS)
	w("  transmit-interval %d", c.BFD.TransmitMS)
	w("  detect-multiplier %d", c.BFD.Multiplier)
	w(" exit")
	w("exit")
	w("!")
	var seq4, seq6 int
	for _, p := range PoolPrefixes {
		pfx := netip.MustParsePrefix(p)
		if pfx.Addr().Is4() {
			seq4 += 5
			w("ip prefix-list LAB-POOLS seq %d permit %s le 32", seq4, p)
		} else {
			seq6 += 5
			w("ipv6 prefix-list LAB-POOLS6 seq %d permit %s le 128", seq6, p)
		}
	}
	w("!")
	w("route-map LAB-IN permit 10")
	w(" match ip address prefix-list LAB-POOLS")
	w("exit")
	w("!")
	w("route-map LAB-IN6 permit 10")
	w(" match ipv6 address prefix-list LAB-POOLS6")
	w("exit")
	w("!")
	w("route-map LAB-OUT deny 10")
	w("exit")
	w("!")
	w("router bgp %d", c.ASN)
	w(" bgp router-id %s", c.RouterID)
	w(" no bgp ebgp-requires-policy")
	w(" no bgp default ipv4-unicast")
	w(" timers bgp %d %d", c.Keepalive, c.Hold)
	peers := append([]RouterPeer(nil), c.Peers...)
	sort.Slice(peers, func(i, j int) bool { return peers[i].Address < peers[j].Address })
	for _, p := range peers {
		w(" neighbor %s remote-as %d", p.Address, p.ASN)
		// Retry a refused connection after 1 s, not the 120 s default:
		// speakers come and go all the time in tests.
		w(" neighbor %s timers connect 1", p.Address)
		if p.Port != 0 && p.Port != 179 {
			w(" neighbor %s port %d", p.Address, p.Port)
		}
		if p.Password != "" {
			w(" neighbor %s password %s", p.Address, p.Password)
		}
		if p.BFD {
			w(" neighbor %s bfd", p.Address)
			w(" neighbor %s bfd profile lab", p.Address)
		}
	}
	for _, af := range []struct {
		name, in string
		v6       bool
	}{{"ipv4 unicast", "LAB-IN", false}, {"ipv6 unicast", "LAB-IN6", true}} {
		w(" !")
		w(" address-family %s", af.name)
		w("  maximum-paths %d", c.MaximumPaths)
		w("  maximum-paths ibgp %d", c.MaximumPaths)
		for _, p := range peers {
			if isV6(p.Address) != af.v6 {
				continue
			}
			w("  neighbor %s activate", p.Address)
			w("  neighbor %s route-map %s in", p.Address, af.in)
			w("  neighbor %s route-map LAB-OUT out", p.Address)
		}
		w(" exit-address-family")
	}
	w("exit")
	return b.String()
}

func isV6(addr string) bool { return strings.Contains(addr, ":") }

// Router is the lab's upstream router: FRR in RouterNetns.
type Router struct {
	FRR *FRR
}

// Configure renders cfg and applies it to the running router.
func (r *Router) Configure(ctx context.Context, cfg RouterConfig) error {
	if err := r.FRR.Apply(ctx, cfg.Render()); err != nil {
		return err
	}
	// FRR 8.4 (the router's) turns BFD back on when it is removed as
	// frr-reload.py removes it: "no neighbor X bfd", then "no neighbor X
	// bfd profile P", which re-adds "neighbor X bfd". A lone "no neighbor
	// X bfd" sticks. (FRR 10.3, the speakers' image, keeps it off.)
	running, err := r.FRR.Vtysh(ctx, "show running-config")
	if err != nil {
		return err
	}
	var fix []string
	for _, p := range cfg.Peers {
		if !p.BFD && strings.Contains(running, "\n neighbor "+p.Address+" bfd\n") {
			fix = append(fix, "no neighbor "+p.Address+" bfd")
		}
	}
	if len(fix) == 0 {
		return nil
	}
	cmds := append([]string{"configure terminal", fmt.Sprintf("router bgp %d", cfg.ASN)}, fix...)
	if _, err := r.FRR.Vtysh(ctx, append(cmds, "end")...); err != nil {
		return fmt.Errorf("router: turn BFD off: %w", err)
	}
	return nil
}

// Neighbor is one BGP session as the router sees it.
type Neighbor struct {
	Address  string `json:"address"`
	RemoteAS uint32 `json:"remoteAs"`
	State    string `json:"state"`
	// PrefixesReceived counts accepted prefixes.
	PrefixesReceived int `json:"pfxRcd"`
	// Uptime is how long the session has been in its state.
	UptimeMsec int64 `json:"peerUptimeMsec"`
}

// Established reports whether the session is up.
func (n Neighbor) Established() bool { return n.State == "Established" }

// Neighbors returns the router's BGP sessions, both address families.
func (r *Router) Neighbors(ctx context.Context) ([]Neighbor, error) {
	var raw map[string]struct {
		Peers map[string]Neighbor `json:"peers"`
	}
	if err := r.FRR.VtyshJSON(ctx, "show bgp summary json", &raw); err != nil {
		return nil, err
	}
	return parseNeighbors(raw), nil
}

// LastReset is why the router last brought its session with addr down:
// FRR's lastResetDueTo ("Peer closed the session", "BFD down received",
// ...) followed, when a NOTIFICATION was sent or received, by its reason
// ("BGP Notification send (Hold Timer Expired/Unspecific)"); "" when the
// session never went down.
func (r *Router) LastReset(ctx context.Context, addr string) (string, error) {
	var raw map[string]neighborResetJSON
	if err := r.FRR.VtyshJSON(ctx, "show bgp neighbors "+addr+" json", &raw); err != nil {
		return "", err
	}
	return raw[addr].String(), nil
}

type neighborResetJSON struct {
	LastResetDueTo         string `json:"lastResetDueTo"`
	LastNotificationReason string `json:"lastNotificationReason"`
}

func (n neighborResetJSON) String() string {
	if n.LastNotificationReason != "" && strings.Contains(n.LastResetDueTo, "Notification") {
		return n.LastResetDueTo + " (" + n.LastNotificationReason + ")"
	}
	return n.LastResetDueTo
}

func parseNeighbors(raw map[string]struct {
	Peers map[string]Neighbor `json:"peers"`
}) []Neighbor {
	seen := map[string]bool{}
	var out []Neighbor
	for _, af := range raw {
		for addr, n := range af.Peers {
			if seen[addr] {
				continue
			}
			seen[addr] = true
			n.Address = addr
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Address < out[j].Address })
	return out
}

// Path is one BGP path for a prefix in the router's RIB.
type Path struct {
	NextHop     string
	Peer        string
	ASPath      string
	Origin      string
	LocalPref   uint32
	MED         uint32
	Communities []string
	// LargeCommunities are "global:local1:local2" strings.
	LargeCommunities []string
	Best             bool
	Multipath        bool
	Valid            bool
}

// Route is a prefix in the router's BGP RIB with every path to it.
type Route struct {
	Prefix string
	Paths  []Path
}

// NextHops returns the next hops of the paths the router uses: the best
// path and its multipath (ECMP) siblings, sorted.
func (rt Route) NextHops() []string {
	var out []string
	for _, p := range rt.Paths {
		if p.Valid && (p.Best || p.Multipath) {
			out = append(out, p.NextHop)
		}
	}
	sortAddrs(out)
	return out
}

// bgpPathJSON is FRR 8.4's per-prefix path (`show bgp ... PREFIX json`).
// The table form (`show bgp ipv4 unicast json`) omits communities, so
// Route reads each prefix on its own.
type bgpPathJSON struct {
	ASPath struct {
		String string `json:"string"`
	} `json:"aspath"`
	Origin    string  `json:"origin"`
	Metric    uint32  `json:"metric"`
	LocPrf    *uint32 `json:"locPrf"`
	Valid     bool    `json:"valid"`
	Multipath bool    `json:"multipath"`
	Bestpath  struct {
		Overall bool `json:"overall"`
	} `json:"bestpath"`
	Community struct {
		String string `json:"string"`
	} `json:"community"`
	LargeCommunity struct {
		String string `json:"string"`
	} `json:"largeCommunity"`
	Nexthops []struct {
		IP   string `json:"ip"`
		Used bool   `json:"used"`
	} `json:"nexthops"`
	Peer struct {
		PeerID string `json:"peerId"`
	} `json:"peer"`
}

// parseRoute decodes FRR's per-prefix JSON. An unknown prefix decodes to a
// route without paths.
func parseRoute(data []byte) (Route, error) {
	var raw struct {
		Prefix string        `json:"prefix"`
		Paths  []bgpPathJSON `json:"paths"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return Route{}, err
	}
	rt := Route{Prefix: raw.Prefix}
	for _, p := range raw.Paths {
		path := Path{
			Peer:      p.Peer.PeerID,
			ASPath:    p.ASPath.String,
			Origin:    p.Origin,
			MED:       p.Metric,
			Best:      p.Bestpath.Overall,
			Multipath: p.Multipath,
			Valid:     p.Valid,
			// FRR prints no local-pref for paths that carry none
			// (eBGP); the default applies.
			LocalPref: 100,
		}
		if p.LocPrf != nil {
			path.LocalPref = *p.LocPrf
		}
		if p.ASPath.String == "Local" {
			path.ASPath = ""
		}
		// An IPv6 path carries the peer's global and link-local next hops
		// and FRR forwards over the link-local one ("used"); the path's
		// next hop is the global one, as `show bgp` prints it and as it
		// names the node.
		for _, nh := range p.Nexthops {
			if a, err := netip.ParseAddr(nh.IP); err == nil && a.IsLinkLocalUnicast() {
				continue
			}
			if path.NextHop == "" || nh.Used {
				path.NextHop = nh.IP
			}
		}
		if path.NextHop == "" && len(p.Nexthops) > 0 {
			path.NextHop = p.Nexthops[0].IP
		}
		if s := strings.TrimSpace(p.Community.String); s != "" {
			path.Communities = strings.Fields(s)
		}
		if s := strings.TrimSpace(p.LargeCommunity.String); s != "" {
			path.LargeCommunities = strings.Fields(s)
		}
		rt.Paths = append(rt.Paths, path)
	}
	return rt, nil
}

// Route returns the router's RIB entry for prefix (e.g. "203.0.113.1/32")
// with every path's next hop, AS path, communities and local-pref. A prefix
// the router does not have comes back without paths.
func (r *Router) Route(ctx context.Context, prefix string) (Route, error) {
	pfx, err := netip.ParsePrefix(prefix)
	if err != nil {
		return Route{}, fmt.Errorf("route %q: %w", prefix, err)
	}
	af := "ipv4"
	if pfx.Addr().Is6() {
		af = "ipv6"
	}
	out, err := r.FRR.Vtysh(ctx, fmt.Sprintf("show bgp %s unicast %s json", af, pfx.Masked()))
	if err != nil {
		return Route{}, err
	}
	rt, err := parseRoute([]byte(out))
	if err != nil {
		return Route{}, fmt.Errorf("router: route %s: %w", prefix, err)
	}
	// FRR answers a less specific covering route when the exact one is
	// missing; callers asked for this prefix only.
	if rt.Prefix != pfx.Masked().String() {
		return Route{Prefix: pfx.Masked().String()}, nil
	}
	return rt, nil
}

// Routes returns every prefix in the router's BGP RIB for the address
// family ("ipv4" or "ipv6") with its paths' next hops (the table view has
// no communities; use Route for those).
func (r *Router) Routes(ctx context.Context, af string) ([]Route, error) {
	out, err := r.FRR.Vtysh(ctx, fmt.Sprintf("show bgp %s unicast json", af))
	if err != nil {
		return nil, err
	}
	return parseRIB([]byte(out))
}

func parseRIB(data []byte) ([]Route, error) {
	var raw struct {
		Routes map[string][]struct {
			Valid     bool    `json:"valid"`
			Bestpath  bool    `json:"bestpath"`
			Multipath bool    `json:"multipath"`
			Path      string  `json:"path"`
			Origin    string  `json:"origin"`
			LocPrf    *uint32 `json:"locPrf"`
			PeerID    string  `json:"peerId"`
			Nexthops  []struct {
				IP   string `json:"ip"`
				Used bool   `json:"used"`
			} `json:"nexthops"`
		} `json:"routes"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("router RIB: %w", err)
	}
	var out []Route
	for prefix, paths := range raw.Routes {
		rt := Route{Prefix: prefix}
		for _, p := range paths {
			path := Path{Valid: p.Valid, Best: p.Bestpath, Multipath: p.Multipath, ASPath: p.Path, Origin: p.Origin, Peer: p.PeerID, LocalPref: 100}
			if p.LocPrf != nil {
				path.LocalPref = *p.LocPrf
			}
			for _, nh := range p.Nexthops {
				if path.NextHop == "" || nh.Used {
					path.NextHop = nh.IP
				}
			}
			rt.Paths = append(rt.Paths, path)
		}
		out = append(out, rt)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Prefix < out[j].Prefix })
	return out, nil
}

// BFDPeer is one BFD session as the router sees it.
type BFDPeer struct {
	Peer       string `json:"peer"`
	Local      string `json:"local"`
	Interface  string `json:"interface"`
	Status     string `json:"status"`
	Diagnostic string `json:"diagnostic"`
	// Receive/TransmitMS are the negotiated intervals.
	ReceiveMS  int `json:"receive-interval"`
	TransmitMS int `json:"transmit-interval"`
	Multiplier int `json:"detect-multiplier"`
}

// Up reports whether the session is up.
func (p BFDPeer) Up() bool { return p.Status == "up" }

// BFDPeers returns the router's BFD sessions.
func (r *Router) BFDPeers(ctx context.Context) ([]BFDPeer, error) {
	var peers []BFDPeer
	if err := r.FRR.VtyshJSON(ctx, "show bfd peers json", &peers); err != nil {
		return nil, err
	}
	sort.Slice(peers, func(i, j int) bool { return peers[i].Peer < peers[j].Peer })
	return peers, nil
}

// FIBNextHops returns the next hops the router's kernel uses for prefix:
// what zebra actually installed, ECMP legs included.
func (r *Router) FIBNextHops(ctx context.Context, prefix string) ([]string, error) {
	out, err := ipIn(ctx, RouterNetns, "-j", "route", "show", prefix)
	if err != nil {
		return nil, err
	}
	return parseIPRouteNextHops([]byte(out))
}

func parseIPRouteNextHops(data []byte) ([]string, error) {
	var routes []struct {
		Gateway  string `json:"gateway"`
		Nexthops []struct {
			Gateway string `json:"gateway"`
		} `json:"nexthops"`
	}
	if len(strings.TrimSpace(string(data))) == 0 {
		return nil, nil
	}
	if err := json.Unmarshal(data, &routes); err != nil {
		return nil, fmt.Errorf("ip route json: %w", err)
	}
	var out []string
	for _, rt := range routes {
		if rt.Gateway != "" {
			out = append(out, rt.Gateway)
		}
		for _, nh := range rt.Nexthops {
			out = append(out, nh.Gateway)
		}
	}
	sortAddrs(out)
	return out, nil
}

// sortAddrs sorts addresses numerically (198.18.0.2 before 198.18.0.10).
func sortAddrs(a []string) {
	sort.Slice(a, func(i, j int) bool {
		x, errx := netip.ParseAddr(a[i])
		y, erry := netip.ParseAddr(a[j])
		if errx != nil || erry != nil {
			return a[i] < a[j]
		}
		return x.Less(y)
	})
}
