package assigner

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/lbstack/lbstack/pkg/ipam"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

// reconcileService brings one Service's addresses, pool annotation and
// events in line with the allocator. Level-based: it reads the Service
// from the cache, decides, and writes only what differs.
func (c *Controller) reconcileService(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	select {
	case <-c.ready:
	case <-ctx.Done():
		return reconcile.Result{}, nil
	}
	key := req.String()
	// The cache's own copy, not a deep copy: the Service is only read
	// (writeState patches through another object).
	var svc corev1.Service
	if err := c.client.Get(ctx, req.NamespacedName, &svc, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			c.forget(key)
			return reconcile.Result{}, nil
		}
		return reconcile.Result{}, fmt.Errorf("read service %s: %w", key, err)
	}
	if !lbservice.Served(&svc, c.opts.LBClass) {
		return reconcile.Result{}, c.unmanage(ctx, &svc)
	}

	cur, curOK := stateOf(&svc)
	before, _ := c.alloc.Assigned(key)
	in, perr := parseIntent(&svc)
	c.mu.RLock()
	x := c.idx
	gen := c.gen.Load()
	var out outcome
	if perr != nil {
		c.alloc.Release(key)
		out = outcome{}.failed(perr, cur.IPs, nil)
	} else {
		nsLabels, err := c.namespaceLabels(ctx, x, svc.Namespace)
		if err != nil {
			c.mu.RUnlock()
			return reconcile.Result{}, err
		}
		out = decide(c.alloc, x, &in, nsLabels, cur.IPs)
	}
	c.mu.RUnlock()
	c.allocationChanged(before, out.Assignment)
	res, err := c.apply(ctx, &svc, cur, curOK, &out)
	if err == nil && out.Err != nil && c.gen.Load() != gen {
		// Decided under a configuration replaced meanwhile, whose
		// change may not have seen this failure: decide again.
		return reconcile.Result{RequeueAfter: 100 * time.Millisecond}, nil
	}
	return res, err
}

// allocationChanged updates the pool counters and retries the waiting
// Services when the Service's addresses changed.
func (c *Controller) allocationChanged(before, after ipam.Assignment) {
	if before.Pool == after.Pool && sameAddrs(before.IPs, after.IPs) {
		return
	}
	c.pools.mark(before.Pool, after.Pool)
	for _, ip := range before.IPs {
		if !slices.Contains(after.IPs, ip) {
			c.retryFailed()
			return
		}
	}
}

// apply writes the outcome: the status and annotation when they differ
// from what the Service shows, and the events that go with the change.
func (c *Controller) apply(ctx context.Context, svc *corev1.Service, cur serviceState, curOK bool, out *outcome) (reconcile.Result, error) {
	key := svc.Namespace + "/" + svc.Name
	want := serviceState{IPs: out.Assignment.IPs, Pool: out.Assignment.Pool}
	if c.annotationDropped.Load() {
		// The annotation does not stick here: never write for it alone.
		cur.Pool = want.Pool
	}
	write := !curOK || !want.equal(cur)

	c.smu.Lock()
	if write {
		if w, ok := c.written[key]; ok && w.uid == svc.UID && w.st.equal(want) && time.Since(w.at) < writeLag {
			// Our own write has not reached the cache yet: look again soon.
			c.smu.Unlock()
			return reconcile.Result{RequeueAfter: 200 * time.Millisecond}, nil
		}
	}
	lastFailure, failedBefore := c.failures[key]
	newFailure := false
	if out.Err != nil {
		msg := failureMessage(key, out.Err)
		newFailure = !failedBefore || msg != lastFailure
		c.failures[key] = msg
	} else {
		delete(c.failures, key)
	}
	c.smu.Unlock()

	if write {
		if err := c.writeState(ctx, svc, want); err != nil {
			if out.Err != nil && newFailure {
				c.smu.Lock()
				delete(c.failures, key) // record the failure again on retry
				c.smu.Unlock()
			}
			return reconcile.Result{}, err
		}
	}
	if !write && !newFailure {
		return reconcile.Result{}, nil
	}
	for _, ev := range out.events(key, cur.IPs) {
		c.recorder.Event(svc, ev.Type, ev.Reason, ev.Message)
	}
	switch {
	case out.Err != nil:
		allocationErrors.WithLabelValues(errorReason(out.Err)).Inc()
		logf.FromContext(ctx).Info("allocation failed", "reason", out.Err.Error())
	case !sameAddrs(cur.IPs, want.IPs):
		allocations.WithLabelValues(want.Pool).Inc()
		logf.FromContext(ctx).V(1).Info("assigned", "ips", want.IPs, "pool", want.Pool)
	}
	return reconcile.Result{}, nil
}

// writeState patches the Service's status subresource (addresses and pool
// annotation in one write; see statusPatch).
func (c *Controller) writeState(ctx context.Context, svc *corev1.Service, st serviceState) error {
	key := svc.Namespace + "/" + svc.Name
	body, err := statusPatch(svc.UID, svc.ResourceVersion, st)
	if err != nil {
		return err
	}
	// The response goes to a fresh object: svc shares its maps with the
	// cache (reconcileService reads it without a deep copy).
	resp := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: svc.Namespace, Name: svc.Name}}
	if err := c.client.Status().Patch(ctx, resp, client.RawPatch(types.MergePatchType, body)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil // deleted meanwhile; the delete event releases it
		}
		if apierrors.IsConflict(err) {
			// Changed since read: retried from the newer version.
			return fmt.Errorf("write status of service %s: changed since read (retrying): %w", key, err)
		}
		return fmt.Errorf("write status of service %s: %w", key, err)
	}
	if got := resp.Annotations[lbservice.AnnotationIPAllocatedFromPool]; got != st.Pool && !c.annotationDropped.Swap(true) {
		// Kubernetes keeps metadata changes made through a Service's
		// status (as MetalLB relies on too); an API server that does not
		// loses the informational pool annotation, never an address. The
		// controller has no other write on Services (least privilege),
		// so it says so once and compares addresses only from then on.
		logf.FromContext(ctx).Error(nil, "the API server dropped the pool annotation written with the Service's status; "+
			"addresses are unaffected, the annotation "+lbservice.AnnotationIPAllocatedFromPool+" is not maintained", "service", key)
	}
	c.events.noteWrite()
	c.smu.Lock()
	c.written[key] = writeRecord{uid: svc.UID, st: st, at: time.Now()}
	c.smu.Unlock()
	return nil
}

// unmanage handles a Service the controller does not serve: not of type
// LoadBalancer (any more), or of another load-balancer class. Its
// addresses are released. A Service that stopped being a LoadBalancer has
// its status cleared by the API server; the controller removes its pool
// annotation. Services of other classes are never written.
func (c *Controller) unmanage(ctx context.Context, svc *corev1.Service) error {
	key := svc.Namespace + "/" + svc.Name
	held, ok := c.alloc.Assigned(key)
	c.alloc.Release(key)
	c.smu.Lock()
	delete(c.failures, key)
	c.smu.Unlock()
	if ok {
		c.allocationChanged(held, ipam.Assignment{})
	}
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		return nil
	}
	pool, annotated := svc.Annotations[lbservice.AnnotationIPAllocatedFromPool]
	if !annotated && len(svc.Status.LoadBalancer.Ingress) == 0 {
		return nil
	}
	if err := c.writeState(ctx, svc, serviceState{}); err != nil {
		return err
	}
	what := fmt.Sprintf("the address(es) of ipaddresspool %q", pool)
	if ok {
		what = quoteAddrs(held.IPs)
	}
	c.recorder.Eventf(svc, corev1.EventTypeNormal, ReasonClearAssignment,
		"Released %s: the Service is no longer of type LoadBalancer (spec.type %s)", what, svc.Spec.Type)
	return nil
}

// forget drops a deleted Service.
func (c *Controller) forget(key string) {
	held, ok := c.alloc.Assigned(key)
	c.alloc.Release(key)
	c.smu.Lock()
	delete(c.failures, key)
	delete(c.written, key)
	c.smu.Unlock()
	if ok {
		c.allocationChanged(held, ipam.Assignment{})
	}
}

// namespaceLabels returns the labels of a namespace when some pool selects
// namespaces by label (nil otherwise, or when the namespace is gone).
func (c *Controller) namespaceLabels(ctx context.Context, x *poolIndex, ns string) (map[string]string, error) {
	if !x.nsSelectors {
		return nil, nil
	}
	m := &metav1.PartialObjectMetadata{}
	m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	if err := c.client.Get(ctx, types.NamespacedName{Name: ns}, m); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read namespace %s: %w", ns, err)
	}
	return m.Labels, nil
}

// servicesOfNamespace maps a namespace whose labels changed to its
// Services, when some pool selects namespaces by label.
func (c *Controller) servicesOfNamespace(ctx context.Context, ns client.Object) []reconcile.Request {
	c.mu.RLock()
	x := c.idx
	c.mu.RUnlock()
	if x == nil || !x.nsSelectors {
		return nil
	}
	var list corev1.ServiceList
	if err := c.client.List(ctx, &list, client.InNamespace(ns.GetName()), client.UnsafeDisableDeepCopy); err != nil {
		logf.FromContext(ctx).Error(err, "list services", "namespace", ns.GetName())
		return nil
	}
	out := make([]reconcile.Request, 0, len(list.Items))
	for i := range list.Items {
		out = append(out, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&list.Items[i])})
	}
	return out
}
