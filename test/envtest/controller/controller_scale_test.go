package controller_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	assigner "github.com/lbstack/lbstack/pkg/assigner"
	"github.com/lbstack/lbstack/test/envtest"
)

// BenchmarkControllerScale (issue 21, "Scale"): 10,000 LoadBalancer
// Services, 5,000 IPAddressPools (a /28 each in 198.18.0.0/15, every one
// autoAssign, one L2Advertisement for all) and 50 Nodes (objects only, no
// kubelets). The controller runs as a process (the binary named by
// $LBSTACK_BENCH_BINARY, else this test binary as `lbstack controller`),
// so its CPU time (/proc/<pid>/stat) and peak RSS (VmHWM) are its own.
// It prints:
//
//   - assign: the time until a watch has seen all 10,000 pending Services
//     with an address, from the controller's start; the floor (a bare client
//     writing the same status patches with 8 workers) measured in the same
//     run; their ratio (goal: at most 1.5);
//   - idle: when the controller is idle, from its process start: its
//     Service and configuration queues are empty, it has reconciled at
//     least every Service once, and no write of it (a Service, Event,
//     IPAddressPool or ConfigurationState changing, seen by watches) came
//     for a quiet period (2 s; the time reported is the last activity,
//     not the end of the quiet period);
//   - restart: a new process with the 10,000 assigned: addresses changed
//     (goal 0), Services written, and the time until idle (goal 5 s);
//   - per change: the API writes and the objects stored for one Service
//     created and for one deleted, the controller CPU per Service create
//     (a burst of them), and per pool change (a pool no Service uses gets
//     another range) the CPU, writes and Services reconciled;
//   - CPU seconds and peak RSS of the controller (goal: under 200 MiB).
//
// Before the measured rounds a controller runs once with the pools and no
// Services, so the pool statuses are written (5,000 writes) outside them.
// Nothing here fails on time; figures are noisy on a shared machine, so
// it prints the load average too.
//
// It takes 10 to 20 minutes (creating 10,000 Services alone takes minutes
// on a loaded 2-core machine), longer than go test's default timeout, so
// it runs only when LBSTACK_BENCH_SCALE is set:
//
//	go build -o bin/lbstack . && LBSTACK_BENCH_SCALE=1 LBSTACK_BENCH_BINARY=$PWD/bin/lbstack \
//	  go test -run '^$' -bench ControllerScale -timeout 40m ./test/envtest/controller/
//
// LBSTACK_BENCH_SERVICES, LBSTACK_BENCH_POOLS change the counts.
func BenchmarkControllerScale(b *testing.B) {
	if os.Getenv("LBSTACK_BENCH_SCALE") == "" {
		b.Skip("set LBSTACK_BENCH_SCALE=1 to run it (10 to 20 minutes)")
	}
	n := envtest.EnvInt("LBSTACK_BENCH_SERVICES", 10000)
	nPools := envtest.EnvInt("LBSTACK_BENCH_POOLS", 5000)
	const nNodes = 50
	if nPools*16 < n+200 || nPools > 8000 {
		b.Fatalf("%d pools of 16 addresses cannot hold %d Services (or do not fit 198.18.0.0/15)", nPools, n)
	}
	for range b.N {
		fmt.Printf("load before: %s\n", envtest.LoadAvg())
		t0 := time.Now()
		cleanConfig(b)
		ns := newNamespace(b, nil)
		b.Cleanup(func() { // one request rather than 10,000 (before newNamespace's cleanup)
			if err := k8s.DeleteAllOf(context.Background(), &corev1.Service{}, client.InNamespace(ns)); err != nil {
				b.Logf("delete the Services of %s: %v", ns, err)
			}
		})
		createScalePools(b, nPools)
		create(b, &v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Namespace: stackNS, Name: "all"}})
		createNodes(b, nNodes)
		fmt.Printf("setup: %d pools, %d nodes in %v\n", nPools, nNodes, time.Since(t0).Round(time.Millisecond))

		// Warm-up: the pools' statuses, outside the measured rounds.
		w := startScaleController(b, ns)
		w.waitIdle(b, 0, 2*time.Second)
		w.stop()
		fmt.Printf("warm-up controller (pool statuses): idle after %v, %d writes\n", w.idleAt().Round(time.Millisecond), w.act.count())

		t1 := time.Now()
		createServicesWorkers(b, ns, "svc", n, 16)
		fmt.Printf("setup: %d Services in %v\n", n, time.Since(t1).Round(time.Millisecond))
		names := make([]string, n)
		ips := make([]string, n)
		for i, ip := 0, netip.MustParseAddr("198.18.0.0"); i < n; i, ip = i+1, ip.Next() {
			names[i] = fmt.Sprintf("svc-%04d", i)
			ips[i] = ip.String()
		}

		// Floor: the same writes from a bare client, 8 workers.
		floor := observe(b, ns, n, func() {
			parallel(n, 8, func(i int) { patchStatus(b, ns, names[i], ips[i:i+1], "scale-0000") })
		})
		parallel(n, 8, func(i int) { patchStatus(b, ns, names[i], nil, "") })
		fmt.Printf("floor: %v (load %s)\n", floor.Round(time.Millisecond), envtest.LoadAvg())

		// The controller, cold, with 10,000 pending.
		var c *scaleController
		assign, first := observeFirst(b, ns, n, func() { c = startScaleController(b, ns) })
		assignCPU := c.cpu()
		c.waitIdle(b, n, 2*time.Second)
		ratio := assign.Seconds() / floor.Seconds()
		fmt.Printf("controller: first address after %v, all %d assigned after %v (CPU %.1f s); idle after %v (the Events held behind the address writes sent; CPU %.1f s); ratio %.2f (goal <= 1.5); peak RSS %.1f MiB (load %s)\n",
			first.Round(time.Millisecond), n, assign.Round(time.Millisecond), assignCPU, c.idleAt().Round(time.Millisecond), c.cpu(), ratio, float64(c.peakKB())/1024, envtest.LoadAvg())
		b.ReportMetric(floor.Seconds(), "floor-s")
		b.ReportMetric(assign.Seconds(), "controller-s")
		b.ReportMetric(ratio, "ratio")

		// One Service created, then deleted: writes and stored objects.
		create1 := c.change(b, func() { createServicesWorkers(b, ns, "probe", 1, 1) })
		waitAssigned(b, ns, "probe-0000")
		fmt.Printf("one Service created: %s\n", create1)
		delete1 := c.change(b, func() {
			if err := k8s.Delete(context.Background(), mkSvc(ns, "probe-0000")); err != nil {
				b.Fatal(err)
			}
		})
		fmt.Printf("one Service deleted: %s\n", delete1)

		// A burst of Service creates: controller CPU per Service.
		const burst = 500
		burstCh := c.change(b, func() { createServicesWorkers(b, ns, "burst", burst, 8) })
		fmt.Printf("%d Services created: %.2f ms controller CPU per Service (net of idle); %s\n", burst, burstCh.cpu*1000/burst, burstCh)

		// Pool changes that concern no Service: a pool without Services
		// gets a second range (198.19.128.0/28 + 16*i, unused space).
		const poolChanges = 5
		var poolCPU float64
		var poolWrites, poolRecs int
		for i := range poolChanges {
			name := fmt.Sprintf("scale-%04d", nPools-1-i)
			extra := netip.AddrFrom4([4]byte{198, 19, 128, byte(16 * i)})
			ch := c.change(b, func() {
				var p v1beta1.IPAddressPool
				if err := k8s.Get(context.Background(), types.NamespacedName{Namespace: stackNS, Name: name}, &p); err != nil {
					b.Fatal(err)
				}
				p.Spec.Addresses = append(p.Spec.Addresses, netip.PrefixFrom(extra, 28).String())
				if err := k8s.Update(context.Background(), &p); err != nil {
					b.Fatal(err)
				}
			})
			poolCPU += ch.cpu
			poolWrites += ch.writes()
			poolRecs += ch.serviceReconciles
		}
		fmt.Printf("one pool changed (no Service in it): %.0f ms controller CPU net of idle, %.1f writes, %.0f Services reconciled (mean of %d)\n",
			poolCPU*1000/poolChanges, float64(poolWrites)/poolChanges, float64(poolRecs)/poolChanges, poolChanges)
		b.ReportMetric(poolCPU*1000/poolChanges, "pool-change-cpu-ms")
		cpu, peak := c.cpu(), c.peakKB()
		c.stop()
		fmt.Printf("controller process: %.1f s CPU in all, peak RSS %.1f MiB (goal < 200)\n", cpu, float64(peak)/1024)
		b.ReportMetric(float64(peak)/1024, "peak-RSS-MiB")

		// Restart with everything assigned.
		before := snapshot(b, ns)
		r := startScaleController(b, ns)
		r.waitIdle(b, len(before), 2*time.Second)
		after := snapshot(b, ns)
		changed, written := 0, 0
		for name, s := range before {
			if a := after[name]; a.ips != s.ips || a.pool != s.pool {
				changed++
			}
			if after[name].rv != s.rv {
				written++
			}
		}
		fmt.Printf("restart with %d assigned: %d addresses changed (goal 0), %d Services written, %d writes in all; idle %v after the process start (goal <= 5 s); CPU %.1f s; peak RSS %.1f MiB (load %s)\n",
			len(before), changed, written, r.act.count(), r.idleAt().Round(time.Millisecond), r.cpu(), float64(r.peakKB())/1024, envtest.LoadAvg())
		b.ReportMetric(r.idleAt().Seconds(), "restart-idle-s")
		b.ReportMetric(float64(changed), "restart-changed")
		r.stop()
		fmt.Printf("load after: %s\n", envtest.LoadAvg())
	}
}

// createScalePools creates pools scale-0000.. with a /28 each from
// 198.18.0.0 on, 16 at a time.
func createScalePools(b *testing.B, n int) {
	parallel(n, 16, func(i int) {
		first := netip.AddrFrom4([4]byte{198, 18 + byte(i/4096), byte(i % 4096 / 16), byte(i % 16 * 16)})
		p := mkPool(fmt.Sprintf("scale-%04d", i), netip.PrefixFrom(first, 28).String())
		if err := k8s.Create(context.Background(), p); err != nil {
			b.Errorf("create pool: %v", err)
		}
	})
	if b.Failed() {
		b.FailNow()
	}
}

// createNodes registers n Node objects (no kubelet behind them).
func createNodes(b *testing.B, n int) {
	parallel(n, 8, func(i int) {
		node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("scale-node-%02d", i),
			Labels: map[string]string{"kubernetes.io/hostname": fmt.Sprintf("scale-node-%02d", i)}}}
		if err := k8s.Create(context.Background(), node); err != nil && !apierrors.IsAlreadyExists(err) {
			b.Errorf("create node: %v", err)
		}
	})
	b.Cleanup(func() {
		parallel(n, 8, func(i int) {
			_ = k8s.Delete(context.Background(), &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("scale-node-%02d", i)}})
		})
	})
}

// createServicesWorkers is createServices with a number of workers.
func createServicesWorkers(b *testing.B, ns, prefix string, n, workers int) {
	parallel(n, workers, func(i int) {
		s := mkSvc(ns, fmt.Sprintf("%s-%04d", prefix, i))
		s.Spec.AllocateLoadBalancerNodePorts = ptr.To(false)
		if err := k8s.Create(context.Background(), s); err != nil {
			b.Errorf("create %s: %v", s.Name, err)
		}
	})
	if b.Failed() {
		b.FailNow()
	}
}

// scaleController is `lbstack controller` as a process, with plain-HTTP
// metrics on a local port, and watches recording what it writes.
type scaleController struct {
	cmd     *exec.Cmd
	metrics string
	started time.Time
	act     *activity
	cancel  context.CancelFunc
	idle    time.Time
}

func startScaleController(b *testing.B, ns string) *scaleController {
	b.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	args := []string{"controller", "--kubeconfig", envtest.WriteKubeconfig(b, restCfg), "--namespace", stackNS, "--webhook-mode", "disabled",
		"--metrics-bind-address", addr, "--metrics-secure=false", "--health-probe-bind-address", "0", "--log-level", "error"}
	cmd := envtest.BenchCommand(b, args...)
	cmd.Stderr = os.Stderr
	ctx, cancel := context.WithCancel(context.Background())
	c := &scaleController{cmd: cmd, metrics: "http://" + addr + "/metrics", cancel: cancel}
	c.act = watchActivity(b, ctx, ns)
	c.started = time.Now()
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.stop)
	return c
}

func (c *scaleController) stop() {
	if c.cmd.ProcessState != nil {
		return
	}
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	_ = c.cmd.Wait()
	c.cancel()
}

// cpu is the process's user+system CPU seconds so far.
func (c *scaleController) cpu() float64 {
	if c.cmd.ProcessState != nil {
		return (c.cmd.ProcessState.UserTime() + c.cmd.ProcessState.SystemTime()).Seconds()
	}
	cpu, _ := envtest.ProcessCPU(c.cmd.Process.Pid)
	return cpu.Seconds()
}

func (c *scaleController) peakKB() int64 {
	return readStatusKB(nil, fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid), "VmHWM")
}

func (c *scaleController) idleAt() time.Duration { return c.idle.Sub(c.started) }

// scrape reads the controller's metrics: the sum of each sample whose
// name and labels contain every one of match.
func (c *scaleController) scrape(match ...[]string) ([]float64, error) {
	resp, err := http.Get(c.metrics)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := make([]float64, len(match))
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
	next:
		for k, m := range match {
			for _, s := range m {
				if !strings.Contains(line[:i], s) {
					continue next
				}
			}
			v, _ := strconv.ParseFloat(line[i+1:], 64)
			out[k] += v
		}
	}
	return out, sc.Err()
}

var (
	svcReconciles = []string{"controller_runtime_reconcile_total{", `controller="` + assigner.ServiceControllerName + `"`}
	cfgReconciles = []string{"controller_runtime_reconcile_total{", `controller="` + assigner.ConfigControllerName + `"`}
	queueDepth    = []string{"workqueue_depth{"}
	queueActive   = []string{"controller_runtime_active_workers{"}
)

// idlePoll is how often waitIdle scrapes the controller's metrics (each
// scrape renders some 10,000 series: not free).
const idlePoll = 200 * time.Millisecond

// waitIdle waits until the controller has reconciled at least services
// Services, its queues are empty and no write came for quiet; c.idle is
// the last moment it was not idle.
func (c *scaleController) waitIdle(b *testing.B, services int, quiet time.Duration) {
	b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	busy := time.Now()
	for time.Now().Before(deadline) {
		v, err := c.scrape(svcReconciles, cfgReconciles, queueDepth, queueActive)
		now := time.Now()
		if err != nil || v[0] < float64(services) || v[1] < 1 || v[2] > 0 || v[3] > 0 {
			busy = now
		}
		last := busy
		if a := c.act.lastAt(); a.After(last) {
			last = a
		}
		if now.Sub(last) >= quiet {
			c.idle = last
			return
		}
		time.Sleep(idlePoll)
	}
	b.Fatalf("controller not idle after 5 minutes")
}

// changeCost is what one change cost the controller.
type changeCost struct {
	cpu               float64 // net of the idle rate
	raw, idleRate     float64 // CPU seconds in the window; idle CPU seconds per second
	window            float64 // seconds
	writes            func() int
	kinds             map[string]int
	serviceReconciles int
	configReconciles  int
	storedObjects     int
}

func (cc changeCost) String() string {
	var parts []string
	for _, k := range []string{"Service status", "Event created", "Event updated", "IPAddressPool status", "ConfigurationState"} {
		if cc.kinds[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", cc.kinds[k], k))
		}
	}
	return fmt.Sprintf("%d API writes (%s), %d objects stored, %d Service reconciles, %.0f ms controller CPU net of idle (%.0f ms in %.1f s, idle %.0f ms/s)",
		cc.writes(), strings.Join(parts, ", "), cc.storedObjects, cc.serviceReconciles, cc.cpu*1000, cc.raw*1000, cc.window, cc.idleRate*1000)
}

// change runs do and waits until the controller is quiet again (no write
// for 1 s); it returns what the controller did meanwhile. The CPU is net
// of the controller's idle rate (measured for a second before).
func (c *scaleController) change(b *testing.B, do func()) changeCost {
	b.Helper()
	before, err := c.scrape(svcReconciles, cfgReconciles)
	if err != nil {
		b.Fatal(err)
	}
	// The idle CPU rate, subtracted below. No metrics scrape from here
	// to the end (a scrape renders some 10,000 series and would cost more
	// than a Service): the change is over when no write came for a
	// second, at least 2 s after it began.
	idle0, t0 := c.cpu(), time.Now()
	time.Sleep(time.Second)
	idleRate := (c.cpu() - idle0) / time.Since(t0).Seconds()
	mark := c.act.count()
	cpu0, t1 := c.cpu(), time.Now()
	do()
	for {
		time.Sleep(100 * time.Millisecond)
		last := c.act.lastAt()
		if time.Since(t1) > 2*time.Second && time.Since(last) > time.Second {
			break
		}
	}
	raw := c.cpu() - cpu0
	window := time.Since(t1).Seconds()
	after, err := c.scrape(svcReconciles, cfgReconciles)
	if err != nil {
		b.Fatal(err)
	}
	cc := changeCost{cpu: max(raw-idleRate*window, 0), raw: raw, idleRate: idleRate, window: window, kinds: map[string]int{},
		serviceReconciles: int(after[0] - before[0]), configReconciles: int(after[1] - before[1])}
	for _, e := range c.act.since(mark) {
		cc.kinds[e]++
	}
	cc.storedObjects = cc.kinds["Event created"]
	total := 0
	for _, v := range cc.kinds {
		total += v
	}
	cc.writes = func() int { return total }
	return cc
}

// activity records the writes a controller makes, as watches see them:
// Services of ns (status changes), Events of ns, IPAddressPools and
// ConfigurationStates. Creations of Services and spec changes of pools
// (the benchmark's own) are not counted.
type activity struct {
	mu   sync.Mutex
	last time.Time
	log  []string
}

func (a *activity) add(kind string) {
	a.mu.Lock()
	a.last = time.Now()
	a.log = append(a.log, kind)
	a.mu.Unlock()
}

func (a *activity) lastAt() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.last
}

func (a *activity) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.log)
}

func (a *activity) since(n int) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]string(nil), a.log[n:]...)
}

func watchActivity(b *testing.B, ctx context.Context, ns string) *activity {
	b.Helper()
	wc, err := client.NewWithWatch(restCfg, client.Options{Scheme: sch})
	if err != nil {
		b.Fatal(err)
	}
	a := &activity{}
	type target struct {
		list      client.ObjectList
		ns        string
		classify  func(watch.Event) string
		lastState map[string]string
	}
	svcState := map[string]string{}
	poolState := map[string]string{}
	targets := []target{
		{list: &corev1.ServiceList{}, ns: ns, classify: func(ev watch.Event) string {
			s, ok := ev.Object.(*corev1.Service)
			if !ok || ev.Type != watch.Modified {
				return ""
			}
			st := fmt.Sprint(s.Status.LoadBalancer.Ingress, s.Annotations)
			if svcState[s.Name] == st {
				return "" // not a status write of ours (a spec change)
			}
			svcState[s.Name] = st
			return "Service status"
		}},
		{list: &corev1.EventList{}, ns: ns, classify: func(ev watch.Event) string {
			switch ev.Type {
			case watch.Added:
				return "Event created"
			case watch.Modified:
				return "Event updated"
			}
			return ""
		}},
		{list: &v1beta1.IPAddressPoolList{}, ns: stackNS, classify: func(ev watch.Event) string {
			p, ok := ev.Object.(*v1beta1.IPAddressPool)
			if !ok || ev.Type != watch.Modified {
				return ""
			}
			st := fmt.Sprint(p.Status)
			if poolState[p.Name] == st {
				return ""
			}
			poolState[p.Name] = st
			return "IPAddressPool status"
		}},
		{list: &v1beta1.ConfigurationStateList{}, ns: stackNS, classify: func(ev watch.Event) string {
			if ev.Type == watch.Deleted {
				return ""
			}
			return "ConfigurationState"
		}},
	}
	for _, t := range targets {
		// Seed the last states so that only changes count, and start
		// from the listed resourceVersion.
		if err := wc.List(ctx, t.list, client.InNamespace(t.ns)); err != nil {
			b.Fatal(err)
		}
		switch l := t.list.(type) {
		case *corev1.ServiceList:
			for _, s := range l.Items {
				svcState[s.Name] = fmt.Sprint(s.Status.LoadBalancer.Ingress, s.Annotations)
			}
		case *v1beta1.IPAddressPoolList:
			for _, p := range l.Items {
				poolState[p.Name] = fmt.Sprint(p.Status)
			}
		}
		rv := t.list.(metav1.ListInterface).GetResourceVersion()
		go func() {
			for ctx.Err() == nil {
				w, err := wc.Watch(ctx, t.list, client.InNamespace(t.ns), &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv, AllowWatchBookmarks: true}})
				if err != nil {
					if ctx.Err() == nil && !errors.Is(err, context.Canceled) {
						b.Logf("watch %T: %v", t.list, err)
						time.Sleep(100 * time.Millisecond)
					}
					continue
				}
				for ev := range w.ResultChan() {
					if o, ok := ev.Object.(client.Object); ok {
						rv = o.GetResourceVersion()
					}
					if ev.Type == watch.Bookmark {
						continue
					}
					if k := t.classify(ev); k != "" {
						a.add(k)
					}
				}
				w.Stop()
			}
		}()
	}
	return a
}
