package controller_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	assigner "github.com/lbstack/lbstack/pkg/assigner"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

// createServices creates n Services named prefix-i in ns, 8 at a time;
// mod (may be nil) adjusts Service i.
func createServices(t testing.TB, ns, prefix string, n int, mod func(i int, s *corev1.Service)) {
	t.Helper()
	errs := make(chan error, n)
	parallel(n, 8, func(i int) {
		s := mkSvc(ns, fmt.Sprintf("%s-%04d", prefix, i))
		// NodePorts come from one bitmap in etcd that every create
		// updates: without them, creating thousands is several times faster.
		s.Spec.AllocateLoadBalancerNodePorts = ptr.To(false)
		if mod != nil {
			mod(i, s)
		}
		if err := k8s.Create(context.Background(), s); err != nil {
			errs <- fmt.Errorf("create %s: %w", s.Name, err)
		}
	})
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// snapshot maps each Service of ns to its addresses, pool annotation and
// resourceVersion.
type svcSnap struct {
	ips, pool, rv string
}

func snapshot(t testing.TB, ns string) map[string]svcSnap {
	t.Helper()
	var list corev1.ServiceList
	if err := k8s.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	out := make(map[string]svcSnap, len(list.Items))
	for _, s := range list.Items {
		out[s.Name] = svcSnap{strings.Join(ingress(&s), ","), s.Annotations[lbservice.AnnotationIPAllocatedFromPool], s.ResourceVersion}
	}
	return out
}

// waitAllAssigned waits until n Services of ns have addresses.
func waitAllAssigned(t testing.TB, ns string, n int, timeout time.Duration) map[string]svcSnap {
	t.Helper()
	var snap map[string]svcSnap
	// Listing thousands of Services is not free: poll slowly.
	eventuallyEvery(t, timeout, 500*time.Millisecond, func() error {
		snap = snapshot(t, ns)
		done := 0
		for _, s := range snap {
			if s.ips != "" {
				done++
			}
		}
		if done < n {
			return fmt.Errorf("%d of %d services have addresses", done, n)
		}
		return nil
	})
	return snap
}

// TestRestartStability: 2,000 allocated Services (plain, sharing pairs,
// explicit addresses, holes from deleted Services), the controller
// restarted with new pending Services waiting: no allocated Service
// changes address or is written at all, and the new ones fill the holes.
func TestRestartStability(t *testing.T) {
	const n = 2000
	cleanConfig(t)
	ns := newNamespace(t, nil)
	p := mkPool("big", "198.19.0.0/20") // RFC 2544 benchmarking range
	p.Spec.AvoidBuggyIPs = true
	create(t, p, mkPool("side", "198.19.64.0/24"))
	run := startController(t, assigner.Options{})
	t0 := time.Now()
	createServices(t, ns, "svc", n, func(i int, s *corev1.Service) {
		switch {
		case i%100 == 1 || i%100 == 2: // sharing pairs, distinct ports
			s.Annotations = map[string]string{lbservice.AnnotationAllowSharedIP: fmt.Sprintf("pair-%d", i/100)}
			s.Spec.Ports[0].Port = int32(8000 + i%100)
		case i%100 == 3: // explicit addresses in the second pool
			s.Annotations = map[string]string{lbservice.AnnotationLoadBalancerIPs: fmt.Sprintf("198.19.64.%d", 10+i/100)}
		}
	})
	t.Logf("created %d Services in %v", n, time.Since(t0))
	waitAllAssigned(t, ns, n, 60*time.Second)
	t.Logf("all allocated after %v", time.Since(t0))
	// Holes: every 7th Service goes away.
	var deleted []string
	for i := 0; i < n; i += 7 {
		deleted = append(deleted, fmt.Sprintf("svc-%04d", i))
	}
	parallel(len(deleted), 8, func(i int) {
		if err := k8s.Delete(context.Background(), mkSvc(ns, deleted[i])); err != nil {
			t.Errorf("delete: %v", err)
		}
	})
	run.stop()
	before := snapshot(t, ns)
	if len(before) != n-len(deleted) {
		t.Fatalf("%d services left, want %d", len(before), n-len(deleted))
	}
	used := map[string]bool{}
	for name, s := range before {
		if s.ips == "" || s.pool == "" {
			t.Fatalf("%s not allocated before the restart: %+v", name, s)
		}
		for _, ip := range strings.Split(s.ips, ",") {
			used[ip] = true
		}
	}

	// While the controller is down, new Services arrive.
	const newOnes = 50
	createServices(t, ns, "new", newOnes, nil)
	t1 := time.Now()
	run = startController(t, assigner.Options{})
	after := waitAllAssigned(t, ns, len(before)+newOnes, 30*time.Second)
	t.Logf("restarted; every Service allocated after %v", time.Since(t1))
	changed, written := 0, 0
	for name, b := range before {
		a := after[name]
		if a.ips != b.ips || a.pool != b.pool {
			changed++
			if changed <= 5 {
				t.Errorf("%s changed from %s (%s) to %s (%s)", name, b.ips, b.pool, a.ips, a.pool)
			}
		}
		if a.rv != b.rv {
			written++
		}
	}
	if changed > 0 || written > 0 {
		t.Errorf("after the restart %d of %d Services changed address, %d were written", changed, len(before), written)
	}
	var fresh []string
	for i := range newOnes {
		ips := after[fmt.Sprintf("new-%04d", i)].ips
		if used[ips] {
			t.Errorf("new-%04d got %s, which an existing Service holds", i, ips)
		}
		fresh = append(fresh, ips)
	}
	slices.Sort(fresh)
	if len(slices.Compact(fresh)) != newOnes {
		t.Errorf("new Services share addresses: %v", fresh)
	}
	t.Logf("restart: %d Services kept their addresses, 0 written; %d new ones filled holes (%s .. %s)", len(before), newOnes, fresh[0], fresh[len(fresh)-1])
}

// TestStartClaimsOldestFirst: two Services show the same address without
// being allowed to share it (say, restored from a backup) when the
// controller starts: the older keeps it, the younger moves, saying why.
func TestStartClaimsOldestFirst(t *testing.T) {
	cleanConfig(t)
	ns := newNamespace(t, nil)
	create(t, mkPool("a", "203.0.113.0/28"))
	create(t, mkSvc(ns, "older"))
	time.Sleep(1100 * time.Millisecond) // creationTimestamp has one-second resolution
	create(t, mkSvc(ns, "younger"))
	for _, name := range []string{"younger", "older"} {
		patchStatus(t, ns, name, []string{"203.0.113.9"}, "a")
	}
	startController(t, assigner.Options{})
	waitIngress(t, ns, "younger", "a", "203.0.113.0")
	waitIngress(t, ns, "older", "a", "203.0.113.9")
	waitEvent(t, ns, "younger", assigner.ReasonClearAssignment, `Cleared ["203.0.113.9"]`, "203.0.113.9 is already used by "+ns+"/older")
	noEvent(t, ns, "older", assigner.ReasonClearAssignment)
}
