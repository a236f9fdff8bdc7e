package lab

import (
	"context"
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

// A lab node is a network namespace (lbl-node<i>) running what a
// Kubernetes node runs (docs/lab.md, "Nodes"):
//
//   - containerd (Debian's), with its own root, state, socket and config,
//     in a mount namespace of its own: `ip netns exec` would remount /sys
//     and hide the cgroup hierarchies from runc, so the lab enters the
//     node's network namespace with nsenter and unshares the mount
//     namespace itself. A private tmpfs on /run there keeps the pods'
//     network namespaces (/run/netns/cni-*), runc's state and the shims'
//     sockets (/run/containerd/s) off the host;
//   - the kubelet (v1.34, built from the pinned modules) in containerd's
//     mount namespace, so both see the same volume mounts; files holding
//     the machine's current values are bind-mounted over the machine-wide
//     sysctls the kubelet would set (vm.overcommit_memory, kernel.panic,
//     ...), so the machine is left as it was;
//   - the CNI bridge plugin with host-local IPAM: the node's pod range on a
//     bridge cni0 whose address is the range's gateway; the nodes route
//     each other's ranges (network.build);
//   - kube-proxy in nftables mode.
//
// Cgroups are v1 here: every node's pods live under /lbl-node<i> in each
// hierarchy (the kubelet's cgroupRoot), made before the kubelet starts.

// Node daemon record names.
func procContainerd(node string) string { return "containerd-" + node }
func procKubeletOf(node string) string  { return "kubelet-" + node }
func procKubeProxy(node string) string  { return "kube-proxy-" + node }

// kubeletSysctls are the machine-wide sysctls the kubelet sets at start
// (setupKernelTunables) when they differ from what it wants.
var kubeletSysctls = []string{
	"vm/overcommit_memory", "vm/panic_on_oom", "kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

func (s *State) nodeDir(node string) string { return filepath.Join(s.Dir, "nodes", node) }

// ContainerdSocket is node's containerd socket (for ctr).
func (s *State) ContainerdSocket(node string) string {
	return filepath.Join(s.nodeDir(node), "containerd.sock")
}

// cgroupRoot is node's pods' cgroup parent.
func cgroupRoot(node string) string { return "/" + node }

// nodeCPUShares is each node's cgroup weight (a process has 1024).
const nodeCPUShares = 8192

// cgroupV1Root is where the v1 hierarchies are mounted.
const cgroupV1Root = "/sys/fs/cgroup"

// cgroupHierarchies lists the mounted cgroup hierarchies (v1 controllers,
// the named systemd one, the unified v2 mount of a hybrid system).
func cgroupHierarchies() ([]string, error) {
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) < 10 {
			continue
		}
		sep := 6
		for sep < len(f) && f[sep] != "-" {
			sep++
		}
		if sep+1 >= len(f) {
			continue
		}
		if fs := f[sep+1]; (fs == "cgroup" || fs == "cgroup2") && strings.HasPrefix(f[4], cgroupV1Root+"/") {
			out = append(out, f[4])
		}
	}
	return out, nil
}

// makeCgroups creates node's cgroup parent in every hierarchy; cpuset
// needs its cpus and mems filled before anything may join it.
func makeCgroups(node string) error {
	hs, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	for _, h := range hs {
		dir := filepath.Join(h, node)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("cgroup %s: %w", dir, err)
		}
		if filepath.Base(h) == "cpu" {
			// A node outweighs a single host process (1024): the lab's
			// builds and test binaries must not starve what runs on
			// the nodes (bfdd's 25 ms timers among it).
			if err := os.WriteFile(filepath.Join(dir, "cpu.shares"), []byte(strconv.Itoa(nodeCPUShares)), 0o644); err != nil {
				return fmt.Errorf("cgroup %s/cpu.shares: %w", dir, err)
			}
		}
		if filepath.Base(h) == "cpuset" {
			for _, f := range []string{"cpuset.cpus", "cpuset.mems"} {
				v, err := os.ReadFile(filepath.Join(h, f))
				if err != nil {
					return err
				}
				if err := os.WriteFile(filepath.Join(dir, f), v, 0o644); err != nil {
					return fmt.Errorf("cgroup %s/%s: %w", dir, f, err)
				}
			}
		}
	}
	return nil
}

// cgroupPIDs lists every process in node's cgroups (any hierarchy).
func cgroupPIDs(node string) []int {
	hs, _ := cgroupHierarchies()
	seen := map[int]bool{}
	var out []int
	for _, h := range hs {
		_ = filepath.WalkDir(filepath.Join(h, node), func(p string, d os.DirEntry, err error) error {
			if err != nil || !d.IsDir() {
				return nil
			}
			data, err := os.ReadFile(filepath.Join(p, "cgroup.procs"))
			if err != nil {
				return nil
			}
			for _, f := range strings.Fields(string(data)) {
				if pid, err := strconv.Atoi(f); err == nil && !seen[pid] {
					seen[pid] = true
					out = append(out, pid)
				}
			}
			return nil
		})
	}
	return out
}

// killCgroups SIGKILLs every process in node's cgroups (the pods'
// containers: a shim's death leaves them running) by PID, waits until the
// cgroups are empty, and removes them, deepest first.
func killCgroups(node string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		pids := cgroupPIDs(node)
		if len(pids) == 0 {
			break
		}
		for _, pid := range pids {
			if pid != os.Getpid() {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cgroups of %s: processes %v survive SIGKILL", node, pids)
		}
		time.Sleep(50 * time.Millisecond)
	}
	hs, err := cgroupHierarchies()
	if err != nil {
		return err
	}
	var errs []error
	for _, h := range hs {
		root := filepath.Join(h, node)
		var dirs []string
		_ = filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				dirs = append(dirs, p)
			}
			return nil
		})
		for i := len(dirs) - 1; i >= 0; i-- {
			// A cgroup whose last process just died can be busy for a
			// moment.
			var err error
			for try := 0; try < 50; try++ {
				if err = syscall.Rmdir(dirs[i]); err == nil || errors.Is(err, os.ErrNotExist) {
					err = nil
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if err != nil {
				errs = append(errs, fmt.Errorf("remove cgroup %s: %w", dirs[i], err))
			}
		}
	}
	return errors.Join(errs...)
}

// labCgroups lists the lab's cgroup parents left in any hierarchy.
func labCgroups() []string {
	hs, _ := cgroupHierarchies()
	var out []string
	for _, h := range hs {
		m, _ := filepath.Glob(filepath.Join(h, NetnsPrefix+"node*"))
		out = append(out, m...)
	}
	return out
}

// containerdConfig is node's containerd configuration: its own root,
// state and sockets; the CRI plugin with the lab's pause image, runc under
// cgroupfs, the CNI configuration of the node, and the lab registry as the
// mirror of every registry the lab's images are named after.
func (s *State) containerdConfig(node string) string {
	d := s.nodeDir(node)
	var mirrors strings.Builder
	for _, r := range MirroredRegistries {
		fmt.Fprintf(&mirrors, "[plugins.\"io.containerd.grpc.v1.cri\".registry.mirrors.%q]\n  endpoint = [\"http://%s\"]\n", r, RegistryHost)
	}
	return fmt.Sprintf(`# lab node %[1]s (docs/lab.md)
version = 2
root = %[2]q
state = %[3]q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = %[4]q

[ttrpc]
  address = %[5]q

[plugins."io.containerd.internal.v1.opt"]
  path = %[6]q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %[7]q
  # Root here lacks CAP_SYS_RESOURCE: runc cannot lower a process's
  # oom_score_adj below its own, and sandboxes fail without this.
  restrict_oom_score_adj = true
  enable_cdi = false
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

[plugins."io.containerd.grpc.v1.cri".containerd]
  snapshotter = "overlayfs"
  default_runtime_name = "runc"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
  runtime_type = "io.containerd.runc.v2"

[plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
  SystemdCgroup = false

[plugins."io.containerd.grpc.v1.cri".cni]
  bin_dir = "/usr/lib/cni"
  conf_dir = %[8]q
  max_conf_num = 1

%[9]s`, node, filepath.Join(d, "containerd", "root"), filepath.Join(d, "containerd", "state"),
		s.ContainerdSocket(node), s.ContainerdSocket(node)+".ttrpc", filepath.Join(d, "containerd", "opt"),
		PauseImage, filepath.Join(d, "cni", "net.d"), mirrors.String())
}

// cniConfig is node i's pod network: a bridge whose address is the pod
// range's gateway (each pod's default route), host-local addresses from
// the range, no masquerading
// (kube-proxy decides that), hairpin so a pod reaches itself through its
// Service.
func (s *State) cniConfig(i int) string {
	gw := NodePodGateway(i)
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "lab",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni0",
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    },
    {"type": "loopback"}
  ]
}
`, NodePodCIDR(i), gw, filepath.Join(s.nodeDir(NodeName(i)), "cni", "ipam"))
}

// kubeletConfig is node i's KubeletConfiguration.
func (s *State) kubeletConfig(i int, cert, key string) string {
	node := NodeName(i)
	d := s.nodeDir(node)
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# Cgroups are v1 on this machine.
cgroupDriver: cgroupfs
failCgroupV1: false
cgroupRoot: %[1]s
cgroupsPerQOS: true
failSwapOn: false
address: %[2]s
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: %[3]q
tlsPrivateKeyFile: %[4]q
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: %[5]q}
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://%[6]s
imageServiceEndpoint: unix://%[6]s
serializeImagePulls: false
podLogsDir: %[7]q
volumePluginDir: %[8]q
resolvConf: %[9]q
clusterDomain: %[10]s
# The lab's cluster DNS (dns.go): Service names only, nothing forwarded.
clusterDNS: [%[11]s]
makeIPTablesUtilChains: false
protectKernelDefaults: false
# A shared disk: only a nearly full one may evict the lab's pods.
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%%
  imagefs.available: 2%%
  nodefs.inodesFree: 2%%
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
nodeStatusUpdateFrequency: 10s
maxPods: 110
`, cgroupRoot(node), NodeAddr(i), cert, key, filepath.Join(s.pkiDir(), caCertFile),
		s.ContainerdSocket(node), filepath.Join(d, "pod-logs"), filepath.Join(d, "volume-plugins"), filepath.Join(d, "resolv.conf"),
		ClusterDomain, ClusterDNSAddr)
}

// kubeProxyConfig is node i's KubeProxyConfiguration: nftables; the
// conntrack settings at 0 leave the machine-wide conntrack table alone.
func (s *State) kubeProxyConfig(i int) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: nftables
clientConnection:
  kubeconfig: %q
hostnameOverride: %s
clusterCIDR: %s
detectLocalMode: ClusterCIDR
healthzBindAddress: 0.0.0.0:10256
metricsBindAddress: 127.0.0.1:10249
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
  udpTimeout: 0s
  udpStreamTimeout: 0s
`, filepath.Join(s.pkiDir(), kubeProxyKubeconfig), NodeName(i), ClusterPodCIDR)
}

// kubeProxyKubeconfig is kube-proxy's identity (system:kube-proxy, bound
// to system:node-proxier by the default RBAC policy).
const kubeProxyKubeconfig = "kube-proxy.kubeconfig"

// writeNodeFiles writes node i's configuration files.
func (s *State) writeNodeFiles(i int) error {
	node := NodeName(i)
	d := s.nodeDir(node)
	for _, sub := range []string{"containerd/root", "containerd/state", "containerd/opt", "cni/net.d", "cni/ipam", "kubelet", "pod-logs", "volume-plugins", "sysctl"} {
		if err := os.MkdirAll(filepath.Join(d, sub), 0o755); err != nil {
			return err
		}
	}
	cert, key, err := s.kubeletServingCert(i)
	if err != nil {
		return fmt.Errorf("%s: serving certificate: %w", node, err)
	}
	files := map[string]string{
		"containerd/config.toml":    s.containerdConfig(node),
		"cni/net.d/10-lab.conflist": s.cniConfig(i),
		"kubelet-config.yaml":       s.kubeletConfig(i, cert, key),
		"kube-proxy-config.yaml":    s.kubeProxyConfig(i),
		// No DNS in the lab: pods get an empty resolver configuration
		// rather than the machine's.
		"resolv.conf": "# lab: no DNS server\n",
	}
	for _, sc := range kubeletSysctls {
		v, err := os.ReadFile(filepath.Join("/proc/sys", sc))
		if err != nil {
			return err
		}
		files[filepath.Join("sysctl", strings.ReplaceAll(sc, "/", "."))] = string(v)
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(d, name), []byte(data), 0o644); err != nil {
			return err
		}
	}
	return makeCgroups(node)
}

// containerdDaemon runs containerd in node's network namespace and a new
// private mount namespace, with /run a private tmpfs and the kubelet's
// sysctls shadowed (the kubelet joins this mount namespace).
func (s *State) containerdDaemon(node string) daemon {
	d := s.nodeDir(node)
	var script strings.Builder
	script.WriteString("set -e; mount -t tmpfs -o mode=755 lab-run /run; ")
	for _, sc := range kubeletSysctls {
		fmt.Fprintf(&script, "mount --bind %q %q; ", filepath.Join(d, "sysctl", strings.ReplaceAll(sc, "/", ".")), filepath.Join("/proc/sys", sc))
	}
	script.WriteString(`exec "$@"`)
	return daemon{
		Name: procContainerd(node),
		Argv: []string{"nsenter", "--net=" + NetnsPath(node), "--",
			"unshare", "--mount", "--propagation", "private", "--",
			"/bin/sh", "-c", script.String(), "containerd",
			"/usr/bin/containerd", "--config", filepath.Join(d, "containerd", "config.toml"), "--log-level", "warn"},
		Log: s.logPath(procContainerd(node)),
	}
}

// inContainerdNS is the prefix that runs a command in node's containerd's
// mount and network namespaces.
func inContainerdNS(containerd Proc) []string {
	return []string{"nsenter", "--target", strconv.Itoa(containerd.PID), "--mount", "--net", "--"}
}

func (s *State) kubeletDaemon(i int, containerd Proc) daemon {
	node := NodeName(i)
	d := s.nodeDir(node)
	return daemon{
		Name: procKubeletOf(node),
		Argv: append(inContainerdNS(containerd), s.asset("kubelet"),
			"--config="+filepath.Join(d, "kubelet-config.yaml"),
			"--kubeconfig="+filepath.Join(s.pkiDir(), kubeletKubeconfig(node)),
			"--hostname-override="+node,
			"--node-ip="+NodeAddr(i)+","+NodeAddr6(i),
			"--node-labels=lab.lbstack.io/node=true",
			"--root-dir="+filepath.Join(d, "kubelet"),
			"--cert-dir="+filepath.Join(d, "kubelet", "pki"),
			"--v=1",
		),
		Log: s.logPath(procKubeletOf(node)),
	}
}

func (s *State) kubeProxyDaemon(i int, containerd Proc) daemon {
	node := NodeName(i)
	return daemon{
		Name: procKubeProxy(node),
		Argv: append(inContainerdNS(containerd), s.asset("kube-proxy"),
			"--config="+filepath.Join(s.nodeDir(node), "kube-proxy-config.yaml"), "--v=1"),
		Log: s.logPath(procKubeProxy(node)),
	}
}

// startNode starts node i's containerd, kubelet and kube-proxy.
func (s *State) startNode(ctx context.Context, i int) error {
	node := NodeName(i)
	if err := s.writeNodeFiles(i); err != nil {
		return fmt.Errorf("%s: %w", node, err)
	}
	c, err := startDaemon(s.runDir(), s.containerdDaemon(node))
	if err != nil {
		return err
	}
	if err := s.waitContainerd(ctx, node, c); err != nil {
		return err
	}
	if _, err := startDaemon(s.runDir(), s.kubeletDaemon(i, c)); err != nil {
		return err
	}
	_, err = startDaemon(s.runDir(), s.kubeProxyDaemon(i, c))
	return err
}

// waitContainerd waits until node's containerd answers on its socket.
func (s *State) waitContainerd(ctx context.Context, node string, c Proc) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		cmd := exec.CommandContext(ctx, "ctr", "--address", s.ContainerdSocket(node), "version")
		if err := cmd.Run(); err == nil {
			return nil
		}
		if !c.Alive() {
			return fmt.Errorf("%s: containerd exited at start; end of %s:\n%s", node, s.logPath(c.Name), tailFile(s.logPath(c.Name), 20))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: containerd does not answer on %s after 30s; end of %s:\n%s", node, s.ContainerdSocket(node), s.logPath(c.Name), tailFile(s.logPath(c.Name), 20))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stopNode stops node's kube-proxy and kubelet, kills every container (by
// the PIDs in its cgroups), stops containerd and everything else in the
// node's namespace, and removes its cgroups.
func (s *State) stopNode(node string) error {
	var errs []error
	for _, name := range []string{procKubeProxy(node), procKubeletOf(node)} {
		if p, ok := readProc(s.runDir(), name); ok {
			if err := p.Stop(10 * time.Second); err != nil {
				errs = append(errs, err)
			}
			_ = os.Remove(filepath.Join(s.runDir(), name+".pid"))
		}
	}
	if err := killCgroups(node); err != nil {
		errs = append(errs, err)
	}
	if p, ok := readProc(s.runDir(), procContainerd(node)); ok {
		if err := p.Stop(10 * time.Second); err != nil {
			errs = append(errs, err)
		}
		_ = os.Remove(filepath.Join(s.runDir(), procContainerd(node)+".pid"))
	}
	// The shims (in the node's namespace) outlive containerd.
	if netnsExists(node) {
		if err := killNetnsProcs(context.Background(), node); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}
