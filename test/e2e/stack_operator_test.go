package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/test/lab"
)

// TestOperatorRunsTheStack (operator issue): `kubectl apply -k
// config/default` and the scenario's MetalLB object → the kubelets run
// the operator, one controller and one speaker per node from the rendered
// manifests, each under its own service account; the MetalLB object is
// Available; a Service gets an address and the router sees it over every
// node. Narrowing the MetalLB nodeSelector to two nodes removes the third
// node's speaker and, with it, its next hop.
func TestOperatorRunsTheStack(t *testing.T) {
	l := requireStack(t)
	if l.State.Nodes < 3 {
		t.Skip("needs 3 nodes")
	}
	ctx := context.Background()

	// Who runs, under which service account.
	sa := map[string]map[string]bool{}
	nodesOf := map[string][]string{}
	for _, comp := range []string{"operator", "controller", "speaker"} {
		pods, err := l.Kube.CoreV1().Pods(lab.StackNamespace).List(ctx, metav1.ListOptions{LabelSelector: "component=" + comp})
		if err != nil {
			t.Fatal(err)
		}
		sa[comp] = map[string]bool{}
		for _, p := range pods.Items {
			if p.DeletionTimestamp != nil {
				continue
			}
			if !podReady(&p) {
				t.Errorf("%s pod %s not ready", comp, p.Name)
			}
			sa[comp][p.Spec.ServiceAccountName] = true
			nodesOf[comp] = append(nodesOf[comp], p.Spec.NodeName)
		}
	}
	if len(nodesOf["operator"]) != 1 || len(nodesOf["controller"]) != 1 {
		t.Errorf("want one operator and one controller pod, got %v", nodesOf)
	}
	slices.Sort(nodesOf["speaker"])
	var want []string
	for _, i := range allNodes(l) {
		want = append(want, lab.NodeName(i))
	}
	if !slices.Equal(nodesOf["speaker"], want) {
		t.Errorf("speakers on %v, want one on each of %v", nodesOf["speaker"], want)
	}
	seen := map[string]string{}
	for comp, accounts := range sa {
		if len(accounts) != 1 {
			t.Errorf("%s pods run as %v, want one service account", comp, accounts)
		}
		for a := range accounts {
			if a == "" || a == "default" {
				t.Errorf("%s runs as service account %q, want its own", comp, a)
			}
			if other, dup := seen[a]; dup {
				t.Errorf("%s and %s share service account %q", comp, other, a)
			}
			seen[a] = comp
		}
	}
	// The speakers run the image the rendered DaemonSet names, in a
	// container of their node's containerd.
	speakers, err := l.Kube.CoreV1().Pods(lab.StackNamespace).List(ctx, metav1.ListOptions{LabelSelector: "component=speaker"})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range speakers.Items {
		if _, _, err := l.ContainerID(ctx, p.Namespace, p.Name, "speaker"); err != nil {
			t.Errorf("speaker %s: %v", p.Name, err)
		}
	}
	// The operator's image is lbstack's, as the Dockerfile makes it: the
	// binary at /usr/bin/lbstack answers `version`.
	if out, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "exec", "deploy/lbstack-operator", "--", "/usr/bin/lbstack", "version"); err != nil || strings.TrimSpace(out) == "" {
		t.Errorf("lbstack version in the operator's container: %q %v", out, err)
	}

	// A Service gets an address and the router sees it from every node.
	useRouter(t, l, scenarioRouter(l, "bgp-pools-sharing"))
	applyFiles(t, l, scenarioFile("bgp-pools-sharing", "metallb-config.yaml"))
	ns := newNamespace(t, l, "operator")
	backendPod(t, l, ns, "web-1", "web", 1)
	lbService(t, l, ns, "web", "web", nil)
	ip := ingressIPs(t, l, ns, "web", 1)[0]
	prefix := ip + "/32"
	waitNextHops(t, l, prefix, nodeAddrs(allNodes(l)...), 60*time.Second)

	// Narrow the speakers to nodes 1 and 2.
	const label = "e2e.lbstack.io/speaker"
	for _, i := range []int{1, 2} {
		if _, err := l.Kubectl(ctx, "label", "node", lab.NodeName(i), label+"=yes", "--overwrite"); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		if _, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "patch", "metallb", "metallb", "--type=merge", "-p", `{"spec":{"nodeSelector":null}}`); err != nil {
			t.Errorf("restore nodeSelector: %v", err)
		}
		for _, i := range []int{1, 2} {
			if _, err := l.Kubectl(ctx, "label", "node", lab.NodeName(i), label+"-"); err != nil {
				t.Errorf("unlabel: %v", err)
			}
		}
		if err := waitAvailable(l, 2*time.Minute); err != nil {
			t.Errorf("after restoring nodeSelector: %v", err)
		}
	})
	if _, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "patch", "metallb", "metallb", "--type=merge", "-p", fmt.Sprintf(`{"spec":{"nodeSelector":{%q:"yes"}}}`, label)); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "speakers only on nodes 1 and 2", func() (bool, string) {
		pods, err := l.Kube.CoreV1().Pods(lab.StackNamespace).List(ctx, metav1.ListOptions{LabelSelector: "component=speaker"})
		if err != nil {
			return false, err.Error()
		}
		var on []string
		for _, p := range pods.Items {
			on = append(on, p.Spec.NodeName)
		}
		slices.Sort(on)
		return slices.Equal(on, []string{lab.NodeName(1), lab.NodeName(2)}), fmt.Sprint(on)
	})
	waitNextHops(t, l, prefix, nodeAddrs(1, 2), 30*time.Second)
	eventually(t, 30*time.Second, "MetalLB Available with two speakers", func() (bool, string) {
		avail, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "metallb", "metallb", "-o", `jsonpath={.status.conditions[?(@.type=="Available")].status}`)
		return avail == "True", avail + fmt.Sprint(err)
	})
}

// TestAdmissionRefusesOverlappingPoolInOneLine (configuration issue):
// `kubectl apply` of a pool overlapping another prints one line naming the
// webhook, both pools and both ranges; nothing is stored.
func TestAdmissionRefusesOverlappingPoolInOneLine(t *testing.T) {
	l := requireStack(t)
	applyYAML(t, l, "pool-a", `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: a
  namespace: metallb-system
spec:
  addresses:
  - 203.0.113.128/25
`)
	path := filepath.Join(t.TempDir(), "pool-b.yaml")
	writeFile(t, path, `apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata:
  name: b
  namespace: metallb-system
spec:
  addresses:
  - 203.0.113.0/24
`)
	out, err := kubectlCombined(l, "apply", "-f", path)
	if err == nil {
		t.Fatalf("the overlapping pool was accepted:\n%s", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 1 {
		t.Errorf("kubectl printed %d lines, want one:\n%s", len(lines), out)
	}
	const want = `admission webhook "ipaddresspoolvalidationwebhook.metallb.io" denied the request: ipaddresspool "b": spec.addresses[0]: 203.0.113.0/24 overlaps 203.0.113.128/25 of ipaddresspool "a"`
	if !strings.Contains(out, want) {
		t.Errorf("kubectl printed:\n%s\nwant it to contain:\n%s", out, want)
	}
	t.Logf("kubectl: %s", strings.TrimSpace(out))
	if _, err := l.Kubectl(context.Background(), "-n", lab.StackNamespace, "get", "ipaddresspool", "b"); err == nil {
		t.Errorf("pool b was stored despite the refusal")
	}
}

func writeFile(t testing.TB, path, data string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestOperatorUpgradeRollsWithoutDroppingTheRoute (operator issue,
// upgrades): a second release of lbstack's image, built here and served
// under a reference with a registry port, rolls the controller and the
// speakers to it, one speaker at a time: the router never loses more than
// one of the Service's next hops, all come back on the new version, and a
// client sending 20 requests a second to the Service through the router
// sees at most one of them fail.
func TestOperatorUpgradeRollsWithoutDroppingTheRoute(t *testing.T) {
	l := requireStack(t)
	if l.State.Nodes < 3 {
		t.Skip("needs 3 nodes")
	}
	ctx := context.Background()
	ip := holdTimeSetup(t, l)
	prefix := ip + "/32"
	orig, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "deployment", "lbstack-operator", "-o", "jsonpath={.spec.template.spec.containers[0].image}")
	if err != nil {
		t.Fatal(err)
	}
	const upgraded = "127.0.0.1:5000/lbstack/lbstack:e2e-upgrade"
	if err := l.State.PushLbstackImage(ctx, upgraded, "e2e-upgrade"); err != nil {
		t.Fatal(err)
	}
	setImage := func(image string) {
		t.Helper()
		if _, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "set", "image", "deployment/lbstack-operator", "operator="+image); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		setImage(orig)
		if err := waitImages(l, orig, 3*time.Minute); err != nil {
			t.Errorf("roll back to %s: %v", orig, err)
		}
	})

	// Watch the route through the whole rollout.
	stop := make(chan struct{})
	type sample struct {
		hops []string
		at   time.Time
	}
	fewest := make(chan sample, 1)
	go func() {
		low := sample{hops: nodeAddrs(allNodes(l)...)}
		for {
			select {
			case <-stop:
				fewest <- low
				return
			case <-time.After(50 * time.Millisecond):
			}
			rt, err := l.Router.Route(ctx, prefix)
			if err != nil {
				continue
			}
			if h := rt.NextHops(); len(h) < len(low.hops) {
				low = sample{hops: h, at: time.Now()}
			}
		}
	}()
	load := l.Client.StartLoad(ip, 80, 20, time.Second)
	start := time.Now()
	setImage(upgraded)
	err = waitImages(l, upgraded, 4*time.Minute)
	if err == nil {
		waitNextHops(t, l, prefix, nodeAddrs(allNodes(l)...), 60*time.Second)
	}
	close(stop)
	low := <-fewest
	samples := load.Stop()
	if err != nil {
		t.Fatal(err)
	}
	failures := failedRequests(samples)
	t.Logf("client during the rollout: %d requests, %d failed", len(samples), len(failures))
	if len(failures) > 1 {
		t.Errorf("the client saw %d failed requests during the rollout, want at most one:\n%s", len(failures), strings.Join(failures, "\n"))
	}
	if v, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "exec", "deploy/lbstack-operator", "--", "/usr/bin/lbstack", "version"); err != nil || !strings.Contains(v, "e2e-upgrade") {
		t.Errorf("the operator runs %q (%v), want the e2e-upgrade build", v, err)
	}
	t.Logf("rolled to %s in %s; fewest next hops during the rollout: %v", upgraded, time.Since(start).Round(time.Second), low.hops)
	if len(low.hops) < l.State.Nodes-1 {
		t.Errorf("the route went down to next hops %v at %s: more than the one speaker the rolling update replaces at a time", low.hops, low.at.Format(time.RFC3339Nano))
	}
}

// waitImages waits until the operator, the controller and every speaker
// run image, ready, with the MetalLB object Available.
// failedRequests lists a client's failed requests, each with when it was
// sent and why it failed.
func failedRequests(samples []lab.Sample) []string {
	var out []string
	for _, s := range samples {
		if s.Err != nil {
			out = append(out, s.At.Format("15:04:05.000")+": "+s.Err.Error())
		}
	}
	return out
}

func waitImages(l *lab.Lab, image string, timeout time.Duration) error {
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		pods, err := l.Kube.CoreV1().Pods(lab.StackNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=lbstack"})
		if err == nil {
			count, ok := map[string]int{}, true
			var state []string
			for _, p := range pods.Items {
				comp := p.Labels["component"]
				state = append(state, fmt.Sprintf("%s:%s:ready=%v", p.Name, p.Spec.Containers[0].Image, podReady(&p)))
				if p.Spec.Containers[0].Image != image || !podReady(&p) || p.DeletionTimestamp != nil {
					ok = false
				}
				count[comp]++
			}
			last = strings.Join(state, " ")
			if ok && count["operator"] == 1 && count["controller"] == 1 && count["speaker"] == l.State.Nodes && waitAvailable(l, time.Second) == nil {
				return nil
			}
		}
		time.Sleep(500 * time.Millisecond)
	}
	return fmt.Errorf("stack not on %s after %s: %s", image, timeout, last)
}
