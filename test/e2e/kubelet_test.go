package e2e

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/lbstack/lbstack/test/lab"
)

func TestNodesRegisteredAndFresh(t *testing.T) {
	l := requireLab(t)
	ctx := context.Background()
	nodes, err := l.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{LabelSelector: "lab.lbstack.io/node=true"})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != l.State.Nodes {
		t.Fatalf("%d lab nodes registered, want %d", len(nodes.Items), l.State.Nodes)
	}
	for _, n := range nodes.Items {
		i := nodeIndex(t, n.Name)
		var addrs []string
		for _, a := range n.Status.Addresses {
			addrs = append(addrs, string(a.Type)+"="+a.Address)
		}
		want := []string{"InternalIP=" + lab.NodeAddr(i), "InternalIP=" + lab.NodeAddr6(i), "Hostname=" + n.Name}
		if strings.Join(addrs, " ") != strings.Join(want, " ") {
			t.Errorf("%s addresses = %v, want %v", n.Name, addrs, want)
		}
		if n.Spec.PodCIDR != lab.NodePodCIDR(i) {
			t.Errorf("%s pod range %s, want %s", n.Name, n.Spec.PodCIDR, lab.NodePodCIDR(i))
		}
		if n.Labels[corev1.LabelHostname] != n.Name {
			t.Errorf("%s hostname label %q", n.Name, n.Labels[corev1.LabelHostname])
		}
		ready := false
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady {
				ready = c.Status == corev1.ConditionTrue
				// The kubelet posts status every 10s.
				if age := time.Since(c.LastHeartbeatTime.Time); age > 30*time.Second {
					t.Errorf("%s Ready heartbeat is %s old", n.Name, age)
				}
			}
		}
		if !ready {
			t.Errorf("%s not Ready", n.Name)
		}
		lease, err := l.Kube.CoordinationV1().Leases(corev1.NamespaceNodeLease).Get(ctx, n.Name, metav1.GetOptions{})
		if err != nil {
			t.Errorf("%s lease: %v", n.Name, err)
			continue
		}
		if age := time.Since(lease.Spec.RenewTime.Time); age > 30*time.Second {
			t.Errorf("%s lease renewed %s ago", n.Name, age)
		}
	}
}

// probeContainer is the probe program as a container listening on port.
func probeContainer(port int, args ...string) corev1.Container {
	return corev1.Container{
		Name:  "probe",
		Image: probeImage,
		Args:  append([]string{fmt.Sprintf("--listen=:%d", port), "--allowed-configmap=probe-allowed"}, args...),
		Env: []corev1.EnvVar{
			{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "NODE_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
			{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "GREETING", Value: "hello $(NODE_NAME)"},
		},
		Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}},
		ReadinessProbe: &corev1.Probe{
			ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
			PeriodSeconds:    1,
			FailureThreshold: 1,
		},
	}
}

// TestDaemonSetRunsRealProcessPerNode: a DaemonSet of a real image runs one
// process per node, in that node's network namespace and its own mount
// namespace, with its own bound service-account token - and RBAC applies
// to it: what its Role grants works, anything else is refused.
func TestDaemonSetRunsRealProcessPerNode(t *testing.T) {
	t.Parallel()
	l := requireLab(t)
	ctx := context.Background()
	ns := newNamespace(t, l, "ds")
	grantProbe(t, l, ns)
	labels := map[string]string{"app": "probe-ds"}
	ds := &appsv1.DaemonSet{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec: appsv1.DaemonSetSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					HostNetwork:                   true,
					ServiceAccountName:            "probe",
					TerminationGracePeriodSeconds: ptr.To(int64(2)),
					Containers:                    []corev1.Container{probeContainer(17001)},
				},
			},
		},
	}
	if _, err := l.Kube.AppsV1().DaemonSets(ns).Create(ctx, ds, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "DaemonSet ready on every node", func() (bool, string) {
		got, err := l.Kube.AppsV1().DaemonSets(ns).Get(ctx, "probe", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		s := got.Status
		return s.DesiredNumberScheduled == int32(l.State.Nodes) && s.NumberReady == s.DesiredNumberScheduled,
			fmt.Sprintf("desired %d, ready %d", s.DesiredNumberScheduled, s.NumberReady)
	})
	pods, err := l.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=probe-ds"})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != l.State.Nodes {
		t.Fatalf("%d pods, want one per node (%d)", len(pods.Items), l.State.Nodes)
	}
	ownMountNS, _ := os.Readlink("/proc/self/ns/mnt")
	seen := map[string]string{}
	var pids []int
	for _, p := range pods.Items {
		node := p.Spec.NodeName
		i := nodeIndex(t, node)
		if p.Status.PodIP != lab.NodeAddr(i) {
			t.Errorf("%s: hostNetwork pod IP %s, want its node's %s", p.Name, p.Status.PodIP, lab.NodeAddr(i))
		}
		rep, err := getReport(p.Status.PodIP, 17001)
		if err != nil {
			t.Fatalf("%s: %v", p.Name, err)
		}
		pids = append(pids, rep.PID)
		// The process is a real one, living in its node's namespace.
		if want := netnsID(t, node); rep.NetNS != want {
			t.Errorf("%s: runs in network namespace %s, want %s (%s)", p.Name, rep.NetNS, want, node)
		}
		if other, dup := seen[rep.NetNS]; dup {
			t.Errorf("%s and %s share a network namespace", p.Name, other)
		}
		seen[rep.NetNS] = p.Name
		if hostNS, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", rep.PID)); err != nil || hostNS != rep.NetNS {
			t.Errorf("%s: /proc/%d/ns/net = %q (%v), the process reported %q", p.Name, rep.PID, hostNS, err, rep.NetNS)
		}
		if rep.MountNS == ownMountNS {
			t.Errorf("%s: shares the host's mount namespace", p.Name)
		}
		if rep.Hostname != node {
			t.Errorf("%s: hostname %q, want its node's %q", p.Name, rep.Hostname, node)
		}
		// Its own token: its service account, bound to this very pod.
		if want := "system:serviceaccount:" + ns + ":probe"; rep.TokenSubject != want {
			t.Errorf("%s: token subject %q, want %q", p.Name, rep.TokenSubject, want)
		}
		if rep.TokenPod != p.Name {
			t.Errorf("%s: token bound to pod %q", p.Name, rep.TokenPod)
		}
		if rep.Namespace != ns || !rep.HasCA {
			t.Errorf("%s: mounted namespace %q (want %q), ca.crt present %v", p.Name, rep.Namespace, ns, rep.HasCA)
		}
		// RBAC: the Role's one permission works, the rest is refused.
		if rep.Allowed != "" {
			t.Errorf("%s: request its Role allows failed: %s", p.Name, rep.Allowed)
		}
		if rep.ForbiddenCode != 403 {
			t.Errorf("%s: listing kube-system secrets answered %d, want 403 Forbidden", p.Name, rep.ForbiddenCode)
		}
		if rep.Env["NODE_NAME"] != node || rep.Env["POD_NAME"] != p.Name || rep.Env["POD_IP"] != lab.NodeAddr(i) || rep.Env["GREETING"] != "hello "+node {
			t.Errorf("%s: env %v", p.Name, rep.Env)
		}
		if rep.Env["KUBERNETES_SERVICE_HOST"] != lab.APIServerAddr {
			t.Errorf("%s: KUBERNETES_SERVICE_HOST %q", p.Name, rep.Env["KUBERNETES_SERVICE_HOST"])
		}
		logs, err := l.State.Logs(ns, p.Name, "probe")
		if err != nil || !strings.Contains(logs, fmt.Sprintf("probe pid %d serving", rep.PID)) {
			t.Errorf("%s: container log lacks the process's output (%v):\n%s", p.Name, err, logs)
		}
	}
	// The token mount point was made inside each container's mount
	// namespace: nothing appeared on the host.
	if _, err := os.Stat("/run/secrets"); err == nil && !runSecretsExisted {
		t.Errorf("/run/secrets appeared on the host")
	}

	// Deleting the pods stops their processes.
	if err := l.Kube.AppsV1().DaemonSets(ns).Delete(ctx, "probe", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "DaemonSet pods gone", func() (bool, string) {
		pods, err := l.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		return len(pods.Items) == 0, fmt.Sprintf("%d pods left", len(pods.Items))
	})
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); err == nil {
			if st, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); !strings.Contains(string(st), ") Z ") {
				t.Errorf("process %d still runs after its pod was deleted", pid)
			}
		}
	}
}

// TestDeploymentReadyThroughProbe: a Deployment's pod (pod network) runs,
// is not Ready while its readiness probe fails and becomes Ready when it
// passes; a killed process is restarted and counted, and a failing
// liveness probe restarts it too.
func TestDeploymentReadyThroughProbe(t *testing.T) {
	t.Parallel()
	l := requireLab(t)
	ctx := context.Background()
	ns := newNamespace(t, l, "deploy")
	grantProbe(t, l, ns)
	labels := map[string]string{"app": "probe-deploy"}
	c := probeContainer(17002, "--ready-after=4s")
	c.LivenessProbe = &corev1.Probe{
		ProbeHandler:     corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/livez", Port: intstr.FromInt32(17002)}},
		PeriodSeconds:    1,
		FailureThreshold: 2,
	}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "probe"},
		Spec: appsv1.DeploymentSpec{
			Replicas: ptr.To(int32(1)),
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					ServiceAccountName:            "probe",
					TerminationGracePeriodSeconds: ptr.To(int64(2)),
					Containers:                    []corev1.Container{c},
				},
			},
		},
	}
	if _, err := l.Kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	pod := func() *corev1.Pod {
		t.Helper()
		pods, err := l.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=probe-deploy"})
		if err != nil {
			t.Fatal(err)
		}
		if len(pods.Items) != 1 {
			return nil
		}
		return &pods.Items[0]
	}
	// While the probe fails (the first 4 s), the running pod is not Ready:
	// every status the kubelet writes is watched, and none may say Ready
	// earlier than the probe allows.
	watchReadiness(t, l, ns, "app=probe-deploy", 4*time.Second)
	p := pod()
	i := nodeIndex(t, p.Spec.NodeName)
	podIP := netip.MustParseAddr(p.Status.PodIP)
	if !netip.MustParsePrefix(lab.NodePodCIDR(i)).Contains(podIP) {
		t.Errorf("pod IP %s not in %s's range %s", podIP, p.Spec.NodeName, lab.NodePodCIDR(i))
	}
	eventually(t, 20*time.Second, "Deployment has its replica ready", func() (bool, string) {
		got, err := l.Kube.AppsV1().Deployments(ns).Get(ctx, "probe", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return got.Status.ReadyReplicas == 1, fmt.Sprintf("%d ready replicas", got.Status.ReadyReplicas)
	})
	rep, err := getReport(p.Status.PodIP, 17002)
	if err != nil {
		t.Fatal(err)
	}
	// A pod-network pod has its own network namespace, with the pod
	// address, behind its node - and reaches the API server from there.
	podNS := lab.PodNetns(string(p.UID))
	if want := netnsID(t, podNS); rep.NetNS != want {
		t.Errorf("runs in %s, want the pod's namespace %s (%s)", rep.NetNS, podNS, want)
	}
	if rep.NetNS == netnsID(t, p.Spec.NodeName) {
		t.Errorf("runs in its node's network namespace")
	}
	if rep.Allowed != "" || rep.ForbiddenCode != 403 {
		t.Errorf("from the pod network: allowed request: %q, forbidden request: %d", rep.Allowed, rep.ForbiddenCode)
	}
	if rep.Hostname != p.Name {
		t.Errorf("hostname %q, want the pod's name %q", rep.Hostname, p.Name)
	}

	// Readiness follows the probe both ways.
	setProbe(t, p.Status.PodIP, 17002, "ready=false")
	eventually(t, 20*time.Second, "pod not Ready after its probe fails", func() (bool, string) {
		p := pod()
		return p != nil && !podReady(p), "still Ready"
	})
	setProbe(t, p.Status.PodIP, 17002, "ready=true")
	eventually(t, 20*time.Second, "pod Ready again", func() (bool, string) {
		p := pod()
		return p != nil && podReady(p), "not Ready"
	})

	// A killed process is restarted, and counted.
	if err := syscall.Kill(rep.PID, syscall.SIGKILL); err != nil {
		t.Fatalf("kill %d: %v", rep.PID, err)
	}
	eventually(t, 30*time.Second, "killed container restarted", func() (bool, string) {
		p := pod()
		if p == nil || len(p.Status.ContainerStatuses) != 1 {
			return false, "no pod"
		}
		cs := p.Status.ContainerStatuses[0]
		last := cs.LastTerminationState.Terminated
		return cs.RestartCount == 1 && cs.State.Running != nil && last != nil && last.ExitCode == 137 && podReady(p),
			fmt.Sprintf("restarts %d, state %+v, last %+v", cs.RestartCount, cs.State, last)
	})
	rep2, err := getReport(p.Status.PodIP, 17002)
	if err != nil {
		t.Fatal(err)
	}
	if rep2.PID == rep.PID {
		t.Errorf("same PID %d after the restart", rep.PID)
	}

	// A failing liveness probe gets the container killed and restarted.
	setProbe(t, p.Status.PodIP, 17002, "live=false")
	eventually(t, 30*time.Second, "container restarted by its liveness probe", func() (bool, string) {
		p := pod()
		if p == nil || len(p.Status.ContainerStatuses) != 1 {
			return false, "no pod"
		}
		cs := p.Status.ContainerStatuses[0]
		last := cs.LastTerminationState.Terminated
		return cs.RestartCount == 2 && last != nil && strings.Contains(last.Message, "Liveness probe failed"),
			fmt.Sprintf("restarts %d, last %+v", cs.RestartCount, last)
	})

	// Deleting the pod removes its network namespace.
	if err := l.Kube.AppsV1().Deployments(ns).Delete(ctx, "probe", metav1.DeleteOptions{PropagationPolicy: ptr.To(metav1.DeletePropagationForeground)}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "pod namespace "+podNS+" deleted", func() (bool, string) {
		_, err := os.Stat(lab.NetnsPath(podNS))
		return os.IsNotExist(err), fmt.Sprint(err)
	})
}

// TestSimulatedPodsGetReadyEndpoints: pods of any other image (nginx) are
// simulated - an address from their node's range, Running and Ready - so
// EndpointSlices list them as ready endpoints on their nodes.
func TestSimulatedPodsGetReadyEndpoints(t *testing.T) {
	t.Parallel()
	l := requireLab(t)
	ctx := context.Background()
	ns := newNamespace(t, l, "nginx")
	labels := map[string]string{"app": "nginx"}
	replicas := int32(2 * l.State.Nodes)
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx"},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{
					Name: "nginx", Image: "nginx:1.27",
					Ports: []corev1.ContainerPort{{ContainerPort: 80}},
				}}},
			},
		},
	}
	if _, err := l.Kube.AppsV1().Deployments(ns).Create(ctx, d, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "nginx"},
		Spec:       corev1.ServiceSpec{Selector: labels, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80)}}},
	}
	if _, err := l.Kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var endpoints []discoveryv1.Endpoint
	eventually(t, 60*time.Second, "ready endpoints for every replica", func() (bool, string) {
		slices, err := l.Kube.DiscoveryV1().EndpointSlices(ns).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=nginx"})
		if err != nil {
			return false, err.Error()
		}
		endpoints = nil
		ready := 0
		for _, s := range slices.Items {
			for _, e := range s.Endpoints {
				endpoints = append(endpoints, e)
				if ptr.Deref(e.Conditions.Ready, false) {
					ready++
				}
			}
		}
		return ready == int(replicas), fmt.Sprintf("%d endpoints, %d ready", len(endpoints), ready)
	})
	pods, err := l.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: "app=nginx"})
	if err != nil {
		t.Fatal(err)
	}
	podByIP := map[string]corev1.Pod{}
	for _, p := range pods.Items {
		if p.Status.Phase != corev1.PodRunning || !podReady(&p) {
			t.Errorf("%s: phase %s, ready %v", p.Name, p.Status.Phase, podReady(&p))
		}
		if _, dup := podByIP[p.Status.PodIP]; dup {
			t.Errorf("pod IP %s given twice", p.Status.PodIP)
		}
		podByIP[p.Status.PodIP] = p
	}
	nodesUsed := map[string]bool{}
	for _, e := range endpoints {
		if e.NodeName == nil {
			t.Errorf("endpoint %v has no node", e.Addresses)
			continue
		}
		nodesUsed[*e.NodeName] = true
		i := nodeIndex(t, *e.NodeName)
		for _, a := range e.Addresses {
			if !netip.MustParsePrefix(lab.NodePodCIDR(i)).Contains(netip.MustParseAddr(a)) {
				t.Errorf("endpoint %s on %s is outside the node's range %s", a, *e.NodeName, lab.NodePodCIDR(i))
			}
			if p, ok := podByIP[a]; !ok || p.Spec.NodeName != *e.NodeName {
				t.Errorf("endpoint %s on %s matches no pod on that node", a, *e.NodeName)
			}
		}
	}
	if len(nodesUsed) < 2 {
		t.Errorf("all %d replicas on %v: the scheduler should spread them", replicas, nodesUsed)
	}
	// Simulated containers have no process and hence no log.
	if _, err := l.State.Logs(ns, pods.Items[0].Name, "nginx"); err == nil {
		t.Errorf("a simulated container has a log")
	}
}

// TestLbstackImageRunsTheLbstackBinary: any image named lbstack runs the
// lbstack binary this tree builds, with Kubernetes' command/args semantics.
func TestLbstackImageRunsTheLbstackBinary(t *testing.T) {
	t.Parallel()
	l := requireLab(t)
	ctx := context.Background()
	ns := newNamespace(t, l, "lbstack")
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "version"},
		Spec: corev1.PodSpec{
			RestartPolicy: corev1.RestartPolicyNever,
			Containers:    []corev1.Container{{Name: "lbstack", Image: "quay.io/lbstack/lbstack:dev", Args: []string{"version"}}},
		},
	}
	if _, err := l.Kube.CoreV1().Pods(ns).Create(ctx, p, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "lbstack version pod succeeded", func() (bool, string) {
		got, err := l.Kube.CoreV1().Pods(ns).Get(ctx, "version", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return got.Status.Phase == corev1.PodSucceeded, fmt.Sprintf("phase %s %+v", got.Status.Phase, got.Status.ContainerStatuses)
	})
	logs, err := l.State.Logs(ns, "version", "lbstack")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs, "\nlbstack ") {
		t.Errorf("log of `lbstack version` does not show the version:\n%s", logs)
	}
}

// watchReadiness watches the pod selected by selector until it is Ready and
// fails if any status the kubelet wrote said Ready before the container had
// run for notBefore (the probe program's --ready-after), or if no status
// showed it running but not Ready.
func watchReadiness(t *testing.T, l *lab.Lab, ns, selector string, notBefore time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	w, err := l.Kube.CoreV1().Pods(ns).Watch(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	sawNotReady := false
	for ev := range w.ResultChan() {
		p, ok := ev.Object.(*corev1.Pod)
		if !ok || len(p.Status.ContainerStatuses) != 1 || p.Status.ContainerStatuses[0].State.Running == nil {
			continue
		}
		started := p.Status.ContainerStatuses[0].State.Running.StartedAt.Time
		if !podReady(p) {
			sawNotReady = true
			continue
		}
		for _, c := range p.Status.Conditions {
			// Times have 1 s resolution.
			if c.Type == corev1.PodReady && c.LastTransitionTime.Add(time.Second).Before(started.Add(notBefore)) {
				t.Errorf("pod Ready at %s, %s after its container started: before its readiness probe could pass",
					c.LastTransitionTime.Format(time.RFC3339), c.LastTransitionTime.Sub(started))
			}
		}
		if !sawNotReady {
			t.Errorf("the pod was never seen running but not Ready: its readiness probe did not gate it")
		}
		return
	}
	t.Fatalf("pod %s in %s not Ready within 60s", selector, ns)
}
