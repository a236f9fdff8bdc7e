package e2e

// The lab kubelet's API (kubelet_server*.go in test/lab): container logs
// and exec through the API server, with client-go only - what kubectl
// logs/exec and a diagnostics tool (must-gather) use.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"
	"k8s.io/utils/ptr"

	"github.com/lbstack/lbstack/test/lab"
)

// loggerScript is a container of the lbstack image running the host's
// shell (the lab runs any command of that image from the host's
// filesystem; $$$$ is the shell's $$ after the kubelet's $(VAR) expansion):
// it prints a known text, waits for /tmp/data/go (an emptyDir an
// exec can create), prints one more line and sleeps.
const loggerScript = `echo "start $$$$"
echo "to stderr" >&2
for i in 1 2 3 4 5; do echo "line $i"; done
echo ready
while [ ! -e /tmp/data/go ]; do sleep 0.1; done
echo "after go"
exec sleep 100000
`

func loggerOutput(pid string) string {
	return "start " + pid + "\nto stderr\nline 1\nline 2\nline 3\nline 4\nline 5\nready\n"
}

// loggerPod starts the logger pod on node 1 and waits until it printed
// "ready"; it returns the run's shell PID.
func loggerPod(t *testing.T, l *lab.Lab, ns string) string {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "logger"},
		Spec: corev1.PodSpec{
			NodeName:                      lab.NodeName(1),
			TerminationGracePeriodSeconds: ptr.To(int64(1)),
			Containers: []corev1.Container{{
				Name:         "logger",
				Image:        "quay.io/lbstack/lbstack:dev",
				Command:      []string{"/bin/sh", "-c", loggerScript},
				VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/tmp/data"}},
			}},
			Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
	if _, err := l.Kube.CoreV1().Pods(ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	var pid string
	eventually(t, 60*time.Second, "logger printed ready", func() (bool, string) {
		out, err := getLogs(l, ns, "logger", &corev1.PodLogOptions{Container: "logger"})
		if err != nil {
			return false, err.Error()
		}
		if !strings.HasSuffix(out, "ready\n") {
			return false, fmt.Sprintf("log so far %q", out)
		}
		pid = strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "start ")
		return true, ""
	})
	return pid
}

func getLogs(l *lab.Lab, ns, pod string, o *corev1.PodLogOptions) (string, error) {
	// Do and Error, not DoRaw: Error turns the API server's Status into
	// the error, as kubectl shows it.
	res := l.Kube.CoreV1().Pods(ns).GetLogs(pod, o).Do(context.Background())
	if err := res.Error(); err != nil {
		return "", err
	}
	b, err := res.Raw()
	return string(b), err
}

// execIn runs command in a container through the API server with the
// SPDY or the WebSocket executor.
func execIn(ctx context.Context, l *lab.Lab, websocket bool, ns, pod, ctr string, command []string, stdin io.Reader) (stdout, stderr string, err error) {
	req := l.Kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name(pod).SubResource("exec").
		VersionedParams(&corev1.PodExecOptions{Container: ctr, Command: command, Stdin: stdin != nil, Stdout: true, Stderr: true}, scheme.ParameterCodec)
	var ex remotecommand.Executor
	if websocket {
		ex, err = remotecommand.NewWebSocketExecutor(l.RestConfig, "GET", req.URL().String())
	} else {
		ex, err = remotecommand.NewSPDYExecutor(l.RestConfig, "POST", req.URL())
	}
	if err != nil {
		return "", "", err
	}
	var out, errb bytes.Buffer
	err = ex.StreamWithContext(ctx, remotecommand.StreamOptions{Stdin: stdin, Stdout: &out, Stderr: &errb})
	return out.String(), errb.String(), err
}

var executors = []struct {
	name      string
	websocket bool
}{{"spdy", false}, {"websocket", true}}

// TestLabKubeletLogs: GetLogs returns what the container wrote (stdout and
// stderr, without the lab's run markers), tailLines, limitBytes,
// timestamps and since work, previous is refused before a restart with the
// kubelet's message and returns the earlier run after one, and follow
// streams new output and ends with the run.
func TestLabKubeletLogs(t *testing.T) {
	l := requireLab(t)
	ctx := context.Background()
	ns := newNamespace(t, l, "klogs")
	pid := loggerPod(t, l, ns)
	want := loggerOutput(pid)
	opts := func(o corev1.PodLogOptions) *corev1.PodLogOptions { o.Container = "logger"; return &o }

	if got, err := getLogs(l, ns, "logger", opts(corev1.PodLogOptions{})); err != nil || got != want {
		t.Errorf("logs: %q, %v; want %q", got, err, want)
	}
	for _, tt := range []struct {
		name string
		o    corev1.PodLogOptions
		want string
	}{
		{"tailLines=2", corev1.PodLogOptions{TailLines: ptr.To(int64(2))}, "line 5\nready\n"},
		{"tailLines=0", corev1.PodLogOptions{TailLines: ptr.To(int64(0))}, ""},
		{"limitBytes=9", corev1.PodLogOptions{LimitBytes: ptr.To(int64(9))}, want[:9]},
		{"tailLines=3,limitBytes=8", corev1.PodLogOptions{TailLines: ptr.To(int64(3)), LimitBytes: ptr.To(int64(8))}, "line 4\nl"},
		{"sinceSeconds=3600", corev1.PodLogOptions{SinceSeconds: ptr.To(int64(3600))}, want},
	} {
		if got, err := getLogs(l, ns, "logger", opts(tt.o)); err != nil || got != tt.want {
			t.Errorf("logs %s: %q, %v; want %q", tt.name, got, err, tt.want)
		}
	}
	// Nothing was written in the last second once the script waits.
	time.Sleep(2 * time.Second)
	if got, err := getLogs(l, ns, "logger", opts(corev1.PodLogOptions{SinceSeconds: ptr.To(int64(1))})); err != nil || got != "" {
		t.Errorf("logs sinceSeconds=1 of a quiet container: %q, %v; want nothing", got, err)
	}
	got, err := getLogs(l, ns, "logger", opts(corev1.PodLogOptions{Timestamps: true, TailLines: ptr.To(int64(2))}))
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if err != nil || len(lines) != 2 {
		t.Errorf("logs timestamps: %q, %v", got, err)
	} else {
		for i, text := range []string{"line 5", "ready"} {
			ts, rest, _ := strings.Cut(lines[i], " ")
			if _, perr := time.Parse(time.RFC3339Nano, ts); perr != nil || rest != text {
				t.Errorf("logs timestamps line %d: %q (%v), want <RFC 3339 time> %s", i, lines[i], perr, text)
			}
		}
	}

	_, err = getLogs(l, ns, "logger", opts(corev1.PodLogOptions{Previous: true}))
	wantMsg := `previous terminated container "logger" in pod "logger" not found`
	if !apierrors.IsBadRequest(err) || !strings.Contains(errText(err), wantMsg) {
		t.Errorf("previous before any restart: %v; want BadRequest %q", err, wantMsg)
	}

	// Follow: the last line at once, a new line when it is written, and
	// the end of the stream when the run ends.
	fctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	stream, err := l.Kube.CoreV1().Pods(ns).GetLogs("logger", opts(corev1.PodLogOptions{Follow: true, TailLines: ptr.To(int64(1))})).Stream(fctx)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	followed := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(stream)
		followed <- string(b)
	}()
	time.Sleep(time.Second)
	if _, _, err := execIn(ctx, l, false, ns, "logger", "logger", []string{"touch", "/tmp/data/go"}, nil); err != nil {
		t.Fatalf("exec touch: %v", err)
	}
	eventually(t, 10*time.Second, "after go logged", func() (bool, string) {
		out, err := getLogs(l, ns, "logger", opts(corev1.PodLogOptions{TailLines: ptr.To(int64(1))}))
		return out == "after go\n", fmt.Sprintf("%q, %v", out, err)
	})
	proc, err := l.State.ContainerProc(ns, "logger", "logger")
	if err != nil {
		t.Fatal(err)
	}
	proc.Kill()
	select {
	case got := <-followed:
		if got != "ready\nafter go\n" {
			t.Errorf("followed %q, want %q", got, "ready\nafter go\n")
		}
	case <-time.After(20 * time.Second):
		t.Errorf("follow did not end when the container's run ended")
	}

	// The restarted run is the current log; the killed one is previous.
	var pid2 string
	eventually(t, 60*time.Second, "logger restarted", func() (bool, string) {
		out, err := getLogs(l, ns, "logger", opts(corev1.PodLogOptions{}))
		if err != nil || !strings.HasPrefix(out, "start ") || strings.HasPrefix(out, "start "+pid+"\n") || !strings.Contains(out, "after go\n") {
			return false, fmt.Sprintf("%q, %v", out, err)
		}
		pid2 = strings.TrimPrefix(strings.SplitN(out, "\n", 2)[0], "start ")
		return true, ""
	})
	if got, err := getLogs(l, ns, "logger", opts(corev1.PodLogOptions{})); err != nil || got != loggerOutput(pid2)+"after go\n" {
		t.Errorf("logs after the restart: %q, %v", got, err)
	}
	if got, err := getLogs(l, ns, "logger", opts(corev1.PodLogOptions{Previous: true})); err != nil || got != want+"after go\n" {
		t.Errorf("previous: %q, %v; want %q", got, err, want+"after go\n")
	}
	if got, err := getLogs(l, ns, "logger", opts(corev1.PodLogOptions{Previous: true, TailLines: ptr.To(int64(1))})); err != nil || got != "after go\n" {
		t.Errorf("previous tailLines=1: %q, %v", got, err)
	}
	// The raw file holds both runs with the lab's markers; the API never
	// shows those.
	raw, err := l.State.Logs(ns, "logger", "logger")
	if err != nil || strings.Count(raw, "== lab: ") != 2 {
		t.Errorf("log file: %d markers, %v", strings.Count(raw, "== lab: "), err)
	}
}

// TestLabKubeletExec: exec through the API server with both client-go
// executors - stdout, stderr kept apart, stdin, exit codes - and a command
// whose client goes away is killed.
func TestLabKubeletExec(t *testing.T) {
	l := requireLab(t)
	ctx := context.Background()
	ns := newNamespace(t, l, "kexec")
	loggerPod(t, l, ns)
	for _, ex := range executors {
		t.Run(ex.name, func(t *testing.T) {
			out, errOut, err := execIn(ctx, l, ex.websocket, ns, "logger", "logger", []string{"echo", "hello"}, nil)
			if err != nil || out != "hello\n" || errOut != "" {
				t.Errorf("echo hello: stdout %q, stderr %q, %v", out, errOut, err)
			}
			out, errOut, err = execIn(ctx, l, ex.websocket, ns, "logger", "logger", []string{"sh", "-c", "echo out; echo err >&2; exit 3"}, nil)
			var code utilexec.CodeExitError
			if !errors.As(err, &code) || code.Code != 3 || out != "out\n" || errOut != "err\n" {
				t.Errorf("failing command: stdout %q, stderr %q, error %#v; want out, err, exit code 3", out, errOut, err)
			}
			in := "some input\nand more\n"
			out, _, err = execIn(ctx, l, ex.websocket, ns, "logger", "logger", []string{"cat"}, strings.NewReader(in))
			if err != nil || out != in {
				t.Errorf("cat: %q, %v; want %q", out, err, in)
			}
			// The exec runs in the container's mount namespace setup:
			// its emptyDir and its hostname (the pod's).
			out, _, err = execIn(ctx, l, ex.websocket, ns, "logger", "logger", []string{"sh", "-c", "hostname; ls /tmp/data"}, nil)
			if err != nil || !strings.HasPrefix(out, "logger\n") {
				t.Errorf("hostname: %q, %v", out, err)
			}
			// No $(VAR) expansion in exec, unlike container commands.
			out, _, err = execIn(ctx, l, ex.websocket, ns, "logger", "logger", []string{"echo", "$(HOSTNAME)", "$$"}, nil)
			if err != nil || out != "$(HOSTNAME) $$\n" {
				t.Errorf("echo '$(HOSTNAME) $$': %q, %v", out, err)
			}
			_, _, err = execIn(ctx, l, ex.websocket, ns, "logger", "logger", []string{"/no/such/command"}, nil)
			if !errors.As(err, &code) || code.Code != 127 {
				t.Errorf("missing command: %v, want exit code 127", err)
			}
		})
	}

	// A hanging command dies with its session.
	cctx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		req := l.Kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(ns).Name("logger").SubResource("exec").
			VersionedParams(&corev1.PodExecOptions{Container: "logger", Command: []string{"sh", "-c", "echo $$; exec sleep 1000"}, Stdout: true, Stderr: true}, scheme.ParameterCodec)
		ex, err := remotecommand.NewSPDYExecutor(l.RestConfig, "POST", req.URL())
		if err == nil {
			err = ex.StreamWithContext(cctx, remotecommand.StreamOptions{Stdout: pw, Stderr: io.Discard})
		}
		pw.CloseWithError(err)
		done <- err
	}()
	line := make([]byte, 32)
	k, err := pr.Read(line)
	if err != nil {
		cancel()
		t.Fatalf("hanging command: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(line[:k])))
	if err != nil {
		cancel()
		t.Fatalf("hanging command printed %q", line[:k])
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	cancel()
	<-done
	eventually(t, 15*time.Second, "hanging command killed after its client left", func() (bool, string) {
		err := syscall.Kill(pid, 0)
		return errors.Is(err, syscall.ESRCH), fmt.Sprintf("pid %d still there (%v)", pid, err)
	})
}

// TestLabKubeletSpeaker: the running speaker's log through the API server
// is its real output, and vtysh in its frr container answers.
func TestLabKubeletSpeaker(t *testing.T) {
	l := requireLab(t)
	ctx := context.Background()
	pods, err := l.Kube.CoreV1().Pods(lab.StackNamespace).List(ctx, metav1.ListOptions{LabelSelector: "component=speaker"})
	if err != nil {
		t.Fatal(err)
	}
	var pod *corev1.Pod
	for i := range pods.Items {
		p := &pods.Items[i]
		for _, s := range p.Status.ContainerStatuses {
			if s.Name == "speaker" && s.State.Running != nil && p.DeletionTimestamp == nil {
				pod = p
			}
		}
	}
	if pod == nil {
		t.Skipf("no running speaker in %s (the default scenario, bgp-ecmp-bfd, runs one per node)", lab.StackNamespace)
	}
	var names []string
	frr := ""
	for _, c := range pod.Spec.Containers {
		names = append(names, c.Name)
		if c.Name == "frr" {
			frr = c.Name
		}
	}

	out, err := getLogs(l, pod.Namespace, pod.Name, &corev1.PodLogOptions{Container: "speaker"})
	if err != nil {
		t.Fatal(err)
	}
	raw, err := l.State.Logs(pod.Namespace, pod.Name, "speaker")
	if err != nil {
		t.Fatal(err)
	}
	if out == "" || !strings.Contains(raw, out) || strings.Contains(out, "== lab: ") {
		t.Errorf("speaker log through the API (%d bytes) is not its current run in %s (%d bytes)", len(out), "the log file", len(raw))
	}
	if !strings.Contains(out, `"level"`) {
		t.Errorf("speaker log does not look like the speaker's: %.200q", out)
	}
	tail, err := getLogs(l, pod.Namespace, pod.Name, &corev1.PodLogOptions{Container: "speaker", TailLines: ptr.To(int64(1))})
	if raw, _ = l.State.Logs(pod.Namespace, pod.Name, "speaker"); err != nil || strings.Count(tail, "\n") != 1 || !strings.Contains(raw, tail) {
		t.Errorf("speaker tailLines=1: %q, %v", tail, err)
	}

	if frr == "" {
		t.Skipf("speaker %s has no frr container (containers %v): not FRR mode", pod.Name, names)
	}
	for _, ex := range executors {
		out, errOut, err := execIn(ctx, l, ex.websocket, pod.Namespace, pod.Name, frr, []string{"vtysh", "-c", "show version"}, nil)
		if err != nil || !strings.Contains(out, "FRRouting") {
			t.Errorf("%s: vtysh -c 'show version' in %s/%s: stdout %q, stderr %q, %v", ex.name, pod.Name, frr, out, errOut, err)
		}
	}
}

// TestLabKubeletFRRExec: vtysh in the frr container of a pod built like
// the speaker's FRR part (frrPod) answers through exec, whatever the stack
// runs; its daemons' log is served too.
func TestLabKubeletFRRExec(t *testing.T) {
	l := requireLab(t)
	ctx := context.Background()
	ns := newNamespace(t, l, "kfrr")
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "frr-startup"},
		Data:       map[string]string{"daemons": frrTestDaemons, "frr.conf": frrTestConfig, "vtysh.conf": "service integrated-vtysh-config\n"},
	}
	if _, err := l.Kube.CoreV1().ConfigMaps(ns).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Kube.CoreV1().Pods(ns).Create(ctx, frrPod("frr", lab.NodeName(2)), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 90*time.Second, "vtysh answers in the frr container", func() (bool, string) {
		out, errOut, err := execIn(ctx, l, false, ns, "frr", "frr", []string{"vtysh", "-c", "show running-config"}, nil)
		return err == nil && strings.Contains(out, "router bgp 64999"), fmt.Sprintf("stdout %q, stderr %q, %v", out, errOut, err)
	})
	for _, ex := range executors {
		out, errOut, err := execIn(ctx, l, ex.websocket, ns, "frr", "frr", []string{"vtysh", "-c", "show version"}, nil)
		if err != nil || !strings.Contains(out, "FRRouting") {
			t.Errorf("%s: vtysh -c 'show version': stdout %q, stderr %q, %v", ex.name, out, errOut, err)
		}
	}
	out, err := getLogs(l, ns, "frr", &corev1.PodLogOptions{Container: "frr"})
	if err != nil || !strings.Contains(out, "zebra") || strings.Contains(out, "== lab: ") {
		t.Errorf("frr container log: %.300q, %v", out, err)
	}
}

// errText is an API error's message with the server's own words, which
// client-go keeps in the causes when the body was not a Status.
func errText(err error) string {
	if err == nil {
		return ""
	}
	text := err.Error()
	var se apierrors.APIStatus
	if errors.As(err, &se) && se.Status().Details != nil {
		for _, c := range se.Status().Details.Causes {
			text += "; " + c.Message
		}
	}
	return text
}

// TestLabKubeletAPI: nodes report the kubelet port, and the API server's
// node proxy reaches each kubelet: /healthz, the kubelet's 404s.
func TestLabKubeletAPI(t *testing.T) {
	l := requireLab(t)
	ctx := context.Background()
	rc := l.Kube.CoreV1().RESTClient()
	for i := 1; i <= l.State.Nodes; i++ {
		name := lab.NodeName(i)
		n, err := l.Kube.CoreV1().Nodes().Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if p := n.Status.DaemonEndpoints.KubeletEndpoint.Port; p != lab.KubeletPort {
			t.Errorf("%s: kubelet endpoint port %d, want %d", name, p, lab.KubeletPort)
		}
		b, err := rc.Get().AbsPath("/api/v1/nodes", name, "proxy", "healthz").DoRaw(ctx)
		if err != nil || string(b) != "ok" {
			t.Errorf("%s: /healthz through the node proxy: %q, %v", name, b, err)
		}
		_, err = rc.Get().AbsPath("/api/v1/nodes", name, "proxy", "no-such-endpoint").DoRaw(ctx)
		if !apierrors.IsNotFound(err) {
			t.Errorf("%s: unknown endpoint: %v, want 404", name, err)
		}
		_, err = rc.Get().AbsPath("/api/v1/nodes", name, "proxy", "containerLogs", "default", "no-such-pod", "c").DoRaw(ctx)
		if !apierrors.IsNotFound(err) || !strings.Contains(errText(err), `pod "no-such-pod" does not exist`) {
			t.Errorf("%s: logs of an unknown pod: %v, want 404 saying so", name, err)
		}
	}
	// An unknown container of a pod that exists (the API server checks
	// names first, so ask the kubelet through the node proxy).
	ns := newNamespace(t, l, "kapi")
	loggerPod(t, l, ns)
	_, err := rc.Get().AbsPath("/api/v1/nodes", lab.NodeName(1), "proxy", "containerLogs", ns, "logger", "nope").DoRaw(ctx)
	if !apierrors.IsNotFound(err) || !strings.Contains(errText(err), `container "nope" not found in pod "logger"`) {
		t.Errorf("logs of an unknown container: %v, want 404 saying so", err)
	}
}
