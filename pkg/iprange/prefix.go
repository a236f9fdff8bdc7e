package iprange

import (
	"cmp"
	"net/netip"
)

// LastAddr returns the last address of p (its host bits all set), of p's
// family. p need not be masked, but must be valid.
func LastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr()
	return U128From(a).Or(Ones(a.BitLen() - p.Bits())).Addr(a.Is4())
}

// Summarize returns the minimal list of prefixes covering exactly
// first..last (same family, first <= last), in address order. It returns
// nil for invalid input.
func Summarize(first, last netip.Addr) []netip.Prefix {
	if !first.IsValid() || !last.IsValid() || first.Is4() != last.Is4() || first.Compare(last) > 0 {
		return nil
	}
	n := first.BitLen()
	is4 := first.Is4()
	lastU := U128From(last)
	var out []netip.Prefix
	for {
		cur := U128From(first)
		// The largest block starting at cur is 2^k addresses with cur aligned
		// on 2^k and the block's end not past last.
		k := min(cur.TrailingZeros(), n)
		for k > 0 && cur.Or(Ones(k)).Cmp(lastU) > 0 {
			k--
		}
		out = append(out, netip.PrefixFrom(first, n-k))
		end := cur.Or(Ones(k))
		if end.Cmp(lastU) >= 0 {
			return out
		}
		first = end.Addr(is4).Next()
	}
}

// ComparePrefixes orders prefixes: IPv4 before IPv6 (netip.Addr.Compare
// does), then by address, then shorter first.
func ComparePrefixes(a, b netip.Prefix) int {
	if c := a.Addr().Compare(b.Addr()); c != 0 {
		return c
	}
	return cmp.Compare(a.Bits(), b.Bits())
}

// MinAddr and MaxAddr return the lower and the higher of two addresses of
// one family.
func MinAddr(a, b netip.Addr) netip.Addr {
	if a.Compare(b) < 0 {
		return a
	}
	return b
}

func MaxAddr(a, b netip.Addr) netip.Addr {
	if a.Compare(b) > 0 {
		return a
	}
	return b
}
