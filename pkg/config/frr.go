package config

import (
	"fmt"
	"strings"
)

// What FRR's configuration language can express. Build applies these in
// FRR mode and the FRR renderer (pkg/bgp/frr) applies the very same
// functions, so a value admission accepts is a value the renderer writes:
// a BGPPeer FRR cannot configure is refused when it is created, not found
// out on every node.

// FRRPasswordProblem reports why FRR cannot configure pw as a neighbour's
// TCP MD5 password, or "": on top of what any backend refuses (too long,
// control characters), `neighbor X password WORD` takes one word, so no
// whitespace.
func FRRPasswordProblem(pw string) string {
	if why := checkPassword(pw); why != "" {
		return why
	}
	if strings.ContainsAny(pw, " \t") {
		return "contains whitespace, which FRR's `neighbor password` cannot express (one word only)"
	}
	return ""
}

// VRFNameProblem reports why name cannot be the VRF of a session, or "":
// it is a Linux device (a VRF master, or with the native backend the
// device the session's socket is bound to) that FRR also names in its
// configuration (`router bgp ASN vrf NAME`), one printable ASCII word.
func VRFNameProblem(name string) string {
	if name == "default" {
		return `"default" is FRR's and iproute2's name for the default VRF; leave vrf empty for the default VRF`
	}
	if why := checkLinkName(name); why != "" {
		return why
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c <= ' ' || c >= 0x7f {
			return fmt.Sprintf("%q has a byte outside printable ASCII, which FRR's configuration cannot carry", name)
		}
	}
	if name[0] == '!' || name[0] == '#' {
		return fmt.Sprintf("%q starts with %q, which FRR reads as a comment", name, name[0])
	}
	return ""
}

// BFDProfileProblem reports why FRR's bfdd cannot run p, or "": a value
// outside the ranges Build enforces on BFDProfile objects.
func BFDProfileProblem(p *BFDProfile) string {
	for _, f := range []struct {
		r bfdRange
		v uint32
	}{
		{bfdReceive, p.ReceiveInterval}, {bfdTransmit, p.TransmitInterval}, {bfdMultiplier, p.DetectMultiplier},
		{bfdEcho, p.EchoInterval}, {bfdMinTTL, p.MinimumTTL},
	} {
		if f.v != 0 && (f.v < f.r.min || f.v > f.r.max) {
			return fmt.Sprintf("%s %d%s is out of range %d..%d", f.r.field, f.v, f.r.unit, f.r.min, f.r.max)
		}
	}
	return ""
}
