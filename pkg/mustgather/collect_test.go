package mustgather

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	kfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/lbstack/lbstack/api/v1beta1"
)

func TestRunNeedsADestination(t *testing.T) {
	if _, err := Run(context.Background(), &rest.Config{}, Options{}); err == nil || err.Error() != "must-gather: no destination directory" {
		t.Fatalf("error %v", err)
	}
}

// TestRunWithoutDiscovery: an API server that answers nothing useful;
// the run stops after discovery, says so in errors.txt and returns an
// error, with version and gather-info written.
func TestRunWithoutDiscovery(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "broken", http.StatusInternalServerError)
	}))
	defer srv.Close()
	dir := filepath.Join(t.TempDir(), "out")
	res, err := Run(context.Background(), &rest.Config{Host: srv.URL}, Options{DestDir: dir})
	if err == nil || err.Error() != "must-gather: 1 item(s) could not be collected; see "+filepath.Join(dir, "errors.txt") {
		t.Fatalf("error %v", err)
	}
	if len(res.Failures) != 1 || !strings.HasPrefix(res.Failures[0], "cluster/api-resources.txt: ") {
		t.Errorf("failures %q", res.Failures)
	}
	files := tree(t, dir)
	if got := strings.Join(keys(files), ","); got != "errors.txt,gather-info.txt,version" {
		t.Errorf("files %s", got)
	}
	if files["errors.txt"] != res.Failures[0]+"\n" || !strings.HasPrefix(files["version"], "lbstack/must-gather\n") ||
		!strings.Contains(files["gather-info.txt"], "\nfailures: 1\n") {
		t.Errorf("files %q", files)
	}
}

func TestDiscover(t *testing.T) {
	good := &metav1.APIResourceList{GroupVersion: "metallb.io/v1beta1", APIResources: []metav1.APIResource{
		{Name: "ipaddresspools", Kind: "IPAddressPool", Namespaced: true}, {Name: "ipaddresspools/status", Kind: "IPAddressPool", Namespaced: true}}}
	groupFailed := &discovery.ErrGroupDiscoveryFailed{Groups: map[schema.GroupVersion]error{{Group: "metrics.k8s.io", Version: "v1beta1"}: errors.New("503")}}
	cases := []struct {
		name         string
		lists        []*metav1.APIResourceList
		err          error
		wantErr      bool
		wantFailures int
		wantFile     string
	}{
		{name: "every group: subresources left out", lists: []*metav1.APIResourceList{good},
			wantFile: "metallb.io/v1beta1\tipaddresspools\tIPAddressPool\tnamespaced=true\n"},
		{name: "one group failing: recorded, the others used", lists: []*metav1.APIResourceList{good}, err: groupFailed, wantFailures: 1,
			wantFile: "metallb.io/v1beta1\tipaddresspools\tIPAddressPool\tnamespaced=true\n"},
		{name: "a group failure with nothing else: an error", err: groupFailed, wantErr: true},
		{name: "another error: an error", lists: []*metav1.APIResourceList{good}, err: errors.New("unauthorized"), wantErr: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := (&cluster{}).gatherer(t)
			g.disc.(*prefDiscovery).lists, g.disc.(*prefDiscovery).err = tc.lists, tc.err
			err := g.discover()
			if (err != nil) != tc.wantErr || len(g.failures) != tc.wantFailures {
				t.Fatalf("error %v, failures %q", err, g.failures)
			}
			if tc.wantErr {
				return
			}
			if _, ok := g.lookup("metallb.io", "ipaddresspools"); !ok {
				t.Error("ipaddresspools not found")
			}
			if _, ok := g.lookup("metallb.io", "ipaddresspools/status"); ok {
				t.Error("a subresource is a resource")
			}
			if b, _ := os.ReadFile(filepath.Join(g.opts.DestDir, "cluster/api-resources.txt")); string(b) != tc.wantFile {
				t.Errorf("api-resources.txt = %q", b)
			}
		})
	}
}

// TestCollectionDecisions runs one collection step on a fake cluster and
// checks the files it writes and the failures it records.
func TestCollectionDecisions(t *testing.T) {
	nmstate := []apiRes{
		{"nmstate.io/v1", "nodenetworkconfigurationpolicies", "NodeNetworkConfigurationPolicy", false},
		{"nmstate.io/v1beta1", "nodenetworkstates", "NodeNetworkState", false},
		{"nmstate.io/v1beta1", "nodenetworkconfigurationenactments", "NodeNetworkConfigurationEnactment", false},
	}
	olmAll := append(append([]apiRes(nil), olmResources...),
		apiRes{"operators.coreos.com/v1alpha1", "installplans", "InstallPlan", true}, apiRes{"operators.coreos.com/v1", "operatorgroups", "OperatorGroup", true})
	nsObj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}
	cases := []struct {
		name      string
		resources []apiRes
		kube      []runtime.Object
		dyn       []runtime.Object
		reactors  []func(*kfake.Clientset)
		forbidDyn string
		step      func(*gatherer, context.Context)
		files     map[string]string // exact; "" : absent; "*..." : contains
		failures  []string
	}{
		{name: "the stack's namespace absent: only ABSENT.txt", resources: withResources(), step: (*gatherer).gatherNamespace,
			files: map[string]string{"namespaces/metallb-system/ABSENT.txt": "Namespace metallb-system does not exist: the stack is not installed there.\n",
				"namespaces/metallb-system/secrets.txt": "", "namespaces/metallb-system/events.yaml": ""}},
		{name: "Secrets that cannot be listed: a failure, the rest written", resources: withResources(), kube: []runtime.Object{nsObj},
			reactors: []func(*kfake.Clientset){forbidKube("secrets")}, step: (*gatherer).gatherNamespace,
			files:    map[string]string{"namespaces/metallb-system/secrets.txt": "", "namespaces/metallb-system/namespace.yaml": "*name: metallb-system"},
			failures: []string{"namespaces/metallb-system/secrets.txt: secrets is forbidden: no"}},
		{name: "a resource that cannot be listed: a failure naming it", resources: withResources(), kube: []runtime.Object{nsObj},
			forbidDyn: "deployments", step: (*gatherer).gatherNamespace,
			files:    map[string]string{"namespaces/metallb-system/deployments.yaml": "", "namespaces/metallb-system/daemonsets.yaml": "*kind: List"},
			failures: []string{"namespaces/metallb-system/deployments.yaml: list apps/v1, Resource=deployments: deployments.apps is forbidden: no"}},
		{name: "OLM: the stack namespace's objects only", resources: withResources(olmAll),
			dyn:  []runtime.Object{csvObj(ns, "lbstack.v1", true, false), csvObj("other", "x.v1", false, false), subscriptionObj(ns, "sub", "lbstack")},
			step: (*gatherer).gatherOLM,
			files: map[string]string{"olm/clusterserviceversions.yaml": "*name: lbstack.v1", "olm/subscriptions.yaml": "*name: sub",
				"olm/installplans.yaml": "*items: []", "olm/operatorgroups.yaml": "*items: []", "olm/ABSENT.txt": ""}},
		{name: "no LoadBalancer Service: NONE.txt", resources: withResources(),
			kube: []runtime.Object{&corev1.Service{ObjectMeta: nsMeta("web", "internal")}}, step: (*gatherer).gatherServices,
			files: map[string]string{"services/NONE.txt": "No Service of type LoadBalancer exists.\n", "services/web/internal/service.yaml": ""}},
		{name: "Services that cannot be listed: one failure, nothing written", resources: withResources(),
			reactors: []func(*kfake.Clientset){forbidKube("services")}, step: (*gatherer).gatherServices,
			files:    map[string]string{"services/NONE.txt": ""},
			failures: []string{"services: services is forbidden: no"}},
		{name: "EndpointSlices and namespaces that cannot be listed: failures, the Service still written", resources: withResources(),
			kube:     []runtime.Object{lbService("web", "a")},
			reactors: []func(*kfake.Clientset){forbidKube("endpointslices"), forbidKube("namespaces")}, step: (*gatherer).gatherServices,
			files:    map[string]string{"services/web/a/service.yaml": "*name: a", "services/web/a/endpointslices.yaml": "", "services/web/a/events.yaml": "*kind: List"},
			failures: []string{"(summary) namespaces: namespaces is forbidden: no", "services/web/a/endpointslices.yaml: endpointslices is forbidden: no"}},
		{name: "CRDs that cannot be listed", resources: withResources(), forbidDyn: "customresourcedefinitions", step: (*gatherer).gatherClusterScoped,
			files:    map[string]string{"cluster/crds.txt": ""},
			failures: []string{"cluster/crds.txt: customresourcedefinitions.apiextensions.k8s.io is forbidden: no"}},
		{name: "NMState served: its objects dumped, OVN and OpenShift absent", resources: withResources(nmstate),
			kube: []runtime.Object{&corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}},
			dyn:  []runtime.Object{unstructuredNamed("nmstate.io/v1", "NodeNetworkConfigurationPolicy", "", "vrf-policy")},
			step: (*gatherer).gatherNetwork,
			files: map[string]string{"nmstate/nodenetworkconfigurationpolicies.yaml": "*name: vrf-policy", "nmstate/nodenetworkstates.yaml": "*items: []",
				"nmstate/ABSENT.txt": "", "ovn/ABSENT.txt": "*not installed", "openshift/ABSENT.txt": "*not OpenShift",
				"ovn/egress-node-labels.txt": "*\nn1\t\n"}},
		{name: "nodes that cannot be listed: a failure, no label file", resources: withResources(),
			reactors: []func(*kfake.Clientset){forbidKube("nodes")}, step: (*gatherer).gatherNetwork,
			files:    map[string]string{"cluster/nodes.yaml": "", "ovn/egress-node-labels.txt": ""},
			failures: []string{"cluster/nodes.yaml: nodes is forbidden: no"}},
		{name: "no metallb.io API: ABSENT for both groups", resources: withResources(), step: (*gatherer).gatherAPIObjects,
			files: map[string]string{"metallb.io/ABSENT.txt": "The metallb.io API is not served by this cluster: its CRDs are not installed.\n", "lbstack.io/ABSENT.txt": "*lbstack.io API is not served"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &cluster{resources: tc.resources, kube: tc.kube, dyn: tc.dyn, reactors: tc.reactors}
			g := c.gatherer(t)
			g.res.Namespace = ns
			if err := g.discover(); err != nil {
				t.Fatal(err)
			}
			if tc.forbidDyn != "" {
				forbidDynamic(g, tc.forbidDyn)
			}
			tc.step(g, context.Background())
			files := tree(t, g.opts.DestDir)
			for f, want := range tc.files {
				got, ok := files[f]
				switch {
				case want == "":
					if ok {
						t.Errorf("%s written: %q", f, got)
					}
				case strings.HasPrefix(want, "*"):
					if !strings.Contains(got, want[1:]) {
						t.Errorf("%s = %q, want it to hold %q", f, got, want[1:])
					}
				case got != want:
					t.Errorf("%s = %q, want %q", f, got, want)
				}
			}
			failures := append([]string(nil), g.failures...)
			if strings.Join(sorted(failures), "\n") != strings.Join(tc.failures, "\n") {
				t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(failures, "\n"), strings.Join(tc.failures, "\n"))
			}
		})
	}
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func TestGatherSymmetricRouting(t *testing.T) {
	vrfPeer := peerObj(ns, "vp", "")
	vrfPeer.Spec.VRFName = "red"
	node := &corev1.Node{TypeMeta: tm("v1", "Node"), ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	cases := []struct {
		name      string
		resources []apiRes
		objs      []client.Object
		failList  bool
		want      string // findings.txt; "" absent; "*" prefix: contains
		checked   bool
		failure   string
	}{
		{name: "no BGPPeer API: nothing to check, no file", resources: withResources()},
		{name: "no VRF peer, no EgressService", resources: withResources(metallbResources), objs: []client.Object{node, peerObj(ns, "edge", "")},
			want: "Nothing to check: no BGPPeer with spec.vrf and no EgressService.\n"},
		{name: "a VRF peer: the findings, one a line, kept for the summary", resources: withResources(metallbResources), objs: []client.Object{node, vrfPeer},
			want: "*Unknown NMStateNotInstalled spec.vrf: bgppeer \"metallb-system/vp\" spec.vrf is \"red\" but the NMState CRDs", checked: true},
		{name: "objects that cannot be read: a failure", resources: withResources(metallbResources), failList: true,
			failure: "symmetric-routing/findings.txt: read the objects symmetric routing checks: list nodes: down"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			g := (&cluster{resources: tc.resources}).gatherer(t)
			g.res.Namespace = ns
			if err := g.discover(); err != nil {
				t.Fatal(err)
			}
			r := symReaderFor(t)
			b := crfakeBuilder(t).WithObjects(tc.objs...)
			if tc.failList {
				b = b.WithInterceptorFuncs(interceptor.Funcs{List: func(context.Context, client.WithWatch, client.ObjectList, ...client.ListOption) error {
					return errors.New("down")
				}})
			}
			r.Reader = b.Build()
			g.symReader = r
			g.gatherSymmetricRouting(context.Background())
			got, err := os.ReadFile(filepath.Join(g.opts.DestDir, "symmetric-routing/findings.txt"))
			switch {
			case tc.want == "":
				if err == nil {
					t.Errorf("findings.txt written: %q", got)
				}
			case strings.HasPrefix(tc.want, "*"):
				if !strings.Contains(string(got), tc.want[1:]) {
					t.Errorf("findings.txt = %q, want it to hold %q", got, tc.want[1:])
				}
			case string(got) != tc.want:
				t.Errorf("findings.txt = %q, want %q", got, tc.want)
			}
			if g.snap.symChecked != tc.checked || (tc.checked && len(g.snap.symFindings) == 0) {
				t.Errorf("snapshot checked %t with %d findings", g.snap.symChecked, len(g.snap.symFindings))
			}
			if strings.Join(g.failures, "\n") != tc.failure {
				t.Errorf("failures %q, want %q", g.failures, tc.failure)
			}
		})
	}
}

func TestSnapshotConversions(t *testing.T) {
	var s snapshot
	s.setReloaderStatus("n1", []byte("not json"))
	s.setReloaderStatus("n2", []byte(`{"generation":4,"error":"reload failed"}`))
	if _, ok := s.reloaderStatus["n1"]; ok {
		t.Error("a status that is not JSON was kept")
	}
	if st := s.reloaderStatus["n2"]; st == nil || st.Generation != 4 || st.Error != "reload failed" {
		t.Errorf("n2: %+v", st)
	}
	good := toUnstructured(t, poolObj("a", "192.0.2.0/24"))
	bad := unstructuredNamed("metallb.io/v1beta1", "IPAddressPool", ns, "bad")
	_ = unstructured.SetNestedField(bad.Object, "not-a-list", "spec", "addresses")
	pools := typed[v1beta1.IPAddressPool]([]unstructured.Unstructured{*good, *bad})
	if len(pools) != 1 || pools[0].Name != "a" || pools[0].Spec.Addresses[0] != "192.0.2.0/24" {
		t.Errorf("typed: %+v", pools)
	}
}
