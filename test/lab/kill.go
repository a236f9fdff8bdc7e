package lab

import (
	"context"
	"fmt"
	"os/exec"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// ContainerID returns the containerd ID of a pod's running container and
// the node it runs on.
func (l *Lab) ContainerID(ctx context.Context, namespace, pod, container string) (id, node string, err error) {
	p, err := l.Kube.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return "", "", err
	}
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name != container {
			continue
		}
		if cs.State.Running == nil {
			return "", "", fmt.Errorf("container %s/%s/%s is not running", namespace, pod, container)
		}
		id, ok := strings.CutPrefix(cs.ContainerID, "containerd://")
		if !ok {
			return "", "", fmt.Errorf("container %s/%s/%s: unexpected ID %q", namespace, pod, container, cs.ContainerID)
		}
		return id, p.Spec.NodeName, nil
	}
	return "", "", fmt.Errorf("pod %s/%s has no container %s", namespace, pod, container)
}

// KillContainer SIGKILLs every process of a pod's running container
// through its node's containerd (`ctr tasks kill --all`), as a crash or
// the OOM killer would: no graceful shutdown, no BGP NOTIFICATION,
// sockets closed by the kernel. The kubelet then restarts it as its
// restart policy says.
func (l *Lab) KillContainer(ctx context.Context, namespace, pod, container string) error {
	id, node, err := l.ContainerID(ctx, namespace, pod, container)
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "ctr", "--address", l.State.ContainerdSocket(node), "--namespace", "k8s.io",
		"tasks", "kill", "--all", "--signal", "SIGKILL", id).CombinedOutput()
	if err != nil {
		return fmt.Errorf("kill container %s/%s/%s (%s on %s): %w: %s", namespace, pod, container, id, node, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// FreezeContainer stops every process of a pod's running container
// without killing it (`ctr tasks pause`, the freezer cgroup), as a hung
// process: it answers nothing, and the kubelet, which restarts a killed
// container within a second, sees it running. ThawContainer resumes it.
func (l *Lab) FreezeContainer(ctx context.Context, namespace, pod, container string) error {
	return l.ctrTask(ctx, "pause", namespace, pod, container)
}

// ThawContainer resumes a container FreezeContainer froze.
func (l *Lab) ThawContainer(ctx context.Context, namespace, pod, container string) error {
	return l.ctrTask(ctx, "resume", namespace, pod, container)
}

func (l *Lab) ctrTask(ctx context.Context, verb, namespace, pod, container string) error {
	id, node, err := l.ContainerID(ctx, namespace, pod, container)
	if err != nil {
		return err
	}
	out, err := exec.CommandContext(ctx, "ctr", "--address", l.State.ContainerdSocket(node), "--namespace", "k8s.io", "tasks", verb, id).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s container %s/%s/%s (%s on %s): %w: %s", verb, namespace, pod, container, id, node, err, strings.TrimSpace(string(out)))
	}
	return nil
}
