package e2e

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The lab benchmarks measure what a user waits for, end to end, and print
// the figures (medians as custom metrics). They run once per invocation
// whatever b.N is: each sample is seconds of real time.

// BenchmarkLabServiceToRoute: a LoadBalancer Service is created; how long
// until the router has a route for its address (first next hop) and until
// it has all of them (every node's speaker). Median of 50 Services.
func BenchmarkLabServiceToRoute(b *testing.B) {
	l := requireStack(b)
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
	fmt.Printf("lab: Service creation → route in the router, median of %d: first next hop %s, all %d next hops %s (max %s)\n",
		samples, median(first).Round(time.Millisecond), l.State.Nodes, median(all).Round(time.Millisecond), slices.Max(all).Round(time.Millisecond))
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

// BenchmarkLabL2Takeover: the elected layer-2 node's speaker is SIGKILLed;
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
		d, _, _ := l2Takeover(b, l, ns, ip, "kill")
		took = append(took, d)
	}
	b.StopTimer()
	b.ReportMetric(ms(median(took)), "ms-takeover-median")
	b.ReportMetric(ms(slices.Max(took)), "ms-takeover-max")
	fmt.Printf("lab: layer-2 takeover after SIGKILL of the elected speaker, median of %d: %s (min %s, max %s)\n",
		samples, median(took).Round(time.Millisecond), slices.Min(took).Round(time.Millisecond), slices.Max(took).Round(time.Millisecond))
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
