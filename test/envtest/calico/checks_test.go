package calico_test

import (
	"context"
	"strings"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/projectcalico/api/pkg/lib/numorstring"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/controllers"
	"github.com/lbstack/lbstack/pkg/calico"
	calicoreconciler "github.com/lbstack/lbstack/pkg/calico/reconciler"
	calicov1 "github.com/lbstack/lbstack/pkg/calicoapi/v1"
	srreconciler "github.com/lbstack/lbstack/pkg/symrouting/reconciler"
	"github.com/lbstack/lbstack/test/envtest"
)

// checkWant is what the event of one check must name: both objects and
// the field.
type checkWant struct {
	check string
	words []string
}

const (
	bgpConfigRef = `bgpconfiguration.crd.projectcalico.org "default"`
	calicoPeer   = "bgppeer.crd.projectcalico.org"
)

// TestEveryCheckFires drives the cluster through the states that fire
// every check of pkg/calico, and reads each one back as an event on the
// MetalLB object whose message names both objects and the field; the
// CalicoConsistent condition sums them up.
func TestEveryCheckFires(t *testing.T) {
	s := startStack(t, false)
	ctx := context.Background()
	create := func(o client.Object) {
		t.Helper()
		if err := s.c.Create(ctx, o); err != nil {
			t.Fatalf("create %T %s: %v", o, o.GetName(), err)
		}
	}
	om := func(name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }

	// Stage 1: Calico has neither a default BGPConfiguration nor a BGPPeer;
	// the metallb.io objects ask for what Calico cannot do.
	create(&v1beta1.MetalLB{ObjectMeta: om("metallb"), Spec: v1beta1.MetalLBSpec{BGPType: v1beta1.BGPTypeCalico}})
	create(&v1beta1.IPAddressPool{ObjectMeta: om("announced"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"203.0.113.0/26"}}})
	create(&v1beta1.IPAddressPool{ObjectMeta: om("l2only"), Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"198.51.100.0/24"}}})
	create(&v1beta1.L2Advertisement{ObjectMeta: om("l2"), Spec: v1beta1.L2AdvertisementSpec{IPAddressPools: []string{"l2only"}}})
	create(&v1beta2.BGPPeer{ObjectMeta: om("router"), Spec: v1beta2.BGPPeerSpec{MyASN: 64600, ASN: 65535, Address: "198.18.0.254"}})
	create(&v1beta1.BGPAdvertisement{ObjectMeta: om("picky"), Spec: v1beta1.BGPAdvertisementSpec{
		IPAddressPools:   []string{"announced"},
		LocalPref:        100,
		Peers:            []string{"router"},
		NodeSelectors:    []metav1.LabelSelector{{MatchLabels: map[string]string{"edge": "true"}}},
		ServiceSelectors: []metav1.LabelSelector{{MatchLabels: map[string]string{"app": "web"}}},
	}})
	// serviceSelectors need the default aggregation: a second one.
	create(&v1beta1.BGPAdvertisement{ObjectMeta: om("wide"), Spec: v1beta1.BGPAdvertisementSpec{
		IPAddressPools: []string{"announced"}, AggregationLength: ptr.To[int32](24)}})
	local := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "web-local"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, ExternalTrafficPolicy: corev1.ServiceExternalTrafficPolicyLocal,
			Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	create(local)
	local.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "203.0.113.7"}}
	if err := s.c.Status().Update(ctx, local); err != nil {
		t.Fatal(err)
	}
	adv := `bgpadvertisement "metallb-system/picky"`
	stage1 := []checkWant{
		{calico.CheckLocalPrefIgnored, []string{adv, bgpConfigRef, "spec.localPref"}},
		{calico.CheckAggregationBeyondPool, []string{`bgpadvertisement "metallb-system/wide"`, `ipaddresspool "metallb-system/announced"`, "spec.aggregationLength"}},
		{calico.CheckAdvertisementPeers, []string{adv, bgpConfigRef, "spec.peers"}},
		{calico.CheckAdvertisementNodes, []string{adv, bgpConfigRef, "spec.nodeSelectors"}},
		{calico.CheckAdvertisementServiceSel, []string{adv, bgpConfigRef, "spec.serviceSelectors"}},
		{calico.CheckCalicoBGPPeerMissing, []string{adv, calicoPeer, "spec.ipAddressPools"}},
		{calico.CheckBGPConfigurationMissing, []string{bgpConfigRef, adv, "spec.serviceLoadBalancerIPs"}},
		{calico.CheckBGPPeerIgnored, []string{`bgppeer "metallb-system/router"`, bgpConfigRef, "spec.myASN", "peerIP 198.18.0.254 and asNumber 65535"}},
		{calico.CheckServiceLocalHostRoutes, []string{`service "calico-apps/web-local"`, `ipaddresspool "metallb-system/announced"`, "spec.externalTrafficPolicy"}},
	}
	s.waitEvents(t, stage1)
	cond := s.waitCondition(t, "CalicoConsistent Inconsistent", func(c *metav1.Condition) bool {
		return c != nil && c.Reason == calicoreconciler.ReasonInconsistent
	})
	if cond.Status != metav1.ConditionFalse || !strings.Contains(cond.Message, "3 error(s)") {
		t.Errorf("stage 1 condition: %s", toJSON(cond))
	}

	// Stage 2: Calico's configuration exists, with serviceLoadBalancerIPs
	// someone else wrote, and a Calico BGPPeer for the metallb.io peer's
	// router.
	create(&calicov1.BGPPeer{ObjectMeta: metav1.ObjectMeta{Name: "tor"}, Spec: v3.BGPPeerSpec{PeerIP: "198.18.0.254", ASNumber: 65535}})
	theirs := &calicov1.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: calicov1.DefaultBGPConfigurationName}, Spec: v3.BGPConfigurationSpec{
		ASNumber: ptr.To(numorstring.ASNumber(65535)),
		ServiceLoadBalancerIPs: []v3.ServiceLoadBalancerIPBlock{
			{CIDR: "not-a-cidr"}, {CIDR: "192.0.2.0/24"}, {CIDR: "203.0.113.0/24"}, {CIDR: "198.51.100.0/25"},
		},
	}}
	if err := s.c.Create(ctx, theirs, client.FieldOwner("network-admin")); err != nil {
		t.Fatal(err)
	}
	entry := func(i int) string { return "spec.serviceLoadBalancerIPs[" + string(rune('0'+i)) + "].cidr" }
	stage2 := []checkWant{
		{calico.CheckLoadBalancerIPInvalid, []string{bgpConfigRef, entry(0), `"not-a-cidr"`}},
		{calico.CheckLoadBalancerIPNoPool, []string{bgpConfigRef, entry(1), "192.0.2.0/24"}},
		{calico.CheckLoadBalancerIPBeyondPools, []string{bgpConfigRef, entry(2), "203.0.113.0/24"}},
		{calico.CheckLoadBalancerIPNotAdvertised, []string{bgpConfigRef, entry(3), `ipaddresspool "metallb-system/l2only"`}},
		// The ignored BGPPeer now names the Calico BGPPeer that replaces it.
		{calico.CheckBGPPeerIgnored, []string{`bgppeer "metallb-system/router"`, `bgppeer.crd.projectcalico.org "tor" already peers with 198.18.0.254`, "spec"}},
		{calicoreconciler.ReasonConflictEventType, []string{bgpConfigRef, "spec.serviceLoadBalancerIPs", "network-admin"}},
	}
	s.waitEvents(t, stage2)
	s.waitCondition(t, "CalicoConsistent Conflict", func(c *metav1.Condition) bool {
		return c != nil && c.Reason == calicoreconciler.ReasonConflict && c.Status == metav1.ConditionFalse
	})
	if got := s.bgpConfiguration(t).Spec.ServiceLoadBalancerIPs; len(got) != 4 || got[0].CIDR != "not-a-cidr" {
		t.Errorf("the administrator's entries changed: %s", toJSON(got))
	}

	// Every check of pkg/calico fired.
	fired := map[string]bool{}
	for _, w := range append(stage1, stage2...) {
		fired[w.check] = true
	}
	for _, c := range calico.Checks() {
		if !fired[c.ID] {
			t.Errorf("check %s never fired", c.ID)
		}
	}
}

// waitEvents waits for one event per check on the MetalLB object whose
// message holds every word.
func (s *stack) waitEvents(t *testing.T, wants []checkWant) {
	t.Helper()
	for _, w := range wants {
		waitFor(t, "event "+w.check, func() bool {
			for _, msg := range s.events(t)[w.check] {
				ok := true
				for _, word := range w.words {
					ok = ok && strings.Contains(msg, word)
				}
				if ok {
					return true
				}
			}
			return false
		}, func() string { return toJSON(s.events(t)[w.check]) + "\nwant the words " + toJSON(w.words) })
	}
}

// TestWithoutCalico: without Calico's CRDs the coordinator watches no
// Calico kind and, with bgpBackend calico, says in the condition that
// Calico is missing; with another backend there is no condition.
func TestWithoutCalico(t *testing.T) {
	env := envtest.Start(t)
	if err := calicoreconciler.AddToScheme(env.Scheme); err != nil {
		t.Fatal(err)
	}
	apis := detect(t, env.Config)
	if apis.CRDs || apis.V3 {
		t.Fatalf("Calico APIs detected %+v without Calico's CRDs", apis)
	}
	mgr, err := ctrl.NewManager(env.Config, ctrl.Options{
		Scheme: env.Scheme, Metrics: metricsserver.Options{BindAddress: "0"}, HealthProbeBindAddress: "0",
		Cache:      controllers.OperatorCacheOptionsWithCalico(ns, srreconciler.APIs{}, apis),
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &calicoreconciler.Reconciler{Client: mgr.GetClient(), Namespace: ns, APIs: apis}
	if err := r.SetupWithManager(mgr); err != nil {
		t.Fatal(err)
	}
	runManager(t, mgr)
	s := &stack{env: env, c: env.Client, r: r, writes: &writeCounter{}}
	if err := s.c.Create(context.Background(), &v1beta1.MetalLB{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "metallb"},
		Spec: v1beta1.MetalLBSpec{BGPType: v1beta1.BGPTypeCalico}}); err != nil {
		t.Fatal(err)
	}
	cond := s.waitCondition(t, "CalicoConsistent CalicoCRDsMissing", func(c *metav1.Condition) bool {
		return c != nil && c.Reason == calicoreconciler.ReasonCRDsMissing
	})
	if cond.Status != metav1.ConditionFalse || !strings.Contains(cond.Message, "BGPConfiguration.crd.projectcalico.org") || !strings.Contains(cond.Message, "restart the operator") {
		t.Errorf("condition %s", toJSON(cond))
	}
	s.setBackend(t, v1beta1.BGPTypeFRR)
	s.waitCondition(t, "no CalicoConsistent condition with bgpBackend frr", func(c *metav1.Condition) bool { return c == nil })
}
