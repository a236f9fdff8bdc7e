package mustgather

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/pkg/version"
)

// DefaultNamespace is where the stack lives when nothing says otherwise.
const DefaultNamespace = "metallb-system"

// Options configure a run.
type Options struct {
	// DestDir receives the output; created if missing.
	DestDir string
	// Since limits logs to this recent past (0: all). SinceTime, when set,
	// wins over Since.
	Since     time.Duration
	SinceTime *time.Time
	// ExecTimeout bounds each command run in a pod (default 30 s).
	ExecTimeout time.Duration
	// Namespace, when set, is the stack's namespace and detection is
	// skipped.
	Namespace string
	// Progress receives one line per step; nil discards.
	Progress io.Writer
}

// Result is what a run found, for the caller's last words.
type Result struct {
	// Namespace is the stack's namespace and Found how it was found.
	Namespace, Found string
	// OperatorInstalled is false when no trace of the operator exists.
	OperatorInstalled bool
	// Failures are the items that could not be collected.
	Failures []string
}

// gatherer is one run.
type gatherer struct {
	opts Options
	rest *rest.Config
	kube kubernetes.Interface
	dyn  dynamic.Interface
	disc discovery.DiscoveryInterface

	// resources are the API's resources by group, preferred versions.
	resources map[string][]resource
	scrub     scrubber
	snap      snapshot

	mu       sync.Mutex
	failures []string
	res      Result

	// Test seams; nil in a real run. execFn replaces exec (the pod exec
	// API); symReader replaces the client made from rest for the
	// symmetric-routing checks.
	execFn    func(ctx context.Context, ns, pod, container string, argv ...string) execResult
	symReader client.Reader
}

// resource is one API resource.
type resource struct {
	gvr        schema.GroupVersionResource
	kind       string
	namespaced bool
}

// Run collects into opts.DestDir from the cluster cfg points at. It returns
// an error when anything could not be collected; the output is complete
// for everything else either way.
func Run(ctx context.Context, cfg *rest.Config, opts Options) (*Result, error) {
	if opts.DestDir == "" {
		return nil, errors.New("must-gather: no destination directory")
	}
	if opts.ExecTimeout <= 0 {
		opts.ExecTimeout = 30 * time.Second
	}
	if err := os.MkdirAll(opts.DestDir, 0o755); err != nil {
		return nil, fmt.Errorf("must-gather: %w", err)
	}
	cfg = rest.CopyConfig(cfg)
	if cfg.Timeout == 0 {
		cfg.Timeout = 60 * time.Second
	}
	g := &gatherer{opts: opts, rest: cfg}
	var err error
	if g.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("must-gather: %w", err)
	}
	if g.dyn, err = dynamic.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("must-gather: %w", err)
	}
	if g.disc, err = discovery.NewDiscoveryClientForConfig(cfg); err != nil {
		return nil, fmt.Errorf("must-gather: %w", err)
	}
	return g.run(ctx)
}

// run is Run once the clients are made (tests give fakes).
func (g *gatherer) run(ctx context.Context) (*Result, error) {
	g.writeFile("version", []byte(fmt.Sprintf("lbstack/must-gather\n%s\n", version.String())))
	start := time.Now()
	g.progress("discovering the API")
	if err := g.discover(); err != nil {
		// Without discovery nothing else can be listed: say so and stop.
		g.fail("cluster/api-resources.txt", err)
		g.finish(start)
		return &g.res, g.exitError()
	}
	g.findNamespace(ctx)
	g.loadSecretsForScrubbing(ctx)
	for _, step := range []struct {
		name string
		fn   func(context.Context)
	}{
		{"metallb.io and lbstack.io objects", g.gatherAPIObjects},
		{"OLM objects", g.gatherOLM},
		{"the stack's namespace", g.gatherNamespace},
		{"cluster-scoped objects of the stack", g.gatherClusterScoped},
		{"pods and logs", g.gatherPods},
		{"LoadBalancer Services", g.gatherServices},
		{"nodes, NMState, OVN and OpenShift network objects", g.gatherNetwork},
		{"speakers (FRR, routing tables, the speaker's view)", g.gatherSpeakers},
		{"symmetric-routing checks", g.gatherSymmetricRouting},
		{"Calico announcement mode (ownership, checks)", g.gatherCalico},
	} {
		g.progress(step.name)
		step.fn(ctx)
	}
	g.progress("summary")
	g.writeSummary()
	g.finish(start)
	return &g.res, g.exitError()
}

func (g *gatherer) exitError() error {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.res.Failures = append([]string(nil), g.failures...)
	if len(g.failures) == 0 {
		return nil
	}
	return fmt.Errorf("must-gather: %d item(s) could not be collected; see %s", len(g.failures), filepath.Join(g.opts.DestDir, "errors.txt"))
}

// finish writes errors.txt (always, so an empty one says "nothing failed")
// and the run's timing.
func (g *gatherer) finish(start time.Time) {
	g.mu.Lock()
	lines := append([]string(nil), g.failures...)
	g.mu.Unlock()
	sort.Strings(lines)
	text := strings.Join(lines, "\n")
	if text != "" {
		text += "\n"
	}
	g.writeFile("errors.txt", []byte(text))
	g.writeFile("gather-info.txt", []byte(fmt.Sprintf("started: %s\nduration: %s\nnamespace: %s (%s)\noperator installed: %t\nfailures: %d\n",
		start.UTC().Format(time.RFC3339), time.Since(start).Round(time.Millisecond), g.res.Namespace, g.res.Found, g.res.OperatorInstalled, len(lines))))
}

func (g *gatherer) progress(format string, args ...any) {
	if g.opts.Progress != nil {
		fmt.Fprintf(g.opts.Progress, "must-gather: "+format+"\n", args...)
	}
}

// fail records that what would have gone to path could not be collected.
func (g *gatherer) fail(path string, err error) {
	msg := fmt.Sprintf("%s: %v", path, err)
	msg = string(g.scrub.scrub([]byte(msg)))
	g.mu.Lock()
	g.failures = append(g.failures, msg)
	g.mu.Unlock()
	g.progress("not collected: %s", msg)
}

// writeFile writes data, scrubbed, to path under DestDir.
func (g *gatherer) writeFile(path string, data []byte) {
	full := filepath.Join(g.opts.DestDir, filepath.FromSlash(path))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		g.fail(path, err)
		return
	}
	if err := os.WriteFile(full, g.scrub.scrub(data), 0o644); err != nil {
		g.fail(path, err)
	}
}

// writeText writes what a workload produced (a log, a command's output, a
// file read in a container), scrubbed - unless some secret values could
// not be learnt: then nothing can vouch that the text holds none of them,
// and it is withheld (fail closed) with a note saying why.
func (g *gatherer) writeText(path string, data []byte) {
	if ok, why := g.scrub.complete(); !ok {
		g.writeFile(path+".WITHHELD.txt", []byte(fmt.Sprintf("Withheld: %s, so this output (%d bytes) could not be checked for their values.\n"+
			"Run must-gather as a user who may read the Secrets of the stack's namespace: their values are only used to scrub the output.\n", why, len(data))))
		return
	}
	g.writeFile(path, data)
}

// writeYAML writes v as YAML.
func (g *gatherer) writeYAML(path string, v any) {
	data, err := yaml.Marshal(v)
	if err != nil {
		g.fail(path, err)
		return
	}
	g.writeFile(path, data)
}

// discover reads the API's resources (preferred versions). A group that
// fails to answer is recorded; the others are used.
func (g *gatherer) discover() error {
	lists, err := g.disc.ServerPreferredResources()
	if err != nil {
		var gd *discovery.ErrGroupDiscoveryFailed
		if !errors.As(err, &gd) || len(lists) == 0 {
			return err
		}
		g.fail("cluster/api-resources.txt", err)
	}
	g.resources = map[string][]resource{}
	var lines []string
	for _, l := range lists {
		gv, err := schema.ParseGroupVersion(l.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range l.APIResources {
			if strings.Contains(r.Name, "/") {
				continue
			}
			g.resources[gv.Group] = append(g.resources[gv.Group], resource{gvr: gv.WithResource(r.Name), kind: r.Kind, namespaced: r.Namespaced})
			lines = append(lines, fmt.Sprintf("%s\t%s\t%s\tnamespaced=%t", gv.String(), r.Name, r.Kind, r.Namespaced))
		}
	}
	sort.Strings(lines)
	g.writeFile("cluster/api-resources.txt", []byte(strings.Join(lines, "\n")+"\n"))
	return nil
}

// lookup finds a resource of group by its plural name.
func (g *gatherer) lookup(group, plural string) (resource, bool) {
	for _, r := range g.resources[group] {
		if r.gvr.Resource == plural {
			return r, true
		}
	}
	return resource{}, false
}

// list lists a resource (in ns, or everywhere when ns is "").
func (g *gatherer) list(ctx context.Context, r resource, ns string, opts metav1.ListOptions) (*unstructured.UnstructuredList, error) {
	if r.namespaced && ns != "" {
		return g.dyn.Resource(r.gvr).Namespace(ns).List(ctx, opts)
	}
	return g.dyn.Resource(r.gvr).List(ctx, opts)
}

// dump lists r and writes it to path; it returns the list (nil on error).
// Absent APIs are noted by the callers, not here.
func (g *gatherer) dump(ctx context.Context, path string, r resource, ns string, filter func(*unstructured.Unstructured) bool) *unstructured.UnstructuredList {
	l, err := g.list(ctx, r, ns, metav1.ListOptions{})
	if err != nil {
		g.fail(path, fmt.Errorf("list %s: %w", r.gvr.String(), err))
		return nil
	}
	if filter != nil {
		kept := l.Items[:0]
		for i := range l.Items {
			if filter(&l.Items[i]) {
				kept = append(kept, l.Items[i])
			}
		}
		l.Items = kept
	}
	for i := range l.Items {
		tidy(&l.Items[i])
	}
	l.SetAPIVersion("v1")
	l.SetKind("List")
	g.writeYAML(path, l.UnstructuredContent())
	return l
}

// tidy drops managedFields (noise) and masks plain-text secrets an object
// may carry (BGPPeer spec.password).
func tidy(u *unstructured.Unstructured) {
	u.SetManagedFields(nil)
	if u.GroupVersionKind().Group == "metallb.io" && u.GetKind() == "BGPPeer" {
		if _, found, _ := unstructured.NestedString(u.Object, "spec", "password"); found {
			_ = unstructured.SetNestedField(u.Object, redacted, "spec", "password")
		}
	}
	if u.GetKind() == "Secret" {
		delete(u.Object, "data")
		delete(u.Object, "stringData")
	}
}

// loadSecretsForScrubbing learns the values the output must never hold:
// every Secret value of the stack's namespace (and of any namespace holding
// BGPPeers or MetalLB objects) and every BGPPeer spec.password. They stay
// in memory only.
func (g *gatherer) loadSecretsForScrubbing(ctx context.Context) {
	namespaces := map[string]bool{g.res.Namespace: true}
	if r, ok := g.lookup("metallb.io", "bgppeers"); ok {
		if l, err := g.list(ctx, r, "", metav1.ListOptions{}); err == nil {
			for _, p := range l.Items {
				namespaces[p.GetNamespace()] = true
				if pw, _, _ := unstructured.NestedString(p.Object, "spec", "password"); pw != "" {
					g.scrub.addPasswords([]byte(pw))
				}
			}
		}
	}
	if r, ok := g.lookup("metallb.io", "metallbs"); ok {
		if l, err := g.list(ctx, r, "", metav1.ListOptions{}); err == nil {
			for _, m := range l.Items {
				namespaces[m.GetNamespace()] = true
			}
		}
	}
	for ns := range namespaces {
		secrets, err := g.kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
		if apierrors.IsNotFound(err) {
			continue
		}
		if err != nil {
			g.scrub.markIncomplete(fmt.Sprintf("the Secrets of namespace %s could not be read (%v)", ns, err))
			g.fail("(secret scrubbing) namespace "+ns, fmt.Errorf("cannot read Secrets to scrub their values from the output: logs and command outputs are withheld (password fields and FRR passwords are still masked): %w", err))
			continue
		}
		if ns == g.res.Namespace {
			g.snap.secrets = secrets.Items
		}
		for _, s := range secrets.Items {
			for k, v := range s.Data {
				if k == corev1.BasicAuthPasswordKey {
					g.scrub.addPasswords(v)
				} else {
					g.scrub.add(v)
				}
			}
			for k, v := range s.StringData {
				if k == corev1.BasicAuthPasswordKey {
					g.scrub.addPasswords([]byte(v))
				} else {
					g.scrub.add([]byte(v))
				}
			}
		}
	}
}

// findNamespace decides the stack's namespace: the flag, the MetalLB
// object, the OLM CSV owning the MetalLB CRD or a Subscription to our
// package, else metallb-system.
func (g *gatherer) findNamespace(ctx context.Context) {
	set := func(ns, found string) {
		g.res.Namespace, g.res.Found = ns, found
		g.snap.namespace = ns
	}
	defer func() { g.progress("stack namespace %s (%s)", g.res.Namespace, g.res.Found) }()
	_, haveMetalLB := g.lookup("metallb.io", "metallbs")
	if g.opts.Namespace != "" {
		set(g.opts.Namespace, "given with --namespace")
		g.res.OperatorInstalled = haveMetalLB
		return
	}
	if r, ok := g.lookup("metallb.io", "metallbs"); ok {
		g.res.OperatorInstalled = true
		l, err := g.list(ctx, r, "", metav1.ListOptions{})
		if err != nil {
			g.fail("(namespace detection) metallbs", err)
		} else if len(l.Items) > 0 {
			sort.Slice(l.Items, func(i, j int) bool { return l.Items[i].GetName() == "metallb" && l.Items[j].GetName() != "metallb" })
			m := l.Items[0]
			set(m.GetNamespace(), fmt.Sprintf("the MetalLB object %s/%s", m.GetNamespace(), m.GetName()))
			return
		}
	}
	if r, ok := g.lookup("operators.coreos.com", "clusterserviceversions"); ok {
		if l, err := g.list(ctx, r, "", metav1.ListOptions{}); err == nil {
			for _, csv := range l.Items {
				if _, copied := csv.GetLabels()["olm.copiedFrom"]; copied {
					continue
				}
				if ownsMetalLB(&csv) {
					g.res.OperatorInstalled = true
					set(csv.GetNamespace(), fmt.Sprintf("the OLM ClusterServiceVersion %s/%s", csv.GetNamespace(), csv.GetName()))
					return
				}
			}
		}
	}
	if r, ok := g.lookup("operators.coreos.com", "subscriptions"); ok {
		if l, err := g.list(ctx, r, "", metav1.ListOptions{}); err == nil {
			for _, s := range l.Items {
				pkg, _, _ := unstructured.NestedString(s.Object, "spec", "name")
				if pkg == "lbstack" || pkg == "metallb-operator" {
					g.res.OperatorInstalled = true
					set(s.GetNamespace(), fmt.Sprintf("the OLM Subscription %s/%s to package %s", s.GetNamespace(), s.GetName(), pkg))
					return
				}
			}
		}
	}
	set(DefaultNamespace, "the default: no MetalLB object, CSV or Subscription found")
}

func ownsMetalLB(csv *unstructured.Unstructured) bool {
	owned, _, _ := unstructured.NestedSlice(csv.Object, "spec", "customresourcedefinitions", "owned")
	for _, o := range owned {
		if m, ok := o.(map[string]any); ok && m["name"] == "metallbs.metallb.io" {
			return true
		}
	}
	return false
}

// gatherAPIObjects writes every metallb.io and lbstack.io resource, every
// namespace, one file per resource.
func (g *gatherer) gatherAPIObjects(ctx context.Context) {
	for _, group := range []string{"metallb.io", "lbstack.io"} {
		rs := g.resources[group]
		if len(rs) == 0 {
			g.writeFile(group+"/ABSENT.txt", []byte(fmt.Sprintf("The %s API is not served by this cluster: its CRDs are not installed.\n", group)))
			continue
		}
		for _, r := range rs {
			l := g.dump(ctx, group+"/"+r.gvr.Resource+".yaml", r, "", nil)
			if l != nil {
				g.snap.add(group, r.gvr.Resource, l.Items)
			}
		}
	}
}

// gatherOLM writes the operator's OLM objects when OLM is present.
func (g *gatherer) gatherOLM(ctx context.Context) {
	if len(g.resources["operators.coreos.com"]) == 0 {
		g.writeFile("olm/ABSENT.txt", []byte("OLM (operators.coreos.com) is not installed.\n"))
		return
	}
	for _, plural := range []string{"clusterserviceversions", "subscriptions", "installplans", "operatorgroups"} {
		r, ok := g.lookup("operators.coreos.com", plural)
		if !ok {
			continue
		}
		l := g.dump(ctx, "olm/"+plural+".yaml", r, g.res.Namespace, nil)
		if l != nil && plural == "clusterserviceversions" {
			g.snap.csvs = l.Items
		}
		if l != nil && plural == "subscriptions" {
			g.snap.subscriptions = l.Items
		}
	}
}

// namespaceResources are dumped from the stack's namespace.
var namespaceResources = []struct{ group, plural string }{
	{"apps", "deployments"}, {"apps", "daemonsets"}, {"apps", "replicasets"},
	{"", "services"}, {"discovery.k8s.io", "endpointslices"}, {"", "serviceaccounts"},
	{"", "configmaps"}, {"rbac.authorization.k8s.io", "roles"}, {"rbac.authorization.k8s.io", "rolebindings"},
	{"networking.k8s.io", "networkpolicies"}, {"policy", "poddisruptionbudgets"},
	{"monitoring.coreos.com", "servicemonitors"},
}

// gatherNamespace writes the stack namespace's workloads and objects;
// Secrets by name and type only.
func (g *gatherer) gatherNamespace(ctx context.Context) {
	ns := g.res.Namespace
	dir := "namespaces/" + ns + "/"
	nsObj, err := g.kube.CoreV1().Namespaces().Get(ctx, ns, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		g.writeFile(dir+"ABSENT.txt", []byte(fmt.Sprintf("Namespace %s does not exist: the stack is not installed there.\n", ns)))
		return
	}
	if err != nil {
		g.fail(dir+"namespace.yaml", err)
	} else {
		nsObj.ManagedFields = nil
		g.writeYAML(dir+"namespace.yaml", nsObj)
	}
	for _, nr := range namespaceResources {
		r, ok := g.lookup(nr.group, nr.plural)
		if !ok {
			continue
		}
		l := g.dump(ctx, dir+nr.plural+".yaml", r, ns, nil)
		if l == nil {
			continue
		}
		switch nr.plural {
		case "deployments":
			g.snap.deployments = l.Items
		case "daemonsets":
			g.snap.daemonsets = l.Items
		}
	}
	g.writeEvents(ctx, dir+"events.yaml", ns, "")
	secrets, err := g.kube.CoreV1().Secrets(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		g.fail(dir+"secrets.txt", err)
	} else {
		var b strings.Builder
		b.WriteString("# Secrets: names and types only, never their data.\n")
		for _, s := range secrets.Items {
			fmt.Fprintf(&b, "%s\t%s\n", s.Name, s.Type)
		}
		g.writeFile(dir+"secrets.txt", []byte(b.String()))
	}
}

// gatherClusterScoped writes the stack's webhook configurations, cluster
// roles and bindings, and its CRDs' names and versions.
func (g *gatherer) gatherClusterScoped(ctx context.Context) {
	ours := func(u *unstructured.Unstructured) bool {
		n := u.GetName()
		return strings.Contains(n, "metallb") || strings.Contains(n, "lbstack")
	}
	for _, nr := range []struct{ group, plural string }{
		{"admissionregistration.k8s.io", "validatingwebhookconfigurations"},
		{"admissionregistration.k8s.io", "mutatingwebhookconfigurations"},
		{"rbac.authorization.k8s.io", "clusterroles"},
		{"rbac.authorization.k8s.io", "clusterrolebindings"},
	} {
		if r, ok := g.lookup(nr.group, nr.plural); ok {
			g.dump(ctx, "cluster/"+nr.plural+".yaml", r, "", ours)
		}
	}
	r, ok := g.lookup("apiextensions.k8s.io", "customresourcedefinitions")
	if !ok {
		return
	}
	l, err := g.list(ctx, r, "", metav1.ListOptions{})
	if err != nil {
		g.fail("cluster/crds.txt", err)
		return
	}
	var lines []string
	for _, crd := range l.Items {
		group, _, _ := unstructured.NestedString(crd.Object, "spec", "group")
		switch group {
		case "metallb.io", "lbstack.io", "nmstate.io", "k8s.ovn.org", "frrk8s.metallb.io", "crd.projectcalico.org", "projectcalico.org":
		default:
			continue
		}
		var versions []string
		vs, _, _ := unstructured.NestedSlice(crd.Object, "spec", "versions")
		for _, v := range vs {
			if m, ok := v.(map[string]any); ok {
				versions = append(versions, fmt.Sprintf("%v(served=%v,storage=%v)", m["name"], m["served"], m["storage"]))
			}
		}
		lines = append(lines, fmt.Sprintf("%s\t%s", crd.GetName(), strings.Join(versions, ",")))
	}
	sort.Strings(lines)
	g.writeFile("cluster/crds.txt", []byte(strings.Join(lines, "\n")+"\n"))
}

// writeEvents writes the events of ns (of one object when uid is set).
func (g *gatherer) writeEvents(ctx context.Context, path, ns string, uid string) []corev1.Event {
	opts := metav1.ListOptions{}
	if uid != "" {
		opts.FieldSelector = "involvedObject.uid=" + uid
	}
	evs, err := g.kube.CoreV1().Events(ns).List(ctx, opts)
	if err != nil {
		g.fail(path, err)
		return nil
	}
	sort.SliceStable(evs.Items, func(i, j int) bool { return eventTime(&evs.Items[i]).Before(eventTime(&evs.Items[j])) })
	for i := range evs.Items {
		evs.Items[i].ManagedFields = nil
	}
	evs.APIVersion, evs.Kind = "v1", "List"
	g.writeYAML(path, evs)
	return evs.Items
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.CreationTimestamp.Time
}
