package speaker

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
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

// reconciler recomputes the node's whole state on any change: the
// decision is cheap and global (one Service's endpoints or one peer change
// many routes), and one key keeps it serial.
type reconciler struct {
	opts     Options
	client   client.Client
	backend  bgp.Backend
	l2       *l2.Announcer
	recorder record.EventRecorder
	status   nodeStatus
	// debug is what /debug/state serves, replaced after every reconcile.
	debug *debugStore
	// health is what the speaker's probes check.
	health reconcileHealth

	mu sync.Mutex
	// lastGood is the last valid configuration: a configuration error
	// keeps announcing with it.
	lastGood *config.Config
	// reportedSkips are the sessions the backend skipped at the last
	// reconcile, with the reason reported in an event.
	reportedSkips map[string]string
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
	log := ctrl.LoggerFrom(ctx)
	res, err := r.resources(ctx)
	if err != nil {
		return reconcile.Result{}, err
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

	var node corev1.Node
	if err := r.client.Get(ctx, types.NamespacedName{Name: r.opts.NodeName}, &node); err != nil {
		return reconcile.Result{}, fmt.Errorf("node %s: %w", r.opts.NodeName, err)
	}
	var applyErr, l2Err error
	var skipped map[string]error
	var decision Result
	svcByKey := map[string]*corev1.Service{}
	var l2Ifaces map[string][]string
	if r.lastGood != nil {
		svcs, eps, err := r.services(ctx)
		if err != nil {
			return reconcile.Result{}, err
		}
		if r.l2 != nil {
			// The Nodes configload already read for this reconcile.
			l2Ifaces, l2Err = r.reconcileL2(ctx, res.Nodes, svcs, eps)
			if l2Err != nil {
				log.Error(l2Err, "layer 2")
			}
		}
		for _, s := range svcs {
			svcByKey[lbservice.Key(s)] = s
		}
		decision, applyErr = Decide(Input{Config: r.lastGood, Node: &node, Services: svcs, EndpointSlices: eps})
		if applyErr == nil {
			// Sessions the backend cannot run are skipped and reported;
			// the rest of the state is applied all the same.
			skipped, applyErr = bgp.SplitSkipped(r.backend.Apply(ctx, decision.State))
		}
		for _, p := range decision.Problems {
			log.Info("session not opened", "reason", p)
		}
		r.reportSkipped(ctx, res.Peers, skipped)
	}
	if err := r.writeConfigurationState(ctx, built, applyErr, skipped, decision.Problems); err != nil {
		log.Error(err, "write ConfigurationState")
	}
	if applyErr == nil && r.lastGood != nil {
		var received map[string][]string
		received, pending = ReceivedBy(decision.Announced, r.backend.Status())
		if err := r.status.sync(ctx, bgpStatus, received, svcByKey); err != nil {
			return reconcile.Result{}, err
		}
	}
	if r.l2 != nil && r.lastGood != nil {
		if err := r.status.sync(ctx, l2Status, l2Ifaces, svcByKey); err != nil {
			return reconcile.Result{}, err
		}
	}
	r.debug.set(r.debugState(decision, cfgErr, applyErr, l2Ifaces))
	if applyErr != nil {
		// Retried with back-off by the workqueue.
		return reconcile.Result{}, fmt.Errorf("apply BGP state: %w", applyErr)
	}
	if l2Err != nil {
		return reconcile.Result{}, fmt.Errorf("layer 2: %w", l2Err)
	}
	if pending && r.opts.Resync > sessionPoll {
		// A session that carries routes is not up yet: look again soon so
		// ServiceBGPStatus follows it (the backend has no event for it).
		return reconcile.Result{RequeueAfter: sessionPoll}, nil
	}
	return reconcile.Result{RequeueAfter: r.opts.Resync}, nil
}

// reconcileL2 elects the owner of every layer-2 address from the same
// inputs on every node and makes this node's responders answer for its
// own; it returns the interfaces per announced Service.
func (r *reconciler) reconcileL2(ctx context.Context, nodeList []corev1.Node, svcs []*corev1.Service, eps []*discoveryv1.EndpointSlice) (map[string][]string, error) {
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(r.opts.Namespace)); err != nil {
		return nil, fmt.Errorf("list speaker pods: %w", err)
	}
	nodes := make([]*corev1.Node, len(nodeList))
	for i := range nodeList {
		nodes[i] = &nodeList[i]
	}
	live := r.l2.Live(pods.Items)
	res := election.Decide(election.Input{
		Config: r.lastGood, Node: r.opts.NodeName, Nodes: nodes,
		Services: svcs, EndpointSlices: eps, Live: live,
	})
	ctrl.LoggerFrom(ctx).V(1).Info("layer 2 election", "live", live, "owners", res.Owner, "announce", len(res.Announce))
	return r.l2.Apply(res)
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

// debugState is the reconcile's outcome as /debug/state shows it.
func (r *reconciler) debugState(decision Result, cfgErr, applyErr error, l2Ifaces map[string][]string) DebugState {
	st := NewDebugState(r.opts.NodeName, string(r.opts.BGPBackend), decision, r.backend.Status())
	if cfgErr != nil {
		st.ConfigError = cfgErr.Error()
	}
	if applyErr != nil {
		st.ApplyError = applyErr.Error()
	}
	if r.l2 != nil {
		st.L2 = &DebugL2{Announced: l2Ifaces}
		if members, live, ok := r.l2.Members(); ok {
			st.L2.Members, st.L2.Live = members, live
		}
	}
	return st
}
