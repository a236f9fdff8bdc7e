// Package assigner is lbstack's address assigner (the "controller" component): it gives every
// LoadBalancer Service it serves its addresses from the IPAddressPools,
// driving the pure allocator of pkg/ipam with the configuration validated
// by pkg/config (the same rules the webhooks apply).
//
// Layout: intent.go reads a Service (annotations, families, sharing key),
// pools.go decides which pools a Service may use, decide.go is the whole
// allocation policy over an ipam.Allocator; all three are pure and
// table-tested. service.go (the Service reconciler), configuration.go
// (configuration loading, the initial claim, ConfigurationState) and
// poolstatus.go (IPAddressPool status and metrics) do the Kubernetes I/O;
// process.go is the `lbstack controller` process around them.
//
// Guarantees:
//   - Level-based and idempotent: a reconcile that changes nothing writes
//     nothing (no status write, no event, no pool status write).
//   - No address moves on a restart or a configuration change unless its
//     pool no longer contains it or may no longer serve the Service: every
//     existing assignment is claimed (oldest Service first) before anything
//     is allocated.
//   - One write per allocated Service: status and pool annotation go in one
//     merge patch of the status subresource.
//
// See docs/controller.md for the user-facing behaviour.
package assigner

// The permissions of `lbstack controller` are the rendered ClusterRole and
// Role in bindata/controller/10-rbac.yaml (what the operator deploys); the
// envtest suite runs the controller as that service account, so a missing
// permission fails there. Services are only read; the one write is the
// status subresource (addresses and the pool annotation together).
