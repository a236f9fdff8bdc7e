package lab

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"

	calicov1 "github.com/lbstack/lbstack/pkg/calicoapi/v1"
)

// The lab's stand-in for calico-node's BGP part. Calico's node agent
// (calico-node: confd rendering BIRD's configuration from Calico's
// objects) cannot be built here: the Go module proxy refuses
// github.com/projectcalico/calico, .../confd and .../node. So the lab runs
// Debian's BIRD 2 on every node with a configuration this file renders
// from the same objects, following Calico's documented behaviour:
//
//   - router id: the node's IPv4 address; local AS: asNumber; BGP on
//     listenPort (BIRD 2 has no global `listen bgp`: every session's
//     `local ... port`);
//   - the node-to-node mesh (nodeToNodeMeshEnabled, default true): a
//     session with every other node, on its listenPort, the node with the
//     higher address connecting (the other passive);
//   - a session with every Calico BGPPeer that applies to the node: global
//     ones (neither node nor nodeSelector), those naming the node, and
//     nodeSelector "all()"; other selectors, peerSelector, passwords and
//     IPv6 peers are not supported and say so in the configuration;
//   - exported: every serviceLoadBalancerIPs CIDR from every node (Calico
//     announces the configured ranges whole), and the /32 of each address
//     of an externalTrafficPolicy Local Service inside those CIDRs from the
//     nodes with a ready endpoint; each route gets the communities of every
//     prefixAdvertisements entry whose CIDR holds it (`net ~ cidr`).
//
// The routes are BIRD static blackhole routes, never installed (no
// `protocol kernel`): the node forwards the traffic as kube-proxy
// programs it. Nothing is imported into the kernel either.

// CalicoBIRDInput is everything one node's configuration is rendered from.
type CalicoBIRDInput struct {
	// Node is the node's name, Address its IPv4 address.
	Node    string
	Address string
	// Config is the default BGPConfiguration's spec; nil when it does not
	// exist (Calico then uses AS 64512, the mesh and port 179).
	Config *calicov1.BGPConfiguration
	Peers  []calicov1.BGPPeer
	// Nodes are every node's name and IPv4 address (the mesh).
	Nodes []CalicoNode
	// Services are the LoadBalancer Services with their addresses.
	Services []CalicoService
}

// CalicoNode is a node of the mesh.
type CalicoNode struct {
	Name    string
	Address string
}

// CalicoService is a LoadBalancer Service as the stand-in needs it.
type CalicoService struct {
	// Name is namespace/name.
	Name string
	IPs  []string
	// Local is externalTrafficPolicy Local.
	Local bool
	// ReadyNodes are the nodes with a ready endpoint.
	ReadyNodes []string
}

// calicoDefaultASN is Calico's AS when the BGPConfiguration sets none.
const calicoDefaultASN = 64512

// RenderCalicoBIRD returns the BIRD 2 configuration of one node. It is a
// pure function of its input: the same input gives the same text.
func RenderCalicoBIRD(in CalicoBIRDInput) (string, error) {
	self, err := netip.ParseAddr(in.Address)
	if err != nil || !self.Is4() {
		return "", fmt.Errorf("node %s: address %q is not IPv4", in.Node, in.Address)
	}
	asn := uint32(calicoDefaultASN)
	mesh := true
	port := 179
	var spec calicoSpec
	if in.Config != nil {
		s := in.Config.Spec
		if s.ASNumber != nil {
			asn = uint32(*s.ASNumber)
		}
		if s.NodeToNodeMeshEnabled != nil {
			mesh = *s.NodeToNodeMeshEnabled
		}
		if s.ListenPort != 0 {
			port = int(s.ListenPort)
		}
		spec.cidrs, spec.notes = svcCIDRs(s.ServiceLoadBalancerIPs)
		var err error
		spec.communities, err = prefixCommunities(in.Config)
		if err != nil {
			return "", err
		}
	}

	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format+"\n", a...) }
	w("# BIRD 2 configuration of %s, rendered by the lbstack lab's Calico stand-in", in.Node)
	w("# (test/lab/calicobird.go) from Calico's BGPConfiguration and BGPPeers.")
	if in.Config == nil {
		w("# No default BGPConfiguration: Calico's defaults (AS %d, mesh on, port 179).", calicoDefaultASN)
	}
	w("router id %s;", self)
	w("")
	w("protocol device {")
	w("  scan time 2;")
	w("}")
	w("")

	// The routes to export.
	routes := spec.routes(in)
	w("# serviceLoadBalancerIPs, and Local Services' addresses with a ready endpoint here.")
	w("# Blackhole routes that are only exported: there is no protocol kernel.")
	w("protocol static calico_svc {")
	w("  ipv4;")
	for _, n := range spec.notes {
		w("  # %s", n)
	}
	for _, r := range routes {
		if r.why != "" {
			w("  route %s blackhole; # %s", r.prefix, r.why)
		} else {
			w("  route %s blackhole;", r.prefix)
		}
	}
	w("}")
	w("")
	w("# prefixAdvertisements")
	w("function calico_communities() {")
	for _, pc := range spec.communities {
		w("  if net ~ %s then {", pc.cidr)
		for _, c := range pc.values {
			w("    %s", c)
		}
		w("  }")
	}
	w("}")
	w("")
	w("filter calico_export {")
	w("  if proto != \"calico_svc\" then reject;")
	w("  calico_communities();")
	w("  accept;")
	w("}")
	w("")
	w("template bgp calico_peer {")
	w("  local %s port %d as %d;", self, port, asn)
	w("  direct;")
	w("  connect delay time 1;")
	w("  connect retry time 3;")
	w("  error wait time 5, 60;")
	w("  ipv4 {")
	w("    import all;")
	w("    export filter calico_export;")
	w("    next hop self;")
	w("  };")
	w("}")

	w("")
	if mesh {
		w("# Node-to-node mesh")
		nodes := append([]CalicoNode(nil), in.Nodes...)
		sort.Slice(nodes, func(i, j int) bool { return nodes[i].Name < nodes[j].Name })
		for _, n := range nodes {
			a, err := netip.ParseAddr(n.Address)
			if err != nil || !a.Is4() {
				w("# %s: no IPv4 address", n.Name)
				continue
			}
			if a == self {
				continue
			}
			w("protocol bgp mesh_%s from calico_peer {", protoID(a.String()))
			w("  neighbor %s port %d as %d;", a, port, asn)
			if a.Compare(self) > 0 {
				w("  passive on; # the node with the higher address connects")
			}
			w("}")
		}
	} else {
		w("# Node-to-node mesh disabled")
	}

	w("")
	w("# Calico BGPPeers")
	peers := append([]calicov1.BGPPeer(nil), in.Peers...)
	sort.Slice(peers, func(i, j int) bool { return peers[i].Name < peers[j].Name })
	for _, p := range peers {
		s := p.Spec
		switch {
		case s.Node != "" && s.Node != in.Node:
			w("# %s: for node %s", p.Name, s.Node)
			continue
		case s.NodeSelector != "" && strings.TrimSpace(s.NodeSelector) != "all()":
			w("# %s: nodeSelector %q not supported by the stand-in", p.Name, s.NodeSelector)
			continue
		case s.PeerSelector != "":
			w("# %s: peerSelector not supported by the stand-in", p.Name)
			continue
		case s.Password != nil:
			w("# %s: password not supported by the stand-in", p.Name)
			continue
		}
		ip, pport, err := peerAddr(s.PeerIP)
		if err != nil {
			w("# %s: %v", p.Name, err)
			continue
		}
		if !ip.Is4() {
			w("# %s: IPv6 peer %s not supported by the stand-in", p.Name, ip)
			continue
		}
		if ip == self {
			w("# %s: the node itself", p.Name)
			continue
		}
		peerASN := uint32(s.ASNumber)
		w("protocol bgp peer_%s from calico_peer {", protoID(p.Name))
		if pport != 0 {
			w("  neighbor %s port %d as %d;", ip, pport, peerASN)
		} else {
			w("  neighbor %s as %d;", ip, peerASN)
		}
		w("}")
	}
	return b.String(), nil
}

type calicoSpec struct {
	cidrs       []netip.Prefix
	notes       []string
	communities []prefixCommunity
}

type prefixCommunity struct {
	cidr   netip.Prefix
	values []string // BIRD statements
}

type staticRoute struct {
	prefix netip.Prefix
	why    string
}

// routes are the node's exported routes: every IPv4 CIDR, then each Local
// Service's /32 with a ready endpoint on this node, inside a CIDR.
func (s calicoSpec) routes(in CalicoBIRDInput) []staticRoute {
	var out []staticRoute
	seen := map[netip.Prefix]bool{}
	for _, c := range s.cidrs {
		if !c.Addr().Is4() || seen[c] {
			continue
		}
		seen[c] = true
		out = append(out, staticRoute{prefix: c})
	}
	svcs := append([]CalicoService(nil), in.Services...)
	sort.Slice(svcs, func(i, j int) bool { return svcs[i].Name < svcs[j].Name })
	var hosts []staticRoute
	for _, svc := range svcs {
		if !svc.Local || !contains(svc.ReadyNodes, in.Node) {
			continue
		}
		for _, ipStr := range svc.IPs {
			a, err := netip.ParseAddr(ipStr)
			if err != nil || !a.Is4() {
				continue
			}
			inside := false
			for _, c := range s.cidrs {
				if c.Contains(a) {
					inside = true
				}
			}
			h := netip.PrefixFrom(a, 32)
			if !inside || seen[h] {
				continue
			}
			seen[h] = true
			hosts = append(hosts, staticRoute{prefix: h, why: svc.Name + " (Local, ready endpoint here)"})
		}
	}
	sort.Slice(hosts, func(i, j int) bool { return hosts[i].prefix.Addr().Less(hosts[j].prefix.Addr()) })
	return append(out, hosts...)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// svcCIDRs parses serviceLoadBalancerIPs, keeping the valid entries in
// their order and noting the others.
func svcCIDRs(blocks []v3.ServiceLoadBalancerIPBlock) ([]netip.Prefix, []string) {
	var out []netip.Prefix
	var notes []string
	for _, b := range blocks {
		p, err := netip.ParsePrefix(b.CIDR)
		if err != nil {
			notes = append(notes, fmt.Sprintf("serviceLoadBalancerIPs entry %q is not a CIDR: skipped", b.CIDR))
			continue
		}
		out = append(out, p.Masked())
	}
	return out, notes
}

// prefixCommunities resolves prefixAdvertisements into BIRD statements:
// a value a:b is a standard community, a:b:c a large one; a name refers to
// the BGPConfiguration's communities.
func prefixCommunities(cfg *calicov1.BGPConfiguration) ([]prefixCommunity, error) {
	named := map[string]string{}
	for _, c := range cfg.Spec.Communities {
		named[c.Name] = c.Value
	}
	var out []prefixCommunity
	for _, pa := range cfg.Spec.PrefixAdvertisements {
		cidr, err := netip.ParsePrefix(pa.CIDR)
		if err != nil {
			return nil, fmt.Errorf("prefixAdvertisements: %q is not a CIDR", pa.CIDR)
		}
		pc := prefixCommunity{cidr: cidr.Masked()}
		for _, c := range pa.Communities {
			v := c
			if nv, ok := named[c]; ok {
				v = nv
			}
			parts := strings.Split(v, ":")
			var nums []string
			for _, part := range parts {
				n, err := strconv.ParseUint(part, 10, 32)
				if err != nil {
					return nil, fmt.Errorf("prefixAdvertisements %s: community %q is neither a:b, a:b:c nor a name of spec.communities", pa.CIDR, c)
				}
				nums = append(nums, strconv.FormatUint(n, 10))
			}
			switch len(nums) {
			case 2:
				pc.values = append(pc.values, fmt.Sprintf("bgp_community.add((%s));", strings.Join(nums, ",")))
			case 3:
				pc.values = append(pc.values, fmt.Sprintf("bgp_large_community.add((%s));", strings.Join(nums, ",")))
			default:
				return nil, fmt.Errorf("prefixAdvertisements %s: community %q is neither a:b nor a:b:c", pa.CIDR, c)
			}
		}
		out = append(out, pc)
	}
	return out, nil
}

// peerAddr splits a BGPPeer's peerIP ("ip", "ip:port", "[ip6]:port").
func peerAddr(s string) (netip.Addr, int, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		return a, 0, nil
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("peerIP %q is neither an address nor address:port", s)
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, 0, fmt.Errorf("peerIP %q: %w", s, err)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p <= 0 || p > 65535 {
		return netip.Addr{}, 0, fmt.Errorf("peerIP %q: bad port", s)
	}
	return a, p, nil
}

// protoID makes a BIRD protocol name out of an address or object name.
func protoID(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
		} else {
			b.WriteRune('_')
		}
	}
	return b.String()
}

// CalicoBIRDInputOf reads one node's input from the cluster: Calico's
// default BGPConfiguration and BGPPeers (crd.projectcalico.org/v1), the
// Nodes, the LoadBalancer Services and their EndpointSlices.
func (l *Lab) CalicoBIRDInputOf(ctx context.Context, node string) (CalicoBIRDInput, error) {
	in := CalicoBIRDInput{Node: node}
	rc := l.Kube.Discovery().RESTClient()
	base := "/apis/" + calicov1.GroupVersion.Group + "/" + calicov1.GroupVersion.Version
	raw, err := rc.Get().AbsPath(base, "bgpconfigurations", calicov1.DefaultBGPConfigurationName).DoRaw(ctx)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return in, fmt.Errorf("read BGPConfiguration default: %w", err)
	default:
		var cfg calicov1.BGPConfiguration
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return in, fmt.Errorf("decode BGPConfiguration default: %w", err)
		}
		in.Config = &cfg
	}
	raw, err = rc.Get().AbsPath(base, "bgppeers").DoRaw(ctx)
	if err != nil && !apierrors.IsNotFound(err) {
		return in, fmt.Errorf("list BGPPeers: %w", err)
	}
	if err == nil {
		var peers calicov1.BGPPeerList
		if err := json.Unmarshal(raw, &peers); err != nil {
			return in, fmt.Errorf("decode BGPPeers: %w", err)
		}
		in.Peers = peers.Items
	}
	nodes, err := l.Kube.CoreV1().Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return in, err
	}
	for _, n := range nodes.Items {
		addr := ""
		for _, a := range n.Status.Addresses {
			if a.Type == corev1.NodeInternalIP && strings.Count(a.Address, ".") == 3 {
				addr = a.Address
				break
			}
		}
		in.Nodes = append(in.Nodes, CalicoNode{Name: n.Name, Address: addr})
		if n.Name == node {
			in.Address = addr
		}
	}
	svcs, err := l.Kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return in, err
	}
	slices, err := l.Kube.DiscoveryV1().EndpointSlices("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return in, err
	}
	ready := map[string]map[string]bool{} // namespace/name -> nodes
	for _, es := range slices.Items {
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		key := es.Namespace + "/" + svc
		for _, ep := range es.Endpoints {
			if ep.NodeName == nil || (ep.Conditions.Ready != nil && !*ep.Conditions.Ready) {
				continue
			}
			if ready[key] == nil {
				ready[key] = map[string]bool{}
			}
			ready[key][*ep.NodeName] = true
		}
	}
	for _, s := range svcs.Items {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer {
			continue
		}
		cs := CalicoService{Name: s.Namespace + "/" + s.Name, Local: s.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal}
		for _, ing := range s.Status.LoadBalancer.Ingress {
			if ing.IP != "" {
				cs.IPs = append(cs.IPs, ing.IP)
			}
		}
		for n := range ready[cs.Name] {
			cs.ReadyNodes = append(cs.ReadyNodes, n)
		}
		sort.Strings(cs.ReadyNodes)
		in.Services = append(in.Services, cs)
	}
	if in.Address == "" {
		return in, fmt.Errorf("node %s has no IPv4 InternalIP", node)
	}
	return in, nil
}

// CalicoBIRD is the stand-in running on one node: BIRD in the node's
// network namespace, its configuration re-rendered every second and
// reloaded (`birdc configure`) when it changes.
type CalicoBIRD struct {
	l    *Lab
	node string
	dir  string

	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	proc    Proc
	lastErr error
	conf    string
}

func (c *CalicoBIRD) procName() string { return "calico-bird-" + c.node }

// Config is the configuration file; Socket BIRD's control socket.
func (c *CalicoBIRD) Config() string { return filepath.Join(c.dir, "bird.conf") }
func (c *CalicoBIRD) Socket() string { return filepath.Join(c.dir, "bird.ctl") }

// StartCalicoBIRD renders node's configuration, starts BIRD with it in the
// node's namespace and keeps it in step with the cluster until Stop.
func (l *Lab) StartCalicoBIRD(ctx context.Context, node int) (*CalicoBIRD, error) {
	c := &CalicoBIRD{l: l, node: NodeName(node), done: make(chan struct{})}
	c.dir = filepath.Join(l.State.Dir, "calico", c.node)
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return nil, err
	}
	if _, err := exec.LookPath("bird"); err != nil {
		return nil, fmt.Errorf("the Calico stand-in needs Debian's bird2 (make apt-packages): %w", err)
	}
	if old, ok := readProc(l.State.runDir(), c.procName()); ok {
		_ = old.Stop(5 * time.Second)
	}
	if err := c.sync(ctx); err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	go c.loop(lctx)
	return c, nil
}

func (c *CalicoBIRD) loop(ctx context.Context) {
	defer close(c.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := c.sync(ctx)
		c.mu.Lock()
		c.lastErr = err
		c.mu.Unlock()
	}
}

// Err is the last error of the loop (nil when the last round was fine).
func (c *CalicoBIRD) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// sync renders the configuration and brings BIRD in step with it.
func (c *CalicoBIRD) sync(ctx context.Context) error {
	rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	in, err := c.l.CalicoBIRDInputOf(rctx, c.node)
	if err != nil {
		return err
	}
	conf, err := RenderCalicoBIRD(in)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	changed := conf != c.conf
	if changed {
		if err := writeFileAtomic(c.Config(), []byte(conf), 0o644); err != nil {
			return err
		}
	}
	if !c.proc.Alive() {
		_ = os.Remove(c.Socket())
		p, err := startDaemon(c.l.State.runDir(), daemon{
			Name:  c.procName(),
			Argv:  []string{"bird", "-f", "-c", c.Config(), "-s", c.Socket()},
			Log:   c.l.State.logPath(c.procName()),
			Netns: c.node,
		})
		if err != nil {
			return err
		}
		c.proc = p
		c.conf = conf
		return nil
	}
	if !changed {
		return nil
	}
	out, err := c.Birdc(rctx, "configure")
	if err != nil {
		return fmt.Errorf("%s: birdc configure: %w", c.node, err)
	}
	if !strings.Contains(out, "Reconfigured") && !strings.Contains(out, "Reconfiguration in progress") {
		return fmt.Errorf("%s: birdc configure: %s", c.node, out)
	}
	c.conf = conf
	return nil
}

// Birdc runs a birdc command on the node's BIRD.
func (c *CalicoBIRD) Birdc(ctx context.Context, args ...string) (string, error) {
	out, err := exec.CommandContext(ctx, "birdc", append([]string{"-s", c.Socket()}, args...)...).CombinedOutput()
	return string(out), err
}

// Stop stops the loop and BIRD (by its recorded PID) and forgets it.
func (c *CalicoBIRD) Stop() error {
	if c.cancel != nil {
		c.cancel()
		<-c.done
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	if c.proc.PID != 0 {
		errs = append(errs, c.proc.Stop(5*time.Second))
	}
	if err := os.Remove(filepath.Join(c.l.State.runDir(), c.procName()+".pid")); err != nil && !os.IsNotExist(err) {
		errs = append(errs, err)
	}
	_ = os.Remove(c.Socket())
	return errors.Join(errs...)
}
