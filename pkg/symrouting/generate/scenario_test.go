package generate

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
	nmstateshared "github.com/nmstate/kubernetes-nmstate/api/shared"
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
)

// scenarioDir finds config/samples/scenarios/<name> in the repository root
// (the directory holding go.mod), or under $LBSTACK_SCENARIOS; it skips the
// test when the scenarios are not there.
func scenarioDir(t *testing.T, name string) string {
	t.Helper()
	base := os.Getenv("LBSTACK_SCENARIOS")
	if base == "" {
		wd, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		root := wd
		for {
			if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
				break
			}
			parent := filepath.Dir(root)
			if parent == root {
				t.Skipf("no go.mod above %s; set LBSTACK_SCENARIOS", wd)
			}
			root = parent
		}
		base = filepath.Join(root, "config", "samples", "scenarios")
	}
	dir := filepath.Join(base, name)
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("seed scenario %s not found (set LBSTACK_SCENARIOS): %v", dir, err)
	}
	return dir
}

func loadYAML(t *testing.T, path string, into any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// stateTransformer compares NNCP desired states as generic YAML trees: key
// order does not matter, every value (and list order) does.
var stateTransformer = cmp.Transformer("desiredState", func(s nmstateshared.State) map[string]any {
	var m map[string]any
	if err := yaml.Unmarshal(s.Raw, &m); err != nil {
		return map[string]any{"unparsable": err.Error(), "raw": string(s.Raw)}
	}
	return m
})

// scenarioSR is the declaration equivalent to the symmetric-routing-vrf
// seed scenario.
func scenarioSR() *v1alpha1.SymmetricRouting {
	three := intstr.FromInt32(3)
	return &v1alpha1.SymmetricRouting{
		TypeMeta:   metav1.TypeMeta{APIVersion: "lbstack.io/v1alpha1", Kind: "SymmetricRouting"},
		ObjectMeta: metav1.ObjectMeta{Name: "vrf", UID: types.UID("3c8e-uid")},
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
				Namespace: "test", Name: "server1",
				Addresses: []string{"203.0.113.200/32"},
				PoolName:  "first-pool", AdvertisementName: "first-adv",
			}},
		},
	}
}

// TestScenarioSymmetricRoutingVRF generates the scenario's objects from one
// declaration and compares them, whole object by whole object, with the
// scenario's hand-written YAML. The known, intended differences are patched
// into the expected objects explicitly (and each is asserted on the
// generated side), never ignored:
//   - every generated object carries the lbstack labels and a controller
//     ownerReference to the SymmetricRouting (the files have neither);
//   - the policy is named like the SymmetricRouting, not "vrfpolicy";
//   - the pool has autoAssign: false (it is dedicated to the Service);
//   - the BGPPeer's nodeSelectors select spec.vrf.nodeSelector, so speakers
//     on nodes without the VRF do not try to peer.
func TestScenarioSymmetricRoutingVRF(t *testing.T) {
	dir := scenarioDir(t, "symmetric-routing-vrf")
	sr := scenarioSR()
	got, err := Generate(sr, Inputs{
		Namespace:       "metallb-system",
		ServiceNetworks: []netip.Prefix{netip.MustParsePrefix("172.30.0.0/16")},
		ClusterNetworks: []netip.Prefix{netip.MustParsePrefix("10.132.0.0/14")},
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(got.All()); n != 5 {
		t.Fatalf("generated %d objects, want 5 (policy, peer, pool, advertisement, EgressService)", n)
	}

	wantLabels := map[string]string{"lbstack.io/symmetric-routing": "vrf", "app.kubernetes.io/managed-by": "lbstack"}
	yes := true
	wantOwners := []metav1.OwnerReference{{
		APIVersion: "lbstack.io/v1alpha1", Kind: "SymmetricRouting", Name: "vrf", UID: "3c8e-uid",
		Controller: &yes, BlockOwnerDeletion: &yes,
	}}
	// ours adds the generated-object metadata to an object from the files.
	ours := func(m *metav1.ObjectMeta) {
		if m.Labels != nil || m.OwnerReferences != nil {
			t.Fatalf("scenario object %s unexpectedly has labels or owners; update the test", m.Name)
		}
		m.Labels = wantLabels
		m.OwnerReferences = wantOwners
	}
	for _, o := range got.All() {
		if diff := cmp.Diff(wantLabels, o.GetLabels()); diff != "" {
			t.Errorf("%T %s labels (-want +got):\n%s", o, o.GetName(), diff)
		}
		if diff := cmp.Diff(wantOwners, o.GetOwnerReferences()); diff != "" {
			t.Errorf("%T %s ownerReferences (-want +got):\n%s", o, o.GetName(), diff)
		}
	}

	t.Run("NodeNetworkConfigurationPolicy", func(t *testing.T) {
		want := &nmstatev1.NodeNetworkConfigurationPolicy{}
		loadYAML(t, filepath.Join(dir, "node-network-vrf.yaml"), want)
		if len(got.Policies) != 1 {
			t.Fatalf("got %d policies, want 1", len(got.Policies))
		}
		// Intended difference: named like the SymmetricRouting.
		if want.Name != "vrfpolicy" || got.Policies[0].Name != "vrf" {
			t.Errorf("policy names: scenario %q, generated %q; want vrfpolicy and vrf", want.Name, got.Policies[0].Name)
		}
		want.Name = sr.Name
		ours(&want.ObjectMeta)
		if diff := cmp.Diff(want, got.Policies[0], stateTransformer); diff != "" {
			t.Errorf("policy (-scenario +generated):\n%s", diff)
		}
		// The raw state must also survive the API server's JSON round trip.
		j, err := got.Policies[0].Spec.DesiredState.MarshalJSON()
		if err != nil {
			t.Fatalf("desiredState does not convert to JSON: %v\n%s", err, got.Policies[0].Spec.DesiredState.Raw)
		}
		var back nmstateshared.State
		if err := back.UnmarshalJSON(j); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want.Spec.DesiredState, back, stateTransformer); diff != "" {
			t.Errorf("desiredState after JSON round trip (-scenario +generated):\n%s", diff)
		}
	})

	t.Run("BGPPeer", func(t *testing.T) {
		want := &v1beta2.BGPPeer{}
		loadYAML(t, filepath.Join(dir, "frr-via-vrf.yaml"), want)
		// Intended difference: only nodes with the VRF peer.
		wantSel := []metav1.LabelSelector{{MatchLabels: map[string]string{"vrf": "true"}}}
		if want.Spec.NodeSelectors != nil {
			t.Fatalf("scenario peer has nodeSelectors %v; update the test", want.Spec.NodeSelectors)
		}
		if diff := cmp.Diff(wantSel, got.Peer.Spec.NodeSelectors); diff != "" {
			t.Errorf("peer nodeSelectors (-want +got):\n%s", diff)
		}
		want.Spec.NodeSelectors = wantSel
		ours(&want.ObjectMeta)
		if diff := cmp.Diff(want, got.Peer); diff != "" {
			t.Errorf("peer (-scenario +generated):\n%s", diff)
		}
	})

	t.Run("IPAddressPool", func(t *testing.T) {
		want := &v1beta1.IPAddressPool{}
		loadYAML(t, filepath.Join(dir, "first-pool.yaml"), want)
		// Intended difference: the pool is dedicated to the Service.
		if want.Spec.AutoAssign != nil {
			t.Fatalf("scenario pool sets autoAssign; update the test")
		}
		if a := got.Pools[0].Spec.AutoAssign; a == nil || *a {
			t.Errorf("pool autoAssign = %v, want false", a)
		}
		no := false
		want.Spec.AutoAssign = &no
		ours(&want.ObjectMeta)
		if diff := cmp.Diff(want, got.Pools[0]); diff != "" {
			t.Errorf("pool (-scenario +generated):\n%s", diff)
		}
	})

	t.Run("BGPAdvertisement", func(t *testing.T) {
		want := &v1beta1.BGPAdvertisement{}
		loadYAML(t, filepath.Join(dir, "first-adv.yaml"), want)
		ours(&want.ObjectMeta)
		if diff := cmp.Diff(want, got.Advertisements[0]); diff != "" {
			t.Errorf("advertisement (-scenario +generated):\n%s", diff)
		}
	})

	t.Run("EgressService", func(t *testing.T) {
		want := &ovnv1.EgressService{}
		loadYAML(t, filepath.Join(dir, "egress-service.yaml"), want)
		ours(&want.ObjectMeta)
		if diff := cmp.Diff(want, got.EgressServices[0]); diff != "" {
			t.Errorf("EgressService (-scenario +generated):\n%s", diff)
		}
	})
}
