package assigner

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/tools/record"
	"k8s.io/client-go/tools/reference"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
)

// eventPacer puts the controller's Events behind its address writes. An
// Event costs the API server about what a Service status write does, and
// the controller records one per assignment: when 10,000 Services wait
// for addresses, sending the 10,000 Events as they come halves the rate
// at which addresses are written (measured: 4,000 pending Services took
// 1.6 times the bare writes' time with the Events, 0.9 without). While
// the controller writes addresses in bulk (busy: busyWrites status
// writes within busyWindow), Events wait in order in a queue; once it is
// not busy, the queue drains at drainRate a second, and with the queue
// empty an Event goes out at once, so a single change is reported as
// before. The queue holds at most maxQueued Events; beyond, new ones are
// dropped and counted (client-go's broadcaster drops beyond 1,000 too).
type eventPacer struct {
	next record.EventRecorder
	now  func() time.Time
	// scheme names the kinds of the objects whose Events wait: a waiting
	// Event holds a reference, not the object (10,000 Services kept
	// alive after the cache moved on would be 30 MB).
	scheme *runtime.Scheme

	mu     sync.Mutex
	queue  []queuedEvent
	writes [busyWrites]time.Time
	// w is where the next write time goes in the ring.
	w       int
	dropped int
	wake    chan struct{}
}

type queuedEvent struct {
	object                  runtime.Object
	eventtype, reason, note string
}

const (
	busyWrites = 20
	busyWindow = time.Second
	drainRate  = 200
	maxQueued  = 50000
)

var _ record.EventRecorder = (*eventPacer)(nil)

func newEventPacer(next record.EventRecorder, scheme *runtime.Scheme, now func() time.Time) *eventPacer {
	return &eventPacer{next: next, scheme: scheme, now: now, wake: make(chan struct{}, 1)}
}

// reference is what an Event keeps of its object: a reference when the
// object's kind is known (what client-go's recorder makes of it anyway),
// else the object.
func (p *eventPacer) reference(obj runtime.Object) runtime.Object {
	if _, ok := obj.(*corev1.ObjectReference); ok || p.scheme == nil {
		return obj
	}
	ref, err := reference.GetReference(p.scheme, obj)
	if err != nil {
		return obj
	}
	return ref
}

// noteWrite records an address write.
func (p *eventPacer) noteWrite() {
	p.mu.Lock()
	p.writes[p.w] = p.now()
	p.w = (p.w + 1) % busyWrites
	p.mu.Unlock()
}

// busyLocked reports whether the last busyWrites writes all fell within
// busyWindow, and until when that holds.
func (p *eventPacer) busyLocked(now time.Time) (bool, time.Time) {
	oldest := p.writes[p.w] // the ring's next slot holds the oldest write
	if oldest.IsZero() || now.Sub(oldest) >= busyWindow {
		return false, time.Time{}
	}
	return true, oldest.Add(busyWindow)
}

// Event implements record.EventRecorder.
func (p *eventPacer) Event(object runtime.Object, eventtype, reason, message string) {
	p.record(queuedEvent{object: object, eventtype: eventtype, reason: reason, note: message})
}

// Eventf implements record.EventRecorder.
func (p *eventPacer) Eventf(object runtime.Object, eventtype, reason, messageFmt string, args ...any) {
	p.record(queuedEvent{object: object, eventtype: eventtype, reason: reason, note: fmt.Sprintf(messageFmt, args...)})
}

// AnnotatedEventf implements record.EventRecorder; annotated Events are
// not held back (the controller records none).
func (p *eventPacer) AnnotatedEventf(object runtime.Object, annotations map[string]string, eventtype, reason, messageFmt string, args ...any) {
	p.next.AnnotatedEventf(object, annotations, eventtype, reason, messageFmt, args...)
}

func (p *eventPacer) record(e queuedEvent) {
	e.object = p.reference(e.object)
	p.mu.Lock()
	busy, _ := p.busyLocked(p.now())
	if !busy && len(p.queue) == 0 {
		p.mu.Unlock()
		p.next.Event(e.object, e.eventtype, e.reason, e.note)
		return
	}
	if len(p.queue) >= maxQueued {
		p.dropped++
		p.mu.Unlock()
		return
	}
	p.queue = append(p.queue, e)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// step sends the next queued Event if the controller is not busy and
// returns how long to wait before the next step (0: the queue is empty,
// wait for an Event), with the Events dropped since the last step.
func (p *eventPacer) step() (wait time.Duration, dropped int) {
	p.mu.Lock()
	now := p.now()
	dropped, p.dropped = p.dropped, 0
	if len(p.queue) == 0 {
		p.mu.Unlock()
		return 0, dropped
	}
	if busy, until := p.busyLocked(now); busy {
		p.mu.Unlock()
		return until.Sub(now), dropped
	}
	e := p.queue[0]
	p.queue[0] = queuedEvent{}
	p.queue = p.queue[1:]
	if len(p.queue) == 0 {
		p.queue = nil // let the drained backing array go
	}
	p.mu.Unlock()
	p.next.Event(e.object, e.eventtype, e.reason, e.note)
	return time.Second / drainRate, dropped
}

// Start drains the queue until ctx ends (a manager Runnable; Events still
// queued then are not sent, as client-go's broadcaster does at shutdown).
func (p *eventPacer) Start(ctx context.Context) error {
	for {
		wait, dropped := p.step()
		if dropped > 0 {
			logf.FromContext(ctx).Info("Events dropped: more were waiting behind address writes than the queue holds", "dropped", dropped, "queue", maxQueued)
		}
		if wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return nil
			case <-t.C:
			}
			continue
		}
		select {
		case <-ctx.Done():
			return nil
		case <-p.wake:
		}
	}
}
