package assigner

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/record"
)

// pacerAt is an eventPacer on a clock the test moves, recording into a
// FakeRecorder.
type pacerAt struct {
	*eventPacer
	clock time.Time
	rec   *record.FakeRecorder
}

func newPacerAt() *pacerAt {
	p := &pacerAt{clock: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC), rec: record.NewFakeRecorder(maxQueued + 100)}
	p.eventPacer = newEventPacer(p.rec, clientgoscheme.Scheme, func() time.Time { return p.clock })
	return p
}

func (p *pacerAt) writes(n int, every time.Duration) {
	for range n {
		p.noteWrite()
		p.clock = p.clock.Add(every)
	}
}

func (p *pacerAt) sent() []string {
	var out []string
	for {
		select {
		case e := <-p.rec.Events:
			out = append(out, e)
		default:
			return out
		}
	}
}

func (p *pacerAt) event(i int) {
	p.Eventf(&corev1.Service{}, corev1.EventTypeNormal, "IPAllocated", "e%d", i)
}

func TestEventPacer(t *testing.T) {
	tests := []struct {
		name string
		// writes: this many address writes, one every `every`, before the
		// Events.
		writes int
		every  time.Duration
		held   bool
	}{
		{"no writes: at once", 0, 0, false},
		{"a few writes: at once", busyWrites - 1, time.Millisecond, false},
		{"writes spread over more than the window: at once", busyWrites, busyWindow / busyWrites * 2, false},
		{"a burst of writes: held", busyWrites, time.Millisecond, true},
		{"a long burst: held", 5 * busyWrites, time.Millisecond, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newPacerAt()
			p.writes(tt.writes, tt.every)
			for i := range 3 {
				p.event(i)
			}
			got := p.sent()
			if !tt.held {
				if len(got) != 3 {
					t.Fatalf("sent %v, want the 3 Events at once", got)
				}
				return
			}
			if len(got) != 0 {
				t.Fatalf("sent %v while busy", got)
			}
			wait, _ := p.step()
			if wait <= 0 || wait > busyWindow {
				t.Fatalf("step while busy waits %v, want until the burst's window ends", wait)
			}
			if got := p.sent(); len(got) != 0 {
				t.Fatalf("sent %v while busy", got)
			}
			// The burst is over: the queue drains in order, one Event a
			// step, drainRate a second; an Event recorded meanwhile goes
			// behind them.
			p.clock = p.clock.Add(wait)
			var order []string
			for i := 0; ; i++ {
				if i == 1 {
					p.event(3)
				}
				wait, _ := p.step()
				order = append(order, p.sent()...)
				if wait == 0 {
					break
				}
				if wait != time.Second/drainRate {
					t.Fatalf("drain step waits %v, want %v", wait, time.Second/drainRate)
				}
				p.clock = p.clock.Add(wait)
			}
			want := []string{"Normal IPAllocated e0", "Normal IPAllocated e1", "Normal IPAllocated e2", "Normal IPAllocated e3"}
			if fmt.Sprint(order) != fmt.Sprint(want) {
				t.Fatalf("sent %v, want %v", order, want)
			}
			// Empty and not busy: at once again.
			p.event(4)
			if got := p.sent(); len(got) != 1 {
				t.Fatalf("sent %v, want the Event at once", got)
			}
		})
	}
}

func TestEventPacerHoldsReferences(t *testing.T) {
	p := newPacerAt()
	p.writes(busyWrites, time.Microsecond)
	svc := &corev1.Service{}
	svc.Namespace, svc.Name, svc.UID = "ns", "s", "u1"
	p.Event(svc, corev1.EventTypeNormal, "IPAllocated", "held")
	ref, ok := p.queue[0].object.(*corev1.ObjectReference)
	if !ok || ref.Kind != "Service" || ref.Name != "s" || ref.Namespace != "ns" || ref.UID != "u1" {
		t.Errorf("queued %#v, want a reference to Service ns/s", p.queue[0].object)
	}
}

func TestEventPacerBound(t *testing.T) {
	p := newPacerAt()
	p.writes(busyWrites, time.Microsecond)
	for i := range maxQueued + 7 {
		p.event(i)
	}
	if _, dropped := p.step(); dropped != 7 {
		t.Errorf("dropped %d, want 7", dropped)
	}
	if _, dropped := p.step(); dropped != 0 {
		t.Errorf("dropped %d again, want 0 (counted once)", dropped)
	}
}

func TestEventPacerStart(t *testing.T) {
	// Start drains with the real clock and stops with its context.
	rec := record.NewFakeRecorder(10)
	p := newEventPacer(rec, clientgoscheme.Scheme, time.Now)
	for range busyWrites {
		p.noteWrite()
	}
	p.Eventf(&corev1.Service{}, corev1.EventTypeNormal, "IPAllocated", "held")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Start(ctx) }()
	select {
	case e := <-rec.Events:
		if e != "Normal IPAllocated held" {
			t.Errorf("sent %q", e)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the held Event was not sent after the burst")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
