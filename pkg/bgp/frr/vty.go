package frr

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// The route edits (Reloader.SubmitChange) go to the daemons' vty sockets
// directly, as vtysh itself talks to them, rather than through a vtysh
// process: starting vtysh costs 40 to 80 ms of CPU here (it builds every
// daemon's command tree), far more than the edit. The protocol (FRR's
// lib/vty.c, vtysh_read): a command is its text and a NUL; the daemon
// answers with the output, three NULs and the command's status byte
// (0: success). A session starts in VIEW_NODE; `enable` and
// `configure terminal` lead into configuration mode, as vtysh does.
//
// vtysh sends each command to the daemons that have it. The commands
// routeDelta and live.change write are `router bgp` blocks of network
// statements and `clear bgp`, which vtysh sends to bgpd only, and the
// route-map entries of a tag appearing or going, which vtysh sends to
// every daemon with route-maps - zebra and bgpd here (bfdd has none) -
// each of their lines to the daemons that know it: `match tag`, `set
// tag` and `set ip next-hop` are the library's, which zebra has too;
// communities, local preference and IPv6 next hops are bgpd's alone (a
// lab test saw zebra refuse them). runDirect does the same, so a Service
// under a tag in use costs zebra and bfdd nothing.

// zebraRouteMapLines are the route-map lines zebra takes (its other
// `set` lines are bgpd's).
var zebraRouteMapLines = []string{" match tag ", " set tag ", " set ip next-hop "}

// vtyTimeout bounds one direct edit.
const vtyTimeout = 30 * time.Second

// vtySession is one daemon's vty socket.
type vtySession struct {
	name    string
	c       net.Conn
	buf     []byte
	pending []byte
}

func dialVty(dir, daemon string, deadline time.Time) (*vtySession, error) {
	c, err := net.DialTimeout("unix", filepath.Join(dir, daemon+".vty"), time.Until(deadline))
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(deadline)
	return &vtySession{name: daemon, c: c}, nil
}

// run executes one command and returns its output and status.
func (s *vtySession) run(cmd string) (string, byte, error) {
	if _, err := s.c.Write(append([]byte(cmd), 0)); err != nil {
		return "", 0, fmt.Errorf("%s: %w", s.name, err)
	}
	return s.read()
}

// read returns the next command's output and status. Bytes read past
// its end (the next answers of a batch) stay in pending.
func (s *vtySession) read() (string, byte, error) {
	for {
		if i := bytes.Index(s.pending, []byte{0, 0, 0}); i >= 0 && len(s.pending) >= i+4 {
			out, status := string(s.pending[:i]), s.pending[i+3]
			s.pending = s.pending[i+4:]
			return out, status, nil
		}
		if s.buf == nil {
			s.buf = make([]byte, 64<<10)
		}
		n, err := s.c.Read(s.buf)
		s.pending = append(s.pending, s.buf[:n]...)
		if err != nil {
			return string(s.pending), 0, fmt.Errorf("%s: %w", s.name, err)
		}
	}
}

// runDirect runs cmds (configuration commands, then, after an "end",
// exec commands such as `clear bgp`) on the bgpd of dir as vtysh would:
// a command fails when bgpd refuses it. bgpd gets the commands in one
// write and answers them in turn (lib/vty.c executes every command of a
// read), so an edit costs one round trip, not one per command: under
// load each round trip waits for the daemon to be scheduled.
func runDirect(dir string, cmds []string) error {
	if dir == "" {
		dir = "/var/run/frr"
	}
	deadline := time.Now().Add(vtyTimeout)
	bgpd, err := dialVty(dir, "bgpd", deadline)
	if err != nil {
		return fmt.Errorf("no bgpd vty socket in %s: %w", dir, err)
	}
	sessions := []*vtySession{bgpd}
	defer func() {
		for _, s := range sessions {
			_ = s.c.Close()
		}
	}()
	// zebra, when a route-map changes and it runs.
	var zebra *vtySession
	for _, c := range cmds {
		if strings.HasPrefix(strings.TrimPrefix(c, "no "), "route-map ") {
			if _, err := os.Stat(filepath.Join(dir, "zebra.vty")); err == nil {
				if zebra, err = dialVty(dir, "zebra", deadline); err != nil {
					return err
				}
				sessions = append(sessions, zebra)
			}
			break
		}
	}
	batch := map[*vtySession][]string{}
	for _, s := range sessions {
		batch[s] = []string{"enable", "configure terminal"}
	}
	configuring, inRouter, inMap := true, false, false
	for _, c := range cmds {
		both := false
		switch {
		case c == "end":
			configuring, both = false, true
		case strings.HasPrefix(c, "router bgp "):
			inRouter = true
		case inRouter && c == "exit":
			inRouter = false
		case configuring && !inRouter && !inMap && strings.HasPrefix(c, "route-map "):
			inMap, both = true, true
		case inMap && c == "exit":
			inMap, both = false, true
		case inMap:
			for _, l := range zebraRouteMapLines {
				both = both || strings.HasPrefix(c, l)
			}
		case configuring && !inRouter && strings.HasPrefix(c, "no route-map "):
			both = true
		case !inRouter && configuring || !configuring && !strings.HasPrefix(c, "clear bgp "):
			return fmt.Errorf("vty: not a route edit: %q", c)
		}
		batch[bgpd] = append(batch[bgpd], c)
		if both && zebra != nil {
			batch[zebra] = append(batch[zebra], c)
		}
	}
	if configuring {
		for _, s := range sessions {
			batch[s] = append(batch[s], "end")
		}
	}
	// Every daemon's batch is sent before any answer is read; each
	// executes its own in order (bgpd: route-map entries before the
	// network statements naming them).
	for _, s := range sessions {
		var buf []byte
		for _, c := range batch[s] {
			buf = append(append(buf, c...), 0)
		}
		if _, err := s.c.Write(buf); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	var errs []error
	for _, s := range sessions {
		for _, c := range batch[s] {
			out, status, err := s.read()
			if err != nil {
				return err
			}
			if status != 0 || strings.Contains(out, "%") {
				errs = append(errs, fmt.Errorf("%s refused %q (status %d): %s", s.name, c, status, strings.TrimSpace(out)))
			}
		}
	}
	return errors.Join(errs...)
}

// expect runs c and fails unless the daemon took it.
func expect(s *vtySession, c string) error {
	out, status, err := s.run(c)
	if err != nil {
		return err
	}
	if status != 0 || strings.Contains(out, "%") {
		return fmt.Errorf("%s refused %q (status %d): %s", s.name, c, status, strings.TrimSpace(out))
	}
	return nil
}

// queryDirect runs show commands ({daemon, command} pairs) on the
// daemons of dir and returns each output, nil for a command its daemon
// did not answer (not running, refused); err when none answered.
func queryDirect(dir string, timeout time.Duration, cmds ...[]string) ([]json.RawMessage, error) {
	if dir == "" {
		dir = "/var/run/frr"
	}
	deadline := time.Now().Add(timeout)
	sessions := map[string]*vtySession{}
	defer func() {
		for _, s := range sessions {
			_ = s.c.Close()
		}
	}()
	out := make([]json.RawMessage, len(cmds))
	var errs []error
	for i, dc := range cmds {
		s, ok := sessions[dc[0]]
		if !ok {
			var err error
			if s, err = dialVty(dir, dc[0], deadline); err == nil {
				err = expect(s, "enable")
			}
			if err != nil {
				errs = append(errs, err)
				sessions[dc[0]] = nil
				continue
			}
			sessions[dc[0]] = s
		}
		if s == nil {
			continue
		}
		text, status, err := s.run(dc[1])
		if err != nil || status != 0 {
			errs = append(errs, fmt.Errorf("%s: %q: status %d: %v: %s", dc[0], dc[1], status, err, strings.TrimSpace(text)))
			continue
		}
		out[i] = json.RawMessage(text)
	}
	if len(errs) == len(cmds) {
		return nil, errors.Join(errs...)
	}
	return out, nil
}
