package lab

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

type probeKind string

const (
	probeStartup   probeKind = "Startup"
	probeReadiness probeKind = "Readiness"
	probeLiveness  probeKind = "Liveness"
)

// startProbes runs the container's probes for one instance, as the real
// kubelet does: the startup probe first, then readiness and liveness.
func (c *container) startProbes(inst *instance) {
	ctx, cancel := context.WithCancel(c.w.n.k.ctx)
	c.mu.Lock()
	inst.cancelProbes = cancel
	exited := isClosed(inst.exited)
	c.mu.Unlock()
	if exited {
		cancel()
		return
	}
	go func() {
		if p := c.spec.StartupProbe; p != nil {
			if !c.probeLoop(ctx, inst, probeStartup, p) {
				return
			}
		}
		if p := c.spec.ReadinessProbe; p != nil {
			go c.probeLoop(ctx, inst, probeReadiness, p)
		}
		if p := c.spec.LivenessProbe; p != nil {
			go c.probeLoop(ctx, inst, probeLiveness, p)
		}
	}()
}

// probeLoop probes until ctx ends. A startup probe returns true once it
// succeeds; a failing startup or liveness probe kills the instance.
func (c *container) probeLoop(ctx context.Context, inst *instance, kind probeKind, p *corev1.Probe) bool {
	period := time.Duration(max(p.PeriodSeconds, 1)) * time.Second
	timeout := time.Duration(max(p.TimeoutSeconds, 1)) * time.Second
	successes := int(max(p.SuccessThreshold, 1))
	failures := int(max(p.FailureThreshold, 1))
	if !sleepCtx(ctx, time.Duration(p.InitialDelaySeconds)*time.Second) {
		return false
	}
	okRun, failRun := 0, 0
	for {
		ok, msg := c.probeOnce(ctx, inst, p, timeout)
		if ctx.Err() != nil {
			return false
		}
		if ok {
			okRun, failRun = okRun+1, 0
		} else {
			okRun, failRun = 0, failRun+1
		}
		pod, _ := c.w.snapshot()
		if !ok && (failRun == 1 || failRun == failures) {
			c.w.n.rec.Eventf(pod, corev1.EventTypeWarning, "Unhealthy", "%s probe failed: %s", kind, msg)
		}
		switch kind {
		case probeStartup:
			if ok {
				c.setProbeState(inst, func() { c.started = true })
				return true
			}
		case probeReadiness:
			if ok && okRun >= successes {
				c.setProbeState(inst, func() { c.ready = true })
			}
			if !ok && failRun >= failures {
				c.setProbeState(inst, func() { c.ready = false })
			}
		}
		if (kind == probeStartup || kind == probeLiveness) && !ok && failRun >= failures {
			why := fmt.Sprintf("%s probe failed: %s", kind, msg)
			c.w.n.rec.Eventf(pod, corev1.EventTypeNormal, "Killing", "Container %s failed %s probe, will be restarted", c.spec.Name, strings.ToLower(string(kind)))
			grace := 30 * time.Second
			if p.TerminationGracePeriodSeconds != nil {
				grace = time.Duration(*p.TerminationGracePeriodSeconds) * time.Second
			} else if pod.Spec.TerminationGracePeriodSeconds != nil {
				grace = time.Duration(*pod.Spec.TerminationGracePeriodSeconds) * time.Second
			}
			go c.killInstance(inst, grace, why)
			return false
		}
		if !sleepCtx(ctx, period) {
			return false
		}
	}
}

// setProbeState applies a probe result if inst is still the current
// instance (a late result must never touch its successor), then wakes the
// pod worker to write the status.
func (c *container) setProbeState(inst *instance, f func()) {
	c.mu.Lock()
	if c.cur == inst {
		f()
	}
	c.mu.Unlock()
	c.w.poke()
}

// killInstance stops inst (and only inst) for a probe failure.
func (c *container) killInstance(inst *instance, grace time.Duration, why string) {
	c.mu.Lock()
	if c.cur != inst || isClosed(inst.exited) {
		c.mu.Unlock()
		return
	}
	inst.killReason = why
	c.mu.Unlock()
	c.w.logf("killing %s: %s", c.spec.Name, why)
	if err := inst.proc.Stop(grace); err != nil {
		c.w.logf("kill %s: %v", c.spec.Name, err)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// probeOnce runs one probe: HTTP GET, TCP connect or exec. HTTP and TCP
// probes go from the kubelet (host namespace) to the pod's address, which
// the lab routes to the node, as a real kubelet probes from the node.
func (c *container) probeOnce(ctx context.Context, inst *instance, p *corev1.Probe, timeout time.Duration) (bool, string) {
	host := c.w.podIP.String()
	switch {
	case p.HTTPGet != nil:
		g := p.HTTPGet
		port, err := c.resolvePort(g.Port)
		if err != nil {
			return false, err.Error()
		}
		if g.Host != "" {
			host = g.Host
		}
		scheme := strings.ToLower(string(g.Scheme))
		if scheme == "" {
			scheme = "http"
		}
		path := g.Path
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		url := fmt.Sprintf("%s://%s%s", scheme, net.JoinHostPort(host, strconv.Itoa(port)), path)
		rctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err.Error()
		}
		req.Header.Set("User-Agent", "kube-probe/"+strings.TrimPrefix(K8sVersion, "v"))
		for _, h := range g.HTTPHeaders {
			req.Header.Set(h.Name, h.Value)
		}
		client := &http.Client{Transport: &http.Transport{
			DisableKeepAlives: true,
			// The kubelet does not verify probe certificates either.
			TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		}}
		resp, err := client.Do(req)
		if err != nil {
			return false, err.Error()
		}
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode >= 400 {
			return false, fmt.Sprintf("HTTP probe failed with statuscode: %d", resp.StatusCode)
		}
		return true, ""
	case p.TCPSocket != nil:
		port, err := c.resolvePort(p.TCPSocket.Port)
		if err != nil {
			return false, err.Error()
		}
		if p.TCPSocket.Host != "" {
			host = p.TCPSocket.Host
		}
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(host, strconv.Itoa(port)), timeout)
		if err != nil {
			return false, err.Error()
		}
		conn.Close()
		return true, ""
	case p.Exec != nil:
		return c.execProbe(ctx, p.Exec.Command, timeout)
	case p.GRPC != nil:
		return false, fmt.Sprintf("gRPC probes are %v", errNotSupported)
	}
	return false, "probe has no handler"
}

func (c *container) resolvePort(port intstr.IntOrString) (int, error) {
	if port.Type == intstr.Int {
		return port.IntValue(), nil
	}
	for _, p := range c.spec.Ports {
		if p.Name == port.StrVal {
			return int(p.ContainerPort), nil
		}
	}
	if n, err := strconv.Atoi(port.StrVal); err == nil {
		return n, nil
	}
	return 0, fmt.Errorf("container %s has no port named %q", c.spec.Name, port.StrVal)
}

// execProbe runs the probe command in the container's namespaces and mounts
// (a fresh helper, like `kubectl exec` into the container would; see
// runInContainer, which the kubelet API's exec shares).
func (c *container) execProbe(ctx context.Context, command []string, timeout time.Duration) (bool, string) {
	if len(command) == 0 {
		return false, "exec probe without command"
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	// One writer for both streams: the probe's message is the combined
	// output.
	var out bytes.Buffer
	code, err := c.runInContainer(rctx, command, nil, &out, &out)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return false, fmt.Sprintf("command timed out after %s", timeout)
		}
		return false, err.Error()
	}
	msg := strings.TrimSpace(out.String())
	if code != 0 {
		return false, fmt.Sprintf("exit status %d: %s", code, msg)
	}
	return true, msg
}
