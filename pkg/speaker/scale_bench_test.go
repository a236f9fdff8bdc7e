package speaker_test

// BenchmarkSpeaker10000Services (issue 21, "Scale"): one speaker at
// scale, against a real API server and a real router.

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/test/envtest"
	"github.com/lbstack/lbstack/test/lab/frrtest"
)

// BenchmarkSpeaker10000Services: 10,000 LoadBalancer Services with
// addresses (status written directly, one ready endpoint each), 50 Nodes
// without kubelets, and the speaker of one of them run as the process its
// pod runs (`lbstack speaker`, as the speaker's service account with the
// operator's RBAC; native backend, embedded GoBGP) with a BGP session to a
// real FRR router (test/lab/frrtest; the whole benchmark runs in the lab's
// node namespace, so nothing leaves the lab). Once the router has every
// route and the speaker is idle, it changes one Service's address, again
// and again, and prints
//
//   - the speaker's CPU time per change: its control group's (the process
//     and every child, in nanoseconds) over 2 s after the change, less
//     the idle rate (measured over 20 s before the changes); no router
//     polling meanwhile; each change's, their median, maximum and mean;
//   - the latency from the change (before the patch is sent) to the new
//     prefix in the router's BGP table (vtysh polled, ~10 ms granularity);
//   - the speaker's API writes per change, by verb and resource, from the
//     API server's audit log (its user's requests);
//   - the speaker process's peak RSS (VmHWM);
//
// and the cold start (every route at the router, every ServiceBGPStatus
// written). Nothing here fails on time. Needs root (network namespaces,
// control groups), FRR and the envtest assets; skips otherwise.
//
//	LBSTACK_BENCH_SCALE=1 LBSTACK_BENCH_BINARY=$PWD/bin/lbstack go test -run '^$' -bench Speaker10000 -timeout 60m ./pkg/speaker/
//
// Without LBSTACK_BENCH_BINARY the speaker is this test binary run as
// `lbstack` (same code, a larger binary). LBSTACK_BENCH_SERVICES,
// LBSTACK_BENCH_NODES and LBSTACK_BENCH_CHANGES change the sizes (default
// 10000, 50, 10); LBSTACK_SERVICE_STATUS=off runs the speaker without
// status objects; LBSTACK_BENCH_SPEAKER_PPROF=addr and
// LBSTACK_BENCH_RELOADER_PPROF=addr serve the speaker's and the
// frr-reloader's /debug/pprof there (in the node namespace) for profiles.
//
// LBSTACK_BENCH_BGP_BACKEND=frr runs the speaker with the FRR backend, as
// the frr-mode pod does: the speaker hands its state over a directory to
// `lbstack frr-reloader`, which drives a node FRR of its own (zebra, bgpd
// and bfdd started here, in the node namespace) over their vty sockets,
// with vtysh and frr-reload.py; the node FRR peers with the router. The
// CPU per change then counts the speaker, the reloader with its children
// (vtysh, python3) and the node's FRR daemons, each in a control group of
// its own. LBSTACK_BENCH_KEEP_LOG=file keeps the reloader's log (a line
// per reload) there.
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

// benchFRR is the node's FRR of the FRR backend and its reloader.
type benchFRR struct {
	handoff string
	// procs are the reloader and the daemons (zebra, bgpd, bfdd).
	procs    []*benchProcess
	reloader *benchProcess
}

// startNodeFRR starts zebra, bgpd and bfdd in this (the node's) network
// namespace with their sockets and frr.conf in a directory of their own
// under frrDir, and `lbstack frr-reloader` (its log frrDir/reloader.log,
// every reload at debug level), handing over through another directory;
// everything stops at cleanup, by PID.
func startNodeFRR(b *testing.B, frrDir string) *benchFRR {
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
	var daemons []*benchProcess
	for _, d := range []string{"zebra", "bgpd", "bfdd"} {
		args := []string{"-N", pathspace, "--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api"),
			"-i", filepath.Join(dir, d+".pid"), "-f", "/dev/null", "-P", "0",
			"-u", "frr", "-g", "frr", "--log", "stdout"}
		if d == "bfdd" {
			args = append(args, "--bfdctl", filepath.Join(dir, "bfdd.sock"))
		}
		daemons = append(daemons, startBenchProcess(b, frrDir, d, exec.Command("/usr/lib/frr/"+d, args...)))
		frrtest.Eventually(b, 15*time.Second, d+" up", func() string {
			if _, err := os.Stat(filepath.Join(dir, d+".vty")); err != nil {
				return err.Error()
			}
			return ""
		})
	}
	if keep := os.Getenv("LBSTACK_BENCH_KEEP_LOG"); keep != "" {
		// The lab's directory goes when the benchmark ends. Registered
		// before the reloader starts, this runs after it has stopped.
		b.Cleanup(func() {
			if data, err := os.ReadFile(filepath.Join(frrDir, "reloader.log")); err == nil {
				_ = os.WriteFile(keep, data, 0o644)
			}
		})
	}
	// The first reload (every route, frr-reload.py) takes minutes at
	// 10,000 routes on this machine.
	args := []string{"frr-reloader", "--log-level", "debug",
		"--frr-config", filepath.Join(dir, "frr.conf"), "--vty-socket", dir, "--handoff-dir", handoff, "--reload-timeout", "30m"}
	if addr := os.Getenv("LBSTACK_BENCH_RELOADER_PPROF"); addr != "" {
		args = append(args, "--pprof-bind-address", addr)
	}
	reloader := startBenchProcess(b, frrDir, "reloader", envtest.BenchCommand(b, args...))
	f.procs, f.reloader = append([]*benchProcess{reloader}, daemons...), reloader
	return f
}

func speakerScaleChild(b *testing.B, frrDir string) {
	nSvc := envtest.EnvInt("LBSTACK_BENCH_SERVICES", 10000)
	nNodes := envtest.EnvInt("LBSTACK_BENCH_NODES", 50)
	nChanges := envtest.EnvInt("LBSTACK_BENCH_CHANGES", 10)
	router := frrtest.Router{T: b, Dir: frrDir}
	// Room for the Services' cluster IPs (their node ports are off).
	env, audit, c := scaleEnv(b)
	ctx := context.Background()
	ns := envtest.Namespace
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

	// The speaker: `lbstack speaker` as the speaker's service account, its
	// writes read from the audit log.
	user, kubeconfig := speakerIdentity(b, env, c)
	writes := func() map[string]int { return audit.Writes(b, user) }
	backend := os.Getenv("LBSTACK_BENCH_BGP_BACKEND")
	if backend == "" {
		backend = string(v1beta1.BGPTypeNative)
	}
	var more []string
	if addr := os.Getenv("LBSTACK_BENCH_SPEAKER_PPROF"); addr != "" {
		// Profiles of the speaker while the benchmark runs (tuning):
		// go tool pprof http://ADDR/debug/pprof/profile?seconds=60 from
		// the node namespace (ip netns exec).
		more = append(more, "--pprof-bind-address", addr)
	}
	// procs are the processes whose CPU counts: the speaker and, with the
	// FRR backend, the frr-reloader and the node's FRR daemons.
	var procs []*benchProcess
	var reloader *benchProcess
	// idleMax is the CPU rate under which the speaker counts as idle.
	idleMax := 20 * time.Millisecond
	switch backend {
	case string(v1beta1.BGPTypeNative):
	case string(v1beta1.BGPTypeFRR):
		nodeFRR := startNodeFRR(b, frrDir)
		procs, reloader = append(procs, nodeFRR.procs...), nodeFRR.reloader
		more = append(more, "--frr-handoff-dir", nodeFRR.handoff)
		// The reloader reports FRR's sessions every second (one vtysh)
		// and polls the handoff; bgpd and zebra have timers of their own.
		idleMax = 150 * time.Millisecond
	default:
		b.Fatalf("LBSTACK_BENCH_BGP_BACKEND=%q: native or frr", backend)
	}
	start := time.Now()
	sp := startBenchProcess(b, frrDir, "speaker", envtest.BenchCommand(b, speakerArgs("n01", kubeconfig, backend, more...)...))
	procs = append([]*benchProcess{sp}, procs...)
	// cpuByProc is the CPU of each process (in procs' order), every child
	// included; cpuTime, their sum, is the speaker's CPU: its process's
	// and, with the FRR backend, its reloader's and FRR's.
	cpuByProc := func(b *testing.B) []time.Duration {
		out := make([]time.Duration, len(procs))
		for i, p := range procs {
			out[i] = p.CPU(b)
		}
		return out
	}
	total := func(ds []time.Duration) (t time.Duration) {
		for _, d := range ds {
			t += d
		}
		return t
	}
	cpuTime := func(b *testing.B) time.Duration { return total(cpuByProc(b)) }
	// peakRSS is the speaker process's own peak resident set (and its
	// reloader's).
	peakRSS := func() string {
		out := fmt.Sprintf("speaker peak RSS %.1f MiB", sp.PeakRSS())
		if reloader != nil {
			out += fmt.Sprintf(" (frr-reloader %.1f MiB)", reloader.PeakRSS())
		}
		return out
	}
	cpu0 := cpuTime(b)
	statusOn := os.Getenv("LBSTACK_SERVICE_STATUS") != "off"
	coldStart := 10 * time.Minute
	if backend == string(v1beta1.BGPTypeFRR) {
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
	fmt.Printf("speaker-scale: cold start: %d routes at the router and statuses written after %v, speaker CPU %v, speaker writes %s; %s; load %s\n",
		nSvc, time.Since(start).Round(100*time.Millisecond), (cpuTime(b) - cpu0).Round(time.Millisecond),
		envtest.DiffWrites(writes(), nil), peakRSS(), envtest.LoadAvg())

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
	// The idle rate subtracted from each change's window: measured over
	// 20 s once the speaker is idle. The FRR backend's idle work is
	// periodic (the reloader reports FRR's sessions every second, about
	// 7 ms with bgpd's answer), so a 2 s window holds one report more or
	// less than the rate says, and one change's figure is that noisy; the
	// mean over all changes (below) is not.
	idleRate()
	const idleSpan = 20 * time.Second
	i0 := cpuTime(b)
	time.Sleep(idleSpan)
	rate := (cpuTime(b) - i0).Seconds() / idleSpan.Seconds()
	const window = 2 * time.Second
	var cpus, lats []time.Duration
	var sum time.Duration
	var lastWrites string
	for k := range nChanges {
		// CPU: a change, then nothing but waiting.
		idleRate()
		w0, p0 := writes(), cpuByProc(b)
		setAddr(k, fmt.Sprintf("198.19.250.%d", k))
		time.Sleep(window)
		p1 := cpuByProc(b)
		cpu := total(p1) - total(p0) - time.Duration(rate*float64(window))
		sum += cpu
		split := ""
		if len(procs) > 1 {
			// Not less the idle rate: where the time went.
			var ps []string
			for i := range procs {
				ps = append(ps, fmt.Sprintf("%s %v", procs[i].name, (p1[i]-p0[i]).Round(100*time.Microsecond)))
			}
			split = " [" + strings.Join(ps, ", ") + " in the window]"
		}
		cpus = append(cpus, cpu)
		lastWrites = envtest.DiffWrites(writes(), w0)

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
		fmt.Printf("speaker-scale: change %d: CPU %v%s, writes %s; address back: at the router after %v; load %s\n",
			k+1, cpu.Round(100*time.Microsecond), split, lastWrites, lat.Round(time.Millisecond), envtest.LoadAvg())
	}
	slices.Sort(cpus)
	slices.Sort(lats)
	mean := sum / time.Duration(len(cpus))
	b.ReportMetric(float64(cpus[len(cpus)/2].Microseconds())/1000, "cpu-ms/change")
	b.ReportMetric(float64(mean.Microseconds())/1000, "mean-cpu-ms/change")
	b.ReportMetric(float64(lats[len(lats)/2].Microseconds())/1000, "ms-to-router")
	fmt.Printf("speaker-scale: %s backend, %d Services, %d Nodes, one Service's address changed %d times: speaker CPU per change mean %v, median %v, max %v (idle rate %v/s over %v subtracted); change to route at the router median %v max %v; speaker writes per change %s; %s; load %s\n",
		backend, nSvc, nNodes, nChanges, mean.Round(100*time.Microsecond), cpus[len(cpus)/2].Round(100*time.Microsecond), cpus[len(cpus)-1].Round(100*time.Microsecond),
		time.Duration(rate*float64(time.Second)).Round(100*time.Microsecond), idleSpan,
		lats[len(lats)/2].Round(time.Millisecond), lats[len(lats)-1].Round(time.Millisecond), lastWrites, peakRSS(), envtest.LoadAvg())
}

// scaleEnv starts the API server of a scale benchmark (room for the
// Services' cluster IPs; their node ports are off) with its audit log of
// writes, and a client without a client-side rate limit for the setup.
func scaleEnv(b *testing.B) (*envtest.Env, *envtest.AuditLog, client.Client) {
	audit, args := envtest.NewAuditLog(b)
	args["service-cluster-ip-range"] = "10.96.0.0/16"
	env := envtest.StartWith(b, envtest.Options{APIServerArgs: args})
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 5000, 5000
	c, err := client.New(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	return env, audit, c
}
