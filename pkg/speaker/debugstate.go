package speaker

import (
	"sort"
	"time"

	"github.com/lbstack/lbstack/pkg/bgp"
)

// DebugStatePath is where the speaker serves its DebugState, on its
// loopback health listener (never on the metrics port, which the node's
// network reaches); `lbstack speaker-state` fetches it from inside the pod.
const DebugStatePath = "/debug/state"

// DefaultLocalAddr is the loopback address where the speaker serves its
// health probes and DebugStatePath (--health-probe-bind-address).
const DefaultLocalAddr = "127.0.0.1:7473"

// DebugState is the speaker's own view of its node, for must-gather and
// people: what it was told, what it announces and to whom, and what it
// knows of its peers and of the other speakers. It never holds a secret
// (no BGP password, no memberlist key).
type DebugState struct {
	Node       string    `json:"node"`
	Time       time.Time `json:"time"`
	BGPBackend string    `json:"bgpBackend"`
	// ConfigError is why the newest configuration was refused ("" when it
	// was accepted); the speaker then runs on the last valid one.
	ConfigError string `json:"configError,omitempty"`
	// ApplyError is the BGP backend's latest failure.
	ApplyError string `json:"applyError,omitempty"`
	// Problems keep sessions from opening (no router ID, password
	// pending, ...).
	Problems []string `json:"problems,omitempty"`
	// Sessions are the BGP sessions as the backend reports them.
	Sessions []DebugSession `json:"sessions,omitempty"`
	// Routes are the prefixes announced per session.
	Routes map[string][]DebugRoute `json:"routes,omitempty"`
	// BGPServices maps namespace/name to the sessions that get at least
	// one of the Service's routes.
	BGPServices map[string][]string `json:"bgpServices,omitempty"`
	// Skipped says why a Service with an address is not announced here.
	Skipped map[string]string `json:"skipped,omitempty"`
	// L2 is layer 2's view; nil when layer 2 is off.
	L2 *DebugL2 `json:"l2,omitempty"`
}

// DebugSession is one BGP session.
type DebugSession struct {
	Name        string    `json:"name"`
	PeerAddress string    `json:"peerAddress"`
	VRF         string    `json:"vrf,omitempty"`
	State       string    `json:"state"`
	Since       time.Time `json:"establishedSince,omitzero"`
	Advertised  int       `json:"advertised"`
	UpdatesSent uint64    `json:"updatesSent"`
}

// DebugRoute is one announced prefix and its attributes.
type DebugRoute struct {
	Prefix      string   `json:"prefix"`
	Communities []string `json:"communities,omitempty"`
	LocalPref   uint32   `json:"localPref,omitempty"`
}

// DebugL2 is layer 2's view.
type DebugL2 struct {
	// Announced maps namespace/name of each Service this node answers
	// ARP/NDP for to its interfaces.
	Announced map[string][]string `json:"announced,omitempty"`
	// Members are the memberlist members this node sees; Live says which
	// speakers count as alive for the election.
	Members []string        `json:"members,omitempty"`
	Live    map[string]bool `json:"live,omitempty"`
}

// NewDebugState fills the BGP part of a DebugState from a decision and the
// backend's report; it copies nothing secret (sessions come from Status,
// routes carry prefixes and attributes only).
func NewDebugState(node, backend string, res Result, status []bgp.SessionStatus) DebugState {
	st := DebugState{Node: node, Time: time.Now(), BGPBackend: backend, Problems: res.Problems,
		BGPServices: res.Announced, Skipped: res.Skipped}
	for _, s := range status {
		ds := DebugSession{Name: s.Name, VRF: s.VRF, State: string(s.State), Since: s.Since,
			Advertised: s.Advertised, UpdatesSent: s.UpdatesSent}
		if s.PeerAddr.IsValid() {
			ds.PeerAddress = s.PeerAddr.String()
		}
		st.Sessions = append(st.Sessions, ds)
	}
	if len(res.State.Routes) > 0 {
		st.Routes = make(map[string][]DebugRoute, len(res.State.Routes))
		for name, routes := range res.State.Routes {
			for _, r := range routes {
				dr := DebugRoute{Prefix: r.Prefix.String(), LocalPref: r.LocalPref}
				for _, c := range r.Communities {
					dr.Communities = append(dr.Communities, c.String())
				}
				st.Routes[name] = append(st.Routes[name], dr)
			}
			sort.Slice(st.Routes[name], func(i, j int) bool { return st.Routes[name][i].Prefix < st.Routes[name][j].Prefix })
		}
	}
	return st
}
