// Package membership tells a speaker which other speakers are alive, fast
// enough for layer-2 failover: the election (pkg/l2/election) only skips a
// dead node once membership says it is gone, and until then nobody answers
// ARP for its addresses. It wraps hashicorp/memberlist (SWIM gossip) with
// timers tuned for a LAN of tens of nodes to notice a dead speaker in about
// a second instead of memberlist's LAN default of several seconds, and
// with encrypted gossip so that nothing else on the network can pose as a
// speaker.
package membership

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/hashicorp/memberlist"
)

// Defaults of Config's timers. Every member probes one other member every
// 150 ms (100 ms to ack, then indirect probes through others); a member
// that fails its probe is suspected, and declared dead after 2 probe
// intervals of suspicion once another member confirms (memberlist grows
// that with log10 of the cluster size, and up to 6x while unconfirmed). A
// dead speaker is so noticed in about half a second on a small cluster
// (measured in the lab: docs/layer2.md), against memberlist's LAN defaults
// of several seconds; a member that is only slow refutes the suspicion by
// answering within it. Gossip every 50 ms spreads the verdict in a few
// rounds. The cost is a few small UDP packets per node and interval.
const (
	DefaultProbeInterval  = 150 * time.Millisecond
	DefaultProbeTimeout   = 100 * time.Millisecond
	DefaultSuspicionMult  = 2
	DefaultGossipInterval = 50 * time.Millisecond
)

// Config configures a member.
type Config struct {
	// Name is the member's name, unique in the cluster: the node name, so
	// that Members can be fed to the election as is.
	Name string
	// BindAddr and BindPort are where gossip (UDP) and state sync (TCP)
	// listen. BindPort 0 takes a free port (tests); see Member.Addr.
	BindAddr string
	BindPort int
	// AdvertiseAddr and AdvertisePort are what others dial, when not the
	// bind address (e.g. bound to 0.0.0.0); empty/0 means the bind ones.
	AdvertiseAddr string
	AdvertisePort int
	// SecretKey is the AES key (16, 24 or 32 bytes) that encrypts and
	// authenticates all gossip. Required: membership decides who answers
	// ARP, so a forged member could take over or black-hole addresses.
	SecretKey []byte
	// ProbeInterval, ProbeTimeout, SuspicionMult and GossipInterval tune
	// failure detection (memberlist's fields of the same names); zero
	// means the package defaults above.
	ProbeInterval  time.Duration
	ProbeTimeout   time.Duration
	SuspicionMult  int
	GossipInterval time.Duration
	// OnChange, when set, is called with the sorted live member names
	// after members join, leave or die. Calls are serialised and
	// coalesced (a burst of changes may yield one call with the final
	// set), and never made from memberlist's own goroutines, so OnChange
	// may take its time.
	OnChange func(live []string)
	// Log receives memberlist's log lines at V(1) and the package's errors.
	Log logr.Logger
}

// Member is this speaker's membership in the cluster.
type Member struct {
	ml  *memberlist.Memberlist
	log logr.Logger

	onChange func([]string)
	changed  chan struct{} // capacity 1: a pending "members changed"
	stop     chan struct{}
	done     chan struct{}

	shutdownOnce sync.Once
}

// Start creates the member and starts gossiping; it is alone until Join.
func Start(cfg Config) (*Member, error) {
	if cfg.Name == "" {
		return nil, errors.New("membership: member name is empty")
	}
	switch len(cfg.SecretKey) {
	case 16, 24, 32:
	default:
		return nil, fmt.Errorf("membership %q: secret key is %d bytes, want 16, 24 or 32 (AES-128/192/256)", cfg.Name, len(cfg.SecretKey))
	}
	m := &Member{
		log:      cfg.Log.WithValues("member", cfg.Name),
		onChange: cfg.OnChange,
		changed:  make(chan struct{}, 1),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}

	mc := memberlist.DefaultLANConfig()
	mc.Name = cfg.Name
	mc.BindAddr = cfg.BindAddr
	mc.BindPort = cfg.BindPort
	mc.AdvertiseAddr = cfg.AdvertiseAddr
	mc.AdvertisePort = cfg.AdvertisePort
	mc.SecretKey = slices.Clone(cfg.SecretKey)
	mc.ProbeInterval = orDefault(cfg.ProbeInterval, DefaultProbeInterval)
	mc.ProbeTimeout = orDefault(cfg.ProbeTimeout, DefaultProbeTimeout)
	mc.GossipInterval = orDefault(cfg.GossipInterval, DefaultGossipInterval)
	// Joins and state syncs dial members over TCP; an unreachable one
	// (its link cut) must not hold the caller for memberlist's 10 s.
	mc.TCPTimeout = 2 * time.Second
	mc.SuspicionMult = cfg.SuspicionMult
	if mc.SuspicionMult <= 0 {
		mc.SuspicionMult = DefaultSuspicionMult
	}
	// A dead member's name may come back (a restarted speaker on the same
	// node, possibly with a new address) without waiting for memberlist's
	// default reclaim time.
	mc.DeadNodeReclaimTime = time.Second
	mc.Events = &events{m: m}
	mc.LogOutput = &logWriter{log: m.log.V(1)}

	ml, err := memberlist.Create(mc)
	if err != nil {
		return nil, fmt.Errorf("membership %q: starting on %s: %w", cfg.Name, net.JoinHostPort(cfg.BindAddr, strconv.Itoa(cfg.BindPort)), err)
	}
	m.ml = ml
	go m.notify()
	return m, nil
}

func orDefault(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// Addr is the address others Join this member at ("host:port").
func (m *Member) Addr() string {
	n := m.ml.LocalNode()
	return net.JoinHostPort(n.Addr.String(), strconv.Itoa(int(n.Port)))
}

// Join contacts the given members ("host:port") and merges their view. It
// succeeds when at least one answered; the error lists those that did not.
func (m *Member) Join(addrs []string) (int, error) {
	n, err := m.ml.Join(addrs)
	if err != nil {
		return n, fmt.Errorf("membership %q: joining %v: %w", m.ml.LocalNode().Name, addrs, err)
	}
	return n, nil
}

// Members returns the sorted names of the members considered alive (a
// suspected member still counts until it is declared dead: declaring it
// dead is what failover waits for, and flapping the election on every
// late ack would be worse).
func (m *Member) Members() []string {
	nodes := m.ml.Members()
	out := make([]string, 0, len(nodes))
	for _, n := range nodes {
		out = append(out, n.Name)
	}
	slices.Sort(out)
	return out
}

// Live is Members as a set, the form election.Elect takes.
func (m *Member) Live() map[string]bool {
	out := map[string]bool{}
	for _, n := range m.Members() {
		out[n] = true
	}
	return out
}

// Leave tells the others this member is going (they drop it at once,
// without a suspicion period) and then shuts it down. Use on orderly
// shutdown.
func (m *Member) Leave(timeout time.Duration) error {
	if err := m.ml.Leave(timeout); err != nil {
		_ = m.Shutdown()
		return fmt.Errorf("membership %q: leaving: %w", m.ml.LocalNode().Name, err)
	}
	return m.Shutdown()
}

// Shutdown stops the member without telling the others, who then detect
// it as failed, and waits for the OnChange goroutine to end. It is safe
// to call more than once.
func (m *Member) Shutdown() error {
	var err error
	m.shutdownOnce.Do(func() {
		if e := m.ml.Shutdown(); e != nil {
			err = fmt.Errorf("membership %q: shutting down: %w", m.ml.LocalNode().Name, e)
		}
		close(m.stop)
		<-m.done
	})
	return err
}

// notify calls OnChange after changes until Shutdown.
func (m *Member) notify() {
	defer close(m.done)
	for {
		select {
		case <-m.stop:
			return
		case <-m.changed:
			if m.onChange != nil {
				m.onChange(m.Members())
			}
		}
	}
}

// events is memberlist's EventDelegate: it must not block, so it only
// marks the member set as changed.
type events struct{ m *Member }

func (e *events) signal() {
	select {
	case e.m.changed <- struct{}{}:
	default: // a notification is already pending; it will see this change too
	}
}

func (e *events) NotifyJoin(*memberlist.Node)   { e.signal() }
func (e *events) NotifyLeave(*memberlist.Node)  { e.signal() }
func (e *events) NotifyUpdate(*memberlist.Node) {}

// logWriter turns memberlist's log lines into logr lines.
type logWriter struct{ log logr.Logger }

func (w *logWriter) Write(p []byte) (int, error) {
	for _, line := range bytes.Split(bytes.TrimRight(p, "\n"), []byte("\n")) {
		w.log.Info(string(line))
	}
	return len(p), nil
}
