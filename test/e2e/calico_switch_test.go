package e2e

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lbstack/lbstack/test/lab"
)

// switchASN is the nodes' AS while lbstack announces (eBGP to the router's
// 65535); Calico's nodes are in 65535 themselves (iBGP, no AS path). The
// AS path of a path on the router therefore says who announced it.
const switchASN = 64512

// TestCalicoSwitch follows docs/calico.md's "Switching modes" step by step
// against the lab's router, frr → calico → frr, with a client sending 20
// requests a second to web-cluster and the router's BGP table sampled
// every 100 ms throughout. It proves the order's promise, that the router
// never holds routes from both sides at once (a path with AS path 64512 is
// lbstack's, an iBGP path with none is Calico's), that every address
// stays, and that each side takes over; it prints how long the handover's
// gap lasted, on the router and at the client.
func TestCalicoSwitch(t *testing.T) {
	l := requireStack(t)
	if l.State.Nodes < 3 {
		t.Skip("needs 3 nodes")
	}
	ctx := context.Background()
	calicoCRDs(t, l)

	// Before: lbstack announces with FRR to a router that peers with the
	// nodes as lbstack's BGPPeer says.
	calicoRouter := scenarioRouter(l, "calico-bgp")
	lbstackRouter := calicoRouter
	lbstackRouter.Peers = nil
	for _, i := range allNodes(l) {
		lbstackRouter.Peers = append(lbstackRouter.Peers, lab.RouterPeer{Address: lab.NodeAddr(i), ASN: switchASN})
	}
	useRouter(t, l, lbstackRouter)
	useBackend(t, l, "bgp-ecmp-bfd", "frr")
	backendPod(t, l, "default", "switch-web-1", "web", 1, "-tcp", "80,8080")
	backendPod(t, l, "default", "switch-web-2", "web", 2, "-tcp", "80,8080")
	backendPod(t, l, "default", "switch-dns-3", "dns", 3, "-tcp", "80", "-udp", "5353")
	applyFiles(t, l, scenarioFile("calico-bgp", "metallb-config.yaml"), scenarioFile("calico-bgp", "services.yaml"))
	applyYAML(t, l, "switch-lbstack-peer", fmt.Sprintf(`apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: switch-tor
  namespace: %s
spec:
  myASN: %d
  peerASN: 65535
  peerAddress: %s
  keepaliveTime: 3s
  holdTime: 9s
  connectTime: 5s
`, lab.StackNamespace, switchASN, lab.RouterAddr))
	addrs := map[string]string{}
	for _, name := range []string{"web-cluster", "web-local", "dns"} {
		addrs[name] = ingressIPs(t, l, "default", name, 1)[0]
	}
	cluster := addrs["web-cluster"]
	all := nodeAddrs(allNodes(l)...)
	waitNextHops(t, l, cluster+"/32", all, 90*time.Second)
	waitFIBSteady(t, l, cluster+"/32", all, 3*time.Second, 60*time.Second)
	t.Logf("before: lbstack (frr) announces %s/32 via %v", cluster, all)

	// Step 1 (to calico): Calico's BGPConfiguration without a BGPPeer for
	// the router; Calico's nodes peer with each other only.
	calicoDocs := strings.Split(string(mustRead(t, scenarioFile("calico-bgp", "calico.yaml"))), "\n---\n")
	if len(calicoDocs) != 2 || !strings.Contains(calicoDocs[0], "kind: BGPConfiguration") || !strings.Contains(calicoDocs[1], "kind: BGPPeer") {
		t.Fatalf("calico-bgp/calico.yaml: want a BGPConfiguration then a BGPPeer, got %d documents", len(calicoDocs))
	}
	applyYAML(t, l, "switch-calico-config", calicoDocs[0])
	birds := startCalicoBIRDs(t, l)
	for i, b := range birds {
		eventually(t, 60*time.Second, fmt.Sprintf("node %d: BIRD's mesh Established, no router session", i+1), func() (bool, string) {
			out, err := b.Birdc(ctx, "show", "protocols")
			if err != nil {
				return false, fmt.Sprintf("%v: %s", err, out)
			}
			return strings.Count(out, "Established") == l.State.Nodes-1, out
		})
	}

	rib := startRIBSampler(l)
	defer rib.stop()
	load := l.Client.StartLoad(cluster, 80, 20, time.Second)
	loadStopped := false
	defer func() {
		if !loadStopped {
			load.Stop()
		}
	}()
	time.Sleep(2 * time.Second)

	// Step 2: bgpBackend calico; the speakers roll out without sessions.
	toCalico := time.Now()
	useCalicoBackend(t, l)
	withdrawn := rib.waitFor(t, toCalico, 60*time.Second, "lbstack's routes withdrawn", func(s ribSample) bool { return s.lbstack == 0 })
	// Step 3: the router pointed at Calico, Calico's BGPPeer created.
	if err := l.ConfigureRouter(ctx, calicoRouter); err != nil {
		t.Fatal(err)
	}
	applyYAML(t, l, "switch-calico-peer", calicoDocs[1])
	announced := rib.waitFor(t, withdrawn, 90*time.Second, "Calico's routes", func(s ribSample) bool { return s.calico > 0 })
	waitNextHops(t, l, "203.0.113.0/26", all, 60*time.Second)
	eventually(t, 60*time.Second, "the client answered through Calico's routes", func() (bool, string) {
		_, err := l.Client.Get(ctx, cluster, 80, 3*time.Second)
		return err == nil, fmt.Sprint(err)
	})
	time.Sleep(2 * time.Second)
	toCalicoDone := time.Now()
	t.Logf("frr → calico: lbstack's last route gone %s after the switch; Calico's first route %s later (the router's gap)",
		withdrawn.Sub(toCalico).Round(100*time.Millisecond), announced.Sub(withdrawn).Round(100*time.Millisecond))
	reportClient(t, "frr → calico", load.Samples(), toCalico, toCalicoDone)

	// Back (to frr). Step 1: delete Calico's BGPPeer; Calico withdraws.
	toFRR := time.Now()
	if out, err := kubectlCombined(l, "delete", "bgppeer.crd.projectcalico.org", "tor-router"); err != nil {
		t.Fatalf("delete Calico's BGPPeer: %v\n%s", err, out)
	}
	withdrawn = rib.waitFor(t, toFRR, 60*time.Second, "Calico's routes withdrawn", func(s ribSample) bool { return s.calico == 0 })
	// Step 2: the router pointed at lbstack's BGPPeer, then bgpBackend frr.
	if err := l.ConfigureRouter(ctx, lbstackRouter); err != nil {
		t.Fatal(err)
	}
	useBackend(t, l, "bgp-ecmp-bfd", "frr")
	announced = rib.waitFor(t, withdrawn, 120*time.Second, "lbstack's routes", func(s ribSample) bool { return s.lbstack > 0 })
	waitNextHops(t, l, cluster+"/32", all, 90*time.Second)
	eventually(t, 60*time.Second, "the client answered through lbstack's routes", func() (bool, string) {
		_, err := l.Client.Get(ctx, cluster, 80, 3*time.Second)
		return err == nil, fmt.Sprint(err)
	})
	time.Sleep(2 * time.Second)
	samples := load.Stop()
	loadStopped = true
	t.Logf("calico → frr: Calico's last route gone %s after its BGPPeer's delete; lbstack's first route %s later (the router's gap)",
		withdrawn.Sub(toFRR).Round(100*time.Millisecond), announced.Sub(withdrawn).Round(100*time.Millisecond))
	reportClient(t, "calico → frr", samples, toFRR, time.Now())

	rib.logChanges(t, toCalico)

	// Exactly one side at any time, on every sample of the router.
	n, both := rib.overlaps()
	for _, s := range both {
		t.Errorf("%s: the router held routes from both sides: %d of lbstack's paths, %d of Calico's", s.at.Format("15:04:05.000"), s.lbstack, s.calico)
	}
	if n < 100 {
		t.Errorf("only %d samples of the router's table: the sampler fell behind", n)
	}
	for name, was := range addrs {
		if now := ingressIPs(t, l, "default", name, 1)[0]; now != was {
			t.Errorf("%s: %s before the switch, %s after it and back", name, was, now)
		}
	}
	eventually(t, 60*time.Second, "BGPConfiguration default without lbstack's entries", func() (bool, string) {
		out, err := l.Kubectl(ctx, "get", "bgpconfiguration.crd.projectcalico.org", "default", "-o", "jsonpath={.spec.serviceLoadBalancerIPs}{.spec.prefixAdvertisements}")
		return err == nil && out == "", fmt.Sprintf("%q %v", out, err)
	})
}

// reportClient logs what a client saw between from and to: requests,
// failures and the longest run of failed requests.
func reportClient(t testing.TB, what string, samples []lab.Sample, from, to time.Time) {
	t.Helper()
	total, failed := 0, 0
	var runStart, longestFrom time.Time
	var longest time.Duration
	for _, s := range samples {
		if s.At.Before(from) || s.At.After(to) {
			continue
		}
		total++
		if s.Err != nil {
			failed++
			if runStart.IsZero() {
				runStart = s.At
			}
			continue
		}
		if !runStart.IsZero() {
			if d := s.At.Sub(runStart); d > longest {
				longest, longestFrom = d, runStart
			}
			runStart = time.Time{}
		}
	}
	if !runStart.IsZero() {
		t.Errorf("%s: the client was still failing at the end (%d of %d requests failed)", what, failed, total)
		return
	}
	t.Logf("%s: the client sent %d requests, %d failed; longest outage %s (from %s)", what, total, failed,
		longest.Round(100*time.Millisecond), longestFrom.Format("15:04:05.0"))
}

// ribSample is one look at the router's IPv4 BGP table: how many paths
// lbstack's speakers (AS path switchASN) and Calico's nodes (iBGP, no AS
// path) gave it.
type ribSample struct {
	at              time.Time
	lbstack, calico int
}

// ribSampler reads the router's BGP table every 100 ms until stopped.
type ribSampler struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	samples []ribSample
	errs    int
}

func startRIBSampler(l *lab.Lab) *ribSampler {
	ctx, cancel := context.WithCancel(context.Background())
	r := &ribSampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			routes, err := l.Router.Routes(ctx, "ipv4")
			at := time.Now()
			r.mu.Lock()
			if err != nil {
				r.errs++
				r.mu.Unlock()
				continue
			}
			s := ribSample{at: at}
			for _, rt := range routes {
				for _, p := range rt.Paths {
					switch p.ASPath {
					case fmt.Sprint(switchASN):
						s.lbstack++
					case "":
						s.calico++
					}
				}
			}
			r.samples = append(r.samples, s)
			r.mu.Unlock()
		}
	}()
	return r
}

func (r *ribSampler) stop() {
	r.cancel()
	<-r.done
}

// waitFor waits until a sample taken at or after from satisfies ok and
// returns when the first such sample was taken.
func (r *ribSampler) waitFor(t testing.TB, from time.Time, timeout time.Duration, what string, ok func(ribSample) bool) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	seen := 0
	for time.Now().Before(deadline) {
		r.mu.Lock()
		samples := r.samples[seen:]
		seen = len(r.samples)
		r.mu.Unlock()
		for _, s := range samples {
			if !s.at.Before(from) && ok(s) {
				return s.at
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.mu.Lock()
	last := ribSample{}
	if len(r.samples) > 0 {
		last = r.samples[len(r.samples)-1]
	}
	errs := r.errs
	r.mu.Unlock()
	t.Fatalf("router: %s not seen in %s (last sample: %d of lbstack's paths, %d of Calico's; %d failed reads)", what, timeout, last.lbstack, last.calico, errs)
	return time.Time{}
}

// logChanges logs every change of the router's table from start on: the
// handovers as the router saw them.
func (r *ribSampler) logChanges(t testing.TB, start time.Time) {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var last ribSample
	var b strings.Builder
	for i, s := range r.samples {
		if s.at.Before(start) || (i > 0 && s.lbstack == last.lbstack && s.calico == last.calico) {
			last = s
			continue
		}
		fmt.Fprintf(&b, "\n  +%5.1fs  lbstack %3d  calico %3d", s.at.Sub(start).Seconds(), s.lbstack, s.calico)
		last = s
	}
	t.Logf("the router's paths, by side, at each change (%d samples, %d failed reads):%s", len(r.samples), r.errs, b.String())
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// overlaps returns how many samples were taken and those that held paths
// from both sides.
func (r *ribSampler) overlaps() (int, []ribSample) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var both []ribSample
	for _, s := range r.samples {
		if s.lbstack > 0 && s.calico > 0 {
			both = append(both, s)
		}
	}
	return len(r.samples), both
}
