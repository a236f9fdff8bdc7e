// Package community is the BGP community value (RFC 1997 standard and RFC
// 8092 large communities): parsing the literals metallb.io objects use and
// formatting them for BGP implementations. It is a leaf so that the
// backend-neutral BGP state (pkg/bgp) can carry communities without
// depending on configuration validation (pkg/config).
package community

import (
	"cmp"
	"fmt"
	"strconv"
	"strings"
)

// Type tells standard (RFC 1997) from large (RFC 8092) communities.
type Type uint8

const (
	// Standard is "AA:NN", two 16-bit halves.
	Standard Type = iota
	// Large is "large:G:L1:L2", three 32-bit parts.
	Large
)

// Community is one BGP community value. It is comparable, so it can key a
// map; the zero value is the standard community 0:0.
type Community struct {
	Type Type
	// High and Low are the halves of a standard community (AA:NN).
	High, Low uint16
	// Global, Local1 and Local2 are the parts of a large community.
	Global, Local1, Local2 uint32
}

// LargeMarker prefixes large communities ("large:G:L1:L2"), as in MetalLB.
const LargeMarker = "large"

// Parse parses a community literal: "AA:NN" with two decimal
// 16-bit numbers, or "large:G:L1:L2" with three decimal 32-bit numbers.
// Aliases (names defined by Community objects) are resolved by
// config.Build, not here.
func Parse(s string) (Community, error) {
	fs := strings.Split(s, ":")
	switch len(fs) {
	case 2:
		var v [2]uint16
		for i, f := range fs {
			n, err := parseDecimal(f, 16)
			if err != nil {
				return Community{}, fmt.Errorf("invalid community %q: %s part %q: %w", s, [...]string{"first", "second"}[i], f, err)
			}
			v[i] = uint16(n)
		}
		return Community{Type: Standard, High: v[0], Low: v[1]}, nil
	case 4:
		if fs[0] != LargeMarker {
			return Community{}, fmt.Errorf("invalid community %q: a large community is written large:<uint32>:<uint32>:<uint32>", s)
		}
		var v [3]uint32
		for i, f := range fs[1:] {
			n, err := parseDecimal(f, 32)
			if err != nil {
				return Community{}, fmt.Errorf("invalid community %q: %s part %q: %w", s, [...]string{"global administrator", "first local data", "second local data"}[i], f, err)
			}
			v[i] = uint32(n)
		}
		return Community{Type: Large, Global: v[0], Local1: v[1], Local2: v[2]}, nil
	}
	return Community{}, fmt.Errorf("invalid community %q: expected AA:NN (16-bit numbers) or large:G:L1:L2 (32-bit numbers)", s)
}

// parseDecimal accepts only plain decimal digits (no sign, no base prefix,
// no underscores): what FRR and GoBGP accept too.
func parseDecimal(s string, bitSize int) (uint64, error) {
	if s == "" {
		return 0, fmt.Errorf("empty")
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("not a decimal number")
		}
	}
	n, err := strconv.ParseUint(s, 10, bitSize)
	if err != nil {
		return 0, fmt.Errorf("out of range 0..%d", uint64(1)<<bitSize-1)
	}
	return n, nil
}

// String returns the literal Parse accepts: "65000:100" or
// "large:65000:1:2". (FRR writes large communities without the marker.)
func (c Community) String() string {
	if c.Type == Large {
		return fmt.Sprintf("%s:%d:%d:%d", LargeMarker, c.Global, c.Local1, c.Local2)
	}
	return fmt.Sprintf("%d:%d", c.High, c.Low)
}

// Uint32 returns a standard community as the 32-bit value on the wire
// (High<<16 | Low). It is meaningless for a large community.
func (c Community) Uint32() uint32 { return uint32(c.High)<<16 | uint32(c.Low) }

// Compare orders communities: standard before large, then numerically.
func (c Community) Compare(o Community) int {
	if x := cmp.Compare(c.Type, o.Type); x != 0 {
		return x
	}
	if c.Type == Standard {
		return cmp.Compare(c.Uint32(), o.Uint32())
	}
	if x := cmp.Compare(c.Global, o.Global); x != 0 {
		return x
	}
	if x := cmp.Compare(c.Local1, o.Local1); x != 0 {
		return x
	}
	return cmp.Compare(c.Local2, o.Local2)
}

// Split renders communities as BGP implementations write them:
// standard ones "AA:NN", large ones "G:L1:L2" (no "large:" marker), each
// list in the input's order.
func Split(cs []Community) (std, large []string) {
	for _, c := range cs {
		if c.Type == Large {
			large = append(large, fmt.Sprintf("%d:%d:%d", c.Global, c.Local1, c.Local2))
		} else {
			std = append(std, fmt.Sprintf("%d:%d", c.High, c.Low))
		}
	}
	return std, large
}
