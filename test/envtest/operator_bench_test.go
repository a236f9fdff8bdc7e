package envtest_test

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/test/envtest"
)

// lastApplied imitates the annotation `kubectl apply` leaves on most
// Services: the operator's cache keeps annotations, so it counts.
var lastApplied = `{"apiVersion":"v1","kind":"Service","metadata":{"annotations":{},"labels":{"app":"web"},"name":"NAME","namespace":"NS"},` +
	`"spec":{"ports":[{"name":"http","port":80,"protocol":"TCP","targetPort":8080},{"name":"https","port":443,"protocol":"TCP","targetPort":8443}],` +
	`"selector":{"app":"web","tier":"frontend"},"type":"ClusterIP"}}`

// peakRSS is a process's high-water mark of resident memory, in MiB.
func peakRSS(pid int) (float64, error) {
	kb, err := envtest.StatusKB(fmt.Sprintf("/proc/%d/status", pid), "VmHWM")
	return float64(kb) / 1024, err
}

// runOperatorForMemory runs the real `lbstack operator` until it has
// reconciled a MetalLB object and admitted a pool, and returns its peak
// resident memory.
func runOperatorForMemory(b *testing.B, bin string) float64 {
	b.Helper()
	ctx := context.Background()
	extra := []string{"OPERATOR_IMAGE=registry.local:5000/lbstack:bench"}
	if limit := os.Getenv("LBSTACK_BENCH_GOMEMLIMIT"); limit != "" {
		extra = append(extra, "GOMEMLIMIT="+limit)
	}
	p := startOperatorProcess(b, bin, "lbstack-bench-operator-cert", extra...)
	p.waitReady(b)
	ml := &v1beta1.MetalLB{ObjectMeta: metav1.ObjectMeta{Name: "metallb", Namespace: envtest.Namespace}, Spec: v1beta1.MetalLBSpec{BGPType: v1beta1.BGPTypeFRR}}
	if err := env.Client.Create(ctx, ml); err != nil {
		b.Fatal(err)
	}
	defer func() {
		var cur v1beta1.MetalLB
		if env.Client.Get(ctx, client.ObjectKeyFromObject(ml), &cur) == nil {
			cur.Finalizers = nil
			_ = env.Client.Update(ctx, &cur)
			_ = env.Client.Delete(ctx, &cur)
		}
		cleanRendered(ctx)
	}()
	waitFor(b, 2*time.Minute, func() error {
		var cur v1beta1.MetalLB
		if err := env.Client.Get(ctx, client.ObjectKeyFromObject(ml), &cur); err != nil {
			return err
		}
		if meta.FindStatusCondition(cur.Status.Conditions, v1beta1.ConditionDegraded) == nil {
			return fmt.Errorf("not reconciled yet")
		}
		return nil
	})
	// Let every informer (Services everywhere, for symmetric routing) list
	// and settle.
	time.Sleep(5 * time.Second)
	rss, err := peakRSS(p.cmd.Process.Pid)
	if err != nil {
		b.Fatal(err)
	}
	return rss
}

// BenchmarkOperatorMemory prints the operator's peak resident memory with
// no Service and with 10,000 (the size its memory limit is chosen from:
// config/manager/manager.yaml). The webhooks and the BGPPeer conversion
// are served by the operator: if it is killed for memory, admission fails.
func BenchmarkOperatorMemory(b *testing.B) {
	bin := buildLbstack(b)
	ctx := context.Background()
	for i := 0; i < b.N; i++ {
		base := runOperatorForMemory(b, bin)
		const namespaces, perNS = 20, 500
		var wg sync.WaitGroup
		errs := make(chan error, namespaces)
		for n := range namespaces {
			ns := fmt.Sprintf("bench-svc-%d", n)
			if err := env.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				b.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := range perNS {
					name := fmt.Sprintf("web-%d", j)
					svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"app": "web"},
						Annotations: map[string]string{"kubectl.kubernetes.io/last-applied-configuration": strings.NewReplacer("NAME", name, "NS", ns).Replace(lastApplied)}},
						Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "web", "tier": "frontend"},
							Ports: []corev1.ServicePort{{Name: "http", Port: 80}, {Name: "https", Port: 443}}}}
					if err := env.Client.Create(ctx, svc); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			b.Fatal(err)
		}
		with := runOperatorForMemory(b, bin)
		for n := range namespaces {
			_ = env.Client.Delete(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("bench-svc-%d", n)}})
		}
		b.ReportMetric(base, "MiB-peak-RSS-0-services")
		b.ReportMetric(with, "MiB-peak-RSS-10k-services")
		fmt.Printf("operator peak RSS: %.0f MiB with no Service, %.0f MiB with 10,000 Services (headless, with a last-applied annotation each)\n", base, with)
	}
}
