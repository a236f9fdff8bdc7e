package speaker

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/configload"
	"github.com/lbstack/lbstack/pkg/l2"
	"github.com/lbstack/lbstack/pkg/l2/election"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

// reconciler keeps the node's state: one key keeps it serial, and the
// event handlers record what changed (changes). A change of the
// configuration's inputs or of this node decides every Service again; a
// change of Services or EndpointSlices decides those Services only
// (Decider; election.Elector in layer 2), hands the backend and the
// responders a new state only when it differs, and writes only the status
// objects that change. Every Resync the whole state is recomputed and
// re-applied all the same (level-based).
type reconciler struct {
	opts     Options
	client   client.Client
	backend  bgp.Backend
	l2       *l2.Announcer
	recorder record.EventRecorder
	// bgpStatus and l2Status write the node's status objects.
	bgpStatus, l2Status *statusWriter
	// debug is what /debug/state serves, built from the state when asked.
	debug *debugStore
	// health is what the speaker's probes check.
	health reconcileHealth
	// changes are recorded by the event handlers.
	changes changes

	mu sync.Mutex
	// lastGood is the last valid configuration: a configuration error
	// keeps announcing with it.
	lastGood *config.Config
	// built and peers are of the last full reconcile.
	built config.Result
	peers []v1beta2.BGPPeer
	// reportedSkips are the sessions the backend skipped at the last
	// reconcile, with the reason reported in an event.
	reportedSkips map[string]string
	// lastFull is when everything was last recomputed.
	lastFull time.Time
	// applied is the Decider version the backend has, when appliedOK.
	applied   uint64
	appliedOK bool
	skipped   map[string]error
	// up are the sessions Established when the statuses were last set.
	up map[string]bool
	// l2Active: the configuration has L2Advertisements (set at each
	// election). Without, layer 2 is elected at full reconciles only,
	// which also withdraws what it answered for before.
	l2Active bool
	// elector is the layer-2 election, built at full reconciles and when
	// the live speakers change, from l2Nodes (the full reconcile's),
	// l2Pods and l2Live (read then), and updated per changed Service.
	elector *election.Elector
	l2Nodes []*corev1.Node
	l2Pods  []corev1.Pod
	l2Live  map[string]bool

	// stateMu guards what the debug handler reads, which the reconcile
	// changes.
	stateMu  sync.Mutex
	decider  *Decider
	cfgErr   error
	applyErr error
	l2Ifaces map[string][]string
}

// sessionPoll is how soon the speaker looks again while a session that
// should carry routes is not Established.
const sessionPoll = 2 * time.Second

// Reconcile implements reconcile.Reconciler.
func (r *reconciler) Reconcile(ctx context.Context, _ reconcile.Request) (_ reconcile.Result, retErr error) {
	r.health.begin()
	r.mu.Lock()
	defer r.mu.Unlock()
	// pending: a session that should carry routes is not Established yet.
	pending := false
	defer func() { r.health.end(r.lastGood != nil, pending, retErr) }()
	cs := r.changes.take()
	full := cs.full || r.decider == nil || !r.appliedOK || (r.opts.Resync > 0 && time.Since(r.lastFull) >= r.opts.Resync)
	var err error
	if full {
		pending, err = r.reconcileAll(ctx)
	} else {
		pending, err = r.reconcileChanges(ctx, cs)
	}
	r.debug.setFunc(r.debugState)
	if err != nil {
		// Retried with back-off by the workqueue, from scratch.
		r.changes.markFull()
		return reconcile.Result{}, err
	}
	if pending && r.opts.Resync > sessionPoll {
		// A session that carries routes is not up yet: look again soon so
		// ServiceBGPStatus follows it (the backend has no event for it).
		return reconcile.Result{RequeueAfter: sessionPoll}, nil
	}
	return reconcile.Result{RequeueAfter: r.opts.Resync}, nil
}

// reconcileAll reads everything, builds the configuration and decides
// every Service.
func (r *reconciler) reconcileAll(ctx context.Context) (pending bool, _ error) {
	log := ctrl.LoggerFrom(ctx)
	start := time.Now()
	res, err := r.resources(ctx)
	if err != nil {
		return false, err
	}
	// A BGPPeer refused now keeps its last valid version (Previous), and
	// one that never had one is left out: the other sessions go on.
	built := config.Build(res, config.Options{Namespace: r.opts.Namespace, BGPBackend: r.opts.BGPBackend, Previous: r.lastGood})
	cfgErr := built.Err()
	switch {
	case built.Config == nil:
		log.Error(cfgErr, "configuration refused; keeping the last valid one")
	case cfgErr != nil:
		r.lastGood = built.Config
		log.Error(cfgErr, "BGPPeers refused; the other sessions run", "left out", built.DisabledPeers, "kept at their last valid version", built.RetainedPeers)
	default:
		r.lastGood = built.Config
	}
	r.built, r.peers = built, res.Peers

	var node corev1.Node
	if err := r.client.Get(ctx, types.NamespacedName{Name: r.opts.NodeName}, &node); err != nil {
		return false, fmt.Errorf("node %s: %w", r.opts.NodeName, err)
	}
	r.bgpStatus.setNode(node.UID)
	r.l2Status.setNode(node.UID)
	var applyErr, l2Err error
	var decider *Decider
	svcByKey := map[string]*corev1.Service{}
	var l2Ifaces map[string][]string
	if r.lastGood != nil {
		svcs, eps, err := r.services(ctx)
		if err != nil {
			return false, err
		}
		if r.l2 != nil {
			// The Nodes configload already read for this reconcile.
			nodes := make([]*corev1.Node, len(res.Nodes))
			for i := range res.Nodes {
				nodes[i] = &res.Nodes[i]
			}
			l2Ifaces, l2Err = r.reconcileL2(ctx, nodes, svcs, eps)
			if l2Err != nil {
				log.Error(l2Err, "layer 2")
			}
		}
		for _, s := range svcs {
			svcByKey[lbservice.Key(s)] = s
		}
		decider, applyErr = NewDecider(SessionConfig(r.opts.BGPBackend, r.lastGood), &node, svcs, eps)
	}
	r.stateMu.Lock()
	r.decider, r.cfgErr, r.l2Ifaces = decider, cfgErr, l2Ifaces
	r.stateMu.Unlock()
	r.appliedOK = false
	if decider != nil {
		applyErr = r.apply(ctx)
	}
	if err := r.writeConfigurationState(ctx, built, applyErr, r.skipped, r.problems()); err != nil {
		log.Error(err, "write ConfigurationState")
	}
	if applyErr == nil && decider != nil {
		st := r.backend.Status()
		r.up = established(st)
		var received map[string][]string
		received, pending = ReceivedBy(decider.Result().Announced, st)
		r.bgpStatus.setAll(received, svcByKey)
	}
	if r.l2 != nil && r.lastGood != nil {
		r.l2Status.setAll(l2Ifaces, svcByKey)
	}
	r.lastFull = start
	if applyErr != nil {
		return pending, fmt.Errorf("apply BGP state: %w", applyErr)
	}
	if l2Err != nil {
		return pending, fmt.Errorf("layer 2: %w", l2Err)
	}
	return pending, nil
}

// reconcileChanges decides again the Services that changed, applies the
// state if it changed, and writes their status objects; with layer 2
// configured it elects their addresses again (Elector), or every address
// when the live speakers changed.
func (r *reconciler) reconcileChanges(ctx context.Context, cs changeSet) (pending bool, _ error) {
	log := ctrl.LoggerFrom(ctx)
	svcByKey := make(map[string]*corev1.Service, len(cs.services))
	epsByKey := make(map[string][]*discoveryv1.EndpointSlice, len(cs.services))
	r.stateMu.Lock()
	for _, key := range cs.services {
		svc, eps, err := r.service(ctx, key)
		if err != nil {
			r.stateMu.Unlock()
			return false, err
		}
		svcByKey[key], epsByKey[key] = svc, eps
		r.decider.Update(key, svc, eps)
	}
	r.stateMu.Unlock()
	var l2Err error
	if r.l2 != nil && r.l2Active && r.elector != nil && (cs.l2 || len(cs.services) > 0) {
		l2Err = r.reconcileL2Changes(ctx, cs, svcByKey, epsByKey)
		if l2Err != nil {
			log.Error(l2Err, "layer 2")
		}
	}

	var applyErr error
	if r.decider.Version() != r.applied {
		applyErr = r.applyChanges(ctx)
		if err := r.writeConfigurationState(ctx, r.built, applyErr, r.skipped, r.problems()); err != nil {
			log.Error(err, "write ConfigurationState")
		}
	}
	if applyErr != nil {
		return false, fmt.Errorf("apply BGP state: %w", applyErr)
	}
	st := r.backend.Status()
	up := established(st)
	if !maps.Equal(up, r.up) {
		// A session went up or down: every Service's peers may differ.
		r.up = up
		var received map[string][]string
		received, pending = ReceivedBy(r.decider.Result().Announced, st)
		r.bgpStatus.setAll(received, nil)
	} else {
		for _, key := range cs.services {
			peers, _ := r.decider.Announced(key)
			got, _ := ReceivedBy(map[string][]string{key: peers}, st)
			p, ok := got[key]
			r.bgpStatus.set(key, p, ok, svcByKey[key])
		}
		for name := range r.decider.peerRefs {
			if !up[name] {
				pending = true
			}
		}
	}
	if l2Err != nil {
		return pending, fmt.Errorf("layer 2: %w", l2Err)
	}
	return pending, nil
}

// reconcileL2Changes is layer 2 after changes of the live speakers or of
// some Services (svcs and eps, read already; a nil Service is gone or not
// served): when the live speakers changed, every address is elected again
// (a new Elector over every Service), otherwise only the changed
// Services'. When this node's announcements changed, the responders are
// given them, and the ServiceL2Status objects whose interfaces changed
// are written: of the changed Services, and of those sharing an address
// with them, whose interfaces follow the address's.
func (r *reconciler) reconcileL2Changes(ctx context.Context, cs changeSet, svcs map[string]*corev1.Service, eps map[string][]*discoveryv1.EndpointSlice) error {
	if cs.l2 {
		var pods corev1.PodList
		if err := r.client.List(ctx, &pods, client.InNamespace(r.opts.Namespace)); err != nil {
			return fmt.Errorf("list speaker pods: %w", err)
		}
		r.l2Pods = pods.Items
	}
	// Live also joins the speakers that run but are not members yet, as
	// at every reconcile: the kept pods cost what the nodes count.
	changed := false
	if live := r.l2.Live(r.l2Pods); !maps.Equal(live, r.l2Live) {
		all, allEps, err := r.services(ctx)
		if err != nil {
			return err
		}
		r.l2Live = live
		r.elector = election.NewElector(election.Input{
			Config: r.lastGood, Node: r.opts.NodeName, Nodes: r.l2Nodes,
			Services: all, EndpointSlices: allEps, Live: live,
		})
		ctrl.LoggerFrom(ctx).V(1).Info("layer 2 election: live speakers changed", "live", live, "announce", len(r.elector.Announce()))
		changed = true
	} else {
		for _, key := range cs.services {
			if r.elector.Update(key, svcs[key], eps[key]) {
				changed = true
			}
		}
	}
	if !changed {
		return nil
	}
	ifaces, err := r.l2.Apply(r.elector.Announce())
	r.stateMu.Lock()
	old := r.l2Ifaces
	r.l2Ifaces = ifaces
	r.stateMu.Unlock()
	ctrl.LoggerFrom(ctx).V(1).Info("layer 2 election", "changed", cs.services, "announce", len(ifaces))
	for _, key := range changedKeys(old, ifaces) {
		svc, ok := svcs[key]
		if !ok {
			// Another Service of a shared address, for its events.
			var getErr error
			if svc, _, getErr = r.service(ctx, key); getErr != nil {
				return errors.Join(err, getErr)
			}
		}
		detail, ok := ifaces[key]
		r.l2Status.set(key, detail, ok, svc)
	}
	return err
}

// changedKeys are the keys whose values differ between a and b (or that
// are in one only), sorted.
func changedKeys(a, b map[string][]string) []string {
	var out []string
	for k, v := range a {
		if w, ok := b[k]; !ok || !slices.Equal(v, w) {
			out = append(out, k)
		}
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// apply hands the Decider's state to the backend and reports the
// sessions it skipped.
func (r *reconciler) apply(ctx context.Context) error {
	return r.applyState(ctx, false)
}

// applyChanges is apply after the decisions of some Services changed
// since the backend was given the Decider's state: a backend that can
// apply the changed routes alone is given them.
func (r *reconciler) applyChanges(ctx context.Context) error {
	return r.applyState(ctx, true)
}

func (r *reconciler) applyState(ctx context.Context, incremental bool) error {
	version, res := r.decider.Version(), r.decider.Result()
	changed := r.decider.TakeChanges()
	if !incremental {
		for _, p := range res.Problems {
			ctrl.LoggerFrom(ctx).Info("session not opened", "reason", p)
		}
	}
	// Sessions the backend cannot run are skipped and reported; the rest
	// of the state is applied all the same.
	var applied error
	if ca, ok := r.backend.(bgp.ChangeApplier); ok && incremental && r.appliedOK {
		applied = ca.ApplyChanges(ctx, res.State, changed)
	} else {
		applied = r.backend.Apply(ctx, res.State)
	}
	skipped, err := bgp.SplitSkipped(applied)
	r.skipped = skipped
	r.reportSkipped(ctx, r.peers, skipped)
	r.stateMu.Lock()
	r.applyErr = err
	r.stateMu.Unlock()
	r.applied, r.appliedOK = version, err == nil
	return err
}

// problems are the decision's problems, none without a decision.
func (r *reconciler) problems() []string {
	if r.decider == nil {
		return nil
	}
	return r.decider.problems
}

// established is the set of Established sessions.
func established(st []bgp.SessionStatus) map[string]bool {
	up := map[string]bool{}
	for _, s := range st {
		if s.State == bgp.StateEstablished {
			up[s.Name] = true
		}
	}
	return up
}

// service reads Service key and its EndpointSlices from the cache; the
// Service is nil when it is gone or not one this speaker serves.
func (r *reconciler) service(ctx context.Context, key string) (*corev1.Service, []*discoveryv1.EndpointSlice, error) {
	ns, name, _ := strings.Cut(key, "/")
	var svc corev1.Service
	switch err := r.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &svc); {
	case apierrors.IsNotFound(err):
		return nil, nil, nil
	case err != nil:
		return nil, nil, fmt.Errorf("get Service %s: %w", key, err)
	}
	if svc.Spec.Type != corev1.ServiceTypeLoadBalancer || !lbservice.ClassMatches(&svc, r.opts.LBClass) {
		return nil, nil, nil
	}
	var list discoveryv1.EndpointSliceList
	if err := r.client.List(ctx, &list, client.InNamespace(ns), client.MatchingFields{sliceServiceIndex: key}); err != nil {
		return nil, nil, fmt.Errorf("list EndpointSlices of %s: %w", key, err)
	}
	eps := make([]*discoveryv1.EndpointSlice, len(list.Items))
	for i := range list.Items {
		eps[i] = &list.Items[i]
	}
	return &svc, eps, nil
}

// reconcileL2 elects the owner of every layer-2 address from the same
// inputs on every node (a new Elector) and makes this node's responders
// answer for its own; it returns the interfaces per announced Service.
func (r *reconciler) reconcileL2(ctx context.Context, nodes []*corev1.Node, svcs []*corev1.Service, eps []*discoveryv1.EndpointSlice) (map[string][]string, error) {
	r.elector = nil
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(r.opts.Namespace)); err != nil {
		return nil, fmt.Errorf("list speaker pods: %w", err)
	}
	live := r.l2.Live(pods.Items)
	// Without L2Advertisements, changes skip layer 2 (once this election
	// withdrew the answers of the last) until the next full reconcile.
	r.l2Active = hasL2(r.lastGood)
	r.l2Nodes, r.l2Pods, r.l2Live = nodes, pods.Items, live
	r.elector = election.NewElector(election.Input{
		Config: r.lastGood, Node: r.opts.NodeName, Nodes: nodes,
		Services: svcs, EndpointSlices: eps, Live: live,
	})
	if log := ctrl.LoggerFrom(ctx).V(1); log.Enabled() {
		log.Info("layer 2 election", "live", live, "owners", r.elector.Result().Owner, "announce", len(r.elector.Announce()))
	}
	return r.l2.Apply(r.elector.Announce())
}

func (r *reconciler) resources(ctx context.Context) (config.Resources, error) {
	return configload.Load(ctx, r.client, configload.Options{Namespace: r.opts.Namespace, Nodes: true, L2Advertisements: true})
}

func (r *reconciler) services(ctx context.Context) ([]*corev1.Service, []*discoveryv1.EndpointSlice, error) {
	var svcs corev1.ServiceList
	if err := r.client.List(ctx, &svcs); err != nil {
		return nil, nil, fmt.Errorf("list Services: %w", err)
	}
	var eps discoveryv1.EndpointSliceList
	if err := r.client.List(ctx, &eps); err != nil {
		return nil, nil, fmt.Errorf("list EndpointSlices: %w", err)
	}
	var outS []*corev1.Service
	for i := range svcs.Items {
		if svcs.Items[i].Spec.Type == corev1.ServiceTypeLoadBalancer && lbservice.ClassMatches(&svcs.Items[i], r.opts.LBClass) {
			outS = append(outS, &svcs.Items[i])
		}
	}
	outE := make([]*discoveryv1.EndpointSlice, 0, len(eps.Items))
	for i := range eps.Items {
		outE = append(outE, &eps.Items[i])
	}
	return outS, outE, nil
}

// reportSkipped puts a Warning event on each BGPPeer whose session the
// backend left out of this node, once per new reason: the peer's owner
// learns that this one session does not run here and why, while the
// node's other sessions keep announcing.
func (r *reconciler) reportSkipped(ctx context.Context, peers []v1beta2.BGPPeer, skipped map[string]error) {
	now := map[string]string{}
	for name, why := range skipped {
		now[name] = why.Error()
	}
	for i := range peers {
		p := &peers[i]
		msg, ok := now[p.Name]
		if !ok || r.reportedSkips[p.Name] == msg {
			continue
		}
		r.recorder.Eventf(p, corev1.EventTypeWarning, "SessionSkipped",
			"node %s: the BGP backend cannot run this session: %s; the node's other sessions keep announcing", r.opts.NodeName, truncate(msg, 800))
		ctrl.LoggerFrom(ctx).Info("session skipped", "peer", p.Name, "reason", msg)
	}
	r.reportedSkips = now
}

// debugState is the node's state as /debug/state shows it, built when
// asked from the current decision.
func (r *reconciler) debugState() DebugState {
	r.stateMu.Lock()
	defer r.stateMu.Unlock()
	var decision Result
	if r.decider != nil {
		decision = r.decider.Result()
		// The Decider's own maps change with the next reconcile; the
		// state is encoded after the lock is released.
		decision.Announced, decision.Skipped = maps.Clone(decision.Announced), maps.Clone(decision.Skipped)
	}
	st := NewDebugState(r.opts.NodeName, string(r.opts.BGPBackend), decision, r.backend.Status())
	if r.cfgErr != nil {
		st.ConfigError = r.cfgErr.Error()
	}
	if r.applyErr != nil {
		st.ApplyError = r.applyErr.Error()
	}
	if r.l2 != nil {
		st.L2 = &DebugL2{Announced: r.l2Ifaces}
		if members, live, ok := r.l2.Members(); ok {
			st.L2.Members, st.L2.Live = members, live
		}
	}
	return st
}

// hasL2 reports whether some pool has L2Advertisements.
func hasL2(cfg *config.Config) bool {
	if cfg == nil {
		return false
	}
	for _, p := range cfg.Pools {
		if len(p.L2Advertisements) > 0 {
			return true
		}
	}
	return false
}
