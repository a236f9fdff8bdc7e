package mustgather

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
)

// maxLogBytes bounds one container log: must-gather archives travel by
// mail and tickets.
const maxLogBytes = 50 << 20

// gatherPods writes every pod of the stack's namespace: its YAML, events
// and the current and previous logs of each container (init ones too).
func (g *gatherer) gatherPods(ctx context.Context) {
	ns := g.res.Namespace
	pods, err := g.kube.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		g.fail("namespaces/"+ns+"/pods", err)
		return
	}
	g.snap.pods = pods.Items
	for i := range pods.Items {
		p := &pods.Items[i]
		dir := fmt.Sprintf("namespaces/%s/pods/%s/", ns, p.Name)
		clean := p.DeepCopy()
		clean.ManagedFields = nil
		g.writeYAML(dir+"pod.yaml", clean)
		g.writeEvents(ctx, dir+"events.yaml", ns, string(p.UID))
		statuses := map[string]corev1.ContainerStatus{}
		for _, s := range append(append([]corev1.ContainerStatus(nil), p.Status.InitContainerStatuses...), p.Status.ContainerStatuses...) {
			statuses[s.Name] = s
		}
		var names []string
		for _, c := range p.Spec.InitContainers {
			names = append(names, c.Name)
		}
		for _, c := range p.Spec.Containers {
			names = append(names, c.Name)
		}
		for _, c := range names {
			st, known := statuses[c]
			if !known || (st.State.Waiting != nil && st.LastTerminationState.Terminated == nil && st.RestartCount == 0) {
				g.writeFile(dir+"logs/"+c+".log", []byte("(the container has not started: no log)\n"))
			} else {
				g.writeLog(ctx, dir+"logs/"+c+".log", ns, p.Name, c, false)
			}
			if known && (st.LastTerminationState.Terminated != nil || st.RestartCount > 0) {
				g.writeLog(ctx, dir+"logs/"+c+".previous.log", ns, p.Name, c, true)
			}
		}
	}
}

// writeLog writes one container log through the API (the kubelet).
func (g *gatherer) writeLog(ctx context.Context, path, ns, pod, container string, previous bool) {
	opts := &corev1.PodLogOptions{Container: container, Previous: previous, LimitBytes: ptrInt64(maxLogBytes)}
	switch {
	case g.opts.SinceTime != nil:
		t := metav1.NewTime(*g.opts.SinceTime)
		opts.SinceTime = &t
	case g.opts.Since > 0:
		s := int64(g.opts.Since.Seconds())
		opts.SinceSeconds = &s
	}
	lctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	rc, err := g.kube.CoreV1().Pods(ns).GetLogs(pod, opts).Stream(lctx)
	if err != nil {
		g.fail(path, fmt.Errorf("logs of %s/%s container %s: %w", ns, pod, container, err))
		return
	}
	defer rc.Close()
	data, err := io.ReadAll(rc)
	if err != nil {
		g.fail(path, fmt.Errorf("logs of %s/%s container %s: %w", ns, pod, container, err))
	}
	g.writeText(path, data)
}

func ptrInt64(v int64) *int64 { return &v }

// execResult is what a command run in a container printed.
type execResult struct {
	Stdout, Stderr []byte
	Err            error
}

// exec runs argv in a container through the API's exec subresource
// (WebSocket, falling back to SPDY, as kubectl does), bounded by
// ExecTimeout.
func (g *gatherer) exec(ctx context.Context, ns, pod, container string, argv ...string) execResult {
	if g.execFn != nil {
		return g.execFn(ctx, ns, pod, container, argv...)
	}
	ctx, cancel := context.WithTimeout(ctx, g.opts.ExecTimeout)
	defer cancel()
	req := g.kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: container, Command: argv, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	ws, err := remotecommand.NewWebSocketExecutor(g.rest, http.MethodGet, req.URL().String())
	if err != nil {
		return execResult{Err: err}
	}
	spdy, err := remotecommand.NewSPDYExecutor(g.rest, http.MethodPost, req.URL())
	if err != nil {
		return execResult{Err: err}
	}
	exe, err := remotecommand.NewFallbackExecutor(ws, spdy, func(err error) bool { return true })
	if err != nil {
		return execResult{Err: err}
	}
	var out, errOut bytes.Buffer
	err = exe.StreamWithContext(ctx, remotecommand.StreamOptions{Stdout: &out, Stderr: &errOut})
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("timed out after %s: %w", g.opts.ExecTimeout, err)
	}
	return execResult{Stdout: out.Bytes(), Stderr: errOut.Bytes(), Err: err}
}

// describeExecError says what went wrong, with the exit code and stderr.
func describeExecError(r execResult) error {
	var ce utilexec.CodeExitError
	msg := strings.TrimSpace(string(r.Stderr))
	if len(msg) > 500 {
		msg = msg[:500] + "..."
	}
	if errors.As(r.Err, &ce) {
		return fmt.Errorf("exit code %d: %s", ce.Code, msg)
	}
	if msg != "" {
		return fmt.Errorf("%w: %s", r.Err, msg)
	}
	return r.Err
}
