package assigner

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/record"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crcontroller "sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/ipam"
	"github.com/lbstack/lbstack/pkg/pagedlist"
)

// ConfigurationStateName is the name of the controller's
// ConfigurationState, in the stack's namespace.
const ConfigurationStateName = "controller"

// Names of the controller-runtime controllers (logs and metrics).
const (
	ServiceControllerName = "lbstack-service"
	ConfigControllerName  = "lbstack-config"
)

// DefaultMaxConcurrentReconciles is the default number of Services
// reconciled in parallel. Reconciling is cheap; the parallelism hides the
// latency of the status writes.
const DefaultMaxConcurrentReconciles = 16

// Options configure the controller.
type Options struct {
	// Namespace is the stack's namespace: the metallb.io objects are read
	// there and the ConfigurationState is written there.
	Namespace string
	// LBClass is the spec.loadBalancerClass served; empty serves the
	// Services without a class. Services of other classes are left alone.
	LBClass string
	// BGPBackend is the backend the configuration is validated against;
	// empty reads the MetalLB object (frr when there is none).
	BGPBackend v1beta1.BGPType
	// MaxConcurrentReconciles of the Service controller;
	// DefaultMaxConcurrentReconciles when 0.
	MaxConcurrentReconciles int
	// PoolStatusInterval is how long pool status and metric updates are
	// batched; 500ms when 0.
	PoolStatusInterval time.Duration
	// SkipNameValidation lets several managers in one process (tests) run
	// controllers of the same name.
	SkipNameValidation bool
}

// Controller assigns addresses to LoadBalancer Services. Create it with
// Setup.
type Controller struct {
	opts     Options
	client   client.Client // cached reads, direct writes
	reader   client.Reader // uncached reads (ConfigurationState)
	recorder record.EventRecorder
	// events is recorder: Events wait behind bulk address writes.
	events *eventPacer
	alloc  *ipam.Allocator

	// mu orders configuration changes against allocations: a Service is
	// decided under the read lock, SetPools runs under the write lock.
	mu  sync.RWMutex
	idx *poolIndex // nil until the first valid configuration
	// gen counts configuration changes (under mu); a Service that failed
	// under an older one is retried (apply), since a configuration change
	// retries only the failures recorded by then.
	gen atomic.Uint64

	// ready is closed once the first valid configuration is loaded and
	// every existing assignment claimed; Services wait for it.
	ready chan struct{}

	// enqueue feeds Service keys to the Service controller (after a
	// configuration change, or when addresses free up for the Services
	// that are waiting).
	enqueue chan event.GenericEvent
	// retry wakes retryLoop.
	retry chan struct{}

	smu sync.Mutex
	// failures maps the Services that failed allocation to the last
	// AllocationFailed message recorded: they are retried when addresses
	// free up, and the same message is not recorded twice.
	failures map[string]string
	// written remembers the last state written per Service, to tell a
	// cache that lags behind our own write from a state to correct.
	written map[string]writeRecord
	// annotationDropped is set once the API server is seen to drop the
	// pool annotation of a status write.
	annotationDropped atomic.Bool
	// refusedPeers are the BGPPeers refused at the last configuration
	// reconcile, with the message of their PeerRefused event.
	refusedPeers map[string]string

	pools *poolStatusWriter
}

type writeRecord struct {
	uid types.UID
	st  serviceState
	at  time.Time
}

// writeLag is how long the cache may lag behind our own writes before the
// controller writes again.
const writeLag = 5 * time.Second

// CacheOptions are the manager cache options the controller expects: the
// metallb.io objects and Secrets only from the stack's namespace, and no
// managedFields (nor, on Services, kubectl's last-applied-configuration)
// kept in memory.
func CacheOptions(namespace string) cache.Options {
	ns := map[string]cache.Config{namespace: {}}
	by := map[client.Object]cache.ByObject{}
	for _, o := range []client.Object{
		&v1beta1.IPAddressPool{}, &v1beta2.BGPPeer{}, &v1beta1.BGPAdvertisement{}, &v1beta1.L2Advertisement{},
		&v1beta1.BFDProfile{}, &v1beta1.Community{}, &v1beta1.MetalLB{}, &corev1.Secret{},
	} {
		by[o] = cache.ByObject{Namespaces: ns}
	}
	by[&corev1.Service{}] = cache.ByObject{Transform: stripService}
	// The first lists in pages, each stripped as it arrives: the whole
	// list of 10,000 Services, managedFields included, was the
	// controller's memory peak (docs/scale.md).
	return pagedlist.InPages(cache.Options{ByObject: by, DefaultTransform: cache.TransformStripManagedFields()})
}

// stripService drops from a cached Service what the controller never
// reads and what can be large: managedFields and kubectl's
// last-applied-configuration annotation (a copy of the whole manifest).
func stripService(o any) (any, error) {
	if s, ok := o.(*corev1.Service); ok {
		s.ManagedFields = nil
		if _, ok := s.Annotations[corev1.LastAppliedConfigAnnotation]; ok {
			delete(s.Annotations, corev1.LastAppliedConfigAnnotation)
		}
	}
	return o, nil
}

// Setup creates the controller and adds it to the manager: the Service
// controller, the configuration controller and the pool status writer, all
// running only on the elected leader.
func Setup(mgr manager.Manager, opts Options) (*Controller, error) {
	if opts.Namespace == "" {
		return nil, fmt.Errorf("controller: the stack's namespace is required")
	}
	if opts.MaxConcurrentReconciles <= 0 {
		opts.MaxConcurrentReconciles = DefaultMaxConcurrentReconciles
	}
	if opts.PoolStatusInterval <= 0 {
		opts.PoolStatusInterval = 500 * time.Millisecond
	}
	c := &Controller{
		opts:     opts,
		client:   mgr.GetClient(),
		reader:   mgr.GetAPIReader(),
		events:   newEventPacer(mgr.GetEventRecorderFor("lbstack-controller"), mgr.GetScheme(), time.Now),
		alloc:    ipam.New(),
		ready:    make(chan struct{}),
		enqueue:  make(chan event.GenericEvent, 4096),
		retry:    make(chan struct{}, 1),
		failures: map[string]string{},
		written:  map[string]writeRecord{},
	}
	c.recorder = c.events
	if err := mgr.Add(c.events); err != nil {
		return nil, err
	}
	c.pools = newPoolStatusWriter(c, opts.PoolStatusInterval)
	if err := mgr.Add(c.pools); err != nil {
		return nil, err
	}
	if err := mgr.Add(manager.RunnableFunc(c.retryLoop)); err != nil {
		return nil, err
	}

	skip := ptr.To(opts.SkipNameValidation)
	cfgKey := []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: opts.Namespace, Name: "configuration"}}}
	toConfig := handler.EnqueueRequestsFromMapFunc(func(context.Context, client.Object) []reconcile.Request { return cfgKey })
	changed := builder.WithPredicates(predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))
	b := builder.ControllerManagedBy(mgr).Named(ConfigControllerName).
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: 1, SkipNameValidation: skip}).
		Watches(&v1beta1.IPAddressPool{}, toConfig, changed).
		Watches(&v1beta2.BGPPeer{}, toConfig, changed).
		Watches(&v1beta1.BGPAdvertisement{}, toConfig, changed).
		Watches(&v1beta1.L2Advertisement{}, toConfig, changed).
		Watches(&v1beta1.BFDProfile{}, toConfig, changed).
		Watches(&v1beta1.Community{}, toConfig, changed).
		Watches(&corev1.Secret{}, toConfig, builder.WithPredicates(predicate.NewPredicateFuncs(func(o client.Object) bool {
			return o.GetNamespace() == opts.Namespace
		})))
	if opts.BGPBackend == "" {
		b = b.Watches(&v1beta1.MetalLB{}, toConfig, changed)
	}
	if err := b.Complete(reconcile.Func(c.reconcileConfig)); err != nil {
		return nil, fmt.Errorf("controller %s: %w", ConfigControllerName, err)
	}

	nsLabelsChanged := predicate.And[client.Object](predicate.LabelChangedPredicate{}, predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	})
	err := builder.ControllerManagedBy(mgr).Named(ServiceControllerName).
		WithOptions(crcontroller.Options{MaxConcurrentReconciles: opts.MaxConcurrentReconciles, SkipNameValidation: skip}).
		For(&corev1.Service{}).
		WatchesMetadata(&corev1.Namespace{}, handler.EnqueueRequestsFromMapFunc(c.servicesOfNamespace), builder.WithPredicates(nsLabelsChanged)).
		WatchesRawSource(source.Channel(c.enqueue, &handler.EnqueueRequestForObject{})).
		Complete(reconcile.Func(c.reconcileService))
	if err != nil {
		return nil, fmt.Errorf("controller %s: %w", ServiceControllerName, err)
	}
	return c, nil
}

// Ready is closed once the first valid configuration is loaded and the
// existing assignments are claimed.
func (c *Controller) Ready() <-chan struct{} { return c.ready }

// send queues Services for reconciliation.
func (c *Controller) send(ctx context.Context, keys []types.NamespacedName) {
	for _, k := range keys {
		obj := &corev1.Service{}
		obj.Namespace, obj.Name = k.Namespace, k.Name
		select {
		case c.enqueue <- event.GenericEvent{Object: obj}:
		case <-ctx.Done():
			return
		}
	}
}

// retryFailed asks for the Services waiting for an address to be retried
// (addresses were freed or the configuration changed). Requests coalesce:
// a burst of deletions costs one pass over the waiting Services.
func (c *Controller) retryFailed() {
	select {
	case c.retry <- struct{}{}:
	default:
	}
}

// retryLoop queues the waiting Services whenever retryFailed asks.
func (c *Controller) retryLoop(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.retry:
		}
		c.smu.Lock()
		keys := make([]types.NamespacedName, 0, len(c.failures))
		for k := range c.failures {
			ns, name, _ := cutKey(k)
			keys = append(keys, types.NamespacedName{Namespace: ns, Name: name})
		}
		c.smu.Unlock()
		c.send(ctx, keys)
	}
}

func cutKey(k string) (string, string, bool) { return strings.Cut(k, "/") }
