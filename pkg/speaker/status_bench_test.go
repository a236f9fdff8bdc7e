package speaker_test

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/speaker"
	"github.com/lbstack/lbstack/test/envtest"
)

// BenchmarkServiceStatusObjects (issue 21, "Status write amplification"):
// the API writes and stored objects of the speakers' per-Service status
// objects, measured against a real API server with the speakers' own
// status writer, one per simulated node, for S Services on K nodes (every
// node announcing every Service over BGP, as with externalTrafficPolicy
// Cluster; in layer 2 one node per Service):
//
//   - cold start: every node writes its objects;
//   - one new Service; one Service's address changed;
//   - one node's session to one of its two routers goes down;
//   - one node fails (its speaker stops): what the other speakers write,
//     and what is left behind;
//   - the same in layer 2, and with LBSTACK_SERVICE_STATUS=off;
//
// and extrapolates them to 10,000 Services on 50 nodes (linear: every
// figure is a count per Service and per node). Nothing here fails; it
// prints counts. LBSTACK_BENCH_SERVICES and LBSTACK_BENCH_NODES change
// the sizes (default 500 and 10).
//
//	go test -run '^$' -bench ServiceStatusObjects ./pkg/speaker/
func BenchmarkServiceStatusObjects(b *testing.B) {
	if _, err := envtest.AssetsDir(); err != nil {
		b.Skipf("envtest assets missing (make envtest-assets): %v", err)
	}
	nSvc := envtest.EnvInt("LBSTACK_BENCH_SERVICES", 500)
	nNodes := envtest.EnvInt("LBSTACK_BENCH_NODES", 10)
	for range b.N {
		env := envtest.Start(b)
		ctx := context.Background()
		writes := &writeCounter{n: map[string]int{}}
		cfg := rest.CopyConfig(env.Config)
		cfg.QPS, cfg.Burst = -1, 1000
		cfg.WrapTransport = writes.wrap
		c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
		if err != nil {
			b.Fatal(err)
		}
		events := &countingRecorder{}
		nodes := make([]*speaker.StatusSyncer, nNodes)
		offNodes := make([]*speaker.StatusSyncer, nNodes)
		for i := range nodes {
			name := fmt.Sprintf("n%02d", i+1)
			uid := types.UID(fmt.Sprintf("uid-%s", name))
			nodes[i] = speaker.NewStatusSyncer(c, events, name, uid, envtest.Namespace, false)
			offNodes[i] = speaker.NewStatusSyncer(c, events, name, uid, envtest.Namespace, true)
		}
		key := func(i int) string { return fmt.Sprintf("default/svc-%05d", i) }
		both := map[string][]string{}
		for i := range nSvc {
			both[key(i)] = []string{"router-a", "router-b"}
		}
		// each runs f for every node at once, as the speakers would.
		each := func(ns []*speaker.StatusSyncer, f func(i int, s *speaker.StatusSyncer) error) {
			var wg sync.WaitGroup
			for i, s := range ns {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := f(i, s); err != nil {
						b.Error(err)
					}
				}()
			}
			wg.Wait()
			if b.Failed() {
				b.FailNow()
			}
		}
		objects := func() (bgp, l2 int) {
			var lb v1beta1.ServiceBGPStatusList
			var ll v1beta1.ServiceL2StatusList
			if err := c.List(ctx, &lb, client.InNamespace(envtest.Namespace)); err != nil {
				b.Fatal(err)
			}
			if err := c.List(ctx, &ll, client.InNamespace(envtest.Namespace)); err != nil {
				b.Fatal(err)
			}
			return len(lb.Items), len(ll.Items)
		}
		type figure struct {
			what           string
			writes, events int
			// per: what the figure scales with, for 10,000 × 50.
			scale float64
		}
		var figs []figure
		step := func(what string, scale float64, f func()) {
			w0, e0 := writes.snapshot(), events.n.Load()
			t0 := time.Now()
			f()
			total := 0
			for k, v := range writes.snapshot() {
				total += v - w0[k]
			}
			figs = append(figs, figure{what, total, int(events.n.Load() - e0), scale})
			fmt.Printf("status-objects: %s: %d writes (%s), %d events, %v; load %s\n",
				what, total, envtest.DiffWrites(writes.snapshot(), w0), events.n.Load()-e0, time.Since(t0).Round(time.Millisecond), envtest.LoadAvg())
		}
		S, K := float64(nSvc), float64(nNodes)
		big := (10000.0 / S) * (50.0 / K)

		step("BGP cold start, every node announcing every Service", big, func() {
			each(nodes, func(_ int, s *speaker.StatusSyncer) error { return s.SyncBGP(ctx, both) })
		})
		nb, _ := objects()
		fmt.Printf("status-objects: %d ServiceBGPStatus for %d Services on %d nodes (%.1f per Service)\n", nb, nSvc, nNodes, float64(nb)/S)
		newKey := key(nSvc)
		withNew := map[string][]string{newKey: {"router-a", "router-b"}}
		step("one new Service", 50.0/K, func() {
			each(nodes, func(_ int, s *speaker.StatusSyncer) error { return s.SyncBGPKeys(ctx, []string{newKey}, withNew) })
		})
		step("one Service's address changed (the objects list peers, not addresses)", 50.0/K, func() {
			each(nodes, func(_ int, s *speaker.StatusSyncer) error { return s.SyncBGPKeys(ctx, []string{newKey}, withNew) })
		})
		both[newKey] = withNew[newKey]
		onlyA := map[string][]string{}
		for k := range both {
			onlyA[k] = []string{"router-a"}
		}
		step("one node's session to router-b goes down", 10000.0/S, func() {
			if err := nodes[0].SyncBGP(ctx, onlyA); err != nil {
				b.Fatal(err)
			}
		})
		step("and comes back", 10000.0/S, func() {
			if err := nodes[0].SyncBGP(ctx, both); err != nil {
				b.Fatal(err)
			}
		})
		step("one node fails: the other speakers' full resync", 49.0/(K-1), func() {
			each(nodes[1:], func(_ int, s *speaker.StatusSyncer) error { return s.SyncBGP(ctx, both) })
		})
		fmt.Printf("status-objects: the failed node's %d ServiceBGPStatus stay until its speaker runs again or its Node is deleted (they are owned by the Node: the garbage collector deletes them, %d deletes)\n", nSvc+1, nSvc+1)

		// Layer 2: one owner per Service, spread over the nodes.
		owned := make([]map[string][]string, nNodes)
		for i := range owned {
			owned[i] = map[string][]string{}
		}
		for i := range nSvc {
			owned[i%nNodes][key(i)] = []string{"eth0"}
		}
		step("layer 2 cold start (one owner per Service)", 10000.0/S, func() {
			each(nodes, func(i int, s *speaker.StatusSyncer) error { return s.SyncL2(ctx, owned[i]) })
		})
		_, nl := objects()
		fmt.Printf("status-objects: %d ServiceL2Status for %d Services (%.1f per Service)\n", nl, nSvc, float64(nl)/S)
		moved := make([]map[string][]string, nNodes)
		for i := range moved {
			moved[i] = map[string][]string{}
			for k, v := range owned[i] {
				moved[i][k] = v
			}
		}
		j := 1
		for k, v := range owned[0] {
			moved[j][k] = v
			j = j%(nNodes-1) + 1
		}
		step("layer 2: one node fails, its Services elected elsewhere", 10000.0/S, func() {
			each(nodes[1:], func(i int, s *speaker.StatusSyncer) error { return s.SyncL2(ctx, moved[i+1]) })
		})

		step("switching to LBSTACK_SERVICE_STATUS=off (once)", big, func() {
			each(offNodes, func(_ int, s *speaker.StatusSyncer) error {
				if err := s.SyncBGP(ctx, both); err != nil {
					return err
				}
				return s.SyncL2(ctx, nil)
			})
		})
		step("off: one new Service", 0, func() {
			each(offNodes, func(_ int, s *speaker.StatusSyncer) error {
				return s.SyncBGPKeys(ctx, []string{key(nSvc + 1)}, withNew)
			})
		})
		nb, nl = objects()
		fmt.Printf("status-objects: off: %d ServiceBGPStatus, %d ServiceL2Status left (the failed node's)\n", nb, nl)

		fmt.Printf("status-objects: extrapolated to 10,000 Services on 50 nodes (linear in Services and nodes; measured with %d Services on %d nodes):\n", nSvc, nNodes)
		fmt.Printf("status-objects:   per-node: %d ServiceBGPStatus objects\n", 10000*50)
		for _, f := range figs {
			if f.scale == 0 {
				continue
			}
			fmt.Printf("status-objects:   %s: %.0f writes, %.0f events\n", f.what, float64(f.writes)*f.scale, float64(f.events)*f.scale)
		}
		fmt.Printf("status-objects:   off: 0 objects, 0 writes per change\n")
	}
}

// countingRecorder counts the events the status writer emits.
type countingRecorder struct{ n atomic.Int64 }

func (r *countingRecorder) Event(runtime.Object, string, string, string) { r.n.Add(1) }
func (r *countingRecorder) Eventf(runtime.Object, string, string, string, ...any) {
	r.n.Add(1)
}
func (r *countingRecorder) AnnotatedEventf(runtime.Object, map[string]string, string, string, string, ...any) {
	r.n.Add(1)
}

// writeCounter counts the mutating requests of a client by "VERB resource".
type writeCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (w *writeCounter) wrap(rt http.RoundTripper) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		if req.Method != http.MethodGet {
			parts := strings.Split(strings.Trim(req.URL.Path, "/"), "/")
			res := ""
			for i, p := range parts {
				if p == "namespaces" && i+2 < len(parts) {
					res = parts[i+2]
				}
			}
			if res == "" && len(parts) > 0 {
				res = parts[len(parts)-1]
			}
			if strings.HasSuffix(req.URL.Path, "/status") {
				res += "/status"
			}
			w.mu.Lock()
			w.n[req.Method+" "+res]++
			w.mu.Unlock()
		}
		return rt.RoundTrip(req)
	})
}

func (w *writeCounter) snapshot() map[string]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]int, len(w.n))
	for k, v := range w.n {
		out[k] = v
	}
	return out
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
