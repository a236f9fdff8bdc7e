package frr

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// sessionRef names one BGP neighbor of one instance.
type sessionRef struct {
	VRF  string // "" for the default instance
	Addr string
}

func (s sessionRef) vrfArg() string {
	if s.VRF == "" {
		return ""
	}
	return "vrf " + s.VRF + " "
}

// bfdNeighbors lists, per BGP instance of conf, the neighbors with a
// `neighbor X bfd` line, and every neighbor that exists (remote-as).
func bfdNeighbors(conf string) (withBFD, all map[sessionRef]bool) {
	withBFD, all = map[sessionRef]bool{}, map[sessionRef]bool{}
	vrf, inRouter := "", false
	for _, line := range strings.Split(conf, "\n") {
		if m := routerLine.FindStringSubmatch(line); m != nil {
			vrf, inRouter = m[1], true
			continue
		}
		if line == "exit" || (line != "" && line[0] != ' ' && line[0] != '!') {
			inRouter = false
			continue
		}
		if !inRouter {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 3 || f[0] != "neighbor" {
			continue
		}
		ref := sessionRef{VRF: vrf, Addr: f[1]}
		switch {
		case f[2] == "remote-as":
			all[ref] = true
		case f[2] == "bfd" && len(f) == 3:
			withBFD[ref] = true
		}
	}
	return withBFD, all
}

// bfdRemoved lists the neighbors of conf that had BFD in prev and no
// longer have it.
//
// Why it matters: when a BFD session goes down, FRR (10.3) resets the BGP
// session and keeps it Idle until BFD comes back Up. If BFD is then
// removed from the neighbor - what a user does when BFD is the problem -
// nothing starts the session again: it stays Idle, with no start timer,
// until someone clears it. The reloader clears those sessions
// (restartAfterBFDRemoval).
func bfdRemoved(prev, conf string) []sessionRef {
	before, _ := bfdNeighbors(prev)
	after, exists := bfdNeighbors(conf)
	var out []sessionRef
	for ref := range before {
		if !after[ref] && exists[ref] {
			out = append(out, ref)
		}
	}
	sortRefs(out)
	return out
}

func sortRefs(refs []sessionRef) {
	slices.SortFunc(refs, func(a, b sessionRef) int {
		return cmp.Or(cmp.Compare(a.VRF, b.VRF), cmp.Compare(a.Addr, b.Addr))
	})
}

// restartAfterBFDRemoval clears (`clear bgp [vrf V] X`) each of refs whose
// session is not Established: one FRR keeps Idle for good once its BFD
// configuration is gone (bfdRemoved). An Established session is left
// alone.
func (r *Reloader) restartAfterBFDRemoval(refs []sessionRef) error {
	var errs []string
	for _, ref := range refs {
		state, err := r.neighborState(ref)
		if err != nil {
			errs = append(errs, err.Error())
			continue
		}
		if state == "Established" {
			continue
		}
		r.log.Info("BFD removed from a neighbor whose session is down: restarting it", "vrf", ref.VRF, "neighbor", ref.Addr, "state", state)
		out, err := r.vtysh("clear bgp " + ref.vrfArg() + ref.Addr)
		if err == nil && strings.Contains(out, "%") {
			err = fmt.Errorf("vtysh refused: %s", out)
		}
		if err != nil {
			errs = append(errs, fmt.Sprintf("clear bgp %s%s: %v", ref.vrfArg(), ref.Addr, err))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("restart sessions after BFD removal: %s", strings.Join(errs, "; "))
	}
	return nil
}

// neighborState is FRR's bgpState of one neighbor ("" when FRR does not
// know it).
func (r *Reloader) neighborState(ref sessionRef) (string, error) {
	out, err := r.vtysh("show bgp " + ref.vrfArg() + "neighbors " + ref.Addr + " json")
	if err != nil {
		return "", fmt.Errorf("neighbor %s: %w", ref.Addr, err)
	}
	var n map[string]struct {
		BGPState string `json:"bgpState"`
	}
	if err := json.Unmarshal([]byte(out), &n); err != nil {
		return "", fmt.Errorf("neighbor %s: parse %q: %w", ref.Addr, trimOutput([]byte(out)), err)
	}
	return n[ref.Addr].BGPState, nil
}

// vtysh runs one vtysh command against the reloader's FRR.
func (r *Reloader) vtysh(cmd string) (string, error) {
	out, err := r.runVtysh(cmd)
	if err != nil {
		return string(out), fmt.Errorf("vtysh -c %q: %w: %s", cmd, err, trimOutput(out))
	}
	return string(out), nil
}

// runVtysh runs `vtysh [--vty_socket S] -c CMD...` against the reloader's
// FRR, within the reloader's timeout, and returns its output.
func (r *Reloader) runVtysh(cmds ...string) ([]byte, error) {
	var args []string
	if r.opts.VtySocket != "" {
		args = append(args, "--vty_socket", r.opts.VtySocket)
	}
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
	defer cancel()
	return r.opts.Exec(ctx, filepath.Join(r.opts.BinDir, "vtysh"), args...)
}
