package calico_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	"github.com/projectcalico/api/pkg/lib/numorstring"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/calico"
	calicoreconciler "github.com/lbstack/lbstack/pkg/calico/reconciler"
	calicov1 "github.com/lbstack/lbstack/pkg/calicoapi/v1"
	"github.com/lbstack/lbstack/pkg/mustgather"
)

// userSpec is the scenario's BGPConfiguration as the user wrote it.
func userSpec() v3.BGPConfigurationSpec {
	return v3.BGPConfigurationSpec{
		LogSeverityScreen:     "Info",
		NodeToNodeMeshEnabled: ptr.To(true),
		ASNumber:              ptr.To(numorstring.ASNumber(65535)),
		ListenPort:            178,
	}
}

// scenarioSpec is the BGPConfiguration the calico-bgp scenario must end
// with: the user's fields, and exactly these of lbstack's.
func scenarioSpec() v3.BGPConfigurationSpec {
	s := userSpec()
	local := []string{"198.51.100.10/31", "198.51.100.12/30", "198.51.100.16/30", "198.51.100.20/32"}
	for _, c := range local {
		s.ServiceLoadBalancerIPs = append(s.ServiceLoadBalancerIPs, v3.ServiceLoadBalancerIPBlock{CIDR: c})
	}
	s.ServiceLoadBalancerIPs = append(s.ServiceLoadBalancerIPs, v3.ServiceLoadBalancerIPBlock{CIDR: "203.0.113.0/26"})
	for _, c := range local {
		s.PrefixAdvertisements = append(s.PrefixAdvertisements, v3.PrefixAdvertisement{CIDR: c, Communities: []string{"65535:120"}})
	}
	s.PrefixAdvertisements = append(s.PrefixAdvertisements,
		v3.PrefixAdvertisement{CIDR: "203.0.113.0/26", Communities: []string{"65535:120", "65535:300:100"}})
	return s
}

// TestScenario: the calico-bgp scenario as the user applies it gives
// exactly the expected BGPConfiguration, owned field by field as it should
// be, the expected finding, and no write once in step.
func TestScenario(t *testing.T) {
	s := startStack(t, true)
	for _, f := range []string{"metallb.yaml", "calico.yaml", "metallb-config.yaml", "services.yaml"} {
		s.applyScenarioFile(t, f)
	}

	want := scenarioSpec()
	var got *calicov1.BGPConfiguration
	waitFor(t, "the scenario's BGPConfiguration", func() bool {
		got = s.bgpConfiguration(t)
		return equality.Semantic.DeepEqual(got.Spec, want)
	}, func() string { return toJSON(got.Spec) + "\nwant " + toJSON(want) })

	// lbstack's manager owns its two fields and nothing else; the user's
	// manager keeps its own.
	owned := map[string][]string{}
	for _, e := range got.ManagedFields {
		var set map[string]map[string]json.RawMessage
		if err := json.Unmarshal(e.FieldsV1.Raw, &set); err != nil {
			t.Fatal(err)
		}
		delete(set["f:spec"], ".") // the map itself, for Update entries
		owned[e.Manager] = slices.Sorted(maps.Keys(set["f:spec"]))
	}
	if g := owned[calicoreconciler.FieldManager]; !slices.Equal(g, []string{"f:prefixAdvertisements", "f:serviceLoadBalancerIPs"}) {
		t.Errorf("%s owns %v, want spec.prefixAdvertisements and spec.serviceLoadBalancerIPs only (all: %v)", calicoreconciler.FieldManager, g, owned)
	}
	if g := owned["kubectl-create"]; !slices.Equal(g, []string{"f:asNumber", "f:listenPort", "f:logSeverityScreen", "f:nodeToNodeMeshEnabled"}) {
		t.Errorf("the user's manager owns %v (all: %v)", g, owned)
	}

	// The Services get their addresses from their pools.
	wantAddr := map[string]func(string) bool{
		"web-cluster": func(ip string) bool { return strings.HasPrefix(ip, "203.0.113.") },
		"web-local":   func(ip string) bool { return inLocalPool(ip) },
		"dns":         func(ip string) bool { return ip == "198.51.100.20" },
	}
	for name, ok := range wantAddr {
		waitFor(t, "address of "+name, func() bool { return ok(s.ingress(t, name)) }, func() string { return s.ingress(t, name) })
	}

	// web-local (externalTrafficPolicy Local) is the one finding: a warning.
	cond := s.waitCondition(t, "CalicoConsistent NoErrors", func(c *metav1.Condition) bool {
		return c != nil && c.Reason == calicoreconciler.ReasonNoErrors
	})
	if cond.Status != metav1.ConditionTrue || !strings.Contains(cond.Message, "1 warning(s): "+calico.CheckServiceLocalHostRoutes) {
		t.Errorf("condition %s", toJSON(cond))
	}
	waitFor(t, "the ServiceLocalHostRoutes event", func() bool {
		return len(s.events(t)[calico.CheckServiceLocalHostRoutes]) == 1
	}, func() string { return toJSON(s.events(t)) })
	ev := s.events(t)[calico.CheckServiceLocalHostRoutes][0]
	for _, w := range []string{`service "calico-apps/web-local"`, `ipaddresspool "metallb-system/calico-local"`,
		`bgpconfiguration.crd.projectcalico.org "default"`, "spec.externalTrafficPolicy"} {
		if !strings.Contains(ev, w) {
			t.Errorf("event lacks %q: %s", w, ev)
		}
	}
	if len(s.events(t)) != 1 {
		t.Errorf("events on the MetalLB object: %s, want the one warning", toJSON(s.events(t)))
	}

	// In step: reconciling again writes nothing, not even status.
	time.Sleep(500 * time.Millisecond) // let the watch events of the last writes settle
	before := s.writes.count()
	for range 3 {
		s.reconcile(t)
	}
	if w := s.writes.since(before); len(w) > 0 {
		t.Errorf("reconciles in the steady state wrote: %v", w)
	}

	// must-gather collects Calico's objects, who owns what, and runs the
	// checks the operator runs.
	dest := t.TempDir()
	// Nothing runs in this cluster (no kubelet, no speaker): only the
	// collection of pods and speakers can fail, never Calico's part.
	_, _ = mustgather.Run(context.Background(), s.env.Config, mustgather.Options{DestDir: dest})
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(dest, rel))
		if err != nil {
			t.Errorf("must-gather: %v", err)
		}
		return string(b)
	}
	if f := read("calico/findings.txt"); !strings.Contains(f, "Warning "+calico.CheckServiceLocalHostRoutes+" spec.externalTrafficPolicy: "+`service "calico-apps/web-local"`) {
		t.Errorf("calico/findings.txt:\n%s", f)
	}
	if o := read("calico/ownership.txt"); !strings.Contains(o, "lbstack-calico (Apply): spec.prefixAdvertisements, spec.serviceLoadBalancerIPs\n") ||
		!strings.Contains(o, "kubectl-create (Update): spec.asNumber, spec.listenPort, spec.logSeverityScreen, spec.nodeToNodeMeshEnabled\n") {
		t.Errorf("calico/ownership.txt:\n%s", o)
	}
	for _, f := range []string{"calico/bgpconfigurations.crd.projectcalico.org.yaml", "calico/bgppeers.crd.projectcalico.org.yaml"} {
		if !strings.Contains(read(f), "198.51.100.") && !strings.Contains(read(f), "tor-router") {
			t.Errorf("%s lacks the scenario's objects", f)
		}
	}
	if sum := read("summary.txt"); !strings.Contains(sum, "== Calico announcement mode") || !strings.Contains(sum, calico.CheckServiceLocalHostRoutes) {
		t.Errorf("summary.txt has no Calico section:\n%s", sum)
	}
	if errs := read("errors.txt"); strings.Contains(errs, "calico") {
		t.Errorf("errors.txt: %s", errs)
	}
}

func inLocalPool(ip string) bool {
	a, err := netip.ParseAddr(ip)
	return err == nil && a.Compare(netip.MustParseAddr("198.51.100.10")) >= 0 && a.Compare(netip.MustParseAddr("198.51.100.20")) <= 0
}

// TestMigration: frr → calico → frr keeps every Service's address; lbstack's
// entries come with the mode and go with it, the user's fields stay.
func TestMigration(t *testing.T) {
	s := startStack(t, true)
	ctx := context.Background()
	for _, f := range []string{"metallb.yaml", "calico.yaml", "metallb-config.yaml", "services.yaml"} {
		s.applyScenarioFile(t, f)
		if f == "metallb.yaml" {
			s.setBackend(t, v1beta1.BGPTypeFRR) // the cluster ran lbstack with FRR first
		}
	}
	names := []string{"web-cluster", "web-local", "dns"}
	addrs := map[string]string{}
	for _, n := range names {
		waitFor(t, "address of "+n, func() bool { addrs[n] = s.ingress(t, n); return addrs[n] != "" }, func() string { return "" })
	}
	keep := func(stage string) {
		t.Helper()
		for _, n := range names {
			if got := s.ingress(t, n); got != addrs[n] {
				t.Errorf("%s: Service %s has %q, had %q", stage, n, got, addrs[n])
			}
		}
	}
	// With frr, lbstack writes nothing into Calico's configuration.
	time.Sleep(time.Second)
	if got := s.bgpConfiguration(t).Spec; !equality.Semantic.DeepEqual(got, userSpec()) {
		t.Errorf("bgpBackend frr: BGPConfiguration %s, want the user's alone", toJSON(got))
	}

	s.setBackend(t, v1beta1.BGPTypeCalico)
	waitFor(t, "lbstack's entries", func() bool {
		return equality.Semantic.DeepEqual(s.bgpConfiguration(t).Spec, scenarioSpec())
	}, func() string { return toJSON(s.bgpConfiguration(t).Spec) })
	// The assigner re-reads the configuration with the new backend.
	time.Sleep(2 * time.Second)
	keep("after frr → calico")

	// A Service created in calico mode gets an address as well.
	late := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: appNS, Name: "late", Annotations: map[string]string{"metallb.io/address-pool": "calico-cluster"}},
		Spec:       corev1.ServiceSpec{Type: corev1.ServiceTypeLoadBalancer, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}},
	}
	if err := s.c.Create(ctx, late); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "address of late", func() bool { return strings.HasPrefix(s.ingress(t, "late"), "203.0.113.") }, func() string { return s.ingress(t, "late") })
	names, addrs["late"] = append(names, "late"), s.ingress(t, "late")

	s.setBackend(t, v1beta1.BGPTypeFRR)
	waitFor(t, "lbstack's entries gone", func() bool {
		return equality.Semantic.DeepEqual(s.bgpConfiguration(t).Spec, userSpec())
	}, func() string { return toJSON(s.bgpConfiguration(t).Spec) })
	s.waitCondition(t, "no CalicoConsistent condition with bgpBackend frr", func(c *metav1.Condition) bool { return c == nil })
	time.Sleep(2 * time.Second)
	keep("after calico → frr")
	for _, e := range s.bgpConfiguration(t).ManagedFields {
		if e.Manager == calicoreconciler.FieldManager && strings.Contains(string(e.FieldsV1.Raw), "f:spec") {
			t.Errorf("lbstack still owns %s", e.FieldsV1.Raw)
		}
	}
}

// TestNeverOverwrites: a value another manager owns is never overwritten;
// the conflict is reported with the field and what to do, and once the
// other manager's value is gone lbstack writes its own.
func TestNeverOverwrites(t *testing.T) {
	s := startStack(t, false)
	ctx := context.Background()
	s.applyScenarioFile(t, "metallb.yaml")
	s.applyScenarioFile(t, "metallb-config.yaml")
	s.applyScenarioFile(t, "calico.yaml")
	waitFor(t, "lbstack's entries", func() bool {
		return equality.Semantic.DeepEqual(s.bgpConfiguration(t).Spec, scenarioSpec())
	}, func() string { return toJSON(s.bgpConfiguration(t).Spec) })

	// An administrator takes serviceLoadBalancerIPs over with kubectl
	// apply --force-conflicts (their own list), which SSA allows them.
	theirs := []v3.ServiceLoadBalancerIPBlock{{CIDR: "203.0.113.0/24"}}
	admin := &calicov1.BGPConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: calicov1.GroupVersion.String(), Kind: "BGPConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: calicov1.DefaultBGPConfigurationName},
		Spec:       v3.BGPConfigurationSpec{ServiceLoadBalancerIPs: theirs},
	}
	if err := s.c.Patch(ctx, admin, client.Apply, client.FieldOwner("network-admin"), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}
	cond := s.waitCondition(t, "CalicoConsistent Conflict", func(c *metav1.Condition) bool {
		return c != nil && c.Reason == calicoreconciler.ReasonConflict
	})
	for _, w := range []string{`bgpconfiguration.crd.projectcalico.org "default" spec.serviceLoadBalancerIPs`, "network-admin",
		"never overwrites", `"path":"/spec/serviceLoadBalancerIPs"`, "203.0.113.0/26"} {
		if !strings.Contains(cond.Message, w) {
			t.Errorf("conflict condition lacks %q: %s", w, cond.Message)
		}
	}
	if cond.Status != metav1.ConditionFalse {
		t.Errorf("conflict condition %s", toJSON(cond))
	}
	waitFor(t, "the conflict event", func() bool { return len(s.events(t)[calicoreconciler.ReasonConflictEventType]) > 0 },
		func() string { return toJSON(s.events(t)) })
	// The checks see the administrator's entry, too.
	waitFor(t, "the ServiceLoadBalancerIPBeyondPools event", func() bool { return len(s.events(t)[calico.CheckLoadBalancerIPBeyondPools]) > 0 },
		func() string { return toJSON(s.events(t)) })

	// Reconciling again does not overwrite it either.
	s.reconcile(t)
	time.Sleep(time.Second)
	if got := s.bgpConfiguration(t).Spec.ServiceLoadBalancerIPs; !equality.Semantic.DeepEqual(got, theirs) {
		t.Fatalf("the administrator's serviceLoadBalancerIPs became %s", toJSON(got))
	}
	// The steady state of a conflict makes no request at all.
	before := s.writes.count()
	s.reconcile(t)
	s.reconcile(t)
	if w := s.writes.since(before); len(w) > 0 {
		t.Errorf("reconciles during a known conflict wrote: %v", w)
	}

	// The administrator follows the condition's advice: the field goes,
	// and lbstack writes its own.
	rm := client.RawPatch("application/json-patch+json", []byte(`[{"op":"remove","path":"/spec/serviceLoadBalancerIPs"}]`))
	if err := s.c.Patch(ctx, &calicov1.BGPConfiguration{ObjectMeta: metav1.ObjectMeta{Name: calicov1.DefaultBGPConfigurationName}}, rm); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "lbstack's entries after the conflict", func() bool {
		return equality.Semantic.DeepEqual(s.bgpConfiguration(t).Spec, scenarioSpec())
	}, func() string { return toJSON(s.bgpConfiguration(t).Spec) })
	s.waitCondition(t, "CalicoConsistent without conflict", func(c *metav1.Condition) bool {
		return c != nil && c.Reason != calicoreconciler.ReasonConflict
	})

	// prefixAdvertisements are often the administrator's too (communities
	// for the pod network): lbstack then still writes the
	// serviceLoadBalancerIPs, and reports the communities it cannot.
	theirPrefixes := []v3.PrefixAdvertisement{{CIDR: "10.244.0.0/16", Communities: []string{"65535:1"}}}
	admin = &calicov1.BGPConfiguration{
		TypeMeta:   metav1.TypeMeta{APIVersion: calicov1.GroupVersion.String(), Kind: "BGPConfiguration"},
		ObjectMeta: metav1.ObjectMeta{Name: calicov1.DefaultBGPConfigurationName},
		Spec:       v3.BGPConfigurationSpec{PrefixAdvertisements: theirPrefixes},
	}
	if err := s.c.Patch(ctx, admin, client.Apply, client.FieldOwner("network-admin"), client.ForceOwnership); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Create(ctx, &v1beta1.IPAddressPool{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "extra"},
		Spec: v1beta1.IPAddressPoolSpec{Addresses: []string{"192.0.2.0/28"}}}); err != nil {
		t.Fatal(err)
	}
	if err := s.c.Create(ctx, &v1beta1.BGPAdvertisement{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "extra"},
		Spec: v1beta1.BGPAdvertisementSpec{IPAddressPools: []string{"extra"}, Communities: []string{"65535:7"}}}); err != nil {
		t.Fatal(err)
	}
	wantIPs := append([]v3.ServiceLoadBalancerIPBlock{{CIDR: "192.0.2.0/28"}}, scenarioSpec().ServiceLoadBalancerIPs...)
	waitFor(t, "lbstack's serviceLoadBalancerIPs beside the administrator's prefixAdvertisements", func() bool {
		got := s.bgpConfiguration(t).Spec
		return equality.Semantic.DeepEqual(got.ServiceLoadBalancerIPs, wantIPs) && equality.Semantic.DeepEqual(got.PrefixAdvertisements, theirPrefixes)
	}, func() string { return toJSON(s.bgpConfiguration(t).Spec) })
	cond = s.waitCondition(t, "CalicoConsistent Conflict on prefixAdvertisements", func(c *metav1.Condition) bool {
		return c != nil && c.Reason == calicoreconciler.ReasonConflict && strings.Contains(c.Message, "spec.prefixAdvertisements")
	})
	if !strings.Contains(cond.Message, "do not carry the BGPAdvertisements' communities") {
		t.Errorf("condition %s", cond.Message)
	}
	time.Sleep(time.Second)
	before = s.writes.count()
	s.reconcile(t)
	if w := s.writes.since(before); len(w) > 0 {
		t.Errorf("reconciles during a known partial conflict wrote: %v", w)
	}
	if got := s.bgpConfiguration(t).Spec.PrefixAdvertisements; !equality.Semantic.DeepEqual(got, theirPrefixes) {
		t.Errorf("the administrator's prefixAdvertisements became %s", toJSON(got))
	}
}
