package webhook

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	v1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/config"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
	"github.com/lbstack/lbstack/pkg/symrouting"
	"github.com/lbstack/lbstack/pkg/symrouting/generate"
	"github.com/lbstack/lbstack/pkg/symrouting/load"
)

// +kubebuilder:webhook:path=/validate-lbstack-io-v1alpha1-symmetricrouting,mutating=false,failurePolicy=fail,sideEffects=None,groups=lbstack.io,resources=symmetricroutings,verbs=create;update,versions=v1alpha1,name=symmetricroutingvalidationwebhook.lbstack.io,admissionReviewVersions=v1

// SymmetricRoutingPath is the SymmetricRouting validating webhook's path.
const SymmetricRoutingPath = "/validate-lbstack-io-v1alpha1-symmetricrouting"

// symmetricRoutingHandler refuses a SymmetricRouting the generator would
// refuse (generate.Validate), naming every bad field, so a bad declaration
// never reaches the cluster.
type symmetricRoutingHandler struct{ decoder admission.Decoder }

func (h *symmetricRoutingHandler) Handle(_ context.Context, req admission.Request) admission.Response {
	var sr v1alpha1.SymmetricRouting
	if err := h.decoder.Decode(req, &sr); err != nil {
		return admission.Errored(http.StatusBadRequest, fmt.Errorf("symmetricrouting %q: %w", req.Name, err))
	}
	if sr.DeletionTimestamp != nil {
		return admission.Allowed("")
	}
	if errs := generate.Validate(&sr); len(errs) > 0 {
		msgs := make([]string, len(errs))
		for i, e := range errs {
			msgs[i] = e.Error()
		}
		return admission.Denied(fmt.Sprintf("symmetricrouting %q: %s", sr.Name, strings.Join(msgs, "; ")))
	}
	return admission.Allowed("")
}

// symmetricWarnings runs the symmetric-routing checks (pkg/symrouting)
// with obj, a BGPPeer, BGPAdvertisement or IPAddressPool under admission,
// in place, and returns the findings that name obj as admission warnings:
// a VRF peer whose VRF no NMState policy defines, an advertisement that
// does not select the egress node, ... are said at `kubectl apply` time,
// not only later in events. The checks never refuse: the objects of one
// scenario arrive in any order. Nothing is returned when the cluster's
// objects cannot be read (the operator's events still report). res is the
// configuration with obj in place: when it has no VRF peer and the cluster
// no EgressService, nothing is subject to the checks and the cluster's
// Services and Nodes are not listed.
func (v *Validator) symmetricWarnings(ctx context.Context, obj client.Object, res config.Resources) []string {
	if v.Mapper == nil {
		return nil
	}
	var ref symrouting.ObjectRef
	switch o := obj.(type) {
	case *v1beta2.BGPPeer:
		ref = symrouting.ObjectRef{Kind: symrouting.KindBGPPeer, Namespace: o.Namespace, Name: o.Name}
	case *v1beta1.BGPAdvertisement:
		ref = symrouting.ObjectRef{Kind: symrouting.KindAdvertisement, Namespace: o.Namespace, Name: o.Name}
	case *v1beta1.IPAddressPool:
		ref = symrouting.ObjectRef{Kind: symrouting.KindPool, Namespace: o.Namespace, Name: o.Name}
	default:
		return nil
	}
	log := logf.FromContext(ctx)
	apis, err := v.detectAPIs()
	if err != nil && !meta.IsNoMatchError(err) {
		log.V(1).Info("symmetric routing checks skipped: discovery", "error", err.Error())
		return nil
	}
	if !hasVRFPeer(res.Peers) && !(apis.OVN && v.anyEgressService(ctx)) {
		return nil
	}
	st, err := load.Load(ctx, v.Reader, v.Namespace, apis)
	if err != nil {
		log.V(1).Info("symmetric routing checks skipped", "error", err.Error())
		return nil
	}
	in := &st.Inputs
	switch o := obj.(type) {
	case *v1beta2.BGPPeer:
		in.Peers = replace(in.Peers, *o, func(p v1beta2.BGPPeer) string { return p.Name })
	case *v1beta1.BGPAdvertisement:
		in.Advertisements = replace(in.Advertisements, *o, func(a v1beta1.BGPAdvertisement) string { return a.Name })
	case *v1beta1.IPAddressPool:
		in.Pools = replace(in.Pools, *o, func(p v1beta1.IPAddressPool) string { return p.Name })
	}
	var out []string
	for _, f := range symrouting.Check(*in) {
		if f.Severity == symrouting.Unknown {
			continue
		}
		for _, r := range f.Objects {
			if r == ref {
				out = append(out, fmt.Sprintf("symmetric routing (%s): %s", f.Check, f.Message))
				break
			}
		}
	}
	return out
}

func hasVRFPeer(peers []v1beta2.BGPPeer) bool {
	for i := range peers {
		if peers[i].Spec.VRFName != "" {
			return true
		}
	}
	return false
}

// anyEgressService reports whether one EgressService exists (or whether
// that cannot be told: the checks then run and say what they can).
func (v *Validator) anyEgressService(ctx context.Context) bool {
	var l ovnv1.EgressServiceList
	if err := v.Reader.List(ctx, &l, client.Limit(1)); err != nil {
		return true
	}
	return len(l.Items) > 0
}

// apisTTL is how long the webhook trusts what it found out about the
// optional APIs. A RESTMapper asked for a group it does not know fetches
// the API server's discovery again, every time: four such questions per
// request cost more CPU than the admission itself (issue 21). A CRD
// installed meanwhile is seen within this time; it only adds warnings.
const apisTTL = time.Minute

// detectAPIs returns load.Detect's answer, asked at most once per apisTTL
// (errors are not remembered).
func (v *Validator) detectAPIs() (load.APIs, error) {
	v.apisMu.Lock()
	defer v.apisMu.Unlock()
	if !v.apisAt.IsZero() && time.Since(v.apisAt) < apisTTL {
		return v.apis, nil
	}
	apis, err := load.Detect(v.Mapper)
	if err == nil {
		v.apis, v.apisAt = apis, time.Now()
	}
	return apis, err
}
