package mustgather

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"

	"github.com/lbstack/lbstack/pkg/speaker"
)

// frrCommands are the vtysh commands run in every speaker's FRR container,
// each with the file it goes to. The VRF forms matter: a VRF-bound peer
// shows nowhere else.
var frrCommands = []struct{ file, cmd string }{
	{"running-config.txt", "show running-config"},
	{"bgp-summary.json", "show bgp vrf all summary json"},
	{"bgp-ipv4.json", "show bgp vrf all ipv4 json"},
	{"bgp-ipv6.json", "show bgp vrf all ipv6 json"},
	{"bgp-neighbors.json", "show bgp vrf all neighbors json"},
	// bfdd (FRR 8.4) takes "vrf all" for a VRF named "all" and answers
	// []: the default VRF's peers here, each VRF's in bfd-peers-vrf-*.json.
	{"bfd-peers.json", "show bfd peers json"},
}

// vrfLine finds the VRFs of a running configuration: "vrf NAME" blocks
// and "router bgp ASN vrf NAME" instances.
var vrfLine = regexp.MustCompile(`(?m)^(?:vrf (\S+)|router bgp \d+ vrf (\S+))\s*$`)

// configVRFs lists the VRFs a running configuration names, sorted.
func configVRFs(runningConfig []byte) []string {
	seen := map[string]bool{}
	for _, m := range vrfLine.FindAllSubmatch(runningConfig, -1) {
		name := string(m[1]) + string(m[2])
		if name != "" && name != "default" {
			seen[name] = true
		}
	}
	out := make([]string, 0, len(seen))
	for v := range seen {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// frrFiles are read in the speaker pod's FRR containers: FRR's own
// configuration in frr, the handoff between the speaker and the reloader
// (which FRR does not mount) in reloader.
var frrFiles = []struct{ file, container, path string }{
	{"frr.conf", "frr", "/etc/frr/frr.conf"},                                     // the last text FRR accepted
	{"rendered.conf", "reloader", "/etc/lbstack-frr/lbstack-rendered.conf"},      // rendered from the newest desired state
	{"reloader-status.json", "reloader", "/etc/lbstack-frr/lbstack-status.json"}, // the reloader's report
	{"desired-state.json", "reloader", "/etc/lbstack-frr/lbstack-desired.json"},  // what the speaker asked for
}

// routingCommands show the node's policy routing; speakers run in the
// host's network namespace, so any of their containers sees the node's.
// FRR's image has iproute2; the speaker image has only lbstack, whose
// node-routing prints the same from netlink.
var routingCommands = []struct {
	file     string
	ip, self []string
}{
	{"ip-rule.txt", []string{"ip", "rule"}, []string{"/usr/bin/lbstack", "node-routing", "rules"}},
	{"ip6-rule.txt", []string{"ip", "-6", "rule"}, []string{"/usr/bin/lbstack", "node-routing", "rules", "--family", "6"}},
	{"ip-route-all.txt", []string{"ip", "route", "show", "table", "all"}, []string{"/usr/bin/lbstack", "node-routing", "routes"}},
	{"ip6-route-all.txt", []string{"ip", "-6", "route", "show", "table", "all"}, []string{"/usr/bin/lbstack", "node-routing", "routes", "--family", "6"}},
}

// speakerPods are the pods of the speaker DaemonSet.
func (g *gatherer) speakerPods() []*corev1.Pod {
	var out []*corev1.Pod
	for i := range g.snap.pods {
		p := &g.snap.pods[i]
		if p.Labels["component"] == "speaker" {
			out = append(out, p)
			continue
		}
		for _, o := range p.OwnerReferences {
			if o.Kind == "DaemonSet" && strings.Contains(o.Name, "speaker") {
				out = append(out, p)
				break
			}
		}
	}
	return out
}

// gatherSpeakers collects, from every speaker pod through exec, FRR's
// state and configuration files, the node's routing tables and the
// speaker's own view. Pods are visited four at a time.
func (g *gatherer) gatherSpeakers(ctx context.Context) {
	pods := g.speakerPods()
	if len(pods) == 0 {
		g.writeFile("speakers/NONE.txt", []byte(fmt.Sprintf("No speaker pod in namespace %s.\n", g.res.Namespace)))
		return
	}
	sem := make(chan struct{}, 4)
	var wg sync.WaitGroup
	for _, p := range pods {
		wg.Add(1)
		go func(p *corev1.Pod) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			g.gatherSpeaker(ctx, p)
		}(p)
	}
	wg.Wait()
}

func (g *gatherer) gatherSpeaker(ctx context.Context, p *corev1.Pod) {
	node := p.Spec.NodeName
	if node == "" {
		node = "unscheduled-" + p.Name
	}
	dir := "speakers/" + node + "/"
	g.writeFile(dir+"pod.txt", []byte(fmt.Sprintf("pod: %s/%s\nphase: %s\n", p.Namespace, p.Name, p.Status.Phase)))
	if p.Status.Phase != corev1.PodRunning {
		g.fail(dir, fmt.Errorf("speaker pod %s/%s on %s is %s: nothing can be run in it", p.Namespace, p.Name, node, p.Status.Phase))
		return
	}
	has := map[string]bool{}
	for _, c := range p.Spec.Containers {
		has[c.Name] = true
	}
	if has["frr"] {
		var running []byte
		vtysh := func(file, cmd string) {
			r := g.exec(ctx, p.Namespace, p.Name, "frr", "vtysh", "-c", cmd)
			if r.Err != nil {
				g.fail(dir+"frr/"+file, fmt.Errorf("vtysh -c %q in %s/%s: %w", cmd, p.Namespace, p.Name, describeExecError(r)))
			}
			g.writeText(dir+"frr/"+file, r.Stdout)
			if file == "running-config.txt" {
				running = r.Stdout
			}
		}
		for _, c := range frrCommands {
			vtysh(c.file, c.cmd)
		}
		for _, vrf := range configVRFs(running) {
			vtysh("bfd-peers-vrf-"+vrf+".json", "show bfd vrf "+vrf+" peers json")
		}
		for _, f := range frrFiles {
			r := g.exec(ctx, p.Namespace, p.Name, f.container, "cat", f.path)
			if r.Err != nil {
				g.fail(dir+"frr/"+f.file, fmt.Errorf("cat %s in container %s of %s/%s: %w", f.path, f.container, p.Namespace, p.Name, describeExecError(r)))
				continue
			}
			g.writeText(dir+"frr/"+f.file, r.Stdout)
			if f.file == "reloader-status.json" {
				g.snap.setReloaderStatus(node, r.Stdout)
			}
		}
	} else {
		g.writeFile(dir+"frr/NONE.txt", []byte("This speaker runs the native (GoBGP) backend: there is no FRR container.\n"))
	}
	for _, c := range routingCommands {
		container, argv := "speaker", c.self
		if has["frr"] {
			container, argv = "frr", c.ip
		}
		r := g.exec(ctx, p.Namespace, p.Name, container, argv...)
		if r.Err != nil {
			g.fail(dir+"node/"+c.file, fmt.Errorf("%s in container %s of %s/%s: %w", strings.Join(argv, " "), container, p.Namespace, p.Name, describeExecError(r)))
			continue
		}
		g.writeText(dir+"node/"+c.file, r.Stdout)
	}
	if !has["speaker"] {
		g.fail(dir+"speaker-state.json", fmt.Errorf("pod %s/%s has no speaker container", p.Namespace, p.Name))
		return
	}
	url := "http://" + debugStateAddr(p) + speaker.DebugStatePath
	r := g.exec(ctx, p.Namespace, p.Name, "speaker", "/usr/bin/lbstack", "speaker-state", "--url", url)
	if r.Err != nil {
		g.fail(dir+"speaker-state.json", fmt.Errorf("lbstack speaker-state in %s/%s: %w", p.Namespace, p.Name, describeExecError(r)))
		return
	}
	g.writeText(dir+"speaker-state.json", r.Stdout)
	var st speaker.DebugState
	if err := json.Unmarshal(r.Stdout, &st); err != nil {
		g.fail(dir+"speaker-state.json", fmt.Errorf("not the speaker's state: %w", err))
		return
	}
	g.snap.setSpeakerState(node, &st)
}

// debugStateAddr is where the speaker serves its own view: the loopback
// address of its --health-probe-bind-address flag, else the default.
func debugStateAddr(p *corev1.Pod) string {
	for _, c := range p.Spec.Containers {
		if c.Name != "speaker" {
			continue
		}
		for _, a := range append(append([]string(nil), c.Command...), c.Args...) {
			if addr, ok := strings.CutPrefix(a, "--health-probe-bind-address="); ok && addr != "" && addr != "0" {
				return addr
			}
		}
	}
	return speaker.DefaultLocalAddr
}
