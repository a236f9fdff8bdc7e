package e2e

// Traffic end to end: a client behind the router sends requests to the
// Services' addresses and the lab's web server pods answer, saying who
// answered and whom they saw. Outage figures are logged here; `make bench`
// prints their medians and maxima (BenchmarkLabOutages).

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/test/lab"
)

// answersFrom sends n requests from the client to addr:80 and returns the
// answers by the node of the pod that answered.
func answersFrom(t testing.TB, l *lab.Lab, addr string, n int) (map[string]int, []lab.Answer) {
	t.Helper()
	byNode := map[string]int{}
	var all []lab.Answer
	failed := 0
	var lastErr error
	for range n {
		a, err := l.Client.Get(context.Background(), addr, 80, 3*time.Second)
		if err != nil {
			failed++
			lastErr = err
			continue
		}
		byNode[a.Node]++
		all = append(all, a)
	}
	if failed > 0 {
		t.Errorf("%d of %d requests to %s failed (last: %v)", failed, n, addr, lastErr)
	}
	return byNode, all
}

// frrTrafficECMP (TestBGP/frr/TrafficECMP) runs bgp-ecmp-bfd as written (FRR backend, BFD): the
// client's requests to the Service address are answered, 300 of them by
// pods on at least two nodes (the router's ECMP over the nodes, each
// node's kube-proxy to its local pods: externalTrafficPolicy Local), and
// every pod sees the client's own address. A Cluster Service whose only
// pod is on node 1 is answered through the other nodes too, the pod then
// seeing a node's address (kube-proxy masquerades what it forwards).
func frrTrafficECMP(t *testing.T, l *lab.Lab, _ string) {
	if l.State.Nodes < 3 {
		t.Skip("needs 3 nodes")
	}
	ctx := context.Background()
	useECMPBFD(t, l)
	ip := ingressIPs(t, l, "default", "my-nginx-svc", 1)[0]
	eventually(t, 90*time.Second, "every nginx pod ready", func() (bool, string) {
		pods, err := l.Kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=nginx"})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, p := range pods.Items {
			if podReady(&p) {
				ready++
			}
		}
		return ready == 6, fmt.Sprintf("%d of 6", ready)
	})
	// The scenario's pods carry no NODE_NAME: the pod's name says where
	// it runs.
	nodeOf := map[string]string{}
	pods, err := l.Kube.CoreV1().Pods("default").List(ctx, metav1.ListOptions{LabelSelector: "app=nginx"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		nodeOf[p.Name] = p.Spec.NodeName
	}
	// The router's BGP table had every node before the pods were ready;
	// what the client meets is the router's kernel FIB, and the pods
	// starting load the lab enough for 75 ms BFD sessions to flap and
	// come back meanwhile: measure from a FIB that holds every node.
	waitFIBSteady(t, l, ecmpAggregate, nodeAddrs(allNodes(l)...), 3*time.Second, 90*time.Second)
	_, answers := answersFrom(t, l, ip, 300)
	perNode := map[string]int{}
	for _, a := range answers {
		perNode[nodeOf[a.Pod]]++
		if a.ClientAddrSeen() != lab.ClientAddr {
			t.Errorf("pod %s saw the client as %s, want %s (externalTrafficPolicy Local keeps the source)", a.Pod, a.Client, lab.ClientAddr)
			break
		}
	}
	t.Logf("300 requests to %s answered by pods on: %v", ip, perNode)
	if len(perNode) < 2 {
		t.Errorf("answers came from pods on %v: want at least two nodes (ECMP)", perNode)
	}

	// Cluster: one pod, on node 1; answered from every node's entry.
	ns := newNamespace(t, l, "cluster")
	backendPod(t, l, ns, "only-1", "only", 1)
	lbService(t, l, ns, "only", "only", func(s *corev1.Service) {
		s.Annotations = map[string]string{"metallb.io/address-pool": "first-pool"}
	})
	cip := ingressIPs(t, l, ns, "only", 1)[0]
	eventually(t, 60*time.Second, "the Cluster Service answers", func() (bool, string) {
		_, err := l.Client.Get(ctx, cip, 80, 2*time.Second)
		return err == nil, fmt.Sprint(err)
	})
	_, answers = answersFrom(t, l, cip, 60)
	seenAs := map[string]int{}
	for _, a := range answers {
		seenAs[a.ClientAddrSeen()]++
	}
	t.Logf("60 requests to the Cluster Service %s: the pod on node 1 saw the client as %v", cip, seenAs)
	viaOthers := 0
	for _, i := range allNodes(l)[1:] {
		viaOthers += seenAs[lab.NodeAddr(i)]
	}
	if viaOthers == 0 {
		t.Errorf("no request entered through a node without a local endpoint (seen as %v)", seenAs)
	}

	// A node's FRR dies (SIGKILL of its container): BFD takes the node's
	// next hop away; a 20 requests/s client must be served again after
	// it (`make bench` gives the median and maximum of ten).
	waitBFDUp(t, l)
	d, failed := bgpKillOutage(t, l, ip, ecmpAggregate, l.State.Nodes, "frr")
	t.Logf("BGP with BFD: FRR SIGKILL on %s → client outage %s (%d of its requests failed)", lab.NodeName(l.State.Nodes), d.Round(time.Millisecond), failed)
}

// TestTrafficPoolsSharing runs bgp-pools-sharing's shared address: the DNS
// Services share 198.51.100.10 and each answers on its own port, TCP 53,
// UDP 53 and TCP 63, from the pod behind it.
func TestTrafficPoolsSharing(t *testing.T) {
	l := requireStack(t)
	ctx := context.Background()
	useRouter(t, l, scenarioRouter(l, "bgp-pools-sharing"))
	applyFiles(t, l, scenarioFile("bgp-pools-sharing", "metallb-config.yaml"))
	const ns = "default"
	backendPod(t, l, ns, "e2e-dns-2", "dns", 2, "-tcp", "80,53,63", "-udp", "53")
	backendPod(t, l, ns, "e2e-webpod-1", "webpod", 1)
	applyFiles(t, l, scenarioFile("bgp-pools-sharing", "services.yaml"))
	const shared = "198.51.100.10"
	waitNextHops(t, l, shared+"/32", nodeAddrs(allNodes(l)...), 90*time.Second)
	type check struct {
		proto string
		port  int
	}
	for _, c := range []check{{"tcp", 53}, {"udp", 53}, {"tcp", 63}} {
		var a lab.Answer
		eventually(t, 30*time.Second, fmt.Sprintf("%s/%d on %s answers", c.proto, c.port, shared), func() (bool, string) {
			var err error
			if c.proto == "udp" {
				a, err = l.Client.UDP(ctx, shared, c.port, 2*time.Second)
			} else {
				a, err = l.Client.Get(ctx, shared, c.port, 2*time.Second)
			}
			return err == nil, fmt.Sprint(err)
		})
		if a.Pod != "e2e-dns-2" || a.Proto != c.proto || !strings.HasSuffix(a.Server, fmt.Sprintf(":%d", c.port)) {
			t.Errorf("%s/%d: answered %+v, want the dns pod on its port %d", c.proto, c.port, a, c.port)
		}
	}
	// Port 80 of the shared address belongs to no Service.
	if a, err := l.Client.Get(ctx, shared, 80, 2*time.Second); err == nil {
		t.Errorf("port 80 of the shared address answered (%+v): no Service has it", a)
	}
	svc1 := ingressIPs(t, l, ns, "svc1", 1)[0]
	waitNextHops(t, l, svc1+"/32", nodeAddrs(allNodes(l)...), 60*time.Second)
	eventually(t, 30*time.Second, "svc1 answers", func() (bool, string) {
		a, err := l.Client.Get(ctx, svc1, 80, 2*time.Second)
		return err == nil && a.Pod == "e2e-webpod-1", fmt.Sprint(a, err)
	})
}

// outageAfter runs a 20 requests/s client against addr:80 (each request
// a new connection, one second to answer), calls breakIt, and returns the
// outage the client saw - from the first failed request sent after the
// break to the first successful one sent after that - and how many
// requests failed. It stops once the client has been answered for two
// seconds after its last failure (or for five seconds when nothing failed).
func outageAfter(t testing.TB, l *lab.Lab, addr string, breakIt func()) (time.Duration, int) {
	t.Helper()
	load := l.Client.StartLoad(addr, 80, 20, time.Second)
	time.Sleep(time.Second)
	start := time.Now()
	breakIt()
	deadline := start.Add(60 * time.Second)
	for time.Now().Before(deadline) {
		time.Sleep(250 * time.Millisecond)
		var lastFail, lastOK time.Time
		for _, s := range load.Samples() {
			if s.At.Before(start) {
				continue
			}
			if s.Err != nil {
				lastFail = s.At
			} else {
				lastOK = s.At
			}
		}
		quiet := 2 * time.Second
		if lastFail.IsZero() {
			quiet = 5 * time.Second
			lastFail = start
		}
		if lastOK.After(lastFail) && time.Since(lastFail) > quiet+time.Second {
			break
		}
	}
	d, failed := lab.Outage(load.Stop(), start)
	if time.Now().After(deadline) {
		t.Fatalf("the client was still failing a minute after the break (%d failed)", failed)
	}
	return d, failed
}

// l2KillOutage kills the speaker of the node announcing ip and returns
// the client's outage; it waits for the stack to be whole again.
func l2KillOutage(t testing.TB, l *lab.Lab, ns, ip string) (time.Duration, int) {
	t.Helper()
	ctx := context.Background()
	owner := waitL2Owner(t, l, ns, "web", ip, 0)
	pods, err := l.Kube.CoreV1().Pods(lab.StackNamespace).List(ctx, metav1.ListOptions{LabelSelector: "component=speaker", FieldSelector: "spec.nodeName=" + lab.NodeName(owner)})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("speaker on %s: %v", lab.NodeName(owner), err)
	}
	d, failed := outageAfter(t, l, ip, func() {
		if err := l.KillContainer(ctx, lab.StackNamespace, pods.Items[0].Name, "speaker"); err != nil {
			t.Fatal(err)
		}
	})
	// A fresh pod rather than the kubelet's restart, whose back-off
	// grows with every kill.
	_ = l.Kube.CoreV1().Pods(lab.StackNamespace).Delete(ctx, pods.Items[0].Name, metav1.DeleteOptions{})
	if err := waitAvailable(l, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	waitL2Owner(t, l, ns, "web", ip, 0)
	return d, failed
}

// bfdTrafficSetup runs bgp-ecmp-bfd on the FRR backend with a web pod on
// every node behind a Service of the scenario's pool, and returns its
// address once the scenario's aggregate is routed over every node and
// every BFD peer is Up.
func bfdTrafficSetup(t testing.TB, l *lab.Lab) string {
	t.Helper()
	useBackend(t, l, "bgp-ecmp-bfd", "frr")
	useRouter(t, l, scenarioRouter(l, "bgp-ecmp-bfd"))
	applyFiles(t, l, scenarioFile("bgp-ecmp-bfd", "metallb-config.yaml"))
	ns := newNamespace(t, l, "bfd")
	for _, i := range allNodes(l) {
		backendPod(t, l, ns, fmt.Sprintf("web-%d", i), "web", i)
	}
	lbService(t, l, ns, "web", "web", nil)
	ip := ingressIPs(t, l, ns, "web", 1)[0]
	waitNextHops(t, l, ecmpAggregate, nodeAddrs(allNodes(l)...), 120*time.Second)
	waitBFDUp(t, l)
	return ip
}

// waitFIBSteady waits until the router's kernel routes prefix through
// exactly want, and has for hold without a change.
func waitFIBSteady(t testing.TB, l *lab.Lab, prefix string, want []string, hold, timeout time.Duration) {
	t.Helper()
	var since time.Time
	eventually(t, timeout, fmt.Sprintf("router FIB: %s via %v for %s", prefix, want, hold), func() (bool, string) {
		got, err := l.Router.FIBNextHops(context.Background(), prefix)
		if err != nil {
			return false, err.Error()
		}
		if !slices.Equal(got, want) {
			since = time.Time{}
			return false, fmt.Sprintf("next hops %v", got)
		}
		if since.IsZero() {
			since = time.Now()
		}
		return time.Since(since) >= hold, fmt.Sprintf("next hops %v since %s", got, since.Format(time.StampMilli))
	})
}

// ecmpAggregate is what bgp-ecmp-bfd announces (aggregationLength 24).
const ecmpAggregate = "203.0.113.0/24"

// waitBFDUp waits until the router has every node's BFD session Up.
func waitBFDUp(t testing.TB, l *lab.Lab) {
	t.Helper()
	eventually(t, 60*time.Second, "every BFD peer Up on the router", func() (bool, string) {
		peers, err := l.Router.BFDPeers(context.Background())
		if err != nil {
			return false, err.Error()
		}
		var up []string
		for _, p := range peers {
			if p.Up() {
				up = append(up, p.Peer)
			}
		}
		slices.Sort(up)
		return slices.Equal(up, nodeAddrs(allNodes(l)...)), fmt.Sprint(up)
	})
}

// bgpKillOutage kills container (frr or speaker) of node i's speaker pod
// and returns the client's outage; it waits until prefix is routed over
// every node again (and BFD Up).
func bgpKillOutage(t testing.TB, l *lab.Lab, ip, prefix string, i int, container string) (time.Duration, int) {
	t.Helper()
	ctx := context.Background()
	pods, err := l.Kube.CoreV1().Pods(lab.StackNamespace).List(ctx, metav1.ListOptions{LabelSelector: "component=speaker", FieldSelector: "spec.nodeName=" + lab.NodeName(i)})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("speaker on %s: %v", lab.NodeName(i), err)
	}
	d, failed := outageAfter(t, l, ip, func() {
		if err := l.KillContainer(ctx, lab.StackNamespace, pods.Items[0].Name, container); err != nil {
			t.Fatal(err)
		}
	})
	_ = l.Kube.CoreV1().Pods(lab.StackNamespace).Delete(ctx, pods.Items[0].Name, metav1.DeleteOptions{})
	if err := waitAvailable(l, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	pollNextHops(t, l, prefix, nodeAddrs(allNodes(l)...), 120*time.Second)
	waitBFDUp(t, l)
	return d, failed
}
