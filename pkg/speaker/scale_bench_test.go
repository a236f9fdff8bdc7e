package speaker_test

// BenchmarkSpeaker10000Services (issue 21, "Scale"): one speaker at
// scale, against a real API server and a real router.

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/go-logr/logr/funcr"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/bgp/frr"
	"github.com/lbstack/lbstack/pkg/speaker"
	"github.com/lbstack/lbstack/test/envtest"
	"github.com/lbstack/lbstack/test/lab/frrtest"
)

// BenchmarkSpeaker10000Services: 10,000 LoadBalancer Services with
// addresses (status written directly, one ready endpoint each), 50 Nodes
// without kubelets, and the speaker of one of them running in this
// process (native backend, embedded GoBGP) with a BGP session to a real
// FRR router (test/lab/frrtest; the whole benchmark runs in the lab's
// node namespace, so nothing leaves the lab). Once the router has every
// route and the speaker is idle, it changes one Service's address, again
// and again, and prints
//
//   - the speaker's CPU time per change: this process's user+system time
//     (getrusage) over 2 s after the change, less the idle rate measured
//     just before; no router polling meanwhile. The process is the speaker
//     and this benchmark's one client (one status patch per change);
//   - the latency from the change (before the patch is sent) to the new
//     prefix in the router's BGP table (vtysh polled, ~10 ms granularity);
//   - the speaker's API writes per change, by verb and resource;
//
// and the cold start (every route at the router, every ServiceBGPStatus
// written). Nothing here fails on time. Needs root (network namespaces),
// FRR and the envtest assets; skips otherwise.
//
//	LBSTACK_BENCH_SCALE=1 go test -run '^$' -bench Speaker10000 -timeout 60m ./pkg/speaker/
//
// LBSTACK_BENCH_SERVICES, LBSTACK_BENCH_NODES and LBSTACK_BENCH_CHANGES
// change the sizes (default 10000, 50, 10); LBSTACK_SERVICE_STATUS=off
// runs the speaker without status objects; LBSTACK_BENCH_CPUPROFILE=file
// writes a CPU profile of the changes.
//
// LBSTACK_BENCH_BGP_BACKEND=frr runs the speaker with the FRR backend, as
// the frr-mode pod does: the speaker hands its state over a directory to
// the frr-reloader (frr.RunSidecar, run in this process), which drives a
// node FRR of its own (zebra, bgpd and bfdd started here, in the node
// namespace) with vtysh and frr-reload.py; the node FRR peers with the
// router. The CPU per change then counts this process (speaker, reloader,
// client), its finished children (vtysh, python3) and the node's FRR
// daemons (/proc/PID/task/*/schedstat, every thread, in nanoseconds).
// LBSTACK_BENCH_KEEP_LOG=file keeps the reloader's log (a line per
// reload) there.
func BenchmarkSpeaker10000Services(b *testing.B) {
	const name = "BenchmarkSpeaker10000Services"
	if os.Getenv(childEnv) == name {
		speakerScaleChild(b, os.Getenv(frrDirEnv))
		return
	}
	if os.Getenv("LBSTACK_BENCH_SCALE") == "" {
		b.Skip("set LBSTACK_BENCH_SCALE=1 to run it (10 to 15 minutes; make bench-scale)")
	}
	if _, err := envtest.AssetsDir(); err != nil {
		b.Skipf("envtest assets missing (make envtest-assets): %v", err)
	}
	for range b.N {
		runInLabNode(b, name, "speaker-bench", "speaker-scale", "30m", func(lab *frrtest.Lab) []string {
			return []string{frrDirEnv + "=" + lab.Dir}
		})
	}
}

// runInLabNode runs benchmark name again, as a child of this test binary,
// in the node namespace of a new FRR lab (test/lab/frrtest) with
// childEnv=name and the variables env gives, logging to log in the lab's
// directory, and prints the child's lines that start with prefix.
func runInLabNode(b *testing.B, name, log, prefix, timeout string, env func(*frrtest.Lab) []string) {
	b.Helper()
	lab := frrtest.Start(b, "")
	// See inNodeNamespace: kube-apiserver wants a default route.
	if out, err := exec.Command("ip", "-n", lab.NodeNS, "route", "add", "default", "dev", lab.NodeLink).CombinedOutput(); err != nil {
		b.Fatalf("default route in %s: %v\n%s", lab.NodeNS, err, out)
	}
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	cmd := lab.StartInNode(log, append([]string{childEnv + "=" + name}, env(lab)...),
		exe, "-test.run=^$", "-test.bench=^"+name+"$", "-test.benchtime=1x", "-test.v", "-test.timeout="+timeout)
	if err := cmd.Wait(); err != nil {
		out, _ := os.ReadFile(lab.Dir + "/" + log + ".log")
		b.Fatalf("the benchmark in the node namespace failed (%v):\n%s", err, out)
	}
	out, err := os.ReadFile(lab.Dir + "/" + log + ".log")
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, prefix) {
			fmt.Println(l)
		}
	}
}

// selfCPU is this process's user+system CPU time.
func selfCPU(b *testing.B) time.Duration { return rusage(b, syscall.RUSAGE_SELF) }

// childrenCPU is the user+system CPU time of this process's children
// that ended and were waited for (vtysh, frr-reload.py).
func childrenCPU(b *testing.B) time.Duration { return rusage(b, syscall.RUSAGE_CHILDREN) }

func rusage(b *testing.B, who int) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(who, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchFRR is the node's FRR of the FRR backend and its reloader.
type benchFRR struct {
	handoff string
	pids    []int
	names   []string
}

// cpu is the CPU time of the node's FRR daemons so far, every thread,
// from the scheduler's nanosecond counters (/proc/PID/stat counts 10 ms
// ticks, too coarse for one change).
func (f *benchFRR) cpu(b *testing.B) time.Duration {
	var total time.Duration
	for _, d := range f.each(b) {
		total += d
	}
	return total
}

// each is cpu by daemon (in names' order).
func (f *benchFRR) each(b *testing.B) []time.Duration {
	out := make([]time.Duration, len(f.pids))
	for i, pid := range f.pids {
		tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
		if err != nil {
			b.Fatalf("FRR daemon %d: %v", pid, err)
		}
		for _, task := range tasks {
			raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/schedstat", pid, task.Name()))
			if err != nil {
				continue // the thread ended
			}
			var ns int64
			if _, err := fmt.Sscan(string(raw), &ns); err != nil {
				b.Fatalf("/proc/%d/task/%s/schedstat: %q", pid, task.Name(), raw)
			}
			out[i] += time.Duration(ns)
		}
	}
	return out
}

// startNodeFRR starts zebra, bgpd and bfdd in this (the node's) network
// namespace with their sockets and frr.conf in a directory of their own
// under frrDir, and the frr-reloader in this process, handing over
// through another directory; everything stops when ctx ends or at
// cleanup, by PID.
func startNodeFRR(b *testing.B, frrDir string, ctx context.Context) *benchFRR {
	dir, handoff := filepath.Join(frrDir, "node"), filepath.Join(frrDir, "handoff")
	for _, d := range []string{dir, handoff} {
		if err := os.Mkdir(d, 0o755); err != nil {
			b.Fatal(err)
		}
	}
	u, err := user.Lookup("frr")
	if err != nil {
		b.Skipf("needs the frr user: %v", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vtysh.conf"), nil, 0o644); err != nil {
		b.Fatal(err)
	}
	f := &benchFRR{handoff: handoff}
	pathspace := fmt.Sprintf("lbs-bench-%d", os.Getpid())
	b.Cleanup(func() { _ = os.RemoveAll(filepath.Join("/run/frr", pathspace)) })
	for _, d := range []string{"zebra", "bgpd", "bfdd"} {
		args := []string{"-N", pathspace, "--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api"),
			"-i", filepath.Join(dir, d+".pid"), "-f", "/dev/null", "-P", "0",
			"-u", "frr", "-g", "frr", "--log", "stdout"}
		if d == "bfdd" {
			args = append(args, "--bfdctl", filepath.Join(dir, "bfdd.sock"))
		}
		log, err := os.Create(filepath.Join(frrDir, "node-"+d+".log"))
		if err != nil {
			b.Fatal(err)
		}
		cmd := exec.Command("/usr/lib/frr/"+d, args...)
		cmd.Stdout, cmd.Stderr = log, log
		if err := cmd.Start(); err != nil {
			b.Fatalf("start %s: %v", d, err)
		}
		log.Close()
		exited := make(chan struct{})
		go func() { _ = cmd.Wait(); close(exited) }()
		b.Cleanup(func() {
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				_ = cmd.Process.Kill()
				<-exited
			}
		})
		f.pids, f.names = append(f.pids, cmd.Process.Pid), append(f.names, d)
		frrtest.Eventually(b, 15*time.Second, d+" up", func() string {
			if _, err := os.Stat(filepath.Join(dir, d+".vty")); err != nil {
				return err.Error()
			}
			return ""
		})
	}
	// The reloader's log (every reload at V(1)) goes to frrDir/reloader.log.
	rlog, err := os.Create(filepath.Join(frrDir, "reloader.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		rlog.Close()
		if keep := os.Getenv("LBSTACK_BENCH_KEEP_LOG"); keep != "" {
			// The lab's directory goes at cleanup.
			if data, err := os.ReadFile(rlog.Name()); err == nil {
				_ = os.WriteFile(keep, data, 0o644)
			}
		}
	})
	var logMu sync.Mutex
	log := funcr.New(func(prefix, args string) {
		logMu.Lock()
		defer logMu.Unlock()
		fmt.Fprintln(rlog, time.Now().Format("15:04:05.000"), prefix, args)
	}, funcr.Options{Verbosity: 1})
	reloaderDone := make(chan error, 1)
	go func() {
		reloaderDone <- frr.RunSidecar(ctx, frr.SidecarOptions{Config: filepath.Join(dir, "frr.conf"), VtySocket: dir,
			Handoff: handoff, Log: log,
			// The first reload (every route, frr-reload.py) takes minutes
			// at 10,000 routes on this machine.
			ReloadTimeout: 30 * time.Minute})
	}()
	b.Cleanup(func() {
		select {
		case err := <-reloaderDone:
			if err != nil {
				b.Errorf("frr-reloader: %v", err)
			}
		case <-time.After(30 * time.Second):
			b.Error("frr-reloader did not stop")
		}
	})
	return f
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

func diffWrites(after, before map[string]int) string {
	var parts []string
	total := 0
	for k, v := range after {
		if d := v - before[k]; d != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, d))
			total += d
		}
	}
	slices.Sort(parts)
	if len(parts) == 0 {
		return "none"
	}
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func speakerScaleChild(b *testing.B, frrDir string) {
	nSvc := envtest.EnvInt("LBSTACK_BENCH_SERVICES", 10000)
	nNodes := envtest.EnvInt("LBSTACK_BENCH_NODES", 50)
	nChanges := envtest.EnvInt("LBSTACK_BENCH_CHANGES", 10)
	router := frrtest.Router{T: b, Dir: frrDir}
	// Room for the Services' cluster IPs (their node ports are off).
	env := envtest.StartWith(b, envtest.Options{APIServerArgs: map[string]string{"service-cluster-ip-range": "10.96.0.0/16"}})
	ctx := context.Background()
	ns := envtest.Namespace
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 5000, 5000
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	must := func(err error) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
	}
	parallel := func(n int, f func(i int) error) {
		var wg sync.WaitGroup
		var next atomic.Int64
		errs := make(chan error, 32)
		for range 32 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
					if err := f(i); err != nil {
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
	}
	setupStart := time.Now()
	nodeName := func(i int) string { return fmt.Sprintf("n%02d", i+1) }
	parallel(nNodes, func(i int) error {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName(i), Labels: map[string]string{"kubernetes.io/hostname": nodeName(i)}}}
		if err := c.Create(ctx, n); err != nil {
			return err
		}
		addr := frrtest.NodeV4
		if i > 0 {
			addr = fmt.Sprintf("198.18.1.%d", i)
		}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: addr}}
		return c.Status().Update(ctx, n)
	})
	must(c.Create(ctx, &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "pool", Namespace: ns},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.19.0.0/16"}}})) // RFC 2544 benchmarking range
	must(c.Create(ctx, &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "adv", Namespace: ns}}))
	must(c.Create(ctx, &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "router", Namespace: ns},
		Spec: v1beta2.BGPPeerSpec{MyASN: frrtest.NodeAS, ASN: frrtest.RouterAS, Address: frrtest.RouterV4,
			ConnectTime: &metav1.Duration{Duration: time.Second}}}))
	addr := func(i int) string { return netip.AddrFrom4([4]byte{198, 19, byte(i / 256), byte(i % 256)}).String() }
	svcName := func(i int) string { return fmt.Sprintf("svc-%05d", i) }
	parallel(nSvc, func(i int) error {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: svcName(i), Namespace: "default"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}},
				AllocateLoadBalancerNodePorts: ptr.To(false)}}
		if err := c.Create(ctx, svc); err != nil {
			return err
		}
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: addr(i)}}
		if err := c.Status().Update(ctx, svc); err != nil {
			return err
		}
		return c.Create(ctx, &discoveryv1.EndpointSlice{
			ObjectMeta:  metav1.ObjectMeta{Name: svcName(i) + "-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: svcName(i)}},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints: []discoveryv1.Endpoint{{Addresses: []string{"10.0.0.1"}, NodeName: ptr.To(nodeName(i % nNodes)),
				Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		})
	})
	fmt.Printf("speaker-scale: setup: %d Services (+status, +EndpointSlice), %d Nodes in %v (32 parallel clients); load %s\n",
		nSvc, nNodes, time.Since(setupStart).Round(time.Second), envtest.LoadAvg())

	// The speaker, in this process, with a client that counts its writes.
	writes := &writeCounter{n: map[string]int{}}
	spCfg := rest.CopyConfig(env.Config)
	spCfg.WrapTransport = writes.wrap
	// The lbstack speaker command leaves client-go's default (5 writes per
	// second, bursts of 10); at that rate the cold start's status objects
	// alone would take an hour here, so the benchmark allows more.
	spCfg.QPS, spCfg.Burst = 500, 1000
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	spOpts := speaker.Options{NodeName: "n01", Namespace: ns, BGPBackend: v1beta1.BGPTypeNative, Resync: time.Hour}
	// cpuTime is the speaker's CPU: this process's, plus, with the FRR
	// backend, that of its FRR and of the commands run for it.
	cpuTime := func(b *testing.B) time.Duration { return selfCPU(b) }
	// parts splits the CPU time (frr backend): this process, its children,
	// each daemon.
	var parts func(b *testing.B) []time.Duration
	var partNames []string
	// idleMax is the CPU rate under which the speaker counts as idle.
	idleMax := 20 * time.Millisecond
	if backend := os.Getenv("LBSTACK_BENCH_BGP_BACKEND"); backend == "frr" {
		nodeFRR := startNodeFRR(b, frrDir, runCtx)
		spOpts.BGPBackend, spOpts.FRRHandoffDir = v1beta1.BGPTypeFRR, nodeFRR.handoff
		cpuTime = func(b *testing.B) time.Duration { return selfCPU(b) + childrenCPU(b) + nodeFRR.cpu(b) }
		partNames = append([]string{"process", "children"}, nodeFRR.names...)
		parts = func(b *testing.B) []time.Duration {
			return append([]time.Duration{selfCPU(b), childrenCPU(b)}, nodeFRR.each(b)...)
		}
		// The reloader reports FRR's sessions every second (one vtysh)
		// and polls the handoff; bgpd and zebra have timers of their own.
		idleMax = 150 * time.Millisecond
	} else if backend != "" && backend != "native" {
		b.Fatalf("LBSTACK_BENCH_BGP_BACKEND=%q: native or frr", backend)
	}
	// The speaker's memory: this process's peak RSS from here (the setup's
	// garbage collected and returned first), which also counts the
	// benchmark's client and its watch.
	runtime.GC()
	debug.FreeOSMemory()
	if err := envtest.ResetPeakRSS(); err != nil {
		b.Logf("cannot reset the peak RSS (%v): the figure covers the setup too", err)
	}
	rssBase, _ := envtest.StatusKB("/proc/self/status", "VmRSS")
	peakRSS := func() string {
		hwm, _ := envtest.StatusKB("/proc/self/status", "VmHWM")
		return fmt.Sprintf("peak RSS %.1f MiB since the speaker's start (%.1f MiB before it; speaker and this benchmark's client)", float64(hwm)/1024, float64(rssBase)/1024)
	}
	start, cpu0 := time.Now(), cpuTime(b)
	go func() {
		done <- speaker.RunProcess(runCtx, spCfg, speaker.ProcessOptions{
			Speaker: spOpts,
			Metrics: metricsserver.Options{BindAddress: "0"}, HealthAddr: "0",
		})
	}()
	b.Cleanup(func() {
		stop()
		select {
		case err := <-done:
			if err != nil {
				b.Errorf("speaker: %v", err)
			}
		case <-time.After(30 * time.Second):
			b.Error("speaker did not stop")
		}
	})
	statusOn := os.Getenv("LBSTACK_SERVICE_STATUS") != "off"
	coldStart := 10 * time.Minute
	if spOpts.BGPBackend == v1beta1.BGPTypeFRR {
		// Before route tags FRR 8.4 took every route as a prefix-list
		// entry, one northbound commit each over the whole configuration:
		// the first load was quadratic (2,000 routes about 100 s of CPU
		// per daemon here). With tags a route is one network statement in
		// bgpd; the margin stays for FRR images that load slower.
		coldStart = 60 * time.Minute
	}
	frrtest.Eventually(b, coldStart, "every route at the router and every ServiceBGPStatus written", func() string {
		time.Sleep(time.Second)
		if got := len(router.Prefixes("ipv4")); got < nSvc {
			return fmt.Sprintf("%d of %d prefixes at the router", got, nSvc)
		}
		if !statusOn {
			return ""
		}
		var l v1beta1.ServiceBGPStatusList
		if err := c.List(ctx, &l, client.InNamespace(ns)); err != nil {
			return err.Error()
		}
		if len(l.Items) < nSvc {
			return fmt.Sprintf("%d of %d ServiceBGPStatus", len(l.Items), nSvc)
		}
		return ""
	})
	fmt.Printf("speaker-scale: cold start: %d routes at the router and statuses written after %v, speaker+client CPU %v, speaker writes %s; %s; load %s\n",
		nSvc, time.Since(start).Round(100*time.Millisecond), (cpuTime(b) - cpu0).Round(time.Millisecond),
		diffWrites(writes.snapshot(), nil), peakRSS(), envtest.LoadAvg())

	// idleRate waits until the process is idle (under idleMax of CPU per
	// second) and returns its CPU rate then. A backend that never gets
	// that idle (frr-reload.py's FRR before the route edits) gets the
	// median of its last five seconds after 20 s.
	idleRate := func() float64 {
		var last []time.Duration
		for i := range 120 {
			c0 := cpuTime(b)
			time.Sleep(time.Second)
			d := cpuTime(b) - c0
			if d < idleMax {
				return d.Seconds()
			}
			last = append(last, d)
			if i >= 19 {
				r := slices.Clone(last[len(last)-5:])
				slices.Sort(r)
				return r[2].Seconds()
			}
		}
		b.Fatal("the speaker never became idle")
		return 0
	}
	setAddr := func(i int, ip string) {
		var svc corev1.Service
		must(c.Get(ctx, client.ObjectKey{Namespace: "default", Name: svcName(i)}, &svc))
		orig := svc.DeepCopy()
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: ip}}
		must(c.Status().Patch(ctx, &svc, client.MergeFrom(orig)))
	}
	if path := os.Getenv("LBSTACK_BENCH_CPUPROFILE"); path != "" {
		// A CPU profile of the changes (tuning).
		f, err := os.Create(path)
		must(err)
		must(pprof.StartCPUProfile(f))
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	const window = 2 * time.Second
	var cpus, lats []time.Duration
	var lastWrites string
	for k := range nChanges {
		// CPU: a change, then nothing but waiting.
		rate := idleRate()
		var p0 []time.Duration
		if parts != nil {
			p0 = parts(b)
		}
		w0, c0 := writes.snapshot(), cpuTime(b)
		setAddr(k, fmt.Sprintf("198.19.250.%d", k))
		time.Sleep(window)
		cpu := cpuTime(b) - c0 - time.Duration(rate*float64(window))
		split := ""
		if parts != nil {
			// Not less the idle rate: where the time went.
			var ps []string
			for i, d := range parts(b) {
				ps = append(ps, fmt.Sprintf("%s %v", partNames[i], (d-p0[i]).Round(100*time.Microsecond)))
			}
			split = " [" + strings.Join(ps, ", ") + " in the window]"
		}
		cpus = append(cpus, cpu)
		lastWrites = diffWrites(writes.snapshot(), w0)

		// Latency: another change (back), the router polled.
		idleRate()
		prefix := addr(k) + "/32"
		t0 := time.Now()
		setAddr(k, addr(k))
		for len(router.Paths(prefix)) == 0 {
			if time.Since(t0) > time.Minute {
				b.Fatalf("%s never reached the router", prefix)
			}
			time.Sleep(5 * time.Millisecond)
		}
		lat := time.Since(t0)
		lats = append(lats, lat)
		fmt.Printf("speaker-scale: change %d: CPU %v (idle rate %v/s subtracted)%s, writes %s; address back: at the router after %v; load %s\n",
			k+1, cpu.Round(100*time.Microsecond), time.Duration(rate*float64(time.Second)).Round(100*time.Microsecond), split, lastWrites, lat.Round(time.Millisecond), envtest.LoadAvg())
	}
	slices.Sort(cpus)
	slices.Sort(lats)
	b.ReportMetric(float64(cpus[len(cpus)/2].Microseconds())/1000, "cpu-ms/change")
	b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "ms-to-router")
	fmt.Printf("speaker-scale: %s backend, %d Services, %d Nodes, one Service's address changed %d times: speaker CPU per change median %v max %v; change to route at the router median %v max %v; speaker writes per change %s; %s; load %s\n",
		spOpts.BGPBackend, nSvc, nNodes, nChanges, cpus[len(cpus)/2].Round(100*time.Microsecond), cpus[len(cpus)-1].Round(100*time.Microsecond),
		lats[len(lats)/2].Round(time.Millisecond), lats[len(lats)-1].Round(time.Millisecond), lastWrites, peakRSS(), envtest.LoadAvg())
}
