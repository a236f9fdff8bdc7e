package speaker

import (
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// statusWriter writes one kind of the node's status objects on its own
// goroutine, so that writing them never holds the BGP path: client-go
// allows 5 writes a second by default, and 10,000 Services are 20,000
// writes (create, then status) at a cold start or thousands of patches
// when a session goes down. The reconcile says what the objects must say
// (setAll, set) and goes on; the writer catches up, always writing the
// latest wanted value and skipping what no longer needs writing.
type statusWriter struct {
	status nodeStatus
	kind   statusKind
	log    logr.Logger

	mu   sync.Mutex
	want map[string][]string
	svcs map[string]*corev1.Service
	// all: every object of the node is compared (a list); dirty: only
	// these Services'.
	all   bool
	dirty map[string]bool
	wake  chan struct{}
	// busy is true from a wake-up until the writer has written all it
	// was told; tests and benchmarks wait on it.
	busy bool
}

func newStatusWriter(s nodeStatus, kind statusKind, log logr.Logger) *statusWriter {
	return &statusWriter{status: s, kind: kind, log: log, want: map[string][]string{}, svcs: map[string]*corev1.Service{},
		dirty: map[string]bool{}, wake: make(chan struct{}, 1)}
}

// setAll says what every object of the node must say (Service key →
// peers or interfaces) and, unless svcs is nil, which Services there are
// (for their events). want is copied.
func (w *statusWriter) setAll(want map[string][]string, svcs map[string]*corev1.Service) {
	w.mu.Lock()
	w.want = maps.Clone(want)
	if w.want == nil {
		w.want = map[string][]string{}
	}
	if svcs != nil {
		w.svcs = make(map[string]*corev1.Service, len(svcs))
		for k, svc := range svcs {
			w.svcs[k] = eventRef(svc)
		}
	}
	w.all, w.dirty, w.busy = true, map[string]bool{}, true
	w.mu.Unlock()
	w.poke()
}

// setNode records the UID of the writer's Node, the owner of the objects
// it creates.
func (w *statusWriter) setNode(uid types.UID) {
	w.mu.Lock()
	w.status.nodeUID = uid
	w.mu.Unlock()
}

// set says what Service key's object must say (ok false: none).
func (w *statusWriter) set(key string, detail []string, ok bool, svc *corev1.Service) {
	w.mu.Lock()
	if ok {
		w.want[key] = detail
	} else {
		delete(w.want, key)
	}
	if svc != nil {
		w.svcs[key] = eventRef(svc)
	} else {
		delete(w.svcs, key)
	}
	w.dirty[key], w.busy = true, true
	w.mu.Unlock()
	w.poke()
}

func (w *statusWriter) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// idle reports whether everything said has been written.
func (w *statusWriter) idle() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return !w.busy
}

// run writes until ctx ends; a failed round is tried again, all of it,
// after a growing pause.
func (w *statusWriter) run(ctx context.Context) {
	backoff := time.Duration(0)
	for {
		if backoff > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
		} else {
			select {
			case <-ctx.Done():
				return
			case <-w.wake:
			}
		}
		w.mu.Lock()
		all, keys := w.all, slices.Sorted(maps.Keys(w.dirty))
		want := w.want
		if all {
			want = maps.Clone(w.want)
		} else {
			want = make(map[string][]string, len(keys))
			for _, k := range keys {
				if d, ok := w.want[k]; ok {
					want[k] = d
				}
			}
		}
		svcs := make(map[string]*corev1.Service, len(keys))
		if all {
			svcs = maps.Clone(w.svcs)
		} else {
			for _, k := range keys {
				svcs[k] = w.svcs[k]
			}
		}
		w.all, w.dirty = false, map[string]bool{}
		status := w.status
		w.mu.Unlock()
		if !all && len(keys) == 0 {
			w.settle()
			continue
		}
		lookup := func(k string) *corev1.Service { return svcs[k] }
		var err error
		if all {
			err = status.sync(ctx, w.kind, want, lookup)
		} else {
			err = status.syncKeys(ctx, w.kind, keys, want, lookup)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			w.log.Error(err, "write status objects; trying again", "kind", w.kind.kind)
			w.mu.Lock()
			w.all = true
			w.mu.Unlock()
			backoff = min(max(2*backoff, time.Second), time.Minute)
			continue
		}
		backoff = 0
		w.settle()
	}
}

// settle marks the writer idle when nothing came in meanwhile, and wakes
// it again otherwise.
func (w *statusWriter) settle() {
	w.mu.Lock()
	more := w.all || len(w.dirty) > 0
	w.busy = more
	w.mu.Unlock()
	if more {
		w.poke()
	}
}

// eventRef is what an event on the Service needs of it; the writer keeps
// these rather than whole Services.
func eventRef(svc *corev1.Service) *corev1.Service {
	if svc == nil {
		return nil
	}
	return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace, UID: svc.UID, ResourceVersion: svc.ResourceVersion}}
}
