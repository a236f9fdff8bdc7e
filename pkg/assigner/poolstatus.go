package assigner

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/ipam"
)

// poolStatusWriter keeps the IPAddressPools' status counters and the pool
// metrics up to date. Changes are batched for an interval, so a burst of
// allocations costs one status write per pool, and a pool's status is
// written only when its counters differ from what it shows.
type poolStatusWriter struct {
	c        *Controller
	interval time.Duration
	signal   chan struct{}

	mu      sync.Mutex
	dirty   map[string]bool
	all     bool
	written map[string]poolWrite
}

type poolWrite struct {
	st ipam.PoolStats
	at time.Time
}

func newPoolStatusWriter(c *Controller, interval time.Duration) *poolStatusWriter {
	return &poolStatusWriter{c: c, interval: interval, signal: make(chan struct{}, 1),
		dirty: map[string]bool{}, written: map[string]poolWrite{}}
}

// NeedLeaderElection: only the leader writes.
func (w *poolStatusWriter) NeedLeaderElection() bool { return true }

// mark flags pools whose counters may have changed.
func (w *poolStatusWriter) mark(pools ...string) {
	w.mu.Lock()
	for _, p := range pools {
		if p != "" {
			w.dirty[p] = true
		}
	}
	w.mu.Unlock()
	w.poke()
}

// markAll flags every pool (the first configuration).
func (w *poolStatusWriter) markAll() {
	w.mu.Lock()
	w.all = true
	w.mu.Unlock()
	w.poke()
}

func (w *poolStatusWriter) poke() {
	select {
	case w.signal <- struct{}{}:
	default:
	}
}

// Start runs the writer until ctx ends.
func (w *poolStatusWriter) Start(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-w.signal:
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(w.interval):
		}
		w.flush(ctx)
	}
}

func (w *poolStatusWriter) flush(ctx context.Context) {
	c := w.c
	c.mu.RLock()
	x := c.idx
	c.mu.RUnlock()
	if x == nil {
		return
	}
	w.mu.Lock()
	dirty, all := w.dirty, w.all
	w.dirty, w.all = map[string]bool{}, false
	w.mu.Unlock()
	names := make([]string, 0, len(dirty))
	if all {
		addressesInUse.Reset()
		addressesTotal.Reset()
		names = x.cfg.PoolNames
	} else {
		for n := range dirty {
			names = append(names, n)
		}
	}
	log := logf.FromContext(ctx).WithName("pool-status")
	var retry []string
	for _, name := range names {
		p := x.cfg.Pools[name]
		if p == nil { // deleted
			addressesInUse.DeleteLabelValues(name)
			addressesTotal.DeleteLabelValues(name)
			w.mu.Lock()
			delete(w.written, name)
			w.mu.Unlock()
			continue
		}
		st := c.alloc.Stats(name)
		addressesInUse.WithLabelValues(name).Set(inUse(st))
		addressesTotal.WithLabelValues(name).Set(poolSize(p))
		switch err := w.write(ctx, name, st); {
		case err == errLagging:
			retry = append(retry, name)
		case err != nil && ctx.Err() != nil:
			return // shutting down
		case err != nil:
			log.Error(err, "write pool status", "pool", name)
			retry = append(retry, name)
		}
	}
	if len(retry) > 0 {
		w.mark(retry...)
	}
}

type lagError struct{}

func (lagError) Error() string { return "cache lags behind our write" }

var errLagging error = lagError{}

// write patches the pool's status when it differs from st.
func (w *poolStatusWriter) write(ctx context.Context, name string, st ipam.PoolStats) error {
	c := w.c
	// The cache's copy, not a deep copy (the first configuration looks at
	// every pool): only read; the patch decodes into another object.
	var pool v1beta1.IPAddressPool
	if err := c.client.Get(ctx, types.NamespacedName{Namespace: c.opts.Namespace, Name: name}, &pool, client.UnsafeDisableDeepCopy); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	want := v1beta1.IPAddressPoolStatus{
		AssignedIPv4: st.AssignedIPv4, AssignedIPv6: st.AssignedIPv6,
		AvailableIPv4: st.AvailableIPv4, AvailableIPv6: st.AvailableIPv6,
	}
	w.mu.Lock()
	last, ok := w.written[name]
	w.mu.Unlock()
	if pool.Status == want {
		return nil
	}
	if ok && last.st == st && time.Since(last.at) < writeLag {
		return errLagging
	}
	body, err := json.Marshal(map[string]any{"metadata": map[string]any{"uid": pool.UID}, "status": want})
	if err != nil {
		return err
	}
	resp := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: pool.Namespace, Name: pool.Name}}
	if err := c.client.Status().Patch(ctx, resp, client.RawPatch(types.MergePatchType, body)); err != nil {
		if apierrors.IsNotFound(err) {
			return nil
		}
		return err
	}
	w.mu.Lock()
	w.written[name] = poolWrite{st: st, at: time.Now()}
	w.mu.Unlock()
	return nil
}
