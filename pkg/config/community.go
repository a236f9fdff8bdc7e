package config

// Imported under another name: config's tests have a helper called community.
import bgpcommunity "github.com/lbstack/lbstack/pkg/community"

// The community value type lives in pkg/community so that pkg/bgp can carry
// communities without importing pkg/config; these aliases keep the names
// every user of pkg/config already spells.

// CommunityType tells standard (RFC 1997) from large (RFC 8092) communities.
type CommunityType = bgpcommunity.Type

const (
	// StandardCommunity is "AA:NN", two 16-bit halves.
	StandardCommunity = bgpcommunity.Standard
	// LargeCommunity is "large:G:L1:L2", three 32-bit parts.
	LargeCommunity = bgpcommunity.Large
)

// Community is one BGP community value (see pkg/community).
type Community = bgpcommunity.Community

// largeMarker prefixes large communities, as in MetalLB.
const largeMarker = bgpcommunity.LargeMarker

// ParseCommunity parses a community literal: "AA:NN" with two decimal
// 16-bit numbers, or "large:G:L1:L2" with three decimal 32-bit numbers.
// Aliases are resolved by Build, not here.
func ParseCommunity(s string) (Community, error) { return bgpcommunity.Parse(s) }

// SplitCommunities renders communities as BGP implementations write them:
// standard ones "AA:NN", large ones "G:L1:L2" (no "large:" marker), each
// list in the input's order.
func SplitCommunities(cs []Community) (std, large []string) { return bgpcommunity.Split(cs) }
