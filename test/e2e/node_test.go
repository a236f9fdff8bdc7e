package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/lbstack/lbstack/test/lab"
)

// TestNodesAreReal: every node is a kubelet v1.34.4 on containerd with its
// pod range; pods of an image built here run on each node, pass their
// readiness probe, log what they print (kubectl logs), run commands
// (kubectl exec), reach each other across nodes and through a ClusterIP
// (kube-proxy), and a killed container is restarted by its kubelet.
func TestNodesAreReal(t *testing.T) {
	l := requireLab(t)
	ctx := context.Background()
	nodes, err := l.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes.Items) != l.State.Nodes {
		t.Fatalf("%d nodes, want %d", len(nodes.Items), l.State.Nodes)
	}
	for _, n := range nodes.Items {
		i := nodeIndex(t, n.Name)
		info := n.Status.NodeInfo
		if info.KubeletVersion != lab.K8sVersion || !strings.HasPrefix(info.ContainerRuntimeVersion, "containerd://") {
			t.Errorf("%s: kubelet %s, runtime %s; want %s on containerd", n.Name, info.KubeletVersion, info.ContainerRuntimeVersion, lab.K8sVersion)
		}
		if n.Spec.PodCIDR != lab.NodePodCIDR(i) {
			t.Errorf("%s: pod range %q, want %s", n.Name, n.Spec.PodCIDR, lab.NodePodCIDR(i))
		}
	}

	ns := newNamespace(t, l, "nodes")
	for _, i := range allNodes(l) {
		backendPod(t, l, ns, fmt.Sprintf("web-%d", i), "web", i)
	}
	pods, err := l.Kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		i := nodeIndex(t, p.Spec.NodeName)
		if !strings.HasPrefix(p.Status.PodIP, strings.TrimSuffix(lab.NodePodCIDR(i), "0/24")) {
			t.Errorf("pod %s on %s has address %s, outside %s", p.Name, p.Spec.NodeName, p.Status.PodIP, lab.NodePodCIDR(i))
		}
	}
	logs, err := l.Kubectl(ctx, "-n", ns, "logs", "web-1")
	if err != nil || !strings.Contains(logs, "serving HTTP on tcp/80 as pod web-1 on node "+lab.NodeName(1)) {
		t.Errorf("kubectl logs web-1: %q %v", logs, err)
	}

	// A ClusterIP Service over the pods: from node 1's pod, through its
	// node's kube-proxy, every pod answers in turn.
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "web"},
		Spec: corev1.ServiceSpec{
			Selector: map[string]string{"app": "web"},
			Ports:    []corev1.ServicePort{{Port: 8080, TargetPort: intstr.FromInt32(80)}},
		},
	}
	created, err := l.Kube.CoreV1().Services(ns).Create(ctx, svc, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	eventually(t, 60*time.Second, "every pod answers through the ClusterIP", func() (bool, string) {
		out, err := l.Kubectl(ctx, "-n", ns, "exec", "web-1", "--", "/webserver", "-get", fmt.Sprintf("http://%s:8080/", created.Spec.ClusterIP))
		if err != nil {
			return false, err.Error()
		}
		a, err := lab.ParseAnswer(out)
		if err != nil {
			return false, err.Error()
		}
		seen[a.Pod] = true
		return len(seen) == l.State.Nodes, fmt.Sprint(seen)
	})
	// Pod to pod across nodes, no translation: the answering pod sees
	// the asking pod's own address.
	other, err := l.Kube.CoreV1().Pods(ns).Get(ctx, fmt.Sprintf("web-%d", l.State.Nodes), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	first, err := l.Kube.CoreV1().Pods(ns).Get(ctx, "web-1", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := l.Kubectl(ctx, "-n", ns, "exec", "web-1", "--", "/webserver", "-get", "http://"+other.Status.PodIP+"/")
	if a, perr := lab.ParseAnswer(out); err != nil || perr != nil || a.ClientAddrSeen() != first.Status.PodIP {
		t.Errorf("web-1 → %s: %q %v %v; want the answer to see %s", other.Status.PodIP, out, err, perr, first.Status.PodIP)
	}

	// A killed container is restarted by its kubelet and counted.
	if err := l.KillContainer(ctx, ns, "web-1", "web"); err != nil {
		t.Fatal(err)
	}
	eventually(t, 60*time.Second, "web-1 restarted after SIGKILL", func() (bool, string) {
		p, err := l.Kube.CoreV1().Pods(ns).Get(ctx, "web-1", metav1.GetOptions{})
		if err != nil || len(p.Status.ContainerStatuses) != 1 {
			return false, fmt.Sprint(err)
		}
		cs := p.Status.ContainerStatuses[0]
		last := cs.LastTerminationState.Terminated
		return cs.RestartCount == 1 && last != nil && last.ExitCode == 137 && podReady(p), fmt.Sprintf("restarts %d, last %+v", cs.RestartCount, last)
	})
}
