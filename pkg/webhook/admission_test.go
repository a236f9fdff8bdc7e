package webhook

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/scheme"
)

const testNS = "metallb-system"

func om(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: testNS, Name: name} }

func pool(name string, addrs ...string) *v1beta1.IPAddressPool {
	return &v1beta1.IPAddressPool{TypeMeta: metav1.TypeMeta{APIVersion: "metallb.io/v1beta1", Kind: "IPAddressPool"},
		ObjectMeta: om(name), Spec: v1beta1.IPAddressPoolSpec{Addresses: addrs}}
}

func peer(name, addr string, mod func(*v1beta2.BGPPeerSpec)) *v1beta2.BGPPeer {
	p := &v1beta2.BGPPeer{TypeMeta: metav1.TypeMeta{APIVersion: "metallb.io/v1beta2", Kind: "BGPPeer"},
		ObjectMeta: om(name), Spec: v1beta2.BGPPeerSpec{MyASN: 64512, ASN: 64513, Address: addr}}
	if mod != nil {
		mod(&p.Spec)
	}
	return p
}

func bgpAdv(name string, pools ...string) *v1beta1.BGPAdvertisement {
	return &v1beta1.BGPAdvertisement{TypeMeta: metav1.TypeMeta{APIVersion: "metallb.io/v1beta1", Kind: "BGPAdvertisement"},
		ObjectMeta: om(name), Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: pools}}
}

func l2Adv(name string, pools ...string) *v1beta1.L2Advertisement {
	return &v1beta1.L2Advertisement{TypeMeta: metav1.TypeMeta{APIVersion: "metallb.io/v1beta1", Kind: "L2Advertisement"},
		ObjectMeta: om(name), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: pools}}
}

func bfd(name string, mult uint32) *v1beta1.BFDProfile {
	return &v1beta1.BFDProfile{TypeMeta: metav1.TypeMeta{APIVersion: "metallb.io/v1beta1", Kind: "BFDProfile"},
		ObjectMeta: om(name), Spec: v1beta1.BFDProfileSpec{DetectMultiplier: &mult}}
}

func community(name string, aliases ...v1beta1.CommunityAlias) *v1beta1.Community {
	return &v1beta1.Community{TypeMeta: metav1.TypeMeta{APIVersion: "metallb.io/v1beta1", Kind: "Community"},
		ObjectMeta: om(name), Spec: v1beta1.CommunitySpec{Communities: aliases}}
}

// request builds the admission request the API server sends for obj (nil
// on delete: only the old object travels then).
func request(t testing.TB, op admissionv1.Operation, name string, obj any) admission.Request {
	t.Helper()
	req := admission.Request{AdmissionRequest: admissionv1.AdmissionRequest{
		UID: "uid", Operation: op, Name: name, Namespace: testNS,
	}}
	var raw []byte
	switch o := obj.(type) {
	case nil:
	case []byte:
		raw = o
	default:
		var err error
		if raw, err = json.Marshal(o); err != nil {
			t.Fatal(err)
		}
	}
	if op == admissionv1.Delete {
		req.OldObject = runtime.RawExtension{Raw: raw}
	} else {
		req.Object = runtime.RawExtension{Raw: raw}
	}
	return req
}

type kindSpec struct {
	kind   string
	newObj func() client.Object
}

var (
	poolKind      = kindSpec{config.KindIPAddressPool, func() client.Object { return &v1beta1.IPAddressPool{} }}
	peerKind      = kindSpec{config.KindBGPPeer, func() client.Object { return &v1beta2.BGPPeer{} }}
	bgpAdvKind    = kindSpec{config.KindBGPAdvertisement, func() client.Object { return &v1beta1.BGPAdvertisement{} }}
	l2AdvKind     = kindSpec{config.KindL2Advertisement, func() client.Object { return &v1beta1.L2Advertisement{} }}
	bfdKind       = kindSpec{config.KindBFDProfile, func() client.Object { return &v1beta1.BFDProfile{} }}
	communityKind = kindSpec{config.KindCommunity, func() client.Object { return &v1beta1.Community{} }}
)

func newHandler(k kindSpec, v *Validator) *kindHandler {
	return &kindHandler{v: v, kind: k.kind, newObj: k.newObj, decoder: admission.NewDecoder(v.Scheme)}
}

func newValidator(existing ...client.Object) *Validator {
	s := scheme.New()
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(existing...).Build()
	return seeded(&Validator{Reader: c, Cached: c, Namespace: testNS, BGPBackend: v1beta1.BGPTypeFRR, Scheme: s}, existing...)
}

// seeded gives v's view the pools and MetalLB objects among objs, as its
// watch would.
func seeded(v *Validator, objs ...client.Object) *Validator {
	for _, o := range objs {
		switch o := o.(type) {
		case *v1beta1.IPAddressPool:
			v.view().observed(config.KindIPAddressPool, o, false)
		case *v1beta1.MetalLB:
			v.view().observed(kindMetalLB, o, false)
		}
	}
	return v
}

// verdict is what a response says, for exact comparison.
type verdict struct {
	Allowed  bool
	Code     int32
	Message  string
	Warnings []string
}

func verdictOf(r admission.Response) verdict {
	v := verdict{Allowed: r.Allowed, Warnings: r.Warnings}
	if r.Result != nil {
		v.Code, v.Message = r.Result.Code, r.Result.Message
		if r.Allowed {
			v.Code = 0 // 200, uninteresting
		}
	}
	return v
}

func (v verdict) String() string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func allowed(warnings ...string) verdict { return verdict{Allowed: true, Warnings: warnings} }
func denied(msg string, warnings ...string) verdict {
	return verdict{Code: http.StatusForbidden, Message: msg, Warnings: warnings}
}
func errored(code int32, msg string) verdict { return verdict{Code: code, Message: msg} }

func TestKindAdmission(t *testing.T) {
	cases := []struct {
		name     string
		kind     kindSpec
		existing []client.Object
		op       admissionv1.Operation
		reqName  string
		obj      any
		want     verdict
	}{
		// IPAddressPool
		{name: "pool: a valid pool is allowed", kind: poolKind, op: admissionv1.Create, reqName: "a",
			obj: pool("a", "203.0.113.0/25"), want: allowed()},
		{name: "pool: an address that is no range is denied naming pool and field", kind: poolKind, op: admissionv1.Create, reqName: "a",
			obj: pool("a", "203.0.113.0/25", "not-an-address"), want: denied("ipaddresspool \"a\": spec.addresses[1]: invalid range \"not-an-address\": start \"not\" is not an IP address")},
		{name: "pool: overlap with another pool is denied naming both", kind: poolKind, op: admissionv1.Create, reqName: "b",
			existing: []client.Object{pool("a", "203.0.113.0/25")},
			obj:      pool("b", "203.0.113.100-203.0.113.110"), want: denied("ipaddresspool \"b\": spec.addresses[0]: 203.0.113.100-203.0.113.110 overlaps 203.0.113.0/25 of ipaddresspool \"a\"")},
		{name: "pool: overlap within the pool is denied", kind: poolKind, op: admissionv1.Create, reqName: "a",
			obj: pool("a", "203.0.113.0/25", "203.0.113.5/32"), want: denied("ipaddresspool \"a\": spec.addresses[1]: 203.0.113.5/32 overlaps spec.addresses[0] 203.0.113.0/25 of the same pool")},
		{name: "pool: adjacent ranges of two pools do not overlap", kind: poolKind, op: admissionv1.Create, reqName: "b",
			existing: []client.Object{pool("a", "203.0.113.0/25")},
			obj:      pool("b", "203.0.113.128/25"), want: allowed()},
		{name: "pool: update replaces the stored version, not an overlap with itself", kind: poolKind, op: admissionv1.Update, reqName: "a",
			existing: []client.Object{pool("a", "203.0.113.0/25")},
			obj:      pool("a", "203.0.113.0/24"), want: allowed()},
		{name: "pool: update that moves onto another pool's range is denied", kind: poolKind, op: admissionv1.Update, reqName: "a",
			existing: []client.Object{pool("a", "203.0.113.0/25"), pool("b", "198.51.100.0/24")},
			obj:      pool("a", "198.51.100.7/32"), want: denied("ipaddresspool \"a\": spec.addresses[0]: 198.51.100.7/32 overlaps 198.51.100.0/24 of ipaddresspool \"b\"")},
		{name: "pool: problems of other objects do not deny this one", kind: poolKind, op: admissionv1.Create, reqName: "c",
			existing: []client.Object{bgpAdv("adv", "ghost")},
			obj:      pool("c", "192.0.2.0/24"), want: allowed()},
		{name: "pool: outside the stack's namespace is denied", kind: poolKind, op: admissionv1.Create, reqName: "a",
			obj: func() any { p := pool("a", "192.0.2.0/24"); p.Namespace = "default"; return p }(), want: denied("ipaddresspool \"a\": metadata.namespace: ipaddresspool \"a\" is in namespace \"default\"; every metallb.io object must be in the stack's namespace \"metallb-system\"")},
		{name: "pool: namespace taken from the request when the object has none", kind: poolKind, op: admissionv1.Create, reqName: "b",
			existing: []client.Object{pool("a", "203.0.113.0/25")},
			obj:      func() any { p := pool("b", "203.0.113.1/32"); p.Namespace = ""; return p }(), want: denied("ipaddresspool \"b\": spec.addresses[0]: 203.0.113.1/32 overlaps 203.0.113.0/25 of ipaddresspool \"a\"")},
		{name: "pool: an object being deleted is allowed whatever it holds", kind: poolKind, op: admissionv1.Update, reqName: "a",
			existing: []client.Object{pool("b", "203.0.113.0/25")},
			obj: func() any {
				p := pool("a", "203.0.113.0/25")
				now := metav1.Now()
				p.DeletionTimestamp, p.Finalizers = &now, []string{"x"}
				return p
			}(), want: allowed()},
		{name: "pool: delete is allowed", kind: poolKind, op: admissionv1.Delete, reqName: "a",
			existing: []client.Object{pool("a", "203.0.113.0/25"), bgpAdv("adv", "a")}, want: allowed()},

		// BGPPeer
		{name: "peer: a valid peer is allowed", kind: peerKind, op: admissionv1.Create, reqName: "p",
			obj: peer("p", "192.0.2.1", nil), want: allowed()},
		{name: "peer: a bad address is denied naming the field", kind: peerKind, op: admissionv1.Create, reqName: "p",
			obj: peer("p", "192.0.2.300", nil), want: denied("bgppeer \"p\": spec.peerAddress: invalid peerAddress: \"192.0.2.300\" is not an IP address")},
		{name: "peer: a missing BFD profile is a warning", kind: peerKind, op: admissionv1.Create, reqName: "p",
			obj: peer("p", "192.0.2.1", func(s *v1beta2.BGPPeerSpec) { s.BFDProfile = "fast" }), want: allowed("bgppeer \"p\": spec.bfdProfile: bfdprofile \"fast\" does not exist (yet); the session runs without BFD until it does")},
		{name: "peer: an existing BFD profile is no warning", kind: peerKind, op: admissionv1.Create, reqName: "p",
			existing: []client.Object{bfd("fast", 3)},
			obj:      peer("p", "192.0.2.1", func(s *v1beta2.BGPPeerSpec) { s.BFDProfile = "fast" }), want: allowed()},
		{name: "peer: a missing password Secret is a warning", kind: peerKind, op: admissionv1.Create, reqName: "p",
			obj: peer("p", "192.0.2.1", func(s *v1beta2.BGPPeerSpec) { s.PasswordSecret = corev1.SecretReference{Name: "pw", Namespace: testNS} }), want: allowed("bgppeer \"p\": spec.passwordSecret: secret \"pw\" does not exist (yet); the session waits for its password")},
		{name: "peer: a password Secret in the cache is no warning", kind: peerKind, op: admissionv1.Create, reqName: "p",
			existing: []client.Object{&corev1.Secret{ObjectMeta: om("pw"), Type: corev1.SecretTypeBasicAuth, Data: map[string][]byte{"password": []byte("x")}}},
			obj:      peer("p", "192.0.2.1", func(s *v1beta2.BGPPeerSpec) { s.PasswordSecret = corev1.SecretReference{Name: "pw", Namespace: testNS} }), want: allowed()},

		// BGPAdvertisement
		{name: "bgp advertisement: of an existing pool is allowed", kind: bgpAdvKind, op: admissionv1.Create, reqName: "adv",
			existing: []client.Object{pool("a", "203.0.113.0/25")}, obj: bgpAdv("adv", "a"), want: allowed()},
		{name: "bgp advertisement: of a missing pool is allowed with a warning", kind: bgpAdvKind, op: admissionv1.Create, reqName: "adv",
			obj: bgpAdv("adv", "ghost"), want: allowed("bgpadvertisement \"adv\": spec.ipAddressPools[0]: ipaddresspool \"ghost\" does not exist (yet); the advertisement applies to it once it does")},
		{name: "bgp advertisement: an aggregation length longer than the address is denied", kind: bgpAdvKind, op: admissionv1.Create, reqName: "adv",
			existing: []client.Object{pool("a", "203.0.113.0/25")},
			obj: func() any {
				a := bgpAdv("adv", "a")
				l := int32(33)
				a.Spec.AggregationLength = &l
				return a
			}(), want: denied("bgpadvertisement \"adv\": spec.aggregationLength: aggregationLength 33 is out of range 1..32")},
		{name: "bgp advertisement: an unknown community alias is allowed with a warning", kind: bgpAdvKind, op: admissionv1.Create, reqName: "adv",
			existing: []client.Object{pool("a", "203.0.113.0/25")},
			obj:      func() any { a := bgpAdv("adv", "a"); a.Spec.Communities = []string{"nosuchalias"}; return a }(), want: allowed("bgpadvertisement \"adv\": spec.communities[0]: community alias \"nosuchalias\" is not defined by any Community object (yet); it is not attached until it is")},

		// L2Advertisement
		{name: "l2 advertisement: of an existing pool is allowed", kind: l2AdvKind, op: admissionv1.Create, reqName: "l2",
			existing: []client.Object{pool("a", "203.0.113.0/25")}, obj: l2Adv("l2", "a"), want: allowed()},
		{name: "l2 advertisement: of a missing pool is allowed with a warning", kind: l2AdvKind, op: admissionv1.Create, reqName: "l2",
			obj: l2Adv("l2", "ghost"), want: allowed("l2advertisement \"l2\": spec.ipAddressPools[0]: ipaddresspool \"ghost\" does not exist (yet); the advertisement applies to it once it does")},

		// BFDProfile
		{name: "bfd profile: a valid profile is allowed", kind: bfdKind, op: admissionv1.Create, reqName: "fast",
			obj: bfd("fast", 3), want: allowed()},
		{name: "bfd profile: a multiplier out of range is denied", kind: bfdKind, op: admissionv1.Create, reqName: "fast",
			obj: bfd("fast", 1000), want: denied("bfdprofile \"fast\": spec.detectMultiplier: detectMultiplier 1000 is out of range 2..255")},
		{name: "bfd profile: delete while a peer uses it is denied naming the peer", kind: bfdKind, op: admissionv1.Delete, reqName: "fast",
			existing: []client.Object{bfd("fast", 3), peer("p", "192.0.2.1", func(s *v1beta2.BGPPeerSpec) { s.BFDProfile = "fast" })},
			want:     denied("bfdprofile \"fast\": cannot be deleted while bgppeer \"p\" uses it (spec.bfdProfile); change or delete that peer first")},
		{name: "bfd profile: delete while two peers use it names both", kind: bfdKind, op: admissionv1.Delete, reqName: "fast",
			existing: []client.Object{bfd("fast", 3),
				peer("p", "192.0.2.1", func(s *v1beta2.BGPPeerSpec) { s.BFDProfile = "fast" }),
				peer("q", "192.0.2.2", func(s *v1beta2.BGPPeerSpec) { s.BFDProfile = "fast" })},
			want: denied("bfdprofile \"fast\": cannot be deleted while bgppeer \"p\" and bgppeer \"q\" use it (spec.bfdProfile); change or delete those peers first")},
		{name: "bfd profile: delete of an unused profile is allowed", kind: bfdKind, op: admissionv1.Delete, reqName: "fast",
			existing: []client.Object{bfd("fast", 3), peer("p", "192.0.2.1", nil)}, want: allowed()},

		// Community
		{name: "community: valid aliases are allowed", kind: communityKind, op: admissionv1.Create, reqName: "c",
			obj: community("c", v1beta1.CommunityAlias{Name: "noexport", Value: "65535:65281"}), want: allowed()},
		{name: "community: a malformed value is denied naming the alias", kind: communityKind, op: admissionv1.Create, reqName: "c",
			obj: community("c", v1beta1.CommunityAlias{Name: "bad", Value: "65535"}), want: denied("community \"c\": spec.communities[0].value: alias \"bad\": invalid community \"65535\": expected AA:NN (16-bit numbers) or large:G:L1:L2 (32-bit numbers)")},

		// Decoding
		{name: "malformed JSON is a 400 naming the object", kind: poolKind, op: admissionv1.Create, reqName: "a",
			obj: []byte(`{"apiVersion":"metallb.io/v1beta1","kind":"IPAddressPool","spec":`), want: errored(http.StatusBadRequest, "ipaddresspool \"a\": couldn't get version/kind; json parse error: unexpected end of JSON input")},
		{name: "a field of the wrong type is a 400", kind: poolKind, op: admissionv1.Create, reqName: "a",
			obj: []byte(`{"apiVersion":"metallb.io/v1beta1","kind":"IPAddressPool","metadata":{"name":"a"},"spec":{"addresses":"203.0.113.0/25"}}`), want: errored(http.StatusBadRequest, "ipaddresspool \"a\": json: cannot unmarshal string into Go struct field IPAddressPoolSpec.spec.addresses of type []string")},
		{name: "an empty object is a 400", kind: poolKind, op: admissionv1.Create, reqName: "a",
			obj: []byte{}, want: errored(http.StatusBadRequest, "ipaddresspool \"a\": there is no content to decode")},
		{name: "an object of another kind is a 400", kind: poolKind, op: admissionv1.Create, reqName: "p",
			obj: peer("p", "192.0.2.1", nil), want: errored(http.StatusBadRequest, "ipaddresspool \"p\": unable to decode metallb.io/v1beta2, Kind=BGPPeer into *v1beta1.IPAddressPool")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHandler(tc.kind, newValidator(tc.existing...))
			got := verdictOf(h.Handle(context.Background(), request(t, tc.op, tc.reqName, tc.obj)))
			if got.String() != tc.want.String() {
				t.Errorf("got %s\nwant %s", got, tc.want)
			}
		})
	}
}
