// Package v1 is a minimal typed copy of OVN-Kubernetes' public EgressService
// API (k8s.ovn.org/v1): the fields lbstack reads and writes, nothing else.
// The OVN-Kubernetes Go module is not served by our module proxy, so the
// schema is kept here, checked against the CRD YAML in test/crds/ovn.
//
// +kubebuilder:object:generate=true
// +groupName=k8s.ovn.org
package v1
