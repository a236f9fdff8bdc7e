// Package scheme builds the runtime.Scheme every lbstack component uses:
// Kubernetes' built-in types plus the metallb.io and lbstack.io APIs and the
// NMState and OVN EgressService kinds symmetric routing reads.
package scheme

import (
	nmstatev1 "github.com/nmstate/kubernetes-nmstate/api/v1"
	nmstatev1beta1 "github.com/nmstate/kubernetes-nmstate/api/v1beta1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"

	lbstackv1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
)

// New returns a scheme with the built-in types and metallb.io v1beta1 and
// v1beta2, lbstack.io v1alpha1, NMState and OVN's EgressService registered.
func New() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(AddToScheme(s))
	return s
}

// AddToScheme registers the built-in types and the metallb.io API in s.
func AddToScheme(s *runtime.Scheme) error {
	for _, add := range []func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme,
		v1beta1.AddToScheme,
		v1beta2.AddToScheme,
		lbstackv1alpha1.AddToScheme,
		// The optional APIs symmetric routing reads (pkg/symrouting/load):
		// registering kinds a cluster does not serve costs nothing.
		nmstatev1.AddToScheme,
		nmstatev1beta1.AddToScheme,
		ovnv1.AddToScheme,
	} {
		if err := add(s); err != nil {
			return err
		}
	}
	return nil
}
