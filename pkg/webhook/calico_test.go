package webhook

import (
	"context"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
)

// TestCalicoWarnings: with bgpBackend calico, what Calico cannot do is
// warned about when the object saying it is admitted, never refused; the
// other backends get no such warning.
func TestCalicoWarnings(t *testing.T) {
	prefAdv := bgpAdv("adv", "a")
	prefAdv.Spec.LocalPref = 100
	cases := []struct {
		name    string
		backend v1beta1.BGPType
		kind    kindSpec
		reqName string
		obj     any
		want    []string // substrings, one warning each
	}{
		{name: "localPref", backend: v1beta1.BGPTypeCalico, kind: bgpAdvKind, reqName: "adv", obj: prefAdv,
			want: []string{`bgpBackend calico (LocalPrefIgnored): bgpadvertisement "metallb-system/adv" spec.localPref is 100`}},
		{name: "a BGPPeer is ignored", backend: v1beta1.BGPTypeCalico, kind: peerKind, reqName: "p",
			obj:  peer("p", "192.0.2.1", func(s *v1beta2.BGPPeerSpec) {}),
			want: []string{`bgpBackend calico (BGPPeerIgnored): bgppeer "metallb-system/p" is ignored`}},
		{name: "frr: no Calico warning", backend: v1beta1.BGPTypeFRR, kind: bgpAdvKind, reqName: "adv", obj: prefAdv},
		{name: "a pool without findings", backend: v1beta1.BGPTypeCalico, kind: poolKind, reqName: "b", obj: pool("b", "198.51.100.0/24")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := newValidator(pool("a", "203.0.113.0/26"))
			v.BGPBackend = tc.backend
			resp := newHandler(tc.kind, v).Handle(context.Background(), request(t, admissionv1.Create, tc.reqName, tc.obj))
			if !resp.Allowed {
				t.Fatalf("refused: %v", resp.Result)
			}
			var calico []string
			for _, w := range resp.Warnings {
				if strings.HasPrefix(w, "bgpBackend calico") {
					calico = append(calico, w)
				}
			}
			if len(calico) != len(tc.want) {
				t.Fatalf("warnings %q, want %d Calico warning(s)", resp.Warnings, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(calico[i], w) {
					t.Errorf("warning %q lacks %q", calico[i], w)
				}
			}
		})
	}
}
