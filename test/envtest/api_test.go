package envtest_test

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/test/envtest"
)

var env *envtest.Env

func TestMain(m *testing.M) {
	var err error
	env, err = envtest.StartEnv()
	if err != nil {
		// Fail loudly: a missing asset is an install bug, not a reason to skip.
		os.Stderr.WriteString("envtest: " + err.Error() + "\n")
		os.Exit(1)
	}
	code := m.Run()
	if err := env.Stop(); err != nil {
		os.Stderr.WriteString("envtest stop: " + err.Error() + "\n")
	}
	os.Exit(code)
}

// scenarioDocs returns every metallb.io document of every seed scenario,
// file by file, in file order.
func scenarioDocs(t *testing.T) map[string][]envtest.Document {
	t.Helper()
	dir, err := envtest.ScenariosDir()
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(dir, "*", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	out := map[string][]envtest.Document{}
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		docs, err := envtest.SplitYAML(fh)
		fh.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, d := range docs {
			if strings.HasPrefix(d.APIVersion, "metallb.io/") {
				rel, _ := filepath.Rel(dir, f)
				out[rel] = append(out[rel], d)
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no metallb.io manifests found under %s", dir)
	}
	return out
}

// cleanMetalLBObjects deletes every metallb.io object so scenarios do not
// see each other (they reuse names such as first-pool).
func cleanMetalLBObjects(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	for _, obj := range []client.Object{
		&v1beta1.IPAddressPool{}, &v1beta2.BGPPeer{}, &v1beta1.BGPAdvertisement{}, &v1beta1.L2Advertisement{},
		&v1beta1.BFDProfile{}, &v1beta1.Community{}, &v1beta1.MetalLB{},
	} {
		if err := env.Client.DeleteAllOf(ctx, obj, client.InNamespace(envtest.Namespace)); err != nil {
			t.Fatalf("delete all %T: %v", obj, err)
		}
	}
	env.WaitWebhookForgets(t, &v1beta1.IPAddressPoolList{}, &v1beta2.BGPPeerList{}, &v1beta1.BGPAdvertisementList{}, &v1beta1.L2AdvertisementList{},
		&v1beta1.BFDProfileList{}, &v1beta1.CommunityList{}, &v1beta1.MetalLBList{})
}

// TestScenariosCreate creates every seed metallb.io object through the API
// server with a typed client, scenario by scenario, and reads it back.
func TestScenariosCreate(t *testing.T) {
	ctx := context.Background()
	byFile := scenarioDocs(t)
	byScenario := map[string][]string{}
	for f := range byFile {
		byScenario[filepath.Dir(f)] = append(byScenario[filepath.Dir(f)], f)
	}
	for scenario, files := range byScenario {
		sort.Strings(files)
		t.Run(scenario, func(t *testing.T) {
			cleanMetalLBObjects(t)
			for _, f := range files {
				for _, d := range byFile[f] {
					u := &unstructured.Unstructured{}
					if err := yaml.Unmarshal([]byte(d.Text), &u.Object); err != nil {
						t.Fatalf("%s: %v", f, err)
					}
					obj, err := env.Scheme.New(u.GroupVersionKind())
					if err != nil {
						t.Fatalf("%s: %s is not a registered metallb.io kind: %v", f, u.GroupVersionKind(), err)
					}
					if err := yaml.UnmarshalStrict([]byte(d.Text), obj); err != nil {
						t.Fatalf("%s: %s %s does not decode strictly into our types: %v", f, d.Kind, u.GetName(), err)
					}
					cobj := obj.(client.Object)
					if err := env.Client.Create(ctx, cobj); err != nil {
						t.Fatalf("%s: create %s %s: %v", f, d.Kind, u.GetName(), err)
					}
					got := cobj.DeepCopyObject().(client.Object)
					if err := env.Client.Get(ctx, client.ObjectKeyFromObject(cobj), got); err != nil {
						t.Fatalf("%s: read back %s %s: %v", f, d.Kind, u.GetName(), err)
					}
				}
			}
		})
	}
}

// TestScenariosKubectlApplyServerSide applies the seed manifests exactly as
// written (metallb.io documents only) with `kubectl apply --server-side`.
func TestScenariosKubectlApplyServerSide(t *testing.T) {
	byFile := scenarioDocs(t)
	files := make([]string, 0, len(byFile))
	for f := range byFile {
		files = append(files, f)
	}
	sort.Strings(files)
	lastScenario := ""
	for _, f := range files {
		if s := filepath.Dir(f); s != lastScenario {
			cleanMetalLBObjects(t)
			lastScenario = s
		}
		var text []string
		for _, d := range byFile[f] {
			text = append(text, d.Text)
		}
		path := filepath.Join(t.TempDir(), filepath.Base(f))
		if err := os.WriteFile(path, []byte(strings.Join(text, "---\n")), 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, err := env.Kubectl("apply", "--server-side", "-f", path)
		if err != nil {
			t.Fatalf("kubectl apply --server-side -f %s: %v\nstdout: %s\nstderr: %s", f, err, stdout, stderr)
		}
		t.Logf("%s:\n%s", f, stdout)
		if got := strings.Count(stdout, "serverside-applied"); got != len(byFile[f]) {
			t.Errorf("%s: %d objects applied, want %d:\n%s", f, got, len(byFile[f]), stdout)
		}
	}
}

// TestDefaults checks the defaults MetalLB users rely on are applied by the
// API server itself.
func TestDefaults(t *testing.T) {
	ctx := context.Background()
	ns := envtest.Namespace
	pool := &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Name: "defaults", Namespace: ns},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/28"}}}
	if err := env.Client.Create(ctx, pool); err != nil {
		t.Fatal(err)
	}
	if pool.Spec.AutoAssign == nil || !*pool.Spec.AutoAssign {
		t.Errorf("autoAssign default = %v, want true", pool.Spec.AutoAssign)
	}
	adv := &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Name: "defaults", Namespace: ns}}
	if err := env.Client.Create(ctx, adv); err != nil {
		t.Fatal(err)
	}
	if adv.Spec.AggregationLength == nil || *adv.Spec.AggregationLength != 32 ||
		adv.Spec.AggregationLengthV6 == nil || *adv.Spec.AggregationLengthV6 != 128 {
		t.Errorf("aggregation defaults = %v/%v, want 32/128", adv.Spec.AggregationLength, adv.Spec.AggregationLengthV6)
	}
	peer := &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "defaults", Namespace: ns},
		Spec: v1beta2.BGPPeerSpec{MyASN: 64512, ASN: 64513, Address: "198.18.0.254"}}
	if err := env.Client.Create(ctx, peer); err != nil {
		t.Fatal(err)
	}
	if peer.Spec.Port == nil || *peer.Spec.Port != 179 {
		t.Errorf("peerPort default = %v, want 179", peer.Spec.Port)
	}
	if peer.Spec.HoldTime != nil || peer.Spec.KeepaliveTime != nil || peer.Spec.ConnectTime != nil {
		t.Errorf("unset timers came back set: %+v", peer.Spec)
	}
	t.Cleanup(func() {
		for _, o := range []client.Object{pool, adv, peer} {
			_ = env.Client.Delete(ctx, o)
		}
	})
}

// TestSchemaRejections checks the API server refuses wrong types and
// out-of-range values and names the field.
func TestSchemaRejections(t *testing.T) {
	cases := []struct {
		name       string
		manifest   string
		wantFields []string
	}{
		{"peerPort above 16384", `
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: bad-port}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 198.18.0.254, peerPort: 70000}`, []string{"spec.peerPort"}},
		{"v1beta1 peerPort above 16384", `
apiVersion: metallb.io/v1beta1
kind: BGPPeer
metadata: {name: bad-port-v1beta1}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 198.18.0.254, peerPort: 70000}`, []string{"spec.peerPort"}},
		{"peerPort 0", `
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: zero-port}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 198.18.0.254, peerPort: 0}`, []string{"spec.peerPort"}},
		{"myASN not a number", `
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: bad-asn}
spec: {myASN: "sixty-four", peerASN: 64513, peerAddress: 198.18.0.254}`, []string{"spec.myASN"}},
		{"myASN above 32 bits", `
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: big-asn}
spec: {myASN: 4294967296, peerASN: 64513, peerAddress: 198.18.0.254}`, []string{"spec.myASN"}},
		{"myASN missing", `
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: no-asn}
spec: {peerASN: 64513, peerAddress: 198.18.0.254}`, []string{"spec.myASN"}},
		{"dynamicASN unknown", `
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: bad-dynamic}
spec: {myASN: 64512, dynamicASN: sideways, peerAddress: 198.18.0.254}`, []string{"spec.dynamicASN"}},
		{"connectTime with milliseconds", `
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: bad-connect}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 198.18.0.254, connectTime: 1500ms}`, []string{"spec.connectTime", "whole number of seconds"}},
		{"connectTime above 65535s", `
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata: {name: long-connect}
spec: {myASN: 64512, peerASN: 64513, peerAddress: 198.18.0.254, connectTime: 20h}`, []string{"spec.connectTime", "65535s"}},
		{"detectMultiplier 1", `
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: bad-multiplier}
spec: {detectMultiplier: 1}`, []string{"spec.detectMultiplier"}},
		{"transmitInterval 5", `
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: bad-tx}
spec: {transmitInterval: 5}`, []string{"spec.transmitInterval"}},
		{"minimumTtl 255", `
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: bad-ttl}
spec: {minimumTtl: 255}`, []string{"spec.minimumTtl"}},
		{"echoMode not a bool", `
apiVersion: metallb.io/v1beta1
kind: BFDProfile
metadata: {name: bad-echo}
spec: {echoMode: "sometimes"}`, []string{"spec.echoMode"}},
		{"aggregationLength 0", `
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bad-agg}
spec: {aggregationLength: 0}`, []string{"spec.aggregationLength"}},
		{"aggregationLengthV6 129", `
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: bad-agg6}
spec: {aggregationLengthV6: 129}`, []string{"spec.aggregationLengthV6"}},
		{"serviceSelectors with aggregation", `
apiVersion: metallb.io/v1beta1
kind: BGPAdvertisement
metadata: {name: sel-agg}
spec: {aggregationLength: 24, serviceSelectors: [{matchLabels: {app: web}}]}`, []string{"serviceSelectors", "aggregationLength"}},
		{"preferredNodeSelectors weight 0", `
apiVersion: metallb.io/v1beta1
kind: L2Advertisement
metadata: {name: bad-weight}
spec: {preferredNodeSelectors: [{weight: 0, preference: {matchLabels: {a: b}}}]}`, []string{"spec.preferredNodeSelectors[0].weight"}},
		{"pool without addresses", `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: empty}
spec: {addresses: []}`, []string{"spec.addresses"}},
		{"pool autoAssign not a bool", `
apiVersion: metallb.io/v1beta1
kind: IPAddressPool
metadata: {name: bad-auto}
spec: {addresses: [203.0.113.0/24], autoAssign: "yes"}`, []string{"spec.autoAssign"}},
		{"MetalLB logLevel unknown", `
apiVersion: metallb.io/v1beta1
kind: MetalLB
metadata: {name: metallb}
spec: {logLevel: chatty}`, []string{"spec.logLevel"}},
		{"MetalLB bgpBackend unknown", `
apiVersion: metallb.io/v1beta1
kind: MetalLB
metadata: {name: metallb}
spec: {bgpBackend: bird}`, []string{"spec.bgpBackend"}},
		// A value built to escape its YAML scalar in the rendered speaker
		// DaemonSet (issue 17): refused by the schema before any webhook.
		{"MetalLB loadBalancerClass with a newline", `
apiVersion: metallb.io/v1beta1
kind: MetalLB
metadata: {name: metallb}
spec: {loadBalancerClass: "x\n      - name: evil\n        image: evil"}`, []string{"spec.loadBalancerClass"}},
		{"MetalLB loadBalancerClass with a comment", `
apiVersion: metallb.io/v1beta1
kind: MetalLB
metadata: {name: metallb}
spec: {loadBalancerClass: "x #1"}`, []string{"spec.loadBalancerClass"}},
		{"MetalLB priorityClassName not a name", `
apiVersion: metallb.io/v1beta1
kind: MetalLB
metadata: {name: metallb}
spec: {speakerConfig: {priorityClassName: "High Priority"}}`, []string{"spec.speakerConfig.priorityClassName"}},
	}
	ctx := context.Background()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			u := &unstructured.Unstructured{}
			if err := yaml.Unmarshal([]byte(tc.manifest), &u.Object); err != nil {
				t.Fatal(err)
			}
			u.SetNamespace(envtest.Namespace)
			err := env.Client.Create(ctx, u)
			if err == nil {
				_ = env.Client.Delete(ctx, u)
				t.Fatalf("API server accepted %s", tc.name)
			}
			if !apierrors.IsInvalid(err) && !apierrors.IsBadRequest(err) {
				t.Fatalf("want an Invalid/BadRequest error, got %v", err)
			}
			for _, f := range tc.wantFields {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error does not name %q: %v", f, err)
				}
			}
		})
	}
}

// TestCELTransitionRules checks the immutability rules.
func TestCELTransitionRules(t *testing.T) {
	ctx := context.Background()
	peer := &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "gr", Namespace: envtest.Namespace},
		Spec: v1beta2.BGPPeerSpec{MyASN: 64512, ASN: 64513, Address: "198.18.0.254", EnableGracefulRestart: true}}
	if err := env.Client.Create(ctx, peer); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, peer) })
	peer.Spec.EnableGracefulRestart = false
	// enableGracefulRestart=false is omitted from JSON; a transition rule on
	// an omitted field cannot fire, so set it through a merge patch that
	// writes an explicit false.
	patch := client.RawPatch("application/merge-patch+json", []byte(`{"spec":{"enableGracefulRestart":false}}`))
	err := env.Client.Patch(ctx, peer, patch)
	if err == nil || !strings.Contains(err.Error(), "enableGracefulRestart cannot be changed") {
		t.Errorf("changing enableGracefulRestart: got %v", err)
	}

	st := &v1beta1.ServiceL2Status{ObjectMeta: metav1.ObjectMeta{Name: "l2-nginx", Namespace: envtest.Namespace}}
	if err := env.Client.Create(ctx, st); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, st) })
	st.Status = v1beta1.MetalLBServiceL2Status{Node: "node-1", ServiceName: "nginx", ServiceNamespace: "default"}
	if err := env.Client.Status().Update(ctx, st); err != nil {
		t.Fatalf("first status write: %v", err)
	}
	st.Status.Node = "node-2"
	err = env.Client.Status().Update(ctx, st)
	if err == nil || !strings.Contains(err.Error(), "node is immutable") {
		t.Errorf("changing status.node: got %v", err)
	}

	cs := &v1beta1.ConfigurationState{ObjectMeta: metav1.ObjectMeta{Name: "controller", Namespace: envtest.Namespace}}
	if err := env.Client.Create(ctx, cs); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, cs) })
	cs.Status.Result = "Maybe"
	err = env.Client.Status().Update(ctx, cs)
	if err == nil || !strings.Contains(err.Error(), "status.result") {
		t.Errorf("status.result Maybe: got %v", err)
	}
}

// TestBGPPeerVersions checks a v1beta1 BGPPeer goes through the conversion
// webhook: stored as v1beta2, read back as v1beta1 unchanged, and v1beta2-only
// fields survive an update made through v1beta1.
func TestBGPPeerVersions(t *testing.T) {
	ctx := context.Background()
	old := &v1beta1.BGPPeer{
		ObjectMeta: metav1.ObjectMeta{Name: "legacy", Namespace: envtest.Namespace},
		Spec: v1beta1.BGPPeerSpec{
			MyASN: 64512, ASN: 64513, Address: "198.18.0.254", Port: 1179, SrcAddress: "198.18.0.1",
			HoldTime: &metav1.Duration{Duration: 90 * time.Second}, RouterID: "198.18.0.1",
			NodeSelectors: []v1beta1.NodeSelector{{MatchLabels: map[string]string{"rack": "a"},
				MatchExpressions: []v1beta1.MatchExpression{{Key: "zone", Operator: "In", Values: []string{"z1"}}}}},
			BFDProfile: "fast", EBGPMultiHop: true,
		},
	}
	if err := env.Client.Create(ctx, old); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Client.Delete(ctx, old) })

	var hub v1beta2.BGPPeer
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(old), &hub); err != nil {
		t.Fatal(err)
	}
	if hub.Spec.Port == nil || *hub.Spec.Port != 1179 || hub.Spec.KeepaliveTime != nil ||
		len(hub.Spec.NodeSelectors) != 1 || hub.Spec.NodeSelectors[0].MatchExpressions[0].Operator != metav1.LabelSelectorOpIn {
		t.Errorf("read as v1beta2: %+v", hub.Spec)
	}

	var back v1beta1.BGPPeer
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(old), &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Spec, old.Spec) {
		t.Errorf("v1beta1 read back changed:\n got %+v\nwant %+v", back.Spec, old.Spec)
	}

	// What is stored is v1beta2: check in etcd through the API's storage
	// version reported on the CRD.
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "bgppeers.metallb.io"}, crd); err != nil {
		t.Fatal(err)
	}
	if got := crd.Status.StoredVersions; len(got) != 1 || got[0] != "v1beta2" {
		t.Errorf("stored versions = %v, want [v1beta2]", got)
	}

	// v1beta2-only fields survive a read-modify-write through v1beta1.
	hub.Spec.ConnectTime = &metav1.Duration{Duration: 5 * time.Second}
	hub.Spec.DualStackAddressFamily = true
	if err := env.Client.Update(ctx, &hub); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(old), &back); err != nil {
		t.Fatal(err)
	}
	if back.Annotations[v1beta1.V1beta2FieldsAnnotation] == "" {
		t.Fatalf("v1beta1 view lacks the %s annotation: %v", v1beta1.V1beta2FieldsAnnotation, back.Annotations)
	}
	back.Spec.EBGPMultiHop = false
	if err := env.Client.Update(ctx, &back); err != nil {
		t.Fatal(err)
	}
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(old), &hub); err != nil {
		t.Fatal(err)
	}
	if hub.Spec.ConnectTime == nil || hub.Spec.ConnectTime.Duration != 5*time.Second || !hub.Spec.DualStackAddressFamily || hub.Spec.EBGPMultiHop {
		t.Errorf("after v1beta1 update: %+v", hub.Spec)
	}
	if _, found := hub.Annotations[v1beta1.V1beta2FieldsAnnotation]; found {
		t.Errorf("stored object kept the conversion annotation")
	}
}
