package mustgather

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	fakedynamic "k8s.io/client-go/dynamic/fake"
	"k8s.io/client-go/kubernetes"
	kfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/kubernetes/scheme"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/rest"
	fakerest "k8s.io/client-go/rest/fake"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/controller-runtime/pkg/client"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	lbscheme "github.com/lbstack/lbstack/pkg/scheme"
	"github.com/lbstack/lbstack/pkg/symrouting/load"
)

// apiRes is one resource the fake API serves.
type apiRes struct {
	gv, plural, kind string
	namespaced       bool
}

// coreResources are served by every test cluster.
var coreResources = []apiRes{
	{"v1", "services", "Service", true}, {"v1", "configmaps", "ConfigMap", true}, {"v1", "serviceaccounts", "ServiceAccount", true},
	{"apps/v1", "deployments", "Deployment", true}, {"apps/v1", "daemonsets", "DaemonSet", true},
	{"admissionregistration.k8s.io/v1", "validatingwebhookconfigurations", "ValidatingWebhookConfiguration", false},
	{"rbac.authorization.k8s.io/v1", "clusterroles", "ClusterRole", false},
	{"apiextensions.k8s.io/v1", "customresourcedefinitions", "CustomResourceDefinition", false},
}

// metallbResources are the metallb.io API.
var metallbResources = []apiRes{
	{"metallb.io/v1beta1", "ipaddresspools", "IPAddressPool", true},
	{"metallb.io/v1beta1", "bgpadvertisements", "BGPAdvertisement", true},
	{"metallb.io/v1beta1", "l2advertisements", "L2Advertisement", true},
	{"metallb.io/v1beta1", "bfdprofiles", "BFDProfile", true},
	{"metallb.io/v1beta1", "communities", "Community", true},
	{"metallb.io/v1beta1", "metallbs", "MetalLB", true},
	{"metallb.io/v1beta1", "configurationstates", "ConfigurationState", true},
	{"metallb.io/v1beta1", "servicebgpstatuses", "ServiceBGPStatus", true},
	{"metallb.io/v1beta1", "servicel2statuses", "ServiceL2Status", true},
	{"metallb.io/v1beta2", "bgppeers", "BGPPeer", true},
}

var olmResources = []apiRes{
	{"operators.coreos.com/v1alpha1", "clusterserviceversions", "ClusterServiceVersion", true},
	{"operators.coreos.com/v1alpha1", "subscriptions", "Subscription", true},
}

// prefDiscovery answers ServerPreferredResources, which the client-go
// fake does not.
type prefDiscovery struct {
	*fakediscovery.FakeDiscovery
	lists []*metav1.APIResourceList
	err   error
}

func (d *prefDiscovery) ServerPreferredResources() ([]*metav1.APIResourceList, error) {
	return d.lists, d.err
}

// logsFunc answers a container log request.
type logsFunc func(ns, pod string, opts *corev1.PodLogOptions) (*http.Response, error)

// kubeWithLogs serves pod logs from a function (the clientset fake always
// answers "fake logs" and cannot fail).
type kubeWithLogs struct {
	kubernetes.Interface
	logs logsFunc
}

func (k kubeWithLogs) CoreV1() corev1client.CoreV1Interface {
	return coreWithLogs{k.Interface.CoreV1(), k.logs}
}

type coreWithLogs struct {
	corev1client.CoreV1Interface
	logs logsFunc
}

func (c coreWithLogs) Pods(ns string) corev1client.PodInterface {
	return podsWithLogs{c.CoreV1Interface.Pods(ns), ns, c.logs}
}

type podsWithLogs struct {
	corev1client.PodInterface
	ns   string
	logs logsFunc
}

func (p podsWithLogs) GetLogs(name string, opts *corev1.PodLogOptions) *rest.Request {
	c := &fakerest.RESTClient{
		Client:               fakerest.CreateHTTPClient(func(*http.Request) (*http.Response, error) { return p.logs(p.ns, name, opts) }),
		NegotiatedSerializer: scheme.Codecs.WithoutConversion(),
		GroupVersion:         corev1.SchemeGroupVersion,
		VersionedAPIPath:     fmt.Sprintf("/api/v1/namespaces/%s/pods/%s/log", p.ns, name),
	}
	return c.Request()
}

func okBody(s string) (*http.Response, error) {
	return &http.Response{StatusCode: http.StatusOK, Body: io.NopCloser(strings.NewReader(s))}, nil
}

// execCall is one command run in a container.
type execCall struct{ pod, container, cmd string }

// cluster is a fake cluster for a gatherer.
type cluster struct {
	resources []apiRes
	discErr   error
	kube      []runtime.Object // typed, for the clientset
	dyn       []runtime.Object // for the dynamic client (typed or unstructured)
	logs      logsFunc
	// exec answers commands run in containers; nil: every command fails.
	exec func(c execCall) execResult
	// reactors are prepended to the clientset's.
	reactors []func(*kfake.Clientset)
	opts     Options

	mu      sync.Mutex
	execs   []execCall
	logReqs []string
}

func (c *cluster) gatherer(t *testing.T) *gatherer {
	t.Helper()
	kc := kfake.NewSimpleClientset(c.kube...)
	for _, r := range c.reactors {
		r(kc)
	}
	byGV := map[string]*metav1.APIResourceList{}
	var order []string
	listKinds := map[schema.GroupVersionResource]string{}
	for _, r := range c.resources {
		l := byGV[r.gv]
		if l == nil {
			l = &metav1.APIResourceList{GroupVersion: r.gv}
			byGV[r.gv] = l
			order = append(order, r.gv)
		}
		l.APIResources = append(l.APIResources, metav1.APIResource{Name: r.plural, Kind: r.kind, Namespaced: r.namespaced})
		gv, _ := schema.ParseGroupVersion(r.gv)
		listKinds[gv.WithResource(r.plural)] = r.kind + "List"
	}
	var lists []*metav1.APIResourceList
	for _, gv := range order {
		lists = append(lists, byGV[gv])
	}
	var dynObjs []runtime.Object
	for _, o := range c.dyn {
		dynObjs = append(dynObjs, toUnstructured(t, o))
	}
	dc := fakedynamic.NewSimpleDynamicClientWithCustomListKinds(runtime.NewScheme(), listKinds, dynObjs...)
	logs := c.logs
	if logs == nil {
		logs = func(ns, pod string, opts *corev1.PodLogOptions) (*http.Response, error) {
			return okBody(fmt.Sprintf("log of %s/%s %s previous=%t\n", ns, pod, opts.Container, opts.Previous))
		}
	}
	recordingLogs := func(ns, pod string, opts *corev1.PodLogOptions) (*http.Response, error) {
		c.mu.Lock()
		c.logReqs = append(c.logReqs, fmt.Sprintf("%s/%s/%s previous=%t", ns, pod, opts.Container, opts.Previous))
		c.mu.Unlock()
		return logs(ns, pod, opts)
	}
	opts := c.opts
	if opts.DestDir == "" {
		opts.DestDir = t.TempDir()
	}
	g := &gatherer{
		opts: opts,
		kube: kubeWithLogs{kc, recordingLogs},
		dyn:  dc,
		disc: &prefDiscovery{FakeDiscovery: &fakediscovery.FakeDiscovery{Fake: &k8stesting.Fake{}}, lists: lists, err: c.discErr},
	}
	g.execFn = func(_ context.Context, ns, pod, container string, argv ...string) execResult {
		call := execCall{pod, container, strings.Join(argv, " ")}
		c.mu.Lock()
		c.execs = append(c.execs, call)
		c.mu.Unlock()
		if c.exec == nil {
			return execResult{Err: errors.New("exec not available")}
		}
		return c.exec(call)
	}
	return g
}

func toUnstructured(t *testing.T, o runtime.Object) *unstructured.Unstructured {
	t.Helper()
	if u, ok := o.(*unstructured.Unstructured); ok {
		return u
	}
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(b); err != nil {
		t.Fatal(err)
	}
	if u.GetKind() == "" {
		t.Fatalf("%T without apiVersion/kind", o)
	}
	return u
}

// tree reads every file under dir: path (slash-separated) -> content.
func tree(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = string(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// unstructuredCRD is a CustomResourceDefinition with one served version.
type unstructuredCRD struct{ name, group string }

func (c *unstructuredCRD) object() *unstructured.Unstructured {
	u := unstructuredNamed("apiextensions.k8s.io/v1", "CustomResourceDefinition", "", c.name)
	_ = unstructured.SetNestedField(u.Object, c.group, "spec", "group")
	_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"name": "v1beta1", "served": true, "storage": true}}, "spec", "versions")
	return u
}

func unstructuredNamed(apiVersion, kind, namespace, name string) *unstructured.Unstructured {
	u := &unstructured.Unstructured{Object: map[string]any{}}
	u.SetAPIVersion(apiVersion)
	u.SetKind(kind)
	u.SetNamespace(namespace)
	u.SetName(name)
	return u
}

// crfakeReader is a controller-runtime fake client used as the
// symmetric-routing reader.
type crfakeReader struct{ client.Reader }

func crfakeBuilder(t *testing.T) *crfake.ClientBuilder {
	s := lbscheme.New()
	if err := load.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	return crfake.NewClientBuilder().WithScheme(s)
}
