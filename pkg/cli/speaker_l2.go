package cli

import (
	"context"
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
	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/l2/election"
	"github.com/lbstack/lbstack/pkg/l2/membership"
	"github.com/lbstack/lbstack/pkg/l2/responder"
)

// layer2 is the speaker's layer-2 mode: membership among the speakers
// (who is alive), and ARP/NDP responders for the addresses this node is
// elected for. The election itself is pure (pkg/l2/election) and runs in
// the speaker's one reconcile, from the same inputs on every node.
type layer2 struct {
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

// l2Options are what layer 2 needs from the environment of the pod.
type l2Options struct {
	node      string
	bindAddr  string // METALLB_ML_BIND_ADDR: the pod (host) IP
	port      int    // --ml-bindport
	keyPath   string // METALLB_ML_SECRET_KEY_PATH: the mounted Secret
	podLabels string // METALLB_ML_LABELS
}

func l2OptionsFromEnv(f speakerFlags) l2Options {
	return l2Options{
		node:      f.nodeName,
		bindAddr:  os.Getenv("METALLB_ML_BIND_ADDR"),
		port:      f.mlBindPort,
		keyPath:   os.Getenv("METALLB_ML_SECRET_KEY_PATH"),
		podLabels: envOr("METALLB_ML_LABELS", "app=lbstack,component=speaker"),
	}
}

// newLayer2 starts the membership when a key and an address are there; its
// absence is logged, not fatal (BGP-only clusters need none of it).
func newLayer2(o l2Options, log logr.Logger) (*layer2, error) {
	sel, err := labels.Parse(o.podLabels)
	if err != nil {
		return nil, fmt.Errorf("METALLB_ML_LABELS %q: %w", o.podLabels, err)
	}
	l := &layer2{
		node: o.node, log: log, podLabels: sel, port: o.port,
		changes:    make(chan event.GenericEvent, 1),
		responders: map[string]*responder.Responder{},
	}
	key, err := readMemberlistKey(o.keyPath)
	switch {
	case err != nil:
		log.Info("layer 2: no memberlist key; a dead speaker is noticed only when its pod is", "reason", err.Error())
	case o.bindAddr == "" || o.port <= 0:
		log.Info("layer 2: no memberlist address (METALLB_ML_BIND_ADDR, --ml-bindport); a dead speaker is noticed only when its pod is")
	default:
		m, err := membership.Start(membership.Config{
			Name: o.node, BindAddr: o.bindAddr, BindPort: o.port, SecretKey: key,
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

func (l *layer2) wake() {
	select {
	case l.changes <- event.GenericEvent{Object: &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "memberlist"}}}:
	default:
	}
}

// live returns the nodes whose speaker is up: a speaker pod that runs (not
// being deleted), and - once membership runs - that is a member. This node
// is always live. Joining the speakers not yet members happens here too,
// so a restarted speaker finds the others on its first reconcile.
func (l *layer2) live(pods []corev1.Pod) map[string]bool {
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

// apply makes the responders answer for exactly the announcements and
// returns, per Service, the interfaces that answer for it.
func (l *layer2) apply(res election.Result) (map[string][]string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	want := map[string]map[netip.Addr]bool{} // interface → addresses
	bySvc := map[string]map[string]bool{}
	var errs []error
	for _, a := range res.Announce {
		ifaces, _, err := responder.SelectInterfaces(a.Interfaces, responder.DefaultExclude)
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

// close stops answering and leaves the membership, so the others take
// over at once instead of after failure detection.
func (l *layer2) close() {
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
func (l *layer2) stats() map[string]responder.Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]responder.Stats, len(l.responders))
	for name, r := range l.responders {
		out[name] = r.Stats()
	}
	return out
}

// syncL2Status makes this node's ServiceL2Status objects match the
// Services it answers for, with an event on the Service when the node
// starts (nodeAssigned) or stops (nodeUnassigned) - only then.
func (r *speakerReconciler) syncL2Status(ctx context.Context, ifacesBySvc map[string][]string, svcByKey map[string]*corev1.Service) error {
	var have v1beta1.ServiceL2StatusList
	if err := r.client.List(ctx, &have, client.InNamespace(r.flags.namespace), client.MatchingLabels{labelStatusNode: r.flags.nodeName}); err != nil {
		return fmt.Errorf("list ServiceL2Status: %w", err)
	}
	byName := map[string]*v1beta1.ServiceL2Status{}
	for i := range have.Items {
		byName[have.Items[i].Name] = &have.Items[i]
	}
	var errs []error
	want := map[string]bool{}
	for key, ifaces := range ifacesBySvc {
		ns, name, _ := strings.Cut(key, "/")
		objName := "l2-" + statusName(r.flags.nodeName, ns, name)
		want[objName] = true
		st := v1beta1.MetalLBServiceL2Status{Node: r.flags.nodeName, ServiceName: name, ServiceNamespace: ns}
		for _, i := range ifaces {
			st.Interfaces = append(st.Interfaces, v1beta1.InterfaceInfo{Name: i})
		}
		cur, ok := byName[objName]
		if !ok {
			cur = &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Namespace: r.flags.namespace, Name: objName, Labels: map[string]string{
				labelStatusNode: r.flags.nodeName, labelStatusService: name, labelStatusNamespace: ns}}}
			err := r.client.Create(ctx, cur)
			if err != nil && !apierrors.IsAlreadyExists(err) {
				errs = append(errs, fmt.Errorf("create ServiceL2Status %s: %w", objName, err))
				continue
			}
			if svc := svcByKey[key]; err == nil && svc != nil {
				r.recorder.Eventf(svc, corev1.EventTypeNormal, "nodeAssigned", "announcing from node %q with protocol \"layer2\" on %s", r.flags.nodeName, strings.Join(ifaces, ", "))
			}
		}
		if equalL2Status(cur.Status, st) {
			continue
		}
		orig := cur.DeepCopy()
		cur.Status = st
		if err := r.client.Status().Patch(ctx, cur, client.MergeFrom(orig)); err != nil {
			errs = append(errs, fmt.Errorf("update ServiceL2Status %s: %w", objName, err))
		}
	}
	for name, obj := range byName {
		if want[name] {
			continue
		}
		err := r.client.Delete(ctx, obj)
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete ServiceL2Status %s: %w", name, err))
			continue
		}
		if err != nil {
			// Already gone: a reconcile before this one deleted it
			// (the cache had not caught up) and said so.
			continue
		}
		key := obj.Labels[labelStatusNamespace] + "/" + obj.Labels[labelStatusService]
		if svc := svcByKey[key]; svc != nil {
			r.recorder.Eventf(svc, corev1.EventTypeNormal, "nodeUnassigned", "node %q stopped announcing the service in layer 2 (another node was elected, or none is eligible)", r.flags.nodeName)
		}
	}
	return errors.Join(errs...)
}

func equalL2Status(a, b v1beta1.MetalLBServiceL2Status) bool {
	return a.Node == b.Node && a.ServiceName == b.ServiceName && a.ServiceNamespace == b.ServiceNamespace && slices.Equal(a.Interfaces, b.Interfaces)
}

// Metrics of the layer-2 responders, per interface, read at scrape time.
var (
	descL2Requests = prometheus.NewDesc("lbstack_layer2_requests_received_total",
		"ARP requests and neighbour solicitations received for announced addresses.", []string{"interface"}, nil)
	descL2Responses = prometheus.NewDesc("lbstack_layer2_responses_sent_total",
		"ARP replies and neighbour advertisements sent.", []string{"interface"}, nil)
	descL2Gratuitous = prometheus.NewDesc("lbstack_layer2_gratuitous_sent_total",
		"Gratuitous ARP packets and unsolicited neighbour advertisements sent.", []string{"interface"}, nil)
)

type l2Collector struct{ l *layer2 }

func (l2Collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descL2Requests
	ch <- descL2Responses
	ch <- descL2Gratuitous
}

func (c l2Collector) Collect(ch chan<- prometheus.Metric) {
	for name, s := range c.l.stats() {
		ch <- prometheus.MustNewConstMetric(descL2Requests, prometheus.CounterValue, float64(s.RequestsReceived), name)
		ch <- prometheus.MustNewConstMetric(descL2Responses, prometheus.CounterValue, float64(s.ResponsesSent), name)
		ch <- prometheus.MustNewConstMetric(descL2Gratuitous, prometheus.CounterValue, float64(s.GratuitousSent), name)
	}
}
