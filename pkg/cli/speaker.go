package cli

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/bgp/frr"
	"github.com/lbstack/lbstack/pkg/bgp/native"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/configload"
	"github.com/lbstack/lbstack/pkg/l2/election"
	"github.com/lbstack/lbstack/pkg/lbservice"
	"github.com/lbstack/lbstack/pkg/scheme"
	"github.com/lbstack/lbstack/pkg/speaker"
)

// speakerFlags are the flags of `lbstack speaker`.
type speakerFlags struct {
	nodeName   string
	namespace  string
	logLevel   string
	kubeconfig string
	bgpBackend string
	healthAddr string
	metrics    string
	resync     time.Duration
	// metricsPort is MetalLB's --port (the metrics port); when set it
	// overrides --metrics-bind-address.
	metricsPort int
	// lbClass is the spec.loadBalancerClass served; empty serves Services
	// without a class.
	lbClass string
	// mlBindPort is the memberlist port of layer-2 mode (gossip among
	// the speakers, for sub-second failure detection).
	mlBindPort int
	// frrHandoff is the directory shared with the frr-reloader sidecar.
	frrHandoff string
	serving    servingFlags
}

// Labels of the ServiceBGPStatus objects, as MetalLB sets them.
const (
	labelStatusNode      = "metallb.io/node"
	labelStatusService   = "metallb.io/service-name"
	labelStatusNamespace = "metallb.io/service-namespace"
)

func newSpeakerCommand() *cobra.Command {
	var f speakerFlags
	cmd := &cobra.Command{
		Use:   "speaker",
		Short: "Run the per-node speaker: announce service addresses over BGP and in layer 2",
		Long: `Run the speaker of one node: read the metallb.io configuration, the LoadBalancer
Services, their EndpointSlices and the node, decide which addresses this node
announces to which BGP peers (pkg/speaker), and make the BGP backend announce them.
In layer 2 the speakers elect one node per address (pkg/l2/election, the same
answer on every node), learn who is alive from memberlist (key from
METALLB_ML_SECRET_KEY_PATH, address METALLB_ML_BIND_ADDR:--ml-bindport), and
the elected node answers ARP/NDP for it. Reports the configuration's state in
ConfigurationState speaker-<node>, and each announced Service in a
ServiceBGPStatus or ServiceL2Status. --bgp-backend native embeds GoBGP;
--bgp-backend frr hands the state to the frr-reloader sidecar next to FRR.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := setupLogging(f.logLevel); err != nil {
				return err
			}
			ctx, cancel := untilSignal(cmd.Context())
			defer cancel()
			return runSpeaker(ctx, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.nodeName, "node-name", envOr("NODE_NAME", ""), "name of this node (env NODE_NAME)")
	fl.StringVar(&f.namespace, "namespace", envOr("METALLB_NAMESPACE", "metallb-system"), "the stack's namespace (env METALLB_NAMESPACE)")
	fl.StringVar(&f.logLevel, "log-level", "info", "all|debug|info|warn|error|none")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (in-cluster configuration when empty)")
	fl.StringVar(&f.bgpBackend, "bgp-backend", string(v1beta1.BGPTypeNative), "BGP backend: native (embedded GoBGP) or frr (FRR sidecar, needed for BFD)")
	fl.StringVar(&f.healthAddr, "health-probe-bind-address", speaker.DefaultLocalAddr, "loopback address of /healthz, /readyz and "+speaker.DebugStatePath+" (0 disables)")
	fl.StringVar(&f.metrics, "metrics-bind-address", ":7472", "address of the Prometheus /metrics endpoint (0 disables)")
	fl.DurationVar(&f.resync, "resync", time.Minute, "how often the state is recomputed and re-applied even without changes")
	fl.IntVar(&f.metricsPort, "port", 0, "metrics port (MetalLB's flag; overrides --metrics-bind-address with :PORT)")
	fl.StringVar(&f.lbClass, "lb-class", "", "serve only Services with this spec.loadBalancerClass (empty: Services without a class)")
	fl.IntVar(&f.mlBindPort, "ml-bindport", 7946, "memberlist port of layer-2 mode")
	fl.StringVar(&f.frrHandoff, "frr-handoff-dir", "/etc/lbstack-frr", "with --bgp-backend frr: the volume shared with the frr-reloader sidecar")
	f.serving.add(fl)
	return cmd
}

func (f *speakerFlags) validate() error {
	if f.nodeName == "" {
		return errors.New("--node-name (or env NODE_NAME) is required")
	}
	if f.namespace == "" {
		return errors.New("--namespace is required")
	}
	switch v1beta1.BGPType(f.bgpBackend) {
	case v1beta1.BGPTypeNative, v1beta1.BGPTypeFRR:
	default:
		return fmt.Errorf("--bgp-backend %q: want native (embedded GoBGP) or frr (the FRR sidecar; frr-k8s modes are not supported)", f.bgpBackend)
	}
	return nil
}

func runSpeaker(ctx context.Context, f speakerFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	if f.metricsPort > 0 {
		f.metrics = fmt.Sprintf(":%d", f.metricsPort)
	}
	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	// Namespaced kinds are only watched in the stack's namespace: that is
	// all the speaker's Role grants, and all Build considers.
	inNS := map[string]cache.Config{f.namespace: {}}
	debug := &debugStore{}
	metrics, err := f.serving.metricsOptions(f.metrics)
	if err != nil {
		return err
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:  scheme.New(),
		Metrics: metrics,
		// Health and debug have their own loopback server (below).
		HealthProbeBindAddress: "0",
		Cache: cache.Options{DefaultTransform: cache.TransformStripManagedFields(), ByObject: map[client.Object]cache.ByObject{
			&corev1.Secret{}:            {Namespaces: inNS},
			&v1beta1.IPAddressPool{}:    {Namespaces: inNS},
			&v1beta2.BGPPeer{}:          {Namespaces: inNS},
			&v1beta1.BGPAdvertisement{}: {Namespaces: inNS},
			&v1beta1.BFDProfile{}:       {Namespaces: inNS},
			&v1beta1.Community{}:        {Namespaces: inNS},
			&v1beta1.ServiceBGPStatus{}: {Namespaces: inNS},
			// Written by Get/Create/Update through the cached client: a
			// cluster-wide informer would need more than the speaker's Role.
			&v1beta1.ConfigurationState{}: {Namespaces: inNS},
			&v1beta1.L2Advertisement{}:    {Namespaces: inNS},
			&v1beta1.ServiceL2Status{}:    {Namespaces: inNS},
			// The speaker pods: who may be elected in layer 2.
			&corev1.Pod{}: {Namespaces: inNS},
		}},
	})
	if err != nil {
		return fmt.Errorf("manager: %w", err)
	}
	var backend bgp.Backend
	if v1beta1.BGPType(f.bgpBackend) == v1beta1.BGPTypeFRR {
		// The frr-reloader sidecar applies what this writes to the shared
		// volume, and reports FRR's sessions back (pkg/bgp/frr handoff).
		backend = frr.NewFileBackend(f.frrHandoff)
	} else {
		backend = native.New(native.Options{Log: ctrl.Log.WithName("gobgp")})
	}
	// Read at scrape time from the backend: no polling, never stale.
	collector := sessionCollector{backend}
	if err := crmetrics.Registry.Register(collector); err != nil {
		return fmt.Errorf("register BGP metrics: %w", err)
	}
	defer crmetrics.Registry.Unregister(collector)
	l2, err := newLayer2(l2OptionsFromEnv(f), ctrl.Log.WithName("layer2"))
	if err != nil {
		return fmt.Errorf("layer 2: %w", err)
	}
	l2c := l2Collector{l2}
	if err := crmetrics.Registry.Register(l2c); err != nil {
		return fmt.Errorf("register layer-2 metrics: %w", err)
	}
	defer crmetrics.Registry.Unregister(l2c)
	r := &speakerReconciler{flags: f, client: mgr.GetClient(), backend: backend, l2: l2, recorder: mgr.GetEventRecorderFor("lbstack-speaker"), debug: debug}
	if err := r.setup(mgr); err != nil {
		return err
	}
	if f.healthAddr != "0" && f.healthAddr != "" {
		local, err := newLocalServer(f.healthAddr)
		if err != nil {
			return fmt.Errorf("--health-probe-bind-address %w", err)
		}
		local.check("/healthz", "reconcile-loop", r.health.live)
		local.check("/readyz", "announcing", r.health.ready)
		if hc, ok := backend.(interface{ Healthy() error }); ok {
			local.check("/readyz", "bgp-backend", hc.Healthy)
		}
		local.handle(speaker.DebugStatePath, debug)
		if err := mgr.Add(local); err != nil {
			return err
		}
	}
	// Close the sessions on the way out: the routers withdraw this node's
	// routes at once rather than after the hold time.
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		<-ctx.Done()
		l2.close()
		return backend.Close()
	})); err != nil {
		return err
	}
	return mgr.Start(ctx)
}

// speakerReconciler recomputes the node's whole state on any change: the
// decision is cheap and global (one Service's endpoints or one peer change
// many routes), and one key keeps it serial.
type speakerReconciler struct {
	flags    speakerFlags
	client   client.Client
	backend  bgp.Backend
	l2       *layer2
	recorder record.EventRecorder
	// debug is what /debug/state serves, replaced after every reconcile.
	debug *debugStore

	mu sync.Mutex
	// lastGood is the last valid configuration: a configuration error
	// keeps announcing with it.
	lastGood *config.Config
	// reportedSkips are the sessions the backend skipped at the last
	// reconcile, with the reason reported in an event.
	reportedSkips map[string]string
	// health is what the speaker's probes check.
	health reconcileHealth
}

// sessionPoll is how soon the speaker looks again while a session that
// should carry routes is not Established.
const sessionPoll = 2 * time.Second

var speakerKey = reconcile.Request{NamespacedName: types.NamespacedName{Name: "speaker"}}

func (r *speakerReconciler) setup(mgr ctrl.Manager) error {
	one := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request {
		return []reconcile.Request{speakerKey}
	})
	b := ctrl.NewControllerManagedBy(mgr).Named("lbstack-speaker")
	for _, obj := range []client.Object{
		&v1beta1.IPAddressPool{}, &v1beta2.BGPPeer{}, &v1beta1.BGPAdvertisement{}, &v1beta1.BFDProfile{},
		&v1beta1.Community{}, &corev1.Secret{}, &corev1.Service{}, &discoveryv1.EndpointSlice{}, &corev1.Node{},
		&v1beta1.L2Advertisement{}, &corev1.Pod{},
	} {
		b = b.Watches(obj, one)
	}
	if r.l2 != nil {
		b = b.WatchesRawSource(source.Channel(r.l2.changes, one))
	}
	return b.Complete(r)
}

// Reconcile implements reconcile.Reconciler.
func (r *speakerReconciler) Reconcile(ctx context.Context, _ reconcile.Request) (_ reconcile.Result, retErr error) {
	r.health.begin()
	r.mu.Lock()
	defer r.mu.Unlock()
	// pending: a session that should carry routes is not Established yet.
	pending := false
	defer func() { r.health.end(r.lastGood != nil, pending, retErr) }()
	log := ctrl.LoggerFrom(ctx)
	ns := r.flags.namespace
	res, err := r.resources(ctx)
	if err != nil {
		return reconcile.Result{}, err
	}
	// A BGPPeer refused now keeps its last valid version (Previous), and
	// one that never had one is left out: the other sessions go on.
	built := config.Build(res, config.Options{Namespace: ns, BGPBackend: v1beta1.BGPType(r.flags.bgpBackend), Previous: r.lastGood})
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
	if err := r.client.Get(ctx, types.NamespacedName{Name: r.flags.nodeName}, &node); err != nil {
		return reconcile.Result{}, fmt.Errorf("node %s: %w", r.flags.nodeName, err)
	}
	var applyErr, l2Err error
	var skipped map[string]error
	var decision speaker.Result
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
		decision, applyErr = speaker.Decide(speaker.Input{Config: r.lastGood, Node: &node, Services: svcs, EndpointSlices: eps})
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
		received, pending = speaker.ReceivedBy(decision.Announced, r.backend.Status())
		if err := r.syncServiceStatus(ctx, received, svcByKey); err != nil {
			return reconcile.Result{}, err
		}
	}
	if r.l2 != nil && r.lastGood != nil {
		if err := r.syncL2Status(ctx, l2Ifaces, svcByKey); err != nil {
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
	if pending && r.flags.resync > sessionPoll {
		// A session that carries routes is not up yet: look again soon so
		// ServiceBGPStatus follows it (the backend has no event for it).
		return reconcile.Result{RequeueAfter: sessionPoll}, nil
	}
	return reconcile.Result{RequeueAfter: r.flags.resync}, nil
}

// reconcileL2 elects the owner of every layer-2 address from the same
// inputs on every node and makes this node's responders answer for its
// own; it returns the interfaces per announced Service.
func (r *speakerReconciler) reconcileL2(ctx context.Context, nodeList []corev1.Node, svcs []*corev1.Service, eps []*discoveryv1.EndpointSlice) (map[string][]string, error) {
	var pods corev1.PodList
	if err := r.client.List(ctx, &pods, client.InNamespace(r.flags.namespace)); err != nil {
		return nil, fmt.Errorf("list speaker pods: %w", err)
	}
	nodes := make([]*corev1.Node, len(nodeList))
	for i := range nodeList {
		nodes[i] = &nodeList[i]
	}
	live := r.l2.live(pods.Items)
	res := election.Decide(election.Input{
		Config: r.lastGood, Node: r.flags.nodeName, Nodes: nodes,
		Services: svcs, EndpointSlices: eps, Live: live,
	})
	ctrl.LoggerFrom(ctx).V(1).Info("layer 2 election", "live", live, "owners", res.Owner, "announce", len(res.Announce))
	return r.l2.apply(res)
}

func (r *speakerReconciler) resources(ctx context.Context) (config.Resources, error) {
	return configload.Load(ctx, r.client, configload.Options{Namespace: r.flags.namespace, Nodes: true, L2Advertisements: true})
}

func (r *speakerReconciler) services(ctx context.Context) ([]*corev1.Service, []*discoveryv1.EndpointSlice, error) {
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
		if svcs.Items[i].Spec.Type == corev1.ServiceTypeLoadBalancer && lbservice.ClassMatches(&svcs.Items[i], r.flags.lbClass) {
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
func (r *speakerReconciler) reportSkipped(ctx context.Context, peers []v1beta2.BGPPeer, skipped map[string]error) {
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
			"node %s: the BGP backend cannot run this session: %s; the node's other sessions keep announcing", r.flags.nodeName, truncate(msg, 800))
		ctrl.LoggerFrom(ctx).Info("session skipped", "peer", p.Name, "reason", msg)
	}
	r.reportedSkips = now
}

// writeConfigurationState records the outcome in ConfigurationState
// speaker-<node>: Invalid with the configuration errors (the whole
// configuration refused, or BGPPeers left out), or Valid; the Announcing
// condition says what this node announces with: apply errors, skipped
// sessions, pending sessions and warnings.
func (r *speakerReconciler) writeConfigurationState(ctx context.Context, built config.Result, applyErr error, skipped map[string]error, problems []string) error {
	cfgErr := built.Err()
	warnings := built.Warnings
	key := types.NamespacedName{Namespace: r.flags.namespace, Name: "speaker-" + r.flags.nodeName}
	var cs v1beta1.ConfigurationState
	if err := r.client.Get(ctx, key, &cs); apierrors.IsNotFound(err) {
		cs = v1beta1.ConfigurationState{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name,
			Labels: map[string]string{labelStatusNode: r.flags.nodeName}}}
		if err := r.client.Create(ctx, &cs); err != nil {
			return fmt.Errorf("create %s: %w", key, err)
		}
	} else if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	st := v1beta1.ConfigurationStateStatus{Result: v1beta1.ConfigurationValid, Conditions: slices.Clone(cs.Status.Conditions)}
	var notes []string
	if cfgErr != nil {
		st.Result = v1beta1.ConfigurationInvalid
		st.ErrorSummary = cfgErr.Error()
	}
	if applyErr != nil {
		notes = append(notes, applyErr.Error())
	}
	for _, name := range slices.Sorted(maps.Keys(skipped)) {
		notes = append(notes, fmt.Sprintf("session %s skipped by the BGP backend: %v", name, skipped[name]))
	}
	notes = append(notes, problems...)
	for _, w := range warnings {
		notes = append(notes, w.Error())
	}
	if st.ErrorSummary == "" && len(notes) > 0 {
		st.ErrorSummary = strings.Join(notes, "\n")
	}
	cond := metav1.Condition{Type: "Announcing", Status: metav1.ConditionTrue, Reason: "Applied", Message: "the BGP state of this node is applied"}
	if applyErr != nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "ApplyFailed", applyErr.Error()
	} else if r.lastGood == nil {
		cond.Status, cond.Reason, cond.Message = metav1.ConditionFalse, "NoValidConfiguration", "no valid configuration loaded yet"
	} else if built.Config == nil {
		cond.Reason, cond.Message = "LastValidConfiguration", "announcing with the last valid configuration"
	} else if len(built.DisabledPeers) > 0 || len(skipped) > 0 {
		cond.Reason, cond.Message = "SessionsSkipped", skippedMessage(built, skipped)
	}
	cond.ObservedGeneration = cs.Generation
	meta.SetStatusCondition(&st.Conditions, cond)
	if equalConfigStatus(cs.Status, st) {
		return nil
	}
	orig := cs.DeepCopy()
	cs.Status = st
	if err := r.client.Status().Patch(ctx, &cs, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("update %s status: %w", key, err)
	}
	// An event per new error, not per reconcile: the status write above
	// happens only when something changed.
	if cfgErr != nil && orig.Status.ErrorSummary != st.ErrorSummary {
		r.recorder.Event(&cs, corev1.EventTypeWarning, "ConfigurationInvalid", truncate(cfgErr.Error(), 1000))
	}
	if applyErr != nil && orig.Status.ErrorSummary != st.ErrorSummary {
		r.recorder.Event(&cs, corev1.EventTypeWarning, "BGPApplyFailed", truncate(applyErr.Error(), 1000))
	}
	return nil
}

// skippedMessage says which sessions this node does not run as
// configured, and that the others announce.
func skippedMessage(built config.Result, skipped map[string]error) string {
	var parts []string
	for _, name := range built.DisabledPeers {
		if slices.Contains(built.RetainedPeers, name) {
			parts = append(parts, fmt.Sprintf("bgppeer %q runs its last valid version", name))
		} else {
			parts = append(parts, fmt.Sprintf("bgppeer %q is left out", name))
		}
	}
	for _, name := range slices.Sorted(maps.Keys(skipped)) {
		parts = append(parts, fmt.Sprintf("session %q is skipped by the BGP backend", name))
	}
	return "announcing every other session; " + strings.Join(parts, ", ") + " (see errorSummary)"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

func equalConfigStatus(a, b v1beta1.ConfigurationStateStatus) bool {
	if a.Result != b.Result || a.ErrorSummary != b.ErrorSummary || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message {
			return false
		}
	}
	return true
}

// statusName is the ServiceBGPStatus name for (node, Service): stable and
// within the name length limit whatever the lengths of the parts.
func statusName(node, ns, name string) string {
	h := fnv.New64a()
	_, _ = h.Write([]byte(node + "/" + ns + "/" + name))
	prefix := node
	if len(prefix) > 40 {
		prefix = prefix[:40]
	}
	return fmt.Sprintf("%s-%x", strings.TrimRight(prefix, ".-"), h.Sum64())
}

// syncServiceStatus makes the ServiceBGPStatus objects of this node match
// announced ("namespace/name" → peers): one per announced Service, none for
// the others. Creating or deleting one is this node joining or leaving
// the Service's announcing set, and only then does the Service get an
// event (nodeAssigned / nodeUnassigned): MetalLB emits nodeAssigned on
// every reconcile, which floods busy clusters. The objects survive a
// speaker restart, so a restart that announces the same is silent too.
func (r *speakerReconciler) syncServiceStatus(ctx context.Context, announced map[string][]string, svcByKey map[string]*corev1.Service) error {
	var have v1beta1.ServiceBGPStatusList
	if err := r.client.List(ctx, &have, client.InNamespace(r.flags.namespace), client.MatchingLabels{labelStatusNode: r.flags.nodeName}); err != nil {
		return fmt.Errorf("list ServiceBGPStatus: %w", err)
	}
	byName := map[string]*v1beta1.ServiceBGPStatus{}
	for i := range have.Items {
		byName[have.Items[i].Name] = &have.Items[i]
	}
	var errs []error
	want := map[string]bool{}
	for key, peers := range announced {
		ns, name, _ := strings.Cut(key, "/")
		objName := statusName(r.flags.nodeName, ns, name)
		want[objName] = true
		st := v1beta1.MetalLBServiceBGPStatus{Node: r.flags.nodeName, ServiceName: name, ServiceNamespace: ns, Peers: peers}
		cur, ok := byName[objName]
		if !ok {
			cur = &v1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Namespace: r.flags.namespace, Name: objName, Labels: map[string]string{
				labelStatusNode: r.flags.nodeName, labelStatusService: name, labelStatusNamespace: ns}}}
			err := r.client.Create(ctx, cur)
			if err != nil && !apierrors.IsAlreadyExists(err) {
				errs = append(errs, fmt.Errorf("create ServiceBGPStatus %s: %w", objName, err))
				continue
			}
			if svc := svcByKey[key]; err == nil && svc != nil {
				r.recorder.Eventf(svc, corev1.EventTypeNormal, "nodeAssigned", "announcing from node %q with protocol \"bgp\" to peers %s", r.flags.nodeName, strings.Join(peers, ", "))
			}
		}
		if cur.Status.Node == st.Node && cur.Status.ServiceName == st.ServiceName && cur.Status.ServiceNamespace == st.ServiceNamespace && slices.Equal(cur.Status.Peers, st.Peers) {
			continue
		}
		orig := cur.DeepCopy()
		cur.Status = st
		if err := r.client.Status().Patch(ctx, cur, client.MergeFrom(orig)); err != nil {
			errs = append(errs, fmt.Errorf("update ServiceBGPStatus %s: %w", objName, err))
		}
	}
	for name, obj := range byName {
		if !want[name] {
			err := r.client.Delete(ctx, obj)
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete ServiceBGPStatus %s: %w", name, err))
				continue
			}
			if err != nil {
				// Already gone: a reconcile before this one deleted it
				// (the cache had not caught up) and said so.
				continue
			}
			key := obj.Labels[labelStatusNamespace] + "/" + obj.Labels[labelStatusService]
			if svc := svcByKey[key]; svc != nil {
				r.recorder.Eventf(svc, corev1.EventTypeNormal, "nodeUnassigned", "node %q stopped announcing the service (no eligible advertisement, peer or local endpoint on it)", r.flags.nodeName)
			}
		}
	}
	return errors.Join(errs...)
}

// Metrics of the BGP sessions, per peer (BGPPeer name) and VRF.
var (
	descSessionUp = prometheus.NewDesc("lbstack_bgp_session_up",
		"1 when the BGP session with the peer is Established, else 0.", []string{"peer", "vrf"}, nil)
	descAnnounced = prometheus.NewDesc("lbstack_bgp_announced_prefixes",
		"Number of prefixes announced to the peer.", []string{"peer", "vrf"}, nil)
	descUpdates = prometheus.NewDesc("lbstack_bgp_updates_total",
		"BGP UPDATE messages sent to the peer (restarts from 0 when the session is re-created).", []string{"peer", "vrf"}, nil)
)

// sessionCollector exports the backend's session status.
type sessionCollector struct{ backend bgp.Backend }

func (sessionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSessionUp
	ch <- descAnnounced
	ch <- descUpdates
	ch <- descBFDUp
}

// descBFDUp is the BFD state of a session's peer (FRR backend only).
var descBFDUp = prometheus.NewDesc("lbstack_bfd_session_up",
	"1 when the BFD session with the peer is up, else 0 (bgpBackend frr).", []string{"peer", "vrf", "address"}, nil)

// bfdReporter is a backend that knows BFD peers (the FRR backend).
type bfdReporter interface{ BFDPeers() []frr.BFDPeer }

func (c sessionCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.backend.Status() {
		up := 0.0
		if s.State == bgp.StateEstablished {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descSessionUp, prometheus.GaugeValue, up, s.Name, s.VRF)
		ch <- prometheus.MustNewConstMetric(descAnnounced, prometheus.GaugeValue, float64(s.Advertised), s.Name, s.VRF)
		ch <- prometheus.MustNewConstMetric(descUpdates, prometheus.CounterValue, float64(s.UpdatesSent), s.Name, s.VRF)
	}
	if r, ok := c.backend.(bfdReporter); ok {
		for _, p := range r.BFDPeers() {
			up := 0.0
			if p.Up() {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descBFDUp, prometheus.GaugeValue, up, p.Session, p.VRF, p.Peer.String())
		}
	}
}
