package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/test/lab"
)

// l2Owners returns the nodes whose ServiceL2Status names the Service.
func l2Owners(t testing.TB, l *lab.Lab, ns, name string) []string {
	t.Helper()
	out, err := l.Kubectl(context.Background(), "-n", lab.StackNamespace, "get", "servicel2status",
		"-l", "metallb.io/service-name="+name+",metallb.io/service-namespace="+ns, "-o", `jsonpath={range .items[*]}{.status.node}{"\n"}{end}`)
	if err != nil {
		t.Fatal(err)
	}
	nodes := strings.Fields(out)
	slices.Sort(nodes)
	return nodes
}

// waitL2Owner waits until exactly one node announces the Service (and, when
// want is not 0, that it is node want) and the client's ARP for addr is
// answered by that node's MAC alone. It returns the node's index.
func waitL2Owner(t testing.TB, l *lab.Lab, ns, name, addr string, want int) int {
	t.Helper()
	var owner int
	eventually(t, 60*time.Second, fmt.Sprintf("%s/%s announced in layer 2 by one node (want %d)", ns, name, want), func() (bool, string) {
		owners := l2Owners(t, l, ns, name)
		if len(owners) != 1 {
			return false, fmt.Sprintf("ServiceL2Status on %v", owners)
		}
		owner = nodeIndex(t, owners[0])
		if want != 0 && owner != want {
			return false, "owner " + owners[0]
		}
		macs, err := l.Client.ARP(context.Background(), addr)
		if err != nil {
			return false, err.Error()
		}
		return slices.Equal(macs, []string{lab.NodeMAC(owner)}), fmt.Sprintf("owner %s, ARP answered by %v", owners[0], macs)
	})
	return owner
}

// clientNeighbourMAC is the client's neighbour entry for addr ("" if none).
func clientNeighbourMAC(l *lab.Lab, addr string) string {
	ns, err := l.Client.Neighbours(context.Background())
	if err != nil {
		return ""
	}
	for _, n := range ns {
		if n.Addr == addr { // Neighbours lists the node segment only
			return strings.ToLower(n.MAC)
		}
	}
	return ""
}

// TestL2Scenario runs l2-and-bgp-basics as written (l2.yaml, nginx.yaml):
// the Service gets an address from 198.18.0.240/28, ARP from the client is
// answered by exactly one node - the elected one - the client's
// neighbour entry is that node's MAC, and a request to the address is
// answered by one of the scenario's nginx pods (the lab's web server).
func TestL2Scenario(t *testing.T) {
	l := requireStack(t)
	t.Cleanup(func() { waitNoPods(t, l, "default", "app=nginx") })
	applyFiles(t, l, scenarioFile("l2-and-bgp-basics", "l2.yaml"), scenarioFile("l2-and-bgp-basics", "nginx.yaml"))
	ip := ingressIPs(t, l, "default", "nginx", 1)[0]
	if !netip.MustParsePrefix("198.18.0.240/28").Contains(netip.MustParseAddr(ip)) {
		t.Fatalf("nginx got %s, want an address of 198.18.0.240/28", ip)
	}
	owner := waitL2Owner(t, l, "default", "nginx", ip, 0)
	if err := l.Client.Poke(ip); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "client neighbour entry for "+ip, func() (bool, string) {
		mac := clientNeighbourMAC(l, ip)
		return mac == lab.NodeMAC(owner), mac
	})
	// The client on the segment reaches the layer-2 address: the elected
	// node takes the traffic and its kube-proxy hands it to a pod.
	eventually(t, 60*time.Second, "curl http://"+ip+"/ from the client answers", func() (bool, string) {
		a, err := l.Client.Get(context.Background(), ip, 80, 2*time.Second)
		return err == nil, fmt.Sprint(a, err)
	})
	evs := serviceEvents(t, l, "default", "nginx", "nodeAssigned")
	if len(evs) != 1 || !strings.Contains(evs[0].Message, "layer2") || nodeInMessage(evs[0].Message) != lab.NodeName(owner) {
		var msgs []string
		for _, e := range evs {
			msgs = append(msgs, e.Message)
		}
		t.Errorf("nodeAssigned events %q, want one, layer2, from %s", msgs, lab.NodeName(owner))
	}
}

// l2Pool applies a layer-2 pool and advertisement (extra spec lines
// appended to the advertisement).
func l2Pool(t testing.TB, l *lab.Lab, addresses []string, advExtra string) {
	t.Helper()
	applyYAML(t, l, "l2-pool", fmt.Sprintf(`apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: e2e-l2, namespace: metallb-system}
spec:
  addresses: [%s]
---
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: e2e-l2, namespace: metallb-system}
spec:
  ipAddressPools: [e2e-l2]
%s`, strings.Join(addresses, ", "), advExtra))
}

// TestL2TenServicesSpread: ten Services over three nodes: every node
// announces some, each Service exactly one node.
func TestL2TenServicesSpread(t *testing.T) {
	l := requireStack(t)
	if l.State.Nodes < 3 {
		t.Skip("needs 3 nodes")
	}
	l2Pool(t, l, []string{"198.18.0.240/28"}, "")
	ns := newNamespace(t, l, "l2spread")
	backendPod(t, l, ns, "web-1", "web", 1)
	perNode := map[string]int{}
	for i := range 10 {
		name := fmt.Sprintf("web-%d", i)
		lbService(t, l, ns, name, "web", nil)
		ip := ingressIPs(t, l, ns, name, 1)[0]
		owner := waitL2Owner(t, l, ns, name, ip, 0)
		perNode[lab.NodeName(owner)]++
	}
	t.Logf("ten Services per node: %v", perNode)
	if len(perNode) != l.State.Nodes {
		t.Errorf("ten Services announced by %v, want every node to announce some", perNode)
	}
}

// TestL2LocalFollowsEndpoint: with externalTrafficPolicy Local only a node
// with a ready endpoint may be elected; moving the pod moves the
// announcement (and the client's ARP answer).
func TestL2LocalFollowsEndpoint(t *testing.T) {
	l := requireStack(t)
	if l.State.Nodes < 3 {
		t.Skip("needs 3 nodes")
	}
	l2Pool(t, l, []string{"198.18.0.240/28"}, "")
	ns := newNamespace(t, l, "l2local")
	backendPod(t, l, ns, "web-2", "web", 2)
	lbService(t, l, ns, "web", "web", func(s *corev1.Service) {
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
	})
	ip := ingressIPs(t, l, ns, "web", 1)[0]
	waitL2Owner(t, l, ns, "web", ip, 2)
	backendPod(t, l, ns, "web-3", "web", 3)
	deletePod(t, l, ns, "web-2")
	waitL2Owner(t, l, ns, "web", ip, 3)
}

// TestL2IPv6NDP: a dual-stack pool; the IPv6 address is answered over NDP
// by exactly one node, one that announces the Service.
func TestL2IPv6NDP(t *testing.T) {
	l := requireStack(t)
	l2Pool(t, l, []string{"198.18.0.240/28", "2001:db8:18::f0/124"}, "")
	ns := newNamespace(t, l, "l2v6")
	backendPod(t, l, ns, "web-1", "web", 1)
	lbService(t, l, ns, "web", "web", func(s *corev1.Service) {
		pol := corev1.IPFamilyPolicyRequireDualStack
		s.Spec.IPFamilyPolicy = &pol
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	})
	var ip6 string
	for _, ip := range ingressIPs(t, l, ns, "web", 2) {
		if strings.Contains(ip, ":") {
			ip6 = ip
		}
	}
	if ip6 == "" {
		t.Fatal("no IPv6 address")
	}
	eventually(t, 60*time.Second, "NDP for "+ip6+" answered by one announcing node", func() (bool, string) {
		macs, err := l.Client.NDP(context.Background(), ip6, time.Second)
		if err != nil {
			return false, err.Error()
		}
		owners := l2Owners(t, l, ns, "web")
		if len(macs) != 1 {
			return false, fmt.Sprintf("answered by %v (owners %v)", macs, owners)
		}
		for _, o := range owners {
			if lab.NodeMAC(nodeIndex(t, o)) == macs[0] {
				return true, ""
			}
		}
		return false, fmt.Sprintf("answered by %v, owners %v", macs, owners)
	})
}

// TestL2InterfacesRestrict: node 1 gets a second link on the segment. With
// spec.interfaces naming it, only that link answers ARP; without, both do.
func TestL2InterfacesRestrict(t *testing.T) {
	l := requireStack(t)
	const extraMAC = "02:18:00:00:01:01"
	node1 := lab.NodeName(1)
	runIP(t, "link", "add", "lbe2e-n1b", "address", extraMAC, "type", "veth", "peer", "name", "lbe2e-sw")
	t.Cleanup(func() { runIPQuiet("-n", node1, "link", "del", "eth9") })
	runIP(t, "link", "set", "lbe2e-n1b", "netns", node1)
	runIP(t, "-n", node1, "link", "set", "lbe2e-n1b", "name", "eth9")
	runIP(t, "-n", node1, "link", "set", "eth9", "up")
	runIP(t, "link", "set", "lbe2e-sw", "netns", lab.SwitchNetns)
	runIP(t, "-n", lab.SwitchNetns, "link", "set", "lbe2e-sw", "master", lab.Bridge, "up")
	// Node 1 only, so node 1 is elected.
	l2Pool(t, l, []string{"198.18.0.240/28"}, "  interfaces: [eth9]\n  nodeSelectors:"+hostnameSelector(1)+"\n")
	ns := newNamespace(t, l, "l2if")
	backendPod(t, l, ns, "web-1", "web", 1)
	lbService(t, l, ns, "web", "web", nil)
	ip := ingressIPs(t, l, ns, "web", 1)[0]
	eventually(t, 60*time.Second, "ARP answered by eth9 alone", func() (bool, string) {
		macs, err := l.Client.ARP(context.Background(), ip)
		return err == nil && slices.Equal(macs, []string{extraMAC}), fmt.Sprint(macs, err)
	})
	out, err := l.Kubectl(context.Background(), "-n", lab.StackNamespace, "get", "servicel2status", "-l", "metallb.io/service-name=web", "-o", "jsonpath={.items[*].status.interfaces[*].name}")
	if err != nil || strings.TrimSpace(out) != "eth9" {
		t.Errorf("ServiceL2Status interfaces %q (%v), want eth9", out, err)
	}
	// Without the restriction both of node 1's links answer.
	if _, err := l.Kubectl(context.Background(), "-n", lab.StackNamespace, "patch", "l2advertisement", "e2e-l2", "--type=json", "-p", `[{"op":"remove","path":"/spec/interfaces"}]`); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "ARP answered by both of node 1's links", func() (bool, string) {
		macs, err := l.Client.ARP(context.Background(), ip)
		want := []string{lab.NodeMAC(1), extraMAC}
		slices.Sort(want)
		return err == nil && slices.Equal(macs, want), fmt.Sprint(macs, err)
	})
}

// TestL2Failover: a hung speaker on the elected node (its container
// frozen), and separately a cut of its link, move the client's neighbour
// entry to another node's MAC (gratuitous ARP from the new owner); a
// client sending requests to the address is served again after SIGKILL of
// the speaker.
func TestL2Failover(t *testing.T) {
	l := requireStack(t)
	if l.State.Nodes < 2 {
		t.Skip("needs 2 nodes")
	}
	ns, ip := l2FailoverSetup(t, l)
	for _, how := range []string{"hang", "link"} {
		t.Run(how, func(t *testing.T) {
			d, from, to := l2Takeover(t, l, ns, ip, how)
			t.Logf("%s of %s: the client's neighbour entry moved to %s after %s", how, lab.NodeName(from), lab.NodeName(to), d.Round(time.Millisecond))
		})
	}
	// What a client sending 20 requests a second sees of a speaker kill
	// (`make bench` gives the median and maximum of ten).
	t.Run("client-outage", func(t *testing.T) {
		d, failed := l2KillOutage(t, l, ns, ip)
		t.Logf("speaker SIGKILL on the announcing node → client outage %s (%d of its requests failed)", d.Round(time.Millisecond), failed)
	})
}

// l2FailoverSetup makes a layer-2 Service with an endpoint on every node
// and returns its namespace and address.
func l2FailoverSetup(t testing.TB, l *lab.Lab) (string, string) {
	l2Pool(t, l, []string{"198.18.0.240/28"}, "")
	ns := newNamespace(t, l, "l2fail")
	for _, i := range allNodes(l) {
		backendPod(t, l, ns, fmt.Sprintf("web-%d", i), "web", i)
	}
	lbService(t, l, ns, "web", "web", nil)
	ip := ingressIPs(t, l, ns, "web", 1)[0]
	waitL2Owner(t, l, ns, "web", ip, 0)
	return ns, ip
}

// l2Takeover breaks the current owner (how: "hang" its speaker - frozen,
// as a hung process: a killed one is restarted by its kubelet within a
// second and may keep its announcement, memberlist never seeing it gone -
// or cut its
// "link"), measures until the client's neighbour entry for ip names
// another node's MAC, then repairs and waits until the Service is
// announced by one node again. It returns the takeover time, the old owner
// and the new one.
func l2Takeover(t testing.TB, l *lab.Lab, ns, ip, how string) (time.Duration, int, int) {
	t.Helper()
	ctx := context.Background()
	owner := waitL2Owner(t, l, ns, "web", ip, 0)
	if err := l.Client.Poke(ip); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "client neighbour entry names the owner", func() (bool, string) {
		mac := clientNeighbourMAC(l, ip)
		return mac == lab.NodeMAC(owner), mac
	})
	// The neighbour entry must not be refreshed by the client asking
	// (that would measure ARP, not the takeover): nothing is sent to ip
	// until it moved.
	var start time.Time
	var killedPod string
	switch how {
	case "hang":
		pods, err := l.Kube.CoreV1().Pods(lab.StackNamespace).List(ctx, metav1.ListOptions{LabelSelector: "component=speaker", FieldSelector: "spec.nodeName=" + lab.NodeName(owner)})
		if err != nil || len(pods.Items) != 1 {
			t.Fatalf("speaker on %s: %v (%d pods)", lab.NodeName(owner), err, len(pods.Items))
		}
		killedPod = pods.Items[0].Name
		start = time.Now()
		if err := l.FreezeContainer(ctx, lab.StackNamespace, killedPod, "speaker"); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = l.ThawContainer(ctx, lab.StackNamespace, killedPod, "speaker") }()
	case "link":
		// Cut at the switch: the node's eth0 loses its carrier, as when a
		// cable or a switch port fails, and keeps its addresses and
		// routes (an administrative down inside the node would flush
		// them, and the lab would stay broken after the test).
		start = time.Now()
		runIP(t, "-n", lab.SwitchNetns, "link", "set", fmt.Sprintf("node%d", owner), "down")
		defer runIP(t, "-n", lab.SwitchNetns, "link", "set", fmt.Sprintf("node%d", owner), "up")
	}
	deadline := start.Add(30 * time.Second)
	var mac string
	for time.Now().Before(deadline) {
		mac = clientNeighbourMAC(l, ip)
		if mac != "" && mac != lab.NodeMAC(owner) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	took := time.Since(start)
	newOwner := 0
	for _, i := range allNodes(l) {
		if lab.NodeMAC(i) == mac {
			newOwner = i
		}
	}
	if newOwner == 0 || newOwner == owner {
		t.Fatalf("%s of %s: the client's neighbour entry is %q after 30s, want another node's MAC", how, lab.NodeName(owner), mac)
	}
	switch how {
	case "link":
		runIP(t, "-n", lab.SwitchNetns, "link", "set", fmt.Sprintf("node%d", owner), "up")
	case "hang":
		// A fresh pod: the thawed speaker would find its liveness probe
		// failures and memberlist's verdict behind it.
		_ = l.ThawContainer(ctx, lab.StackNamespace, killedPod, "speaker")
		if err := l.Kube.CoreV1().Pods(lab.StackNamespace).Delete(ctx, killedPod, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// Repaired: one owner again, and the whole stack Ready.
	waitL2Owner(t, l, ns, "web", ip, 0)
	if err := waitAvailable(l, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	return took, owner, newOwner
}

// TestL2AndBGPTogether: one pool with an L2Advertisement and a
// BGPAdvertisement: the router learns the address from every node and the
// segment's ARP is answered by the elected node alone.
func TestL2AndBGPTogether(t *testing.T) {
	l := requireStack(t)
	useRouter(t, l, scenarioRouter(l, "l2-and-bgp-basics"))
	l2Pool(t, l, []string{"198.18.0.240/28"}, "")
	applyYAML(t, l, "l2-bgp", `apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: e2e-l2bgp, namespace: metallb-system}
spec: {myASN: 64501, peerASN: 64500, peerAddress: 198.18.0.254}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: e2e-l2bgp, namespace: metallb-system}
spec:
  ipAddressPools: [e2e-l2]
`)
	ns := newNamespace(t, l, "l2bgp")
	backendPod(t, l, ns, "web-1", "web", 1)
	lbService(t, l, ns, "web", "web", nil)
	ip := ingressIPs(t, l, ns, "web", 1)[0]
	waitL2Owner(t, l, ns, "web", ip, 0)
	waitNextHops(t, l, ip+"/32", nodeAddrs(allNodes(l)...), 60*time.Second)
}
