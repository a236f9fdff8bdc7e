package reconciler

import (
	"context"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/projectcalico/api/pkg/lib/numorstring"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/calico"
	calicov1 "github.com/lbstack/lbstack/pkg/calicoapi/v1"
	"github.com/lbstack/lbstack/pkg/scheme"
)

// TestInputsReadV3WhenServed: the checks read Calico's BGPConfiguration
// and BGPPeers through projectcalico.org/v3 when Calico's API server
// serves it, and through crd.projectcalico.org/v1 otherwise.
func TestInputsReadV3WhenServed(t *testing.T) {
	s := scheme.New()
	if err := AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	const ns = "metallb-system"
	ml := &v1beta1.MetalLB{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "metallb"}, Spec: v1beta1.MetalLBSpec{BGPType: v1beta1.BGPTypeCalico}}
	objs := []client.Object{
		ml,
		&v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "p"}, Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/26"}}},
		&calicov1.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: v3.BGPConfigurationSpec{ASNumber: ptr.To(numorstring.ASNumber(64512))}},
		&calicov1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "crd-peer"}, Spec: v3.BGPPeerSpec{PeerIP: "198.18.0.1", ASNumber: 65535}},
		&v3.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "default"}, Spec: v3.BGPConfigurationSpec{ASNumber: ptr.To(numorstring.ASNumber(65535))}},
		&v3.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "v3-peer"}, Spec: v3.BGPPeerSpec{PeerIP: "198.18.0.2", ASNumber: 65535}},
	}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).Build()
	live := &calicov1.BGPConfiguration{}
	if err := c.Get(context.Background(), client.ObjectKey{Name: "default"}, live); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		apis     APIs
		wantAS   numorstring.ASNumber
		wantPeer string
	}{
		{APIs{CRDs: true}, 64512, "crd-peer"},
		{APIs{CRDs: true, V3: true}, 65535, "v3-peer"},
	} {
		r := &Reconciler{Client: c, Namespace: ns, APIs: tc.apis}
		in, err := r.inputs(context.Background(), ml, live)
		if err != nil {
			t.Fatal(err)
		}
		if in.Current == nil || in.Current.ASNumber == nil || *in.Current.ASNumber != tc.wantAS {
			t.Errorf("%+v: current spec %+v, want asNumber %d", tc.apis, in.Current, tc.wantAS)
		}
		if len(in.CalicoBGPPeers) != 1 || in.CalicoBGPPeers[0].Name != tc.wantPeer || !in.CalicoBGPPeersListed {
			t.Errorf("%+v: peers %+v, want %s", tc.apis, in.CalicoBGPPeers, tc.wantPeer)
		}
		if in.Config == nil || len(calico.Compute(in.Config).ServiceLoadBalancerIPs) != 0 {
			t.Errorf("%+v: config %+v (the pool has no BGPAdvertisement)", tc.apis, in.Config)
		}
	}
}
