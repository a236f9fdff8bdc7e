package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/test/lab"
)

// bgpPoolsSharing runs the bgp-pools-sharing scenario as written: three
// sessions; svc1 over every node (ECMP); externalTrafficPolicy Local
// next hops follow the ready endpoints as pods move; websvc2 from
// IPPool-B's pool; the DNS Services' shared address is one route; the
// Service events say when the set of announcing nodes changes, and only
// then.
func bgpPoolsSharing(t *testing.T, l *lab.Lab, backend string) {
	if l.State.Nodes < 3 {
		t.Skip("needs 3 nodes")
	}
	ctx := context.Background()
	useRouter(t, l, scenarioRouter(l, "bgp-pools-sharing"))
	applyFiles(t, l, scenarioFile("bgp-pools-sharing", "metallb-config.yaml"))
	// The scenario's Services live in "default" (the DNS ones say so) and
	// select app=webpod and app=dns; the scenario ships no pods, so the
	// test runs them: webpods on nodes 1 and 2, the DNS pod on node 2.
	const ns = "default"
	backendPod(t, l, ns, "e2e-webpod-1", "webpod", 1)
	backendPod(t, l, ns, "e2e-webpod-2", "webpod", 2)
	backendPod(t, l, ns, "e2e-dns-2", "dns", 2)
	applyFiles(t, l, scenarioFile("bgp-pools-sharing", "services.yaml"))

	waitSessions(t, l, nodeAddrs(allNodes(l)...), 60*time.Second)

	// svc1: externalTrafficPolicy Cluster → every node.
	if ip := ingressIPs(t, l, ns, "svc1", 1)[0]; ip != "198.51.100.1" {
		t.Errorf("svc1 got %s, want 198.51.100.1 (avoidBuggyIPs skips .0)", ip)
	}
	rt := waitNextHops(t, l, "198.51.100.1/32", nodeAddrs(allNodes(l)...), 60*time.Second)
	for _, p := range rt.Paths {
		if p.ASPath != "64512" || p.Origin != "IGP" {
			t.Errorf("svc1 path via %s: AS path %q origin %q, want 64512 IGP", p.NextHop, p.ASPath, p.Origin)
		}
	}

	// websvc1: Local → nodes with a ready endpoint, following the pods.
	web1 := ingressIPs(t, l, ns, "websvc1", 1)[0] + "/32"
	waitNextHops(t, l, web1, nodeAddrs(1, 2), 60*time.Second)
	assigned := func() []string {
		var out []string
		for _, e := range serviceEvents(t, l, ns, "websvc1", "nodeAssigned") {
			out = append(out, fmt.Sprintf("%s×%d", nodeInMessage(e.Message), e.Count))
		}
		slices.Sort(out)
		return out
	}
	eventually(t, 30*time.Second, "websvc1 nodeAssigned events from nodes 1 and 2", func() (bool, string) {
		got := assigned()
		return slices.Equal(got, []string{lab.NodeName(1) + "×1", lab.NodeName(2) + "×1"}), fmt.Sprint(got)
	})
	deletePod(t, l, ns, "e2e-webpod-1")
	backendPod(t, l, ns, "e2e-webpod-3", "webpod", 3)
	waitNextHops(t, l, web1, nodeAddrs(2, 3), 60*time.Second)
	eventually(t, 30*time.Second, "websvc1 nodeAssigned from node 3, nodeUnassigned from node 1", func() (bool, string) {
		got := assigned()
		var un []string
		for _, e := range serviceEvents(t, l, ns, "websvc1", "nodeUnassigned") {
			un = append(un, fmt.Sprintf("%s×%d", nodeInMessage(e.Message), e.Count))
		}
		ok := slices.Equal(got, []string{lab.NodeName(1) + "×1", lab.NodeName(2) + "×1", lab.NodeName(3) + "×1"}) &&
			slices.Equal(un, []string{lab.NodeName(1) + "×1"})
		return ok, fmt.Sprintf("assigned %v, unassigned %v", got, un)
	})

	// websvc2 asks for "IPPool-B" and gets ippool-b's first usable
	// address. The lab router refuses 192.0.2.0/24 (the machine's own
	// uplink range here), so the announcement is read from the speakers'
	// ServiceBGPStatus: nodes 2 and 3 (its endpoints), to peer1.
	if ip := ingressIPs(t, l, ns, "websvc2", 1)[0]; ip != "192.0.2.1" {
		t.Errorf("websvc2 got %s, want 192.0.2.1 from ippool-b", ip)
	}
	eventually(t, 30*time.Second, "ServiceBGPStatus of websvc2 on nodes 2 and 3", func() (bool, string) {
		out, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "servicebgpstatus", "-l", "metallb.io/service-name=websvc2",
			"-o", `jsonpath={range .items[*]}{.status.node}={.status.peers}{"\n"}{end}`)
		if err != nil {
			return false, err.Error()
		}
		lines := strings.Fields(out)
		slices.Sort(lines)
		want := []string{lab.NodeName(2) + `=["peer1"]`, lab.NodeName(3) + `=["peer1"]`}
		return slices.Equal(lines, want), out
	})

	// The DNS Services share 198.51.100.10: one route, one path per node.
	for _, name := range []string{"dns-service-tcp-53", "dns-service-udp", "dns-service-tcp-63"} {
		if ip := ingressIPs(t, l, ns, name, 1)[0]; ip != "198.51.100.10" {
			t.Errorf("%s got %s, want the shared 198.51.100.10", name, ip)
		}
	}
	rt = waitNextHops(t, l, "198.51.100.10/32", nodeAddrs(allNodes(l)...), 60*time.Second)
	if len(rt.Paths) != l.State.Nodes {
		t.Errorf("shared address: %d paths, want one per node (%d): %+v", len(rt.Paths), l.State.Nodes, rt.Paths)
	}

	// Quiet steady state: the speakers' periodic resync announces nothing
	// new, so no event repeats.
	time.Sleep(15 * time.Second)
	if got := assigned(); !slices.Equal(got, []string{lab.NodeName(1) + "×1", lab.NodeName(2) + "×1", lab.NodeName(3) + "×1"}) {
		t.Errorf("nodeAssigned events changed in steady state: %v", got)
	}
}

// nodeInMessage picks the lab node name out of an event message.
func nodeInMessage(msg string) string {
	for i := 1; i <= lab.MaxNodes; i++ {
		if strings.Contains(msg, `"`+lab.NodeName(i)+`"`) {
			return lab.NodeName(i)
		}
	}
	return "?" + msg
}

// bgpAggregationECMP runs bgp-ecmp-bfd minus BFD (the native backend
// has none; the FRR backend runs it whole): the router sees the /24
// aggregate with three next hops, origin IGP, AS path 65001, and kubectl
// shows the admission warning about the addresses the aggregate covers
// beyond the pool.
func bgpAggregationECMP(t *testing.T, l *lab.Lab, backend string) {
	if l.State.Nodes < 3 {
		t.Skip("needs 3 nodes")
	}
	router := scenarioRouter(l, "bgp-ecmp-bfd")
	for i := range router.Peers {
		router.Peers[i].BFD = false
	}
	useRouter(t, l, router)
	data, err := os.ReadFile(scenarioFile("bgp-ecmp-bfd", "metallb-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	const bfdRef = "  bfdProfile: bfdprofile\n"
	if !strings.Contains(string(data), bfdRef) {
		t.Fatalf("the scenario no longer has %q: update the test", bfdRef)
	}
	out := applyYAML(t, l, "bgp-ecmp-bfd-config", strings.Replace(string(data), bfdRef, "", 1))
	if !strings.Contains(out, "Warning:") || !strings.Contains(out, "203.0.113.0") || !strings.Contains(out, "203.0.113.255") {
		t.Errorf("kubectl printed no warning naming 203.0.113.0 and 203.0.113.255:\n%s", out)
	}
	// Registered first, so it runs after the files' deletion.
	t.Cleanup(func() { waitNoPods(t, l, "default", "app=nginx") })
	applyFiles(t, l, scenarioFile("bgp-ecmp-bfd", "nginx-test.yaml"))
	ingressIPs(t, l, "default", "my-nginx-svc", 1)
	// Six replicas spread over three nodes: every node has a local
	// endpoint, so all three announce (externalTrafficPolicy Local).
	rt := waitNextHops(t, l, "203.0.113.0/24", nodeAddrs(allNodes(l)...), 90*time.Second)
	for _, p := range rt.Paths {
		if p.ASPath != "65001" || p.Origin != "IGP" {
			t.Errorf("path via %s: AS path %q origin %q, want 65001 IGP", p.NextHop, p.ASPath, p.Origin)
		}
	}
}

// waitNoPods waits until no pod matches selector (a Deployment applied
// from a file is being deleted), so the next test starts clean.
func waitNoPods(t testing.TB, l *lab.Lab, ns, selector string) {
	t.Helper()
	eventually(t, 90*time.Second, "pods "+selector+" gone", func() (bool, string) {
		pods, err := l.Kube.CoreV1().Pods(ns).List(context.Background(), metav1.ListOptions{LabelSelector: selector})
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 0, fmt.Sprintf("%d left", len(pods.Items))
	})
}

// hostnameSelector selects lab nodes by name, as a user selects nodes.
func hostnameSelector(nodes ...int) string {
	var names []string
	for _, i := range nodes {
		names = append(names, lab.NodeName(i))
	}
	return fmt.Sprintf(`
  - matchExpressions:
    - key: kubernetes.io/hostname
      operator: In
      values: [%s]`, strings.Join(names, ", "))
}

// bgpCommunitiesLocalPrefAndPeerSelectors: nodes 1 and 2 peer over
// eBGP and node 3 over iBGP, chosen by the peers' nodeSelectors. The
// advertisement's standard and large communities and a named Community
// alias arrive on the router; localPref 150 arrives over the iBGP session
// (and, as the RFC says, not over eBGP).
func bgpCommunitiesLocalPrefAndPeerSelectors(t *testing.T, l *lab.Lab, backend string) {
	if l.State.Nodes < 3 {
		t.Skip("needs 3 nodes")
	}
	router := scenarioRouter(l, "bgp-pools-sharing")
	router.Peers[2].ASN = router.ASN // node 3: iBGP
	useRouter(t, l, router)
	applyYAML(t, l, "communities", fmt.Sprintf(`apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: e2e-comm, namespace: metallb-system}
spec:
  addresses: [203.0.113.16/28]
---
apiVersion: metallb.io/v1beta1
kind: Community
metadata: {name: e2e-communities, namespace: metallb-system}
spec:
  communities:
  - name: e2e-alias
    value: "64512:777"
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: e2e-ebgp, namespace: metallb-system}
spec:
  myASN: 64512
  peerASN: 64513
  peerAddress: 198.18.0.254
  nodeSelectors:%s
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: e2e-ibgp, namespace: metallb-system}
spec:
  myASN: 64513
  peerASN: 64513
  peerAddress: 198.18.0.254
  nodeSelectors:%s
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: e2e-comm, namespace: metallb-system}
spec:
  ipAddressPools: [e2e-comm]
  communities: ["65535:120", "large:65535:300:100", e2e-alias]
  localPref: 150
`, hostnameSelector(1, 2), hostnameSelector(3)))
	ns := newNamespace(t, l, "communities")
	backendPod(t, l, ns, "web-1", "web", 1)
	lbService(t, l, ns, "web", "web", nil)
	ip := ingressIPs(t, l, ns, "web", 1)[0]
	waitSessions(t, l, nodeAddrs(allNodes(l)...), 60*time.Second)

	var rt lab.Route
	eventually(t, 60*time.Second, "a path from every node", func() (bool, string) {
		var err error
		rt, err = l.Router.Route(context.Background(), ip+"/32")
		if err != nil {
			return false, err.Error()
		}
		return len(rt.Paths) == l.State.Nodes, fmt.Sprintf("%+v", rt.Paths)
	})
	for _, p := range rt.Paths {
		if !slices.Contains(p.Communities, "65535:120") || !slices.Contains(p.Communities, "64512:777") {
			t.Errorf("path via %s: communities %v, want 65535:120 and the alias's 64512:777", p.NextHop, p.Communities)
		}
		if !slices.Equal(p.LargeCommunities, []string{"65535:300:100"}) {
			t.Errorf("path via %s: large communities %v, want [65535:300:100]", p.NextHop, p.LargeCommunities)
		}
		switch p.NextHop {
		case lab.NodeAddr(3):
			if p.LocalPref != 150 || p.ASPath != "" {
				t.Errorf("iBGP path via node 3: local-pref %d AS path %q, want 150 and empty", p.LocalPref, p.ASPath)
			}
		default:
			// The router gives eBGP paths its default local-pref (100).
			if p.LocalPref == 150 || p.ASPath != "64512" {
				t.Errorf("eBGP path via %s: local-pref %d AS path %q; local-pref must not cross eBGP", p.NextHop, p.LocalPref, p.ASPath)
			}
		}
	}
	// Local-pref 150 makes the iBGP path the router's choice. The paths
	// arrive before zebra installs the best one: the selection is polled.
	eventually(t, 30*time.Second, "the router uses node 3's iBGP path (local-pref 150)", func() (bool, string) {
		rt, err := l.Router.Route(context.Background(), ip+"/32")
		if err != nil {
			return false, err.Error()
		}
		got := rt.NextHops()
		return slices.Equal(got, nodeAddrs(3)), fmt.Sprintf("router uses %v", got)
	})
}

// bgpIPv6AdvertisementPeersAndNodeSelectors: a dual-stack pool, an
// IPv4 and an IPv6 session per node. One advertisement sends the pool to
// the IPv4 peer from node 1 only (its peers and nodeSelectors); another to
// the IPv6 peer from every node. The router sees the IPv4 address via
// node 1 alone and the IPv6 address over the IPv6 sessions from all.
func bgpIPv6AdvertisementPeersAndNodeSelectors(t *testing.T, l *lab.Lab, backend string) {
	if l.State.Nodes < 3 {
		t.Skip("needs 3 nodes")
	}
	router := scenarioRouter(l, "bgp-pools-sharing")
	var v6 []string
	for _, i := range allNodes(l) {
		router.Peers = append(router.Peers, lab.RouterPeer{Address: lab.NodeAddr6(i), ASN: 64512})
		v6 = append(v6, lab.NodeAddr6(i))
	}
	useRouter(t, l, router)
	applyYAML(t, l, "ipv6", fmt.Sprintf(`apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: e2e-dual, namespace: metallb-system}
spec:
  addresses: [203.0.113.32/28, "2001:db8:113::/124"]
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: e2e-v4, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 198.18.0.254}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: e2e-v6, namespace: metallb-system}
spec: {myASN: 64512, peerASN: 64513, peerAddress: "%s"}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: e2e-v4-node1, namespace: metallb-system}
spec:
  ipAddressPools: [e2e-dual]
  peers: [e2e-v4]
  nodeSelectors:%s
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: e2e-v6-all, namespace: metallb-system}
spec:
  ipAddressPools: [e2e-dual]
  peers: [e2e-v6]
`, lab.RouterAddr6, hostnameSelector(1)))
	ns := newNamespace(t, l, "ipv6")
	backendPod(t, l, ns, "web-1", "web", 1)
	lbService(t, l, ns, "web", "web", func(s *corev1.Service) {
		pol := corev1.IPFamilyPolicyRequireDualStack
		s.Spec.IPFamilyPolicy = &pol
		s.Spec.IPFamilies = []corev1.IPFamily{corev1.IPv4Protocol, corev1.IPv6Protocol}
	})
	ips := ingressIPs(t, l, ns, "web", 2)
	var ip4, ip6 string
	for _, ip := range ips {
		if strings.Contains(ip, ":") {
			ip6 = ip
		} else {
			ip4 = ip
		}
	}
	if ip4 == "" || ip6 == "" {
		t.Fatalf("want one IPv4 and one IPv6 address, got %v", ips)
	}
	waitSessions(t, l, append(nodeAddrs(allNodes(l)...), v6...), 60*time.Second)
	waitNextHops(t, l, ip4+"/32", nodeAddrs(1), 60*time.Second)
	waitNextHops(t, l, ip6+"/128", v6, 60*time.Second)
}

// bgpPasswordSecret: the router requires TCP MD5. A BGPPeer whose
// passwordSecret holds the wrong password never establishes; fixing the
// Secret brings the sessions up and the route with them.
func bgpPasswordSecret(t *testing.T, l *lab.Lab, backend string) {
	const password = "e2e-md5-secret"
	router := scenarioRouter(l, "bgp-pools-sharing")
	for i := range router.Peers {
		router.Peers[i].Password = password
	}
	useRouter(t, l, router)
	secret := func(pw string) string {
		return fmt.Sprintf(`apiVersion: v1
kind: Secret
metadata:
  name: e2e-bgp-password
  namespace: metallb-system
  labels: {e2e.lbstack.io/test: "password"}
type: kubernetes.io/basic-auth
stringData:
  password: %q
`, pw)
	}
	applyYAML(t, l, "secret", secret("not-"+password))
	applyYAML(t, l, "password", `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: e2e-md5, namespace: metallb-system}
spec:
  addresses: [203.0.113.48/28]
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: e2e-md5, namespace: metallb-system}
spec:
  myASN: 64512
  peerASN: 64513
  peerAddress: 198.18.0.254
  passwordSecret: {name: e2e-bgp-password}
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: e2e-md5, namespace: metallb-system}
spec:
  ipAddressPools: [e2e-md5]
`)
	ns := newNamespace(t, l, "md5")
	backendPod(t, l, ns, "web-1", "web", 1)
	lbService(t, l, ns, "web", "web", nil)
	ip := ingressIPs(t, l, ns, "web", 1)[0]
	// Wrong password: the router's kernel drops the SYNs; nothing may
	// establish. Watched for five connect-retry rounds.
	neverEstablished(t, l, 10*time.Second, "with the wrong password")
	applyYAML(t, l, "secret-fixed", secret(password))
	waitSessions(t, l, nodeAddrs(allNodes(l)...), 60*time.Second)
	waitNextHops(t, l, ip+"/32", nodeAddrs(allNodes(l)...), 60*time.Second)
}

// bgpMultihop: the router's session address (198.18.1.254, on its
// loopback) is two hops from node 1, routed through node 2. Without
// ebgpMultiHop the speaker's TTL-1 packets die at node 2 and the session
// never establishes; with it, it does and the route arrives.
func bgpMultihop(t *testing.T, l *lab.Lab, backend string) {
	if l.State.Nodes < 2 {
		t.Skip("needs 2 nodes")
	}
	const far = "198.18.1.254"
	// The detour: far on the router's loopback; node 1 reaches it via
	// node 2, which forwards to the router. Redirects off, so node 1 keeps
	// the detour instead of learning the direct way.
	node1, node2 := lab.NodeName(1), lab.NodeName(2)
	runIP(t, "-n", lab.RouterNetns, "addr", "add", far+"/32", "dev", "lo")
	t.Cleanup(func() { runIPQuiet("-n", lab.RouterNetns, "addr", "del", far+"/32", "dev", "lo") })
	runIP(t, "-n", node2, "route", "add", far+"/32", "via", lab.RouterAddr)
	t.Cleanup(func() { runIPQuiet("-n", node2, "route", "del", far+"/32") })
	runIP(t, "-n", node1, "route", "add", far+"/32", "via", lab.NodeAddr(2))
	t.Cleanup(func() { runIPQuiet("-n", node1, "route", "del", far+"/32") })
	setSysctl(t, node2, "net.ipv4.conf.all.send_redirects", "0")
	setSysctl(t, node2, "net.ipv4.conf.eth0.send_redirects", "0")
	setSysctl(t, node1, "net.ipv4.conf.all.accept_redirects", "0")
	setSysctl(t, node1, "net.ipv4.conf.eth0.accept_redirects", "0")

	router := scenarioRouter(l, "bgp-pools-sharing")
	router.Peers = []lab.RouterPeer{{Address: lab.NodeAddr(1), ASN: 64512}}
	useRouter(t, l, router)
	peer := func(multihop bool) string {
		return fmt.Sprintf(`apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: e2e-far, namespace: metallb-system}
spec:
  myASN: 64512
  peerASN: 64513
  peerAddress: %s
  ebgpMultiHop: %v
  nodeSelectors:%s
`, far, multihop, hostnameSelector(1))
	}
	applyYAML(t, l, "multihop", `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: e2e-far, namespace: metallb-system}
spec:
  addresses: [203.0.113.64/28]
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: e2e-far, namespace: metallb-system}
spec:
  ipAddressPools: [e2e-far]
`)
	applyYAML(t, l, "peer-single-hop", peer(false))
	ns := newNamespace(t, l, "multihop")
	backendPod(t, l, ns, "web-1", "web", 1)
	lbService(t, l, ns, "web", "web", nil)
	ip := ingressIPs(t, l, ns, "web", 1)[0]
	neverEstablished(t, l, 8*time.Second, "single-hop across two hops")
	applyYAML(t, l, "peer-multihop", peer(true))
	waitSessions(t, l, nodeAddrs(1), 60*time.Second)
	waitNextHops(t, l, ip+"/32", nodeAddrs(1), 60*time.Second)
}

// neverEstablished fails the test if any router session is Established
// during d.
func neverEstablished(t testing.TB, l *lab.Lab, d time.Duration, how string) {
	t.Helper()
	for deadline := time.Now().Add(d); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		ns, err := l.Router.Neighbors(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			if n.Established() {
				t.Fatalf("session with %s established %s", n.Address, how)
			}
		}
	}
}

func runIP(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func runIPQuiet(args ...string) { _ = exec.Command("ip", args...).Run() }

// setSysctl sets a sysctl in a lab namespace and restores it at the end.
func setSysctl(t testing.TB, netns, key, value string) {
	t.Helper()
	old, err := exec.Command("ip", "netns", "exec", netns, "sysctl", "-n", key).Output()
	if err != nil {
		t.Fatalf("read %s in %s: %v", key, netns, err)
	}
	if out, err := exec.Command("ip", "netns", "exec", netns, "sysctl", "-qw", key+"="+value).CombinedOutput(); err != nil {
		t.Fatalf("set %s in %s: %v: %s", key, netns, err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("ip", "netns", "exec", netns, "sysctl", "-qw", key+"="+strings.TrimSpace(string(old))).Run()
	})
}

// bgpKillDropsNextHop: with a 3 s hold time, SIGKILLing the process that
// holds one node's BGP session - the speaker in native mode, FRR's
// container in frr mode (a killed speaker leaves FRR announcing, as it
// should) - removes its next hop from the router within the hold time;
// the kubelet restarts it and it announces again.
func bgpKillDropsNextHop(t *testing.T, l *lab.Lab, backend string) {
	if l.State.Nodes < 3 {
		t.Skip("needs 3 nodes")
	}
	const hold = 3 * time.Second
	ip := holdTimeSetup(t, l)
	prefix := ip + "/32"
	victim := l.State.Nodes
	container := "speaker"
	if backend == "frr" {
		container = "frr"
	}
	killed, removed, back := killContainer(t, l, victim, container, prefix)
	t.Logf("SIGKILL of %s → next hop removed in %s (hold time %s); re-announced %s after the kill", container, removed.Sub(killed).Round(time.Millisecond), hold, back.Sub(killed).Round(time.Millisecond))
	if d := removed.Sub(killed); d > hold+time.Second {
		t.Errorf("the router kept the killed %s's next hop %s, longer than the %s hold time", container, d, hold)
	}
}

// bgpCases are the BGP issue's end-to-end checks, run on each backend.
var bgpCases = []struct {
	name string
	run  func(t *testing.T, l *lab.Lab, backend string)
}{
	{"PoolsSharing", bgpPoolsSharing},
	{"AggregationECMP", bgpAggregationECMP},
	{"CommunitiesLocalPrefAndPeerSelectors", bgpCommunitiesLocalPrefAndPeerSelectors},
	{"IPv6AdvertisementPeersAndNodeSelectors", bgpIPv6AdvertisementPeersAndNodeSelectors},
	{"PasswordSecret", bgpPasswordSecret},
	{"Multihop", bgpMultihop},
	{"KillDropsNextHop", bgpKillDropsNextHop},
	{"DeletedPodWithdraws", bgpDeletedPodWithdraws},
}

// frrOnlyCases need the FRR backend (BFD, FRR's own output); they run
// after bgpCases on it, so the suite switches backends once.
var frrOnlyCases = []struct {
	name string
	run  func(t *testing.T, l *lab.Lab, backend string)
}{
	{"ECMPBFD", frrECMPBFD},
	{"BFDRemovedWhileDown", frrBFDRemovedWhileDown},
	{"TrafficECMP", frrTrafficECMP},
	{"MustGather", frrMustGather},
}

// TestBGP runs every BGP check on the native backend (embedded GoBGP)
// and on the FRR backend (FRR sidecar and frr-reloader), the MetalLB
// object switched between them as a user switches, then the checks only
// the FRR backend has: bgp-ecmp-bfd whole (BFD), its traffic, must-gather.
func TestBGP(t *testing.T) {
	for _, backend := range []struct{ name, scenario string }{
		{"native", ""},
		// bgp-ecmp-bfd's metallb.yaml is the MetalLB object with
		// bgpBackend: frr.
		{"frr", "bgp-ecmp-bfd"},
	} {
		t.Run(backend.name, func(t *testing.T) {
			l := requireStack(t)
			if backend.scenario != "" {
				useBackend(t, l, backend.scenario, "frr")
			}
			cases := bgpCases
			if backend.name == "frr" {
				cases = append(slices.Clone(bgpCases), frrOnlyCases...)
			}
			for _, c := range cases {
				t.Run(c.name, func(t *testing.T) {
					l := requireStack(t)
					c.run(t, l, backend.name)
				})
			}
		})
	}
}

// holdTimeSetup configures a peer with a 3 s hold time, a Service with an
// endpoint, and waits for its route over every node. It returns the
// Service's address.
func holdTimeSetup(t testing.TB, l *lab.Lab) string {
	useRouter(t, l, scenarioRouter(l, "bgp-pools-sharing"))
	applyYAML(t, l, "holdtime", `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: e2e-hold, namespace: metallb-system}
spec:
  addresses: [203.0.113.80/28]
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: e2e-hold, namespace: metallb-system}
spec:
  myASN: 64512
  peerASN: 64513
  peerAddress: 198.18.0.254
  holdTime: 3s
  keepaliveTime: 1s
---
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: e2e-hold, namespace: metallb-system}
spec:
  ipAddressPools: [e2e-hold]
`)
	ns := newNamespace(t, l, "hold")
	backendPod(t, l, ns, "web-1", "web", 1)
	lbService(t, l, ns, "web", "web", nil)
	ip := ingressIPs(t, l, ns, "web", 1)[0]
	waitNextHops(t, l, ip+"/32", nodeAddrs(allNodes(l)...), 60*time.Second)
	return ip
}

// killContainer SIGKILLs a container of node i's speaker pod and returns
// when it was killed, when the router dropped the node's next hop for
// prefix, and when the restarted container's next hop was back.
func killContainer(t testing.TB, l *lab.Lab, i int, container, prefix string) (killed, removed, back time.Time) {
	t.Helper()
	ctx := context.Background()
	pods, err := l.Kube.CoreV1().Pods(lab.StackNamespace).List(ctx, metav1.ListOptions{LabelSelector: "component=speaker", FieldSelector: "spec.nodeName=" + lab.NodeName(i)})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("speaker pod on node %d: %v (%d found)", i, err, len(pods.Items))
	}
	var others []int
	for _, n := range allNodes(l) {
		if n != i {
			others = append(others, n)
		}
	}
	killed = time.Now()
	if err := l.KillContainer(ctx, lab.StackNamespace, pods.Items[0].Name, container); err != nil {
		t.Fatal(err)
	}
	removed = pollNextHops(t, l, prefix, nodeAddrs(others...), 30*time.Second)
	back = pollNextHops(t, l, prefix, nodeAddrs(allNodes(l)...), 90*time.Second)
	return killed, removed, back
}

// bgpDeletedPodWithdraws: deleting a speaker pod (as a drain or a
// rollout does) ends its sessions cleanly within the pod's short grace
// period - the speaker closes GoBGP's sessions, FRR's bgpd sends a Cease
// on SIGTERM - so the router withdraws the node's routes at once, not
// when its hold timer runs out. The router says why the session ended.
func bgpDeletedPodWithdraws(t *testing.T, l *lab.Lab, _ string) {
	if l.State.Nodes < 3 {
		t.Skip("needs 3 nodes")
	}
	ctx := context.Background()
	ip := holdTimeSetup(t, l)
	victim := l.State.Nodes
	addr := nodeAddrs(victim)[0]
	var others []int
	for _, n := range allNodes(l) {
		if n != victim {
			others = append(others, n)
		}
	}
	pods, err := l.Kube.CoreV1().Pods(lab.StackNamespace).List(ctx, metav1.ListOptions{LabelSelector: "component=speaker", FieldSelector: "spec.nodeName=" + lab.NodeName(victim)})
	if err != nil || len(pods.Items) != 1 {
		t.Fatalf("speaker pod on node %d: %v", victim, err)
	}
	start := time.Now()
	// The default grace period: the pod's own (terminationGracePeriodSeconds).
	if err := l.Kube.CoreV1().Pods(lab.StackNamespace).Delete(ctx, pods.Items[0].Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	removed := pollNextHops(t, l, ip+"/32", nodeAddrs(others...), 30*time.Second)
	why, err := l.Router.LastReset(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("speaker pod deleted → next hop removed in %s; the router's reason: %q", removed.Sub(start).Round(time.Millisecond), why)
	if why == "" || strings.Contains(why, "Hold Timer") {
		t.Errorf("the router's session with %s ended by %q: the deleted pod did not close it", addr, why)
	}
	// The DaemonSet's new pod announces again.
	pollNextHops(t, l, ip+"/32", nodeAddrs(allNodes(l)...), 120*time.Second)
}

// pollNextHops polls the router every 20 ms until prefix has exactly the
// next hops want, and returns when it first saw them.
func pollNextHops(t testing.TB, l *lab.Lab, prefix string, want []string, timeout time.Duration) time.Time {
	t.Helper()
	at, _ := pollRoute(t, l, prefix, fmt.Sprintf("via %v", want), timeout, func(got []string) bool { return slices.Equal(got, want) })
	return at
}

// pollRoute polls the router every 20 ms until prefix's next hops (the
// route read successfully) satisfy done, and returns when it first saw
// that and those next hops.
func pollRoute(t testing.TB, l *lab.Lab, prefix, what string, timeout time.Duration, done func([]string) bool) (time.Time, []string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var got []string
	for time.Now().Before(deadline) {
		rt, err := l.Router.Route(context.Background(), prefix)
		if err == nil {
			got = rt.NextHops()
			if done(got) {
				return time.Now(), got
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("router: %s not %s after %s (last %v)", prefix, what, timeout, got)
	return time.Time{}, nil
}
