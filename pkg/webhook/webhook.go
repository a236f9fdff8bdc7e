// Package webhook serves lbstack's admission and conversion webhooks over
// TLS. The handlers call pkg/config for every rule; nothing is validated
// here that is not validated there.
package webhook

import (
	"k8s.io/apimachinery/pkg/runtime"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/conversion"
)

// ConvertPath is where the CRD conversion webhook is served; the BGPPeer
// CRD's spec.conversion points there.
const ConvertPath = "/convert"

// AddConversion registers the conversion webhook, which converts BGPPeer
// objects between v1beta1 and the v1beta2 hub with the Go conversion
// functions of api/v1beta1.
func AddConversion(srv crwebhook.Server, s *runtime.Scheme) {
	srv.Register(ConvertPath, conversion.NewWebhookHandler(s))
}
