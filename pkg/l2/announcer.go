// Package l2 runs the speaker's layer-2 mode: it learns which speakers are
// alive (memberlist, pkg/l2/membership, and the speaker pods) and answers
// ARP/NDP (pkg/l2/responder) for the addresses the election
// (pkg/l2/election) gives this node.
package l2

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/lbstack/lbstack/pkg/l2/election"
	"github.com/lbstack/lbstack/pkg/l2/membership"
	"github.com/lbstack/lbstack/pkg/l2/responder"
)

// Announcer is the layer-2 mode of one speaker: membership among the
// speakers (who is alive), and ARP/NDP responders for the addresses this
// node is elected for. The election itself is pure (pkg/l2/election) and
// runs in the speaker's one reconcile, from the same inputs on every node.
type Announcer struct {
	node string
	log  logr.Logger
	// podLabels select the speaker pods (METALLB_ML_LABELS).
	podLabels labels.Selector
	port      int

	// member is nil when membership could not start (no key): liveness
	// then comes from the speaker pods alone, and failover waits for the
	// kubelet to report a dead speaker.
	member *membership.Member
	// changes wakes the reconcile when the membership changes.
	changes chan event.GenericEvent

	// joining is true while a background Join runs.
	joining atomic.Bool

	mu         sync.Mutex
	responders map[string]*responder.Responder // by interface name
}

// Options are what layer 2 needs from the speaker's flags and the
// environment of its pod.
type Options struct {
	// Node is the name of this node.
	Node string
	// BindAddr is the memberlist address: the pod (host) IP
	// (METALLB_ML_BIND_ADDR).
	BindAddr string
	// Port is the memberlist port (--ml-bindport).
	Port int
	// KeyPath is the mounted memberlist Secret
	// (METALLB_ML_SECRET_KEY_PATH).
	KeyPath string
	// PodLabels select the speaker pods (METALLB_ML_LABELS).
	PodLabels string
}

// OptionsFromEnv are the options the speaker pod's environment gives:
// METALLB_ML_BIND_ADDR, METALLB_ML_SECRET_KEY_PATH and METALLB_ML_LABELS
// (default: the speaker pods' labels), with the memberlist port.
func OptionsFromEnv(port int, getenv func(string) string) Options {
	labels := getenv("METALLB_ML_LABELS")
	if labels == "" {
		labels = "app=lbstack,component=speaker"
	}
	return Options{BindAddr: getenv("METALLB_ML_BIND_ADDR"), Port: port, KeyPath: getenv("METALLB_ML_SECRET_KEY_PATH"), PodLabels: labels}
}

// New starts the membership when a key and an address are there; its
// absence is logged, not fatal (BGP-only clusters need none of it).
func New(o Options, log logr.Logger) (*Announcer, error) {
	sel, err := labels.Parse(o.PodLabels)
	if err != nil {
		return nil, fmt.Errorf("METALLB_ML_LABELS %q: %w", o.PodLabels, err)
	}
	l := &Announcer{
		node: o.Node, log: log, podLabels: sel, port: o.Port,
		changes:    make(chan event.GenericEvent, 1),
		responders: map[string]*responder.Responder{},
	}
	key, err := readMemberlistKey(o.KeyPath)
	switch {
	case err != nil:
		log.Info("layer 2: no memberlist key; a dead speaker is noticed only when its pod is", "reason", err.Error())
	case o.BindAddr == "" || o.Port <= 0:
		log.Info("layer 2: no memberlist address (METALLB_ML_BIND_ADDR, --ml-bindport); a dead speaker is noticed only when its pod is")
	default:
		m, err := membership.Start(membership.Config{
			Name: o.Node, BindAddr: o.BindAddr, BindPort: o.Port, SecretKey: key,
			OnChange: func([]string) { l.wake() },
			Log:      log.WithName("memberlist"),
		})
		if err != nil {
			return nil, err
		}
		l.member = m
	}
	return l, nil
}

// readMemberlistKey derives the AES-256 key from the mounted Secret: the
// operator's key is text of any length, memberlist wants 16/24/32 bytes.
func readMemberlistKey(path string) ([]byte, error) {
	if path == "" {
		return nil, errors.New("METALLB_ML_SECRET_KEY_PATH is not set")
	}
	// The Secret is mounted as a directory holding "secretkey"; a file
	// path works too.
	if st, err := os.Stat(path); err == nil && st.IsDir() {
		path = filepath.Join(path, "secretkey")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := strings.TrimSpace(string(data))
	if text == "" {
		return nil, fmt.Errorf("%s is empty", path)
	}
	sum := sha256.Sum256([]byte(text))
	return sum[:], nil
}

// Changes wake the speaker's reconcile when the membership changes.
func (l *Announcer) Changes() <-chan event.GenericEvent { return l.changes }

// Members returns the members memberlist knows and those it considers
// alive; ok is false when membership does not run.
func (l *Announcer) Members() (members []string, live map[string]bool, ok bool) {
	if l.member == nil {
		return nil, nil, false
	}
	return l.member.Members(), l.member.Live(), true
}

func (l *Announcer) wake() {
	select {
	case l.changes <- event.GenericEvent{Object: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "memberlist"}}}:
	default:
	}
}

// Live returns the nodes whose speaker is up: a speaker pod that runs (not
// being deleted), and - once membership runs - that is a member. This node
// is always live. Joining the speakers not yet members happens here too,
// so a restarted speaker finds the others on its first reconcile.
func (l *Announcer) Live(pods []corev1.Pod) map[string]bool {
	running := map[string]string{} // node → pod IP of its running speaker
	for _, p := range pods {
		if p.Spec.NodeName == "" || p.DeletionTimestamp != nil || p.Status.Phase != corev1.PodRunning || !l.podLabels.Matches(labels.Set(p.Labels)) {
			continue
		}
		running[p.Spec.NodeName] = p.Status.PodIP
	}
	live := map[string]bool{l.node: true}
	if l.member == nil {
		for n := range running {
			live[n] = true
		}
		return live
	}
	members := l.member.Live()
	var join []string
	for n, ip := range running {
		if !members[n] && n != l.node && ip != "" {
			join = append(join, net.JoinHostPort(ip, strconv.Itoa(l.port)))
		}
	}
	switch {
	case len(join) == 0:
	case len(members) <= 1:
		// Alone (just started): join before electing. Join syncs state
		// with the joined members before it returns, so this speaker sees
		// the others at once instead of electing itself for everything.
		if n, err := l.member.Join(join); err != nil && n == 0 {
			l.log.V(1).Info("memberlist join", "addresses", join, "error", err.Error())
		}
		members = l.member.Live()
	default:
		// A member gone (dead, or its link cut) keeps its pod Running for
		// a while: try it in the background, never holding the election
		// (and the failover) for a dial timeout. A success wakes the
		// reconcile through the membership change.
		if l.joining.CompareAndSwap(false, true) {
			go func() {
				defer l.joining.Store(false)
				_, _ = l.member.Join(join)
			}()
		}
	}
	for n := range running {
		if members[n] {
			live[n] = true
		}
	}
	return live
}

// Apply makes the responders answer for exactly the announcements (an
// election's Announce) and returns, per Service, the interfaces that
// answer for it. The host's interfaces are read once per distinct
// interface list of the announcements (once in all, usually), not once
// per address.
func (l *Announcer) Apply(announce []election.Announcement) (map[string][]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	want := map[string]map[netip.Addr]bool{} // interface → addresses
	bySvc := map[string]map[string]bool{}
	var errs []error
	type selected struct {
		ifaces []net.Interface
		err    error
	}
	selections := map[string]selected{} // by interface list
	for _, a := range announce {
		// Names hold no NUL; nil (every interface) is its own key.
		key := "\x00"
		if a.Interfaces != nil {
			key = strings.Join(a.Interfaces, "\x00")
		}
		sel, ok := selections[key]
		if !ok {
			sel.ifaces, _, sel.err = responder.SelectInterfaces(a.Interfaces, responder.DefaultExclude)
			selections[key] = sel
		}
		ifaces, err := sel.ifaces, sel.err
		if err != nil {
			errs = append(errs, fmt.Errorf("address %s: %w", a.Addr, err))
			continue
		}
		if len(ifaces) == 0 {
			errs = append(errs, fmt.Errorf("address %s: no interface of node %s to answer on (spec.interfaces %v)", a.Addr, l.node, a.Interfaces))
		}
		for _, ifi := range ifaces {
			if want[ifi.Name] == nil {
				want[ifi.Name] = map[netip.Addr]bool{}
			}
			want[ifi.Name][a.Addr] = true
			for _, s := range a.Services {
				if bySvc[s] == nil {
					bySvc[s] = map[string]bool{}
				}
				bySvc[s][ifi.Name] = true
			}
		}
	}
	// Withdraw first, so a node that lost an election stops at once.
	for name, r := range l.responders {
		for _, addr := range r.Announced() {
			if !want[name][addr] {
				if err := r.Withdraw(addr); err != nil {
					errs = append(errs, fmt.Errorf("interface %s: withdraw %s: %w", name, addr, err))
				}
			}
		}
		if len(want[name]) == 0 {
			if err := r.Close(); err != nil {
				errs = append(errs, fmt.Errorf("interface %s: %w", name, err))
			}
			delete(l.responders, name)
		}
	}
	for name, addrs := range want {
		r := l.responders[name]
		if r == nil {
			var err error
			r, err = responder.New(name, responder.Options{Log: l.log.WithName("responder")})
			if err != nil {
				errs = append(errs, err)
				continue
			}
			l.responders[name] = r
		}
		have := map[netip.Addr]bool{}
		for _, a := range r.Announced() {
			have[a] = true
		}
		for addr := range addrs {
			if have[addr] {
				continue
			}
			if err := r.Announce(addr); err != nil {
				errs = append(errs, fmt.Errorf("interface %s: announce %s: %w", name, addr, err))
			}
		}
	}
	out := make(map[string][]string, len(bySvc))
	for s, ifs := range bySvc {
		for i := range ifs {
			out[s] = append(out[s], i)
		}
		slices.Sort(out[s])
	}
	return out, errors.Join(errs...)
}

// Close stops answering and leaves the membership, so the others take
// over at once instead of after failure detection.
func (l *Announcer) Close() {
	l.mu.Lock()
	for name, r := range l.responders {
		_ = r.Close()
		delete(l.responders, name)
	}
	l.mu.Unlock()
	if l.member != nil {
		_ = l.member.Leave(0)
		_ = l.member.Shutdown()
	}
}

// stats sums the responders' counters per interface, for the metrics.
func (l *Announcer) stats() map[string]responder.Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]responder.Stats, len(l.responders))
	for name, r := range l.responders {
		out[name] = r.Stats()
	}
	return out
}
