package frr

// A rendered configuration loaded into a real FRR (Debian's zebra and
// bgpd) in the lab's node namespace, peering with the lab's router: the
// router must receive exactly each session's routes with their
// attributes. Needs root; skipped otherwise (frrtest.Start skips).

import (
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/test/lab/frrtest"
)

func TestRenderedConfigPeersWithFRR(t *testing.T) {
	if testing.Short() {
		t.Skip("starts FRR daemons; skipped with -short")
	}
	lab := frrtest.Start(t, "")

	s4 := bgp.Session{Name: "router-v4", MyASN: frrtest.NodeAS, PeerASN: frrtest.RouterAS,
		PeerAddr: addr(frrtest.RouterV4), Port: 179, RouterID: addr(frrtest.NodeV4), ConnectTime: dur(time.Second)}
	s6 := s4
	s6.Name, s6.PeerAddr = "router-v6", addr(frrtest.RouterV6)
	s6.DualStack, s6.NextHopIPv4 = true, addr(frrtest.NodeV4)
	state := bgp.DesiredState{
		Sessions: []bgp.Session{s4, s6},
		Routes: map[string][]bgp.Route{
			"router-v4": {{Prefix: pfx("203.0.113.10/32"), Communities: []config.Community{std(65000, 1), large(64512, 1, 2)}}},
			"router-v6": {
				{Prefix: pfx("203.0.113.20/32")},
				{Prefix: pfx("2001:db8:1::10/128"), Communities: []config.Community{std(65000, 2)}},
			},
		},
	}
	conf, err := Render(state, Options{Hostname: "lbs-node"})
	if err != nil {
		t.Fatal(err)
	}

	// The node's FRR: zebra and bgpd with empty configurations, then the
	// rendered one applied through vtysh, as a reload would.
	dir := filepath.Join(lab.Dir, "node")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := chownToFRR(dir); err != nil {
		t.Skipf("needs the frr user: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "vtysh.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	ns := "lbs-" + lab.ID + "-node"
	t.Cleanup(func() { _ = os.RemoveAll(filepath.Join("/run/frr", ns)) })
	for _, d := range []string{"zebra", "bgpd"} {
		lab.StartInNode("node-"+d, nil, "/usr/lib/frr/"+d,
			"-N", ns, "--vty_socket", dir, "-z", filepath.Join(dir, "zserv.api"),
			"-i", filepath.Join(dir, d+".pid"), "-f", "/dev/null", "-P", "0",
			"-u", "frr", "-g", "frr", "--log", "stdout")
		waitFor(t, filepath.Join(dir, d+".vty"))
	}
	file := filepath.Join(dir, "frr.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("vtysh", "--vty_socket", dir, "-f", file).CombinedOutput()
	if err != nil || strings.Contains(string(out), "%") {
		t.Fatalf("node FRR refused the rendered configuration: %v\n%s\n%s", err, out, conf)
	}

	r := lab.Router()
	frrtest.Eventually(t, 60*time.Second, "both sessions established", func() string {
		for _, a := range []string{frrtest.NodeV4, frrtest.NodeV6} {
			if st := r.Neighbor(a).State; st != "Established" {
				return fmt.Sprintf("%s is %q", a, st)
			}
		}
		return ""
	})
	type want struct{ prefix, from, comms, large string }
	wants := []want{
		{"203.0.113.10/32", frrtest.NodeV4, "65000:1", "64512:1:2"},
		{"203.0.113.20/32", frrtest.NodeV6, "", ""},
		{"2001:db8:1::10/128", frrtest.NodeV6, "65000:2", ""},
	}
	frrtest.Eventually(t, 30*time.Second, "routes with their attributes from their own session only", func() string {
		for _, w := range wants {
			paths := r.Paths(w.prefix)
			if len(paths) != 1 {
				return fmt.Sprintf("%s: %d paths (%v), want 1 from %s", w.prefix, len(paths), keys(paths), w.from)
			}
			p, ok := paths[w.from]
			if !ok {
				return fmt.Sprintf("%s: from %v, want %s", w.prefix, keys(paths), w.from)
			}
			if p.Communities() != w.comms || p.Large() != w.large {
				return fmt.Sprintf("%s: communities %q large %q, want %q %q", w.prefix, p.Communities(), p.Large(), w.comms, w.large)
			}
		}
		if n := len(r.Prefixes("ipv4")) + len(r.Prefixes("ipv6")); n != len(wants) {
			return fmt.Sprintf("router has %d prefixes, want %d", n, len(wants))
		}
		return ""
	})
	// The tag is the node's own: its BGP table has it, the router's
	// (BGP has no tag attribute) does not.
	if out := frrtest.VtyshAt(t, dir, "show bgp ipv4 unicast 203.0.113.10/32"); !strings.Contains(out, "tag ") {
		t.Errorf("the node's path has no tag:\n%s", out)
	}
	if out := frrtest.VtyshAt(t, lab.Dir, "show bgp ipv4 unicast 203.0.113.10/32"); strings.Contains(out, "tag ") {
		t.Errorf("the router's path has a tag:\n%s", out)
	}
	// The IPv4 route over the IPv6 session has the overridden next hop.
	if p := r.Paths("203.0.113.20/32")[frrtest.NodeV6]; len(p.Nexthops) == 0 || p.Nexthops[0].IP != frrtest.NodeV4 {
		t.Errorf("203.0.113.20/32 next hops %+v, want %s", p.Nexthops, frrtest.NodeV4)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func waitFor(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not appear", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func chownToFRR(dir string) error {
	u, err := user.Lookup("frr")
	if err != nil {
		return err
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return err
	}
	return os.Chown(dir, uid, gid)
}
