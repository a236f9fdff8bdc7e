package speaker

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	crmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/bgp/frr"
	"github.com/lbstack/lbstack/pkg/bgp/native"
	"github.com/lbstack/lbstack/pkg/l2"
	"github.com/lbstack/lbstack/pkg/pagedlist"
)

// controllerName is the name of the speaker's controller-runtime
// controller (logs, metrics) and of its event source.
const controllerName = "lbstack-speaker"

// Options configure the speaker of one node.
type Options struct {
	// NodeName is this node.
	NodeName string
	// Namespace is the stack's namespace: the metallb.io objects are read
	// there, and the ConfigurationState and Service*Status objects are
	// written there.
	Namespace string
	// BGPBackend is native (embedded GoBGP), frr (the FRR sidecar) or
	// calico (no BGP sessions: Calico's nodes announce; layer 2 only).
	BGPBackend v1beta1.BGPType
	// FRRHandoffDir is, with the frr backend, the directory shared with
	// the frr-reloader sidecar.
	FRRHandoffDir string
	// LBClass is the spec.loadBalancerClass served; empty serves the
	// Services without a class.
	LBClass string
	// Resync is how often the state is recomputed and re-applied even
	// without changes.
	Resync time.Duration
	// Layer2 configures the layer-2 mode (memberlist, speaker pods); its
	// Node is NodeName.
	Layer2 l2.Options
	// ServiceStatus is which ServiceBGPStatus and ServiceL2Status objects
	// the speaker writes: StatusPerNode (MetalLB's, the default) or
	// StatusOff. Empty reads env LBSTACK_SERVICE_STATUS.
	ServiceStatus StatusMode
}

// Validate checks the options; Setup refuses options that fail it.
func (o Options) Validate() error {
	if o.NodeName == "" {
		return errors.New("--node-name (or env NODE_NAME) is required")
	}
	if o.Namespace == "" {
		return errors.New("--namespace is required")
	}
	switch o.BGPBackend {
	case v1beta1.BGPTypeNative, v1beta1.BGPTypeFRR, v1beta1.BGPTypeCalico:
	default:
		return fmt.Errorf("--bgp-backend %q: want native (embedded GoBGP), frr (the FRR sidecar) or calico (no BGP sessions, Calico announces; frr-k8s modes are not supported)", o.BGPBackend)
	}
	switch o.ServiceStatus {
	case "", StatusPerNode, StatusOff:
	default:
		return fmt.Errorf("%s %q: want %s (a ServiceBGPStatus per Service and node, as MetalLB) or %s (none)", statusEnv, o.ServiceStatus, StatusPerNode, StatusOff)
	}
	return nil
}

// CacheOptions are the manager cache options the speaker expects: its
// namespaced kinds are only watched in the stack's namespace (all the
// speaker's Role grants, and all config.Build considers), and no
// managedFields are kept in memory, nor read whole at start-up.
func CacheOptions(namespace string) cache.Options {
	inNS := map[string]cache.Config{namespace: {}}
	by := map[client.Object]cache.ByObject{}
	for _, o := range []client.Object{
		&corev1.Secret{}, &v1beta1.IPAddressPool{}, &v1beta2.BGPPeer{}, &v1beta1.BGPAdvertisement{},
		&v1beta1.BFDProfile{}, &v1beta1.Community{}, &v1beta1.ServiceBGPStatus{},
		// Written by Get/Create/Update through the cached client: a
		// cluster-wide informer would need more than the speaker's Role.
		&v1beta1.ConfigurationState{},
		&v1beta1.L2Advertisement{}, &v1beta1.ServiceL2Status{},
		// The speaker pods: who may be elected in layer 2.
		&corev1.Pod{},
	} {
		by[o] = cache.ByObject{Namespaces: inNS}
	}
	// The first lists (10,000 Services and their EndpointSlices on every
	// node) in pages, each stripped as it arrives.
	return pagedlist.InPages(cache.Options{DefaultTransform: cache.TransformStripManagedFields(), ByObject: by})
}

// Speaker is the speaker of one node, added to a manager by Setup.
type Speaker struct {
	r *reconciler
}

// Setup creates the speaker and adds it to the manager: the BGP backend,
// the layer-2 announcer, their metrics, and one controller that recomputes
// the node's state on any change of what it reads. Leaving, the speaker
// closes its sessions and leaves the membership, so the routers and the
// other speakers take over at once rather than after a timeout.
func Setup(mgr manager.Manager, opts Options) (*Speaker, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts.Layer2.Node = opts.NodeName
	if opts.ServiceStatus == "" {
		opts.ServiceStatus = StatusMode(os.Getenv(statusEnv))
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	var backend bgp.Backend
	switch opts.BGPBackend {
	case v1beta1.BGPTypeFRR:
		// The frr-reloader sidecar applies what this writes to the shared
		// volume, and reports FRR's sessions back (pkg/bgp/frr handoff).
		backend = frr.NewFileBackend(opts.FRRHandoffDir)
	case v1beta1.BGPTypeCalico:
		// Calico's nodes announce (calico.go): no session here.
		backend = noSessions{}
	default:
		backend = native.New(native.Options{Log: ctrl.Log.WithName("gobgp")})
	}
	announcer, err := l2.New(opts.Layer2, ctrl.Log.WithName("layer2"))
	if err != nil {
		return nil, fmt.Errorf("layer 2: %w", err)
	}
	r := &reconciler{
		opts: opts, client: mgr.GetClient(), backend: backend, l2: announcer,
		recorder: mgr.GetEventRecorderFor(controllerName), debug: &debugStore{},
	}
	status := nodeStatus{client: r.client, recorder: r.recorder, node: opts.NodeName, namespace: opts.Namespace,
		off: opts.ServiceStatus == StatusOff}
	r.bgpStatus = newStatusWriter(status, bgpStatus, ctrl.Log.WithName("status"))
	r.l2Status = newStatusWriter(status, l2Status, ctrl.Log.WithName("status"))
	if err := mgr.Add(manager.RunnableFunc(r.run)); err != nil {
		return nil, err
	}

	// A Service's EndpointSlices are read by this index when only that
	// Service changed.
	if err := mgr.GetFieldIndexer().IndexField(context.Background(), &discoveryv1.EndpointSlice{}, sliceServiceIndex, indexSliceService); err != nil {
		return nil, fmt.Errorf("index EndpointSlices: %w", err)
	}
	// Every handler enqueues the one key, after recording what changed.
	ch := &r.changes
	b := ctrl.NewControllerManagedBy(mgr).Named(controllerName)
	for _, obj := range []client.Object{
		&v1beta1.IPAddressPool{}, &v1beta2.BGPPeer{}, &v1beta1.BGPAdvertisement{}, &v1beta1.BFDProfile{},
		&v1beta1.Community{}, &v1beta1.L2Advertisement{},
	} {
		b = b.Watches(obj, ch.handler(ch.configChanged))
	}
	b = b.Watches(&corev1.Secret{}, ch.handler(ch.secretChanged)).
		Watches(&corev1.Node{}, ch.handler(ch.nodeChanged)).
		Watches(&corev1.Service{}, ch.handler(ch.serviceChanged)).
		Watches(&discoveryv1.EndpointSlice{}, ch.handler(ch.sliceChanged)).
		Watches(&corev1.Pod{}, ch.handler(ch.l2Changed)).
		WatchesRawSource(source.Channel(announcer.Changes(), ch.handler(ch.l2Changed)))
	if err := b.Complete(r); err != nil {
		return nil, fmt.Errorf("controller %s: %w", controllerName, err)
	}
	return &Speaker{r: r}, nil
}

// run exports the metrics while the manager runs (read at scrape time from
// the backend and the responders: no polling, never stale), and on the way
// out stops answering in layer 2 and closes the BGP sessions: the routers
// withdraw this node's routes at once rather than after the hold time.
func (r *reconciler) run(ctx context.Context) error {
	var errs []error
	for _, c := range []prometheus.Collector{sessionCollector{r.backend}, r.l2.Collector()} {
		if err := crmetrics.Registry.Register(c); err != nil {
			errs = append(errs, fmt.Errorf("register speaker metrics: %w", err))
			continue
		}
		// Unregistered so that a speaker started again in the same
		// process (tests) can register them again.
		defer crmetrics.Registry.Unregister(c)
	}
	if err := errors.Join(errs...); err == nil {
		var wg sync.WaitGroup
		for _, w := range []*statusWriter{r.bgpStatus, r.l2Status} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				w.run(ctx)
			}()
		}
		<-ctx.Done()
		wg.Wait()
	} else {
		errs = []error{err}
	}
	r.l2.Close()
	return errors.Join(append(errs, r.backend.Close())...)
}

// LiveChecks are the checks of the speaker's liveness probe, by name:
// the reconcile loop is not stuck.
func (s *Speaker) LiveChecks() map[string]func() error {
	return map[string]func() error{"reconcile-loop": s.r.health.live}
}

// ReadyChecks are the checks of the speaker's readiness probe, by name:
// the node's state is loaded and applied, and the BGP backend (when it
// can tell) is healthy.
func (s *Speaker) ReadyChecks() map[string]func() error {
	checks := map[string]func() error{"announcing": s.r.health.ready}
	if hc, ok := s.r.backend.(interface{ Healthy() error }); ok {
		checks["bgp-backend"] = hc.Healthy
	}
	return checks
}

// DebugState serves the speaker's DebugState as JSON (DebugStatePath).
func (s *Speaker) DebugState() http.Handler { return s.r.debug }
