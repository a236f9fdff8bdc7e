package lab

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"
)

// Everything the lab configures must stay in its ranges: this is the rule
// that keeps the lab from ever touching a real network.
func TestAddressPlanStaysInLabRanges(t *testing.T) {
	addrs := []string{APIServerAddr, ClientSegmentAddr, ClientSegmentAddr6, RouterAddr, RouterAddr6, RouterClientAddr, ClientAddr}
	for i := 1; i <= MaxNodes; i++ {
		addrs = append(addrs, NodeAddr(i), NodeAddr6(i), NodePodGateway(i))
		p := netip.MustParsePrefix(NodePodCIDR(i))
		if !netip.MustParsePrefix(ClusterPodCIDR).Contains(p.Addr()) {
			t.Errorf("node %d pod range %s outside %s", i, p, ClusterPodCIDR)
		}
		addrs = append(addrs, p.Addr().String())
	}
	for _, p := range []string{SegmentPrefix, SegmentPrefix6, ClientNetPrefix, ClusterPodCIDR, ServiceCIDR, ServiceCIDR6} {
		addrs = append(addrs, netip.MustParsePrefix(p).Addr().String())
	}
	seg := netip.MustParsePrefix(SegmentPrefix)
	l2pool := netip.MustParsePrefix("198.18.0.240/28") // l2-and-bgp-basics
	for _, a := range addrs {
		addr := netip.MustParseAddr(a)
		if !InLabRange(addr) {
			t.Errorf("%s is outside the lab's ranges", a)
		}
		if addr.Is4() && seg.Contains(addr) && l2pool.Contains(addr) && a != RouterAddr {
			t.Errorf("%s sits in the layer-2 scenario's pool %s", a, l2pool)
		}
	}
	for _, a := range []string{"192.0.2.1", "10.0.0.1", "8.8.8.8", "fd00::1", "2001:db9::1"} {
		if InLabRange(netip.MustParseAddr(a)) {
			t.Errorf("%s counted as a lab address", a)
		}
	}
	if want := fmt.Sprintf("%s:%d", APIServerAddr, RegistryPort); RegistryHost != want {
		t.Errorf("RegistryHost %s, want %s", RegistryHost, want)
	}
	if NodeName(7) != "lbl-node7" || nodeIndexFromName("lbl-node7") != 7 || nodeIndexFromName("lbl-node07") != 0 || nodeIndexFromName("node7") != 0 {
		t.Errorf("node names do not round-trip")
	}
}

func TestK8sVersionMatchesMakefile(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^K8S_VERSION\s*:=\s*(\S+)`).FindSubmatch(mk)
	if m == nil || string(m[1]) != K8sVersion {
		t.Errorf("Makefile K8S_VERSION %q, lab.K8sVersion %s", m, K8sVersion)
	}
}

// vtyshCheck validates a configuration with FRR's own parser (vtysh -C).
func vtyshCheck(t *testing.T, conf string) {
	t.Helper()
	if _, err := os.Stat(vtyshBinary); err != nil {
		t.Skip("vtysh not installed (make apt-packages)")
	}
	f := filepath.Join(t.TempDir(), "frr.conf")
	if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(vtyshBinary, "-C", "-f", f).CombinedOutput()
	if err != nil {
		t.Errorf("FRR refuses the configuration: %v\n%s\n--- config:\n%s", err, out, conf)
	}
}

func TestRouterConfigOfEveryScenarioParses(t *testing.T) {
	for _, name := range ScenarioNames() {
		sc := Scenarios[name]
		if sc.Unsupported != "" {
			continue
		}
		t.Run(strings.ReplaceAll(name, "/", "_"), func(t *testing.T) {
			cfg := sc.Router(3)
			conf := cfg.Render()
			vtyshCheck(t, conf)
			for _, p := range cfg.Peers {
				if !strings.Contains(conf, " neighbor "+p.Address+" remote-as ") || !strings.Contains(conf, "  neighbor "+p.Address+" route-map LAB-IN in") {
					t.Errorf("peer %s not configured with the import filter", p.Address)
				}
				if p.BFD != strings.Contains(conf, " neighbor "+p.Address+" bfd\n") {
					t.Errorf("peer %s: BFD %v not rendered", p.Address, p.BFD)
				}
			}
			for _, pool := range PoolPrefixes {
				if !strings.Contains(conf, " permit "+pool+" le ") {
					t.Errorf("import filter lacks %s", pool)
				}
			}
			if strings.Count(conf, "permit") != len(PoolPrefixes)+2 {
				t.Errorf("the router must accept the lab's pools and nothing else:\n%s", conf)
			}
		})
	}
}

func TestPeerConfigParses(t *testing.T) {
	vtyshCheck(t, PeerConfig{ASN: 64513, RouterID: NodeAddr(3), RouterASN: 64513, BFD: true, Announce: []Announcement{
		{Prefix: "203.0.113.77/32", Communities: []string{"64500:77", "no-export"}, LocalPref: 150},
		{Prefix: "198.51.100.0/24"},
	}}.Render())
}

// The router configuration must match what each scenario's own manifests
// expect: their BGPPeer's peerASN is the router's AS, their myASN the AS
// the router expects from the nodes, their peerAddress the router.
func TestScenarioRoutersMatchTheirManifests(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ScenariosDir(root); err != nil {
		t.Skip(err)
	}
	for _, name := range ScenarioNames() {
		sc := Scenarios[name]
		if sc.Unsupported != "" {
			if _, err := LookupScenario(name); err == nil || !strings.Contains(err.Error(), "not supported") {
				t.Errorf("%s: unsupported scenario accepted: %v", name, err)
			}
			continue
		}
		paths, err := sc.ManifestPaths(root)
		if err != nil {
			t.Fatal(err)
		}
		cfg := sc.Router(3)
		peers := 0
		for _, p := range paths {
			data, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			for _, doc := range bytes.Split(data, []byte("\n---")) {
				var obj struct {
					Kind string `json:"kind"`
					Spec struct {
						MyASN       uint32 `json:"myASN"`
						PeerASN     uint32 `json:"peerASN"`
						PeerAddress string `json:"peerAddress"`
						BFDProfile  string `json:"bfdProfile"`
					} `json:"spec"`
				}
				if err := yaml.Unmarshal(doc, &obj); err != nil {
					t.Fatalf("%s: %v", p, err)
				}
				if obj.Kind != "BGPPeer" {
					continue
				}
				peers++
				s := obj.Spec
				if s.PeerASN != cfg.ASN || s.PeerAddress != RouterAddr || s.MyASN != cfg.Peers[0].ASN {
					t.Errorf("%s: BGPPeer %+v, router AS %d at %s expecting AS %d", name, s, cfg.ASN, RouterAddr, cfg.Peers[0].ASN)
				}
				if (s.BFDProfile != "") != cfg.Peers[0].BFD {
					t.Errorf("%s: BGPPeer BFD profile %q, router BFD %v", name, s.BFDProfile, cfg.Peers[0].BFD)
				}
			}
		}
		if peers == 0 && name != "l2-and-bgp-basics" {
			t.Errorf("%s: no BGPPeer in %v", name, paths)
		}
	}
}

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "frr84", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// The parsers read FRR 8.4's real output (captured from the lab's router).
func TestParseRouteIBGP(t *testing.T) {
	rt, err := parseRoute(readTestdata(t, "bgp-prefix-ibgp.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := Path{NextHop: "198.18.0.3", Peer: "198.18.0.3", Origin: "IGP", LocalPref: 150,
		Communities: []string{"64513:100", "no-export"}, Best: true, Valid: true}
	if rt.Prefix != "203.0.113.77/32" || len(rt.Paths) != 1 || !pathEqual(rt.Paths[0], want) {
		t.Errorf("got %+v, want one path %+v", rt, want)
	}
	if got := rt.NextHops(); !slices.Equal(got, []string{"198.18.0.3"}) {
		t.Errorf("next hops %v", got)
	}
}

func TestParseRouteECMP(t *testing.T) {
	rt, err := parseRoute(readTestdata(t, "bgp-prefix-ecmp.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(rt.Paths) != 2 {
		t.Fatalf("paths %+v", rt.Paths)
	}
	for _, p := range rt.Paths {
		if p.ASPath != "64512" || p.LocalPref != 100 || !slices.Equal(p.Communities, []string{"64512:200"}) || !(p.Best || p.Multipath) {
			t.Errorf("path %+v", p)
		}
	}
	if got := rt.NextHops(); !slices.Equal(got, []string{"198.18.0.1", "198.18.0.2"}) {
		t.Errorf("ECMP next hops %v", got)
	}
	empty, err := parseRoute([]byte("{\n}\n"))
	if err != nil || len(empty.Paths) != 0 {
		t.Errorf("unknown prefix: %+v %v", empty, err)
	}
}

func TestParseRIBAndSummary(t *testing.T) {
	routes, err := parseRIB(readTestdata(t, "bgp-rib-ecmp.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) != 1 || routes[0].Prefix != "198.51.100.1/32" || !slices.Equal(routes[0].NextHops(), []string{"198.18.0.1", "198.18.0.2"}) {
		t.Errorf("RIB %+v", routes)
	}
	var raw map[string]struct {
		Peers map[string]Neighbor `json:"peers"`
	}
	if err := json.Unmarshal(readTestdata(t, "bgp-summary.json"), &raw); err != nil {
		t.Fatal(err)
	}
	ns := parseNeighbors(raw)
	if len(ns) != 3 || ns[0].Address != "198.18.0.1" || !ns[0].Established() || ns[0].RemoteAS != 64512 || ns[0].PrefixesReceived != 1 || ns[2].Established() {
		t.Errorf("neighbours %+v", ns)
	}
}

func TestParseBFDAndFIB(t *testing.T) {
	var peers []BFDPeer
	if err := json.Unmarshal(readTestdata(t, "bfd-peers.json"), &peers); err != nil {
		t.Fatal(err)
	}
	if len(peers) != 1 || peers[0].Peer != "198.18.0.3" || !peers[0].Up() || peers[0].ReceiveMS != 300 || peers[0].Multiplier != 3 {
		t.Errorf("BFD %+v", peers)
	}
	nh, err := parseIPRouteNextHops(readTestdata(t, "iproute-ecmp.json"))
	if err != nil || !slices.Equal(nh, []string{"198.18.0.1", "198.18.0.2"}) {
		t.Errorf("FIB next hops %v %v", nh, err)
	}
	nh, err = parseIPRouteNextHops([]byte(`[{"dst":"203.0.113.77","nhid":6,"gateway":"198.18.0.3","dev":"eth0","protocol":"bgp","metric":20,"flags":[]}]`))
	if err != nil || !slices.Equal(nh, []string{"198.18.0.3"}) {
		t.Errorf("single next hop %v %v", nh, err)
	}
}

func pathEqual(a, b Path) bool {
	return a.NextHop == b.NextHop && a.Peer == b.Peer && a.ASPath == b.ASPath && a.Origin == b.Origin &&
		a.LocalPref == b.LocalPref && slices.Equal(a.Communities, b.Communities) && a.Best == b.Best && a.Multipath == b.Multipath && a.Valid == b.Valid
}

func TestParseHelpers(t *testing.T) {
	out := "ARPING 198.18.0.240 from 198.18.0.201 eth1\n" +
		"Unicast reply from 198.18.0.240 [02:18:00:00:00:02]  0.571ms\n" +
		"Unicast reply from 198.18.0.240 [02:18:00:00:00:01]  0.601ms\n" +
		"Unicast reply from 198.18.0.240 [02:18:00:00:00:02]  0.431ms\n" +
		"Sent 3 probes (3 broadcast(s))\nReceived 3 response(s)\n"
	if got := parseARPing(out); !slices.Equal(got, []string{"02:18:00:00:00:01", "02:18:00:00:00:02"}) {
		t.Errorf("arping answers %v", got)
	}
	target := netip.MustParseAddr("2001:db8:18::f0").As16()
	na := append([]byte{136, 0, 0, 0, 0x60, 0, 0, 0}, target[:]...)
	na = append(na, 2, 1, 0x02, 0x18, 0, 0, 0, 0x03)
	if got := parseNA(na, target); got != "02:18:00:00:00:03" {
		t.Errorf("NA target MAC %q", got)
	}
	other := netip.MustParseAddr("2001:db8:18::f1").As16()
	if got := parseNA(na, other); got != "" {
		t.Errorf("NA for another target accepted: %q", got)
	}
	if inst, d, ok := frrRecord("frr-lbl-e2e-peer3-bfdd"); !ok || inst != "lbl-e2e-peer3" || d != "bfdd" {
		t.Errorf("frrRecord: %q %q %v", inst, d, ok)
	}
	if _, _, ok := frrRecord("kube-apiserver"); ok {
		t.Errorf("frrRecord accepted a non-FRR record")
	}
}

func TestClientRefusesForeignAddresses(t *testing.T) {
	for _, a := range []string{"192.0.2.1", "10.1.2.3", "fd00::2"} {
		if _, err := (Client{}).ARP(t.Context(), a); err == nil || !strings.Contains(err.Error(), "outside the lab") {
			t.Errorf("ARP %s: %v", a, err)
		}
		if err := (Client{}).Poke(a); err == nil || !strings.Contains(err.Error(), "outside the lab") {
			t.Errorf("Poke %s: %v", a, err)
		}
	}
}

func TestProcRecords(t *testing.T) {
	dir := t.TempDir()
	self, err := procOf("self", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if !self.Alive() {
		t.Fatal("own process not alive")
	}
	// A recycled PID (other start time) is not ours.
	if (Proc{PID: self.PID, Start: self.Start + 1}).Alive() {
		t.Error("a PID with another start time counts as alive")
	}
	if err := writeProc(dir, self); err != nil {
		t.Fatal(err)
	}
	got, ok := readProc(dir, "self")
	if !ok || got != self {
		t.Errorf("read back %+v", got)
	}
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	p, err := procOf("sleep", cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Stop(2 * time.Second); err != nil {
		t.Fatal(err)
	}
	<-done
	if p.Alive() {
		t.Error("stopped process alive")
	}
}

// The repository's copies of the seed scenarios (config/samples/scenarios,
// what `make lab` and the tests read) stay identical to the seeds where
// those are beside the repository (the folder shared/scenarios next to the
// checkout); a clone alone skips this. Scenarios the repository adds of its
// own (a top-level folder the seeds do not have, such as calico-bgp) are
// not seeds and are not compared; a file added inside a seed's folder is.
func TestScenarioCopiesMatchTheSeeds(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	seeds := filepath.Join(filepath.Dir(root), "shared", "scenarios")
	if _, err := os.Stat(seeds); err != nil {
		t.Skipf("no seed scenarios beside the repository: %v", err)
	}
	copies := filepath.Join(root, "config", "samples", "scenarios")
	files := map[string]bool{}
	for _, dir := range []string{seeds, copies} {
		err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			rel, _ := filepath.Rel(dir, p)
			files[rel] = true
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	seedTop := func(rel string) bool {
		top := strings.SplitN(filepath.ToSlash(rel), "/", 2)[0]
		_, err := os.Stat(filepath.Join(seeds, top))
		return err == nil
	}
	for rel := range files {
		a, errA := os.ReadFile(filepath.Join(seeds, rel))
		b, errB := os.ReadFile(filepath.Join(copies, rel))
		switch {
		case errA != nil && !seedTop(rel):
			// The repository's own scenario, not a copy of a seed.
		case errA != nil:
			t.Errorf("%s is in config/samples/scenarios but not in the seeds", rel)
		case errB != nil:
			t.Errorf("%s is missing from config/samples/scenarios (copy it from %s)", rel, seeds)
		case !bytes.Equal(a, b):
			t.Errorf("config/samples/scenarios/%s differs from the seed %s", rel, filepath.Join(seeds, rel))
		}
	}
}
