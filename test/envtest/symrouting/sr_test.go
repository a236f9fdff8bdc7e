package symrouting_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
	"github.com/lbstack/lbstack/pkg/symrouting/generate"
	srreconciler "github.com/lbstack/lbstack/pkg/symrouting/reconciler"
	"github.com/lbstack/lbstack/test/envtest"
)

// scenarioSR is the declaration equivalent to the scenario's five objects
// (as in pkg/symrouting/generate's scenario test).
func scenarioSR() *v1alpha1.SymmetricRouting {
	three := intstr.FromInt32(3)
	return &v1alpha1.SymmetricRouting{
		ObjectMeta: metav1.ObjectMeta{Name: "vrf"},
		Spec: v1alpha1.SymmetricRoutingSpec{
			VRF: v1alpha1.SymmetricVRF{
				Name:           "ens4vrf",
				RouteTableID:   2,
				NodeSelector:   map[string]string{"vrf": "true"},
				Port:           "ens4",
				Addresses:      []string{"198.19.130.130/24"},
				MaxUnavailable: &three,
			},
			Peer: v1alpha1.SymmetricPeer{Name: "frrviavrf", MyASN: 100, ASN: 200, Address: "198.19.130.1"},
			Services: []v1alpha1.SymmetricService{{
				Namespace: appNS, Name: "server1",
				Addresses: []string{"203.0.113.200/32"},
				PoolName:  "first-pool", AdvertisementName: "first-adv",
			}},
		},
	}
}

func getSR(t *testing.T, c client.Client, name string) *v1alpha1.SymmetricRouting {
	t.Helper()
	var sr v1alpha1.SymmetricRouting
	if err := c.Get(context.Background(), types.NamespacedName{Name: name}, &sr); err != nil {
		t.Fatal(err)
	}
	return &sr
}

func srCondition(t *testing.T, c client.Client, name, typ string) *metav1.Condition {
	t.Helper()
	return meta.FindStatusCondition(getSR(t, c, name).Status.Conditions, typ)
}

func waitSRCondition(t *testing.T, c client.Client, name, typ string, status metav1.ConditionStatus, reason string) *metav1.Condition {
	t.Helper()
	var cond *metav1.Condition
	eventually(t, fmt.Sprintf("symmetricrouting %s %s=%s (%s)", name, typ, status, reason), func() error {
		cond = srCondition(t, c, name, typ)
		if cond == nil || cond.Status != status || (reason != "" && cond.Reason != reason) {
			return fmt.Errorf("condition %+v; status %+v", cond, getSR(t, c, name).Status)
		}
		return nil
	})
	return cond
}

// generatedObjects are the scenario's five objects as generated for sr.
func generatedObjects() []client.Object {
	return []client.Object{
		&nmstatev1.NodeNetworkConfigurationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "vrf"}},
		&v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "frrviavrf"}},
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "first-pool"}},
		&v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "first-adv"}},
		&ovnv1.EgressService{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "server1"}},
	}
}

func read(t *testing.T, c client.Client, o client.Object) client.Object {
	t.Helper()
	out := o.DeepCopyObject().(client.Object)
	if err := c.Get(context.Background(), client.ObjectKeyFromObject(o), out); err != nil {
		t.Fatalf("%T %s: %v", o, client.ObjectKeyFromObject(o), err)
	}
	return out
}

func resourceVersions(t *testing.T, c client.Client, objs ...client.Object) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range objs {
		l := read(t, c, o)
		out[fmt.Sprintf("%T %s", o, client.ObjectKeyFromObject(o))] = l.GetResourceVersion()
	}
	return out
}

// stateTransformer compares NNCP desired states as YAML trees.
var stateTransformer = cmp.Transformer("desiredState", func(s nmstateshared.State) map[string]any {
	var m map[string]any
	if err := yaml.Unmarshal(s.Raw, &m); err != nil {
		return map[string]any{"unparsable": err.Error(), "raw": string(s.Raw)}
	}
	return m
})

// comparable strips what the API server sets (and the coordinator's hash
// annotation, asserted separately) from a live object's metadata.
func comparable(t *testing.T, o client.Object) {
	t.Helper()
	if o.GetAnnotations()[srreconciler.HashAnnotation] == "" {
		t.Errorf("%T %s has no %s annotation", o, o.GetName(), srreconciler.HashAnnotation)
	}
	ann := o.GetAnnotations()
	delete(ann, srreconciler.HashAnnotation)
	if len(ann) == 0 {
		ann = nil
	}
	o.SetAnnotations(ann)
	o.SetResourceVersion("")
	o.SetUID("")
	o.SetGeneration(0)
	o.SetCreationTimestamp(metav1.Time{})
	o.SetManagedFields(nil)
	o.GetObjectKind().SetGroupVersionKind(o.GetObjectKind().GroupVersionKind().GroupVersion().WithKind(""))
}

// TestSymmetricRouting: one declaration equivalent to the scenario
// generates its five objects (compared field by field with the scenario's
// files, read back from the API server), reports progress, writes nothing
// when nothing changed, follows updates, never overwrites a hand-made
// object, and deletes what it generated with it.
func TestSymmetricRouting(t *testing.T) {
	c := env.Client
	ctx := context.Background()
	cleanup(t, c)
	t.Cleanup(func() { cleanup(t, c) })
	ensureNamespace(t, c, appNS)
	createNodes(t, c)
	createConfigNetwork(t, c)
	createService(t, c, "server1", "first-pool", "203.0.113.200")
	put(t, c, scenarioObject(t, "metallb.yaml"))
	h := startCoordinator(t, env)

	if err := c.Create(ctx, scenarioSR()); err != nil {
		t.Fatal(err)
	}
	sr := getSR(t, c, "vrf")
	eventually(t, "the five objects exist", func() error {
		for _, o := range generatedObjects() {
			if err := c.Get(ctx, client.ObjectKeyFromObject(o), o.DeepCopyObject().(client.Object)); err != nil {
				return fmt.Errorf("%T %s: %w", o, o.GetName(), err)
			}
		}
		return nil
	})

	t.Run("field by field", func(t *testing.T) {
		labels := map[string]string{"lbstack.io/symmetric-routing": "vrf", "app.kubernetes.io/managed-by": "lbstack"}
		owners := []metav1.OwnerReference{{
			APIVersion: "lbstack.io/v1alpha1", Kind: "SymmetricRouting", Name: "vrf", UID: sr.UID,
			Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true),
		}}
		ours := func(m *metav1.ObjectMeta) {
			m.Labels, m.OwnerReferences = labels, owners
		}
		clear := func(o client.Object) { o.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{}) }

		// Intended differences (as in pkg/symrouting/generate): ours
		// (labels, owner), the policy is named like the declaration, the
		// peer only on the VRF's nodes, the pool dedicated. API server
		// defaults: peerPort, aggregationLength(V6).
		pol := scenarioObject(t, "node-network-vrf.yaml").(*nmstatev1.NodeNetworkConfigurationPolicy)
		pol.Name = "vrf"
		ours(&pol.ObjectMeta)
		peer := scenarioObject(t, "frr-via-vrf.yaml").(*v1beta2.BGPPeer)
		peer.Spec.NodeSelectors = []metav1.LabelSelector{{MatchLabels: map[string]string{"vrf": "true"}}}
		peer.Spec.Port = ptr.To[uint16](179)
		ours(&peer.ObjectMeta)
		pool := scenarioObject(t, "first-pool.yaml").(*v1beta1.IPAddressPool)
		pool.Spec.AutoAssign = ptr.To(false)
		ours(&pool.ObjectMeta)
		ad := scenarioObject(t, "first-adv.yaml").(*v1beta1.BGPAdvertisement)
		ad.Spec.AggregationLength, ad.Spec.AggregationLengthV6 = ptr.To[int32](32), ptr.To[int32](128)
		ours(&ad.ObjectMeta)
		es := scenarioObject(t, "egress-service.yaml").(*ovnv1.EgressService)
		ours(&es.ObjectMeta)

		for i, want := range []client.Object{pol, peer, pool, ad, es} {
			got := read(t, c, generatedObjects()[i])
			comparable(t, got)
			clear(want)
			clear(got)
			if diff := cmp.Diff(want, got, stateTransformer); diff != "" {
				t.Errorf("%T %s (-scenario +generated):\n%s", want, want.GetName(), diff)
			}
		}
	})

	t.Run("progress", func(t *testing.T) {
		// NMState applies the policy, OVN picks worker-0.
		for _, n := range nodeNames {
			setNodeState(t, c, n, vrfState(2))
			enact(t, c, "vrf", n, "Available", "")
		}
		eventually(t, "egress host", func() error {
			var es ovnv1.EgressService
			if err := c.Get(ctx, types.NamespacedName{Namespace: appNS, Name: "server1"}, &es); err != nil {
				return err
			}
			es.Status.Host = "worker-0"
			return c.Status().Update(ctx, &es)
		})
		for _, typ := range []string{"Generated", "PolicyEnacted", "EgressAssigned", "Consistent", "Ready"} {
			waitSRCondition(t, c, "vrf", typ, metav1.ConditionTrue, "")
		}
		st := getSR(t, c, "vrf").Status
		if st.EgressHosts["test/server1"] != "worker-0" || len(st.Objects) != 5 || len(st.Findings) != 0 || st.ObservedGeneration != st.Conditions[0].ObservedGeneration {
			t.Errorf("status %+v", st)
		}
	})

	t.Run("no-op reconcile writes nothing", func(t *testing.T) {
		all := append(generatedObjects(), &v1alpha1.SymmetricRouting{ObjectMeta: metav1.ObjectMeta{Name: "vrf"}},
			&v1beta1.MetalLB{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "metallb"}})
		time.Sleep(time.Second) // let the running controller settle
		before := resourceVersions(t, c, all...)
		srBefore := getSR(t, c, "vrf")
		defer func() {
			if srAfter := getSR(t, c, "vrf"); srAfter.ResourceVersion != srBefore.ResourceVersion {
				t.Logf("SymmetricRouting changed:\n%s", cmp.Diff(srBefore, srAfter))
			}
		}()
		h.reconcileAll(t)
		h.reconcileAll(t)
		time.Sleep(time.Second)
		if after := resourceVersions(t, c, all...); !cmp.Equal(before, after) {
			t.Errorf("resourceVersions changed:\n%s", cmp.Diff(before, after))
		}
	})

	t.Run("update: route table 3 and a second Service", func(t *testing.T) {
		peerRV := resourceVersions(t, c, generatedObjects()[1])
		eventually(t, "update the declaration", func() error {
			sr := getSR(t, c, "vrf")
			sr.Spec.VRF.RouteTableID = 3
			sr.Spec.Services = append(sr.Spec.Services, v1alpha1.SymmetricService{Namespace: appNS, Name: "server2", Addresses: []string{"203.0.113.201/32"}})
			return c.Update(ctx, sr)
		})
		eventually(t, "objects follow", func() error {
			var pol nmstatev1.NodeNetworkConfigurationPolicy
			if err := c.Get(ctx, types.NamespacedName{Name: "vrf"}, &pol); err != nil {
				return err
			}
			if !strings.Contains(string(pol.Spec.DesiredState.Raw), "route-table-id: 3") && !strings.Contains(string(pol.Spec.DesiredState.Raw), `"route-table-id":3`) {
				return fmt.Errorf("policy state %s", pol.Spec.DesiredState.Raw)
			}
			var es1, es2 ovnv1.EgressService
			if err := c.Get(ctx, types.NamespacedName{Namespace: appNS, Name: "server1"}, &es1); err != nil {
				return err
			}
			if es1.Spec.Network != "3" {
				return fmt.Errorf("server1 network %q", es1.Spec.Network)
			}
			if err := c.Get(ctx, types.NamespacedName{Namespace: appNS, Name: "server2"}, &es2); err != nil {
				return err
			}
			if es2.Spec.Network != "3" {
				return fmt.Errorf("server2 network %q", es2.Spec.Network)
			}
			var pool v1beta1.IPAddressPool
			if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "vrf-test-server2"}, &pool); err != nil {
				return err
			}
			var ad v1beta1.BGPAdvertisement
			return c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "vrf-test-server2"}, &ad)
		})
		if after := resourceVersions(t, c, generatedObjects()[1]); !cmp.Equal(peerRV, after) {
			t.Errorf("the BGPPeer was rewritten although nothing of it changed")
		}
		// The nodes still run table 2 and the policy's new generation is
		// not enacted: not ready, and the findings say why.
		waitSRCondition(t, c, "vrf", "PolicyEnacted", metav1.ConditionFalse, "Progressing")
		waitSRCondition(t, c, "vrf", "Consistent", metav1.ConditionFalse, "Inconsistent")
		waitSRCondition(t, c, "vrf", "Ready", metav1.ConditionFalse, "")
		if f := strings.Join(getSR(t, c, "vrf").Status.Findings, "\n"); !strings.Contains(f, "VRFNotOnNode: ") || !strings.Contains(f, "EgressServiceNoService: ") {
			t.Errorf("findings:\n%s", f)
		}
	})

	t.Run("a Service removed from the declaration loses its objects", func(t *testing.T) {
		eventually(t, "update the declaration", func() error {
			sr := getSR(t, c, "vrf")
			sr.Spec.Services = sr.Spec.Services[:1]
			return c.Update(ctx, sr)
		})
		eventually(t, "pruned", func() error {
			for _, o := range []client.Object{
				&ovnv1.EgressService{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "server2"}},
				&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vrf-test-server2"}},
				&v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "vrf-test-server2"}},
			} {
				if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
					return fmt.Errorf("%T %s still there (%v)", o, o.GetName(), err)
				}
			}
			return nil
		})
		for _, o := range generatedObjects() {
			read(t, c, o)
		}
	})

	t.Run("a hand-made object is never overwritten", func(t *testing.T) {
		handmade := &v1beta2.BGPPeer{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "handmade"},
			Spec:       v1beta2.BGPPeerSpec{MyASN: 100, ASN: 300, Address: "198.19.140.1"},
		}
		if err := c.Create(ctx, handmade); err != nil {
			t.Fatal(err)
		}
		rv := resourceVersions(t, c, handmade)
		other := &v1alpha1.SymmetricRouting{
			ObjectMeta: metav1.ObjectMeta{Name: "other"},
			Spec: v1alpha1.SymmetricRoutingSpec{
				VRF:  v1alpha1.SymmetricVRF{Name: "ens5vrf", RouteTableID: 5, NodeSelector: map[string]string{"vrf": "true"}, Port: "ens5", Addresses: []string{"198.19.140.130/24"}},
				Peer: v1alpha1.SymmetricPeer{Name: "handmade", MyASN: 100, ASN: 200, Address: "198.19.140.1"},
				Services: []v1alpha1.SymmetricService{{
					Namespace: appNS, Name: "server9", Addresses: []string{"203.0.113.209/32"},
				}},
			},
		}
		if err := c.Create(ctx, other); err != nil {
			t.Fatal(err)
		}
		cond := waitSRCondition(t, c, "other", "Generated", metav1.ConditionFalse, srreconciler.ReasonConflict)
		if !strings.Contains(cond.Message, `bgppeer "metallb-system/handmade"`) {
			t.Errorf("conflict message %q", cond.Message)
		}
		waitSRCondition(t, c, "other", "Ready", metav1.ConditionFalse, srreconciler.ReasonConflict)
		eventually(t, "the other objects are generated", func() error {
			var pool v1beta1.IPAddressPool
			return c.Get(ctx, types.NamespacedName{Namespace: ns, Name: "other-test-server9"}, &pool)
		})
		eventually(t, "a Conflict event on the declaration", func() error {
			for _, e := range events(t, c) {
				if e.Reason == srreconciler.ReasonConflict && e.InvolvedObject.Kind == "SymmetricRouting" && e.InvolvedObject.Name == "other" &&
					e.Type == corev1.EventTypeWarning && strings.Contains(e.Message, "handmade") {
					return nil
				}
			}
			return fmt.Errorf("none")
		})
		h.reconcileAll(t)
		if after := resourceVersions(t, c, handmade); !cmp.Equal(rv, after) {
			t.Errorf("the hand-made BGPPeer was written")
		}
		got := read(t, c, handmade).(*v1beta2.BGPPeer)
		if got.Spec.VRFName != "" || got.Labels != nil || got.OwnerReferences != nil {
			t.Errorf("hand-made peer changed: %+v", got)
		}
	})

	t.Run("an invalid declaration is refused at admission, naming the field", func(t *testing.T) {
		bad := scenarioSR()
		bad.Name = "bad"
		bad.Spec.VRF.Addresses = []string{"198.19.150.130"} // no prefix length
		err := c.Create(ctx, bad)
		if err == nil {
			del(t, c, bad)
			t.Fatal("an invalid SymmetricRouting was stored")
		}
		for _, want := range []string{"symmetricroutingvalidationwebhook.lbstack.io", `symmetricrouting "bad"`, "spec.vrf.addresses[0]", "CIDR"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("refusal %q does not mention %q", err, want)
			}
		}
	})

	t.Run("deleting the declarations deletes what they generated", func(t *testing.T) {
		for _, name := range []string{"vrf", "other"} {
			if err := c.Delete(ctx, &v1alpha1.SymmetricRouting{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "all gone", func() error {
			objs := append(generatedObjects(),
				&v1alpha1.SymmetricRouting{ObjectMeta: metav1.ObjectMeta{Name: "vrf"}},
				&v1alpha1.SymmetricRouting{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
				&nmstatev1.NodeNetworkConfigurationPolicy{ObjectMeta: metav1.ObjectMeta{Name: "other"}},
				&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other-test-server9"}},
				&v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "other-test-server9"}},
				&ovnv1.EgressService{ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "server9"}},
			)
			for _, o := range objs {
				if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
					return fmt.Errorf("%T %s still there (%v)", o, o.GetName(), err)
				}
			}
			return nil
		})
		read(t, c, &v1beta2.BGPPeer{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "handmade"}})
	})
}

// TestSymmetricRoutingWithoutNMState: on an API server without NMState (nor
// OVN-Kubernetes, nor OpenShift) the declaration says what to install and
// still gets its metallb.io objects.
func TestSymmetricRoutingWithoutNMState(t *testing.T) {
	bare := envtest.StartWith(t, envtest.Options{})
	if err := srreconciler.AddToScheme(bare.Scheme); err != nil {
		t.Fatal(err)
	}
	c := bare.Client
	ctx := context.Background()
	h := startCoordinator(t, bare)
	if h.r.APIs != (srreconciler.APIs{}) {
		t.Fatalf("APIs %+v on a bare API server", h.r.APIs)
	}
	if err := c.Create(ctx, scenarioSR()); err != nil {
		t.Fatal(err)
	}
	ready := waitSRCondition(t, c, "vrf", "Ready", metav1.ConditionFalse, srreconciler.ReasonNMStateMissing)
	for _, want := range []string{"NMState", "install", "egressservices.k8s.ovn.org"} {
		if !strings.Contains(ready.Message, want) {
			t.Errorf("Ready message %q does not mention %q", ready.Message, want)
		}
	}
	waitSRCondition(t, c, "vrf", "Generated", metav1.ConditionFalse, srreconciler.ReasonNMStateMissing)
	waitSRCondition(t, c, "vrf", "PolicyEnacted", metav1.ConditionFalse, srreconciler.ReasonNMStateMissing)
	waitSRCondition(t, c, "vrf", "EgressAssigned", metav1.ConditionFalse, srreconciler.ReasonOVNMissing)
	eventually(t, "the metallb.io objects", func() error {
		for _, o := range generatedObjects()[1:4] {
			if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); err != nil {
				return fmt.Errorf("%T %s: %w", o, o.GetName(), err)
			}
		}
		return nil
	})
	if st := getSR(t, c, "vrf").Status; len(st.Objects) != 3 {
		t.Errorf("status objects %+v", st.Objects)
	}
	if err := c.Delete(ctx, scenarioSR()); err != nil {
		t.Fatal(err)
	}
	eventually(t, "deleted with the declaration", func() error {
		for _, o := range append(generatedObjects()[1:4], &v1alpha1.SymmetricRouting{ObjectMeta: metav1.ObjectMeta{Name: "vrf"}}) {
			if err := c.Get(ctx, client.ObjectKeyFromObject(o), o); !apierrors.IsNotFound(err) {
				return fmt.Errorf("%T %s still there (%v)", o, o.GetName(), err)
			}
		}
		return nil
	})
}

// TestDocumentedDeclarations: every SymmetricRouting in
// docs/symmetric-routing.md is valid (generate.Validate) and admitted by the
// API server (CRD schema, server-side dry run).
func TestDocumentedDeclarations(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(env.Root, "docs", "symmetric-routing.md"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, block := range strings.Split(string(b), "```yaml\n")[1:] {
		text, _, _ := strings.Cut(block, "```")
		if !strings.Contains(text, "kind: SymmetricRouting") {
			continue
		}
		n++
		var sr v1alpha1.SymmetricRouting
		if err := yaml.UnmarshalStrict([]byte(text), &sr); err != nil {
			t.Fatalf("%v\n%s", err, text)
		}
		if errs := generate.Validate(&sr); len(errs) > 0 {
			t.Errorf("%s: %v", sr.Name, errs.ToAggregate())
		}
		if err := env.Client.Create(context.Background(), &sr, client.DryRunAll); err != nil {
			t.Errorf("%s: %v", sr.Name, err)
		}
	}
	if n < 2 {
		t.Errorf("found %d SymmetricRouting examples in the docs", n)
	}
}
