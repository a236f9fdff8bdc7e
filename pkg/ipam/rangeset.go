package ipam

import "math/bits"

// rangeSet tracks which of a pool's ranges (of one family) still have a free
// usable address, so that pick finds the first such range in O(log64 R)
// instead of trying every full range first. Pools listing many single
// addresses (one /32 per line is common in MetalLB configs) would otherwise
// get slower as they fill, which is exactly what the allocator must avoid.
//
// It is a bitmap with summary levels: bit i of levels[0] is set while range
// i has room; bit j of levels[k+1] is set while word j of levels[k] is
// non-zero. The top level is a single word.
type rangeSet struct {
	levels [][]uint64
}

func newRangeSet(n int) *rangeSet {
	s := &rangeSet{}
	for {
		words := (n + 63) / 64
		if words == 0 {
			words = 1
		}
		s.levels = append(s.levels, make([]uint64, words))
		if words == 1 {
			return s
		}
		n = words
	}
}

// set marks range i as having room (on) or being full.
func (s *rangeSet) set(i int, on bool) {
	for _, lvl := range s.levels {
		w, b := i/64, uint64(1)<<(i%64)
		was := lvl[w] != 0
		if on {
			lvl[w] |= b
		} else {
			lvl[w] &^= b
		}
		if (lvl[w] != 0) == was {
			return // the summary above does not change
		}
		i = w
	}
}

// first returns the lowest range index with room, or -1.
func (s *rangeSet) first() int {
	top := len(s.levels) - 1
	if s.levels[top][0] == 0 {
		return -1
	}
	i := 0
	for l := top; l >= 0; l-- {
		i = i*64 + bits.TrailingZeros64(s.levels[l][i])
	}
	return i
}
