package mustgather

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	lbstackv1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/assigner"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/lbservice"
	"github.com/lbstack/lbstack/pkg/version"
)

// writeSummary writes summary.txt.
func (g *gatherer) writeSummary() {
	g.mu.Lock()
	failures := len(g.failures)
	g.mu.Unlock()
	text := renderSummary(&g.snap, g.res, failures, time.Now())
	g.writeFile("summary.txt", []byte(text))
}

// renderSummary is summary.txt: the stack's health, each Service's
// address, pool and announcing nodes (or the likely cause of having none),
// each peer's session per node, configuration errors, and what could not
// be collected. Pure: everything comes from the snapshot.
func renderSummary(s *snapshot, res Result, failures int, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "lbstack must-gather summary, %s (%s)\n", now.UTC().Format(time.RFC3339), version.String())
	section(&b, "Stack")
	metallbs := typed[v1beta1.MetalLB](s.get("metallb.io", "metallbs"))
	fmt.Fprintf(&b, "namespace: %s (found by %s)\n", res.Namespace, res.Found)
	if !res.OperatorInstalled {
		b.WriteString("OPERATOR NOT INSTALLED: the metallb.io API is not served and no OLM CSV or Subscription names lbstack.\n")
		b.WriteString("Install it (docs/install.md), then create one MetalLB object; everything below is what the cluster has without it.\n")
	}
	var lbClass string
	switch {
	case len(metallbs) == 0 && res.OperatorInstalled:
		b.WriteString("NO MetalLB OBJECT: the operator runs nothing until one exists (create metallb-system/metallb).\n")
	case len(metallbs) > 0:
		for _, m := range metallbs {
			backend := string(m.Spec.BGPType)
			if backend == "" {
				backend = "frr (default)"
			}
			fmt.Fprintf(&b, "MetalLB %s/%s: bgpBackend %s; %s\n", m.Namespace, m.Name, backend, conditions(m.Status.Conditions))
		}
		lbClass = metallbs[0].Spec.LoadBalancerClass
		if lbClass != "" {
			fmt.Fprintf(&b, "serves only Services with spec.loadBalancerClass %q\n", lbClass)
		}
	}
	for _, csv := range s.csvs {
		if ownsMetalLB(&csv) {
			fmt.Fprintf(&b, "OLM: ClusterServiceVersion %s phase %s\n", csv.GetName(), nested(&csv, "status", "phase"))
		}
	}
	deps, dss := s.workloads()
	for _, d := range deps {
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		fmt.Fprintf(&b, "deployment %s: %d/%d ready%s\n", d.Name, d.Status.ReadyReplicas, want, health(d.Status.ReadyReplicas >= want))
	}
	for _, d := range dss {
		fmt.Fprintf(&b, "daemonset %s: %d/%d ready%s\n", d.Name, d.Status.NumberReady, d.Status.DesiredNumberScheduled, health(d.Status.NumberReady >= d.Status.DesiredNumberScheduled))
	}
	for _, p := range s.pods {
		if why := podTrouble(&p); why != "" {
			fmt.Fprintf(&b, "pod %s (node %s): %s\n", p.Name, p.Spec.NodeName, why)
		}
	}

	section(&b, "Configuration")
	built := buildConfig(s)
	if err := built.Err(); err != nil && built.Config == nil {
		fmt.Fprintf(&b, "REFUSED: the metallb.io objects do not form a valid configuration; the components keep the last valid one:\n%s\n", indent(err.Error()))
	} else if err != nil {
		fmt.Fprintf(&b, "BGPPEERS REFUSED: %s; every other object is in use, and each speaker leaves these peers out or runs their last valid version (see its ConfigurationState):\n%s\n",
			strings.Join(built.DisabledPeers, ", "), indent(err.Error()))
	}
	if built.Config != nil {
		fmt.Fprintf(&b, "valid: %d pool(s), %d BGP peer(s), %d BGP and %d L2 advertisement(s)\n",
			len(built.Config.Pools), len(built.Config.Peers), countBGPAdvs(s), len(s.get("metallb.io", "l2advertisements")))
	}
	for _, w := range built.Warnings {
		fmt.Fprintf(&b, "warning: %s\n", w.Error())
	}
	for _, cs := range typed[v1beta1.ConfigurationState](s.get("metallb.io", "configurationstates")) {
		line := fmt.Sprintf("ConfigurationState %s: %s", cs.Name, orDash(string(cs.Status.Result)))
		if cs.Status.ErrorSummary != "" {
			line += ": " + cs.Status.ErrorSummary
		}
		b.WriteString(line + "\n")
	}

	section(&b, "LoadBalancer Services")
	writeServices(&b, s, built, lbClass, res.OperatorInstalled)

	section(&b, "BGP sessions")
	writeSessions(&b, s)

	if srs := typed[lbstackv1alpha1.SymmetricRouting](s.get("lbstack.io", "symmetricroutings")); len(srs) > 0 || s.symChecked {
		section(&b, "Symmetric routing")
		if s.symChecked {
			b.WriteString("checks (pkg/symrouting, as the operator runs them; symmetric-routing/findings.txt): ")
			b.WriteString(formatFindings(s.symFindings))
		}
		for _, sr := range srs {
			fmt.Fprintf(&b, "SymmetricRouting %s: %s\n", sr.Name, conditions(sr.Status.Conditions))
			for _, f := range sr.Status.Findings {
				fmt.Fprintf(&b, "  %s\n", f)
			}
		}
		for _, es := range s.get("k8s.ovn.org", "egressservices") {
			fmt.Fprintf(&b, "EgressService %s/%s: network %q, host %s\n", es.GetNamespace(), es.GetName(), nested(&es, "spec", "network"), orDash(nested(&es, "status", "host")))
		}
	}

	calicoSection(&b, s)

	section(&b, "Collection")
	if failures == 0 {
		b.WriteString("everything was collected\n")
	} else {
		fmt.Fprintf(&b, "%d item(s) could not be collected: see errors.txt\n", failures)
	}
	return b.String()
}

func section(b *strings.Builder, title string) {
	fmt.Fprintf(b, "\n== %s\n", title)
}

func health(ok bool) string {
	if ok {
		return ""
	}
	return "  <- NOT READY"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimRight(s, "\n"), "\n", "\n  ")
}

// conditions renders conditions as Type=Status (Reason: message).
func conditions(cs []metav1.Condition) string {
	if len(cs) == 0 {
		return "no conditions reported"
	}
	var parts []string
	for _, c := range cs {
		p := fmt.Sprintf("%s=%s", c.Type, c.Status)
		if c.Status != metav1.ConditionTrue || c.Type == "Degraded" {
			if c.Message != "" {
				p += fmt.Sprintf(" (%s: %s)", c.Reason, c.Message)
			}
		}
		parts = append(parts, p)
	}
	return strings.Join(parts, ", ")
}

// podTrouble says what is wrong with a pod, or "".
func podTrouble(p *corev1.Pod) string {
	var why []string
	if p.Status.Phase != corev1.PodRunning && p.Status.Phase != corev1.PodSucceeded {
		why = append(why, "phase "+string(p.Status.Phase))
	}
	for _, c := range p.Status.ContainerStatuses {
		if !c.Ready {
			w := "container " + c.Name + " not ready"
			if c.State.Waiting != nil && c.State.Waiting.Reason != "" {
				w += " (" + c.State.Waiting.Reason + ")"
			}
			why = append(why, w)
		}
		if c.RestartCount > 0 {
			w := fmt.Sprintf("container %s restarted %d time(s)", c.Name, c.RestartCount)
			if t := c.LastTerminationState.Terminated; t != nil {
				w += fmt.Sprintf(", last exit %d (%s)", t.ExitCode, t.Reason)
			}
			why = append(why, w+": see its previous log")
		}
	}
	return strings.Join(why, "; ")
}

// buildConfig runs the same validation the webhook and the components
// run on the collected objects.
func buildConfig(s *snapshot) config.Result {
	res := config.Resources{
		Pools:       typed[v1beta1.IPAddressPool](s.get("metallb.io", "ipaddresspools")),
		Peers:       typed[v1beta2.BGPPeer](s.get("metallb.io", "bgppeers")),
		BGPAdvs:     typed[v1beta1.BGPAdvertisement](s.get("metallb.io", "bgpadvertisements")),
		L2Advs:      typed[v1beta1.L2Advertisement](s.get("metallb.io", "l2advertisements")),
		BFDProfiles: typed[v1beta1.BFDProfile](s.get("metallb.io", "bfdprofiles")),
		Communities: typed[v1beta1.Community](s.get("metallb.io", "communities")),
		Secrets:     s.secrets,
		Nodes:       s.nodes,
		Namespaces:  s.namespaces,
	}
	opts := config.Options{Namespace: s.namespace}
	if m := typed[v1beta1.MetalLB](s.get("metallb.io", "metallbs")); len(m) > 0 {
		opts.BGPBackend = m[0].Spec.BGPType
	}
	return config.Build(res, opts)
}

func countBGPAdvs(s *snapshot) int { return len(s.get("metallb.io", "bgpadvertisements")) }

// writeServices is the Services table: address, pool, announcing nodes,
// or why there is no address.
func writeServices(b *strings.Builder, s *snapshot, built config.Result, lbClass string, installed bool) {
	bgpBy := map[string][]string{}
	for _, st := range typed[v1beta1.ServiceBGPStatus](s.get("metallb.io", "servicebgpstatuses")) {
		key := st.Status.ServiceNamespace + "/" + st.Status.ServiceName
		bgpBy[key] = append(bgpBy[key], fmt.Sprintf("%s (peers %s)", st.Status.Node, strings.Join(st.Status.Peers, ",")))
	}
	l2By := map[string][]string{}
	for _, st := range typed[v1beta1.ServiceL2Status](s.get("metallb.io", "servicel2statuses")) {
		key := st.Status.ServiceNamespace + "/" + st.Status.ServiceName
		var ifs []string
		for _, i := range st.Status.Interfaces {
			ifs = append(ifs, i.Name)
		}
		l2By[key] = append(l2By[key], fmt.Sprintf("%s (%s)", st.Status.Node, orDash(strings.Join(ifs, ","))))
	}
	var svcs []*corev1.Service
	for i := range s.services {
		if s.services[i].Spec.Type == corev1.ServiceTypeLoadBalancer {
			svcs = append(svcs, &s.services[i])
		}
	}
	if len(svcs) == 0 {
		b.WriteString("none\n")
		return
	}
	sort.Slice(svcs, func(i, j int) bool {
		return svcs[i].Namespace+"/"+svcs[i].Name < svcs[j].Namespace+"/"+svcs[j].Name
	})
	all := make([]*corev1.Service, len(s.services))
	for i := range s.services {
		all[i] = &s.services[i]
	}
	nsLabels := map[string]map[string]string{}
	for _, ns := range s.namespaces {
		nsLabels[ns.Name] = ns.Labels
	}
	in := assigner.DiagnoseInput{Config: built.Config, LBClass: lbClass, Services: all, NamespaceLabels: nsLabels}
	if err := built.Err(); err != nil && built.Config == nil {
		in.ConfigError = err.Error()
	}
	why := assigner.Diagnose(in)

	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SERVICE\tADDRESS\tPOOL\tANNOUNCED BY")
	var causes []string
	for _, svc := range svcs {
		key := svc.Namespace + "/" + svc.Name
		var ips []string
		for _, ing := range svc.Status.LoadBalancer.Ingress {
			if ing.IP != "" {
				ips = append(ips, ing.IP)
			}
		}
		if len(ips) == 0 {
			fmt.Fprintf(tw, "%s\t<none>\t-\t-\n", key)
			cause := why[key]
			if !installed {
				cause = "lbstack is not installed: nothing assigns addresses to LoadBalancer Services"
			}
			if cause == "" {
				cause = "unknown: the controller's replay gives it an address; see the controller's log"
			}
			line := fmt.Sprintf("%s has no address. Likely cause: %s", key, cause)
			if ev := lastWarning(s.serviceEvents[key]); ev != "" {
				line += "\n  latest warning event: " + ev
			}
			causes = append(causes, line)
			continue
		}
		pool := svc.Annotations[lbservice.AnnotationIPAllocatedFromPool]
		if pool == "" && built.Config != nil {
			if a, err := netip.ParseAddr(ips[0]); err == nil {
				if p := built.Config.PoolFor(a); p != nil {
					pool = p.Name
				}
			}
		}
		var by []string
		if n := bgpBy[key]; len(n) > 0 {
			sort.Strings(n)
			by = append(by, "bgp: "+strings.Join(n, ", "))
		}
		if n := l2By[key]; len(n) > 0 {
			sort.Strings(n)
			by = append(by, "l2: "+strings.Join(n, ", "))
		}
		announced := strings.Join(by, "; ")
		if announced == "" {
			announced = "NOBODY (no ServiceBGPStatus or ServiceL2Status: no advertisement covers the pool, no node may announce it, or no session is Established)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", key, strings.Join(ips, ","), orDash(pool), announced)
	}
	_ = tw.Flush()
	for _, c := range causes {
		b.WriteString(c + "\n")
	}
}

// lastWarning is the newest Warning event's "Reason: message".
func lastWarning(evs []corev1.Event) string {
	for i := len(evs) - 1; i >= 0; i-- {
		if evs[i].Type == corev1.EventTypeWarning {
			return evs[i].Reason + ": " + evs[i].Message
		}
	}
	return ""
}

// writeSessions is each node's BGP sessions, from the speaker's own view
// (or the FRR reloader's report when the speaker's was not collected).
func writeSessions(b *strings.Builder, s *snapshot) {
	nodes := map[string]bool{}
	for n := range s.speakerState {
		nodes[n] = true
	}
	for n := range s.reloaderStatus {
		nodes[n] = true
	}
	if len(nodes) == 0 {
		b.WriteString("no speaker reported its sessions (see errors.txt)\n")
		return
	}
	names := make([]string, 0, len(nodes))
	for n := range nodes {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(b, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tPEER\tADDRESS\tVRF\tSTATE\tSINCE\tPREFIXES\tSOURCE")
	var bfd []string
	for _, n := range names {
		if st := s.speakerState[n]; st != nil {
			if len(st.Sessions) == 0 {
				fmt.Fprintf(tw, "%s\t(none)\t\t\t\t\t\tspeaker\n", n)
			}
			for _, ss := range st.Sessions {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\tspeaker\n", n, ss.Name, ss.PeerAddress, orDash(ss.VRF), ss.State, since(ss.Since), ss.Advertised)
			}
			if st.ConfigError != "" {
				fmt.Fprintf(tw, "%s\t(config refused: %s)\t\t\t\t\t\tspeaker\n", n, st.ConfigError)
			}
		} else if rs := s.reloaderStatus[n]; rs != nil {
			for _, ss := range rs.Sessions {
				addr := ""
				if ss.PeerAddr.IsValid() {
					addr = ss.PeerAddr.String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%d\tfrr-reloader\n", n, ss.Name, addr, orDash(ss.VRF), ss.State, since(ss.Since), ss.Advertised)
			}
		}
		if rs := s.reloaderStatus[n]; rs != nil {
			if rs.Error != "" {
				fmt.Fprintf(tw, "%s\t(FRR reload failing: %s)\t\t\t\t\t\tfrr-reloader\n", n, rs.Error)
			}
			for _, p := range rs.BFDPeers {
				bfd = append(bfd, fmt.Sprintf("%s: peer %s vrf %s status %s (rx %d ms, tx %d ms, multiplier %d)", n, p.Peer, orDash(p.VRF), p.Status, p.ReceiveInterval, p.TransmitInterval, p.DetectMultiplier))
			}
		}
	}
	_ = tw.Flush()
	if len(bfd) > 0 {
		b.WriteString("BFD peers:\n")
		for _, l := range bfd {
			b.WriteString("  " + l + "\n")
		}
	}
}

func since(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}
