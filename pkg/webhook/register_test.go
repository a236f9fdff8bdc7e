package webhook

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
)

// TestRegisterServesEveryPath sends AdmissionReviews through the server's
// mux, as the API server does: each path reaches the handler of its kind.
func TestRegisterServesEveryPath(t *testing.T) {
	v := newValidator(pool("a", "203.0.113.0/25"), bfd("fast", 3),
		peer("p", "192.0.2.1", func(s *v1beta2.BGPPeerSpec) { s.BFDProfile = "fast" }))
	srv := crwebhook.NewServer(crwebhook.Options{})
	v.Register(srv)
	mux := srv.WebhookMux()

	cases := []struct {
		name, path  string
		op          admissionv1.Operation
		reqName     string
		obj         any
		wantAllowed bool
		wantMessage string
	}{
		{"pool overlapping another", IPAddressPoolPath, admissionv1.Create, "b", pool("b", "203.0.113.1/32"), false,
			`ipaddresspool "b": spec.addresses[0]: 203.0.113.1/32 overlaps 203.0.113.0/25 of ipaddresspool "a"`},
		{"peer at v1beta2", BGPPeerPath, admissionv1.Create, "q", peer("q", "192.0.2.2", nil), true, ""},
		{"bgp advertisement", BGPAdvertisementPath, admissionv1.Create, "adv", bgpAdv("adv", "a"), true, ""},
		{"l2 advertisement", L2AdvertisementPath, admissionv1.Create, "l2", l2Adv("l2", "a"), true, ""},
		{"bfd profile in use cannot be deleted", BFDProfilePath, admissionv1.Delete, "fast", bfd("fast", 3), false,
			`bfdprofile "fast": cannot be deleted while bgppeer "p" uses it (spec.bfdProfile); change or delete that peer first`},
		{"community", CommunityPath, admissionv1.Create, "c", community("c", v1beta1.CommunityAlias{Name: "x", Value: "1:2"}), true, ""},
		{"metallb in another namespace", MetalLBPath, admissionv1.Create, "metallb", metallb("default", "metallb", nil), false,
			`metallb default/metallb: metadata.namespace: the MetalLB object must be created in the operator's namespace "metallb-system"`},
		{"symmetric routing", SymmetricRoutingPath, admissionv1.Create, "edge", validSymmetricRouting("edge"), true, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := request(t, tc.op, tc.reqName, tc.obj)
			req.UID = types.UID("uid-" + tc.reqName)
			review := admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: &req.AdmissionRequest}
			body, err := json.Marshal(review)
			if err != nil {
				t.Fatal(err)
			}
			rec := httptest.NewRecorder()
			hr := httptest.NewRequest(http.MethodPost, tc.path, bytes.NewReader(body))
			hr.Header.Set("Content-Type", "application/json")
			mux.ServeHTTP(rec, hr)
			if rec.Code != http.StatusOK {
				t.Fatalf("HTTP %d: %s", rec.Code, rec.Body)
			}
			var out admissionv1.AdmissionReview
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatal(err)
			}
			if out.Response == nil || out.Response.UID != req.UID {
				t.Fatalf("response %+v does not answer request %s", out.Response, req.UID)
			}
			msg := ""
			if out.Response.Result != nil {
				msg = out.Response.Result.Message
			}
			if out.Response.Allowed != tc.wantAllowed || msg != tc.wantMessage {
				t.Errorf("allowed %t %q, want %t %q", out.Response.Allowed, msg, tc.wantAllowed, tc.wantMessage)
			}
		})
	}
	t.Run("the conversion webhook converts a v1beta1 BGPPeer to v1beta2", func(t *testing.T) {
		in := `{"apiVersion":"metallb.io/v1beta1","kind":"BGPPeer","metadata":{"name":"p","namespace":"metallb-system"},` +
			`"spec":{"myASN":64512,"peerASN":64513,"peerAddress":"192.0.2.1"}}`
		review := `{"apiVersion":"apiextensions.k8s.io/v1","kind":"ConversionReview","request":{"uid":"c1","desiredAPIVersion":"metallb.io/v1beta2","objects":[` + in + `]}}`
		rec := httptest.NewRecorder()
		hr := httptest.NewRequest(http.MethodPost, ConvertPath, bytes.NewReader([]byte(review)))
		hr.Header.Set("Content-Type", "application/json")
		mux.ServeHTTP(rec, hr)
		var out struct {
			Response struct {
				UID    string `json:"uid"`
				Result struct {
					Status string `json:"status"`
				} `json:"result"`
				Objects []struct {
					APIVersion string `json:"apiVersion"`
					Spec       struct {
						Address string `json:"peerAddress"`
					} `json:"spec"`
				} `json:"convertedObjects"`
			} `json:"response"`
		}
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("HTTP %d %s: %v", rec.Code, rec.Body, err)
		}
		r := out.Response
		if r.UID != "c1" || r.Result.Status != "Success" || len(r.Objects) != 1 || r.Objects[0].APIVersion != "metallb.io/v1beta2" || r.Objects[0].Spec.Address != "192.0.2.1" {
			t.Errorf("conversion response %s", rec.Body)
		}
	})
}
