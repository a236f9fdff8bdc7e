package webhook

import (
	"fmt"

	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/calico"
	"github.com/lbstack/lbstack/pkg/config"
)

// calicoWarnings: with bgpBackend calico, the Calico mode's checks
// (pkg/calico) on the configuration built with obj in place, and the
// findings that name obj, as admission warnings: an advertisement's
// localPref, peers or nodeSelectors Calico cannot express, a BGPPeer the
// mode ignores, ... are said at `kubectl apply` time. Like the symmetric
// routing ones they never refuse. Calico's own objects are not read here
// (no request per admission): what depends on them (a missing Calico
// BGPPeer or BGPConfiguration, serviceLoadBalancerIPs entries) and the
// Services' checks are reported by the operator, as events on the MetalLB
// object and its CalicoConsistent condition.
func calicoWarnings(opts config.Options, obj client.Object, built *config.Config) []string {
	if opts.BGPBackend != v1beta1.BGPTypeCalico || built == nil {
		return nil
	}
	var kind string
	switch obj.(type) {
	case *v1beta2.BGPPeer:
		kind = calico.KindBGPPeer
	case *v1beta1.BGPAdvertisement:
		kind = calico.KindBGPAdvertisement
	case *v1beta1.IPAddressPool:
		kind = calico.KindPool
	default:
		return nil
	}
	ref := calico.ObjectRef{Kind: kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
	var out []string
	for _, f := range calico.Check(calico.Inputs{Config: built, Namespace: opts.Namespace}) {
		for _, r := range f.Objects {
			if r == ref {
				out = append(out, fmt.Sprintf("bgpBackend calico (%s): %s", f.Check, f.Message))
				break
			}
		}
	}
	return out
}
