package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Proc identifies one process the lab started: its PID and its start time
// (from /proc/PID/stat), so a recycled PID is never mistaken for ours and
// never signalled.
type Proc struct {
	Name  string `json:"name"`
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	// Args is a digest of the command line a daemon was started with, so
	// a later `up` sees when the lab now starts it differently.
	Args string `json:"args,omitempty"`
}

// procStat returns a process's state letter and start time (clock ticks
// since boot).
func procStat(pid int) (byte, uint64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, err
	}
	// The command name is in parentheses and may contain anything; the
	// fields we need follow the last ')'.
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, 0, fmt.Errorf("malformed /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return 0, 0, fmt.Errorf("/proc/%d/stat start time: %w", pid, err)
	}
	return f[0][0], start, nil
}

// procOf records a running process.
func procOf(name string, pid int) (Proc, error) {
	_, start, err := procStat(pid)
	if err != nil {
		return Proc{}, fmt.Errorf("record %s (pid %d): %w", name, pid, err)
	}
	return Proc{Name: name, PID: pid, Start: start}, nil
}

// Alive reports whether the recorded process still runs (same PID, same
// start time, not a zombie).
func (p Proc) Alive() bool {
	if p.PID <= 0 {
		return false
	}
	state, start, err := procStat(p.PID)
	return err == nil && start == p.Start && state != 'Z' && state != 'X'
}

// Stop sends SIGTERM to the process (and its process group when it leads
// one), waits up to grace, then SIGKILLs it. It only ever signals the
// recorded PID, after checking its start time.
func (p Proc) Stop(grace time.Duration) error {
	if !p.Alive() {
		return nil
	}
	p.signal(syscall.SIGTERM)
	if waitGone(p, grace) {
		return nil
	}
	p.signal(syscall.SIGKILL)
	if waitGone(p, 5*time.Second) {
		return nil
	}
	return fmt.Errorf("%s (pid %d) survived SIGKILL", p.Name, p.PID)
}

func (p Proc) signal(sig syscall.Signal) {
	if !p.Alive() {
		return
	}
	// Daemons and containers lead their own process group: signal the
	// group so helpers they forked go too.
	if pgid, err := syscall.Getpgid(p.PID); err == nil && pgid == p.PID {
		_ = syscall.Kill(-p.PID, sig)
		return
	}
	_ = syscall.Kill(p.PID, sig)
}

func waitGone(p Proc, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if !p.Alive() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeProc records p in dir/<p.Name>.pid.
func writeProc(dir string, p Proc) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	data, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return writeFileAtomic(filepath.Join(dir, p.Name+".pid"), data, 0o644)
}

// readProcs returns every process recorded in dir.
func readProcs(dir string) ([]Proc, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.pid"))
	if err != nil {
		return nil, err
	}
	var out []Proc
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue
			}
			return nil, err
		}
		var p Proc
		if err := json.Unmarshal(data, &p); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		out = append(out, p)
	}
	return out, nil
}

// readProc returns the process recorded as dir/<name>.pid.
func readProc(dir, name string) (Proc, bool) {
	data, err := os.ReadFile(filepath.Join(dir, name+".pid"))
	if err != nil {
		return Proc{}, false
	}
	var p Proc
	if json.Unmarshal(data, &p) != nil {
		return Proc{}, false
	}
	return p, true
}

// daemon describes a long-running lab process.
type daemon struct {
	Name  string
	Argv  []string
	Env   []string // added to the lab's environment
	Log   string   // stdout and stderr are appended here
	Netns string   // run inside this namespace (ip netns exec)
}

// digest identifies the daemon's command line and environment.
func (d daemon) digest() string {
	h := sha256.New()
	for _, a := range append(append([]string(nil), d.Argv...), d.Env...) {
		h.Write([]byte(a))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// startDaemon starts d in its own session, so it outlives the command that
// brought the lab up, and records it in runDir. The caller's process reaps
// it if it dies while the caller is still around.
func startDaemon(runDir string, d daemon) (Proc, error) {
	argv := d.Argv
	if d.Netns != "" {
		// ip netns exec execs the command: the recorded PID is the
		// daemon's own.
		argv = append([]string{"ip", "netns", "exec", d.Netns}, argv...)
	}
	if err := os.MkdirAll(filepath.Dir(d.Log), 0o755); err != nil {
		return Proc{}, err
	}
	logf, err := os.OpenFile(d.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return Proc{}, fmt.Errorf("start %s: %w", d.Name, err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "== lab: %s starting at %s: %s\n", d.Name, time.Now().Format(time.RFC3339), strings.Join(argv, " "))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), d.Env...)
	cmd.Stdout = logf
	cmd.Stderr = logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return Proc{}, fmt.Errorf("start %s: %w", d.Name, err)
	}
	go func() { _ = cmd.Wait() }()
	p, err := procOf(d.Name, cmd.Process.Pid)
	if err != nil {
		_ = cmd.Process.Kill()
		return Proc{}, fmt.Errorf("start %s: exited at once (see %s): %w", d.Name, d.Log, err)
	}
	p.Args = d.digest()
	if err := writeProc(runDir, p); err != nil {
		_ = p.Stop(0)
		return Proc{}, fmt.Errorf("record %s: %w", d.Name, err)
	}
	return p, nil
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory and a rename, so readers (and processes that see the directory
// through a bind mount) never see a partial file.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// tailFile returns the last n lines of a file, for error messages.
func tailFile(path string, n int) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
