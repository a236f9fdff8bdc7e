package v1beta1

import (
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiequality "k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	"sigs.k8s.io/randfill"

	"github.com/lbstack/lbstack/api/v1beta2"
)

func dur(d time.Duration) *metav1.Duration { return &metav1.Duration{Duration: d} }
func port(p uint16) *uint16                { return &p }

func TestBGPPeerConvertTo(t *testing.T) {
	tests := []struct {
		name string
		in   BGPPeerSpec
		ann  map[string]string
		want v1beta2.BGPPeerSpec
	}{
		{
			name: "seed bgp-ecmp-bfd peer",
			in:   BGPPeerSpec{MyASN: 65001, ASN: 65000, Address: "198.18.0.254", Port: 179, BFDProfile: "bfdprofile"},
			want: v1beta2.BGPPeerSpec{MyASN: 65001, ASN: 65000, Address: "198.18.0.254", Port: port(179), BFDProfile: "bfdprofile"},
		},
		{
			name: "unset port and timers stay unset, not 0",
			in:   BGPPeerSpec{MyASN: 1, ASN: 2, Address: "198.18.0.254"},
			want: v1beta2.BGPPeerSpec{MyASN: 1, ASN: 2, Address: "198.18.0.254"},
		},
		{
			name: "timers, selectors and secret carried",
			in: BGPPeerSpec{
				MyASN: 64512, ASN: 64513, Address: "2001:db8::1", SrcAddress: "2001:db8::2",
				HoldTime: dur(90 * time.Second), KeepaliveTime: dur(30 * time.Second), RouterID: "198.18.0.1",
				NodeSelectors: []NodeSelector{{
					MatchLabels:      map[string]string{"rack": "a"},
					MatchExpressions: []MatchExpression{{Key: "zone", Operator: "In", Values: []string{"z1", "z2"}}},
				}},
				PasswordSecret: corev1.SecretReference{Name: "bgp-auth", Namespace: "metallb-system"},
				EBGPMultiHop:   true, VRFName: "red",
			},
			want: v1beta2.BGPPeerSpec{
				MyASN: 64512, ASN: 64513, Address: "2001:db8::1", SrcAddress: "2001:db8::2",
				HoldTime: dur(90 * time.Second), KeepaliveTime: dur(30 * time.Second), RouterID: "198.18.0.1",
				NodeSelectors: []metav1.LabelSelector{{
					MatchLabels:      map[string]string{"rack": "a"},
					MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "zone", Operator: metav1.LabelSelectorOpIn, Values: []string{"z1", "z2"}}},
				}},
				PasswordSecret: corev1.SecretReference{Name: "bgp-auth", Namespace: "metallb-system"},
				EBGPMultiHop:   true, VRFName: "red",
			},
		},
		{
			name: "v1beta2-only fields restored from the annotation",
			in:   BGPPeerSpec{MyASN: 1, Address: "198.18.0.254"},
			ann:  map[string]string{V1beta2FieldsAnnotation: `{"dynamicASN":"external","connectTime":"5s","enableGracefulRestart":true,"dualStackAddressFamily":true,"localASN":7}`},
			want: v1beta2.BGPPeerSpec{MyASN: 1, Address: "198.18.0.254", DynamicASN: v1beta2.ExternalASNMode,
				ConnectTime: dur(5 * time.Second), EnableGracefulRestart: true, DualStackAddressFamily: true, LocalASN: 7},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := &BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: tt.ann}, Spec: tt.in}
			var dst v1beta2.BGPPeer
			if err := src.ConvertTo(&dst); err != nil {
				t.Fatal(err)
			}
			if !apiequality.Semantic.DeepEqual(dst.Spec, tt.want) {
				t.Errorf("spec mismatch:\n%s", diff.Diff(tt.want, dst.Spec))
			}
			if _, found := dst.Annotations[V1beta2FieldsAnnotation]; found {
				t.Errorf("hub object kept the conversion annotation")
			}
		})
	}
}

func TestBGPPeerConvertToBadAnnotation(t *testing.T) {
	src := &BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: map[string]string{V1beta2FieldsAnnotation: "{not json"}}}
	var dst v1beta2.BGPPeer
	err := src.ConvertTo(&dst)
	if err == nil {
		t.Fatal("expected an error for a malformed annotation")
	}
	for _, want := range []string{`"p"`, V1beta2FieldsAnnotation} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

func TestBGPPeerConvertFromKeepsHubOnlyFields(t *testing.T) {
	hub := &v1beta2.BGPPeer{
		ObjectMeta: metav1.ObjectMeta{Name: "p", Annotations: map[string]string{"keep": "me"}},
		Spec: v1beta2.BGPPeerSpec{MyASN: 1, DynamicASN: v1beta2.InternalASNMode, Interface: "eth1",
			ConnectTime: dur(2 * time.Second), Port: port(1179), DisableMP: true},
	}
	var spoke BGPPeer
	if err := spoke.ConvertFrom(hub); err != nil {
		t.Fatal(err)
	}
	if spoke.Spec.Port != 1179 {
		t.Errorf("port = %d, want 1179", spoke.Spec.Port)
	}
	if spoke.Annotations["keep"] != "me" || spoke.Annotations[V1beta2FieldsAnnotation] == "" {
		t.Errorf("annotations = %v", spoke.Annotations)
	}
	if _, found := hub.Annotations[V1beta2FieldsAnnotation]; found {
		t.Errorf("ConvertFrom mutated the hub's annotations")
	}
	// Nothing to keep: no annotation is added.
	var plain BGPPeer
	if err := plain.ConvertFrom(&v1beta2.BGPPeer{Spec: v1beta2.BGPPeerSpec{MyASN: 1, ASN: 2, Address: "198.18.0.254"}}); err != nil {
		t.Fatal(err)
	}
	if plain.Annotations != nil {
		t.Errorf("annotations = %v, want none", plain.Annotations)
	}
}

func newFiller(seed int64) *randfill.Filler {
	return randfill.NewWithSeed(seed).NilChance(0.3).NumElements(0, 3)
}

// roundTripHub checks hub -> v1beta1 -> hub is lossless.
func roundTripHub(t *testing.T, hub *v1beta2.BGPPeer) {
	t.Helper()
	var spoke BGPPeer
	if err := spoke.ConvertFrom(hub.DeepCopy()); err != nil {
		t.Fatalf("ConvertFrom: %v", err)
	}
	var back v1beta2.BGPPeer
	if err := spoke.ConvertTo(&back); err != nil {
		t.Fatalf("ConvertTo: %v", err)
	}
	if !apiequality.Semantic.DeepEqual(hub.ObjectMeta, back.ObjectMeta) || !apiequality.Semantic.DeepEqual(hub.Spec, back.Spec) {
		t.Fatalf("hub round trip lost data:\n%s", diff.Diff(hub, &back))
	}
}

// roundTripSpoke checks v1beta1 -> hub -> v1beta1 is lossless.
func roundTripSpoke(t *testing.T, spoke *BGPPeer) {
	t.Helper()
	delete(spoke.Annotations, V1beta2FieldsAnnotation)
	var hub v1beta2.BGPPeer
	if err := spoke.DeepCopy().ConvertTo(&hub); err != nil {
		t.Fatalf("ConvertTo: %v", err)
	}
	var back BGPPeer
	if err := back.ConvertFrom(&hub); err != nil {
		t.Fatalf("ConvertFrom: %v", err)
	}
	if !apiequality.Semantic.DeepEqual(spoke.ObjectMeta, back.ObjectMeta) || !apiequality.Semantic.DeepEqual(spoke.Spec, back.Spec) {
		t.Fatalf("v1beta1 round trip lost data:\n%s", diff.Diff(spoke, &back))
	}
}

func TestBGPPeerRoundTripRandomized(t *testing.T) {
	seed := rand.Int64()
	t.Logf("seed %d", seed)
	f := newFiller(seed)
	for range 2000 {
		hub := &v1beta2.BGPPeer{}
		f.Fill(hub)
		roundTripHub(t, hub)
		spoke := &BGPPeer{}
		f.Fill(spoke)
		roundTripSpoke(t, spoke)
	}
}

func FuzzBGPPeerRoundTrip(f *testing.F) {
	f.Add([]byte("seed"))
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Fuzz(func(t *testing.T, data []byte) {
		filler := randfill.NewFromGoFuzz(data).NilChance(0.3).NumElements(0, 3)
		hub := &v1beta2.BGPPeer{}
		filler.Fill(hub)
		roundTripHub(t, hub)
		spoke := &BGPPeer{}
		filler.Fill(spoke)
		roundTripSpoke(t, spoke)
	})
}
