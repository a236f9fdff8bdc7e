package speaker

import (
	"context"
	"maps"
	"slices"
	"sync"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/lbstack/lbstack/pkg/lbservice"
)

// speakerRequest is the one key of the speaker's queue: reconciles stay
// serial, and what changed since the last one is in the changes.
var speakerRequest = reconcile.Request{NamespacedName: types.NamespacedName{Name: "speaker"}}

// changes are what happened since the last reconcile, recorded by the
// event handlers before they enqueue the one key. The reconcile takes
// them: a change of the configuration or of this node makes it decide
// everything again, a change of Services or EndpointSlices only those
// Services.
type changes struct {
	mu       sync.Mutex
	full     bool
	l2       bool
	services map[string]bool
}

// changeSet is what one reconcile handles.
type changeSet struct {
	// full: the configuration inputs (metallb.io objects, Secrets, a
	// Node's labels, addresses or exclusion) changed.
	full bool
	// l2: the speakers' liveness changed (pods, memberlist).
	l2 bool
	// services are the "namespace/name" keys of the Services whose
	// Service or EndpointSlices changed, sorted.
	services []string
}

func (c *changes) markFull() {
	c.mu.Lock()
	c.full = true
	c.mu.Unlock()
}

func (c *changes) markL2() {
	c.mu.Lock()
	c.l2 = true
	c.mu.Unlock()
}

func (c *changes) markServices(keys ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.services == nil {
		c.services = map[string]bool{}
	}
	for _, k := range keys {
		if k != "" {
			c.services[k] = true
		}
	}
}

// take returns and clears what happened.
func (c *changes) take() changeSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs := changeSet{full: c.full, l2: c.l2, services: slices.Sorted(maps.Keys(c.services))}
	c.full, c.l2, c.services = false, false, nil
	return cs
}

// giveBack records cs again, for a reconcile that failed before handling
// it.
func (c *changes) giveBack(cs changeSet) {
	if cs.full {
		c.markFull()
	}
	if cs.l2 {
		c.markL2()
	}
	c.markServices(cs.services...)
}

// handler records what the event changed with mark (old is nil but for
// updates) and enqueues the one key, unless mark says the event changes
// nothing the speaker reads.
func (c *changes) handler(mark func(obj, old client.Object) bool) handler.EventHandler {
	enqueue := func(q workqueue.TypedRateLimitingInterface[reconcile.Request], obj, old client.Object) {
		if mark(obj, old) {
			q.Add(speakerRequest)
		}
	}
	return handler.Funcs{
		CreateFunc: func(_ context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object, nil)
		},
		UpdateFunc: func(_ context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.ObjectNew, e.ObjectOld)
		},
		DeleteFunc: func(_ context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object, nil)
		},
		GenericFunc: func(_ context.Context, e event.GenericEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
			enqueue(q, e.Object, nil)
		},
	}
}

// configChanged marks a change of the configuration's inputs.
func (c *changes) configChanged(client.Object, client.Object) bool {
	c.markFull()
	return true
}

// secretChanged marks a Secret's change unless only its metadata moved
// (a BGPPeer reads its type and data).
func (c *changes) secretChanged(obj, old client.Object) bool {
	if o, ok := old.(*corev1.Secret); ok {
		if n, ok := obj.(*corev1.Secret); ok && n.Type == o.Type && maps.EqualFunc(n.Data, o.Data, slices.Equal) && maps.Equal(n.StringData, o.StringData) {
			return false
		}
	}
	c.markFull()
	return true
}

// nodeChanged marks a Node's change when it changes what the speaker
// reads: labels (selectors), exclusion, addresses. Heartbeats, which are
// most Node updates, change none.
func (c *changes) nodeChanged(obj, old client.Object) bool {
	if o, ok := old.(*corev1.Node); ok {
		if n, ok := obj.(*corev1.Node); ok && maps.Equal(n.Labels, o.Labels) &&
			lbservice.NodeExcluded(n) == lbservice.NodeExcluded(o) && slices.Equal(n.Status.Addresses, o.Status.Addresses) {
			return false
		}
	}
	c.markFull()
	return true
}

// serviceChanged marks the Service (both versions' keys: they are one).
func (c *changes) serviceChanged(obj, _ client.Object) bool {
	c.markServices(obj.GetNamespace() + "/" + obj.GetName())
	return true
}

// sliceChanged marks the Service of the EndpointSlice, before and after.
func (c *changes) sliceChanged(obj, old client.Object) bool {
	keys := []string{sliceService(obj)}
	if old != nil {
		keys = append(keys, sliceService(old))
	}
	c.markServices(keys...)
	return true
}

// l2Changed marks a change of the speakers' liveness.
func (c *changes) l2Changed(client.Object, client.Object) bool {
	c.markL2()
	return true
}

// sliceService is the "namespace/name" of the Service an EndpointSlice
// belongs to, or "".
func sliceService(obj client.Object) string {
	name := obj.GetLabels()[discoveryv1.LabelServiceName]
	if name == "" {
		return ""
	}
	return obj.GetNamespace() + "/" + name
}

// sliceServiceIndex is the EndpointSlice field index by sliceService.
const sliceServiceIndex = "lbstack.speaker.service"

func indexSliceService(obj client.Object) []string {
	if k := sliceService(obj); k != "" {
		return []string{k}
	}
	return nil
}
