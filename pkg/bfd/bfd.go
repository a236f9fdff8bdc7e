// Package bfd holds the BFD profile value: the BFD parameters of a BGP
// session, as validated configuration (pkg/config) produces them and BGP
// backends (pkg/bgp and its implementations) consume them. It is a leaf so
// that pkg/bgp does not depend on configuration validation.
package bfd

// Profile is a validated BFDProfile with FRR's defaults filled in. It is
// comparable: two sessions with equal profiles need no BFD change.
type Profile struct {
	Name string
	// ReceiveInterval, TransmitInterval and EchoInterval are in
	// milliseconds.
	ReceiveInterval  uint32
	TransmitInterval uint32
	DetectMultiplier uint32
	EchoInterval     uint32
	EchoMode         bool
	PassiveMode      bool
	MinimumTTL       uint32
}
