package lab

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// Options say which lab to bring up and with what.
type Options struct {
	// Root is the lbstack repository (required).
	Root string
	// StateDir defaults to Root/.lab.
	StateDir string
	// Nodes is the node count. 0 keeps the running lab's, or makes 3.
	Nodes int
	// Scenario selects the router's configuration. Empty keeps the
	// running lab's scenario, or DefaultScenario for a new lab.
	Scenario string
	// LabBinary is the lab CLI, run as the registry and the reaper
	// (Root/bin/lab).
	LabBinary string
	// LbstackBinary is lbstack's binary on this machine (Root/bin/lbstack),
	// for what runs outside the cluster (must-gather from the host).
	LbstackBinary string
	// DebsDir holds the Debian packages the must-gather image is built
	// from (`make image-debs`; the newest Root/bin/debs-*); FRR's are the
	// newest Root/bin/frr-debs-*.
	DebsDir string
	// Assets holds the control-plane binaries (Root/bin/k8s-<version>).
	Assets string
	// Out receives progress lines (os.Stderr when nil).
	Out io.Writer
	// Owner, when not 0, is the PID of the process the lab belongs to (a
	// test binary): a reaper tears the lab down when it exits, even when
	// it is killed. A lab that is reused keeps its own lifetime.
	Owner int
}

func (o *Options) defaults() error {
	if o.Root == "" {
		return errors.New("lab: Options.Root (the lbstack repository) is required")
	}
	root, err := filepath.Abs(o.Root)
	if err != nil {
		return err
	}
	o.Root = root
	if o.StateDir == "" {
		o.StateDir = filepath.Join(root, ".lab")
	}
	if o.StateDir, err = filepath.Abs(o.StateDir); err != nil {
		return err
	}
	if o.Nodes < 0 || o.Nodes > MaxNodes {
		return fmt.Errorf("lab: %d nodes: between 1 and %d", o.Nodes, MaxNodes)
	}
	if o.LabBinary == "" {
		o.LabBinary = filepath.Join(root, "bin", "lab")
	}
	if o.LbstackBinary == "" {
		o.LbstackBinary = filepath.Join(root, "bin", "lbstack")
	}
	if o.Assets == "" {
		o.Assets = filepath.Join(root, "bin", "k8s-"+K8sVersion)
	}
	if o.DebsDir == "" {
		o.DebsDir = newestDebsDir(filepath.Join(root, "bin"))
	}
	if o.Out == nil {
		o.Out = os.Stderr
	}
	return nil
}

// Lab is a running lab as its users (the CLI, the e2e suite) see it.
type Lab struct {
	State      *State
	RestConfig *rest.Config
	Kube       kubernetes.Interface
	Router     *Router
	Client     Client
	// Reused is true when Up found the lab already running.
	Reused bool
	// UpTime is how long Up took.
	UpTime time.Duration
}

// Open returns the running lab in stateDir without changing anything.
func Open(stateDir string) (*Lab, error) {
	st, err := LoadState(stateDir)
	if err != nil {
		return nil, err
	}
	return st.open()
}

func (s *State) open() (*Lab, error) {
	cfg, err := clientcmd.BuildConfigFromFlags("", s.Kubeconfig())
	if err != nil {
		return nil, fmt.Errorf("lab: admin kubeconfig: %w", err)
	}
	cfg.QPS, cfg.Burst = 50, 100
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, err
	}
	return &Lab{State: s, RestConfig: cfg, Kube: cs, Router: &Router{FRR: s.RouterFRR()}}, nil
}

// preflight says plainly what is missing before anything is touched.
func preflight(o *Options) error {
	if os.Geteuid() != 0 {
		return errors.New("the lab needs root: it creates network namespaces, veths, a bridge and mounts (run `sudo make lab`)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return errors.New("iproute2's `ip` is missing (run `make apt-packages`)")
	}
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		return errors.New("this kernel has no network namespaces (/proc/self/ns/net): the lab cannot run here")
	}
	if _, err := ip(context.Background(), "netns", "list"); err != nil {
		return fmt.Errorf("`ip netns` does not work here: %w", err)
	}
	var missing []string
	for _, b := range []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubectl", "kubelet", "kube-proxy"} {
		if _, err := os.Stat(filepath.Join(o.Assets, b)); err != nil {
			missing = append(missing, filepath.Join(o.Assets, b))
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("control-plane binaries missing (run `make lab-assets`): %s", strings.Join(missing, ", "))
	}
	missing = nil
	for _, b := range []string{frrBinDir + "/zebra", frrBinDir + "/bgpd", frrBinDir + "/bfdd", vtyshBinary, frrReload, systemPython, "/usr/bin/arping",
		"/usr/bin/containerd", "/usr/bin/ctr", "/usr/sbin/runc", "/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback", "/usr/sbin/nft", "/usr/sbin/conntrack"} {
		if _, err := os.Stat(b); err != nil {
			missing = append(missing, b)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("Debian packages missing (run `make apt-packages`): %s", strings.Join(missing, ", "))
	}
	for _, b := range []string{o.LabBinary, o.LbstackBinary} {
		if _, err := os.Stat(b); err != nil {
			return fmt.Errorf("%s missing (run `make lab`, which builds it): %w", b, err)
		}
	}
	for _, b := range []string{"lbstack", "webserver", "pause"} {
		if _, err := os.Stat(filepath.Join(o.Root, "bin", "images", b)); err != nil {
			return fmt.Errorf("the images' programs are missing (run `make image-binaries`): %w", err)
		}
	}
	if o.DebsDir == "" || newestFRRDebsDir(filepath.Join(o.Root, "bin")) == "" {
		return errors.New("the Debian packages the FRR and must-gather images are built from are missing (run `make image-debs`)")
	}
	if hs, err := cgroupHierarchies(); err != nil || len(hs) == 0 {
		return fmt.Errorf("no cgroup hierarchy under %s: the lab's kubelets cannot run here (%v)", cgroupV1Root, err)
	}
	return nil
}

// newestDebsDir is the most recent complete `make image-debs` download of
// the must-gather image's packages.
func newestDebsDir(bin string) string { return newestDownload(bin, "debs-*") }

// newestFRRDebsDir is the most recent complete `make image-debs` download
// of FRR's image (the Debian 13 closure).
func newestFRRDebsDir(bin string) string { return newestDownload(bin, "frr-debs-*") }

// newestDownload is the most recent directory of bin matching pattern
// whose download completed (it holds .done).
func newestDownload(bin, pattern string) string {
	m, _ := filepath.Glob(filepath.Join(bin, pattern, ".done"))
	var best string
	var bestTime time.Time
	for _, f := range m {
		if fi, err := os.Stat(f); err == nil && fi.ModTime().After(bestTime) {
			best, bestTime = filepath.Dir(f), fi.ModTime()
		}
	}
	return best
}

// portsFree checks that nothing else holds the lab's loopback ports.
func portsFree() error {
	for _, p := range []int{EtcdClientPort, EtcdPeerPort, KCMPort, SchedulerPort} {
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			return fmt.Errorf("port 127.0.0.1:%d, which the lab uses, is taken by another process (see `ss -ltnp`): %w", p, err)
		}
		l.Close()
	}
	out, err := ip(context.Background(), "-o", "-4", "addr", "show")
	if err != nil {
		return err
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, " 198.18.") && !strings.Contains(line, HostVeth) {
			return fmt.Errorf("the root namespace already has an address in 198.18.0.0/15, which the lab uses: %s", strings.TrimSpace(line))
		}
	}
	return nil
}

// Up brings the lab up, or reuses (and repairs) the one that is running.
func Up(ctx context.Context, o Options) (*Lab, error) {
	start := time.Now()
	if err := o.defaults(); err != nil {
		return nil, err
	}
	if err := preflight(&o); err != nil {
		return nil, err
	}
	logf := func(format string, a ...any) { fmt.Fprintf(o.Out, "lab: "+format+"\n", a...) }
	st, stErr := LoadState(o.StateDir)
	name := o.Scenario
	if name == "" {
		name = DefaultScenario
		if stErr == nil {
			name = st.currentScenario()
		}
	}
	sc, err := LookupScenario(name)
	if err != nil {
		return nil, err
	}
	if o.Nodes == 0 {
		o.Nodes = 3
		if stErr == nil && st.Nodes > 0 {
			o.Nodes = st.Nodes
		}
	}

	if stErr == nil {
		problems := st.problems()
		switch {
		case !st.Complete:
			logf("the lab in %s was interrupted while coming up: rebuilding it", o.StateDir)
		case st.Nodes != o.Nodes:
			logf("the running lab has %d nodes, %d asked: rebuilding it", st.Nodes, o.Nodes)
		case len(problems) == 0 || st.repairable(problems):
			l, err := st.reuse(ctx, o, sc, problems, logf)
			if err != nil {
				return nil, err
			}
			l.UpTime = time.Since(start)
			return l, nil
		default:
			logf("the lab in %s is broken (%s): rebuilding it", o.StateDir, strings.Join(problems, "; "))
		}
		if err := Down(ctx, o.StateDir, DownOptions{Out: o.Out}); err != nil {
			return nil, fmt.Errorf("clean up the previous lab: %w", err)
		}
	} else if leftovers(o.StateDir) {
		logf("cleaning up what an interrupted lab left behind")
		if err := Down(ctx, o.StateDir, DownOptions{Out: o.Out}); err != nil {
			return nil, fmt.Errorf("clean up the previous lab: %w", err)
		}
	}
	if err := portsFree(); err != nil {
		return nil, err
	}
	l, err := fresh(ctx, o, sc, logf)
	if err != nil {
		logf("bringing the lab up failed; tearing down what was made (logs are kept in %s)", filepath.Join(o.StateDir, "logs"))
		if derr := Down(context.Background(), o.StateDir, DownOptions{Out: o.Out, KeepLogs: true}); derr != nil {
			err = errors.Join(err, derr)
		}
		return nil, err
	}
	l.UpTime = time.Since(start)
	return l, nil
}

// currentScenario is the scenario the lab runs: the one whose manifests
// were applied, else the one it was brought up for.
func (s *State) currentScenario() string {
	if s.Applied != "" {
		return s.Applied
	}
	if s.Scenario != "" {
		return s.Scenario
	}
	return DefaultScenario
}

// leftovers reports whether anything of a lab exists without a state file.
func leftovers(stateDir string) bool {
	if ns, _ := LabNetns(); len(ns) > 0 {
		return true
	}
	if _, err := os.Stat("/sys/class/net/" + HostVeth); err == nil {
		return true
	}
	if _, err := os.Stat(filepath.Join(stateDir, "run")); err == nil {
		return true
	}
	return len(labCgroups()) > 0
}

func fresh(ctx context.Context, o Options, sc Scenario, logf func(string, ...any)) (*Lab, error) {
	_, netnsErr := os.Stat(netnsDir)
	_, frrTmpErr := os.Stat(frrTmpDir)
	st := &State{
		Dir: o.StateDir, Root: o.Root, Nodes: o.Nodes, Scenario: sc.Name, Assets: o.Assets,
		LabBinary: o.LabBinary, LbstackBinary: o.LbstackBinary, DebsDir: o.DebsDir,
		NetnsDirPreexisted: netnsErr == nil, FRRTmpPreexisted: frrTmpErr == nil,
		UpSince: time.Now(),
	}
	// Logs of a failed attempt are kept; everything else starts clean.
	for _, d := range []string{"run", "pki", "etcd", "nodes", "registry", "frr", stateFile, "kubeconfig"} {
		if err := os.RemoveAll(filepath.Join(st.Dir, d)); err != nil {
			return nil, err
		}
	}
	for _, d := range []string{st.Dir, st.runDir(), st.logDir(), st.frrDir()} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, err
		}
	}
	// Recorded first, so that `down` finds the lab whatever happens next.
	if err := st.save(); err != nil {
		return nil, err
	}
	t := time.Now()
	step := func(what string) {
		logf("%-34s %5.1fs", what, time.Since(t).Seconds())
		t = time.Now()
	}
	if err := st.writePKI(); err != nil {
		return nil, fmt.Errorf("certificates: %w", err)
	}
	step("certificates and kubeconfigs")
	// The images are built while the network and the control plane come
	// up; the registry serves them once the network has its address.
	imagesErr := make(chan error, 1)
	imagesStart := time.Now()
	go func() { imagesErr <- st.buildImages() }()
	guards, err := addGuardRoutes(ctx)
	st.GuardRoutes = guards
	if serr := st.save(); err == nil {
		err = serr
	}
	if err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	if err := (network{nodes: o.Nodes}).build(ctx); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	step(fmt.Sprintf("network (%d nodes, router, client)", o.Nodes))
	if err := st.startRegistry(); err != nil {
		<-imagesErr
		return nil, err
	}
	if err := st.startEtcd(); err != nil {
		return nil, err
	}
	step("etcd")
	if err := st.startAPIServer(); err != nil {
		return nil, err
	}
	// The router needs no API server: configure it while that starts.
	routerErr := make(chan error, 1)
	go func() { routerErr <- st.startRouter(ctx, sc.Router(o.Nodes)) }()
	if err := st.waitAPIServer(90 * time.Second); err != nil {
		<-routerErr
		return nil, err
	}
	step("kube-apiserver")
	if err := <-routerErr; err != nil {
		return nil, err
	}
	if err := st.startDNS(); err != nil {
		return nil, err
	}
	var wg sync.WaitGroup
	errs := make([]error, 2+o.Nodes)
	for i, f := range []func() error{st.startKCM, st.startScheduler} {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = f() }()
	}
	for i := 1; i <= o.Nodes; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); errs[1+i] = st.startNode(ctx, i) }()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		<-imagesErr
		return nil, err
	}
	step("controller-manager, scheduler; containerd, kubelet, kube-proxy per node")
	if err := <-imagesErr; err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	logf("%-34s %5.1fs (alongside)", "images built into the lab registry", time.Since(imagesStart).Seconds())
	l, err := st.open()
	if err != nil {
		return nil, err
	}
	if err := l.waitReady(ctx, 120*time.Second); err != nil {
		return nil, err
	}
	if err := l.setPodCIDRs(ctx); err != nil {
		return nil, err
	}
	step(fmt.Sprintf("%d nodes Ready", o.Nodes))
	if o.Owner != 0 {
		if err := st.startReaper(o.Owner); err != nil {
			return nil, err
		}
	}
	st.Complete = true
	return l, st.save()
}

// writePKI makes the CA, serving certificates, keys and every kubeconfig.
func (s *State) writePKI() error {
	p, err := newPKI(s.pkiDir())
	if err != nil {
		return err
	}
	if err := p.kubeconfig(s.Kubeconfig(), "lab-admin", "system:masters"); err != nil {
		return err
	}
	if err := p.kubeconfig(filepath.Join(s.pkiDir(), kcmKubeconfig), "system:kube-controller-manager"); err != nil {
		return err
	}
	if err := p.kubeconfig(filepath.Join(s.pkiDir(), schedulerKubeconfig), "system:kube-scheduler"); err != nil {
		return err
	}
	for i := 1; i <= s.Nodes; i++ {
		if err := p.kubeconfig(filepath.Join(s.pkiDir(), kubeletKubeconfig(NodeName(i))), "system:node:"+NodeName(i), "system:nodes"); err != nil {
			return err
		}
	}
	return p.kubeconfig(filepath.Join(s.pkiDir(), kubeProxyKubeconfig), "system:kube-proxy")
}

// startRouter starts the router's FRR and applies cfg; the state records
// cfg only once applied.
func (s *State) startRouter(ctx context.Context, cfg RouterConfig) error {
	f := s.RouterFRR()
	if err := f.Start(ctx); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	if err := (&Router{FRR: f}).Configure(ctx, cfg); err != nil {
		return fmt.Errorf("router: %w", err)
	}
	s.Router = cfg
	return nil
}

// startReaper starts `lab reap`, which tears the lab down when owner exits.
func (s *State) startReaper(owner int) error {
	p, err := procOf("owner", owner)
	if err != nil {
		return err
	}
	s.Owner = &p
	_, err = startDaemon(s.runDir(), daemon{
		Name: procReaper,
		Argv: []string{s.LabBinary, "reap", "--state", s.Dir, "--pid", strconv.Itoa(p.PID), "--start", strconv.FormatUint(p.Start, 10)},
		Log:  s.logPath(procReaper),
	})
	return err
}

// Reap waits for the owner process to exit and then tears the lab down.
func Reap(ctx context.Context, stateDir string, owner Proc) error {
	for owner.Alive() {
		select {
		case <-ctx.Done():
			// Stopped by `lab down`: the teardown is someone else's.
			return nil
		case <-time.After(500 * time.Millisecond):
		}
	}
	fmt.Printf("owner pid %d exited: tearing the lab down\n", owner.PID)
	return Down(context.Background(), stateDir, DownOptions{Out: os.Stdout})
}

// waitReady waits until every node is Ready and the default service
// account exists (pods are refused until it does).
func (l *Lab) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last string
	for {
		last = l.notReady(ctx)
		if last == "" {
			return nil
		}
		for i := 1; i <= l.State.Nodes; i++ {
			name := procKubeletOf(NodeName(i))
			if p, ok := readProc(l.State.runDir(), name); ok && !p.Alive() {
				return fmt.Errorf("the kubelet of %s exited; end of %s:\n%s", NodeName(i), l.State.logPath(name), tailFile(l.State.logPath(name), 20))
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("lab not ready after %s: %s (see %s)", timeout, last, l.State.logDir())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (l *Lab) notReady(ctx context.Context) string {
	nodes, err := l.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	ready := 0
	for _, n := range nodes.Items {
		for _, c := range n.Status.Conditions {
			if c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue {
				ready++
			}
		}
	}
	if ready < l.State.Nodes {
		return fmt.Sprintf("%d of %d nodes Ready", ready, l.State.Nodes)
	}
	if _, err := l.Kube.CoreV1().ServiceAccounts("default").Get(ctx, "default", metav1.GetOptions{}); err != nil {
		return "default service account: " + err.Error()
	}
	return ""
}

// problems lists what is wrong with a running lab: dead components,
// missing namespaces, an API server that does not answer.
func (s *State) problems() []string {
	var out []string
	names := []string{procEtcd, procAPIServer, procKCM, procScheduler, procRegistry, procDNS}
	for i := 1; i <= s.Nodes; i++ {
		names = append(names, procContainerd(NodeName(i)), procKubeletOf(NodeName(i)), procKubeProxy(NodeName(i)))
	}
	for _, name := range names {
		if p, ok := readProc(s.runDir(), name); !ok || !p.Alive() {
			out = append(out, name+" not running")
		}
	}
	if !s.RouterFRR().Alive() {
		out = append(out, "router FRR not running")
	}
	want := []string{SwitchNetns, RouterNetns, ClientNetns}
	for i := 1; i <= s.Nodes; i++ {
		want = append(want, NodeName(i))
	}
	for _, ns := range want {
		if !netnsExists(ns) {
			out = append(out, "namespace "+ns+" missing")
		}
	}
	if _, err := os.Stat("/sys/class/net/" + HostVeth); err != nil {
		out = append(out, HostVeth+" missing")
	}
	if len(out) == 0 {
		if err := componentHealth(APIServerURL() + "/readyz"); err != nil {
			out = append(out, "kube-apiserver not ready: "+err.Error())
		}
	}
	return out
}

// repairable: dead processes are restarted in place; a missing namespace
// or link means the network is gone, and a dead containerd took its pods'
// namespaces with it: only a rebuild fixes those.
func (s *State) repairable(problems []string) bool {
	for _, p := range problems {
		if strings.Contains(p, "missing") || strings.HasPrefix(p, "containerd-") {
			return false
		}
	}
	return true
}

// reuse adopts the running lab: it restarts dead components, rebuilds the
// images (so a changed lbstack reaches the registry; pods pulling
// :latest get it when they restart) and applies the scenario's router
// configuration.
func (s *State) reuse(ctx context.Context, o Options, sc Scenario, problems []string, logf func(string, ...any)) (*Lab, error) {
	logf("reusing the lab in %s (up since %s)", s.Dir, s.UpSince.Format(time.Kitchen))
	dead := map[string]bool{}
	for _, p := range problems {
		dead[strings.TrimSuffix(p, " not running")] = true
	}
	// A component that died, or that this version of the lab starts with
	// other flags, is (re)started in place; the others keep running.
	restart := func(d daemon, start func() error) (bool, error) {
		p, ok := readProc(s.runDir(), d.Name)
		switch {
		case dead[d.Name]:
			logf("restarting %s (it had stopped; its log: %s)", d.Name, s.logPath(d.Name))
		case ok && p.Args != d.digest():
			logf("restarting %s: the lab now starts it with other flags", d.Name)
			if err := p.Stop(15 * time.Second); err != nil {
				return false, err
			}
		default:
			return false, nil
		}
		return true, start()
	}
	if _, err := restart(s.etcdDaemon(), s.startEtcd); err != nil {
		return nil, err
	}
	if restarted, err := restart(s.apiserverDaemon(), s.startAPIServer); err != nil {
		return nil, err
	} else if restarted {
		if err := s.waitAPIServer(90 * time.Second); err != nil {
			return nil, err
		}
	}
	if _, err := restart(s.dnsDaemon(), s.startDNS); err != nil {
		return nil, err
	}
	if _, err := restart(s.kcmDaemon(), s.startKCM); err != nil {
		return nil, err
	}
	if _, err := restart(s.schedulerDaemon(), s.startScheduler); err != nil {
		return nil, err
	}
	if dead["router FRR"] {
		logf("restarting the router's FRR")
		if err := s.RouterFRR().Stop(); err != nil {
			return nil, err
		}
		if err := s.startRouter(ctx, s.Router); err != nil {
			return nil, err
		}
	}
	s.LabBinary, s.LbstackBinary = o.LabBinary, o.LbstackBinary
	if o.DebsDir != "" {
		s.DebsDir = o.DebsDir
	}
	if err := s.buildImages(); err != nil {
		return nil, fmt.Errorf("images: %w", err)
	}
	if _, err := restart(s.registryDaemon(), s.startRegistry); err != nil {
		return nil, err
	}
	for i := 1; i <= s.Nodes; i++ {
		node := NodeName(i)
		c, _ := readProc(s.runDir(), procContainerd(node))
		if _, err := restart(s.kubeletDaemon(i, c), func() error { _, err := startDaemon(s.runDir(), s.kubeletDaemon(i, c)); return err }); err != nil {
			return nil, err
		}
		if _, err := restart(s.kubeProxyDaemon(i, c), func() error { _, err := startDaemon(s.runDir(), s.kubeProxyDaemon(i, c)); return err }); err != nil {
			return nil, err
		}
	}
	if want := sc.Router(s.Nodes); sc.Name != s.Scenario || !equalRouterConfig(want, s.Router) {
		logf("router: configuring for scenario %s", sc.Name)
		if err := (&Router{FRR: s.RouterFRR()}).Configure(ctx, want); err != nil {
			return nil, err
		}
		s.Router = want
	}
	if err := s.save(); err != nil {
		return nil, err
	}
	l, err := s.open()
	if err != nil {
		return nil, err
	}
	l.Reused = true
	if err := l.waitReady(ctx, 120*time.Second); err != nil {
		return nil, err
	}
	return l, nil
}

// setPodCIDRs records each node's pod range in its Node (the lab assigns
// the ranges; the CNI configuration already uses them), as the node IPAM
// controller would.
func (l *Lab) setPodCIDRs(ctx context.Context) error {
	for i := 1; i <= l.State.Nodes; i++ {
		n, err := l.Kube.CoreV1().Nodes().Get(ctx, NodeName(i), metav1.GetOptions{})
		if err != nil {
			return err
		}
		if n.Spec.PodCIDR != "" {
			continue
		}
		patch := fmt.Sprintf(`{"spec":{"podCIDR":%q,"podCIDRs":[%q]}}`, NodePodCIDR(i), NodePodCIDR(i))
		if _, err := l.Kube.CoreV1().Nodes().Patch(ctx, NodeName(i), types.MergePatchType, []byte(patch), metav1.PatchOptions{}); err != nil {
			return fmt.Errorf("pod range of %s: %w", NodeName(i), err)
		}
	}
	return nil
}

func equalRouterConfig(a, b RouterConfig) bool { return a.Render() == b.Render() }

// ConfigureRouter applies cfg to the router and records it, so a later
// `lab up` knows what the router runs.
func (l *Lab) ConfigureRouter(ctx context.Context, cfg RouterConfig) error {
	if err := l.Router.Configure(ctx, cfg); err != nil {
		return err
	}
	l.State.Router = cfg
	return l.State.save()
}

// Problems lists what is wrong with the lab recorded in s (empty when all
// runs).
func Problems(s *State) []string { return s.problems() }
