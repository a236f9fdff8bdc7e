package envtest

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// CPUGroup is a control group that accounts the CPU time of the processes
// put in it and of every process they start, including the children that
// have ended (vtysh, frr-reload.py): what a container's CPU figure counts,
// in nanoseconds, where /proc/PID/stat counts 10 ms ticks and forgets
// children nobody waited for. The benchmarks measure components run as
// processes with it (a speaker and its FRR).
type CPUGroup struct {
	dir string
	// v2: cpu.stat's usage_usec; v1: cpuacct.usage (nanoseconds).
	v2 bool
}

// NewCPUGroup creates a control group named name (made unique with this
// process's PID) in the cgroup v1 cpuacct hierarchy, or in the unified
// (v2) one when there is no v1 cpuacct, and removes it when the test ends
// (after the processes in it have been stopped: cleanups run last first,
// so create the group before starting them). Needs root.
func NewCPUGroup(tb testing.TB, name string) *CPUGroup {
	tb.Helper()
	root, v2, err := cpuHierarchy(tb)
	if err != nil {
		tb.Fatalf("CPU accounting group %s: %v", name, err)
	}
	g := &CPUGroup{dir: filepath.Join(root, fmt.Sprintf("lbs-bench-%d-%s", os.Getpid(), name)), v2: v2}
	if err := os.Mkdir(g.dir, 0o755); err != nil {
		tb.Fatalf("CPU accounting group %s: %v", name, err)
	}
	tb.Cleanup(func() {
		// A process still in it (one that did not stop) keeps it.
		for range 50 {
			if err := os.Remove(g.dir); err == nil || errors.Is(err, os.ErrNotExist) {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		tb.Errorf("cannot remove %s: processes left in it: %s", g.dir, g.procs())
	})
	return g
}

var (
	hierarchyMu sync.Mutex
	// mountedHierarchy is the hierarchy this process mounted, if any.
	mountedHierarchy string
)

// cpuHierarchy finds the cgroup v1 cpuacct hierarchy, or the unified (v2)
// one when there is no v1 cpuacct. `ip netns exec` (which runs the lab's
// node-namespace benchmarks) mounts a fresh /sys without them: there the
// hierarchy is mounted again, in that command's own mount namespace, in a
// temporary directory unmounted when the test ends.
func cpuHierarchy(tb testing.TB) (root string, v2 bool, err error) {
	hierarchyMu.Lock()
	defer hierarchyMu.Unlock()
	switch {
	case mountedHierarchy != "":
		_, err := os.Stat(filepath.Join(mountedHierarchy, "cgroup.controllers"))
		return mountedHierarchy, err == nil, nil
	case isFile("/sys/fs/cgroup/cpuacct/cpuacct.usage"):
		return "/sys/fs/cgroup/cpuacct", false, nil
	case isFile("/sys/fs/cgroup/cgroup.controllers"):
		return "/sys/fs/cgroup", true, nil
	}
	dir, err := os.MkdirTemp("", "lbs-cgroup-")
	if err != nil {
		return "", false, err
	}
	if err1 := syscall.Mount("cgroup", dir, "cgroup", 0, "cpuacct"); err1 != nil {
		if err2 := syscall.Mount("cgroup2", dir, "cgroup2", 0, ""); err2 != nil {
			_ = os.Remove(dir)
			return "", false, fmt.Errorf("no cgroup hierarchy under /sys/fs/cgroup, and mounting one failed (cpuacct: %v; cgroup2: %v)", err1, err2)
		}
		v2 = true
	}
	mountedHierarchy = dir
	// Registered before any group, so it runs after they are removed.
	tb.Cleanup(func() {
		hierarchyMu.Lock()
		defer hierarchyMu.Unlock()
		if err := syscall.Unmount(dir, 0); err != nil {
			tb.Errorf("unmount %s: %v", dir, err)
			return
		}
		_ = os.Remove(dir)
		mountedHierarchy = ""
	})
	return dir, v2, nil
}

func isFile(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular()
}

// Add moves process pid (all its threads) into the group; the processes
// it starts from then on are in the group too.
func (g *CPUGroup) Add(pid int) error {
	if err := os.WriteFile(filepath.Join(g.dir, "cgroup.procs"), []byte(strconv.Itoa(pid)), 0); err != nil {
		return fmt.Errorf("move process %d into %s: %w", pid, g.dir, err)
	}
	return nil
}

// Usage is the CPU time the group's processes have used since they were
// put in it, ended children included.
func (g *CPUGroup) Usage() (time.Duration, error) {
	if !g.v2 {
		raw, err := os.ReadFile(filepath.Join(g.dir, "cpuacct.usage"))
		if err != nil {
			return 0, err
		}
		ns, err := strconv.ParseInt(strings.TrimSpace(string(raw)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s/cpuacct.usage: %q", g.dir, raw)
		}
		return time.Duration(ns), nil
	}
	raw, err := os.ReadFile(filepath.Join(g.dir, "cpu.stat"))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "usage_usec "); ok {
			us, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s/cpu.stat: %q", g.dir, l)
			}
			return time.Duration(us) * time.Microsecond, nil
		}
	}
	return 0, fmt.Errorf("%s/cpu.stat has no usage_usec", g.dir)
}

// procs lists the PIDs in the group (for an error message).
func (g *CPUGroup) procs() string {
	raw, _ := os.ReadFile(filepath.Join(g.dir, "cgroup.procs"))
	return strings.Join(strings.Fields(string(raw)), " ")
}
