package webhook

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/iprange"
)

// admittedTTL is how long an object this server admitted stays in its view
// when the watch never shows it (another webhook refused it after us, the
// write failed): until then it can make the server refuse an object that
// conflicts with it. A watch normally shows an admitted object within
// milliseconds.
const admittedTTL = 30 * time.Second

// Informers is what the view needs of a manager's cache: informers to
// watch the metallb.io objects with.
type Informers interface {
	GetInformer(ctx context.Context, obj client.Object, opts ...cache.InformerGetOption) (cache.Informer, error)
}

// view is the admission webhook's picture of the stack's metallb.io
// objects, kept current by watch events rather than read per request: the
// IPAddressPools by name with an interval index of their ranges (a request
// looks up only the pools its object can conflict with), and the objects
// this server admitted that the watch has not shown yet. Objects of one
// `kubectl apply -f` arrive back to back, faster than a watch delivers
// them; counting what was just admitted keeps an overlap between two of
// them refused. The other kinds are few and read from the cache per
// request.
//
// mu serialises admissions: two requests that conflict with each other
// cannot both pass, which a replica guarantees only for itself (see
// docs/scale.md).
type view struct {
	namespace string
	now       func() time.Time

	mu sync.Mutex
	// stored are the pools the watch shows.
	stored map[string]*v1beta1.IPAddressPool
	// metalLBs are the MetalLB objects the watch shows: the BGP backend
	// the rules are checked against is theirs.
	metalLBs map[string]*v1beta1.MetalLB
	// admitted are the objects admitted and not yet shown by the watch.
	admitted map[config.ObjectRef]admittedObject
	// live and gone are what the watch last showed of each object of
	// every kind: the resourceVersion of those it shows, and of those it
	// showed deleted in the last admittedTTL. An admission the watch has
	// already overtaken (a create of a name it shows, an update of a
	// version it has seen replaced or deleted) will be refused by the API
	// server, and must not enter the view.
	live map[config.ObjectRef]string
	gone map[config.ObjectRef]goneVersion
	// index holds the ranges of every pool in effect: the admitted
	// version of a pool, else the stored one.
	index *iprange.Index[string]
	// synced report whether the informers have listed everything once.
	synced []func() bool
}

// admittedObject is one object admitted by this server.
type admittedObject struct {
	obj client.Object
	// replaced is the resourceVersion of the stored object the admission
	// replaces ("" for a create): the watch showing another version means
	// the write happened.
	replaced string
	expires  time.Time
}

// goneVersion is an object's delete as the watch showed it: the
// resourceVersion, and when (forgotten admittedTTL after).
type goneVersion struct {
	rv string
	at time.Time
}

func newView(namespace string) *view {
	return &view{
		namespace: namespace,
		now:       time.Now,
		stored:    map[string]*v1beta1.IPAddressPool{},
		metalLBs:  map[string]*v1beta1.MetalLB{},
		admitted:  map[config.ObjectRef]admittedObject{},
		live:      map[config.ObjectRef]string{},
		gone:      map[config.ObjectRef]goneVersion{},
		index:     iprange.NewIndex[string](),
	}
}

// kinds are the watched kinds, with an empty object of each.
var kinds = []struct {
	kind string
	obj  func() client.Object
}{
	{config.KindIPAddressPool, func() client.Object { return &v1beta1.IPAddressPool{} }},
	{config.KindBGPPeer, func() client.Object { return &v1beta2.BGPPeer{} }},
	{config.KindBGPAdvertisement, func() client.Object { return &v1beta1.BGPAdvertisement{} }},
	{config.KindL2Advertisement, func() client.Object { return &v1beta1.L2Advertisement{} }},
	{config.KindBFDProfile, func() client.Object { return &v1beta1.BFDProfile{} }},
	{config.KindCommunity, func() client.Object { return &v1beta1.Community{} }},
	{kindMetalLB, func() client.Object { return &v1beta1.MetalLB{} }},
}

// kindMetalLB is the MetalLB object's kind in the view (it is not part of
// config.Resources).
const kindMetalLB = "metallb"

// watch registers the view's event handlers with the informers.
func (w *view) watch(ctx context.Context, inf Informers) error {
	for _, k := range kinds {
		i, err := inf.GetInformer(ctx, k.obj())
		if err != nil {
			return fmt.Errorf("watching %s objects: %w", k.kind, err)
		}
		kind := k.kind
		reg, err := i.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
			AddFunc:    func(obj any) { w.observed(kind, obj, false) },
			UpdateFunc: func(_, obj any) { w.observed(kind, obj, false) },
			DeleteFunc: func(obj any) { w.observed(kind, obj, true) },
		})
		if err != nil {
			return fmt.Errorf("watching %s objects: %w", kind, err)
		}
		w.synced = append(w.synced, reg.HasSynced)
	}
	return nil
}

// hasSynced reports whether every informer has listed its objects once.
func (w *view) hasSynced() bool {
	for _, s := range w.synced {
		if !s() {
			return false
		}
	}
	return true
}

// waitSynced waits until hasSynced or ctx ends.
func (w *view) waitSynced(ctx context.Context) error {
	if w.hasSynced() {
		return nil
	}
	if !toolscache.WaitForCacheSync(ctx.Done(), w.hasSynced) {
		return fmt.Errorf("the webhook's watch of the metallb.io objects has not listed them yet: %w", ctx.Err())
	}
	return nil
}

// observed takes one watch event.
func (w *view) observed(kind string, o any, deleted bool) {
	if t, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o, deleted = t.Obj, true
	}
	obj, ok := o.(client.Object)
	if !ok || obj.GetNamespace() != w.namespace {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	ref := config.ObjectRef{Kind: kind, Name: obj.GetName()}
	if a, ok := w.admitted[ref]; ok {
		// A create admitted here stays while the delete of an earlier
		// object of that name arrives; anything else the watch shows
		// after an admission is that admission's outcome or newer.
		if deleted && a.replaced != "" || !deleted && obj.GetResourceVersion() != a.replaced {
			delete(w.admitted, ref)
		}
	}
	if deleted {
		delete(w.live, ref)
		w.gone[ref] = goneVersion{rv: obj.GetResourceVersion(), at: w.now()}
	} else {
		w.live[ref] = obj.GetResourceVersion()
		delete(w.gone, ref)
	}
	if kind == kindMetalLB {
		if deleted {
			delete(w.metalLBs, ref.Name)
		} else if m, ok := obj.(*v1beta1.MetalLB); ok {
			w.metalLBs[ref.Name] = m
		}
		return
	}
	if kind != config.KindIPAddressPool {
		return
	}
	if deleted {
		delete(w.stored, ref.Name)
	} else if p, ok := obj.(*v1beta1.IPAddressPool); ok {
		w.stored[ref.Name] = p
	}
	w.reindex(ref.Name)
}

// forget drops the stored pool name, which the API server says is gone
// (its delete event is on its way). mu is held.
func (w *view) forget(name string) {
	delete(w.stored, name)
	w.reindex(name)
}

// reindex puts the ranges of the pool in effect under name in the index.
func (w *view) reindex(name string) {
	p := w.pool(name)
	if p == nil {
		w.index.Delete(name)
		return
	}
	var ranges []iprange.Range
	for _, e := range p.Spec.Addresses {
		if r, err := iprange.Parse(e); err == nil {
			ranges = append(ranges, r)
		}
	}
	w.index.Set(name, ranges)
}

// pool returns the pool in effect under name: admitted, else stored.
func (w *view) pool(name string) *v1beta1.IPAddressPool {
	if a, ok := w.admitted[config.ObjectRef{Kind: config.KindIPAddressPool, Name: name}]; ok {
		return a.obj.(*v1beta1.IPAddressPool)
	}
	return w.stored[name]
}

// expire drops admitted objects the watch never showed, and deletes
// seen long enough ago (only those: the objects alive are many, and this
// runs at every admission). mu is held.
func (w *view) expire() {
	now := w.now()
	for ref, g := range w.gone {
		if now.Sub(g.at) > admittedTTL {
			delete(w.gone, ref)
		}
	}
	for ref, a := range w.admitted {
		if now.After(a.expires) {
			delete(w.admitted, ref)
			if ref.Kind == config.KindIPAddressPool {
				w.reindex(ref.Name)
			}
		}
	}
}

// admit records obj, just admitted, as part of the view until the watch
// shows it, unless the watch has already overtaken it (overtaken). mu is
// held.
func (w *view) admit(kind string, obj client.Object, replaced string) {
	ref := config.ObjectRef{Kind: kind, Name: obj.GetName()}
	if w.overtaken(ref, replaced) {
		return
	}
	w.admitted[ref] = admittedObject{obj: obj, replaced: replaced, expires: w.now().Add(admittedTTL)}
	if kind == config.KindIPAddressPool {
		w.reindex(ref.Name)
	}
}

// overtaken reports whether the watch has shown something that makes an
// admission of ref replacing version replaced ("" for a create) fail at
// storage: for a create, the object alive (AlreadyExists); for an
// update, a newer version or the object's delete (a conflict, or
// NotFound: the API server runs admission before it finds out, when
// another write lands between its read and its own). Kept in the view,
// such an object would stand in for what is stored, or for nothing,
// until it expired. The cost is the rare create that follows a delete
// the watch has not shown yet: checked against the watch, not the view,
// until the watch shows it.
func (w *view) overtaken(ref config.ObjectRef, replaced string) bool {
	if rv, ok := w.live[ref]; ok {
		return replaced == "" || newerVersion(rv, replaced)
	}
	if g, ok := w.gone[ref]; ok && replaced != "" {
		// Unless the update is of an object created again since (the
		// watch has not shown that create yet).
		return !newerVersion(replaced, g.rv)
	}
	return false
}

// newerVersion reports whether resourceVersion a is newer than b. Both
// are etcd revisions from one API server, which orders them; anything
// else compares as not newer.
func newerVersion(a, b string) bool {
	x, err1 := strconv.ParseUint(a, 10, 64)
	y, err2 := strconv.ParseUint(b, 10, 64)
	return err1 == nil && err2 == nil && x > y
}

// allPools returns every pool in effect, sorted by name. mu is held.
func (w *view) allPools() []v1beta1.IPAddressPool {
	names := make([]string, 0, len(w.stored))
	for n := range w.stored {
		names = append(names, n)
	}
	for ref := range w.admitted {
		if ref.Kind == config.KindIPAddressPool && w.stored[ref.Name] == nil {
			names = append(names, ref.Name)
		}
	}
	return w.named(names)
}

// poolsNear returns the pools in effect, other than pool itself, that can
// be involved in a problem with pool (config.PoolSearchRanges). mu is held.
func (w *view) poolsNear(pool *v1beta1.IPAddressPool, bgpAdvs []v1beta1.BGPAdvertisement) []v1beta1.IPAddressPool {
	near := map[string]bool{}
	for _, r := range config.PoolSearchRanges(pool, bgpAdvs) {
		w.index.Overlapping(r.First, r.Last, func(name string, _ iprange.Range) bool {
			if name != pool.Name {
				near[name] = true
			}
			return true
		})
	}
	names := make([]string, 0, len(near))
	for n := range near {
		names = append(names, n)
	}
	return w.named(names)
}

// named returns the pools in effect under names, sorted by name. mu is
// held.
func (w *view) named(names []string) []v1beta1.IPAddressPool {
	slices.Sort(names)
	out := make([]v1beta1.IPAddressPool, 0, len(names))
	for _, n := range names {
		if p := w.pool(n); p != nil {
			out = append(out, *p)
		}
	}
	return out
}

// overlay puts the admitted objects of the other kinds into res, in place
// of the stored objects of the same name. mu is held.
func (w *view) overlay(res *config.Resources) {
	for _, a := range w.admitted {
		switch a.obj.(type) {
		case *v1beta1.IPAddressPool, *v1beta1.MetalLB:
		default:
			put(res, a.obj)
		}
	}
}

// bgpBackend returns spec.bgpBackend of the MetalLB object in effect (the
// first by name, admitted or stored), "" when there is none or it does not
// say. mu is held.
func (w *view) bgpBackend() v1beta1.BGPType {
	effective := map[string]*v1beta1.MetalLB{}
	for n, m := range w.metalLBs {
		effective[n] = m
	}
	for ref, a := range w.admitted {
		if ref.Kind == kindMetalLB {
			effective[ref.Name] = a.obj.(*v1beta1.MetalLB)
		}
	}
	names := make([]string, 0, len(effective))
	for n := range effective {
		names = append(names, n)
	}
	if len(names) == 0 {
		return ""
	}
	slices.Sort(names)
	return effective[names[0]].Spec.BGPType
}

// WatchedVersions returns, for the kinds the view keeps from its watch
// (IPAddressPool and MetalLB, object or list), each stored object's
// resourceVersion by name as the watch last showed it; nil for another
// kind. It is what the next request sees: tests wait on it rather than on
// the cache, whose store moves before the view's event handlers run.
func (v *Validator) WatchedVersions(obj runtime.Object) map[string]string {
	w := v.view()
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[string]string{}
	switch obj.(type) {
	case *v1beta1.IPAddressPool, *v1beta1.IPAddressPoolList:
		for name, p := range w.stored {
			out[name] = p.ResourceVersion
		}
	case *v1beta1.MetalLB, *v1beta1.MetalLBList:
		for name, m := range w.metalLBs {
			out[name] = m.ResourceVersion
		}
	default:
		return nil
	}
	return out
}
