package ipam

import (
	"math"

	"github.com/lbstack/lbstack/pkg/iprange"
)

// u128 is an address (or an address count) as an unsigned 128-bit integer:
// the run tree needs +1/-1 and comparisons on every operation.
type u128 = iprange.U128

// satAdd adds two non-negative int64 values, saturating at math.MaxInt64.
func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}
