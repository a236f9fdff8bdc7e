package lab

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// netnsDir is where iproute2 keeps named network namespaces.
const netnsDir = "/run/netns"

// NetnsPath is the bind-mounted namespace file of a named namespace.
func NetnsPath(name string) string { return filepath.Join(netnsDir, name) }

// netnsExists reports whether the named namespace exists.
func netnsExists(name string) bool {
	_, err := os.Stat(NetnsPath(name))
	return err == nil
}

// LabNetns lists the lab's namespaces (every one named lbl-*).
func LabNetns() ([]string, error) {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), NetnsPrefix) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// NetnsPIDs returns the PIDs of the processes living in a namespace.
func NetnsPIDs(ctx context.Context, name string) ([]int, error) {
	out, err := ip(ctx, "netns", "pids", name)
	if err != nil {
		return nil, err
	}
	var pids []int
	for _, f := range strings.Fields(out) {
		if pid, err := strconv.Atoi(f); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// InNetns runs fn on an OS thread that has joined the named namespace.
// Sockets fn opens stay in that namespace after it returns, so callers open
// them here and use them anywhere. fn must not start goroutines that expect
// to be in the namespace.
func InNetns(name string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		orig, err := os.Open("/proc/thread-self/ns/net")
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open own network namespace: %w", err)
			return
		}
		defer orig.Close()
		target, err := os.Open(NetnsPath(name))
		if err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("open namespace %s: %w", name, err)
			return
		}
		defer target.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			runtime.UnlockOSThread()
			errc <- fmt.Errorf("enter namespace %s: %w", name, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(orig.Fd()), unix.CLONE_NEWNET); err != nil {
			// Leave the thread locked: Go destroys a thread whose
			// goroutine exits locked, so no other goroutine ever runs
			// in the wrong namespace.
			errc <- fmt.Errorf("return from namespace %s: %w", name, err)
			return
		}
		runtime.UnlockOSThread()
		errc <- ferr
	}()
	return <-errc
}

// network is the lab's topology for n nodes.
type network struct{ nodes int }

// guardPrefixes are the lab's ranges, made unreachable in the root
// namespace (below the lab's more specific routes): without them, a
// packet from the host to a lab address the lab does not route - a
// ClusterIP, a service address - would follow the host's default route
// onto the real network.
var guardPrefixes = []string{"198.18.0.0/15", "203.0.113.0/24", "198.51.100.0/24", "2001:db8::/32"}

// addGuardRoutes adds the unreachable routes that do not exist yet and
// returns them (teardown removes only those).
func addGuardRoutes(ctx context.Context) ([]string, error) {
	var added []string
	for _, p := range guardPrefixes {
		fam := "-4"
		if strings.Contains(p, ":") {
			fam = "-6"
		}
		out, err := ip(ctx, fam, "route", "show", "exact", p)
		if err != nil {
			return added, err
		}
		if strings.TrimSpace(out) != "" {
			continue
		}
		if _, err := ip(ctx, fam, "route", "add", "unreachable", p); err != nil {
			return added, err
		}
		added = append(added, p)
	}
	return added, nil
}

// removeGuardRoutes removes the lab's unreachable routes; with no record
// (after a crash) it removes those of guardPrefixes that are unreachable
// routes, which only the lab makes.
func removeGuardRoutes(ctx context.Context, recorded []string, haveRecord bool) error {
	prefixes := recorded
	if !haveRecord {
		prefixes = guardPrefixes
	}
	var errs []error
	for _, p := range prefixes {
		fam := "-4"
		if strings.Contains(p, ":") {
			fam = "-6"
		}
		out, err := ip(ctx, fam, "route", "show", "exact", p)
		if err != nil || !strings.HasPrefix(strings.TrimSpace(out), "unreachable") {
			continue
		}
		if _, err := ip(ctx, fam, "route", "del", "unreachable", p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// build creates every namespace, link, address and route. It assumes a
// clean slate (Up tears leftovers down first).
func (nw network) build(ctx context.Context) error {
	all := []string{SwitchNetns, RouterNetns, ClientNetns}
	for i := 1; i <= nw.nodes; i++ {
		all = append(all, NodeName(i))
	}
	for _, ns := range all {
		if _, err := ip(ctx, "netns", "add", ns); err != nil {
			return fmt.Errorf("create namespace: %w", err)
		}
		if _, err := ipIn(ctx, ns, "link", "set", "lo", "up"); err != nil {
			return err
		}
	}
	// The switch carries frames only: no IPv6 link-local chatter from its
	// own ports. Multicast snooping off so NDP always floods, as on a dumb
	// switch.
	if err := sysctlIn(ctx, SwitchNetns, "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1"); err != nil {
		return err
	}
	if _, err := ipIn(ctx, SwitchNetns, "link", "add", Bridge, "type", "bridge", "stp_state", "0", "forward_delay", "0", "mcast_snooping", "0"); err != nil {
		return err
	}
	if _, err := ipIn(ctx, SwitchNetns, "link", "set", Bridge, "up"); err != nil {
		return err
	}
	// Endpoints answer at once: no DAD delay, no router advertisements
	// from anywhere but what the lab configures.
	for _, ns := range all[1:] {
		if err := sysctlIn(ctx, ns,
			"net.ipv6.conf.all.accept_dad=0", "net.ipv6.conf.default.accept_dad=0",
			"net.ipv6.conf.all.accept_ra=0", "net.ipv6.conf.default.accept_ra=0"); err != nil {
			return err
		}
	}

	// Nodes forward, as Kubernetes nodes do: pod namespaces route through
	// their node.
	for i := 1; i <= nw.nodes; i++ {
		ns := NodeName(i)
		if err := sysctlIn(ctx, ns, "net.ipv4.ip_forward=1"); err != nil {
			return err
		}
		if err := nw.plug(ctx, ns, "eth0", NodeMAC(i), fmt.Sprintf("node%d", i)); err != nil {
			return err
		}
		if err := addrs(ctx, ns, "eth0", NodeAddr(i)+"/24", NodeAddr6(i)+"/64"); err != nil {
			return err
		}
	}
	// The router spreads flows over its ECMP next hops by their ports too
	// (layer-4 hashing, as routers in front of load balancers are set
	// up), not by addresses alone: one client's connections reach every
	// node.
	if err := sysctlIn(ctx, RouterNetns, "net.ipv4.fib_multipath_hash_policy=1", "net.ipv6.fib_multipath_hash_policy=1"); err != nil {
		return err
	}
	// Router: eth0 on the segment, eth1 towards the client network.
	if err := nw.plug(ctx, RouterNetns, "eth0", RouterMAC, "router"); err != nil {
		return err
	}
	if err := addrs(ctx, RouterNetns, "eth0", RouterAddr+"/24", RouterAddr6+"/64"); err != nil {
		return err
	}
	if _, err := ip(ctx, "link", "add", "eth1", "netns", RouterNetns, "type", "veth", "peer", "name", "eth0", "netns", ClientNetns); err != nil {
		return fmt.Errorf("client network link: %w", err)
	}
	if err := up(ctx, RouterNetns, "eth1"); err != nil {
		return err
	}
	if err := addrs(ctx, RouterNetns, "eth1", RouterClientAddr+"/24"); err != nil {
		return err
	}
	// Client: eth0 on the client network, eth1 on the node segment (the
	// layer-2 scenario's client shares the nodes' segment).
	if err := up(ctx, ClientNetns, "eth0"); err != nil {
		return err
	}
	if err := addrs(ctx, ClientNetns, "eth0", ClientAddr+"/24"); err != nil {
		return err
	}
	if err := nw.plug(ctx, ClientNetns, "eth1", ClientMAC, "client"); err != nil {
		return err
	}
	if err := addrs(ctx, ClientNetns, "eth1", ClientSegmentAddr+"/24", ClientSegmentAddr6+"/64"); err != nil {
		return err
	}
	// BGP-mode service ranges are reached through the router. 192.0.2.0/24
	// (used by one scenario) is deliberately not routed: it is outside the
	// lab's ranges, and this machine's own uplink may sit in it.
	for _, p := range []string{"203.0.113.0/24", "198.51.100.0/24"} {
		if _, err := ipIn(ctx, ClientNetns, "route", "add", p, "via", RouterClientAddr); err != nil {
			return err
		}
	}

	// Host leg: the API server's address. IPv6 off on it: the root
	// namespace needs nothing but this one IPv4 address.
	if _, err := ip(ctx, "link", "add", HostVeth, "address", HostMAC, "type", "veth", "peer", "name", "host", "netns", SwitchNetns); err != nil {
		return fmt.Errorf("host link: %w", err)
	}
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/"+HostVeth+"/disable_ipv6", []byte("1"), 0o644); err != nil {
		return fmt.Errorf("disable IPv6 on %s: %w", HostVeth, err)
	}
	if _, err := ip(ctx, "addr", "add", APIServerAddr+"/24", "dev", HostVeth); err != nil {
		return err
	}
	if _, err := ip(ctx, "link", "set", HostVeth, "up"); err != nil {
		return err
	}
	if _, err := ipIn(ctx, SwitchNetns, "link", "set", "host", "master", Bridge, "up"); err != nil {
		return err
	}

	// Pod ranges: a pod that runs a real process has its own namespace
	// behind its node (see makePodNetns). The host (API server, kubelet
	// probes) and the other nodes route each range to its node.
	for i := 1; i <= nw.nodes; i++ {
		if _, err := ip(ctx, "route", "add", NodePodCIDR(i), "via", NodeAddr(i), "dev", HostVeth); err != nil {
			return err
		}
		for j := 1; j <= nw.nodes; j++ {
			if j == i {
				continue
			}
			if _, err := ipIn(ctx, NodeName(i), "route", "add", NodePodCIDR(j), "via", NodeAddr(j)); err != nil {
				return err
			}
		}
		// Replies to the client go back through the router, as on a
		// real node whose default gateway is the router. Only the client
		// network is routed: nothing else leaves a node.
		if _, err := ipIn(ctx, NodeName(i), "route", "add", ClientNetPrefix, "via", RouterAddr); err != nil {
			return err
		}
		// ClusterIPs: kube-proxy translates them before the packet
		// leaves, but the kernel needs a route to pick a source first.
		// A real node has its default route for that; here only the
		// Service ranges are routed, towards the router as a default
		// route would.
		if _, err := ipIn(ctx, NodeName(i), "route", "add", ServiceCIDR, "via", RouterAddr); err != nil {
			return err
		}
		if _, err := ipIn(ctx, NodeName(i), "-6", "route", "add", ServiceCIDR6, "via", RouterAddr6); err != nil {
			return err
		}
	}
	return nil
}

// plug creates a veth pair with one end (name, mac) in ns and the other
// (port) on the switch's bridge, both up.
func (nw network) plug(ctx context.Context, ns, name, mac, port string) error {
	if _, err := ip(ctx, "link", "add", name, "netns", ns, "address", mac, "type", "veth", "peer", "name", port, "netns", SwitchNetns); err != nil {
		return fmt.Errorf("plug %s into the switch: %w", ns, err)
	}
	if _, err := ipIn(ctx, SwitchNetns, "link", "set", port, "master", Bridge, "up"); err != nil {
		return err
	}
	return up(ctx, ns, name)
}

func up(ctx context.Context, ns, dev string) error {
	_, err := ipIn(ctx, ns, "link", "set", dev, "up")
	return err
}

func addrs(ctx context.Context, ns, dev string, prefixes ...string) error {
	for _, p := range prefixes {
		args := []string{"addr", "add", p, "dev", dev}
		if strings.Contains(p, ":") {
			args = append(args, "nodad")
		}
		if _, err := ipIn(ctx, ns, args...); err != nil {
			return err
		}
	}
	return nil
}

// teardownNetwork kills whatever still lives in a lab namespace (by PID, as
// listed by `ip netns pids`), deletes every lab namespace and the host leg,
// and unmounts /run/netns when the lab made it and nothing else uses it.
func teardownNetwork(ctx context.Context, unmountNetnsDir bool) error {
	var errs []error
	names, err := LabNetns()
	if err != nil {
		return err
	}
	for _, ns := range names {
		if err := killNetnsProcs(ctx, ns); err != nil {
			errs = append(errs, err)
		}
	}
	for _, ns := range names {
		if _, err := ip(ctx, "netns", "delete", ns); err != nil {
			errs = append(errs, err)
		}
	}
	// Deleting the switch namespace destroys the veth pair; this only
	// matters when the namespace was already gone.
	if _, err := os.Stat("/sys/class/net/" + HostVeth); err == nil {
		if _, err := ip(ctx, "link", "delete", HostVeth); err != nil {
			errs = append(errs, err)
		}
	}
	if unmountNetnsDir {
		if err := unmountEmptyNetnsDir(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// killNetnsProcs stops every process living in ns: SIGTERM, a short grace,
// then SIGKILL, each by PID.
func killNetnsProcs(ctx context.Context, ns string) error {
	pids, err := NetnsPIDs(ctx, ns)
	if err != nil || len(pids) == 0 {
		return err
	}
	var procs []Proc
	for _, pid := range pids {
		if p, err := procOf(ns+"-process", pid); err == nil {
			procs = append(procs, p)
		}
	}
	for _, p := range procs {
		_ = syscall.Kill(p.PID, syscall.SIGTERM)
	}
	deadline := time.Now().Add(3 * time.Second)
	var errs []error
	for _, p := range procs {
		if !waitGone(p, time.Until(deadline)) {
			if err := p.Stop(0); err != nil {
				errs = append(errs, fmt.Errorf("namespace %s: %w", ns, err))
			}
		}
	}
	return errors.Join(errs...)
}

// unmountEmptyNetnsDir undoes iproute2's bind mount of /run/netns onto
// itself (made by the first `ip netns add`) once no namespace is left in
// it, so the lab leaves no mount behind.
func unmountEmptyNetnsDir() error {
	entries, err := os.ReadDir(netnsDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil || len(entries) > 0 {
		return err
	}
	mounted, err := isMountPoint(netnsDir)
	if err != nil {
		return err
	}
	if mounted {
		if err := unix.Unmount(netnsDir, unix.MNT_DETACH); err != nil {
			return fmt.Errorf("unmount %s: %w", netnsDir, err)
		}
	}
	return os.Remove(netnsDir)
}

// isMountPoint reports whether path is a mount point in this process's
// mount namespace.
func isMountPoint(path string) (bool, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return false, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && f[4] == path {
			return true, nil
		}
	}
	return false, nil
}

// labMounts lists mount points in the root mount namespace that belong to
// the lab: named lab namespaces and anything under the state directory.
func labMounts(stateDir string) ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			continue
		}
		mp := f[4]
		if strings.HasPrefix(mp, filepath.Join(netnsDir, NetnsPrefix)) || (stateDir != "" && strings.HasPrefix(mp, stateDir+"/")) {
			out = append(out, mp)
		}
	}
	return out, nil
}
