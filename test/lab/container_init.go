package lab

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ContainerInitArg is the first argument with which the lab kubelet
// re-executes its own binary to start a container: the child, already in a
// new mount and UTS namespace, joins the node's network namespace, sets up
// the container's mounts and execs the container's command. Doing this
// before exec (rather than with `ip netns exec` and a shell) keeps the
// container's PID the one the kubelet recorded.
const ContainerInitArg = "__lab-container-init"

// containerSpec is what the kubelet hands the init helper on fd 3.
type containerSpec struct {
	// Netns is the network namespace file to join.
	Netns    string `json:"netns"`
	Hostname string `json:"hostname"`
	// Stage is an empty directory (in the lab's state directory) the helper
	// may use to build tmpfs mirrors of directories that lack a mount
	// point, so it never creates anything in the host's filesystem.
	Stage   string      `json:"stage"`
	Mounts  []mountSpec `json:"mounts"`
	WorkDir string      `json:"workDir"`
	Env     []string    `json:"env"`
	Argv    []string    `json:"argv"`
}

type mountSpec struct {
	Source   string `json:"source"`
	Target   string `json:"target"`
	ReadOnly bool   `json:"readOnly"`
}

// ContainerInit is the helper's body; the lab CLI calls it when started
// with ContainerInitArg. It only returns on failure (exit code 127 when
// the command cannot be found, 126 otherwise, as container runtimes do).
func ContainerInit() {
	runtime.LockOSThread()
	f := os.NewFile(3, "spec")
	var spec containerSpec
	err := json.NewDecoder(f).Decode(&spec)
	f.Close()
	if err == nil {
		err = spec.enter()
	}
	if err == nil {
		err = spec.exec()
	}
	fmt.Fprintf(os.Stderr, "lab container init: %v\n", err)
	if errors.Is(err, exec.ErrNotFound) || errors.Is(err, os.ErrNotExist) {
		os.Exit(127)
	}
	os.Exit(126)
}

// enter joins the network namespace and builds the mount namespace. The
// process was cloned into fresh mount and UTS namespaces by the kubelet.
func (s *containerSpec) enter() error {
	// Nothing mounted here may propagate back to the host.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, ""); err != nil {
		return fmt.Errorf("make / a slave mount: %w", err)
	}
	nsf, err := os.Open(s.Netns)
	if err != nil {
		return fmt.Errorf("open network namespace: %w", err)
	}
	err = unix.Setns(int(nsf.Fd()), unix.CLONE_NEWNET)
	nsf.Close()
	if err != nil {
		return fmt.Errorf("join network namespace %s: %w", s.Netns, err)
	}
	// A sysfs mounted from inside the namespace shows its interfaces
	// under /sys/class/net, as `ip netns exec` arranges.
	if err := unix.Unmount("/sys", unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("unmount /sys: %w", err)
	}
	if err := unix.Mount("sysfs", "/sys", "sysfs", 0, ""); err != nil {
		return fmt.Errorf("mount sysfs: %w", err)
	}
	if s.Hostname != "" {
		if err := unix.Sethostname([]byte(s.Hostname)); err != nil {
			return fmt.Errorf("set hostname: %w", err)
		}
	}
	// Parents before children, so a volume mounted inside another one
	// lands on top of it.
	mounts := append([]mountSpec(nil), s.Mounts...)
	sort.SliceStable(mounts, func(i, j int) bool {
		return strings.Count(filepath.Clean(mounts[i].Target), "/") < strings.Count(filepath.Clean(mounts[j].Target), "/")
	})
	// An image has its own /tmp and /var/tmp: what a container writes
	// there (controller-runtime's webhook certificates, FRR's log
	// buffers) stays in the container.
	st := &stager{dir: s.Stage}
	for _, d := range []string{"/tmp", "/var/tmp"} {
		// A checkout (and so the lab's state, volumes and binaries) may
		// itself live under /tmp, as CI clones do: hiding it would hide
		// the container's own files, so that directory stays shared.
		if s.needs(d) {
			continue
		}
		if err := unix.Mount("tmpfs", d, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
			return fmt.Errorf("private %s: %w", d, err)
		}
		st.private = append(st.private, d)
	}
	for _, m := range mounts {
		if err := st.bind(m); err != nil {
			return err
		}
	}
	return nil
}

// needs tells whether the container's command, stage directory or a volume
// source lies under dir.
func (s *containerSpec) needs(dir string) bool {
	under := func(p string) bool { return p != "" && strings.HasPrefix(filepath.Clean(p)+"/", dir+"/") }
	if under(s.Stage) || (len(s.Argv) > 0 && under(s.Argv[0])) {
		return true
	}
	for _, m := range s.Mounts {
		if under(m.Source) {
			return true
		}
	}
	return false
}

func (s *containerSpec) exec() error {
	if len(s.Argv) == 0 {
		return errors.New("no command")
	}
	wd := s.WorkDir
	if wd == "" {
		wd = "/"
	}
	if err := os.Chdir(wd); err != nil {
		return fmt.Errorf("working directory: %w", err)
	}
	path := s.Argv[0]
	if !strings.Contains(path, "/") {
		var err error
		if path, err = lookPath(path, s.Env); err != nil {
			return err
		}
	}
	return fmt.Errorf("exec %s: %w", path, unix.Exec(path, s.Argv, s.Env))
}

// lookPath resolves a command name on the container's PATH.
func lookPath(name string, env []string) (string, error) {
	pathVar := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range filepath.SplitList(pathVar) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w", name, exec.ErrNotFound)
}

// stager bind-mounts volumes, creating missing mount points without ever
// writing to the host's filesystem.
type stager struct {
	dir string
	n   int
	// private are directories on filesystems of this mount namespace
	// only (tmpfs mounts and mirrors): mount points are made there
	// directly.
	private []string
}

func (st *stager) isPrivate(dir string) bool {
	for _, p := range st.private {
		if dir == p || strings.HasPrefix(dir, p+"/") {
			return true
		}
	}
	return false
}

func (st *stager) bind(m mountSpec) error {
	fi, err := os.Stat(m.Source)
	if err != nil {
		return fmt.Errorf("volume source %s: %w", m.Source, err)
	}
	target, err := st.mountPoint(m.Target, fi.IsDir())
	if err != nil {
		return fmt.Errorf("mount point %s: %w", m.Target, err)
	}
	if err := unix.Mount(m.Source, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind %s on %s: %w", m.Source, target, err)
	}
	if m.ReadOnly {
		if err := unix.Mount("", target, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("make %s read-only: %w", target, err)
		}
	}
	return nil
}

// mountPoint returns the real path of target, creating it when missing.
// A missing path is created inside a tmpfs mirror of its deepest existing
// ancestor: the mirror holds a bind mount of every entry of the original,
// so the container still sees everything that was there (for example
// /run/secrets is created this way while /run/netns stays visible).
func (st *stager) mountPoint(target string, dir bool) (string, error) {
	target = filepath.Clean(target)
	if _, err := os.Stat(target); err == nil {
		return filepath.EvalSymlinks(target)
	}
	anc := filepath.Dir(target)
	rest := []string{filepath.Base(target)}
	for {
		if _, err := os.Stat(anc); err == nil {
			break
		}
		if anc == "/" {
			return "", errors.New("no existing ancestor")
		}
		rest = append([]string{filepath.Base(anc)}, rest...)
		anc = filepath.Dir(anc)
	}
	real, err := filepath.EvalSymlinks(anc)
	if err != nil {
		return "", err
	}
	if !st.isPrivate(real) {
		if real == "/" {
			return "", fmt.Errorf("refusing to mirror / to create %s", target)
		}
		if err := st.mirror(real); err != nil {
			return "", err
		}
		st.private = append(st.private, real)
	}
	p := real
	for i, name := range rest {
		p = filepath.Join(p, name)
		if i < len(rest)-1 || dir {
			if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
				return "", err
			}
			continue
		}
		fh, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o644)
		if err != nil {
			return "", err
		}
		fh.Close()
	}
	return p, nil
}

// mirror replaces dir, in this mount namespace only, by a tmpfs that holds
// a bind mount of each of dir's entries (symlinks are copied).
func (st *stager) mirror(dir string) error {
	st.n++
	stage := filepath.Join(st.dir, strconv.Itoa(st.n))
	if err := os.MkdirAll(stage, 0o700); err != nil {
		return err
	}
	info, err := os.Stat(dir)
	if err != nil {
		return err
	}
	mode := fmt.Sprintf("mode=%o", info.Mode().Perm())
	if err := unix.Mount("tmpfs", stage, "tmpfs", 0, mode); err != nil {
		return fmt.Errorf("tmpfs for %s: %w", dir, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		src := filepath.Join(dir, e.Name())
		dst := filepath.Join(stage, e.Name())
		fi, err := os.Lstat(src)
		if err != nil {
			continue // vanished meanwhile
		}
		switch {
		case fi.Mode()&os.ModeSymlink != 0:
			link, err := os.Readlink(src)
			if err != nil {
				return err
			}
			if err := os.Symlink(link, dst); err != nil {
				return err
			}
			continue
		case fi.IsDir():
			if err := os.Mkdir(dst, fi.Mode().Perm()); err != nil {
				return err
			}
		default:
			fh, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY, 0o644)
			if err != nil {
				return err
			}
			fh.Close()
		}
		if err := unix.Mount(src, dst, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return fmt.Errorf("mirror %s: %w", src, err)
		}
	}
	if err := unix.Mount(stage, dir, "", unix.MS_MOVE, ""); err != nil {
		return fmt.Errorf("move mirror onto %s: %w", dir, err)
	}
	return nil
}
