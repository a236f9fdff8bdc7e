package webhook

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	toolscache "k8s.io/client-go/tools/cache"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/pkg/config"
)

// withRV returns obj with resourceVersion rv, as the watch shows it.
func withRV[T client.Object](obj T, rv string) T {
	obj.SetResourceVersion(rv)
	return obj
}

// admitter sends h one request (a dry run when asked) and returns its
// verdict.
func admitter(t *testing.T, h *kindHandler) func(op admissionv1.Operation, name string, obj client.Object, dryRun bool) verdict {
	return func(op admissionv1.Operation, name string, obj client.Object, dryRun bool) verdict {
		req := request(t, op, name, obj)
		if dryRun {
			req.DryRun = ptr.To(true)
		}
		return verdictOf(h.Handle(context.Background(), req))
	}
}

// overlapProbeB is the refusal of the probe pool 198.51.100.0/24 while
// pool b holds 198.51.100.0/25.
const overlapProbeB = `ipaddresspool "probe": spec.addresses[0]: 198.51.100.0/24 overlaps 198.51.100.0/25 of ipaddresspool "b"`

// TestViewCountsAdmittedObjectsUntilTheWatchShowsThem walks one view
// through admissions and watch events, checking after each step what a
// pool overlapping the others gets.
func TestViewCountsAdmittedObjectsUntilTheWatchShowsThem(t *testing.T) {
	v := newValidator(withRV(pool("stored", "203.0.113.0/26"), "5"))
	// The API server agrees with the watch here: refusals are not
	// confirmed (TestRefusalsAreConfirmedWithTheAPIServer).
	v.Reader = nil
	w := v.view()
	clock := time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)
	w.now = func() time.Time { return clock }
	h := newHandler(poolKind, v)
	admit := admitter(t, h)

	steps := []struct {
		name string
		do   func() verdict // nil: no request
		want verdict
		// probe is the verdict a new pool "probe" at 198.51.100.0/24 gets
		// after the step (dry run, so it changes nothing).
		probe verdict
	}{
		{name: "nothing admitted yet", probe: allowed()},
		{name: "a dry run is not counted",
			do:   func() verdict { return admit(admissionv1.Create, "b", pool("b", "198.51.100.0/25"), true) },
			want: allowed(), probe: allowed()},
		{name: "an admitted create counts before the watch shows it",
			do:   func() verdict { return admit(admissionv1.Create, "b", pool("b", "198.51.100.0/25"), false) },
			want: allowed(), probe: denied(overlapProbeB)},
		{name: "the watch shows it: it stays, now as stored",
			do: func() verdict {
				w.observed(config.KindIPAddressPool, withRV(pool("b", "198.51.100.0/25"), "7"), false)
				return verdict{}
			},
			probe: denied(overlapProbeB)},
		{name: "an update moving the stored pool counts at once",
			do:   func() verdict { return admit(admissionv1.Update, "b", withRV(pool("b", "192.0.2.0/25"), "7"), false) },
			want: allowed(), probe: allowed()},
		{name: "a late event of the replaced version does not undo the update",
			do: func() verdict {
				w.observed(config.KindIPAddressPool, withRV(pool("b", "198.51.100.0/25"), "7"), false)
				return verdict{}
			},
			probe: allowed()},
		{name: "the update is stored",
			do: func() verdict {
				w.observed(config.KindIPAddressPool, withRV(pool("b", "192.0.2.0/25"), "8"), false)
				return verdict{}
			},
			probe: allowed()},
		{name: "an admitted create the watch never shows",
			do:   func() verdict { return admit(admissionv1.Create, "c", pool("c", "198.51.100.128/25"), false) },
			want: allowed(), probe: denied(`ipaddresspool "probe": spec.addresses[0]: 198.51.100.0/24 overlaps 198.51.100.128/25 of ipaddresspool "c"`)},
		{name: "expires",
			do:    func() verdict { clock = clock.Add(admittedTTL + time.Second); return verdict{} },
			probe: allowed()},
		{name: "a deleted stored pool leaves the view (as a tombstone too)",
			do: func() verdict {
				w.observed(config.KindIPAddressPool, toolscache.DeletedFinalStateUnknown{Key: "x", Obj: withRV(pool("stored", "203.0.113.0/26"), "5")}, true)
				return verdict{}
			},
			probe: allowed()},
	}
	for _, s := range steps {
		if s.do != nil {
			if got := s.do(); got.String() != s.want.String() {
				t.Fatalf("%s: got %s\nwant %s", s.name, got, s.want)
			}
		}
		if got := admit(admissionv1.Create, "probe", pool("probe", "198.51.100.0/24"), true); got.String() != s.probe.String() {
			t.Fatalf("%s: probe got %s\nwant %s", s.name, got, s.probe)
		}
	}
	if got := admit(admissionv1.Create, "again", pool("again", "203.0.113.0/26"), true); got.String() != allowed().String() {
		t.Errorf("the deleted pool's range: got %s", got)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if n := w.index.Keys(); n != 1 {
		t.Errorf("the index holds %d pools, want 1 (b)", n)
	}
}

// TestViewSkipsAdmissionsTheWatchHasOvertaken: an admission the API
// server will refuse after it (a create of a name that exists; an update
// of a version the watch has seen replaced or deleted) must not stand in
// for the stored object, or for nothing, until it expires.
func TestViewSkipsAdmissionsTheWatchHasOvertaken(t *testing.T) {
	v := newValidator()
	v.Reader = nil
	w := v.view()
	h := newHandler(poolKind, v)
	admit := admitter(t, h)
	w.observed(config.KindIPAddressPool, withRV(pool("b", "192.0.2.0/25"), "8"), false)

	steps := []struct {
		name  string
		do    func() verdict
		probe verdict // a new pool at 198.51.100.0/24 (dry run)
	}{
		{name: "a create of a name the watch shows (AlreadyExists) is not counted",
			do:    func() verdict { return admit(admissionv1.Create, "b", pool("b", "198.51.100.0/25"), false) },
			probe: allowed()},
		{name: "an update of a version the watch has seen replaced (Conflict) is not counted",
			do: func() verdict {
				return admit(admissionv1.Update, "b", withRV(pool("b", "198.51.100.0/25"), "7"), false)
			},
			probe: allowed()},
		{name: "an update of the version the watch shows counts",
			do: func() verdict {
				return admit(admissionv1.Update, "b", withRV(pool("b", "198.51.100.0/25"), "8"), false)
			},
			probe: denied(overlapProbeB)},
		{name: "the watch shows it stored",
			do: func() verdict {
				w.observed(config.KindIPAddressPool, withRV(pool("b", "198.51.100.0/25"), "9"), false)
				return verdict{}
			},
			probe: denied(overlapProbeB)},
		{name: "the watch shows it deleted",
			do: func() verdict {
				w.observed(config.KindIPAddressPool, withRV(pool("b", "198.51.100.0/25"), "10"), true)
				return verdict{}
			},
			probe: allowed()},
		{name: "an update of a version before the delete (NotFound) is not counted",
			do: func() verdict {
				return admit(admissionv1.Update, "b", withRV(pool("b", "198.51.100.0/25"), "9"), false)
			},
			probe: allowed()},
		{name: "a create after the delete counts",
			do:    func() verdict { return admit(admissionv1.Create, "b", pool("b", "198.51.100.0/25"), false) },
			probe: denied(overlapProbeB)},
	}
	for _, s := range steps {
		if got := s.do(); got.String() != (verdict{}).String() && got.String() != allowed().String() {
			t.Fatalf("%s: the request itself got %s, want it allowed", s.name, got)
		}
		if got := admit(admissionv1.Create, "probe", pool("probe", "198.51.100.0/24"), true); got.String() != s.probe.String() {
			t.Fatalf("%s: probe got %s\nwant %s", s.name, got, s.probe)
		}
	}
}

// TestRefusalsAreConfirmedWithTheAPIServer: a refusal naming a pool the
// watch has not yet shown deleted or changed is decided again with the
// API server's answer; one the API server agrees with stands.
func TestRefusalsAreConfirmedWithTheAPIServer(t *testing.T) {
	there := pool("there", "198.51.100.0/26")
	moved := pool("moved", "192.0.2.0/26")
	v := newValidator(there, moved) // the API server's objects
	w := v.view()
	w.observed(config.KindIPAddressPool, withRV(pool("gone", "198.51.100.64/26"), "1"), false)
	w.observed(config.KindIPAddressPool, withRV(pool("moved", "198.51.100.128/26"), "1"), false)
	h := newHandler(poolKind, v)
	probe := func(addr string) verdict {
		req := request(t, admissionv1.Create, "probe", pool("probe", addr))
		req.DryRun = ptr.To(true)
		return verdictOf(h.Handle(context.Background(), req))
	}
	cases := []struct {
		addr string
		want verdict
	}{
		{"198.51.100.64/26", allowed()},  // "gone" was deleted
		{"198.51.100.128/26", allowed()}, // "moved" moved away
		{"192.0.2.0/27", denied(`ipaddresspool "probe": spec.addresses[0]: 192.0.2.0/27 overlaps 192.0.2.0/26 of ipaddresspool "moved"`)},
		{"198.51.100.0/27", denied(`ipaddresspool "probe": spec.addresses[0]: 198.51.100.0/27 overlaps 198.51.100.0/26 of ipaddresspool "there"`)},
	}
	for _, tc := range cases {
		if got := probe(tc.addr); got.String() != tc.want.String() {
			t.Errorf("%s: got %s\nwant %s", tc.addr, got, tc.want)
		}
	}
}

// TestViewAdmitsOneOfConcurrentOverlappingPools: requests racing for the
// same addresses are serialised; exactly one of each overlapping pair
// passes, and an admitted BGPAdvertisement counts for the pools after it.
func TestViewAdmitsOneOfConcurrentOverlappingPools(t *testing.T) {
	v := newValidator()
	h := newHandler(poolKind, v)
	const pairs = 50
	var wg sync.WaitGroup
	results := make([]verdict, 2*pairs)
	for i := range 2 * pairs {
		wg.Go(func() {
			name := fmt.Sprintf("p%03d", i)
			addr := fmt.Sprintf("198.51.100.%d/30", 4*(i/2))
			results[i] = verdictOf(h.Handle(context.Background(), request(t, admissionv1.Create, name, pool(name, addr))))
		})
	}
	wg.Wait()
	for pair := range pairs {
		a, b := results[2*pair], results[2*pair+1]
		if a.Allowed == b.Allowed {
			t.Errorf("pair %d: allowed %v and %v, want exactly one: %s / %s", pair, a.Allowed, b.Allowed, a, b)
		}
	}

	// An advertisement aggregating to /24, admitted but not yet watched,
	// makes a pool whose /24 covers another pool's addresses refused.
	agg := bgpAdv("agg")
	agg.Spec.AggregationLength = ptr.To[int32](24)
	agg.Spec.IPAddressPools = []string{"wide"}
	if got := verdictOf(newHandler(bgpAdvKind, v).Handle(context.Background(), request(t, admissionv1.Create, "agg", agg))); !got.Allowed {
		t.Fatalf("advertisement: %s", got)
	}
	got := verdictOf(h.Handle(context.Background(), request(t, admissionv1.Create, "wide", pool("wide", "198.51.100.250-198.51.100.251"))))
	if got.Allowed {
		t.Errorf("a pool whose /24 aggregate covers the admitted pools was allowed: %s", got)
	}
}

// BenchmarkPoolAdmission: the pool webhook's handler alone (decode, view,
// build, verdict), with n pools in its view and a BGPAdvertisement
// aggregating to /28: what a request costs the server, without the API
// server's round trip (BenchmarkAdmissionAtScale in test/envtest has
// that). ns/op should stay flat as n grows.
func BenchmarkPoolAdmission(b *testing.B) {
	at := func(i int) string {
		return fmt.Sprintf("198.%d.%d.%d/30", 18+i/4096, (i/16)%256, (i%16)*16)
	}
	for _, n := range []int{10, 1000, 5000} {
		b.Run(fmt.Sprintf("pools=%d", n), func(b *testing.B) {
			adv := bgpAdv("agg")
			adv.Spec.AggregationLength = ptr.To[int32](28)
			v := newValidator(adv)
			for i := range n {
				v.view().observed(config.KindIPAddressPool, withRV(pool(fmt.Sprintf("p%05d", i), at(i)), "1"), false)
			}
			h := newHandler(poolKind, v)
			req := request(b, admissionv1.Create, "new", pool("new", at(n)))
			req.DryRun = ptr.To(true)
			b.ReportAllocs()
			for b.Loop() {
				if r := h.Handle(context.Background(), req); !r.Allowed {
					b.Fatal(r.Result.Message)
				}
			}
		})
	}
}
