package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/tools/remotecommand"
	remotecommandserver "k8s.io/kubelet/pkg/cri/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

// Exec streaming timeouts: the CRI streaming server's defaults
// (streaming.DefaultConfig), which the kubelet's runtimes use.
const (
	execStreamIdleTimeout     = 4 * time.Hour
	execStreamCreationTimeout = remotecommandconsts.DefaultStreamCreationTimeout
)

// serveExec answers /exec/{namespace}/{pod}/{container} (GET or POST,
// SPDY or WebSocket) with the kubelet's own streaming code: ServeExec
// negotiates the protocol and streams, then runs the command through
// execInContainer.
func (n *node) serveExec(w http.ResponseWriter, r *http.Request, ns, podName, uid, ctrName string) {
	pw := n.findPod(ns, podName)
	if pw == nil {
		kubeletError(w, http.StatusNotFound, fmt.Sprintf("pod %q does not exist", podName))
		return
	}
	pod, _ := pw.snapshot()
	if uid != "" && types.UID(uid) != pod.UID {
		kubeletError(w, http.StatusNotFound, fmt.Sprintf("pod %q with UID %s does not exist", podName, uid))
		return
	}
	if !hasContainer(pod, ctrName) {
		kubeletError(w, http.StatusNotFound, fmt.Sprintf("container %q not found in pod %q", ctrName, podName))
		return
	}
	streamOpts, err := remotecommandserver.NewOptions(r)
	if err != nil {
		kubeletError(w, http.StatusBadRequest, err.Error())
		return
	}
	command := r.URL.Query()[corev1.ExecCommandParam]
	if len(command) == 0 {
		kubeletError(w, http.StatusBadRequest, "no command given")
		return
	}
	c := pw.findContainer(ctrName)
	if c != nil && c.simulated() {
		kubeletError(w, http.StatusBadRequest, fmt.Sprintf("container %q in pod %q is simulated by the lab kubelet (image %s): it has no process to exec in", ctrName, podName, c.spec.Image))
		return
	}
	if c != nil {
		if _, running := c.running(); !running {
			c = nil
		}
	}
	if c == nil {
		kubeletError(w, http.StatusBadRequest, fmt.Sprintf("container %q in pod %q is not running", ctrName, podName))
		return
	}
	remotecommandserver.ServeExec(w, r, containerExecutor{c}, ns+"/"+podName, pod.UID, ctrName, command, streamOpts,
		execStreamIdleTimeout, execStreamCreationTimeout, remotecommandconsts.SupportedStreamingProtocols)
}

// containerExecutor is ServeExec's Executor for one container.
type containerExecutor struct{ c *container }

// ExecInContainer runs cmd in the container with the client's streams. A
// non-zero exit is returned as an exec.CodeExitError, which ServeExec
// reports to the client as its exit code. The command is killed when the
// client's connection goes away. There is no terminal: with tty, the
// command gets pipes (stdout and stderr both to the client's stdout) and
// resize events are dropped.
func (e containerExecutor) ExecInContainer(ctx context.Context, _ string, _ types.UID, _ string, cmd []string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize, timeout time.Duration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if gone, ok := ctx.Value(connGoneKey{}).(<-chan struct{}); ok {
		go func() {
			select {
			case <-gone:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	if resize != nil {
		go func() {
			for {
				select {
				case <-resize:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	if timeout > 0 {
		var tcancel context.CancelFunc
		ctx, tcancel = context.WithTimeout(ctx, timeout)
		defer tcancel()
	}
	var stdin io.Reader
	if in != nil {
		stdin = in
	}
	var stdout, stderr io.Writer
	if out != nil {
		stdout = &cancelOnError{out, cancel}
	}
	if errw != nil {
		stderr = &cancelOnError{errw, cancel}
	}
	if tty {
		stderr = stdout
	}
	// exec runs its command as given: no $(VAR) expansion, which
	// runInContainer applies (as to container commands and probes), so
	// every $ is escaped for it.
	argv := make([]string, len(cmd))
	for i, a := range cmd {
		argv[i] = strings.ReplaceAll(a, "$", "$$")
	}
	code, err := e.c.runInContainer(ctx, argv, stdin, stdout, stderr)
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: fmt.Errorf("command '%s' exited with %d", strings.Join(cmd, " "), code), Code: code}
	}
	return nil
}

// cancelOnError cancels the command when the client's stream fails.
type cancelOnError struct {
	w      io.Writer
	cancel context.CancelFunc
}

func (c *cancelOnError) Write(b []byte) (int, error) {
	k, err := c.w.Write(b)
	if err != nil {
		c.cancel()
	}
	return k, err
}

// outputGrace is how long, after a command exits, its output is still
// read: a background child that keeps the pipe open is not waited for.
const outputGrace = 2 * time.Second

// runInContainer runs command in the container's namespaces and mounts -
// a fresh init helper with the container's network namespace, volumes,
// env and working directory, like `kubectl exec` into it (and the exec
// probe) - connecting stdin, stdout and stderr (nil: /dev/null). It returns
// the exit code (128+N when killed by signal N) once the command exited
// and its output was copied. When ctx ends first, the command's process
// group is killed and ctx's error returned.
func (c *container) runInContainer(ctx context.Context, command []string, stdin io.Reader, stdout, stderr io.Writer) (int, error) {
	if len(command) == 0 {
		return 0, errors.New("no command")
	}
	if c.simulated() {
		return 0, fmt.Errorf("container %s is simulated: no process to exec in", c.spec.Name)
	}
	pod, _ := c.w.snapshot()
	spec, err := c.processSpec(ctx, pod, containerArgv(*c.image, command, nil))
	if err != nil {
		return 0, err
	}
	// Each command gets a stage directory of its own: several may run at
	// once (probes, exec sessions).
	stage, err := os.MkdirTemp(filepath.Dir(spec.Stage), filepath.Base(spec.Stage)+"-exec-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(stage)
	spec.Stage = stage

	var childEnds []*os.File // the child's ends, closed here once it started
	defer func() {
		for _, f := range childEnds {
			f.Close()
		}
	}()
	var copies sync.WaitGroup
	var readEnds []*os.File
	output := func(w io.Writer) (*os.File, error) {
		if w == nil {
			f, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
			if err == nil {
				childEnds = append(childEnds, f)
			}
			return f, err
		}
		r, wr, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		childEnds = append(childEnds, wr)
		readEnds = append(readEnds, r)
		copies.Add(1)
		go func() {
			defer copies.Done()
			_, _ = io.Copy(w, r)
		}()
		return wr, nil
	}
	defer func() {
		for _, r := range readEnds {
			r.Close()
		}
	}()
	outW, err := output(stdout)
	if err != nil {
		return 0, err
	}
	errW := outW
	if stderr != stdout || stderr == nil {
		if errW, err = output(stderr); err != nil {
			return 0, err
		}
	}
	var inR *os.File
	if stdin == nil {
		if inR, err = os.Open(os.DevNull); err != nil {
			return 0, err
		}
		childEnds = append(childEnds, inR)
	} else {
		var inW *os.File
		if inR, inW, err = os.Pipe(); err != nil {
			return 0, err
		}
		childEnds = append(childEnds, inR)
		// Ends when the client closes stdin (the command sees EOF) or,
		// after the command exited, at the client's next write or when
		// the session's streams are closed.
		go func() {
			_, _ = io.Copy(inW, stdin)
			inW.Close()
		}()
	}

	cmd, closeSpec, err := c.w.initCommand(spec, outW, errW)
	if err != nil {
		return 0, err
	}
	cmd.Stdin = inR
	err = cmd.Start()
	closeSpec()
	for _, f := range childEnds {
		f.Close()
	}
	childEnds = nil
	if err != nil {
		return 0, err
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	var werr error
	select {
	case werr = <-done:
	case <-ctx.Done():
		// The helper leads its own process group: the command and
		// whatever it forked go.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return 0, ctx.Err()
	}
	copied := make(chan struct{})
	go func() { copies.Wait(); close(copied) }()
	select {
	case <-copied:
	case <-time.After(outputGrace):
	case <-ctx.Done():
	}
	code, _ := exitOf(cmd, werr)
	return code, nil
}
