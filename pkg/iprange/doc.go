// Package iprange is the address arithmetic that pool handling shares: an
// address as a 128-bit number, the last address of a prefix, the CIDRs
// covering a range, and the parsing of a pool's address entry ("a.b.c.d/nn"
// or "first-last"). It imports only the standard library so that pkg/config
// (admission), pkg/ipam (allocation) and pkg/legacyconfig (ConfigMap
// conversion) can all use it and agree on what an entry means.
package iprange
