// Package v1 is Calico's crd.projectcalico.org/v1 API for the two kinds
// lbstack reads and writes: BGPConfiguration and BGPPeer.
//
// A cluster without Calico's API server stores Calico's configuration in
// these CRDs, whose spec is exactly the projectcalico.org/v3 spec. Calico
// itself builds them the same way (libcalico-go's crd.projectcalico.org/v1
// package wraps the v3 spec types under this group); that package lives in
// Calico's monorepo, which is far too large a dependency, so the two
// wrappers are repeated here around the published v3 specs of
// github.com/projectcalico/api. `make manifests` generates the CRDs of
// test/crds/calico from these types (the envtest tier installs them).
//
// +kubebuilder:object:generate=true
// +groupName=crd.projectcalico.org
package v1
