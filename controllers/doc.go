// Package controllers holds the operator's MetalLB reconciler: the MetalLB
// object into the stack's workloads (rendered from bindata/, written through
// pkg/ownedapply), its status, the operator's cache options, and the
// operator process around them (process.go, RunOperator). The
// symmetric-routing coordinator, which the operator also runs, lives with
// the rest of symmetric routing in pkg/symrouting/reconciler.
//
// The RBAC markers below are the operator's own permissions on the metallb.io
// API; `make manifests` turns them into config/rbac/role.yaml.
//
// +kubebuilder:rbac:groups=metallb.io,resources=metallbs,verbs=get;list;watch;update;patch
// +kubebuilder:rbac:groups=metallb.io,resources=metallbs/status,verbs=get;update;patch
// +kubebuilder:rbac:groups=metallb.io,resources=metallbs/finalizers,verbs=update
// +kubebuilder:rbac:groups=metallb.io,resources=ipaddresspools;bgppeers;bgpadvertisements;l2advertisements;bfdprofiles;communities,verbs=get;list;watch
// +kubebuilder:rbac:groups=metallb.io,resources=configurationstates;servicel2statuses;servicebgpstatuses,verbs=get;list;watch
// +kubebuilder:rbac:groups="",resources=events,verbs=create;patch
package controllers
