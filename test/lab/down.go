package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// DownOptions tune Down.
type DownOptions struct {
	// Out receives progress lines (os.Stderr when nil).
	Out io.Writer
	// KeepLogs keeps StateDir/logs (for a failed run); everything else
	// goes.
	KeepLogs bool
}

// Down tears the lab in stateDir down: every process it started (by
// recorded PID and start time, then anything still living in a lab
// namespace, by PID), every lab namespace, the host's veth, the mounts and
// the state directory. It works without a state file too (after an
// interrupted run), finding namespaces by their lbl- prefix. It returns an
// error naming whatever it could not remove.
func Down(ctx context.Context, stateDir string, o DownOptions) error {
	if o.Out == nil {
		o.Out = os.Stderr
	}
	stateDir, err := filepath.Abs(stateDir)
	if err != nil {
		return err
	}
	st, stErr := LoadState(stateDir)
	if stErr != nil {
		st = &State{Dir: stateDir, NetnsDirPreexisted: false, FRRTmpPreexisted: true}
	}
	var errs []error
	stop := func(p Proc, grace time.Duration) {
		if p.PID == os.Getpid() {
			return
		}
		if err := p.Stop(grace); err != nil {
			errs = append(errs, err)
		}
		_ = os.Remove(filepath.Join(st.runDir(), p.Name+".pid"))
	}
	procs, err := readProcs(st.runDir())
	if err != nil {
		errs = append(errs, err)
	}
	byName := map[string]Proc{}
	for _, p := range procs {
		byName[p.Name] = p
	}
	// The reaper first (it would start a second teardown), then every
	// node: kube-proxy, kubelet, the pods' containers (by cgroup),
	// containerd and its shims.
	if p, ok := byName[procReaper]; ok {
		stop(p, 15*time.Second)
		delete(byName, procReaper)
	}
	for _, node := range labNodes(st) {
		if err := st.stopNode(node); err != nil {
			errs = append(errs, err)
		}
		for _, n := range []string{procKubeProxy(node), procKubeletOf(node), procContainerd(node)} {
			delete(byName, n)
		}
	}
	// FRR instances: their records are frr-<instance>-<daemon>.
	for name, p := range byName {
		inst, daemon, ok := frrRecord(name)
		if !ok {
			continue
		}
		stop(p, 5*time.Second)
		_ = os.RemoveAll(filepath.Join(frrTmpDir, fmt.Sprintf("%s.%d", daemon, p.PID)))
		_ = os.Remove(filepath.Join("/run/frr", inst))
		delete(byName, name)
	}
	for _, name := range []string{procScheduler, procKCM, procAPIServer, procEtcd} {
		if p, ok := byName[name]; ok {
			stop(p, 10*time.Second)
			delete(byName, name)
		}
	}
	for _, p := range byName {
		stop(p, 5*time.Second)
	}
	// Anything the records missed (a process started just before an
	// interrupt): processes whose command line names the state
	// directory, stopped by PID.
	for _, p := range strayProcs(stateDir, st.labExecutables()) {
		fmt.Fprintf(o.Out, "lab: stopping stray process %d (%s)\n", p.PID, p.Name)
		stop(p, 5*time.Second)
	}
	if err := teardownNetwork(ctx, !st.NetnsDirPreexisted); err != nil {
		errs = append(errs, err)
	}
	if err := removeGuardRoutes(ctx, st.GuardRoutes, stErr == nil); err != nil {
		errs = append(errs, err)
	}
	// Cgroups of nodes the records missed (after a crash).
	for _, cg := range labCgroups() {
		if err := killCgroups(filepath.Base(cg)); err != nil {
			errs = append(errs, err)
		}
	}
	if left := labCgroups(); len(left) > 0 {
		errs = append(errs, fmt.Errorf("cgroups left behind: %s", strings.Join(left, ", ")))
	}
	if entries, err := os.ReadDir("/run/frr"); err == nil {
		for _, e := range entries {
			if strings.HasPrefix(e.Name(), NetnsPrefix) {
				_ = os.Remove(filepath.Join("/run/frr", e.Name()))
			}
		}
	}
	if !st.FRRTmpPreexisted {
		_ = os.Remove(frrTmpDir) // only if empty
	}
	if mounts, err := labMounts(stateDir); err != nil {
		errs = append(errs, err)
	} else if len(mounts) > 0 {
		errs = append(errs, fmt.Errorf("mounts left behind: %s", strings.Join(mounts, ", ")))
	}
	if err := removeState(stateDir, o.KeepLogs); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// labNodes lists the nodes to stop: those the state records, and any lab
// node namespace or cgroup left without a record.
func labNodes(st *State) []string {
	seen := map[string]bool{}
	var out []string
	add := func(n string) {
		if nodeIndexFromName(n) > 0 && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for i := 1; i <= st.Nodes; i++ {
		add(NodeName(i))
	}
	names, _ := LabNetns()
	for _, n := range names {
		add(n)
	}
	for _, cg := range labCgroups() {
		add(filepath.Base(cg))
	}
	return out
}

// frrRecord splits an FRR process record name, frr-<instance>-<daemon>.
func frrRecord(name string) (instance, daemon string, ok bool) {
	rest, ok := strings.CutPrefix(name, "frr-")
	if !ok {
		return "", "", false
	}
	i := strings.LastIndexByte(rest, '-')
	if i < 0 {
		return "", "", false
	}
	return rest[:i], rest[i+1:], true
}

// labExecutables are the path prefixes of every program the lab runs.
func (s *State) labExecutables() []string {
	root := s.Root
	if root == "" {
		root = filepath.Dir(s.Dir)
	}
	out := []string{frrBinDir + "/", filepath.Join(root, "bin") + "/"}
	for _, p := range []string{s.Assets, s.LabBinary, s.LbstackBinary} {
		if p != "" {
			out = append(out, p)
		}
	}
	return out
}

// strayProcs lists processes (other than this one and its parent) that run
// one of the lab's executables and whose command line mentions the state
// directory. Both must hold, so a user's `tail -f .lab/logs/...` is never
// touched.
func strayProcs(stateDir string, exes []string) []Proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	needle := []byte(stateDir + "/")
	needleExact := []byte(stateDir + "\x00")
	var out []Proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() || pid == os.Getppid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || (!bytes.Contains(cmdline, needle) && !bytes.Contains(cmdline, needleExact)) {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		ours := false
		for _, prefix := range exes {
			ours = ours || strings.HasPrefix(strings.TrimSuffix(exe, " (deleted)"), prefix)
		}
		if !ours {
			continue
		}
		name := string(bytes.ReplaceAll(bytes.TrimRight(cmdline, "\x00"), []byte{0}, []byte(" ")))
		if len(name) > 80 {
			name = name[:80]
		}
		if p, err := procOf(name, pid); err == nil && p.Alive() {
			out = append(out, p)
		}
	}
	return out
}

// removeState deletes the state directory (but its logs when keepLogs).
func removeState(dir string, keepLogs bool) error {
	if !keepLogs {
		return os.RemoveAll(dir)
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range entries {
		if e.Name() == "logs" {
			continue
		}
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
