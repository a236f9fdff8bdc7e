package iprange

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
)

// U128 is an address (or an address count) as an unsigned 128-bit integer;
// IPv4 addresses occupy the low 32 bits. netip.Addr keeps the same
// representation internally but exports no arithmetic on it, and both the
// allocator's run tree (+1/-1 and comparisons on every operation) and CIDR
// summarisation need some. The methods are small enough to inline: the
// allocator is hot.
type U128 struct{ Hi, Lo uint64 }

// U128From returns a as a number.
func U128From(a netip.Addr) U128 {
	if a.Is4() {
		b := a.As4()
		return U128{Lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return U128{Hi: binary.BigEndian.Uint64(b[:8]), Lo: binary.BigEndian.Uint64(b[8:])}
}

// Addr returns u as an IPv4 address (its low 32 bits) when is4, else as an
// IPv6 address.
func (u U128) Addr(is4 bool) netip.Addr {
	if is4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(u.Lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.Hi)
	binary.BigEndian.PutUint64(b[8:], u.Lo)
	return netip.AddrFrom16(b)
}

// Cmp returns -1, 0 or 1 as u is below, equal to or above v.
func (u U128) Cmp(v U128) int {
	switch {
	case u.Hi < v.Hi:
		return -1
	case u.Hi > v.Hi:
		return 1
	case u.Lo < v.Lo:
		return -1
	case u.Lo > v.Lo:
		return 1
	}
	return 0
}

// Less reports u < v.
func (u U128) Less(v U128) bool { return u.Hi < v.Hi || (u.Hi == v.Hi && u.Lo < v.Lo) }

// AddSmall and SubSmall wrap around at 2^128; callers use them where the
// result is known to stay inside a range.
func (u U128) AddSmall(n uint64) U128 {
	lo := u.Lo + n
	hi := u.Hi
	if lo < u.Lo {
		hi++
	}
	return U128{hi, lo}
}

// SubSmall returns u - n, wrapping around at 0.
func (u U128) SubSmall(n uint64) U128 {
	lo := u.Lo - n
	hi := u.Hi
	if lo > u.Lo {
		hi--
	}
	return U128{hi, lo}
}

// Sub returns u - v, wrapping around at 0.
func (u U128) Sub(v U128) U128 {
	lo := u.Lo - v.Lo
	hi := u.Hi - v.Hi
	if lo > u.Lo {
		hi--
	}
	return U128{hi, lo}
}

// Or returns the bitwise or of u and v.
func (u U128) Or(v U128) U128 { return U128{u.Hi | v.Hi, u.Lo | v.Lo} }

// TrailingZeros returns the number of trailing zero bits (128 for 0): the
// largest k such that u is aligned on a block of 2^k addresses.
func (u U128) TrailingZeros() int {
	if u.Lo != 0 {
		return bits.TrailingZeros64(u.Lo)
	}
	if u.Hi != 0 {
		return 64 + bits.TrailingZeros64(u.Hi)
	}
	return 128
}

// SatInt64 converts u to int64, saturating at math.MaxInt64.
func (u U128) SatInt64() int64 {
	if u.Hi != 0 || u.Lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(u.Lo)
}

// Ones returns 2^k - 1: the host part of a prefix with k host bits. k is
// clamped to 0..128.
func Ones(k int) U128 {
	switch {
	case k <= 0:
		return U128{}
	case k < 64:
		return U128{Lo: 1<<uint(k) - 1}
	case k == 64:
		return U128{Lo: ^uint64(0)}
	case k < 128:
		return U128{Hi: 1<<uint(k-64) - 1, Lo: ^uint64(0)}
	default:
		return U128{Hi: ^uint64(0), Lo: ^uint64(0)}
	}
}
