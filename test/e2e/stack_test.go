package e2e

// The stack tests install lbstack as a user does (`kubectl apply -k
// config/default`, then a MetalLB object) and drive it with metallb.io
// objects and Services, reading the outcome where a user reads it: the
// router's RIB, kubectl's output, the Service's status and events.
//
// They are sequential (no t.Parallel): they share the one stack and the
// one router, and each starts from an empty metallb.io configuration and
// restores the router it found.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/lbstack/lbstack/test/lab"
)

var (
	stackOnce sync.Once
	stackErr  error
)

// requireStack installs lbstack once per run (config/default, then the
// bgp-pools-sharing scenario's MetalLB object, as written) and waits until
// the MetalLB object is Available and a speaker runs on every node (and
// waits for that again before every test). A
// scenario `make lab` applied is removed first, so every test starts from
// no metallb.io configuration.
func requireStack(t testing.TB) *lab.Lab {
	t.Helper()
	l := requireLab(t)
	stackOnce.Do(func() { stackErr = installStack(l) })
	if stackErr != nil {
		t.Fatalf("install lbstack: %v", stackErr)
	}
	// A test before may have restarted a speaker (a kill, a rollout) that
	// is running but not Ready yet: start from the whole stack Ready.
	if err := waitAvailable(l, 2*time.Minute); err != nil {
		t.Fatal(err)
	}
	clearConfig(t, l)
	return l
}

func installStack(l *lab.Lab) error {
	ctx := context.Background()
	start := time.Now()
	if err := l.RemoveScenario(ctx); err != nil {
		return err
	}
	if _, err := l.InstallStack(ctx); err != nil {
		return err
	}
	if _, err := l.Kubectl(ctx, "apply", "--server-side", "-f", scenarioFile("bgp-pools-sharing", "metallb.yaml")); err != nil {
		return err
	}
	if err := waitAvailable(l, 3*time.Minute); err != nil {
		return err
	}
	fmt.Printf("e2e: lbstack installed and Available in %.1fs\n", time.Since(start).Seconds())
	return nil
}

// waitAvailable waits for the MetalLB object's Available condition and a
// ready speaker on every node.
func waitAvailable(l *lab.Lab, timeout time.Duration) error {
	ctx := context.Background()
	deadline := time.Now().Add(timeout)
	for {
		avail, _ := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "metallb", "metallb", "-o", `jsonpath={.status.conditions[?(@.type=="Available")].status}`)
		ready := readySpeakers(l)
		if avail == "True" && len(ready) == l.State.Nodes {
			return nil
		}
		if time.Now().After(deadline) {
			cond, _ := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "metallb", "metallb", "-o", "jsonpath={.status.conditions}")
			pods, _ := l.Kubectl(ctx, "-n", lab.StackNamespace, "get", "pods", "-o", "wide")
			return fmt.Errorf("MetalLB not Available with %d ready speakers after %s (Available=%q, ready speakers on %v)\nconditions: %s\n%s",
				l.State.Nodes, timeout, avail, ready, cond, pods)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// readySpeakers returns the nodes with a ready speaker pod.
func readySpeakers(l *lab.Lab) []string {
	pods, err := l.Kube.CoreV1().Pods(lab.StackNamespace).List(context.Background(), metav1.ListOptions{LabelSelector: "component=speaker"})
	if err != nil {
		return nil
	}
	var out []string
	for _, p := range pods.Items {
		if p.DeletionTimestamp == nil && podReady(&p) {
			out = append(out, p.Spec.NodeName)
		}
	}
	slices.Sort(out)
	return out
}

func scenarioFile(scenario, file string) string {
	root, err := lab.RepoRoot()
	if err != nil {
		panic(err)
	}
	dir, err := lab.ScenariosDir(root)
	if err != nil {
		panic(err)
	}
	return filepath.Join(dir, scenario, file)
}

// configKinds are the metallb.io kinds a configuration is made of.
const configKinds = "ipaddresspools.metallb.io,bgppeers.metallb.io,bgpadvertisements.metallb.io,l2advertisements.metallb.io,communities.metallb.io,bfdprofiles.metallb.io"

// clearConfig deletes every metallb.io configuration object, and the
// Secrets the tests made, and waits until the router has no sessions left
// established with routes: each test starts from nothing.
func clearConfig(t testing.TB, l *lab.Lab) {
	t.Helper()
	ctx := context.Background()
	if _, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "delete", configKinds, "--all", "--wait=true"); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "delete", "secret", "-l", "e2e.lbstack.io/test", "--wait=true"); err != nil {
		t.Fatal(err)
	}
}

// applyYAML applies manifests with kubectl, as a user does, and returns
// kubectl's output (warnings included). The objects are deleted when the
// test ends.
func applyYAML(t testing.TB, l *lab.Lab, name, manifests string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name+".yaml")
	if err := os.WriteFile(path, []byte(manifests), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := kubectlCombined(l, "apply", "-f", path)
	if err != nil {
		t.Fatalf("kubectl apply %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := kubectlCombined(l, "delete", "--ignore-not-found", "--wait=true", "-f", path); err != nil {
			t.Errorf("delete %s: %v\n%s", name, err, out)
		}
	})
	return out
}

// applyFiles applies files as written, in order, deleting them (in
// reverse) when the test ends.
func applyFiles(t testing.TB, l *lab.Lab, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if out, err := kubectlCombined(l, "apply", "-f", p); err != nil {
			t.Fatalf("kubectl apply -f %s: %v\n%s", p, err, out)
		}
	}
	t.Cleanup(func() {
		for i := len(paths) - 1; i >= 0; i-- {
			if out, err := kubectlCombined(l, "delete", "--ignore-not-found", "--wait=true", "-f", paths[i]); err != nil {
				t.Errorf("delete %s: %v\n%s", paths[i], err, out)
			}
		}
	})
}

// kubectlCombined runs the lab's kubectl and returns stdout and stderr
// together, as a terminal shows them.
func kubectlCombined(l *lab.Lab, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.State.Kubectl(), append([]string{"--kubeconfig", l.State.Kubeconfig()}, args...)...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// useRouter configures the router for the test and restores the one it
// found afterwards.
func useRouter(t testing.TB, l *lab.Lab, cfg lab.RouterConfig) {
	t.Helper()
	ctx := context.Background()
	orig := l.State.Router
	if err := l.ConfigureRouter(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := l.ConfigureRouter(ctx, orig); err != nil {
			t.Errorf("restore the router: %v", err)
		}
	})
}

// scenarioRouter is the router a scenario's users had, for this lab.
func scenarioRouter(l *lab.Lab, name string) lab.RouterConfig {
	return lab.Scenarios[name].Router(l.State.Nodes)
}

// nodeAddrs are the IPv4 addresses of the given nodes (1-based), sorted.
func nodeAddrs(nodes ...int) []string {
	var out []string
	for _, i := range nodes {
		out = append(out, lab.NodeAddr(i))
	}
	slices.Sort(out)
	return out
}

func allNodes(l *lab.Lab) []int {
	var out []int
	for i := 1; i <= l.State.Nodes; i++ {
		out = append(out, i)
	}
	return out
}

// backendPod runs the lab's web server (the image the scenarios' nginx
// name maps to) labelled app=<app> on node i, serving HTTP on port 80 and
// on extra TCP and UDP ports when given, and waits until its readiness
// probe passes; it is deleted when the test ends.
func backendPod(t testing.TB, l *lab.Lab, ns, name, app string, node int, extra ...string) {
	t.Helper()
	ctx := context.Background()
	args := []string{"-tcp", "80"}
	if len(extra) > 0 {
		args = extra
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": app}},
		Spec: corev1.PodSpec{
			NodeName:                      lab.NodeName(node),
			TerminationGracePeriodSeconds: new(int64),
			Containers: []corev1.Container{{
				Name: "web", Image: "nginx:1.27", Args: args,
				Env:   []corev1.EnvVar{{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}}},
				Ports: []corev1.ContainerPort{{ContainerPort: 80}},
				ReadinessProbe: &corev1.Probe{
					ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/", Port: intstr.FromInt32(80)}},
					PeriodSeconds: 1,
				},
			}},
		},
	}
	if _, err := l.Kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		err := l.Kube.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
		if err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete pod %s/%s: %v", ns, name, err)
		}
	})
	eventually(t, 90*time.Second, "pod "+ns+"/"+name+" ready", func() (bool, string) {
		got, err := l.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return podReady(got), string(got.Status.Phase)
	})
}

func deletePod(t testing.TB, l *lab.Lab, ns, name string) {
	t.Helper()
	ctx := context.Background()
	if err := l.Kube.CoreV1().Pods(ns).Delete(ctx, name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "pod "+ns+"/"+name+" gone", func() (bool, string) {
		_, err := l.Kube.CoreV1().Pods(ns).Get(ctx, name, metav1.GetOptions{})
		return apierrors.IsNotFound(err), fmt.Sprint(err)
	})
}

// lbService creates a LoadBalancer Service selecting app=<app> on port 80;
// mutate adjusts it first.
func lbService(t testing.TB, l *lab.Lab, ns, name, app string, mutate func(*corev1.Service)) {
	t.Helper()
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.ServiceSpec{
			Type:     corev1.ServiceTypeLoadBalancer,
			Selector: map[string]string{"app": app},
			Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(80)}},
		},
	}
	if mutate != nil {
		mutate(svc)
	}
	if _, err := l.Kube.CoreV1().Services(ns).Create(context.Background(), svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
}

// ingressIPs waits until the Service has its load-balancer addresses
// (want of them) and returns them.
func ingressIPs(t testing.TB, l *lab.Lab, ns, name string, want int) []string {
	t.Helper()
	var ips []string
	eventually(t, 60*time.Second, fmt.Sprintf("Service %s/%s gets %d address(es)", ns, name, want), func() (bool, string) {
		svc, err := l.Kube.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		ips = nil
		for _, in := range svc.Status.LoadBalancer.Ingress {
			ips = append(ips, in.IP)
		}
		return len(ips) == want, fmt.Sprintf("ingress %v", ips)
	})
	return ips
}

// waitNextHops waits until the router's route for prefix has exactly the
// next hops want (none: the route is gone) and returns the route.
func waitNextHops(t testing.TB, l *lab.Lab, prefix string, want []string, timeout time.Duration) lab.Route {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	var rt lab.Route
	eventually(t, timeout, fmt.Sprintf("router: %s via %v", prefix, want), func() (bool, string) {
		var err error
		rt, err = l.Router.Route(context.Background(), prefix)
		if err != nil {
			return false, err.Error()
		}
		got := rt.NextHops()
		slices.Sort(got)
		return slices.Equal(got, want), fmt.Sprintf("next hops %v", got)
	})
	return rt
}

// waitSessions waits until the router has exactly the given sessions
// Established.
func waitSessions(t testing.TB, l *lab.Lab, want []string, timeout time.Duration) {
	t.Helper()
	want = slices.Clone(want)
	slices.Sort(want)
	eventually(t, timeout, fmt.Sprintf("router: sessions with %v established", want), func() (bool, string) {
		ns, err := l.Router.Neighbors(context.Background())
		if err != nil {
			return false, err.Error()
		}
		var up []string
		var all []string
		for _, n := range ns {
			all = append(all, n.Address+"="+n.State)
			if n.Established() {
				up = append(up, n.Address)
			}
		}
		slices.Sort(up)
		return slices.Equal(up, want), strings.Join(all, " ")
	})
}

// serviceEvents returns the Service's events with the given reason (this
// Service's: events of an earlier one of the same name are left out).
func serviceEvents(t testing.TB, l *lab.Lab, ns, name, reason string) []corev1.Event {
	t.Helper()
	svc, err := l.Kube.CoreV1().Services(ns).Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := l.Kube.CoreV1().Events(ns).List(context.Background(), metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Service,involvedObject.uid=" + string(svc.UID) + ",reason=" + reason,
	})
	if err != nil {
		t.Fatal(err)
	}
	return evs.Items
}
