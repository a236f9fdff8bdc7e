package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// FRR binaries from Debian's frr package.
const (
	frrBinDir   = "/usr/lib/frr"
	frrReload   = "/usr/lib/frr/frr-reload.py"
	vtyshBinary = "/usr/bin/vtysh"
	// frr-reload.py must run with the system interpreter: it imports the
	// Debian-packaged modules, which a pyenv or venv python3 first on
	// PATH does not have.
	systemPython = "/usr/bin/python3"
)

// FRR is one FRR instance (zebra, bgpd and optionally bfdd) inside a network
// namespace. Every path it uses - vty sockets, zserv socket, BFD control
// socket, PID files, config - lives in its own directory, and its pathspace
// (-N) is its name, so instances never collide with each other or with a
// system FRR.
type FRR struct {
	// Name is unique among instances; it names the directory, the
	// pathspace and the process records.
	Name string
	// Netns is the namespace the daemons run in.
	Netns string
	// Dir holds the instance's sockets, PID files and frr.conf.
	Dir string
	// BFD starts bfdd too.
	BFD bool
	// NoListen keeps bgpd from listening on port 179: a test peer then
	// only connects out, and cannot collide with another BGP speaker (a
	// future lbstack speaker) in the same node namespace.
	NoListen bool

	runDir, logDir string
}

func (f *FRR) daemons() []string {
	if f.BFD {
		return []string{"zebra", "bgpd", "bfdd"}
	}
	return []string{"zebra", "bgpd"}
}

func (f *FRR) procName(d string) string { return "frr-" + f.Name + "-" + d }

// ConfigPath is where Apply writes the rendered configuration.
func (f *FRR) ConfigPath() string { return filepath.Join(f.Dir, "frr.conf") }

// Start runs the daemons (in the foreground, under the lab's process
// records, as the frr user) and waits until vtysh reaches each of them.
func (f *FRR) Start(ctx context.Context) error {
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		return err
	}
	// FRR drops to the frr user: it must own its directory.
	uid, gid, err := frrIDs()
	if err != nil {
		return err
	}
	if err := os.Chown(f.Dir, uid, gid); err != nil {
		return err
	}
	if dir, mode, err := untraversable(filepath.Dir(f.Dir), uid, gid); err != nil {
		return err
	} else if dir != "" {
		return fmt.Errorf("FRR %s runs as the frr user, which cannot reach its directory %s: %s is mode %v, closed to others; "+
			"put the checkout under directories others may traverse (`chmod o+x %s`, or clone it under /srv or /tmp)", f.Name, f.Dir, dir, mode.Perm(), dir)
	}
	// vtysh looks for vtysh.conf next to the vty sockets; an empty one
	// keeps it quiet.
	if err := os.WriteFile(filepath.Join(f.Dir, "vtysh.conf"), nil, 0o644); err != nil {
		return err
	}
	for _, d := range f.daemons() {
		argv := []string{filepath.Join(frrBinDir, d),
			"-N", f.Name,
			"--vty_socket", f.Dir,
			"-z", filepath.Join(f.Dir, "zserv.api"),
			"-i", filepath.Join(f.Dir, d+".pid"),
			"-f", "/dev/null",
			"-P", "0", // no TCP vty
			"-u", "frr", "-g", "frr",
			"--log", "stdout",
		}
		switch d {
		case "bgpd":
			port := "179"
			if f.NoListen {
				port = "0"
			}
			argv = append(argv, "-p", port)
		case "bfdd":
			argv = append(argv, "--bfdctl", filepath.Join(f.Dir, "bfdd.sock"))
		}
		if _, err := startDaemon(f.runDir, daemon{Name: f.procName(d), Argv: argv, Log: filepath.Join(f.logDir, f.procName(d)+".log"), Netns: f.Netns}); err != nil {
			return err
		}
		// bgpd and bfdd register with zebra at start-up; waiting for
		// each daemon's vty socket keeps the order deterministic.
		if err := f.waitSocket(ctx, d); err != nil {
			return err
		}
	}
	return nil
}

func (f *FRR) waitSocket(ctx context.Context, d string) error {
	sock := filepath.Join(f.Dir, d+".vty")
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(sock); err == nil {
			return nil
		}
		p, _ := readProc(f.runDir, f.procName(d))
		logPath := filepath.Join(f.logDir, f.procName(d)+".log")
		if !p.Alive() {
			return fmt.Errorf("FRR %s: %s exited at start; end of %s:\n%s", f.Name, d, logPath, tailFile(logPath, 10))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("FRR %s: %s did not open %s; end of %s:\n%s", f.Name, d, sock, logPath, tailFile(logPath, 10))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Alive reports whether every daemon of the instance runs.
func (f *FRR) Alive() bool {
	for _, d := range f.daemons() {
		p, ok := readProc(f.runDir, f.procName(d))
		if !ok || !p.Alive() {
			return false
		}
	}
	return true
}

// Stop stops the daemons by their recorded PIDs and removes what FRR leaves
// outside the instance directory (its pathspace directory under /run/frr
// and the per-process log buffers under /var/tmp/frr when a daemon had to
// be killed).
func (f *FRR) Stop() error {
	var errs []error
	// Reverse order: bfdd and bgpd before zebra, as frrinit does.
	ds := f.daemons()
	for i := len(ds) - 1; i >= 0; i-- {
		p, ok := readProc(f.runDir, f.procName(ds[i]))
		if !ok {
			continue
		}
		if err := p.Stop(5 * time.Second); err != nil {
			errs = append(errs, err)
		}
		_ = os.RemoveAll(filepath.Join(frrTmpDir, fmt.Sprintf("%s.%d", ds[i], p.PID)))
		_ = os.Remove(filepath.Join(f.runDir, p.Name+".pid"))
	}
	_ = os.Remove(filepath.Join("/run/frr", f.Name))
	if len(errs) == 0 {
		// Sockets, PID files and config of a stopped instance are stale.
		_ = os.RemoveAll(f.Dir)
	}
	return errors.Join(errs...)
}

// frrTmpDir is where FRR daemons keep per-process log buffers.
const frrTmpDir = "/var/tmp/frr"

// Apply writes conf as the instance's frr.conf and applies it with
// frr-reload.py, which changes only what differs from the running config.
func (f *FRR) Apply(ctx context.Context, conf string) error {
	if err := os.WriteFile(f.ConfigPath(), []byte(conf), 0o644); err != nil {
		return err
	}
	out, err := run(ctx, systemPython, frrReload, "--reload", "--stdout",
		"--vty_socket", f.Dir, "--rundir", f.Dir, "--confdir", f.Dir, "--bindir", "/usr/bin",
		f.ConfigPath())
	if err != nil {
		return fmt.Errorf("FRR %s: apply %s: %w\n%s", f.Name, f.ConfigPath(), err, lastLines(out, 20))
	}
	// frr-reload.py exits 0 even when a line was refused; vtysh's
	// complaints land in its output.
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "% Unknown command") || strings.Contains(line, "% Invalid") || strings.Contains(line, "line ") && strings.Contains(line, "Error") {
			return fmt.Errorf("FRR %s: config refused: %s", f.Name, strings.TrimSpace(line))
		}
	}
	return nil
}

// Vtysh runs vtysh commands against this instance and returns the output.
func (f *FRR) Vtysh(ctx context.Context, cmds ...string) (string, error) {
	args := []string{"--vty_socket", f.Dir}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := run(ctx, vtyshBinary, args...)
	if err != nil {
		return out, fmt.Errorf("FRR %s: %w", f.Name, err)
	}
	return out, nil
}

// VtyshJSON runs one `... json` command and decodes its output into v.
func (f *FRR) VtyshJSON(ctx context.Context, cmd string, v any) error {
	out, err := f.Vtysh(ctx, cmd)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("FRR %s: %q: decode: %w (output: %s)", f.Name, cmd, err, lastLines(out, 5))
	}
	return nil
}

// untraversable returns the first of dir and its parents that the user
// uid (primary group gid) may not search, with its mode; "" when it can
// reach dir.
func untraversable(dir string, uid, gid int) (string, os.FileMode, error) {
	for d := dir; ; d = filepath.Dir(d) {
		fi, err := os.Stat(d)
		if err != nil {
			return "", 0, err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return "", 0, nil
		}
		var bit os.FileMode = 0o001
		switch {
		case int(st.Uid) == uid:
			bit = 0o100
		case int(st.Gid) == gid:
			bit = 0o010
		}
		if fi.Mode().Perm()&bit == 0 {
			return d, fi.Mode(), nil
		}
		if d == filepath.Dir(d) {
			return "", 0, nil
		}
	}
}

func frrIDs() (int, int, error) {
	u, err := user.Lookup("frr")
	if err != nil {
		return 0, 0, fmt.Errorf("user frr (from Debian's frr package; run `make apt-packages`): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid, nil
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
