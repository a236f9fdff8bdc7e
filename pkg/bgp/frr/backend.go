package frr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lbstack/lbstack/pkg/bgp"
)

// Backend is the FRR implementation of bgp.Backend: Apply renders the
// state (Render) and hands the text to a Reloader, which reloads the
// running FRR in place; Status and BFDPeers read FRR through vtysh.
//
// Apply is asynchronous: it returns once the text is queued, with the
// render error of this state or else the error of the latest reload
// attempt (nil when the newest text is applied or not tried yet), so the
// caller can report it; the Reloader retries on its own. Status reports
// the sessions of the state FRR last accepted.
type Backend struct {
	opts     BackendOptions
	reloader *Reloader

	mu   sync.Mutex
	rend Options
	// states are the submitted states by generation, until a later one
	// is applied; applied is the state FRR last accepted.
	states  map[uint64]bgp.DesiredState
	applied bgp.DesiredState
	// rendered is the text rendered from the newest state Apply accepted.
	rendered string
	// live is the configuration of the newest state, kept for
	// ApplyChanges; nil when it must render in full.
	live    *live
	changes uint64
	closed  bool
}

var _ bgp.ChangeApplier = (*Backend)(nil)

// BackendOptions configures a Backend.
type BackendOptions struct {
	// Render is the node-level part of the configuration.
	Render Options
	// Reloader configures the reloads; its VtySocket and BinDir are also
	// where Status finds FRR and vtysh.
	Reloader ReloaderOptions
	// QueryTimeout bounds one vtysh query; 10 s when 0.
	QueryTimeout time.Duration
	// KeepSessionsOnClose leaves FRR's configuration as it is on Close
	// (for an FRR that must keep announcing across a restart of the
	// speaker, with graceful restart). Otherwise Close reloads a
	// configuration without sessions, which closes them all.
	KeepSessionsOnClose bool
	// CloseTimeout bounds that last reload; 30 s when 0.
	CloseTimeout time.Duration
}

// maxPendingStates bounds the states kept for name mapping while reloads
// are pending.
const maxPendingStates = 16

// NewBackend starts a Backend (and its Reloader).
func NewBackend(opts BackendOptions) (*Backend, error) {
	if opts.QueryTimeout <= 0 {
		opts.QueryTimeout = 10 * time.Second
	}
	if opts.CloseTimeout <= 0 {
		opts.CloseTimeout = 30 * time.Second
	}
	if opts.Reloader.BinDir == "" {
		opts.Reloader.BinDir = DefaultBinDir
	}
	r, err := NewReloader(opts.Reloader)
	if err != nil {
		return nil, err
	}
	return &Backend{opts: opts, reloader: r, rend: opts.Render, states: map[uint64]bgp.DesiredState{}}, nil
}

// Reloader returns the Backend's Reloader (stats, Flush, Resync).
func (b *Backend) Reloader() *Reloader { return b.reloader }

// SetOptions replaces the node-level options (log level, forwarding,
// extra configuration); they take effect with the next Apply.
func (b *Backend) SetOptions(o Options) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rend = o
	b.live = nil
}

// Apply renders d and queues it; see Backend.
func (b *Backend) Apply(ctx context.Context, d bgp.DesiredState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("frr backend: closed")
	}
	return b.applyLocked(d)
}

func (b *Backend) applyLocked(d bgp.DesiredState) error {
	b.live = nil
	// Sessions FRR cannot express are left out and reported; the others
	// are applied.
	r, err := render(d, b.rend)
	if err != nil {
		return err
	}
	conf := joinSegments(r.segs)
	b.rendered = conf
	b.keep(b.reloader.Submit(conf), r.norm)
	if givenNormal(d, r.norm) {
		b.live = newLive(r, d.Sessions, b.rend)
	}
	return errors.Join(r.skipped.OrNil(), b.reloader.Err())
}

// keep records the state submitted as generation gen.
func (b *Backend) keep(gen uint64, st bgp.DesiredState) {
	b.states[gen] = st
	if len(b.states) > maxPendingStates {
		oldest := slices.Min(mapKeys(b.states))
		delete(b.states, oldest)
	}
}

// givenNormal reports whether the routes given for every session kept
// are already what Normalize made of them: then a later state that
// changes a few of them, each normal, is normal as a whole.
func givenNormal(given, norm bgp.DesiredState) bool {
	for _, s := range norm.Sessions {
		if !slices.EqualFunc(given.Routes[s.Name], norm.Routes[s.Name], bgp.Route.Equal) {
			return false
		}
	}
	return true
}

// ApplyChanges implements bgp.ChangeApplier: the network statements of
// the changed routes (each naming its announcement set's tag) are edited
// in the kept configuration and handed to the Reloader as a few bgpd
// commands (Reloader.SubmitChange), without rendering or diffing the whole
// configuration. Whatever it cannot follow that way (see live.change)
// goes through Apply.
func (b *Backend) ApplyChanges(ctx context.Context, d bgp.DesiredState, changed []bgp.RouteChange) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return errors.New("frr backend: closed")
	}
	if b.live == nil {
		return b.applyLocked(d)
	}
	cmds, refresh, ok := b.live.change(d, changed)
	if !ok {
		return b.applyLocked(d)
	}
	b.changes++
	conf := b.live.text()
	b.rendered = conf
	st := b.live.norm
	st.Sessions = slices.Clone(st.Sessions)
	b.keep(b.reloader.SubmitChange(conf, cmds, refresh), st)
	return errors.Join(b.live.skipped.OrNil(), b.reloader.Err())
}

// Changes is the number of ApplyChanges calls that edited the kept
// configuration rather than rendering it in full.
func (b *Backend) Changes() uint64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.changes
}

func mapKeys[K comparable, V any](m map[K]V) []K {
	out := make([]K, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Rendered returns the configuration rendered from the newest state Apply
// accepted (FRR may not run it yet: see the reloader's status), or "".
func (b *Backend) Rendered() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rendered
}

// appliedState is the state FRR last accepted.
func (b *Backend) appliedState() bgp.DesiredState {
	_, gen, ok := b.reloader.Applied()
	b.mu.Lock()
	defer b.mu.Unlock()
	if !ok {
		return bgp.DesiredState{}
	}
	if s, found := b.states[gen]; found {
		b.applied = s
		for g := range b.states {
			if g < gen {
				delete(b.states, g)
			}
		}
	}
	return b.applied
}

// Close closes every session (unless KeepSessionsOnClose, or nothing was
// ever applied) and stops the Reloader.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	rend := b.rend
	b.mu.Unlock()
	var err error
	b.reloader.mu.Lock()
	used := b.reloader.desiredGen > 0
	b.reloader.mu.Unlock()
	if !b.opts.KeepSessionsOnClose && used {
		var conf string
		if conf, err = Render(bgp.DesiredState{}, rend); err == nil {
			b.reloader.Submit(conf)
			ctx, cancel := context.WithTimeout(context.Background(), b.opts.CloseTimeout)
			err = b.reloader.Flush(ctx)
			cancel()
		}
	}
	return errors.Join(err, b.reloader.Close())
}

// vtysh runs show commands against the FRR and returns the output.
func (b *Backend) vtysh(cmd string) ([]byte, error) {
	ro := b.reloader.opts
	args := []string{}
	if ro.VtySocket != "" {
		args = append(args, "--vty_socket", ro.VtySocket)
	}
	args = append(args, "-c", cmd)
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.QueryTimeout)
	defer cancel()
	out, err := ro.Exec(ctx, filepath.Join(ro.BinDir, "vtysh"), args...)
	if err != nil {
		return out, fmt.Errorf("vtysh -c %q: %w: %s", cmd, err, trimOutput(out))
	}
	return out, nil
}

// Snapshot is Status and BFDPeers from the daemons' vty sockets (vty.go),
// or with ReloaderOptions.UseVtysh from one vtysh process (three show
// commands in one call): the reloader reports every second, and even one
// vtysh process a second (40 to 80 ms of CPU) was most of an idle node's
// CPU. bfdErr is set when the BFD part could not be read (bfdd down, say);
// sessions are then still reported.
func (b *Backend) Snapshot() (sessions []bgp.SessionStatus, peers []BFDPeer, bfdErr error) {
	st := b.appliedState()
	if len(st.Sessions) == 0 {
		return nil, nil, nil
	}
	ro := b.reloader.opts
	if !ro.UseVtysh {
		docs, err := queryDirect(ro.VtySocket, b.opts.QueryTimeout, []string{"bgpd", "show bgp vrf all summary json"},
			[]string{"bgpd", "show bgp vrf all neighbors json"}, []string{"bfdd", "show bfd peers json"})
		return b.snapshot(st, docs, err, "bfdd did not answer")
	}
	args := []string{}
	if ro.VtySocket != "" {
		args = append(args, "--vty_socket", ro.VtySocket)
	}
	args = append(args, "-c", "show bgp vrf all summary json", "-c", "show bgp vrf all neighbors json", "-c", "show bfd peers json")
	ctx, cancel := context.WithTimeout(context.Background(), b.opts.QueryTimeout)
	defer cancel()
	out, err := ro.Exec(ctx, filepath.Join(ro.BinDir, "vtysh"), args...)
	if err != nil {
		return sessionStatus(st, nil, nil, time.Now()), nil, fmt.Errorf("vtysh: %w: %s", err, trimOutput(out))
	}
	// vtysh prints each command's JSON in turn (or a line of text for a
	// daemon that does not answer).
	dec := json.NewDecoder(bytes.NewReader(out))
	var docs [3]json.RawMessage
	for i := range docs {
		if dec.Decode(&docs[i]) != nil {
			break
		}
	}
	return b.snapshot(st, docs[:], nil, trimOutput(out))
}

// snapshot makes Snapshot's answer of the three documents (nil for one
// not read; err when none could be).
func (b *Backend) snapshot(st bgp.DesiredState, docs []json.RawMessage, err error, noBFD string) (sessions []bgp.SessionStatus, peers []BFDPeer, bfdErr error) {
	if err != nil {
		return sessionStatus(st, nil, nil, time.Now()), nil, err
	}
	sum, _ := parseSummary(docs[0])
	nbrs, _ := parseNeighbors(docs[1])
	sessions = sessionStatus(st, sum, nbrs, time.Now())
	if docs[2] == nil {
		return sessions, nil, fmt.Errorf("show bfd peers json: no answer: %s", noBFD)
	}
	peers, err = parseBFDPeers(docs[2])
	if err != nil {
		return sessions, nil, err
	}
	nameBFDPeers(peers, st)
	return sessions, peers, nil
}

// Status reports every session of the state FRR last accepted, sorted by
// name. When FRR cannot be asked, or does not know a session (yet), the
// session's State is Unknown.
func (b *Backend) Status() []bgp.SessionStatus {
	st := b.appliedState()
	if len(st.Sessions) == 0 {
		return nil
	}
	var sum summary
	if out, err := b.vtysh("show bgp vrf all summary json"); err == nil {
		sum, _ = parseSummary(out)
	}
	var nbrs neighbors
	if out, err := b.vtysh("show bgp vrf all neighbors json"); err == nil {
		nbrs, _ = parseNeighbors(out)
	}
	return sessionStatus(st, sum, nbrs, time.Now())
}

// summary is `show bgp vrf all summary json` by VRF name ("default" for
// the default VRF), family ("ipv4Unicast", ...) and peer address.
type summary map[string]map[string]summaryPeer

// summaryPeer merges a peer's entries of every family.
type summaryPeer struct {
	State           string
	UptimeMsec      int64
	EstablishedUnix int64
	PfxSnt          int
}

func parseSummary(out []byte) (summary, error) {
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("parse bgp summary: %w", err)
	}
	s := summary{}
	for vrf, fams := range raw {
		peers := map[string]summaryPeer{}
		for _, body := range fams {
			var f struct {
				Peers map[string]struct {
					State           string `json:"state"`
					PeerUptimeMsec  int64  `json:"peerUptimeMsec"`
					EstablishedUnix int64  `json:"peerUptimeEstablishedEpoch"`
					PfxSnt          int    `json:"pfxSnt"`
				} `json:"peers"`
			}
			if json.Unmarshal(body, &f) != nil {
				continue // not a family object
			}
			for a, p := range f.Peers {
				m := peers[a]
				m.State, m.UptimeMsec, m.EstablishedUnix = p.State, p.PeerUptimeMsec, p.EstablishedUnix
				m.PfxSnt += p.PfxSnt
				peers[a] = m
			}
		}
		s[vrf] = peers
	}
	return s, nil
}

// neighbors is the part of `show bgp vrf all neighbors json` Status
// reads: UPDATE messages sent, by VRF and peer address.
type neighbors map[string]map[string]uint64

func parseNeighbors(out []byte) (neighbors, error) {
	var raw map[string]map[string]json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("parse bgp neighbors: %w", err)
	}
	n := neighbors{}
	for vrf, entries := range raw {
		m := map[string]uint64{}
		for a, body := range entries {
			if _, err := netip.ParseAddr(a); err != nil {
				continue // vrfId, vrfName
			}
			var p struct {
				Stats struct {
					UpdatesSent uint64 `json:"updatesSent"`
				} `json:"messageStats"`
			}
			if json.Unmarshal(body, &p) == nil {
				m[a] = p.Stats.UpdatesSent
			}
		}
		n[vrf] = m
	}
	return n, nil
}

// frrVRF is FRR's name of a session's VRF.
func frrVRF(vrf string) string {
	if vrf == "" {
		return "default"
	}
	return vrf
}

func sessionStatus(st bgp.DesiredState, sum summary, nbrs neighbors, now time.Time) []bgp.SessionStatus {
	out := make([]bgp.SessionStatus, 0, len(st.Sessions))
	for _, s := range st.Sessions {
		ss := bgp.SessionStatus{Name: s.Name, PeerAddr: s.PeerAddr, VRF: s.VRF, State: bgp.StateUnknown}
		a := s.PeerAddr.String()
		if p, ok := sum[frrVRF(s.VRF)][a]; ok {
			ss.State = mapState(p.State)
			ss.Advertised = p.PfxSnt
			if ss.State == bgp.StateEstablished {
				switch {
				case p.EstablishedUnix > 0:
					ss.Since = time.Unix(p.EstablishedUnix, 0)
				case p.UptimeMsec > 0:
					ss.Since = now.Add(-time.Duration(p.UptimeMsec) * time.Millisecond)
				}
			}
		}
		ss.UpdatesSent = nbrs[frrVRF(s.VRF)][a]
		out = append(out, ss)
	}
	slices.SortFunc(out, func(x, y bgp.SessionStatus) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// mapState maps FRR's peer state ("Established", "Idle (Admin)",
// "Clearing", ...) to the BGP FSM state.
func mapState(s string) bgp.SessionState {
	word, _, _ := strings.Cut(s, " ")
	switch word {
	case "Idle", "Clearing", "Deleted":
		return bgp.StateIdle
	case "Connect":
		return bgp.StateConnect
	case "Active":
		return bgp.StateActive
	case "OpenSent":
		return bgp.StateOpenSent
	case "OpenConfirm":
		return bgp.StateOpenConfirm
	case "Established":
		return bgp.StateEstablished
	}
	return bgp.StateUnknown
}

// BFDPeer is one BFD session of FRR's bfdd (`show bfd peers json`).
type BFDPeer struct {
	// Session is the name of the BGP session with this peer, when one of
	// the applied state's sessions has this address (and VRF).
	Session string
	Peer    netip.Addr
	// Local is the local address; invalid when bfdd does not say.
	Local     netip.Addr
	VRF       string
	Interface string
	Multihop  bool
	// Status is bfdd's: "up", "down", "init", "shutdown", "unknown".
	Status string
	// Uptime is how long the session has been up (zero unless up).
	Uptime time.Duration
	// Diagnostic and RemoteDiagnostic are the last diagnostic codes.
	Diagnostic, RemoteDiagnostic string
	// Negotiated and remote timers in milliseconds, and the multiplier.
	ReceiveInterval, TransmitInterval             uint32
	RemoteReceiveInterval, RemoteTransmitInterval uint32
	DetectMultiplier, RemoteDetectMultiplier      uint32
}

// Up reports whether the BFD session is up.
func (p BFDPeer) Up() bool { return p.Status == "up" }

// BFDPeers reports bfdd's sessions, sorted by VRF and peer address, each
// named after the BGP session it serves.
func (b *Backend) BFDPeers() ([]BFDPeer, error) {
	out, err := b.vtysh("show bfd peers json")
	if err != nil {
		return nil, err
	}
	peers, err := parseBFDPeers(out)
	if err != nil {
		return nil, err
	}
	nameBFDPeers(peers, b.appliedState())
	return peers, nil
}

// nameBFDPeers sets each BFD peer's Session from the state's sessions.
func nameBFDPeers(peers []BFDPeer, st bgp.DesiredState) {
	for i := range peers {
		p := &peers[i]
		for _, s := range st.Sessions {
			if s.PeerAddr == p.Peer && frrVRF(s.VRF) == frrVRF(p.VRF) {
				p.Session = s.Name
			}
		}
	}
}

func parseBFDPeers(out []byte) ([]BFDPeer, error) {
	var raw []struct {
		Multihop               bool   `json:"multihop"`
		Peer                   string `json:"peer"`
		Local                  string `json:"local"`
		VRF                    string `json:"vrf"`
		Interface              string `json:"interface"`
		Status                 string `json:"status"`
		Uptime                 int64  `json:"uptime"`
		Diagnostic             string `json:"diagnostic"`
		RemoteDiagnostic       string `json:"remote-diagnostic"`
		ReceiveInterval        uint32 `json:"receive-interval"`
		TransmitInterval       uint32 `json:"transmit-interval"`
		RemoteReceiveInterval  uint32 `json:"remote-receive-interval"`
		RemoteTransmitInterval uint32 `json:"remote-transmit-interval"`
		DetectMultiplier       uint32 `json:"detect-multiplier"`
		RemoteDetectMultiplier uint32 `json:"remote-detect-multiplier"`
	}
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("parse bfd peers: %w", err)
	}
	peers := make([]BFDPeer, 0, len(raw))
	for _, r := range raw {
		peer, err := netip.ParseAddr(r.Peer)
		if err != nil {
			return nil, fmt.Errorf("parse bfd peers: peer %q: %w", r.Peer, err)
		}
		local, _ := netip.ParseAddr(r.Local)
		vrf := r.VRF
		if vrf == "default" {
			vrf = ""
		}
		peers = append(peers, BFDPeer{
			Peer: peer, Local: local, VRF: vrf, Interface: r.Interface, Multihop: r.Multihop,
			Status: r.Status, Uptime: time.Duration(r.Uptime) * time.Second,
			Diagnostic: r.Diagnostic, RemoteDiagnostic: r.RemoteDiagnostic,
			ReceiveInterval: r.ReceiveInterval, TransmitInterval: r.TransmitInterval,
			RemoteReceiveInterval: r.RemoteReceiveInterval, RemoteTransmitInterval: r.RemoteTransmitInterval,
			DetectMultiplier: r.DetectMultiplier, RemoteDetectMultiplier: r.RemoteDetectMultiplier,
		})
	}
	slices.SortFunc(peers, func(x, y BFDPeer) int {
		if c := strings.Compare(x.VRF, y.VRF); c != 0 {
			return c
		}
		return x.Peer.Compare(y.Peer)
	})
	return peers, nil
}
