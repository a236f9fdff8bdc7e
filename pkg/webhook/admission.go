package webhook

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	crwebhook "sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/configload"
	"github.com/lbstack/lbstack/pkg/symrouting/load"
)

// The validating webhooks. The names are what kubectl prints
// ("admission webhook "ipaddresspoolvalidationwebhook.metallb.io" denied the
// request: ..."), so they follow MetalLB's.
//
// BGPPeer is validated at v1beta2 only: with the default matchPolicy
// (Equivalent) the API server converts a v1beta1 request to v1beta2 first.
//
// +kubebuilder:webhook:path=/validate-metallb-io-v1beta1-ipaddresspool,mutating=false,failurePolicy=fail,sideEffects=None,groups=metallb.io,resources=ipaddresspools,verbs=create;update,versions=v1beta1,name=ipaddresspoolvalidationwebhook.metallb.io,admissionReviewVersions=v1
// +kubebuilder:webhook:path=/validate-metallb-io-v1beta2-bgppeer,mutating=false,failurePolicy=fail,sideEffects=None,groups=metallb.io,resources=bgppeers,verbs=create;update,versions=v1beta2,name=bgppeervalidationwebhook.metallb.io,admissionReviewVersions=v1
// +kubebuilder:webhook:path=/validate-metallb-io-v1beta1-bgpadvertisement,mutating=false,failurePolicy=fail,sideEffects=None,groups=metallb.io,resources=bgpadvertisements,verbs=create;update,versions=v1beta1,name=bgpadvertisementvalidationwebhook.metallb.io,admissionReviewVersions=v1
// +kubebuilder:webhook:path=/validate-metallb-io-v1beta1-l2advertisement,mutating=false,failurePolicy=fail,sideEffects=None,groups=metallb.io,resources=l2advertisements,verbs=create;update,versions=v1beta1,name=l2advertisementvalidationwebhook.metallb.io,admissionReviewVersions=v1
// +kubebuilder:webhook:path=/validate-metallb-io-v1beta1-bfdprofile,mutating=false,failurePolicy=fail,sideEffects=None,groups=metallb.io,resources=bfdprofiles,verbs=create;update;delete,versions=v1beta1,name=bfdprofilevalidationwebhook.metallb.io,admissionReviewVersions=v1
// +kubebuilder:webhook:path=/validate-metallb-io-v1beta1-community,mutating=false,failurePolicy=fail,sideEffects=None,groups=metallb.io,resources=communities,verbs=create;update,versions=v1beta1,name=communityvalidationwebhook.metallb.io,admissionReviewVersions=v1
// +kubebuilder:webhook:path=/validate-metallb-io-v1beta1-metallb,mutating=false,failurePolicy=fail,sideEffects=None,groups=metallb.io,resources=metallbs,verbs=create;update,versions=v1beta1,name=metallbvalidationwebhook.metallb.io,admissionReviewVersions=v1

// Paths of the validating webhooks.
const (
	IPAddressPoolPath    = "/validate-metallb-io-v1beta1-ipaddresspool"
	BGPPeerPath          = "/validate-metallb-io-v1beta2-bgppeer"
	BGPAdvertisementPath = "/validate-metallb-io-v1beta1-bgpadvertisement"
	L2AdvertisementPath  = "/validate-metallb-io-v1beta1-l2advertisement"
	BFDProfilePath       = "/validate-metallb-io-v1beta1-bfdprofile"
	CommunityPath        = "/validate-metallb-io-v1beta1-community"
	MetalLBPath          = "/validate-metallb-io-v1beta1-metallb"
)

// Validator admits metallb.io objects by building the configuration with
// the object under admission in place (pkg/config.Build, the same code the
// controller and speakers run) and refusing the request when a problem
// involves that object. It reads nothing from the API server per request:
// a view kept current by watch events holds the pools in an interval index,
// so an IPAddressPool is checked against the few pools it can conflict
// with (config.PoolSearchRanges) however many the cluster has, and the
// objects this server just admitted count until the watch shows them.
type Validator struct {
	// Reader reads through to the API server (a manager's APIReader); the
	// MetalLB webhook and the symmetric-routing checks use it.
	Reader client.Reader
	// Cached reads the metallb.io objects other than pools, the MetalLB
	// object, Secrets, Nodes and Namespaces (a manager's cache); Reader
	// when nil.
	Cached client.Reader
	// Namespace is the stack's namespace.
	Namespace string
	// BGPBackend, when set, is the backend rules are checked against;
	// otherwise the MetalLB object's spec.bgpBackend is read (frr when
	// absent, as the MetalLB Operator defaults).
	BGPBackend v1beta1.BGPType
	// Scheme decodes the objects under admission.
	Scheme *runtime.Scheme
	// Mapper, when set, tells which optional APIs (NMState, OVN,
	// OpenShift's Network) are served: BGPPeers, BGPAdvertisements and
	// IPAddressPools then also get the symmetric-routing checks'
	// findings about them as warnings.
	Mapper meta.RESTMapper

	viewOnce sync.Once
	v        *view

	apisMu sync.Mutex
	apis   load.APIs // the optional APIs served, as of apisAt
	apisAt time.Time
}

// view returns the validator's view, made on first use.
func (v *Validator) view() *view {
	v.viewOnce.Do(func() { v.v = newView(v.Namespace) })
	return v.v
}

// Watch keeps the view current from inf's informers (a manager's cache,
// caching the stack's namespace at least); requests wait until they have
// listed everything once. Call it before the manager starts.
func (v *Validator) Watch(ctx context.Context, inf Informers) error {
	return v.view().watch(ctx, inf)
}

// Register adds every validating webhook and the conversion webhook to srv.
func (v *Validator) Register(srv crwebhook.Server) {
	dec := admission.NewDecoder(v.Scheme)
	reg := func(path, kind string, newObj func() client.Object) {
		srv.Register(path, &crwebhook.Admission{Handler: &kindHandler{v: v, kind: kind, newObj: newObj, decoder: dec}})
	}
	reg(IPAddressPoolPath, config.KindIPAddressPool, func() client.Object { return &v1beta1.IPAddressPool{} })
	reg(BGPPeerPath, config.KindBGPPeer, func() client.Object { return &v1beta2.BGPPeer{} })
	reg(BGPAdvertisementPath, config.KindBGPAdvertisement, func() client.Object { return &v1beta1.BGPAdvertisement{} })
	reg(L2AdvertisementPath, config.KindL2Advertisement, func() client.Object { return &v1beta1.L2Advertisement{} })
	reg(BFDProfilePath, config.KindBFDProfile, func() client.Object { return &v1beta1.BFDProfile{} })
	reg(CommunityPath, config.KindCommunity, func() client.Object { return &v1beta1.Community{} })
	srv.Register(MetalLBPath, &crwebhook.Admission{Handler: &metalLBHandler{v: v, decoder: dec}})
	srv.Register(SymmetricRoutingPath, &crwebhook.Admission{Handler: &symmetricRoutingHandler{decoder: dec}})
	AddConversion(srv, v.Scheme)
}

type kindHandler struct {
	v       *Validator
	kind    string
	newObj  func() client.Object
	decoder admission.Decoder
}

func (h *kindHandler) Handle(ctx context.Context, req admission.Request) admission.Response {
	log := logf.FromContext(ctx).WithValues("kind", h.kind, "name", req.Name, "operation", req.Operation)
	ref := config.ObjectRef{Kind: h.kind, Name: req.Name}
	w := h.v.view()
	if err := w.waitSynced(ctx); err != nil {
		return admission.Errored(http.StatusServiceUnavailable, fmt.Errorf("%s: %w", ref, err))
	}

	var obj client.Object
	if req.Operation != admissionv1.Delete {
		obj = h.newObj()
		if err := h.decoder.Decode(req, obj); err != nil {
			return admission.Errored(http.StatusBadRequest, fmt.Errorf("%s: %w", ref, err))
		}
		if obj.GetNamespace() == "" {
			obj.SetNamespace(req.Namespace)
		}
		if obj.GetDeletionTimestamp() != nil {
			// Finalizer removal and other updates of an object on its way
			// out must never be blocked by the configuration it is leaving.
			return admission.Allowed("")
		}
		ref.Name = obj.GetName()
	}

	// One admission at a time: two objects that conflict with each
	// other cannot both pass.
	w.mu.Lock()
	res, opts, err := h.v.load(ctx, w, obj)
	if err != nil {
		w.mu.Unlock()
		log.Error(err, "cannot read the current configuration")
		return admission.Errored(http.StatusInternalServerError, fmt.Errorf("%s: reading the current configuration: %w", ref, err))
	}
	if obj == nil {
		w.mu.Unlock()
		if p := config.CheckDelete(ref, res, opts); p != nil {
			return admission.Denied(p.Error())
		}
		return admission.Allowed("")
	}
	put(&res, obj)
	result := config.Build(res, opts)
	if h.v.confirmPools(ctx, w, ref, result.Errors) {
		// A pool the refusal named was deleted or changed since the
		// watch said: decide again with the view brought up to date.
		if res, opts, err = h.v.load(ctx, w, obj); err != nil {
			w.mu.Unlock()
			return admission.Errored(http.StatusInternalServerError, fmt.Errorf("%s: reading the current configuration: %w", ref, err))
		}
		put(&res, obj)
		result = config.Build(res, opts)
	}
	var denials, warnings []string
	for _, p := range result.Errors {
		if p.Involves(ref) {
			denials = append(denials, p.Error())
		}
	}
	if len(denials) == 0 && (req.DryRun == nil || !*req.DryRun) {
		w.admit(h.kind, obj, obj.GetResourceVersion())
	}
	w.mu.Unlock()

	for _, p := range result.Warnings {
		if p.Involves(ref) {
			warnings = append(warnings, p.Error())
		}
	}
	warnings = append(warnings, h.v.symmetricWarnings(ctx, obj, res)...)
	warnings = append(warnings, calicoWarnings(opts, obj, result.Config)...)
	if len(denials) > 0 {
		log.V(1).Info("denied", "reasons", denials)
		return admission.Denied(strings.Join(denials, "; ")).WithWarnings(warnings...)
	}
	return admission.Allowed("").WithWarnings(warnings...)
}

// confirmPools reads from the API server the stored pools (not the ones
// this server just admitted) that the errors involving ref name, and
// brings the view up to date with any that was deleted or changed since
// the watch showed it; it reports whether one was. A watch lags by
// milliseconds, and a pool deleted then replaced by an overlapping one at
// once (a GitOps sync pruning and creating) must not be refused for the
// one just deleted. Refusals are rare: only they pay for the reads. w.mu
// is held.
func (v *Validator) confirmPools(ctx context.Context, w *view, ref config.ObjectRef, errs []config.Problem) bool {
	if v.Reader == nil {
		return false
	}
	names := map[string]bool{}
	for _, p := range errs {
		if !p.Involves(ref) {
			continue
		}
		for _, r := range append([]config.ObjectRef{p.Object}, p.Related...) {
			if r.Kind == config.KindIPAddressPool && r != ref && w.stored[r.Name] != nil {
				if _, admitted := w.admitted[r]; !admitted {
					names[r.Name] = true
				}
			}
		}
	}
	changed := false
	for name := range names {
		var cur v1beta1.IPAddressPool
		err := v.Reader.Get(ctx, client.ObjectKey{Namespace: v.Namespace, Name: name}, &cur)
		switch {
		case apierrors.IsNotFound(err):
			w.forget(name)
			changed = true
		case err == nil && cur.ResourceVersion != w.stored[name].ResourceVersion:
			w.stored[name] = &cur
			w.reindex(name)
			changed = true
		}
	}
	return changed
}

// load returns what the configuration is built from: the objects of the
// other kinds from the cache, the objects w admitted in place, and the
// pools obj can be involved in a problem with when obj is a pool (every
// pool otherwise). w.mu is held.
func (v *Validator) load(ctx context.Context, w *view, obj client.Object) (config.Resources, config.Options, error) {
	opts := config.Options{Namespace: v.Namespace, BGPBackend: v.BGPBackend}
	cached := v.Cached
	if cached == nil {
		cached = v.Reader
	}
	res, err := configload.Load(ctx, cached, configload.Options{
		Namespace: v.Namespace, L2Advertisements: true, Nodes: true, Namespaces: true, NoPools: true,
	})
	if err != nil {
		return res, opts, err
	}
	w.expire()
	w.overlay(&res)
	if pool, ok := obj.(*v1beta1.IPAddressPool); ok {
		res.Pools = w.poolsNear(pool, res.BGPAdvs)
	} else {
		res.Pools = w.allPools()
	}
	if opts.BGPBackend == "" {
		opts.BGPBackend = v1beta1.BGPTypeFRR
		if backend := w.bgpBackend(); backend != "" {
			opts.BGPBackend = backend
		}
	}
	return res, opts, nil
}

// put replaces the object of the same name in res, or adds it.
func put(res *config.Resources, obj client.Object) {
	switch o := obj.(type) {
	case *v1beta1.IPAddressPool:
		res.Pools = replace(res.Pools, *o, func(x v1beta1.IPAddressPool) string { return x.Namespace + "/" + x.Name })
	case *v1beta2.BGPPeer:
		res.Peers = replace(res.Peers, *o, func(x v1beta2.BGPPeer) string { return x.Namespace + "/" + x.Name })
	case *v1beta1.BGPAdvertisement:
		res.BGPAdvs = replace(res.BGPAdvs, *o, func(x v1beta1.BGPAdvertisement) string { return x.Namespace + "/" + x.Name })
	case *v1beta1.L2Advertisement:
		res.L2Advs = replace(res.L2Advs, *o, func(x v1beta1.L2Advertisement) string { return x.Namespace + "/" + x.Name })
	case *v1beta1.BFDProfile:
		res.BFDProfiles = replace(res.BFDProfiles, *o, func(x v1beta1.BFDProfile) string { return x.Namespace + "/" + x.Name })
	case *v1beta1.Community:
		res.Communities = replace(res.Communities, *o, func(x v1beta1.Community) string { return x.Namespace + "/" + x.Name })
	default:
		panic(fmt.Sprintf("webhook: no configuration slot for %T", obj))
	}
}

// replace returns items with the element of the same namespace/name as obj
// replaced by obj (the object under admission may live outside the stack's
// namespace, in which case it is simply added and Build reports the
// namespace).
func replace[T any](items []T, obj T, key func(T) string) []T {
	out := make([]T, 0, len(items)+1)
	for _, it := range items {
		if key(it) != key(obj) {
			out = append(out, it)
		}
	}
	return append(out, obj)
}
