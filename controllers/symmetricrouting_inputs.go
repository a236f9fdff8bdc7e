package controllers

import (
	"sigs.k8s.io/controller-runtime/pkg/client"

	v1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
	"github.com/lbstack/lbstack/pkg/symrouting/generate"
)

// ownedBy reports whether o was generated for sr: it carries the
// symmetric-routing label with sr's name and an owner reference to sr's UID.
func ownedBy(o client.Object, sr *v1alpha1.SymmetricRouting) bool {
	if o.GetLabels()[generate.SymmetricRoutingLabel] != sr.Name {
		return false
	}
	for _, ref := range o.GetOwnerReferences() {
		if ref.UID == sr.UID {
			return true
		}
	}
	return false
}
