package ipam

import (
	"encoding/binary"
	"math"
	"net/netip"
)

// u128 is an address (or an address count) as an unsigned 128-bit integer.
// IPv4 addresses occupy the low 32 bits. netip.Addr keeps the same
// representation internally but does not export arithmetic on it, and the
// run tree needs +1/-1 and comparisons on every operation.
type u128 struct{ hi, lo uint64 }

func u128From(a netip.Addr) u128 {
	if a.Is4() {
		b := a.As4()
		return u128{lo: uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{hi: binary.BigEndian.Uint64(b[:8]), lo: binary.BigEndian.Uint64(b[8:])}
}

func (u u128) addr(is4 bool) netip.Addr {
	if is4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(u.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	return netip.AddrFrom16(b)
}

func (u u128) cmp(v u128) int {
	switch {
	case u.hi < v.hi:
		return -1
	case u.hi > v.hi:
		return 1
	case u.lo < v.lo:
		return -1
	case u.lo > v.lo:
		return 1
	}
	return 0
}

func (u u128) less(v u128) bool { return u.hi < v.hi || (u.hi == v.hi && u.lo < v.lo) }

// addSmall and subSmall wrap around at 2^128; callers only use them where the
// result is known to stay inside a range (see runs.go).
func (u u128) addSmall(n uint64) u128 {
	lo := u.lo + n
	hi := u.hi
	if lo < u.lo {
		hi++
	}
	return u128{hi, lo}
}

func (u u128) subSmall(n uint64) u128 {
	lo := u.lo - n
	hi := u.hi
	if lo > u.lo {
		hi--
	}
	return u128{hi, lo}
}

func (u u128) sub(v u128) u128 {
	lo := u.lo - v.lo
	hi := u.hi - v.hi
	if lo > u.lo {
		hi--
	}
	return u128{hi, lo}
}

// satInt64 converts u to int64, saturating at math.MaxInt64.
func (u u128) satInt64() int64 {
	if u.hi != 0 || u.lo > math.MaxInt64 {
		return math.MaxInt64
	}
	return int64(u.lo)
}

// satAdd adds two non-negative int64 values, saturating at math.MaxInt64.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
