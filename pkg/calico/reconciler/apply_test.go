package reconciler

import (
	"errors"
	"strings"
	"testing"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/lbstack/lbstack/pkg/calico"
)

func entry(manager string, op metav1.ManagedFieldsOperationType, fields string) metav1.ManagedFieldsEntry {
	return metav1.ManagedFieldsEntry{Manager: manager, Operation: op, FieldsV1: &metav1.FieldsV1{Raw: []byte(fields)}}
}

func TestOwnedFields(t *testing.T) {
	both := `{"f:spec":{"f:serviceLoadBalancerIPs":{},"f:prefixAdvertisements":{}}}`
	for _, tc := range []struct {
		name    string
		entries []metav1.ManagedFieldsEntry
		want    string
	}{
		{name: "none"},
		{name: "lbstack's apply entry", entries: []metav1.ManagedFieldsEntry{entry(FieldManager, metav1.ManagedFieldsOperationApply, both)},
			want: "prefixAdvertisements,serviceLoadBalancerIPs"},
		{name: "another manager's entry is not lbstack's", entries: []metav1.ManagedFieldsEntry{entry("calico-admin", metav1.ManagedFieldsOperationApply, both)}},
		{name: "an Update by lbstack's name is not its apply", entries: []metav1.ManagedFieldsEntry{entry(FieldManager, metav1.ManagedFieldsOperationUpdate, both)}},
		{name: "one field, metadata beside", entries: []metav1.ManagedFieldsEntry{entry(FieldManager, metav1.ManagedFieldsOperationApply,
			`{"f:metadata":{"f:labels":{".":{}}},"f:spec":{"f:serviceLoadBalancerIPs":{}}}`)}, want: "serviceLoadBalancerIPs"},
		{name: "other spec fields are not lbstack's", entries: []metav1.ManagedFieldsEntry{entry(FieldManager, metav1.ManagedFieldsOperationApply,
			`{"f:spec":{"f:asNumber":{}}}`)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := OwnedFields(tc.entries)
			if err != nil {
				t.Fatal(err)
			}
			var names []string
			for _, f := range []string{fieldPrefixes, fieldLBIPs} {
				if got[f] {
					names = append(names, f)
				}
			}
			if s := strings.Join(names, ","); s != tc.want {
				t.Errorf("owned %q, want %q", s, tc.want)
			}
		})
	}
	if _, err := OwnedFields([]metav1.ManagedFieldsEntry{entry(FieldManager, metav1.ManagedFieldsOperationApply, `[`)}); err == nil {
		t.Error("a broken entry is not an error")
	}
}

func TestApplyBody(t *testing.T) {
	want := v3.BGPConfigurationSpec{
		ServiceLoadBalancerIPs: []v3.ServiceLoadBalancerIPBlock{{CIDR: "203.0.113.0/26"}},
		PrefixAdvertisements:   []v3.PrefixAdvertisement{{CIDR: "203.0.113.0/26", Communities: []string{"65535:120"}}},
	}
	u, key, err := applyBody(want)
	if err != nil {
		t.Fatal(err)
	}
	// Only lbstack's fields: nothing of the spec's other fields, zero or not.
	if key != `{"apiVersion":"crd.projectcalico.org/v1","kind":"BGPConfiguration","metadata":{"name":"default"},"spec":{"prefixAdvertisements":[{"cidr":"203.0.113.0/26","communities":["65535:120"]}],"serviceLoadBalancerIPs":[{"cidr":"203.0.113.0/26"}]}}` {
		t.Errorf("apply body %s", key)
	}
	if u.GetName() != "default" {
		t.Errorf("name %q", u.GetName())
	}
	_, key, err = applyBody(v3.BGPConfigurationSpec{})
	if err != nil {
		t.Fatal(err)
	}
	if key != `{"apiVersion":"crd.projectcalico.org/v1","kind":"BGPConfiguration","metadata":{"name":"default"}}` {
		t.Errorf("empty apply body %s (gives lbstack's fields up)", key)
	}
}

func TestSameFields(t *testing.T) {
	blocks := []v3.ServiceLoadBalancerIPBlock{{CIDR: "203.0.113.0/26"}}
	if !sameFields(v3.BGPConfigurationSpec{ServiceLoadBalancerIPs: blocks}, v3.BGPConfigurationSpec{}) {
		t.Error("nothing wanted: any live value is the same")
	}
	if sameFields(v3.BGPConfigurationSpec{}, v3.BGPConfigurationSpec{ServiceLoadBalancerIPs: blocks}) {
		t.Error("a wanted list missing is the same")
	}
}

func TestConflictMessage(t *testing.T) {
	err := apierrors.NewApplyConflict([]metav1.StatusCause{{
		Type: metav1.CauseTypeFieldManagerConflict, Message: `conflict with "network-admin" using crd.projectcalico.org/v1`, Field: ".spec.serviceLoadBalancerIPs",
	}}, "Apply failed with 1 conflict")
	fields := conflictingFields(err)
	if len(fields) != 1 || !strings.Contains(fields["spec.serviceLoadBalancerIPs"], "network-admin") {
		t.Fatalf("fields %v", fields)
	}
	msg := conflictMessage(fields, v3.BGPConfigurationSpec{ServiceLoadBalancerIPs: []v3.ServiceLoadBalancerIPBlock{{CIDR: "203.0.113.0/26"}}})
	for _, w := range []string{`bgpconfiguration.crd.projectcalico.org "default" spec.serviceLoadBalancerIPs`, `"network-admin"`,
		`never overwrites`, `"path":"/spec/serviceLoadBalancerIPs"`, "203.0.113.0/26"} {
		if !strings.Contains(msg, w) {
			t.Errorf("message lacks %q:\n%s", w, msg)
		}
	}
	prefixesOnly := conflictMessage(map[string]string{"spec.prefixAdvertisements": `conflict with "network-admin"`}, v3.BGPConfigurationSpec{})
	if !strings.Contains(prefixesOnly, "do not carry the BGPAdvertisements' communities") || !strings.Contains(prefixesOnly, `"path":"/spec/prefixAdvertisements"`) {
		t.Errorf("prefixAdvertisements conflict message: %s", prefixesOnly)
	}
	if conflictingFields(errors.New("x")) != nil || len(conflictingFields(apierrors.NewConflict(schema.GroupResource{}, "default", errors.New("rv")))) != 0 {
		t.Error("an optimistic-lock conflict is not a field conflict")
	}
}

func TestConsistentCondition(t *testing.T) {
	f := func(sev calico.Severity, check string) calico.Finding {
		return calico.Finding{Check: check, Severity: sev, Message: check + " message"}
	}
	for _, tc := range []struct {
		name     string
		findings []calico.Finding
		status   metav1.ConditionStatus
		reason   string
		words    []string
	}{
		{name: "none", status: metav1.ConditionTrue, reason: ReasonConsistent},
		{name: "warnings", findings: []calico.Finding{f(calico.Warning, "A")}, status: metav1.ConditionTrue, reason: ReasonNoErrors, words: []string{"1 warning(s): A: A message"}},
		{name: "errors first", findings: []calico.Finding{f(calico.Warning, "A"), f(calico.Error, "B"), f(calico.Error, "C"), f(calico.Error, "D"), f(calico.Error, "E")},
			status: metav1.ConditionFalse, reason: ReasonInconsistent, words: []string{"4 error(s): B: B message", "(and 1 more)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := consistentCondition(tc.findings)
			if c.Status != tc.status || c.Reason != tc.reason {
				t.Errorf("condition %s/%s, want %s/%s", c.Status, c.Reason, tc.status, tc.reason)
			}
			for _, w := range tc.words {
				if !strings.Contains(c.Message, w) {
					t.Errorf("message lacks %q: %s", w, c.Message)
				}
			}
		})
	}
}

func TestDetectAPIs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		served []schema.GroupVersionKind
		want   APIs
	}{
		{name: "no Calico"},
		{name: "CRDs", served: []schema.GroupVersionKind{gvkV1Config, gvkV1Peer}, want: APIs{CRDs: true}},
		{name: "CRDs and the API server", served: []schema.GroupVersionKind{gvkV1Config, gvkV1Peer, gvkV3Config, gvkV3Peer}, want: APIs{CRDs: true, V3: true}},
		{name: "half of the CRDs is none", served: []schema.GroupVersionKind{gvkV1Config}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := meta.NewDefaultRESTMapper(nil)
			for _, gvk := range tc.served {
				m.Add(gvk, meta.RESTScopeRoot)
			}
			got, err := DetectAPIs(m)
			if err != nil || got != tc.want {
				t.Errorf("DetectAPIs = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
