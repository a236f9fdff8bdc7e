package e2e

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/test/lab"
)

// The lab benchmarks measure what a user waits for, end to end, and print
// the figures (medians as custom metrics). They run once per invocation
// whatever b.N is: each sample is seconds of real time.

// BenchmarkLabServiceToRoute: a LoadBalancer Service is created; how long
// until the router has a route for its address (first next hop) and until
// it has all of them (every node's speaker). Median of 50 Services, on the
// native backend and on the FRR backend.
func BenchmarkLabServiceToRoute(b *testing.B) {
	for _, backend := range []string{"native", "frr"} {
		b.Run(backend, func(b *testing.B) {
			l := requireStack(b)
			if backend == "frr" {
				useBackend(b, l, "bgp-ecmp-bfd", "frr")
			}
			serviceToRoute(b, l, backend)
		})
	}
}

func serviceToRoute(b *testing.B, l *lab.Lab, backend string) {
	useRouter(b, l, scenarioRouter(l, "bgp-pools-sharing"))
	applyYAML(b, l, "bench-route", `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: e2e-bench, namespace: metallb-system}
spec:
  addresses: [203.0.113.128/25]
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: e2e-bench, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 198.18.0.254}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: e2e-bench, namespace: metallb-system}
spec:
  ipAddressPools: [e2e-bench]
`)
	ns := newNamespace(b, l, "bench")
	backendPod(b, l, ns, "web-1", "web", 1)
	waitSessions(b, l, nodeAddrs(allNodes(l)...), 60*time.Second)
	const samples = 50
	var first, all []time.Duration
	ctx := context.Background()
	b.ResetTimer()
	for i := range samples {
		name := fmt.Sprintf("web-%d", i)
		start := time.Now()
		lbService(b, l, ns, name, "web", nil)
		var ip string
		for ip == "" {
			svc, err := l.Kube.CoreV1().Services(ns).Get(ctx, name, metav1.GetOptions{})
			if err == nil && len(svc.Status.LoadBalancer.Ingress) > 0 {
				ip = svc.Status.LoadBalancer.Ingress[0].IP
				break
			}
			if time.Since(start) > time.Minute {
				b.Fatalf("Service %s got no address in a minute", name)
			}
			time.Sleep(10 * time.Millisecond)
		}
		prefix := ip + "/32"
		var sawFirst time.Duration
		want := nodeAddrs(allNodes(l)...)
		for {
			rt, err := l.Router.Route(ctx, prefix)
			if err == nil {
				hops := rt.NextHops()
				if len(hops) > 0 && sawFirst == 0 {
					sawFirst = time.Since(start)
				}
				if slices.Equal(hops, want) {
					first = append(first, sawFirst)
					all = append(all, time.Since(start))
					break
				}
			}
			if time.Since(start) > time.Minute {
				b.Fatalf("%s not via %v a minute after Service creation", prefix, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	b.StopTimer()
	b.ReportMetric(ms(median(first)), "ms-first-hop-median")
	b.ReportMetric(ms(median(all)), "ms-all-hops-median")
	b.ReportMetric(ms(slices.Max(all)), "ms-all-hops-max")
	fmt.Printf("lab (%s): Service creation → route in the router, median of %d: first next hop %s, all %d next hops %s (max %s)\n",
		backend, samples, median(first).Round(time.Millisecond), l.State.Nodes, median(all).Round(time.Millisecond), slices.Max(all).Round(time.Millisecond))
}

// BenchmarkLabFRRFailover runs bgp-ecmp-bfd (FRR backend, BFD 3 x 25 ms)
// and measures how long the router keeps a failed node's next hop for the
// /24: after a cut link (median of 10) and after SIGKILL of the node's FRR
// (median of 10); then the same cut without BFD, where only the hold time
// (3 s here) detects it (median of 3).
func BenchmarkLabFRRFailover(b *testing.B) {
	l := requireStack(b)
	useBackend(b, l, "bgp-ecmp-bfd", "frr")
	useECMPBFD(b, l)
	const prefix = ecmpAggregate
	ctx := context.Background()
	b.ResetTimer()
	var cut, kill, hold []time.Duration
	for i := range 10 {
		// Each cut starts from every BFD session Up: a cut while the
		// last one's session is still coming back is detected by the
		// hold time (30 s), not by BFD.
		waitBFDUp(b, l)
		cut = append(cut, cutLink(b, l, 1+i%l.State.Nodes, prefix))
	}
	for i := range 10 {
		node := 1 + i%l.State.Nodes
		k, r, _ := killContainer(b, l, node, "frr", prefix)
		kill = append(kill, r.Sub(k))
		// A fresh pod rather than the kubelet's restart, whose back-off
		// grows with every kill.
		pods, err := l.Kube.CoreV1().Pods(lab.StackNamespace).List(ctx, metav1.ListOptions{LabelSelector: "component=speaker", FieldSelector: "spec.nodeName=" + lab.NodeName(node)})
		if err == nil {
			for _, p := range pods.Items {
				_ = l.Kube.CoreV1().Pods(lab.StackNamespace).Delete(ctx, p.Name, metav1.DeleteOptions{})
			}
		}
		if err := waitAvailable(l, 2*time.Minute); err != nil {
			b.Fatal(err)
		}
		pollNextHops(b, l, prefix, nodeAddrs(allNodes(l)...), 120*time.Second)
	}
	// Without BFD: the router's side off, the peer without its profile
	// and with a 3 s hold time.
	router := scenarioRouter(l, "bgp-ecmp-bfd")
	for i := range router.Peers {
		router.Peers[i].BFD = false
	}
	useRouter(b, l, router)
	applyYAML(b, l, "no-bfd", `apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: bgp-peer, namespace: metallb-system}
spec: {myASN: 65001, peerASN: 65000, peerAddress: 198.18.0.254, holdTime: 3s, keepaliveTime: 1s}
`)
	waitNextHops(b, l, prefix, nodeAddrs(allNodes(l)...), 120*time.Second)
	// The routes are there before BFD is gone from both sides: a cut
	// made then is still detected by BFD (the router says "Cease/BFD
	// Down"), which made earlier runs' figure shorter than the hold time.
	waitNoBFD(b, l)
	var reasons []string
	for i := range 3 {
		node := 1 + i%l.State.Nodes
		// Why the router dropped the session, read while the link is
		// still cut (once the session is back, a later reset may have
		// replaced the reason).
		hold = append(hold, cutLinkAnd(b, l, node, prefix, func() {
			why, err := l.Router.LastReset(ctx, lab.NodeAddr(node))
			if err != nil {
				why = err.Error()
			}
			reasons = append(reasons, fmt.Sprintf("%s: %q", lab.NodeAddr(node), why))
		}))
	}
	b.StopTimer()
	b.ReportMetric(ms(median(cut)), "ms-bfd-linkcut-median")
	b.ReportMetric(ms(median(kill)), "ms-bfd-frrkill-median")
	b.ReportMetric(ms(median(hold)), "ms-holdtime-linkcut-median")
	fmt.Printf("lab (frr): next hop dropped by the router - link cut with BFD 3x25 ms: median of 10 %s (max %s); SIGKILL of FRR: median of 10 %s (max %s); link cut without BFD, hold time 3 s: median of 3 %s\n",
		median(cut).Round(time.Millisecond), slices.Max(cut).Round(time.Millisecond),
		median(kill).Round(time.Millisecond), slices.Max(kill).Round(time.Millisecond), median(hold).Round(time.Millisecond))
	fmt.Printf("lab (frr): the router's reason for each drop without BFD: %s\n", strings.Join(reasons, ", "))
}

// BenchmarkLabSpeakerKill: with a 3 s hold time, one speaker is SIGKILLed;
// how long until the router drops its next hop, and until the restarted
// speaker's next hop is back. Median of 5 kills over the nodes in turn.
func BenchmarkLabSpeakerKill(b *testing.B) {
	l := requireStack(b)
	ip := holdTimeSetup(b, l)
	const samples = 5
	var removed, back []time.Duration
	b.ResetTimer()
	for i := range samples {
		node := l.State.Nodes - i%l.State.Nodes
		k, r, bk := killContainer(b, l, node, "speaker", ip+"/32")
		removed = append(removed, r.Sub(k))
		back = append(back, bk.Sub(k))
	}
	b.StopTimer()
	b.ReportMetric(ms(median(removed)), "ms-kill-to-withdraw-median")
	b.ReportMetric(ms(median(back)), "ms-kill-to-reannounce-median")
	fmt.Printf("lab: speaker SIGKILL → next hop removed, median of %d: %s (max %s, hold time 3s); re-announced after restart: %s\n",
		samples, median(removed).Round(time.Millisecond), slices.Max(removed).Round(time.Millisecond), median(back).Round(time.Millisecond))
}

// BenchmarkLabL2Takeover: the elected layer-2 node's speaker hangs (its
// container frozen: a killed one is back within a second);
// how long until the client's neighbour entry names another node's MAC
// (memberlist failure detection, the new election, gratuitous ARP).
// Median of 10.
func BenchmarkLabL2Takeover(b *testing.B) {
	l := requireStack(b)
	ns, ip := l2FailoverSetup(b, l)
	const samples = 10
	var took []time.Duration
	b.ResetTimer()
	for range samples {
		d, _, _ := l2Takeover(b, l, ns, ip, "hang")
		took = append(took, d)
	}
	b.StopTimer()
	b.ReportMetric(ms(median(took)), "ms-takeover-median")
	b.ReportMetric(ms(slices.Max(took)), "ms-takeover-max")
	fmt.Printf("lab: layer-2 takeover after the elected speaker hung, median of %d: %s (min %s, max %s)\n",
		samples, median(took).Round(time.Millisecond), slices.Min(took).Round(time.Millisecond), slices.Max(took).Round(time.Millisecond))
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkLabTraffic prints what a client of the real-node lab sees:
// Service created → first successful request from the client through the
// router (median of 10), and the outage a 20 requests/s client sees
// (first failed to first successful request; median and maximum of 10)
// after SIGKILL of the layer-2 announcer's speaker, of a node's FRR with
// BFD (bgp-ecmp-bfd), and of a node's speaker on the native backend with
// a 3 s hold time and no BFD. It also prints the lab's bring-up time.
func BenchmarkLabTraffic(b *testing.B) {
	l := requireStack(b)
	fmt.Printf("lab: brought up (or reused) in %s\n", l.UpTime.Round(100*time.Millisecond))
	report := func(what string, d []time.Duration, failed []int) {
		fmt.Printf("lab: %s, 20 req/s client, outage median of %d %s (max %s; failed requests per run %v)\n",
			what, len(d), median(d).Round(time.Millisecond), slices.Max(d).Round(time.Millisecond), failed)
	}
	b.Run("service-to-curl", func(b *testing.B) {
		l := requireStack(b)
		ip := holdTimeSetup(b, l)
		_ = ip
		ns := newNamespace(b, l, "bench-curl")
		backendPod(b, l, ns, "web-1", "web", 1)
		var took []time.Duration
		for i := range 10 {
			name := fmt.Sprintf("curl-%d", i)
			start := time.Now()
			lbService(b, l, ns, name, "web", nil)
			addr := ingressIPs(b, l, ns, name, 1)[0]
			for {
				if _, err := l.Client.Get(context.Background(), addr, 80, 500*time.Millisecond); err == nil {
					break
				}
				if time.Since(start) > time.Minute {
					b.Fatalf("%s not answered a minute after its Service was created", addr)
				}
				time.Sleep(20 * time.Millisecond)
			}
			took = append(took, time.Since(start))
		}
		b.ReportMetric(ms(median(took)), "ms-service-to-curl-median")
		fmt.Printf("lab: Service created → first successful curl from the client, median of %d: %s (max %s)\n",
			len(took), median(took).Round(time.Millisecond), slices.Max(took).Round(time.Millisecond))
	})
	b.Run("layer2-speaker-kill", func(b *testing.B) {
		l := requireStack(b)
		ns, ip := l2FailoverSetup(b, l)
		var d []time.Duration
		var failed []int
		for range 10 {
			o, f := l2KillOutage(b, l, ns, ip)
			d, failed = append(d, o), append(failed, f)
		}
		b.ReportMetric(ms(median(d)), "ms-l2-outage-median")
		report("layer 2, SIGKILL of the announcing speaker", d, failed)
	})
	b.Run("bgp-bfd-frr-kill", func(b *testing.B) {
		l := requireStack(b)
		ip := bfdTrafficSetup(b, l)
		var d []time.Duration
		var failed []int
		for i := range 10 {
			o, f := bgpKillOutage(b, l, ip, ecmpAggregate, 1+i%l.State.Nodes, "frr")
			d, failed = append(d, o), append(failed, f)
		}
		b.ReportMetric(ms(median(d)), "ms-bgp-bfd-outage-median")
		report("BGP with BFD 3x25 ms, SIGKILL of a node's FRR", d, failed)
	})
	b.Run("bgp-native-speaker-kill", func(b *testing.B) {
		l := requireStack(b)
		ip := holdTimeSetup(b, l)
		var d []time.Duration
		var failed []int
		for i := range 10 {
			o, f := bgpNativeKillOutage(b, l, ip, 1+i%l.State.Nodes)
			d, failed = append(d, o), append(failed, f)
		}
		b.ReportMetric(ms(median(d)), "ms-bgp-native-outage-median")
		report("BGP without BFD (hold time 3 s, native), SIGKILL of a node's speaker", d, failed)
	})
}

// bgpNativeKillOutage kills node i's speaker (native backend) and returns
// the client's outage, then waits for its next hop to return.
func bgpNativeKillOutage(b testing.TB, l *lab.Lab, ip string, i int) (time.Duration, int) {
	ctx := context.Background()
	pods, err := l.Kube.CoreV1().Pods(lab.StackNamespace).List(ctx, metav1.ListOptions{LabelSelector: "component=speaker", FieldSelector: "spec.nodeName=" + lab.NodeName(i)})
	if err != nil || len(pods.Items) != 1 {
		b.Fatalf("speaker on %s: %v", lab.NodeName(i), err)
	}
	d, failed := outageAfter(b, l, ip, func() {
		if err := l.KillContainer(ctx, lab.StackNamespace, pods.Items[0].Name, "speaker"); err != nil {
			b.Fatal(err)
		}
	})
	_ = l.Kube.CoreV1().Pods(lab.StackNamespace).Delete(ctx, pods.Items[0].Name, metav1.DeleteOptions{})
	if err := waitAvailable(l, 2*time.Minute); err != nil {
		b.Fatal(err)
	}
	pollNextHops(b, l, ip+"/32", nodeAddrs(allNodes(l)...), 120*time.Second)
	return d, failed
}

// neighborBFD is a neighbor's BFD line in FRR's configuration.
var neighborBFD = regexp.MustCompile(`(?m)^\s*neighbor \S+ bfd\b`)

// waitNoBFD waits until no speaker's FRR configuration asks for BFD and
// the router has no BFD session left.
func waitNoBFD(t testing.TB, l *lab.Lab) {
	t.Helper()
	ctx := context.Background()
	eventually(t, 60*time.Second, "BFD off on every speaker and on the router", func() (bool, string) {
		peers, err := l.Router.BFDPeers(ctx)
		if err != nil {
			return false, err.Error()
		}
		if len(peers) > 0 {
			return false, fmt.Sprintf("the router has %d BFD peers", len(peers))
		}
		pods, err := l.Kube.CoreV1().Pods(lab.StackNamespace).List(ctx, metav1.ListOptions{LabelSelector: "component=speaker"})
		if err != nil {
			return false, err.Error()
		}
		for _, p := range pods.Items {
			conf, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "exec", p.Name, "-c", "reloader", "--", "cat", "/etc/frr/frr.conf")
			if err != nil {
				return false, err.Error()
			}
			if neighborBFD.MatchString(conf) {
				return false, p.Spec.NodeName + "'s FRR still configures BFD"
			}
		}
		return true, ""
	})
	// Every session Established again (a speaker whose BFD session went
	// down when the router removed its side resets the BGP session).
	waitSessions(t, l, nodeAddrs(allNodes(l)...), 60*time.Second)
}
