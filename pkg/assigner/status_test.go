package assigner

import (
	"math"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/configstate"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

func TestStateOf(t *testing.T) {
	vip, proxy := corev1.LoadBalancerIPModeVIP, corev1.LoadBalancerIPModeProxy
	cases := []struct {
		name    string
		ingress []corev1.LoadBalancerIngress
		ips     []string
		ok      bool
	}{
		{"empty", nil, nil, true},
		{"as the controller writes it", []corev1.LoadBalancerIngress{{IP: "198.51.100.1", IPMode: &vip}, {IP: "2001:db8::1", IPMode: &vip}}, []string{"198.51.100.1", "2001:db8::1"}, true},
		{"no ipMode (older API servers)", []corev1.LoadBalancerIngress{{IP: "198.51.100.1"}}, []string{"198.51.100.1"}, true},
		{"IPv6 first", []corev1.LoadBalancerIngress{{IP: "2001:db8::1"}, {IP: "198.51.100.1"}}, []string{"2001:db8::1", "198.51.100.1"}, false},
		{"hostname", []corev1.LoadBalancerIngress{{Hostname: "lb.example.com"}}, nil, false},
		{"proxy mode", []corev1.LoadBalancerIngress{{IP: "198.51.100.1", IPMode: &proxy}}, nil, false},
		{"ports", []corev1.LoadBalancerIngress{{IP: "198.51.100.1", Ports: []corev1.PortStatus{{Port: 80}}}}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := svc("a", annotate(lbservice.AnnotationIPAllocatedFromPool, "p"))
			s.Status.LoadBalancer.Ingress = tc.ingress
			st, ok := stateOf(s)
			if ok != tc.ok || st.Pool != "p" || (tc.ips != nil && !sameAddrs(st.IPs, addrs(tc.ips...))) {
				t.Errorf("got %+v ok=%v", st, ok)
			}
		})
	}
}

func TestStatusPatch(t *testing.T) {
	b, err := statusPatch("uid-1", "42", serviceState{IPs: addrs("198.51.100.1", "2001:db8::1"), Pool: "a"})
	if err != nil {
		t.Fatal(err)
	}
	want := `{"metadata":{"annotations":{"metallb.io/ip-allocated-from-pool":"a"},"resourceVersion":"42","uid":"uid-1"},"status":{"loadBalancer":{"ingress":[{"ip":"198.51.100.1","ipMode":"VIP"},{"ip":"2001:db8::1","ipMode":"VIP"}]}}}`
	if string(b) != want {
		t.Errorf("patch\n got %s\nwant %s", b, want)
	}
	b, _ = statusPatch("uid-1", "", serviceState{})
	want = `{"metadata":{"annotations":{"metallb.io/ip-allocated-from-pool":null},"uid":"uid-1"},"status":{"loadBalancer":{"ingress":null}}}`
	if string(b) != want {
		t.Errorf("clearing patch\n got %s\nwant %s", b, want)
	}
}

func TestConfigurationStatus(t *testing.T) {
	t0 := metav1.NewTime(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
	t1 := metav1.NewTime(t0.Add(time.Hour))
	overlap := config.Problem{Object: config.ObjectRef{Kind: config.KindIPAddressPool, Name: "b"}, Field: "spec.addresses[0]", Message: "203.0.113.0/24 overlaps 203.0.113.128/25 of ipaddresspool \"a\""}
	pending := config.Problem{Object: config.ObjectRef{Kind: config.KindBGPPeer, Name: "p"}, Field: "spec.bfdProfile", Message: "bfdprofile \"full1\" does not exist (yet)"}

	valid := configurationStatus(v1beta1.ConfigurationStateStatus{}, config.Result{Config: &config.Config{}}, true, t0)
	if valid.Result != v1beta1.ConfigurationValid || valid.ErrorSummary != "" || !meta.IsStatusConditionTrue(valid.Conditions, configstate.ConditionValid) ||
		meta.IsStatusConditionTrue(valid.Conditions, configstate.ConditionStale) || meta.IsStatusConditionTrue(valid.Conditions, configstate.ConditionWarnings) {
		t.Errorf("valid: %+v", valid)
	}

	warned := configurationStatus(valid, config.Result{Config: &config.Config{}, Warnings: []config.Problem{pending}}, true, t1)
	if warned.Result != v1beta1.ConfigurationValid || !strings.Contains(warned.ErrorSummary, `warnings: bgppeer "p": spec.bfdProfile: bfdprofile "full1" does not exist`) ||
		!meta.IsStatusConditionTrue(warned.Conditions, configstate.ConditionWarnings) {
		t.Errorf("warned: %+v", warned)
	}
	if c := meta.FindStatusCondition(warned.Conditions, configstate.ConditionValid); !c.LastTransitionTime.Equal(&t0) {
		t.Errorf("Valid condition moved its transition time: %v", c.LastTransitionTime)
	}

	stale := configurationStatus(warned, config.Result{Errors: []config.Problem{overlap}}, true, t1)
	if stale.Result != v1beta1.ConfigurationInvalid || !strings.Contains(stale.ErrorSummary, `ipaddresspool "b": spec.addresses[0]: 203.0.113.0/24 overlaps`) ||
		!strings.Contains(stale.ErrorSummary, "keeps using the last valid configuration") {
		t.Errorf("stale: %+v", stale)
	}
	if c := meta.FindStatusCondition(stale.Conditions, configstate.ConditionStale); c == nil || c.Status != metav1.ConditionTrue || c.Reason != "LastValidConfigurationInUse" {
		t.Errorf("Stale condition %+v", c)
	}

	never := configurationStatus(v1beta1.ConfigurationStateStatus{}, config.Result{Errors: []config.Problem{overlap}}, false, t0)
	if c := meta.FindStatusCondition(never.Conditions, configstate.ConditionStale); c == nil || c.Reason != "NoValidConfiguration" || !strings.Contains(never.ErrorSummary, "no address is assigned") {
		t.Errorf("never valid: %+v", never)
	}

	// Only a BGPPeer refused (a Secret's value no webhook saw): Invalid,
	// naming it, but the configuration is current, not stale.
	badSecret := config.Problem{Object: config.ObjectRef{Kind: config.KindBGPPeer, Name: "p"}, Field: "spec.passwordSecret",
		Message: `the password in secret "pw" contains the control character '\n'`, Related: []config.ObjectRef{{Kind: config.KindSecret, Name: "pw"}}}
	peers := configurationStatus(valid, config.Result{Config: &config.Config{}, Errors: []config.Problem{badSecret}, DisabledPeers: []string{"p"}}, true, t1)
	if peers.Result != v1beta1.ConfigurationInvalid || !strings.Contains(peers.ErrorSummary, `bgppeer "p": spec.passwordSecret: the password in secret "pw"`) ||
		!strings.Contains(peers.ErrorSummary, "bgppeer p refused; every other object is in use") {
		t.Errorf("peers refused: %+v", peers)
	}
	if c := meta.FindStatusCondition(peers.Conditions, configstate.ConditionValid); c == nil || c.Status != metav1.ConditionFalse || c.Reason != "PeersRefused" {
		t.Errorf("Valid condition %+v", c)
	}
	if meta.IsStatusConditionTrue(peers.Conditions, configstate.ConditionStale) {
		t.Errorf("a refused peer made the configuration stale: %+v", peers.Conditions)
	}

	// Same input twice: same status (no write).
	again := configurationStatus(stale, config.Result{Errors: []config.Problem{overlap}}, true, metav1.NewTime(t1.Add(time.Hour)))
	if !equalStatus(again, stale) {
		t.Errorf("status changed on a no-op:\n%+v\n%+v", again, stale)
	}
}

func equalStatus(a, b v1beta1.ConfigurationStateStatus) bool {
	if a.Result != b.Result || a.ErrorSummary != b.ErrorSummary || len(a.Conditions) != len(b.Conditions) {
		return false
	}
	for i := range a.Conditions {
		x, y := a.Conditions[i], b.Conditions[i]
		if x.Type != y.Type || x.Status != y.Status || x.Reason != y.Reason || x.Message != y.Message || !x.LastTransitionTime.Equal(&y.LastTransitionTime) {
			return false
		}
	}
	return true
}

func TestPoolSize(t *testing.T) {
	cases := []struct {
		pool v1beta1.IPAddressPool
		want float64
	}{
		{pool("p", "198.51.100.0/24"), 256},
		{buggy(pool("p", "198.51.100.0/24")), 254},
		{buggy(pool("p", "198.51.100.250-198.51.101.5")), 12 - 2},
		{buggy(pool("p", "198.51.100.0/23")), 512 - 4},
		{buggy(pool("p", "2001:db8::/120")), 256},
		{pool("p", "2001:db8::/64"), math.Exp2(64)},
		{pool("p", "2001:db8::/64", "198.51.100.7/32"), math.Exp2(64) + 1},
	}
	for _, tc := range cases {
		cfg := buildConfig(t, tc.pool)
		if got := poolSize(cfg.Pools["p"]); got != tc.want {
			t.Errorf("%v avoidBuggyIPs=%v: %v, want %v", tc.pool.Spec.Addresses, tc.pool.Spec.AvoidBuggyIPs, got, tc.want)
		}
	}
}

func TestFailureMessagesSayWhatToDo(t *testing.T) {
	w := newWorld(t, pool("a", "203.0.113.0/28"))
	w.want(w.decide(svc("holder", loadBalancerIP("203.0.113.1"))), "a", "203.0.113.1")
	out := w.decide(svc("other", loadBalancerIP("203.0.113.1"), annotate(lbservice.AnnotationAllowSharedIP, "k")))
	msg := failureMessage("ns/other", out.Err)
	if !strings.Contains(msg, `Failed to allocate IP for "ns/other": 203.0.113.1 is already used by ns/holder`) ||
		!strings.Contains(msg, "same metallb.io/allow-shared-ip value") {
		t.Errorf("message: %s", msg)
	}
	if errorReason(out.Err) != "sharing_conflict" {
		t.Errorf("reason %q", errorReason(out.Err))
	}
	_, perr := parseIntent(svc("x", loadBalancerIP("203.0.113.1"), annotate(lbservice.AnnotationLoadBalancerIPs, "203.0.113.1")))
	if errorReason(perr) != "invalid_service" || hint(perr) != "" {
		t.Errorf("user error: reason %q hint %q", errorReason(perr), hint(perr))
	}
}
