// FRR containers for real.
//
// The lab kubelet runs containers of FRR's image - any image whose
// repository's last path element is `frr` (quay.io/frrouting/frr:8.4.4,
// frr:dev, ...) - as real processes, so the speaker's FRR backend (the
// `frr` container, its `cp-frr-files` init container, the reloader) can be
// tested end to end. The host's FRR (Debian's frr package, 8.4) stands in
// for the image's:
//
//   - The image's entrypoint, `/sbin/tini -- /usr/lib/frr/docker-start`
//     (tini and/or docker-start, as command or args, or the image's
//     defaults when the pod gives neither), is replaced by a stand-in,
//     `bin/lab frr-container` (hidden), which does what docker-start's
//     frrinit.sh does, in the foreground: inside the container's mount
//     namespace (so /etc/frr and /var/run/frr are the pod's volumes) it
//     chowns /etc/frr and /var/run/frr to frr:frr, reads /etc/frr/daemons,
//     starts zebra and staticd (always, as frrcommon.sh does) and bgpd and
//     bfdd when enabled, each as `-u frr -g frr --log stdout` followed by
//     `frr_global_options` and its `<daemon>_options` from that file, with
//     FRR's default paths - vty sockets, PID files, zserv.api and bfdd.sock
//     under /var/run/frr, the pod's volume - then applies the integrated
//     /etc/frr/frr.conf with `vtysh -b`, as frrinit.sh does (daemons do not
//     read an integrated config themselves). It forwards SIGTERM to the
//     daemons and exits when any of them dies (so the kubelet restarts the
//     container, where the image's watchfrr would restart the daemon); the
//     daemons' output is the container's log. Other daemons enabled in the
//     file are reported and not started.
//   - Every other command of the image (the init container's
//     `/bin/sh -c "cp -rLf /tmp/frr/* /etc/frr/"`) runs as given, with the
//     host's tools, inside the container's mount namespace.
//   - The stand-in refuses to run without a volume at /etc/frr: it never
//     changes the host's /etc/frr. Without a volume at /var/run/frr it mounts
//     a private tmpfs there, as the image's own directory.
//
// vtysh on the host reaches a pod's FRR through its sockets volume:
// `vtysh --vty_socket $(State.PodVolumePath(ns, pod, "frr-sockets"))`,
// i.e. .lab/pods/<pod UID>/volumes/frr-sockets.

package lab

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// FRRImageName is the repository name (last path element) that marks FRR's
// image, whatever registry and tag: quay.io/frrouting/frr:8.4.4, frr:dev.
const FRRImageName = "frr"

// FRRContainerCommand is the hidden lab subcommand that stands in for the
// FRR image's entrypoint (see RunFRRContainer).
const FRRContainerCommand = "frr-container"

// The FRR image's entrypoint and default command.
const (
	frrDockerStart = "/usr/lib/frr/docker-start"
	frrTini        = "/sbin/tini"
	// Inside the container these are the pod's volumes.
	frrConfDir = "/etc/frr"
	frrRunDir  = "/var/run/frr"
)

// frrImage is the built-in FRR image: labBinary runs the stand-in.
func frrImage(labBinary string) Image {
	return Image{Binary: labBinary, Entrypoint: frrDockerStart, frr: true}
}

// frrArgv is the argv a container of the FRR image runs: Kubernetes'
// command/args semantics over the image's ENTRYPOINT ["/sbin/tini", "--"]
// and CMD ["/usr/lib/frr/docker-start"], without tini (the lab's container
// init already leads the container's process group), and docker-start
// replaced by the lab's stand-in.
func frrArgv(labBinary string, command, args []string) []string {
	var argv []string
	switch {
	case len(command) > 0:
		argv = append(append(argv, command...), args...)
	case len(args) > 0:
		argv = append([]string{frrTini, "--"}, args...)
	default:
		argv = []string{frrTini, "--", frrDockerStart}
	}
	if isProgram(argv[0], frrTini) {
		argv = stripTini(argv[1:])
		if len(argv) == 0 {
			// tini without a program fails as the real one does: the
			// container init refuses an empty command.
			return nil
		}
	}
	if isProgram(argv[0], frrDockerStart) {
		return []string{labBinary, FRRContainerCommand}
	}
	return argv
}

// isProgram tells whether arg names path, by its full path or its name.
func isProgram(arg, path string) bool {
	return arg == path || arg == filepath.Base(path)
}

// stripTini drops tini's options (up to its program).
func stripTini(args []string) []string {
	for len(args) > 0 && strings.HasPrefix(args[0], "-") {
		switch args[0] {
		case "--":
			return args[1:]
		case "-p", "-e":
			// Options with a value.
			if len(args) < 2 {
				return nil
			}
			args = args[2:]
		default:
			args = args[1:]
		}
	}
	return args
}

// frrDaemonOrder is frrcommon.sh's DAEMONS order (zebra first) restricted
// to the daemons the stand-in runs.
var frrDaemonOrder = []string{"zebra", "bgpd", "staticd", "bfdd"}

// frrKnownDaemons are the other daemons frrcommon.sh knows: enabled, they
// are reported as not started.
var frrKnownDaemons = []string{"ripd", "ripngd", "ospfd", "ospf6d", "isisd", "babeld", "pimd", "pim6d", "ldpd", "nhrpd", "eigrpd", "sharpd", "pbrd", "fabricd", "vrrpd", "pathd"}

// parseShellVars reads the assignments of a shell file like FRR's daemons
// file: `name=value`, `name="value"`, `name='value'`, comments and blank
// lines; anything else (and any expansion) is ignored.
func parseShellVars(data []byte) map[string]string {
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		line = strings.TrimPrefix(line, "export ")
		name, val, ok := strings.Cut(line, "=")
		if !ok || !isShellName(name) {
			continue
		}
		switch {
		case strings.HasPrefix(val, `"`) || strings.HasPrefix(val, "'"):
			end := strings.IndexByte(val[1:], val[0])
			if end < 0 {
				continue // unterminated: not something frrinit would read either
			}
			val = val[1 : 1+end]
		default:
			if i := strings.IndexAny(val, " \t;"); i >= 0 {
				val = val[:i]
			}
		}
		vars[name] = val
	}
	return vars
}

func isShellName(s string) bool {
	if s == "" || (s[0] >= '0' && s[0] <= '9') {
		return false
	}
	for _, r := range s {
		if r != '_' && (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') {
			return false
		}
	}
	return true
}

// frrDaemonCmd is one daemon the stand-in starts.
type frrDaemonCmd struct {
	Name string
	Argv []string
}

// frrDaemons decides, from a daemons file, what the stand-in starts: zebra
// and staticd always and the others when enabled (as frrcommon.sh's
// daemon_list), each with `-u frr -g frr --log stdout`, then
// frr_global_options and the daemon's options. skipped lists enabled
// daemons the stand-in does not run.
func frrDaemons(daemonsFile []byte) (cmds []frrDaemonCmd, skipped []string) {
	vars := parseShellVars(daemonsFile)
	enabled := func(d string) bool {
		if d == "zebra" || d == "staticd" {
			return true
		}
		v := vars[d]
		return v != "" && v != "no" && v != "0"
	}
	global := strings.Fields(vars["frr_global_options"])
	for _, d := range frrDaemonOrder {
		if !enabled(d) {
			continue
		}
		argv := []string{filepath.Join(frrBinDir, d), "-u", "frr", "-g", "frr", "--log", "stdout"}
		argv = append(argv, global...)
		argv = append(argv, strings.Fields(vars[d+"_options"])...)
		cmds = append(cmds, frrDaemonCmd{Name: d, Argv: argv})
	}
	for _, d := range frrKnownDaemons {
		if enabled(d) {
			skipped = append(skipped, d)
		}
	}
	return cmds, skipped
}

// frrProc is a daemon the stand-in started.
type frrProc struct {
	name string
	cmd  *exec.Cmd
	done chan struct{} // closed once the daemon exited
	err  error         // its exit, once done
}

// RunFRRContainer is the stand-in for the FRR image's entrypoint (tini and
// docker-start), run by the lab kubelet as the container's command inside
// the container's namespaces. It returns when a daemon dies (an error) or
// after a SIGTERM or SIGINT has stopped the daemons (nil).
func RunFRRContainer(out io.Writer) error {
	logf := func(format string, args ...any) {
		fmt.Fprintf(out, "lab frr-container: "+format+"\n", args...)
	}
	// The kubelet's container init dies with the kubelet (SIGKILL); the
	// daemons drop to the frr user, which clears any parent-death signal
	// of theirs. A SIGTERM instead lets this process stop them first.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGTERM), 0, 0, 0); err != nil {
		return fmt.Errorf("parent-death signal: %w", err)
	}
	if os.Getppid() == 1 {
		return errors.New("parent already gone")
	}
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)

	if err := frrPrepareDirs(logf); err != nil {
		return err
	}
	data, err := os.ReadFile(filepath.Join(frrConfDir, "daemons"))
	if err != nil {
		return fmt.Errorf("FRR's daemons file (docker-start needs it too): %w", err)
	}
	cmds, skipped := frrDaemons(data)
	if len(skipped) > 0 {
		logf("enabled in %s/daemons but not run by the lab's FRR stand-in: %s", frrConfDir, strings.Join(skipped, ", "))
	}

	// died is told of each daemon's exit.
	died := make(chan *frrProc, len(cmds))
	var procs []*frrProc
	stopAll := func(grace time.Duration) {
		deadline := time.After(grace)
		stop := func(ps []*frrProc) {
			for i := len(ps) - 1; i >= 0; i-- {
				_ = ps[i].cmd.Process.Signal(syscall.SIGTERM)
			}
			for _, p := range ps {
				select {
				case <-p.done:
				case <-deadline:
					for _, q := range procs {
						_ = q.cmd.Process.Kill()
					}
					<-p.done
				}
				logf("%s (pid %d) stopped: %s", p.name, p.cmd.Process.Pid, exitText(p.err))
			}
		}
		// The other daemons before zebra (started first), as frrinit.sh
		// stops them.
		if len(procs) > 1 {
			stop(procs[1:])
		}
		if len(procs) > 0 {
			stop(procs[:1])
		}
	}
	for _, d := range cmds {
		// A restarted container finds the previous run's sockets in the
		// volume; a stale one must not count as this run's.
		sock := filepath.Join(frrRunDir, d.Name+".vty")
		_ = os.Remove(sock)
		logf("starting %s: %s", d.Name, strings.Join(d.Argv, " "))
		p := &frrProc{name: d.Name, cmd: exec.Command(d.Argv[0], d.Argv[1:]...), done: make(chan struct{})}
		p.cmd.Stdout, p.cmd.Stderr = out, out
		p.cmd.Dir = "/"
		if err := p.cmd.Start(); err != nil {
			stopAll(5 * time.Second)
			return fmt.Errorf("start %s: %w", d.Name, err)
		}
		procs = append(procs, p)
		go func() {
			p.err = p.cmd.Wait()
			close(p.done)
			died <- p
		}()
		// bgpd and bfdd register with zebra at start-up: each daemon
		// starts once the previous one opened its vty socket.
		if err := frrWaitSocket(p, sock, sigs); err != nil {
			stopAll(5 * time.Second)
			return err
		}
	}
	if _, err := os.Stat(filepath.Join(frrConfDir, "frr.conf")); err == nil {
		// frrinit.sh's vtysh_b: the integrated configuration is applied
		// once every daemon runs; a refused line is logged, not fatal.
		logf("applying %s/frr.conf: vtysh -b", frrConfDir)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, vtyshBinary, "-b")
		cmd.Stdout, cmd.Stderr = out, out
		err := cmd.Run()
		cancel()
		if err != nil {
			logf("vtysh -b: %v", err)
		}
	} else {
		logf("%s/frr.conf does not exist; skipping config apply", frrConfDir)
	}
	var pids []string
	for _, p := range procs {
		pids = append(pids, fmt.Sprintf("%s %d", p.name, p.cmd.Process.Pid))
	}
	logf("running: %s", strings.Join(pids, ", "))

	select {
	case sig := <-sigs:
		logf("%v: stopping the daemons", sig)
		stopAll(10 * time.Second)
		return nil
	case p := <-died:
		logf("%s (pid %d) exited (%s): stopping the others", p.name, p.cmd.Process.Pid, exitText(p.err))
		stopAll(5 * time.Second)
		return fmt.Errorf("FRR daemon %s exited: %s", p.name, exitText(p.err))
	}
}

func exitText(err error) string {
	if err == nil {
		return "exit status 0"
	}
	return err.Error()
}

// frrWaitSocket waits until a daemon opens its vty socket.
func frrWaitSocket(p *frrProc, sock string, sigs <-chan os.Signal) error {
	timeout := time.After(15 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(sock); err == nil {
			return nil
		}
		select {
		case <-p.done:
			return fmt.Errorf("FRR daemon %s exited at start: %s", p.name, exitText(p.err))
		case <-timeout:
			return fmt.Errorf("FRR daemon %s did not open %s within 15s", p.name, sock)
		case sig := <-sigs:
			return fmt.Errorf("%v while starting %s", sig, p.name)
		case <-tick.C:
		}
	}
}

// frrPrepareDirs checks that /etc/frr is a volume (the host's is never
// touched), gives /var/run/frr a private tmpfs when it is not one, and
// hands both to the frr user as docker-start and frrinit.sh do.
func frrPrepareDirs(logf func(string, ...any)) error {
	conf, err := filepath.EvalSymlinks(frrConfDir)
	if err != nil {
		return fmt.Errorf("%s: %w", frrConfDir, err)
	}
	if mounted, err := isMountPoint(conf); err != nil || !mounted {
		if err != nil {
			return err
		}
		return fmt.Errorf("%s is not a volume: the lab runs FRR only with the pod's own %s (an emptyDir or config map), never the host's", frrConfDir, frrConfDir)
	}
	run, err := filepath.EvalSymlinks(frrRunDir)
	if err != nil {
		return fmt.Errorf("%s: %w (mount a volume there)", frrRunDir, err)
	}
	if mounted, err := isMountPoint(run); err != nil {
		return err
	} else if !mounted {
		// The container's mount namespace is a slave of the host's:
		// this tmpfs is the container's alone.
		if err := unix.Mount("tmpfs", run, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
			return fmt.Errorf("private %s: %w", frrRunDir, err)
		}
		logf("%s is not a volume: using a private tmpfs", frrRunDir)
	}
	uid, gid, err := frrIDs()
	if err != nil {
		return err
	}
	if err := os.Chown(run, uid, gid); err != nil {
		return err
	}
	return filepath.WalkDir(conf, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, uid, gid)
	})
}

// podVolumeDir is where the kubelet keeps a volume of the pod whose
// directory is podDir (hostPath volumes excepted).
func podVolumeDir(podDir, volume string) string {
	return filepath.Join(podDir, "volumes", volume)
}

// PodVolumePath returns the host directory behind a volume of a pod the lab
// kubelet runs real containers for: for an emptyDir (or config map, secret,
// projected volume) .lab/pods/<pod UID>/volumes/<volume>, for a hostPath
// its path. With a pod's FRR sockets volume, vtysh on the host talks to the
// pod's FRR: `vtysh --vty_socket <path>`.
func (s *State) PodVolumePath(namespace, pod, volume string) (string, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig())
	if err != nil {
		return "", err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	p, err := cs.CoreV1().Pods(namespace).Get(ctx, pod, metav1.GetOptions{})
	if err != nil {
		return "", err
	}
	return s.podVolumePath(p, volume)
}

func (s *State) podVolumePath(p *corev1.Pod, volume string) (string, error) {
	for _, v := range p.Spec.Volumes {
		if v.Name != volume {
			continue
		}
		if v.HostPath != nil {
			return v.HostPath.Path, nil
		}
		dir := podVolumeDir(filepath.Join(s.podsDir(), string(p.UID)), volume)
		if _, err := os.Stat(dir); err != nil {
			return "", fmt.Errorf("pod %s/%s volume %s: %w (the lab kubelet prepares volumes of real containers once the pod starts; simulated pods have none)", p.Namespace, p.Name, volume, err)
		}
		return dir, nil
	}
	return "", fmt.Errorf("pod %s/%s has no volume %s", p.Namespace, p.Name, volume)
}
