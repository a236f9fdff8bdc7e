package lab

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// podWorker owns one pod on one node: its address, volumes, containers and
// status. Informer events only hand it the latest object and wake it; all
// decisions happen in its own goroutine (run), which keeps the state
// machine single-threaded. Container exits and probe results wake it too.
type podWorker struct {
	n    *node
	uid  types.UID
	wake chan struct{}
	done chan struct{}

	mu   sync.Mutex
	pod  *corev1.Pod
	gone bool

	// Owned by run's goroutine.
	ready bool // set up: address, directory
	dir   string
	podIP netip.Addr
	// podNetns is the pod's own network namespace (pod-network pods
	// with real containers); host-network and simulated pods have none.
	podNetns   string
	startTime  metav1.Time
	inits      []*container
	ctrs       []*container
	terminal   bool
	phase      corev1.PodPhase
	vols       *podVolumes
	lastResync time.Time
	setupErr   string
	volErr     string
}

// newPodWorker holds pod from the start: run may sync before the first
// update arrives.
func newPodWorker(n *node, pod *corev1.Pod) *podWorker {
	return &podWorker{n: n, uid: pod.UID, pod: pod, wake: make(chan struct{}, 1), done: make(chan struct{})}
}

func (w *podWorker) update(pod *corev1.Pod) {
	w.mu.Lock()
	w.pod = pod
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) markGone() {
	w.mu.Lock()
	w.gone = true
	w.mu.Unlock()
	w.poke()
}

func (w *podWorker) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *podWorker) snapshot() (*corev1.Pod, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.pod, w.gone
}

func (w *podWorker) logf(format string, a ...any) {
	pod, _ := w.snapshot()
	w.n.logf("%s/%s: "+format, append([]any{pod.Namespace, pod.Name}, a...)...)
}

func (w *podWorker) run(ctx context.Context) {
	defer close(w.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		if ctx.Err() != nil {
			// The kubelet stops: its containers stop with it, the pod
			// object stays (as with a real kubelet going down).
			w.killAll(5*time.Second, "kubelet stopping")
			w.cleanup(false)
			return
		}
		if w.sync(ctx) {
			return
		}
		select {
		case <-ctx.Done():
		case <-w.wake:
		case <-t.C:
		}
	}
}

// sync moves the pod one step towards what its object asks for and
// reports whether the worker is finished.
func (w *podWorker) sync(ctx context.Context) bool {
	pod, gone := w.snapshot()
	if gone {
		w.killAll(0, "pod deleted")
		w.cleanup(true)
		return true
	}
	if pod.DeletionTimestamp != nil {
		grace := 30 * time.Second
		if pod.DeletionGracePeriodSeconds != nil {
			grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
		}
		w.killAll(grace, "pod deleted")
		w.cleanup(true)
		// The kubelet confirms the deletion once every container is
		// gone; the object then disappears from the API.
		err := w.n.cs.CoreV1().Pods(pod.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{
			GracePeriodSeconds: ptr.To(int64(0)),
			Preconditions:      &metav1.Preconditions{UID: &pod.UID},
		})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			w.logf("confirm deletion: %v", err)
			return false
		}
		return true
	}
	if !w.ready {
		if err := w.setup(ctx, pod); err != nil {
			if w.setupErr != err.Error() {
				w.logf("setup: %v", err)
				w.n.rec.Eventf(pod, corev1.EventTypeWarning, "FailedCreatePodSandBox", "lab kubelet: %v", err)
				w.setupErr = err.Error()
			}
			w.writeStatus(ctx, pod)
			return false
		}
	}
	if w.terminal {
		w.writeStatus(ctx, pod)
		return false
	}
	if w.vols != nil {
		if err := w.vols.refresh(ctx, pod, time.Since(w.lastResync) > resyncInterval); err != nil {
			// Retried every sync; said once per distinct error.
			if err.Error() != w.volErr {
				w.logf("volumes: %v", err)
				w.n.rec.Eventf(pod, corev1.EventTypeWarning, "FailedMount", "lab kubelet: %v", err)
				w.volErr = err.Error()
			}
		} else {
			w.volErr = ""
			if time.Since(w.lastResync) > resyncInterval {
				w.lastResync = time.Now()
			}
		}
	}
	if !w.vols.ok() {
		w.writeStatus(ctx, pod)
		return false
	}

	policy := pod.Spec.RestartPolicy
	initsDone := true
	for _, c := range w.inits {
		if c.isCompleted() {
			continue
		}
		initsDone = false
		if failed := c.step(ctx, pod, policyForInit(policy)); failed {
			w.finish(corev1.PodFailed)
		}
		break
	}
	if initsDone && !w.terminal {
		finished, failed := 0, 0
		for _, c := range w.ctrs {
			c.step(ctx, pod, policy)
			if c.isCompleted() {
				finished++
				if c.exitCode() != 0 {
					failed++
				}
			}
		}
		if finished == len(w.ctrs) {
			if failed > 0 {
				w.finish(corev1.PodFailed)
			} else {
				w.finish(corev1.PodSucceeded)
			}
		}
	}
	w.writeStatus(ctx, pod)
	return false
}

// policyForInit is the restart policy of init containers: they are
// retried unless the pod never restarts.
func policyForInit(p corev1.RestartPolicy) corev1.RestartPolicy {
	if p == corev1.RestartPolicyNever {
		return corev1.RestartPolicyNever
	}
	return corev1.RestartPolicyOnFailure
}

func (w *podWorker) finish(phase corev1.PodPhase) {
	w.terminal = true
	w.phase = phase
	w.killAll(0, "pod finished")
}

// setup gives the pod its address and directory, and builds its containers.
func (w *podWorker) setup(ctx context.Context, pod *corev1.Pod) error {
	images, err := readImages(w.n.k.st.Dir)
	if err != nil {
		return err
	}
	images[LbstackImageName] = Image{Binary: w.n.k.st.LbstackBinary, Entrypoint: "/usr/bin/lbstack"}
	// FRR's image runs the host's FRR under the lab's stand-in for its
	// entrypoint (frr_container.go), unless a test registered its own.
	if _, ok := images[FRRImageName]; !ok {
		images[FRRImageName] = frrImage(w.n.k.exe)
	}
	anyReal := false
	mk := func(spec corev1.Container, init bool) *container {
		c := &container{w: w, spec: spec, init: init, started: true}
		if img, ok := resolveImage(images, spec.Image); ok {
			c.image = &img
			anyReal = true
		}
		// Continue the restart count a previous kubelet reported.
		for _, s := range append(pod.Status.ContainerStatuses, pod.Status.InitContainerStatuses...) {
			if s.Name == spec.Name {
				c.restartCount = s.RestartCount
				c.everStarted = s.State.Running != nil || s.State.Terminated != nil
				// A finished init container stays finished.
				if init && s.State.Terminated != nil && s.State.Terminated.ExitCode == 0 {
					c.completed, c.lastTerm = true, s.State.Terminated.DeepCopy()
				}
			}
		}
		return c
	}
	var inits, ctrs []*container
	for _, s := range pod.Spec.InitContainers {
		if s.RestartPolicy != nil && *s.RestartPolicy == corev1.ContainerRestartPolicyAlways {
			return fmt.Errorf("init container %s is a sidecar (restartPolicy Always): sidecars are %w", s.Name, errNotSupported)
		}
	}
	for _, s := range pod.Spec.InitContainers {
		inits = append(inits, mk(s, true))
	}
	for _, s := range pod.Spec.Containers {
		ctrs = append(ctrs, mk(s, false))
	}

	if pod.Spec.HostNetwork {
		w.podIP = netip.MustParseAddr(NodeAddr(w.n.index))
	} else {
		a, err := w.n.allocIP(pod.UID, pod.Status.PodIP)
		if err != nil {
			return err
		}
		w.podIP = a
		if anyReal {
			// Real processes of a pod-network pod get the pod's own
			// network namespace with the pod address, as a CNI plugin
			// would make it.
			if err := w.makePodNetns(ctx); err != nil {
				w.n.releaseIP(a, pod.UID)
				return fmt.Errorf("pod network: %w", err)
			}
		}
	}
	w.dir = filepath.Join(w.n.k.st.podsDir(), string(pod.UID))
	if err := os.MkdirAll(w.dir, 0o700); err != nil {
		return err
	}
	w.inits, w.ctrs = inits, ctrs
	if anyReal {
		w.vols = newPodVolumes(w)
	}
	if pod.Status.StartTime != nil {
		w.startTime = *pod.Status.StartTime
	} else {
		w.startTime = metav1.Now().Rfc3339Copy()
	}
	// A pod that already finished (seen again after a kubelet restart)
	// is not run again.
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		w.terminal, w.phase = true, pod.Status.Phase
		for _, c := range ctrs {
			for _, s := range pod.Status.ContainerStatuses {
				if s.Name == c.spec.Name && s.State.Terminated != nil {
					c.completed, c.lastTerm = true, s.State.Terminated.DeepCopy()
				}
			}
		}
	}
	w.ready = true
	w.setupErr = ""
	return nil
}

// killAll stops every running container, in parallel, giving each grace.
func (w *podWorker) killAll(grace time.Duration, why string) {
	var wg sync.WaitGroup
	for _, c := range append(append([]*container(nil), w.inits...), w.ctrs...) {
		wg.Add(1)
		go func() { defer wg.Done(); c.kill(grace, why) }()
	}
	wg.Wait()
}

// cleanup releases the pod's address and, when the pod is gone for good,
// its directory (volumes, tokens).
func (w *podWorker) cleanup(final bool) {
	if w.podNetns != "" {
		if err := deletePodNetns(context.Background(), w.podNetns); err != nil {
			w.logf("pod network: %v", err)
		}
		w.podNetns = ""
	}
	if w.podIP.IsValid() && !w.podIP.Is6() && w.n.podCIDR.Contains(w.podIP) {
		w.n.releaseIP(w.podIP, w.uid)
	}
	if final && w.dir != "" {
		_ = os.RemoveAll(w.dir)
	}
}

// writeStatus computes the pod's status and writes it when it changed.
// A conflict is retried on the next sync with the newer object.
func (w *podWorker) writeStatus(ctx context.Context, pod *corev1.Pod) {
	want := w.status(pod)
	if equality.Semantic.DeepEqual(&pod.Status, want) {
		return
	}
	p := pod.DeepCopy()
	p.Status = *want
	if _, err := w.n.cs.CoreV1().Pods(p.Namespace).UpdateStatus(ctx, p, metav1.UpdateOptions{}); err != nil {
		if !apierrors.IsConflict(err) && !apierrors.IsNotFound(err) && ctx.Err() == nil {
			w.logf("status: %v", err)
		}
	}
}

// status is the pod's status as the kubelet reports it.
func (w *podWorker) status(pod *corev1.Pod) *corev1.PodStatus {
	st := pod.Status.DeepCopy()
	st.HostIP = NodeAddr(w.n.index)
	st.HostIPs = []corev1.HostIP{{IP: NodeAddr(w.n.index)}, {IP: NodeAddr6(w.n.index)}}
	if !w.ready {
		st.Phase = corev1.PodPending
		st.Conditions = setConditions(st.Conditions,
			podCond(corev1.PodReadyToStartContainers, false, "", w.setupErr),
			podCond(corev1.PodInitialized, false, "", ""),
			podCond(corev1.ContainersReady, false, "", ""),
			podCond(corev1.PodReady, false, "", ""))
		return st
	}
	st.StartTime = &w.startTime
	st.PodIP = w.podIP.String()
	st.PodIPs = []corev1.PodIP{{IP: w.podIP.String()}}
	if pod.Spec.HostNetwork {
		st.PodIPs = append(st.PodIPs, corev1.PodIP{IP: NodeAddr6(w.n.index)})
	}

	st.InitContainerStatuses = nil
	initialized := true
	for _, c := range w.inits {
		st.InitContainerStatuses = append(st.InitContainerStatuses, c.status())
		if !c.isCompleted() || c.exitCode() != 0 {
			initialized = false
		}
	}
	st.ContainerStatuses = nil
	allReady, anyRunning, restarting := true, false, false
	for _, c := range w.ctrs {
		cs := c.status()
		if !initialized && cs.State.Waiting != nil && cs.State.Waiting.Reason == "ContainerCreating" {
			cs.State.Waiting.Reason = "PodInitializing"
		}
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
		allReady = allReady && cs.Ready
		anyRunning = anyRunning || cs.State.Running != nil
		// As the kubelet does, a container that ran and is being
		// restarted keeps the pod Running (only Ready changes): the phase
		// says the pod is placed and started, not that every process is up.
		restarting = restarting || ((cs.State.Terminated != nil || cs.LastTerminationState.Terminated != nil) && pod.Spec.RestartPolicy != corev1.RestartPolicyNever)
	}
	switch {
	case w.terminal:
		st.Phase = w.phase
		allReady = false
	case initialized && (anyRunning || restarting):
		st.Phase = corev1.PodRunning
	default:
		st.Phase = corev1.PodPending
	}
	gatesOK := true
	for _, g := range pod.Spec.ReadinessGates {
		ok := false
		for _, c := range pod.Status.Conditions {
			if c.Type == g.ConditionType && c.Status == corev1.ConditionTrue {
				ok = true
			}
		}
		gatesOK = gatesOK && ok
	}
	ctrsReady := allReady && initialized
	reason := ""
	if !ctrsReady {
		reason = "ContainersNotReady"
	}
	readyReason := reason
	if ctrsReady && !gatesOK {
		readyReason = "ReadinessGatesNotReady"
	}
	if w.terminal {
		reason, readyReason = "PodCompleted", "PodCompleted"
	}
	st.Conditions = setConditions(st.Conditions,
		podCond(corev1.PodReadyToStartContainers, !w.terminal, "", ""),
		podCond(corev1.PodInitialized, initialized, map[bool]string{true: "", false: "ContainersNotInitialized"}[initialized], ""),
		podCond(corev1.ContainersReady, ctrsReady, reason, ""),
		podCond(corev1.PodReady, ctrsReady && gatesOK, readyReason, ""))
	return st
}

func podCond(t corev1.PodConditionType, ok bool, reason, msg string) corev1.PodCondition {
	s := corev1.ConditionFalse
	if ok {
		s = corev1.ConditionTrue
	}
	return corev1.PodCondition{Type: t, Status: s, Reason: reason, Message: msg}
}

// setConditions sets the kubelet-owned conditions, keeping each one's
// transition time while its status stays the same and leaving every other
// condition (PodScheduled, readiness gates) alone.
func setConditions(old []corev1.PodCondition, set ...corev1.PodCondition) []corev1.PodCondition {
	now := metav1.Now().Rfc3339Copy()
	out := make([]corev1.PodCondition, 0, len(old)+len(set))
	owned := map[corev1.PodConditionType]corev1.PodCondition{}
	for _, c := range set {
		owned[c.Type] = c
	}
	seen := map[corev1.PodConditionType]bool{}
	for _, o := range old {
		c, ok := owned[o.Type]
		if !ok {
			out = append(out, o)
			continue
		}
		seen[o.Type] = true
		if o.Status == c.Status {
			c.LastTransitionTime = o.LastTransitionTime
			c.LastProbeTime = o.LastProbeTime
		} else {
			c.LastTransitionTime = now
		}
		out = append(out, c)
	}
	for _, c := range set {
		if !seen[c.Type] {
			c.LastTransitionTime = now
			out = append(out, c)
		}
	}
	return out
}

// containerLogPath is where a container's output goes:
// logs/<namespace>_<pod>_<container>.log.
func (s *State) containerLogPath(ns, pod, ctr string) string {
	return filepath.Join(s.logDir(), fmt.Sprintf("%s_%s_%s.log", ns, pod, ctr))
}

// makePodNetns builds the pod's network namespace, point-to-point to its
// node like Calico's veths: eth0 holds the pod address (/32) with a default
// route to the node's pod-range gateway (.1), which the node's end of the
// veth holds; the node routes the pod address to the veth and forwards.
func (w *podWorker) makePodNetns(ctx context.Context) error {
	ns := PodNetns(string(w.uid))
	host := podVeth(string(w.uid))
	gw := NodePodGateway(w.n.index)
	node := w.n.name
	// A namespace left by a previous kubelet is made afresh.
	if err := deletePodNetns(ctx, ns); err != nil {
		return err
	}
	steps := [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "set", "lo", "up"},
		{"link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", host, "netns", node},
		{"-n", ns, "addr", "add", w.podIP.String() + "/32", "dev", "eth0"},
		{"-n", ns, "link", "set", "eth0", "up"},
		{"-n", ns, "route", "add", gw, "dev", "eth0", "scope", "link"},
		{"-n", ns, "route", "add", "default", "via", gw, "dev", "eth0"},
		{"-n", node, "addr", "add", gw + "/32", "dev", host},
		{"-n", node, "link", "set", host, "up"},
		{"-n", node, "route", "add", w.podIP.String() + "/32", "dev", host, "scope", "link"},
	}
	for _, args := range steps {
		if _, err := ip(ctx, args...); err != nil {
			_ = deletePodNetns(ctx, ns)
			return err
		}
	}
	w.podNetns = ns
	// Pods are IPv4 only: no IPv6 chatter from the pod.
	return sysctlIn(ctx, ns, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
}

// deletePodNetns stops whatever still runs in a pod's namespace and
// deletes it (which also removes its veth and the node's route to it).
func deletePodNetns(ctx context.Context, ns string) error {
	if !netnsExists(ns) {
		return nil
	}
	if err := killNetnsProcs(ctx, ns); err != nil {
		return err
	}
	_, err := ip(ctx, "netns", "delete", ns)
	return err
}

// netnsPath is the namespace the pod's processes join.
func (w *podWorker) netnsPath() string {
	if w.podNetns != "" {
		return NetnsPath(w.podNetns)
	}
	return NetnsPath(w.n.name)
}
