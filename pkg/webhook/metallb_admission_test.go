package webhook

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
	"github.com/lbstack/lbstack/pkg/scheme"
	"github.com/lbstack/lbstack/pkg/symrouting/load"
)

func metallb(ns, name string, mod func(*v1beta1.MetalLBSpec)) *v1beta1.MetalLB {
	m := &v1beta1.MetalLB{TypeMeta: metav1.TypeMeta{APIVersion: "metallb.io/v1beta1", Kind: "MetalLB"},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}}
	if mod != nil {
		mod(&m.Spec)
	}
	return m
}

func TestMetalLBAdmission(t *testing.T) {
	cases := []struct {
		name     string
		existing []client.Object
		op       admissionv1.Operation
		obj      any
		want     verdict
	}{
		{name: "the first MetalLB in the operator's namespace is allowed", op: admissionv1.Create,
			obj: metallb(testNS, "metallb", nil), want: allowed()},
		{name: "native and frr backends are allowed", op: admissionv1.Create,
			obj: metallb(testNS, "metallb", func(s *v1beta1.MetalLBSpec) { s.BGPType = v1beta1.BGPTypeNative }), want: allowed()},
		{name: "another namespace is denied naming metadata.namespace", op: admissionv1.Create,
			obj: metallb("default", "metallb", nil), want: denied("metallb default/metallb: metadata.namespace: the MetalLB object must be created in the operator's namespace \"metallb-system\"")},
		{name: "the namespace is taken from the request when the object has none", op: admissionv1.Create,
			obj: metallb("", "metallb", nil), want: allowed()},
		{name: "frr-k8s backend is denied naming spec.bgpBackend", op: admissionv1.Create,
			obj: metallb(testNS, "metallb", func(s *v1beta1.MetalLBSpec) { s.BGPType = v1beta1.BGPTypeFRRK8s }), want: denied("metallb metallb-system/metallb: spec.bgpBackend: \"frr-k8s\" is not supported by lbstack; use \"native\" (embedded GoBGP), \"frr\" (FRR sidecar, needed for BFD and VRFs) or \"calico\" (Calico's nodes announce)")},
		{name: "frr-k8s-external backend is denied", op: admissionv1.Create,
			obj: metallb(testNS, "metallb", func(s *v1beta1.MetalLBSpec) { s.BGPType = v1beta1.BGPTypeFRRK8sExternal }), want: denied("metallb metallb-system/metallb: spec.bgpBackend: \"frr-k8s-external\" is not supported by lbstack; use \"native\" (embedded GoBGP), \"frr\" (FRR sidecar, needed for BFD and VRFs) or \"calico\" (Calico's nodes announce)")},
		{name: "a loadBalancerClass that is no qualified name is denied naming the field", op: admissionv1.Create,
			obj: metallb(testNS, "metallb", func(s *v1beta1.MetalLBSpec) { s.LoadBalancerClass = "a b" }), want: denied("metallb metallb-system/metallb: spec.loadBalancerClass: Invalid value: \"a b\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")},
		{name: "a qualified loadBalancerClass is allowed", op: admissionv1.Create,
			obj: metallb(testNS, "metallb", func(s *v1beta1.MetalLBSpec) { s.LoadBalancerClass = "example.com/bare-metal" }), want: allowed()},
		{name: "every bad field is named, joined", op: admissionv1.Create,
			obj: metallb(testNS, "metallb", func(s *v1beta1.MetalLBSpec) {
				s.LoadBalancerClass = "-x"
				s.NodeSelector = map[string]string{"a": "b c"}
			}), want: denied("metallb metallb-system/metallb: spec.loadBalancerClass: Invalid value: \"-x\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]'); spec.nodeSelector: Invalid value: \"b c\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')")},
		{name: "a second MetalLB is denied naming the existing one", op: admissionv1.Create,
			existing: []client.Object{metallb(testNS, "metallb", nil)},
			obj:      metallb(testNS, "other", nil), want: denied("metallb metallb-system/other: only one MetalLB object may exist per cluster and metallb-system/metallb already does; edit it instead")},
		{name: "a create of the existing name (a retried apply) is allowed", op: admissionv1.Create,
			existing: []client.Object{metallb(testNS, "metallb", nil)},
			obj:      metallb(testNS, "metallb", nil), want: allowed()},
		{name: "an update is allowed even with several MetalLBs around", op: admissionv1.Update,
			existing: []client.Object{metallb(testNS, "metallb", nil), metallb(testNS, "b", nil)},
			obj:      metallb(testNS, "metallb", func(s *v1beta1.MetalLBSpec) { s.LogLevel = "debug" }), want: allowed()},
		{name: "an update is still validated", op: admissionv1.Update,
			existing: []client.Object{metallb(testNS, "metallb", nil)},
			obj:      metallb(testNS, "metallb", func(s *v1beta1.MetalLBSpec) { s.LoadBalancerClass = "$(X)" }), want: denied("metallb metallb-system/metallb: spec.loadBalancerClass: Invalid value: \"$(X)\": name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')")},
		{name: "malformed JSON is a 400 naming the object", op: admissionv1.Create,
			obj: []byte(`{"kind":"MetalLB",`), want: errored(http.StatusBadRequest, "metallb metallb-system/metallb: couldn't get version/kind; json parse error: unexpected end of JSON input")},
		{name: "an object of another kind is a 400 naming the object", op: admissionv1.Create,
			obj: pool("a", "192.0.2.0/24"), want: errored(http.StatusBadRequest, "metallb metallb-system/metallb: unable to decode metallb.io/v1beta1, Kind=IPAddressPool into *v1beta1.MetalLB")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newValidator(tc.existing...)
			h := &metalLBHandler{v: v, decoder: admission.NewDecoder(v.Scheme)}
			got := verdictOf(h.Handle(context.Background(), request(t, tc.op, "metallb", tc.obj)))
			if got.String() != tc.want.String() {
				t.Errorf("got %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestMetalLBAdmissionListError(t *testing.T) {
	s := scheme.New()
	c := fake.NewClientBuilder().WithScheme(s).WithInterceptorFuncs(interceptor.Funcs{
		List: func(ctx context.Context, c client.WithWatch, l client.ObjectList, o ...client.ListOption) error {
			return errors.New("etcd is down")
		}}).Build()
	v := &Validator{Reader: c, Namespace: testNS, Scheme: s}
	h := &metalLBHandler{v: v, decoder: admission.NewDecoder(s)}
	got := verdictOf(h.Handle(context.Background(), request(t, admissionv1.Create, "metallb", metallb(testNS, "metallb", nil))))
	want := errored(http.StatusInternalServerError, "metallb metallb-system/metallb: listing MetalLB objects: etcd is down")
	if got.String() != want.String() {
		t.Errorf("got %s\nwant %s", got, want)
	}
}

func validSymmetricRouting(name string) *v1alpha1.SymmetricRouting {
	return &v1alpha1.SymmetricRouting{
		TypeMeta:   metav1.TypeMeta{APIVersion: "lbstack.io/v1alpha1", Kind: "SymmetricRouting"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: v1alpha1.SymmetricRoutingSpec{
			VRF:               v1alpha1.SymmetricVRF{Name: "vrf1", RouteTableID: 10, Port: "eth1", Addresses: []string{"192.0.2.10/24"}},
			Peer:              v1alpha1.SymmetricPeer{MyASN: 64512, ASN: 64513, Address: "192.0.2.1"},
			Services:          []v1alpha1.SymmetricService{{Namespace: "ns", Name: "web", Addresses: []string{"198.51.100.1/32"}}},
			MainTableNetworks: []string{"10.128.0.0/14"},
		},
	}
}

func TestSymmetricRoutingAdmission(t *testing.T) {
	cases := []struct {
		name string
		op   admissionv1.Operation
		obj  any
		want verdict
	}{
		{name: "a valid declaration is allowed", op: admissionv1.Create, obj: validSymmetricRouting("edge"), want: allowed()},
		{name: "an update is validated the same way", op: admissionv1.Update,
			obj: func() any { sr := validSymmetricRouting("edge"); sr.Spec.SourceIPBy = "Magic"; return sr }(), want: denied("symmetricrouting \"edge\": spec.sourceIPBy: Unsupported value: \"Magic\": supported values: \"LoadBalancerIP\", \"Network\"")},
		{name: "every bad field is named, joined, with the object's name", op: admissionv1.Create,
			obj: func() any {
				sr := validSymmetricRouting("edge")
				sr.Spec.Peer.Address = "nope"
				sr.Spec.MainTableNetworks = []string{"10.0.0.1"}
				return sr
			}(), want: denied("symmetricrouting \"edge\": spec.peer.peerAddress: Invalid value: \"nope\": must be an IP address; spec.mainTableNetworks[0]: Invalid value: \"10.0.0.1\": must be a CIDR")},
		{name: "a name that is no label value is denied", op: admissionv1.Create,
			obj: validSymmetricRouting("a_b-"), want: denied("symmetricrouting \"a_b-\": metadata.name: Invalid value: \"a_b-\": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?'); metadata.name: Invalid value: \"a_b-\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*'); spec.services[0].poolName: Invalid value: \"a_b--ns-web\": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')")},
		{name: "an object on its way out is allowed whatever it holds", op: admissionv1.Update,
			obj: func() any {
				sr := validSymmetricRouting("edge")
				sr.Spec.SourceIPBy = "Magic"
				now := metav1.Now()
				sr.DeletionTimestamp, sr.Finalizers = &now, []string{"lbstack.io/x"}
				return sr
			}(), want: allowed()},
		{name: "malformed JSON is a 400 naming the request's object", op: admissionv1.Create,
			obj: []byte(`{"spec":[`), want: errored(http.StatusBadRequest, "symmetricrouting \"edge\": couldn't get version/kind; json parse error: unexpected end of JSON input")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := &symmetricRoutingHandler{decoder: admission.NewDecoder(scheme.New())}
			req := request(t, tc.op, "edge", tc.obj)
			req.Namespace = ""
			got := verdictOf(h.Handle(context.Background(), req))
			if got.String() != tc.want.String() {
				t.Errorf("got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestBGPBackendDecidesPeerRules: the rules follow the backend: the
// Validator's when set, else the MetalLB object's, else frr.
func TestBGPBackendDecidesPeerRules(t *testing.T) {
	dynamic := peer("p", "192.0.2.1", func(s *v1beta2.BGPPeerSpec) { s.ASN, s.DynamicASN = 0, v1beta2.InternalASNMode })
	native := metallb(testNS, "metallb", func(s *v1beta1.MetalLBSpec) { s.BGPType = v1beta1.BGPTypeNative })
	deleting := native.DeepCopy()
	deleting.DeletionTimestamp = &metav1.Time{Time: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)}
	deleting.ResourceVersion = "7"
	cases := []struct {
		name     string
		backend  v1beta1.BGPType
		existing []client.Object
		// admitMetalLB is admitted (by the MetalLB webhook) first.
		admitMetalLB *v1beta1.MetalLB
		dryRun       bool
		want         verdict
	}{
		{name: "no MetalLB object: frr, dynamicASN allowed", want: allowed()},
		{name: "MetalLB says native: dynamicASN denied", existing: []client.Object{native}, want: denied("bgppeer \"p\": spec.dynamicASN: dynamicASN is not supported with bgpBackend native; use bgpBackend frr")},
		{name: "the Validator's backend wins over the MetalLB object", backend: v1beta1.BGPTypeFRR, existing: []client.Object{native}, want: allowed()},
		{name: "the Validator's native backend applies without MetalLB object", backend: v1beta1.BGPTypeNative, want: denied("bgppeer \"p\": spec.dynamicASN: dynamicASN is not supported with bgpBackend native; use bgpBackend frr")},
		{name: "a MetalLB object just admitted, not yet watched, decides", admitMetalLB: native, want: denied("bgppeer \"p\": spec.dynamicASN: dynamicASN is not supported with bgpBackend native; use bgpBackend frr")},
		{name: "a MetalLB object admitted in a dry run does not", admitMetalLB: native, dryRun: true, want: allowed()},
		{name: "an update of a MetalLB object on its way out does not", admitMetalLB: deleting, want: allowed()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newValidator(tc.existing...)
			v.BGPBackend = tc.backend
			if tc.admitMetalLB != nil {
				req := request(t, admissionv1.Create, tc.admitMetalLB.Name, tc.admitMetalLB)
				req.DryRun = &tc.dryRun
				h := &metalLBHandler{v: v, decoder: admission.NewDecoder(v.Scheme)}
				if got := verdictOf(h.Handle(context.Background(), req)); !got.Allowed {
					t.Fatalf("MetalLB: %s", got)
				}
			}
			got := verdictOf(newHandler(peerKind, v).Handle(context.Background(), request(t, admissionv1.Create, "p", dynamic)))
			if got.String() != tc.want.String() {
				t.Errorf("got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestKindAdmissionReadErrors: when the current configuration cannot be
// read the request fails (500) naming the object, on create and delete.
func TestKindAdmissionReadErrors(t *testing.T) {
	failOn := func(what string) interceptor.Funcs {
		return interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, l client.ObjectList, o ...client.ListOption) error {
			if _, ok := l.(*v1beta2.BGPPeerList); ok && what == "peers" {
				return errors.New("peers unavailable")
			}
			return c.List(ctx, l, o...)
		}}
	}
	cases := []struct {
		name, failing string
		backend       v1beta1.BGPType
		op            admissionv1.Operation
		want          verdict
	}{
		{name: "peers cannot be listed on create", failing: "peers", backend: v1beta1.BGPTypeFRR, op: admissionv1.Create, want: errored(500, "bfdprofile \"a\": reading the current configuration: list *v1beta2.BGPPeerList: peers unavailable")},
		{name: "peers cannot be listed on delete", failing: "peers", backend: v1beta1.BGPTypeFRR, op: admissionv1.Delete, want: errored(500, "bfdprofile \"a\": reading the current configuration: list *v1beta2.BGPPeerList: peers unavailable")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := scheme.New()
			c := fake.NewClientBuilder().WithScheme(s).WithInterceptorFuncs(failOn(tc.failing)).Build()
			v := &Validator{Reader: c, Namespace: testNS, BGPBackend: tc.backend, Scheme: s}
			got := verdictOf(newHandler(bfdKind, v).Handle(context.Background(), request(t, tc.op, "a", bfd("a", 3))))
			if got.String() != tc.want.String() {
				t.Errorf("got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// testMapper serves none of the optional APIs, or NMState's.
func testMapper(withNMState bool, more ...schema.GroupVersionKind) meta.RESTMapper {
	m := meta.NewDefaultRESTMapper(nil)
	for _, gvk := range more {
		m.Add(gvk, meta.RESTScopeNamespace)
	}
	if withNMState {
		for _, gvk := range []schema.GroupVersionKind{load.GVKNNCP, load.GVKNNS, load.GVKNNCE} {
			m.Add(gvk, meta.RESTScopeRoot)
		}
	}
	return m
}

func TestSymmetricRoutingWarnings(t *testing.T) {
	vrfPeer := peer("vp", "192.0.2.1", func(s *v1beta2.BGPPeerSpec) { s.VRFName = "red" })
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n1"}}
	egressSvc := &ovnv1.EgressService{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "svc"}, Spec: ovnv1.EgressServiceSpec{Network: "red"}}
	egressSvcService := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: "web", Name: "svc"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer},
		Status: corev1.ServiceStatus{LoadBalancer: corev1.LoadBalancerStatus{Ingress: []corev1.LoadBalancerIngress{{IP: "203.0.113.7"}}}}}
	cases := []struct {
		name       string
		failEgress bool
		mapper     meta.RESTMapper
		existing   []client.Object
		kind       kindSpec
		reqName    string
		obj        any
		want       verdict
	}{
		{name: "no mapper: no checks", kind: peerKind, reqName: "vp", existing: []client.Object{node}, obj: vrfPeer, want: allowed()},
		{name: "without NMState the VRF checks cannot tell: no warning", mapper: testMapper(false), kind: peerKind, reqName: "vp", existing: []client.Object{node}, obj: vrfPeer, want: allowed()},
		{name: "VRF peer whose VRF no NMState policy defines is warned about", mapper: testMapper(true), kind: peerKind, reqName: "vp", existing: []client.Object{node}, obj: vrfPeer, want: allowed("symmetric routing (VRFNotDefined): bgppeer \"metallb-system/vp\" spec.vrf is \"red\" but no nodenetworkconfigurationpolicy defines an interface red of type vrf (no policy defines any VRF): set spec.vrf to an existing VRF, or add the VRF to a policy selecting the peer's nodes")},
		{name: "no VRF peer and no EgressService: nothing checked", mapper: testMapper(true), kind: peerKind, reqName: "p", existing: []client.Object{node}, obj: peer("p", "192.0.2.1", nil), want: allowed()},
		{name: "findings about other objects are not the advertisement's warnings", mapper: testMapper(true), kind: bgpAdvKind, reqName: "adv",
			existing: []client.Object{node, vrfPeer, pool("a", "203.0.113.0/25")}, obj: func() any { a := bgpAdv("adv", "a"); a.Spec.Peers = []string{"vp"}; return a }(), want: allowed()},
		{name: "an EgressService puts a pool under the checks without VRF peers", mapper: testMapper(true, ovnv1.EgressServiceGVK), kind: poolKind, reqName: "a",
			existing: []client.Object{node, egressSvc, egressSvcService},
			obj:      pool("a", "203.0.113.0/25"), want: allowed(
				"symmetric routing (EgressNoVRFPeer): egressservice \"web/svc\" spec.network is \"red\" but no bgpadvertisement announces ipaddresspool \"metallb-system/a\" (the pool of service \"web/svc\") to a bgppeer with spec.vrf, so replies do not come back through that table: advertise the pool to the VRF peer only, or clear spec.network",
				"symmetric routing (PoolNotRequested): service \"web/svc\" got its address from ipaddresspool \"metallb-system/a\" without asking for it, and the pool auto-assigns, so the address egressservice \"web/svc\" depends on may change and other services may share the pool: annotate the service with metallb.io/address-pool: a and set the pool's spec.autoAssign to false")},
		{name: "EgressServices that cannot be listed: the checks run, and say nothing when the objects cannot be read", mapper: testMapper(true, ovnv1.EgressServiceGVK),
			kind: poolKind, reqName: "a", existing: []client.Object{node}, failEgress: true,
			obj: pool("a", "203.0.113.0/25"), want: allowed()},
		{name: "kinds without symmetric-routing checks get none", mapper: testMapper(true), kind: communityKind, reqName: "c",
			existing: []client.Object{node, vrfPeer}, obj: community("c"), want: allowed()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := scheme.New()
			if err := load.AddToScheme(s); err != nil {
				t.Fatal(err)
			}
			b := fake.NewClientBuilder().WithScheme(s).WithObjects(tc.existing...)
			if tc.failEgress {
				b = b.WithInterceptorFuncs(interceptor.Funcs{List: func(ctx context.Context, c client.WithWatch, l client.ObjectList, o ...client.ListOption) error {
					if _, ok := l.(*ovnv1.EgressServiceList); ok {
						return errors.New("egressservices unavailable")
					}
					return c.List(ctx, l, o...)
				}})
			}
			v := seeded(&Validator{Reader: b.Build(), Namespace: testNS, BGPBackend: v1beta1.BGPTypeFRR, Scheme: s, Mapper: tc.mapper}, tc.existing...)
			got := verdictOf(newHandler(tc.kind, v).Handle(context.Background(), request(t, admissionv1.Create, tc.reqName, tc.obj)))
			if got.String() != tc.want.String() {
				t.Errorf("got %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestSecretsNodesNamespacesSource: with Cached set, Secrets (and Nodes,
// Namespaces) are read from it and not from the Reader; without it, from
// the Reader. The peer's password Secret exists in one of them only.
func TestSecretsNodesNamespacesSource(t *testing.T) {
	pw := &corev1.Secret{ObjectMeta: om("pw"), Type: corev1.SecretTypeBasicAuth, Data: map[string][]byte{"password": []byte("x")}}
	withSecret := peer("p", "192.0.2.1", func(s *v1beta2.BGPPeerSpec) {
		s.PasswordSecret = corev1.SecretReference{Name: "pw", Namespace: testNS}
	})
	missing := `bgppeer "p": spec.passwordSecret: secret "pw" does not exist (yet); the session waits for its password`
	cases := []struct {
		name              string
		inReader, inCache bool
		noCache           bool
		want              verdict
	}{
		{name: "no cache: the Secret is read from the Reader", noCache: true, inReader: true, want: allowed()},
		{name: "a cache: the Secret is read from it", inCache: true, want: allowed()},
		{name: "a cache: a Secret only the Reader has is not seen", inReader: true, want: allowed(missing)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := scheme.New()
			objs := func(in bool) []client.Object {
				if in {
					return []client.Object{pw.DeepCopy()}
				}
				return nil
			}
			v := &Validator{Reader: fake.NewClientBuilder().WithScheme(s).WithObjects(objs(tc.inReader)...).Build(),
				Namespace: testNS, BGPBackend: v1beta1.BGPTypeFRR, Scheme: s}
			if !tc.noCache {
				v.Cached = fake.NewClientBuilder().WithScheme(s).WithObjects(objs(tc.inCache)...).Build()
			}
			got := verdictOf(newHandler(peerKind, v).Handle(context.Background(), request(t, admissionv1.Create, "p", withSecret)))
			if got.String() != tc.want.String() {
				t.Errorf("got %s\nwant %s", got, tc.want)
			}
		})
	}
}
