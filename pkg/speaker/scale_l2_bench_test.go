package speaker_test

// BenchmarkSpeakerL2Services (issue 21, "Scale"): one speaker at scale in
// layer 2, against a real API server, answering ARP on a real link.

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mdlayher/arp"
	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/l2/election"
	"github.com/lbstack/lbstack/test/envtest"
	"github.com/lbstack/lbstack/test/lab/frrtest"
)

// l2ProbeNSEnv names, in the benchmark's child, the network namespace on
// the other end of the node's link, from which ARP is asked.
const l2ProbeNSEnv = "LBSTACK_BENCH_L2_PROBE_NS"

// speakerPodLabels select the speaker pods (l2.Options.PodLabels).
const speakerPodLabels = "app=lbstack,component=speaker"

// BenchmarkSpeakerL2Services: 10,000 LoadBalancer Services with addresses
// from a pool with an L2Advertisement (status written directly, one ready
// endpoint each on one of the nodes, externalTrafficPolicy Cluster), 50
// Nodes without kubelets, each with a speaker pod object set Running
// (that is how a speaker without memberlist tells the live speakers: the
// election spreads the addresses over all 50 nodes, this node owns about
// 1/50 of them), and the speaker of node n01 run as the process its pod
// runs (`lbstack speaker`, as BenchmarkSpeaker10000Services runs it) with
// its ARP responders on the link of the test/lab/frrtest node
// namespace (the whole benchmark runs there; the router namespace on the
// other end asks ARP, nothing leaves the lab). Once this node's
// ServiceL2Status objects are written and the speaker is idle, it changes
// Services' addresses, again and again, and prints
//
//   - the speaker's CPU time per change (its control group's over 2 s
//     after the change, less the idle rate measured just before), for a
//     change that moves a Service between two addresses other nodes own
//     (the common case: 49 of 50) and for one that moves it to an address
//     this node owns (responder, ServiceL2Status);
//   - the latency from a change to an address this node owns (before
//     the patch is sent) until this node answers ARP for it, asked from
//     the router namespace every 10 ms;
//   - the speaker's API writes per change, by verb and resource (the API
//     server's audit log), and its peak RSS;
//
// and the cold start (this node's ServiceL2Status objects written and
// ARP answered). Nothing here fails on time. Needs root (network
// namespaces, control groups), the envtest assets (and FRR, which the
// lab's router runs, idle here); skips otherwise.
//
//	LBSTACK_BENCH_SCALE=1 LBSTACK_BENCH_BINARY=$PWD/bin/lbstack go test -run '^$' -bench SpeakerL2 -timeout 60m ./pkg/speaker/
//
// LBSTACK_BENCH_SERVICES, LBSTACK_BENCH_NODES and LBSTACK_BENCH_CHANGES
// change the sizes (default 10000, 50, 10); LBSTACK_SERVICE_STATUS=off
// runs the speaker without status objects.
func BenchmarkSpeakerL2Services(b *testing.B) {
	const name = "BenchmarkSpeakerL2Services"
	if os.Getenv(childEnv) == name {
		speakerL2ScaleChild(b, os.Getenv(l2ProbeNSEnv))
		return
	}
	if os.Getenv("LBSTACK_BENCH_SCALE") == "" {
		b.Skip("set LBSTACK_BENCH_SCALE=1 to run it (about 10 minutes)")
	}
	if _, err := envtest.AssetsDir(); err != nil {
		b.Skipf("envtest assets missing (make envtest-assets): %v", err)
	}
	for range b.N {
		runInLabNode(b, name, "speaker-l2-bench", "speaker-l2-scale", "40m", func(lab *frrtest.Lab) []string {
			return []string{l2ProbeNSEnv + "=" + lab.RouterNS}
		})
	}
}

// arpProbe asks ARP from the interface of another network namespace that
// holds frrtest.RouterV4.
type arpProbe struct{ c *arp.Client }

func newARPProbe(b testing.TB, ns string) *arpProbe {
	var c *arp.Client
	// The socket is opened on a thread in the namespace, and stays there;
	// the thread is never unlocked, so the runtime ends it.
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		ifs, err := net.Interfaces()
		if err != nil {
			errc <- err
			return
		}
		for i := range ifs {
			addrs, _ := ifs[i].Addrs()
			for _, a := range addrs {
				if n, ok := a.(*net.IPNet); ok && n.IP.String() == frrtest.RouterV4 {
					c, err = arp.Dial(&ifs[i])
					errc <- err
					return
				}
			}
		}
		errc <- fmt.Errorf("no interface with %s in %s", frrtest.RouterV4, ns)
	}()
	if err := <-errc; err != nil {
		b.Fatalf("ARP probe: %v", err)
	}
	b.Cleanup(func() { _ = c.Close() })
	return &arpProbe{c: c}
}

// answered asks once who has addr and reports whether an answer came
// within wait.
func (p *arpProbe) answered(addr netip.Addr, wait time.Duration) bool {
	_ = p.c.SetDeadline(time.Now().Add(wait))
	_, err := p.c.Resolve(addr.AsSlice())
	return err == nil
}

// benchParallel runs f(0..n-1) on 32 goroutines.
func benchParallel(b *testing.B, n int, f func(i int) error) {
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

func speakerL2ScaleChild(b *testing.B, probeNS string) {
	nSvc := envtest.EnvInt("LBSTACK_BENCH_SERVICES", 10000)
	nNodes := envtest.EnvInt("LBSTACK_BENCH_NODES", 50)
	nChanges := envtest.EnvInt("LBSTACK_BENCH_CHANGES", 10)
	env, audit, c := scaleEnv(b)
	ctx := context.Background()
	ns := envtest.Namespace
	must := func(err error) {
		b.Helper()
		if err != nil {
			b.Fatal(err)
		}
	}
	probe := newARPProbe(b, probeNS)
	const me = "n01"
	setupStart := time.Now()
	nodeName := func(i int) string { return fmt.Sprintf("n%02d", i+1) }
	nodeAddr := func(i int) string {
		if i == 0 {
			return frrtest.NodeV4
		}
		return fmt.Sprintf("198.18.1.%d", i)
	}
	// Pods need their ServiceAccount (no controller-manager creates it).
	if err := c.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "default", Namespace: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		b.Fatal(err)
	}
	benchParallel(b, nNodes, func(i int) error {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: nodeName(i), Labels: map[string]string{"kubernetes.io/hostname": nodeName(i)}}}
		if err := c.Create(ctx, n); err != nil {
			return err
		}
		n.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: nodeAddr(i)}}
		if err := c.Status().Update(ctx, n); err != nil {
			return err
		}
		// The node's speaker, as its kubelet would report it: Running.
		p := &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: "speaker-" + nodeName(i), Namespace: ns, Labels: map[string]string{"app": "lbstack", "component": "speaker"}},
			Spec: corev1.PodSpec{NodeName: nodeName(i), AutomountServiceAccountToken: ptr.To(false),
				Containers: []corev1.Container{{Name: "speaker", Image: "lbstack"}}},
		}
		if err := c.Create(ctx, p); err != nil {
			return err
		}
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: nodeAddr(i), HostIP: nodeAddr(i)}
		return c.Status().Update(ctx, p)
	})
	must(c.Create(ctx, &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "pool", Namespace: ns},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.19.0.0/16"}}})) // RFC 2544 benchmarking range
	must(c.Create(ctx, &v1beta1.L2Advertisement{ObjectMeta: metav1.ObjectMeta{Name: "l2", Namespace: ns}}))
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{198, 19, byte(i / 256), byte(i % 256)}) }
	svcName := func(i int) string { return fmt.Sprintf("svc-%05d", i) }
	benchParallel(b, nSvc, func(i int) error {
		svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: svcName(i), Namespace: "default"},
			Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Port: 80}},
				AllocateLoadBalancerNodePorts: ptr.To(false)}}
		if err := c.Create(ctx, svc); err != nil {
			return err
		}
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: addr(i).String()}}
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
	fmt.Printf("speaker-l2-scale: setup: %d Services (+status, +EndpointSlice), %d Nodes with a Running speaker pod in %v (32 parallel clients); load %s\n",
		nSvc, nNodes, time.Since(setupStart).Round(time.Second), envtest.LoadAvg())

	// Who owns what: every node is a candidate (Cluster, an endpoint
	// somewhere, one advertisement for all) and every speaker is live.
	cands := make([]election.Candidate, nNodes)
	live := map[string]bool{}
	for i := range nNodes {
		cands[i] = election.Candidate{Name: nodeName(i)}
		live[nodeName(i)] = true
	}
	owner := func(a netip.Addr) string { n, _ := election.Elect(a, cands, live); return n }
	mineN := 0
	var aMine netip.Addr
	for i := range nSvc {
		if owner(addr(i)) == me {
			mineN++
			aMine = addr(i)
		}
	}
	// The changes: Services whose address another node owns, moved
	// between free addresses of the pool that another node / this node
	// owns.
	var others, mine []netip.Addr
	var movers []int
	for a := netip.AddrFrom4([4]byte{198, 19, 200, 0}); a.As4()[1] == 19 && (len(others) < nChanges || len(mine) < 2*nChanges); a = a.Next() {
		if owner(a) == me {
			mine = append(mine, a)
		} else {
			others = append(others, a)
		}
	}
	for i := 0; i < nSvc && len(movers) < nChanges; i++ {
		if owner(addr(i)) != me {
			movers = append(movers, i)
		}
	}
	if len(mine) < 2*nChanges || len(others) < nChanges || len(movers) < nChanges {
		b.Fatalf("not enough addresses or Services for %d changes", nChanges)
	}

	// The speaker: `lbstack speaker` as the speaker's service account
	// (layer 2 without memberlist: no key; the speaker pods above say who
	// is live), its writes read from the audit log.
	user, kubeconfig := speakerIdentity(b, env, c)
	writes := func() map[string]int { return audit.Writes(b, user) }
	start := time.Now()
	sp := startBenchProcess(b, b.TempDir(), "speaker", envtest.BenchCommand(b, speakerArgs(me, kubeconfig, string(v1beta1.BGPTypeNative))...))
	cpu0 := sp.CPU(b)
	statusOn := os.Getenv("LBSTACK_SERVICE_STATUS") != "off"
	frrtest.Eventually(b, 10*time.Minute, "this node's ServiceL2Status objects written and ARP answered", func() string {
		time.Sleep(time.Second)
		var l v1beta1.ServiceL2StatusList
		if err := c.List(ctx, &l, client.InNamespace(ns)); err != nil {
			return err.Error()
		}
		if statusOn && len(l.Items) < mineN {
			return fmt.Sprintf("%d of %d ServiceL2Status", len(l.Items), mineN)
		}
		if mineN > 0 && !probe.answered(aMine, time.Second) {
			return fmt.Sprintf("no ARP answer for %s", aMine)
		}
		return ""
	})
	fmt.Printf("speaker-l2-scale: cold start: this node answers for %d of %d addresses (ServiceL2Status written, ARP answered) after %v, speaker CPU %v, speaker writes %s; load %s\n",
		mineN, nSvc, time.Since(start).Round(100*time.Millisecond), (sp.CPU(b) - cpu0).Round(time.Millisecond),
		envtest.DiffWrites(writes(), nil), envtest.LoadAvg())

	// idleRate waits until the process is idle (under 20 ms of CPU per
	// second) and returns its CPU rate then.
	idleRate := func() float64 {
		for range 120 {
			c0 := sp.CPU(b)
			time.Sleep(time.Second)
			if d := sp.CPU(b) - c0; d < 20*time.Millisecond {
				return d.Seconds()
			}
		}
		b.Fatal("the speaker never became idle")
		return 0
	}
	setAddr := func(i int, a netip.Addr) {
		var svc corev1.Service
		must(c.Get(ctx, client.ObjectKey{Namespace: "default", Name: svcName(i)}, &svc))
		orig := svc.DeepCopy()
		svc.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: a.String()}}
		must(c.Status().Patch(ctx, &svc, client.MergeFrom(orig)))
	}
	// cpuOf is the speaker's CPU for one change, net of the idle rate.
	const window = 2 * time.Second
	cpuOf := func(change func()) (time.Duration, string) {
		rate := idleRate()
		w0, c0 := writes(), sp.CPU(b)
		change()
		time.Sleep(window)
		return sp.CPU(b) - c0 - time.Duration(rate*float64(window)), envtest.DiffWrites(writes(), w0)
	}
	var cpuOther, cpuMine, lats []time.Duration
	var wOther, wMine string
	for k, i := range movers {
		// Between addresses other nodes own: nothing to do here.
		cpu, w := cpuOf(func() { setAddr(i, others[k]) })
		cpuOther, wOther = append(cpuOther, cpu), w
		// To an address this node owns: answer for it, write its status.
		cpuM, w := cpuOf(func() { setAddr(i, mine[2*k]) })
		cpuMine, wMine = append(cpuMine, cpuM), w
		if !probe.answered(mine[2*k], time.Second) {
			b.Fatalf("%s: no ARP answer after %v", mine[2*k], window)
		}

		// Latency: to another address this node owns, ARP asked.
		idleRate()
		a := mine[2*k+1]
		t0 := time.Now()
		setAddr(i, a)
		for !probe.answered(a, 10*time.Millisecond) {
			if time.Since(t0) > time.Minute {
				b.Fatalf("%s never answered", a)
			}
		}
		lat := time.Since(t0)
		lats = append(lats, lat)
		fmt.Printf("speaker-l2-scale: change %d: CPU %v (another node's addresses, writes %s), %v (to this node's, writes %s); ARP answered after %v; load %s\n",
			k+1, cpu.Round(100*time.Microsecond), wOther, cpuM.Round(100*time.Microsecond), wMine, lat.Round(time.Millisecond), envtest.LoadAvg())
	}
	med := func(d []time.Duration) time.Duration { slices.Sort(d); return d[len(d)/2] }
	b.ReportMetric(float64(med(cpuOther).Microseconds())/1000, "cpu-ms/change")
	b.ReportMetric(float64(med(cpuMine).Microseconds())/1000, "cpu-ms/own-change")
	b.ReportMetric(float64(med(lats).Microseconds())/1000, "ms-to-arp")
	fmt.Printf("speaker-l2-scale: %d Services, %d Nodes, %d changes: speaker CPU per change median %v max %v (another node's addresses), median %v max %v (to this node's); change to ARP answered median %v max %v; writes per change %s / %s; %s; load %s\n",
		nSvc, nNodes, nChanges, med(cpuOther).Round(100*time.Microsecond), slices.Max(cpuOther).Round(100*time.Microsecond),
		med(cpuMine).Round(100*time.Microsecond), slices.Max(cpuMine).Round(100*time.Microsecond),
		med(lats).Round(time.Millisecond), slices.Max(lats).Round(time.Millisecond), wOther, wMine,
		fmt.Sprintf("speaker peak RSS %.1f MiB", sp.PeakRSS()), envtest.LoadAvg())
}
