// Package config turns the metallb.io objects of a cluster into one
// validated, fully resolved configuration.
//
// It is the only place where configuration rules live: the admission
// webhooks, the controller (IPAM) and the speakers all call Build, so an
// object accepted at admission is an object the controller and the speakers
// accept, and the messages users see are the same everywhere.
//
// The package is pure: no Kubernetes client, no clock, no I/O. Build takes
// every object (pools, peers, advertisements, BFD profiles, communities, and
// the Secrets, Nodes and Namespaces used to resolve them) and returns a
// Result holding either a Config or the Problems that prevent one, plus
// warnings.
//
// Errors and warnings. A Problem is an error when the configuration cannot
// work as written (overlapping pools, a malformed address, contradictory
// peer settings, a feature the chosen BGP backend does not have). A Problem
// is a warning when the configuration works but deserves attention, most
// importantly references to objects that may still arrive in the same
// `kubectl apply -f` (a peer's bfdProfile, a passwordSecret, a community
// alias, an advertisement's pools or peers): admission returns them as
// warnings, which kubectl prints, and ConfigurationState reports them until
// they resolve. A Config is returned whenever there are no errors, even with
// warnings; unresolved references are left unresolved in it (nil pointers,
// empty passwords) and documented field by field.
//
// Scale. Overlap detection and the aggregation checks use one sorted
// interval index of every address range of every pool (O(n log n) to build,
// O(log n) per query), so admitting one pool among thousands costs
// O(n log n), not O(n²).
//
// Departures from MetalLB:
//   - an aggregationLength shorter than the widest CIDR of a pool entry is
//     accepted when the aggregates cover no address of another pool, with a
//     warning naming the extra addresses they cover;
//   - references that may arrive later are warnings, not errors;
//   - the native (GoBGP) backend accepts what GoBGP can do (IPv6, large
//     communities, VRFs via BindInterface, timers, graceful restart, ...) and
//     refuses, by name, only BFD, unnumbered (interface) peers and dynamicASN.
package config
