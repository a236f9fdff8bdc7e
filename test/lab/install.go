package lab

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// StackNamespace is where lbstack (like MetalLB) lives.
const StackNamespace = "metallb-system"

// Kubectl runs the lab's kubectl as the admin and returns its output; an
// error carries stderr.
func (l *Lab) Kubectl(ctx context.Context, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, l.State.Kubectl(), append([]string{"--kubeconfig", l.State.Kubeconfig()}, args...)...)
	cmd.Dir = l.State.Root
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	return out.String(), nil
}

// InstallCRDs installs the metallb.io CRDs alone, as a user does before
// lbstack itself exists, and waits until they are served. Once
// config/default exists, InstallStack installs them (with its
// conversion-webhook patch, which a later config/crd apply would fight).
func (l *Lab) InstallCRDs(ctx context.Context) error {
	if _, err := l.Kubectl(ctx, "apply", "--server-side", "-k", filepath.Join(l.State.Root, "config", "crd")); err != nil {
		return err
	}
	return l.waitCRDs(ctx)
}

func (l *Lab) stackInstallable() bool {
	_, err := os.Stat(filepath.Join(l.State.Root, "config", "default", "kustomization.yaml"))
	return err == nil
}

func (l *Lab) waitCRDs(ctx context.Context) error {
	_, err := l.Kubectl(ctx, "wait", "--for=condition=Established", "--timeout=60s", "crd", "--all")
	return err
}

// Missing is a part of lbstack that does not exist yet, and what the user
// sees because of it.
type Missing struct{ Part, Consequence string }

// NotBuilt lists the parts of lbstack that do not exist yet, by asking the
// binary and looking at the repository, so the message stays true as
// issues land.
func (l *Lab) NotBuilt(ctx context.Context) []Missing {
	var out []Missing
	// `lbstack --help` lists every subcommand; one that has not landed
	// says "(not built yet)" in its line.
	help, _ := exec.CommandContext(ctx, l.State.LbstackBinary, "--help").CombinedOutput()
	built := map[string]bool{}
	for _, line := range strings.Split(string(help), "\n") {
		f := strings.Fields(line)
		if len(f) > 1 && strings.HasPrefix(line, "  ") && !strings.HasSuffix(strings.TrimSpace(line), "(not built yet)") {
			built[f[0]] = true
		}
	}
	for _, m := range []Missing{
		{"lbstack operator", "nothing turns the MetalLB object into a controller and speakers"},
		{"lbstack controller", "Services of type LoadBalancer stay <pending>"},
		{"lbstack speaker", "nothing announces service addresses: the router learns no routes, nobody answers ARP/NDP"},
	} {
		if !built[strings.TrimPrefix(m.Part, "lbstack ")] {
			out = append(out, m)
		}
	}
	if !l.stackInstallable() {
		out = append(out, Missing{"config/default", "lbstack cannot be installed the way a user does (`kubectl apply -k config/default`)"})
	}
	return out
}

// InstallStack installs lbstack the way a user does, as far as it exists:
// `kubectl apply -k config/default` when that exists.
func (l *Lab) InstallStack(ctx context.Context) (bool, error) {
	if !l.stackInstallable() {
		return false, nil
	}
	// Two installs would fight over the operator's Deployment.
	if sub, err := l.Kubectl(ctx, "-n", StackNamespace, "get", "subscriptions.operators.coreos.com", "lbstack", "--ignore-not-found", "-o", "name"); err == nil && strings.TrimSpace(sub) != "" {
		return true, fmt.Errorf("lbstack runs from OLM in this lab (Subscription %s/lbstack): `make lab-down` first, or delete that Subscription and its CSV, before installing with kustomize", StackNamespace)
	}
	if _, err := l.Kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-k", filepath.Join(l.State.Root, "config", "default")); err != nil {
		return false, err
	}
	if err := l.waitCRDs(ctx); err != nil {
		return true, err
	}
	// As a user does before applying configuration: wait for the stack's
	// Deployments (its webhooks among them) to be available.
	if _, err := l.Kubectl(ctx, "-n", StackNamespace, "wait", "--for=condition=Available", "deployment", "--all", "--timeout=180s"); err != nil {
		pods, _ := l.Kubectl(ctx, "-n", StackNamespace, "get", "pods", "-o", "wide")
		return true, fmt.Errorf("lbstack's Deployments not available after 3 minutes (see `kubectl -n metallb-system logs POD`):\n%s%w", pods, err)
	}
	return true, nil
}

// UninstallStack removes what InstallStack installed, as `make undeploy`
// does: every MetalLB object first (the operator removes what it
// deployed), then config/default (its CRDs, and with them the scenario's
// metallb.io objects; the scenario's workloads stay).
func (l *Lab) UninstallStack(ctx context.Context) error {
	if _, err := l.Kubectl(ctx, "delete", "metallbs.metallb.io", "--all", "--all-namespaces", "--ignore-not-found", "--wait=true", "--timeout=110s"); err != nil {
		return err
	}
	_, err := l.Kubectl(ctx, "delete", "--ignore-not-found", "--wait=true", "--timeout=110s", "-k", filepath.Join(l.State.Root, "config", "default"))
	return err
}

// ApplyScenario applies a scenario's manifests (the MetalLB object and its
// metallb.io configuration, the workloads and Services). A different
// scenario applied before is deleted first, so configurations never mix.
func (l *Lab) ApplyScenario(ctx context.Context, name string) error {
	sc, err := LookupScenario(name)
	if err != nil {
		return err
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: StackNamespace}}
	if _, err := l.Kube.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("namespace %s: %w", StackNamespace, err)
	}
	if prev := l.State.Applied; prev != "" && prev != sc.Name {
		if old, err := LookupScenario(prev); err == nil {
			paths, err := old.ManifestPaths(l.State.Root)
			if err != nil {
				return err
			}
			for i := len(paths) - 1; i >= 0; i-- {
				if _, err := l.Kubectl(ctx, "delete", "--ignore-not-found", "--wait=false", "-f", paths[i]); err != nil {
					return fmt.Errorf("remove scenario %s: %w", prev, err)
				}
			}
		}
	}
	paths, err := sc.ManifestPaths(l.State.Root)
	if err != nil {
		return err
	}
	for _, p := range paths {
		// Once lbstack is installed its admission and conversion webhooks
		// may still be starting: retry for a while before giving up.
		deadline := time.Now().Add(90 * time.Second)
		for {
			_, err := l.Kubectl(ctx, "apply", "--server-side", "--force-conflicts", "-f", p)
			if err == nil {
				break
			}
			if time.Now().After(deadline) || !strings.Contains(err.Error(), "webhook") {
				return fmt.Errorf("scenario %s: %w", sc.Name, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(2 * time.Second):
			}
		}
	}
	l.State.Applied = sc.Name
	return l.State.save()
}

// Report prints what a user checks: nodes, pods, Services and their
// external IPs, the router's sessions, routes with next hops, BFD peers.
func (l *Lab) Report(ctx context.Context, w io.Writer) error {
	section := func(title string) { fmt.Fprintf(w, "\n== %s\n", title) }
	for _, q := range []struct{ title, args string }{
		{"nodes", "get nodes -o wide"},
		{"pods", "get pods -A -o wide"},
		{"services (EXTERNAL-IP is what lbstack assigns)", "get svc -A"},
	} {
		section(q.title)
		out, err := l.Kubectl(ctx, strings.Fields(q.args)...)
		if err != nil {
			return err
		}
		fmt.Fprint(w, out)
	}
	section(fmt.Sprintf("router (AS %d, %s): BGP sessions", l.State.Router.ASN, RouterAddr))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	ns, err := l.Router.Neighbors(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(tw, "NEIGHBOR\tAS\tSTATE\tPREFIXES")
	for _, n := range ns {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\n", n.Address, n.RemoteAS, n.State, n.PrefixesReceived)
	}
	tw.Flush()
	section("router: routes and next hops")
	n := 0
	for _, af := range []string{"ipv4", "ipv6"} {
		routes, err := l.Router.Routes(ctx, af)
		if err != nil {
			return err
		}
		for _, rt := range routes {
			n++
			fmt.Fprintf(w, "%s via %s\n", rt.Prefix, strings.Join(rt.NextHops(), ", "))
		}
	}
	if n == 0 {
		fmt.Fprintln(w, "(no routes)")
	}
	section("router: BFD peers")
	peers, err := l.Router.BFDPeers(ctx)
	if err != nil {
		return err
	}
	if len(peers) == 0 {
		fmt.Fprintln(w, "(none)")
	}
	for _, p := range peers {
		fmt.Fprintf(w, "%s %s (%s, rx %d ms, tx %d ms, x%d)\n", p.Peer, p.Status, p.Diagnostic, p.ReceiveMS, p.TransmitMS, p.Multiplier)
	}
	return nil
}

// RemoveScenario deletes the manifests of the scenario `make lab` applied
// (its MetalLB object included) and forgets it, so a test starts from an
// installed but unconfigured stack; the next `make lab` applies it again.
func (l *Lab) RemoveScenario(ctx context.Context) error {
	prev := l.State.Applied
	if prev == "" {
		return nil
	}
	sc, err := LookupScenario(prev)
	if err != nil {
		return err
	}
	paths, err := sc.ManifestPaths(l.State.Root)
	if err != nil {
		return err
	}
	for i := len(paths) - 1; i >= 0; i-- {
		// kubectl deletes a file's objects in its order, and admission
		// refuses to delete one still in use by another of the same file
		// (a BFD profile before its peer): the first pass deletes the
		// users, a second the objects they used.
		var err error
		for range 3 {
			if _, err = l.Kubectl(ctx, "delete", "--ignore-not-found", "--wait=false", "-f", paths[i]); err == nil {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("remove scenario %s: %w", prev, err)
		}
	}
	l.State.Applied = ""
	return l.State.save()
}

// WaitSettled waits, up to timeout, until what a user checks after
// applying a scenario has settled: every LoadBalancer Service has its
// address, the router has every scenario peer Established, and every
// peer it runs BFD with is Up. It returns what is still missing at the
// deadline ("" when settled), so the report that follows shows the
// steady state rather than the first seconds.
func (l *Lab) WaitSettled(ctx context.Context, timeout time.Duration) string {
	deadline := time.Now().Add(timeout)
	// The router's view must also hold still for three seconds: routes
	// follow sessions by a reload or two.
	var last string
	stable := 0
	for {
		missing := l.unsettled(ctx)
		if missing == "" {
			view := l.routerView(ctx)
			if view == last {
				stable++
			} else {
				last, stable = view, 0
			}
			if stable >= 3 {
				return ""
			}
			missing = "the router's routes are still changing"
		}
		if time.Now().After(deadline) {
			return missing
		}
		select {
		case <-ctx.Done():
			return ctx.Err().Error()
		case <-time.After(time.Second):
		}
	}
}

// routerView summarises the router's sessions and routes, to see them
// hold still.
func (l *Lab) routerView(ctx context.Context) string {
	var b strings.Builder
	ns, _ := l.Router.Neighbors(ctx)
	for _, n := range ns {
		fmt.Fprintf(&b, "%s=%s/%d ", n.Address, n.State, n.PrefixesReceived)
	}
	for _, af := range []string{"ipv4", "ipv6"} {
		rts, _ := l.Router.Routes(ctx, af)
		for _, rt := range rts {
			fmt.Fprintf(&b, "%s=%v ", rt.Prefix, rt.NextHops())
		}
	}
	return b.String()
}

func (l *Lab) unsettled(ctx context.Context) string {
	dss, err := l.Kube.AppsV1().DaemonSets(StackNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	for _, ds := range dss.Items {
		st := ds.Status
		if st.ObservedGeneration < ds.Generation || st.UpdatedNumberScheduled < st.DesiredNumberScheduled || st.NumberReady < st.DesiredNumberScheduled || st.NumberUnavailable > 0 {
			return fmt.Sprintf("DaemonSet %s is rolling out (%d/%d updated, %d ready)", ds.Name, st.UpdatedNumberScheduled, st.DesiredNumberScheduled, st.NumberReady)
		}
	}
	svcs, err := l.Kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return err.Error()
	}
	for _, s := range svcs.Items {
		if s.Spec.Type == corev1.ServiceTypeLoadBalancer && len(s.Status.LoadBalancer.Ingress) == 0 {
			return fmt.Sprintf("Service %s/%s has no address yet", s.Namespace, s.Name)
		}
	}
	ns, err := l.Router.Neighbors(ctx)
	if err != nil {
		return err.Error()
	}
	up := map[string]bool{}
	for _, n := range ns {
		up[n.Address] = n.Established()
	}
	bfd := map[string]bool{}
	if peers, err := l.Router.BFDPeers(ctx); err == nil {
		for _, p := range peers {
			bfd[p.Peer] = p.Up()
		}
	}
	for _, p := range l.State.Router.Peers {
		if !up[p.Address] {
			return fmt.Sprintf("router: session with %s not Established yet", p.Address)
		}
		if p.BFD && !bfd[p.Address] {
			return fmt.Sprintf("router: BFD with %s not Up yet", p.Address)
		}
	}
	return ""
}

// CurlServices sends one request from the client to every LoadBalancer
// Service's first address and TCP port, as a user checks with curl, and
// returns one line per Service: what answered, or the error.
func (l *Lab) CurlServices(ctx context.Context) []string {
	svcs, err := l.Kube.CoreV1().Services("").List(ctx, metav1.ListOptions{})
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	for _, s := range svcs.Items {
		if s.Spec.Type != corev1.ServiceTypeLoadBalancer || len(s.Status.LoadBalancer.Ingress) == 0 {
			continue
		}
		ip := s.Status.LoadBalancer.Ingress[0].IP
		for _, p := range s.Spec.Ports {
			if p.Protocol != corev1.ProtocolTCP && p.Protocol != "" {
				continue
			}
			a, err := l.Client.Get(ctx, ip, int(p.Port), 3*time.Second)
			line := fmt.Sprintf("curl http://%s:%d/ (%s/%s) from the client %s: ", ip, p.Port, s.Namespace, s.Name, ClientAddr)
			if err != nil {
				line += "FAILED: " + err.Error()
			} else {
				line += fmt.Sprintf("answered by pod %s, which saw the client as %s", a.Pod, a.Client)
			}
			out = append(out, line)
			break
		}
	}
	return out
}
