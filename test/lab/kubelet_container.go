package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// container is one container of a pod: a real process when its image maps
// to a binary (image != nil), simulated otherwise.
type container struct {
	w     *podWorker
	spec  corev1.Container
	init  bool
	image *Image

	// mu guards what probe goroutines and the exit watcher change.
	mu           sync.Mutex
	cur          *instance
	restartCount int32
	lastTerm     *corev1.ContainerStateTerminated
	backoff      time.Duration
	nextStart    time.Time
	ready        bool
	started      bool // startup probe passed (or none)
	completed    bool // exited and will not be restarted
	waitReason   string
	waitMessage  string
	// everStarted is set once the container has run (in this kubelet or,
	// per the pod's status, a previous one): a start after that is a
	// restart and counts.
	everStarted bool
}

// instance is one run of a container.
type instance struct {
	id         string
	proc       Proc
	startedAt  time.Time
	exited     chan struct{}
	exitCode   int
	reason     string
	message    string
	finishedAt time.Time
	// killReason is set when the kubelet stopped it (probe failure,
	// deletion), which changes how the exit is reported.
	killReason   string
	cancelProbes context.CancelFunc
}

func (c *container) simulated() bool { return c.image == nil }

func (c *container) isCompleted() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.completed
}

func (c *container) exitCode() int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.lastTerm != nil {
		return c.lastTerm.ExitCode
	}
	return 0
}

func (c *container) running() (*instance, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur == nil {
		return nil, false
	}
	select {
	case <-c.cur.exited:
		return c.cur, false
	default:
		return c.cur, true
	}
}

// step starts, restarts or retires the container according to the restart
// policy and back-off. It reports whether an init container failed for
// good.
func (c *container) step(ctx context.Context, pod *corev1.Pod, policy corev1.RestartPolicy) (failedForGood bool) {
	if c.isCompleted() {
		return false
	}
	inst, running := c.running()
	if running {
		return false
	}
	if inst != nil {
		// The last run ended: record it once, then decide.
		c.mu.Lock()
		if c.cur == inst {
			c.lastTerm = &corev1.ContainerStateTerminated{
				ExitCode: int32(inst.exitCode), Reason: inst.reason, Message: inst.message,
				StartedAt: metav1.NewTime(inst.startedAt).Rfc3339Copy(), FinishedAt: metav1.NewTime(inst.finishedAt).Rfc3339Copy(),
				ContainerID: inst.id,
			}
			c.cur = nil
			restart := policy == corev1.RestartPolicyAlways || (policy == corev1.RestartPolicyOnFailure && inst.exitCode != 0)
			if !restart {
				c.completed = true
			} else {
				if inst.finishedAt.Sub(inst.startedAt) > backoffReset {
					c.backoff = 0
				}
				if c.backoff == 0 {
					c.backoff = backoffInitial
				} else if c.backoff *= 2; c.backoff > backoffMax {
					c.backoff = backoffMax
				}
				c.nextStart = inst.finishedAt.Add(c.backoff)
				c.waitReason = "CrashLoopBackOff"
				c.waitMessage = fmt.Sprintf("back-off %s restarting failed container %s", c.backoff, c.spec.Name)
				c.w.n.rec.Eventf(pod, corev1.EventTypeWarning, "BackOff", "Back-off %s restarting failed container %s (exit code %d)", c.backoff, c.spec.Name, inst.exitCode)
			}
		}
		completed, exit := c.completed, inst.exitCode
		c.mu.Unlock()
		if completed {
			return c.init && exit != 0
		}
	}
	c.mu.Lock()
	wait := time.Until(c.nextStart)
	c.mu.Unlock()
	if wait > 0 {
		return false
	}
	if err := c.start(ctx, pod); err != nil {
		c.w.logf("start %s: %v", c.spec.Name, err)
		c.mu.Lock()
		c.waitReason, c.waitMessage = "CreateContainerError", err.Error()
		// Retried with the same back-off as a crash.
		c.backoff = min(max(c.backoff*2, backoffInitial), backoffMax)
		c.nextStart = time.Now().Add(c.backoff)
		c.mu.Unlock()
		c.w.n.rec.Eventf(pod, corev1.EventTypeWarning, "Failed", "Error: %v", err)
	}
	return false
}

// start runs a new instance of the container.
func (c *container) start(ctx context.Context, pod *corev1.Pod) error {
	c.mu.Lock()
	restarts := c.restartCount
	if c.everStarted {
		restarts++
	}
	c.mu.Unlock()
	id := fmt.Sprintf("lab://%s-%s-%d", shortUID(string(c.w.uid)), c.spec.Name, restarts)
	inst := &instance{id: id, exited: make(chan struct{}), startedAt: time.Now()}
	if !c.simulated() {
		if err := c.startProcess(ctx, pod, inst); err != nil {
			return err
		}
	}
	c.mu.Lock()
	c.cur = inst
	c.everStarted = true
	c.restartCount = restarts
	c.waitReason, c.waitMessage = "", ""
	c.ready = c.simulated() || c.spec.ReadinessProbe == nil
	c.started = c.spec.StartupProbe == nil || c.simulated()
	c.mu.Unlock()
	if c.simulated() {
		return nil
	}
	c.w.n.rec.Eventf(pod, corev1.EventTypeNormal, "Started", "Started container %s (pid %d)", c.spec.Name, inst.proc.PID)
	c.startProbes(inst)
	return nil
}

func shortUID(uid string) string {
	if len(uid) > 8 {
		return uid[:8]
	}
	return uid
}

// startProcess runs the container's command as a process in the node's
// network namespace and its own mount and UTS namespaces (see
// ContainerInit), with its output appended to the container's log.
func (c *container) startProcess(ctx context.Context, pod *corev1.Pod, inst *instance) error {
	spec, err := c.processSpec(ctx, pod, containerArgv(*c.image, c.spec.Command, c.spec.Args))
	if err != nil {
		return err
	}
	st := c.w.n.k.st
	logPath := st.containerLogPath(pod.Namespace, pod.Name, c.spec.Name)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "== lab: %s started at %s on %s: %s\n", inst.id, time.Now().Format(time.RFC3339), c.w.n.name, strings.Join(spec.Argv, " "))
	cmd, closeSpec, err := c.w.initCommand(spec, logf, logf)
	if err != nil {
		return err
	}
	err = cmd.Start()
	closeSpec()
	if err != nil {
		return fmt.Errorf("start %s: %w", spec.Argv[0], err)
	}
	p, err := procOf(containerProcName(pod, c.spec.Name), cmd.Process.Pid)
	if err == nil {
		err = writeProc(st.containerRunDir(), p)
	}
	if err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		return err
	}
	inst.proc = p
	go func() {
		werr := cmd.Wait()
		code, reason := exitOf(cmd, werr)
		c.mu.Lock()
		inst.exitCode, inst.finishedAt = code, time.Now()
		inst.reason = reason
		if inst.killReason != "" {
			inst.message = inst.killReason
		}
		if inst.cancelProbes != nil {
			inst.cancelProbes()
		}
		close(inst.exited)
		c.mu.Unlock()
		_ = os.Remove(filepath.Join(st.containerRunDir(), p.Name+".pid"))
		c.w.poke()
	}()
	return nil
}

func containerProcName(pod *corev1.Pod, ctr string) string {
	return fmt.Sprintf("%s_%s_%s", pod.Namespace, pod.Name, ctr)
}

// exitOf reads an exit code the way container runtimes report it: a
// process killed by signal N exits 128+N.
func exitOf(cmd *exec.Cmd, err error) (int, string) {
	if cmd.ProcessState == nil {
		return 128, "Error"
	}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()), "Error"
	}
	code := cmd.ProcessState.ExitCode()
	if code == 0 {
		return 0, "Completed"
	}
	if code == 126 || code == 127 {
		return code, "StartError"
	}
	return code, "Error"
}

// processSpec builds the init helper's spec: namespaces, mounts, env, argv.
func (c *container) processSpec(ctx context.Context, pod *corev1.Pod, argv []string) (*containerSpec, error) {
	env, err := c.w.containerEnv(ctx, pod, c.spec)
	if err != nil {
		return nil, err
	}
	argv = expandAll(argv, env)
	mounts, err := c.w.vols.mountsFor(c.spec)
	if err != nil {
		return nil, err
	}
	hostname := c.w.n.name
	if !pod.Spec.HostNetwork {
		hostname = pod.Name
	}
	stage := filepath.Join(c.w.dir, "stage", c.spec.Name)
	_ = os.RemoveAll(stage)
	if err := os.MkdirAll(stage, 0o700); err != nil {
		return nil, err
	}
	return &containerSpec{
		Netns:    c.w.netnsPath(),
		Hostname: hostname,
		Stage:    stage,
		Mounts:   mounts,
		WorkDir:  c.spec.WorkingDir,
		Env:      env,
		Argv:     argv,
	}, nil
}

// initCommand prepares the kubelet's own binary, re-executed as the
// container init helper, with the spec on fd 3. The child starts in new
// mount and UTS namespaces, leads its own process group (so stopping it
// stops what it forks) and dies with the kubelet.
// The returned function closes the parent's copy of the pipe; call it
// once the command has started (or failed to).
func (w *podWorker) initCommand(spec *containerSpec, stdout, stderr *os.File) (*exec.Cmd, func(), error) {
	data, err := json.Marshal(spec)
	if err != nil {
		return nil, nil, err
	}
	r, wr, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	// The spec is small: it fits the pipe buffer, so writing before the
	// child reads cannot block.
	if _, err := wr.Write(data); err != nil {
		r.Close()
		wr.Close()
		return nil, nil, err
	}
	wr.Close()
	cmd := exec.Command(w.n.k.exe, ContainerInitArg)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = stdout, stderr
	cmd.ExtraFiles = []*os.File{r}
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: syscall.CLONE_NEWNS | syscall.CLONE_NEWUTS,
		Setpgid:    true,
		Pdeathsig:  syscall.SIGKILL,
	}
	return cmd, func() { r.Close() }, nil
}

// kill stops the running instance: SIGTERM, grace, SIGKILL.
func (c *container) kill(grace time.Duration, why string) {
	inst, running := c.running()
	if !running {
		return
	}
	if c.simulated() {
		c.mu.Lock()
		inst.exitCode, inst.reason, inst.finishedAt, inst.message = 0, "Completed", time.Now(), why
		close(inst.exited)
		c.mu.Unlock()
		return
	}
	c.mu.Lock()
	if inst.killReason == "" {
		inst.killReason = why
	}
	c.mu.Unlock()
	if err := inst.proc.Stop(grace); err != nil {
		c.w.logf("stop %s: %v", c.spec.Name, err)
	}
	select {
	case <-inst.exited:
	case <-time.After(10 * time.Second):
		c.w.logf("stop %s: exit not observed", c.spec.Name)
	}
}

// status is the container's status as the kubelet reports it.
func (c *container) status() corev1.ContainerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	imageID := "lab://simulated/" + c.spec.Image
	if c.image != nil {
		imageID = "lab://" + c.image.Binary
	}
	s := corev1.ContainerStatus{
		Name:                 c.spec.Name,
		Image:                c.spec.Image,
		ImageID:              imageID,
		RestartCount:         c.restartCount,
		Started:              ptr.To(false),
		LastTerminationState: corev1.ContainerState{},
	}
	if c.lastTerm != nil {
		s.LastTerminationState.Terminated = c.lastTerm.DeepCopy()
	}
	switch {
	case c.cur != nil && !isClosed(c.cur.exited):
		s.ContainerID = c.cur.id
		s.State.Running = &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(c.cur.startedAt).Rfc3339Copy()}
		s.Ready = c.ready && c.started
		s.Started = ptr.To(c.started)
	case c.cur != nil:
		// Exited; the worker has not handled it yet.
		s.ContainerID = c.cur.id
		s.State.Terminated = &corev1.ContainerStateTerminated{
			ExitCode: int32(c.cur.exitCode), Reason: c.cur.reason, Message: c.cur.message,
			StartedAt: metav1.NewTime(c.cur.startedAt).Rfc3339Copy(), FinishedAt: metav1.NewTime(c.cur.finishedAt).Rfc3339Copy(),
			ContainerID: c.cur.id,
		}
	case c.completed && c.lastTerm != nil:
		s.ContainerID = c.lastTerm.ContainerID
		s.State.Terminated = c.lastTerm.DeepCopy()
		s.LastTerminationState = corev1.ContainerState{}
	case c.waitReason != "":
		s.State.Waiting = &corev1.ContainerStateWaiting{Reason: c.waitReason, Message: c.waitMessage}
	default:
		s.State.Waiting = &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}
	}
	return s
}

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// errNotSupported marks pod features the lab kubelet refuses plainly.
var errNotSupported = errors.New("not supported by the lab kubelet")
