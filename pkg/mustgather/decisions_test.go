package mustgather

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakedynamic "k8s.io/client-go/dynamic/fake"
	kfake "k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"
	utilexec "k8s.io/client-go/util/exec"
)

func withResources(extra ...[]apiRes) []apiRes {
	out := append([]apiRes(nil), coreResources...)
	for _, e := range extra {
		out = append(out, e...)
	}
	return out
}

func csvObj(namespace, name string, ownsMetalLB, copied bool) *unstructured.Unstructured {
	u := unstructuredNamed("operators.coreos.com/v1alpha1", "ClusterServiceVersion", namespace, name)
	crd := "widgets.example.com"
	if ownsMetalLB {
		crd = "metallbs.metallb.io"
	}
	_ = unstructured.SetNestedSlice(u.Object, []any{map[string]any{"name": crd}}, "spec", "customresourcedefinitions", "owned")
	_ = unstructured.SetNestedField(u.Object, "Succeeded", "status", "phase")
	if copied {
		u.SetLabels(map[string]string{"olm.copiedFrom": "operators"})
	}
	return u
}

func subscriptionObj(namespace, name, pkg string) *unstructured.Unstructured {
	u := unstructuredNamed("operators.coreos.com/v1alpha1", "Subscription", namespace, name)
	_ = unstructured.SetNestedField(u.Object, pkg, "spec", "name")
	return u
}

func TestFindNamespace(t *testing.T) {
	cases := []struct {
		name          string
		flag          string
		resources     []apiRes
		dyn           []runtime.Object
		failMetalLBs  bool
		wantNS        string
		wantFound     string
		wantInstalled bool
		wantFailures  []string
	}{
		{name: "the flag wins; installed when the MetalLB API is served", flag: "custom", resources: withResources(metallbResources),
			dyn: []runtime.Object{metallbObj("elsewhere", "metallb")}, wantNS: "custom", wantFound: "given with --namespace", wantInstalled: true},
		{name: "the flag without the MetalLB API: not installed", flag: "custom", resources: withResources(),
			wantNS: "custom", wantFound: "given with --namespace"},
		{name: "the MetalLB object named metallb is preferred", resources: withResources(metallbResources),
			dyn:    []runtime.Object{metallbObj("a", "aaa"), metallbObj("b", "metallb"), metallbObj("c", "zzz")},
			wantNS: "b", wantFound: "the MetalLB object b/metallb", wantInstalled: true},
		{name: "any MetalLB object otherwise", resources: withResources(metallbResources),
			dyn:    []runtime.Object{metallbObj("lb", "mine")},
			wantNS: "lb", wantFound: "the MetalLB object lb/mine", wantInstalled: true},
		{name: "the CSV owning the MetalLB CRD, not its copies", resources: withResources(metallbResources, olmResources),
			dyn:    []runtime.Object{csvObj("aaa-copy", "lbstack.v1", true, true), csvObj("other", "widgets.v1", false, false), csvObj("operators", "lbstack.v1", true, false)},
			wantNS: "operators", wantFound: "the OLM ClusterServiceVersion operators/lbstack.v1", wantInstalled: true},
		{name: "a Subscription to lbstack", resources: withResources(olmResources),
			dyn:    []runtime.Object{subscriptionObj("x", "other", "cert-manager"), subscriptionObj("lbstack-system", "sub", "lbstack")},
			wantNS: "lbstack-system", wantFound: "the OLM Subscription lbstack-system/sub to package lbstack", wantInstalled: true},
		{name: "a Subscription to MetalLB's operator", resources: withResources(olmResources),
			dyn:    []runtime.Object{subscriptionObj("mo", "sub", "metallb-operator")},
			wantNS: "mo", wantFound: "the OLM Subscription mo/sub to package metallb-operator", wantInstalled: true},
		{name: "nothing: the default, not installed", resources: withResources(olmResources),
			dyn:    []runtime.Object{subscriptionObj("x", "other", "cert-manager")},
			wantNS: DefaultNamespace, wantFound: "the default: no MetalLB object, CSV or Subscription found"},
		{name: "the API served without a MetalLB object: the default, installed", resources: withResources(metallbResources),
			wantNS: DefaultNamespace, wantFound: "the default: no MetalLB object, CSV or Subscription found", wantInstalled: true},
		{name: "MetalLB objects that cannot be listed are a failure; the default is used", resources: withResources(metallbResources), failMetalLBs: true,
			wantNS: DefaultNamespace, wantFound: "the default: no MetalLB object, CSV or Subscription found", wantInstalled: true,
			wantFailures: []string{"(namespace detection) metallbs: metallbs.metallb.io is forbidden: no"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &cluster{resources: tc.resources, dyn: tc.dyn, opts: Options{Namespace: tc.flag}}
			g := c.gatherer(t)
			if tc.failMetalLBs {
				forbidDynamic(g, "metallbs")
			}
			if err := g.discover(); err != nil {
				t.Fatal(err)
			}
			g.findNamespace(context.Background())
			if g.res.Namespace != tc.wantNS || g.res.Found != tc.wantFound || g.res.OperatorInstalled != tc.wantInstalled || g.snap.namespace != tc.wantNS {
				t.Errorf("namespace %q found by %q installed %t (snapshot %q), want %q, %q, %t", g.res.Namespace, g.res.Found, g.res.OperatorInstalled, g.snap.namespace, tc.wantNS, tc.wantFound, tc.wantInstalled)
			}
			if fmt.Sprint(g.failures) != fmt.Sprint(tc.wantFailures) {
				t.Errorf("failures %q, want %q", g.failures, tc.wantFailures)
			}
		})
	}
}

func forbidDynamic(g *gatherer, resource string) {
	g.dyn.(*fakedynamic.FakeDynamicClient).PrependReactor("list", resource, func(a k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Group: a.GetResource().Group, Resource: resource}, "", errors.New("no"))
	})
}

func forbidKube(resource string) func(*kfake.Clientset) {
	return func(c *kfake.Clientset) {
		c.PrependReactor("list", resource, func(a k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: resource}, "", errors.New("no"))
		})
	}
}

// TestSecretsForScrubbing: the values learnt, from which namespaces, and
// what happens when Secrets cannot be read.
func TestSecretsForScrubbing(t *testing.T) {
	cases := []struct {
		name     string
		kube     []runtime.Object
		dyn      []runtime.Object
		reactors []func(*kfake.Clientset)
		in       string
		want     string
		// withheld: workload output is withheld (incomplete), with this
		// failure recorded.
		wantFailure string
	}{
		{name: "every value of the stack namespace's Secrets",
			kube: []runtime.Object{secretObj(ns, "s", corev1.SecretTypeOpaque, map[string]string{"a": "value-one", "b": "value-two"})},
			in:   "value-one value-two", want: "<redacted> <redacted>"},
		{name: "stringData too",
			kube: []runtime.Object{&corev1.Secret{ObjectMeta: nsMeta(ns, "s"), StringData: map[string]string{"k": "string-data-value", "password": "pq"}}},
			in:   "string-data-value pq", want: "<redacted> <redacted>"},
		{name: "a short basic-auth password is scrubbed as a word, a short other value is not",
			kube: []runtime.Object{secretObj(ns, "s", corev1.SecretTypeBasicAuth, map[string]string{"password": "pw", "username": "ab"})},
			in:   "pw ab pwx", want: "<redacted> ab pwx"},
		{name: "Secrets of namespaces holding BGPPeers",
			kube: []runtime.Object{secretObj("peers", "s", corev1.SecretTypeOpaque, map[string]string{"k": "peer-namespace-value"}),
				secretObj("unrelated", "s", corev1.SecretTypeOpaque, map[string]string{"k": "unrelated-value"})},
			dyn: []runtime.Object{peerObj("peers", "edge", "")},
			in:  "peer-namespace-value unrelated-value", want: "<redacted> unrelated-value"},
		{name: "Secrets of namespaces holding MetalLB objects",
			kube: []runtime.Object{secretObj("lb", "s", corev1.SecretTypeOpaque, map[string]string{"k": "metallb-namespace-value"})},
			dyn:  []runtime.Object{metallbObj("lb", "metallb")},
			in:   "metallb-namespace-value", want: "<redacted>"},
		{name: "a BGPPeer's spec.password whatever its length",
			dyn: []runtime.Object{peerObj(ns, "edge", "xy")},
			in:  "key xy here", want: "key <redacted> here"},
		{name: "Secrets that cannot be read: a failure, and workload output is withheld",
			reactors: []func(*kfake.Clientset){forbidKube("secrets")},
			in:       "anything", want: "anything",
			wantFailure: `(secret scrubbing) namespace metallb-system: cannot read Secrets to scrub their values from the output: logs and command outputs are withheld (password fields and FRR passwords are still masked): secrets is forbidden: no`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &cluster{resources: withResources(metallbResources), kube: tc.kube, dyn: tc.dyn, reactors: tc.reactors}
			g := c.gatherer(t)
			g.res.Namespace = ns
			if err := g.discover(); err != nil {
				t.Fatal(err)
			}
			g.loadSecretsForScrubbing(context.Background())
			if got := string(g.scrub.scrub([]byte(tc.in))); got != tc.want {
				t.Errorf("scrub(%q) = %q, want %q", tc.in, got, tc.want)
			}
			complete, _ := g.scrub.complete()
			if complete != (tc.wantFailure == "") {
				t.Errorf("complete %t", complete)
			}
			if got := strings.Join(g.failures, "\n"); got != tc.wantFailure {
				t.Errorf("failures %q, want %q", got, tc.wantFailure)
			}
		})
	}
}

func TestTidy(t *testing.T) {
	peer := toUnstructured(t, peerObj(ns, "edge", "secret-pw"))
	peer.SetManagedFields([]metav1.ManagedFieldsEntry{{Manager: "kubectl"}})
	noPassword := toUnstructured(t, peerObj(ns, "edge", ""))
	secret := toUnstructured(t, &corev1.Secret{TypeMeta: tm("v1", "Secret"), ObjectMeta: nsMeta(ns, "s"),
		Data: map[string][]byte{"k": []byte("v")}, StringData: map[string]string{"k": "v"}})
	otherPassword := unstructuredNamed("example.com/v1", "BGPPeer", ns, "lookalike")
	_ = unstructured.SetNestedField(otherPassword.Object, "kept", "spec", "password")
	cases := []struct {
		name string
		obj  *unstructured.Unstructured
		want map[string]any // field path -> value (nil: absent)
	}{
		{"a BGPPeer's password is masked and managedFields dropped", peer, map[string]any{"spec.password": "<redacted>", "metadata.managedFields": nil}},
		{"a BGPPeer without password gets none", noPassword, map[string]any{"spec.password": nil}},
		{"a Secret loses data and stringData", secret, map[string]any{"data": nil, "stringData": nil, "metadata.name": "s"}},
		{"a BGPPeer of another group is left", otherPassword, map[string]any{"spec.password": "kept"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tidy(tc.obj)
			for path, want := range tc.want {
				got, found, _ := unstructured.NestedFieldNoCopy(tc.obj.Object, strings.Split(path, ".")...)
				if want == nil {
					if found {
						t.Errorf("%s = %v, want absent", path, got)
					}
				} else if got != want {
					t.Errorf("%s = %v, want %v", path, got, want)
				}
			}
		})
	}
}

// TestPodLogs: which logs are asked for, per container state, and that a
// failing log is recorded while the others are still collected.
func TestPodLogs(t *testing.T) {
	waiting := corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	crashed := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}
	cases := []struct {
		name   string
		status *corev1.ContainerStatus // nil: no status yet
		// want: file -> content under logs/ ("" absent)
		want map[string]string
	}{
		{name: "running: its current log", status: &corev1.ContainerStatus{State: running},
			want: map[string]string{"c.log": "log of metallb-system/p c previous=false\n", "c.previous.log": ""}},
		{name: "no status yet: a note, no log asked", status: nil,
			want: map[string]string{"c.log": "(the container has not started: no log)\n", "c.previous.log": ""}},
		{name: "waiting for the first start: a note", status: &corev1.ContainerStatus{State: waiting},
			want: map[string]string{"c.log": "(the container has not started: no log)\n", "c.previous.log": ""}},
		{name: "waiting after a crash: current and previous", status: &corev1.ContainerStatus{State: waiting, RestartCount: 1, LastTerminationState: crashed},
			want: map[string]string{"c.log": "log of metallb-system/p c previous=false\n", "c.previous.log": "log of metallb-system/p c previous=true\n"}},
		{name: "restarted: current and previous", status: &corev1.ContainerStatus{State: running, RestartCount: 3},
			want: map[string]string{"c.log": "log of metallb-system/p c previous=false\n", "c.previous.log": "log of metallb-system/p c previous=true\n"}},
		{name: "a last termination without restart count: previous too", status: &corev1.ContainerStatus{State: running, LastTerminationState: crashed},
			want: map[string]string{"c.log": "log of metallb-system/p c previous=false\n", "c.previous.log": "log of metallb-system/p c previous=true\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Pod{ObjectMeta: nsMeta(ns, "p"), Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c"}}}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
			if tc.status != nil {
				st := *tc.status
				st.Name = "c"
				p.Status.ContainerStatuses = []corev1.ContainerStatus{st}
			}
			c := &cluster{resources: withResources(), kube: []runtime.Object{p}}
			g := c.gatherer(t)
			g.res.Namespace = ns
			g.gatherPods(context.Background())
			files := tree(t, g.opts.DestDir)
			for f, want := range tc.want {
				got, ok := files["namespaces/metallb-system/pods/p/logs/"+f]
				if want == "" && ok {
					t.Errorf("%s written: %q", f, got)
				} else if want != "" && got != want {
					t.Errorf("%s = %q, want %q", f, got, want)
				}
			}
		})
	}
}

func TestPodLogFailureDoesNotStopTheGather(t *testing.T) {
	pods := []runtime.Object{
		runningPod("a", "n1", nil, "broken", "fine"),
		runningPod("b", "n2", nil, "fine"),
	}
	c := &cluster{resources: withResources(), kube: pods, logs: func(namespace, pod string, opts *corev1.PodLogOptions) (*http.Response, error) {
		if opts.Container == "broken" {
			return nil, errors.New("kubelet unreachable")
		}
		return okBody("ok " + pod + "\n")
	}}
	g := c.gatherer(t)
	g.res.Namespace = ns
	g.gatherPods(context.Background())
	files := tree(t, g.opts.DestDir)
	if files["namespaces/metallb-system/pods/a/logs/fine.log"] != "ok a\n" || files["namespaces/metallb-system/pods/b/logs/fine.log"] != "ok b\n" {
		t.Errorf("the other logs were not collected: %q", keys(files))
	}
	if _, ok := files["namespaces/metallb-system/pods/a/logs/broken.log"]; ok {
		t.Errorf("a log that failed was written")
	}
	if len(g.failures) != 1 || !strings.HasPrefix(g.failures[0], "namespaces/metallb-system/pods/a/logs/broken.log: logs of metallb-system/a container broken: ") ||
		!strings.Contains(g.failures[0], "kubelet unreachable") {
		t.Errorf("failures %q", g.failures)
	}
}

func TestPodLogOptions(t *testing.T) {
	since := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	cases := []struct {
		name         string
		opts         Options
		wantSeconds  int64 // 0: unset
		wantSinceSet bool
	}{
		{name: "everything by default", opts: Options{}},
		{name: "--since", opts: Options{Since: 90 * time.Minute}, wantSeconds: 5400},
		{name: "--since-time wins over --since", opts: Options{Since: time.Hour, SinceTime: &since}, wantSinceSet: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got *corev1.PodLogOptions
			c := &cluster{resources: withResources(), kube: []runtime.Object{runningPod("p", "n1", nil, "c")}, opts: tc.opts,
				logs: func(_, _ string, o *corev1.PodLogOptions) (*http.Response, error) { got = o; return okBody("x") }}
			g := c.gatherer(t)
			g.res.Namespace = ns
			g.gatherPods(context.Background())
			if got == nil {
				t.Fatal("no log asked")
			}
			if got.LimitBytes == nil || *got.LimitBytes != maxLogBytes || got.Container != "c" {
				t.Errorf("limit %v container %q", got.LimitBytes, got.Container)
			}
			secs := int64(0)
			if got.SinceSeconds != nil {
				secs = *got.SinceSeconds
			}
			if secs != tc.wantSeconds || (got.SinceTime != nil) != tc.wantSinceSet {
				t.Errorf("sinceSeconds %d sinceTime %v", secs, got.SinceTime)
			}
			if tc.wantSinceSet && !got.SinceTime.Time.Equal(since) {
				t.Errorf("sinceTime %v, want %v", got.SinceTime, since)
			}
		})
	}
}

func TestSpeakerPods(t *testing.T) {
	owned := func(name, kind, owner string) corev1.Pod {
		return corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: []metav1.OwnerReference{{Kind: kind, Name: owner}}}}
	}
	labelled := corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "by-label", Labels: map[string]string{"component": "speaker"}}}
	g := &gatherer{}
	g.snap.pods = []corev1.Pod{
		labelled,
		owned("by-daemonset", "DaemonSet", "lbstack-speaker"),
		owned("controller", "ReplicaSet", "controller-abc"),
		owned("other-daemonset", "DaemonSet", "node-exporter"),
		owned("speaker-named-replicaset", "ReplicaSet", "speaker"),
		{ObjectMeta: metav1.ObjectMeta{Name: "other-label", Labels: map[string]string{"component": "controller"}}},
	}
	var got []string
	for _, p := range g.speakerPods() {
		got = append(got, p.Name)
	}
	if want := "by-label,by-daemonset"; strings.Join(got, ",") != want {
		t.Errorf("speaker pods %q, want %s", got, want)
	}
}

func TestDescribeExecError(t *testing.T) {
	long := strings.Repeat("e", 600)
	cases := []struct {
		name string
		r    execResult
		want string
	}{
		{"exit code with stderr", execResult{Err: utilexec.CodeExitError{Err: errors.New("x"), Code: 2}, Stderr: []byte("  no such file\n")}, "exit code 2: no such file"},
		{"other error with stderr", execResult{Err: errors.New("stream closed"), Stderr: []byte("half")}, "stream closed: half"},
		{"other error alone", execResult{Err: errors.New("stream closed")}, "stream closed"},
		{"stderr is cut at 500 bytes", execResult{Err: utilexec.CodeExitError{Err: errors.New("x"), Code: 1}, Stderr: []byte(long)}, "exit code 1: " + long[:500] + "..."},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := describeExecError(tc.r).Error(); got != tc.want {
				t.Errorf("%q, want %q", got, tc.want)
			}
		})
	}
}
