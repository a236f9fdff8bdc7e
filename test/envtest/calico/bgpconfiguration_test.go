// Package calico_test checks Calico's crd.projectcalico.org/v1 CRDs
// (test/crds/calico, generated from pkg/calicoapi/v1) against a real
// kube-apiserver: what pkg/calico computes is stored and read back
// unchanged, and written with server-side apply it leaves every other
// field to its owner.
package calico_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/projectcalico/api/pkg/lib/numorstring"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/calico"
	calicov1 "github.com/lbstack/lbstack/pkg/calicoapi/v1"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/test/envtest"
)

// fieldManager is the manager name these tests apply with (the operator
// wiring will choose its own).
const fieldManager = "lbstack-calico-test"

// scenario is the metallb.io side of the calico-bgp scenario of issue #19:
// two pools (one a range), one advertisement with a large community given
// by alias and a standard one.
const scenario = `
kind: IPAddressPool
metadata: {name: cluster-pool}
spec: {addresses: [203.0.113.0/26]}
---
kind: IPAddressPool
metadata: {name: local-pool}
spec: {addresses: [198.51.100.10-198.51.100.20, "2001:db8:19::/120"]}
---
kind: Community
metadata: {name: communities}
spec: {communities: [{name: calico-large, value: "large:65535:300:100"}]}
---
kind: BGPAdvertisement
metadata: {name: calico}
spec: {communities: [calico-large, "65535:120"]}
`

func desiredFromScenario(t *testing.T) calico.Desired {
	t.Helper()
	var res config.Resources
	for _, doc := range strings.Split(scenario, "---") {
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatal(err)
		}
		var err error
		switch head.Kind {
		case "IPAddressPool":
			var o v1beta1.IPAddressPool
			err = yaml.UnmarshalStrict([]byte(doc), &o)
			res.Pools = append(res.Pools, o)
		case "Community":
			var o v1beta1.Community
			err = yaml.UnmarshalStrict([]byte(doc), &o)
			res.Communities = append(res.Communities, o)
		case "BGPAdvertisement":
			var o v1beta1.BGPAdvertisement
			err = yaml.UnmarshalStrict([]byte(doc), &o)
			res.BGPAdvs = append(res.BGPAdvs, o)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	r := config.Build(res, config.Options{})
	if r.Config == nil {
		t.Fatalf("config.Build: %v", r.Errors)
	}
	d := calico.Compute(r.Config)
	if len(d.ServiceLoadBalancerIPs) == 0 || len(d.PrefixAdvertisements) == 0 {
		t.Fatalf("the scenario announces nothing: %+v", d)
	}
	return d
}

func startCalicoEnv(t *testing.T) client.Client {
	t.Helper()
	env := envtest.StartWith(t, envtest.Options{ExtraCRDDirs: []string{"test/crds/calico"}})
	if err := calicov1.AddToScheme(env.Scheme); err != nil {
		t.Fatal(err)
	}
	return env.Client
}

func TestCalicoCRDs(t *testing.T) {
	c := startCalicoEnv(t)
	ctx := context.Background()
	desired := desiredFromScenario(t)

	t.Run("BGPConfiguration default round-trips", func(t *testing.T) {
		spec := desired.Spec()
		spec.ASNumber = ptr.To(numorstring.ASNumber(65535))
		spec.ListenPort = 178
		spec.NodeToNodeMeshEnabled = ptr.To(false)
		spec.Communities = []v3.Community{{Name: "calico-large", Value: "65535:300:100"}}
		in := &calicov1.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: calicov1.DefaultBGPConfigurationName}, Spec: spec}
		if err := c.Create(ctx, in); err != nil {
			t.Fatalf("create bgpconfiguration default: %v", err)
		}
		t.Cleanup(func() { _ = c.Delete(ctx, in) })
		var out calicov1.BGPConfiguration
		if err := c.Get(ctx, client.ObjectKey{Name: calicov1.DefaultBGPConfigurationName}, &out); err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(out.Spec, spec) {
			t.Errorf("spec changed on its way through the API server:\n sent %s\n read %s", toJSON(spec), toJSON(out.Spec))
		}
		// The communities the scenario asks for, in Calico's notation.
		got := toJSON(out.Spec.PrefixAdvertisements)
		for _, want := range []string{`"65535:120"`, `"65535:300:100"`, `"198.51.100.10/31"`, `"2001:db8:19::/120"`} {
			if !strings.Contains(got, want) {
				t.Errorf("prefixAdvertisements lack %s: %s", want, got)
			}
		}
	})

	t.Run("server-side apply leaves other managers' fields", func(t *testing.T) {
		// Someone else (Calico's installer, an administrator) owns the
		// BGPConfiguration's other fields.
		theirs := &calicov1.BGPConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "ssa"},
			Spec:       v3.BGPConfigurationSpec{ASNumber: ptr.To(numorstring.ASNumber(65535)), ListenPort: 178},
		}
		if err := c.Create(ctx, theirs, client.FieldOwner("calico-admin")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Delete(ctx, theirs) })
		ours := &calicov1.BGPConfiguration{
			TypeMeta:   metav1.TypeMeta{APIVersion: calicov1.GroupVersion.String(), Kind: "BGPConfiguration"},
			ObjectMeta: metav1.ObjectMeta{Name: "ssa"},
			Spec:       desired.Spec(),
		}
		if err := c.Patch(ctx, ours, client.Apply, client.FieldOwner(fieldManager)); err != nil {
			t.Fatalf("apply lbstack's fields: %v", err)
		}
		var out calicov1.BGPConfiguration
		if err := c.Get(ctx, client.ObjectKey{Name: "ssa"}, &out); err != nil {
			t.Fatal(err)
		}
		if out.Spec.ASNumber == nil || *out.Spec.ASNumber != 65535 || out.Spec.ListenPort != 178 {
			t.Errorf("the apply changed fields it does not own: %s", toJSON(out.Spec))
		}
		if !equality.Semantic.DeepEqual(out.Spec.ServiceLoadBalancerIPs, desired.Spec().ServiceLoadBalancerIPs) ||
			!equality.Semantic.DeepEqual(out.Spec.PrefixAdvertisements, desired.Spec().PrefixAdvertisements) {
			t.Errorf("applied fields not stored as sent: %s", toJSON(out.Spec))
		}
		// Applying nothing gives lbstack's fields up and keeps theirs.
		empty := &calicov1.BGPConfiguration{TypeMeta: ours.TypeMeta, ObjectMeta: metav1.ObjectMeta{Name: "ssa"}}
		if err := c.Patch(ctx, empty, client.Apply, client.FieldOwner(fieldManager)); err != nil {
			t.Fatalf("apply without lbstack's fields: %v", err)
		}
		if err := c.Get(ctx, client.ObjectKey{Name: "ssa"}, &out); err != nil {
			t.Fatal(err)
		}
		if len(out.Spec.ServiceLoadBalancerIPs) != 0 || len(out.Spec.PrefixAdvertisements) != 0 || out.Spec.ListenPort != 178 {
			t.Errorf("after giving its fields up: %s", toJSON(out.Spec))
		}
	})

	t.Run("a list someone else set is a conflict, not overwritten", func(t *testing.T) {
		// These CRDs (like Calico's before its lists became sets) make
		// serviceLoadBalancerIPs one atomic value: an entry an administrator
		// wrote makes lbstack's apply a conflict, which the operator must
		// report rather than force.
		theirs := &calicov1.BGPConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "conflict"},
			Spec:       v3.BGPConfigurationSpec{ServiceLoadBalancerIPs: []v3.ServiceLoadBalancerIPBlock{{CIDR: "192.0.2.0/24"}}},
		}
		if err := c.Create(ctx, theirs, client.FieldOwner("calico-admin")); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Delete(ctx, theirs) })
		ours := &calicov1.BGPConfiguration{
			TypeMeta:   metav1.TypeMeta{APIVersion: calicov1.GroupVersion.String(), Kind: "BGPConfiguration"},
			ObjectMeta: metav1.ObjectMeta{Name: "conflict"},
			Spec:       desired.Spec(),
		}
		err := c.Patch(ctx, ours, client.Apply, client.FieldOwner(fieldManager))
		if !apierrors.IsConflict(err) || !strings.Contains(err.Error(), ".spec.serviceLoadBalancerIPs") {
			t.Fatalf("apply over an administrator's serviceLoadBalancerIPs: %v, want a conflict naming .spec.serviceLoadBalancerIPs", err)
		}
		var out calicov1.BGPConfiguration
		if err := c.Get(ctx, client.ObjectKey{Name: "conflict"}, &out); err != nil {
			t.Fatal(err)
		}
		if toJSON(out.Spec.ServiceLoadBalancerIPs) != `[{"cidr":"192.0.2.0/24"}]` {
			t.Errorf("the administrator's entry changed: %s", toJSON(out.Spec))
		}
	})

	t.Run("BGPPeer round-trips", func(t *testing.T) {
		spec := v3.BGPPeerSpec{PeerIP: "198.18.0.1", ASNumber: 65535, NodeSelector: "all()"}
		in := &calicov1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "router"}, Spec: spec}
		if err := c.Create(ctx, in); err != nil {
			t.Fatalf("create bgppeer router: %v", err)
		}
		t.Cleanup(func() { _ = c.Delete(ctx, in) })
		var out calicov1.BGPPeer
		if err := c.Get(ctx, client.ObjectKey{Name: "router"}, &out); err != nil {
			t.Fatal(err)
		}
		if !equality.Semantic.DeepEqual(out.Spec, spec) {
			t.Errorf("spec changed:\n sent %s\n read %s", toJSON(spec), toJSON(out.Spec))
		}
	})

	t.Run("the schema is Calico's", func(t *testing.T) {
		// spec.communities[].value has Calico's pattern; MetalLB's
		// "large:" notation is refused, which is why pkg/calico writes
		// "aa:nn:mm".
		bad := &calicov1.BGPConfiguration{
			ObjectMeta: metav1.ObjectMeta{Name: "bad"},
			Spec:       v3.BGPConfigurationSpec{Communities: []v3.Community{{Name: "x", Value: "large:65535:300:100"}}},
		}
		err := c.Create(ctx, bad)
		if err == nil || !strings.Contains(err.Error(), "spec.communities[0].value") {
			t.Errorf("create with a large: community value: %v, want a refusal naming spec.communities[0].value", err)
		}
	})
}

func toJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
