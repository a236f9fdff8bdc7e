package ipam

import (
	"encoding/binary"
	"math"
	"math/big"
	"slices"
	"testing"

	"github.com/lbstack/lbstack/pkg/iprange"
)

// FuzzAllocator drives the Allocator and the reference model (model_test.go)
// with operations decoded from the fuzzer's bytes and requires them to agree
// after every step, with all invariants checked at the end.
//
//	go test -run '^$' -fuzz FuzzAllocator -fuzztime 60s ./pkg/ipam/
func FuzzAllocator(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("\x01\x01\x01\x01\x00\x00\x01\x02\x03\x00\x05\x07\x09\x0b"))
	f.Add([]byte("shared addresses: k1 k1 k1 TCP UDP 53 80 443, dual stack, claims, releases and pool changes"))
	f.Add(binary.BigEndian.AppendUint64(nil, 0x0123456789abcdef))
	f.Fuzz(func(t *testing.T, data []byte) {
		src := &byteSource{b: data}
		a, m := New(), newModel()
		pools := randPools(src)
		a.SetPools(pools)
		m.setPools(pools)
		for i := 0; !src.empty() && i < 300; i++ {
			step(t, src, a, m)
		}
		checkState(t, a, m)
	})
}

// FuzzRange exercises one range with arbitrary bounds (top and bottom of
// both address spaces, /64s, single addresses, .0/.255 edges) against a
// plain set: lowestFree, markUsed/markFree and available must agree.
func FuzzRange(f *testing.F) {
	f.Add(true, uint64(0xfffffff0), uint64(0), uint64(15), true, []byte{0, 1, 2, 3, 0, 0, 9})
	f.Add(false, uint64(math.MaxUint64), uint64(math.MaxUint64-40), uint64(40), false, []byte{0, 0, 0, 7, 200})
	f.Add(false, uint64(0x20010db800000000), uint64(0), uint64(math.MaxUint64), false, []byte{0, 0, 1, 255, 3})
	f.Add(true, uint64(0), uint64(0), uint64(300), true, []byte{0, 0, 0, 0, 5, 5})
	f.Fuzz(func(t *testing.T, is4 bool, hi, lo, size uint64, avoid bool, ops []byte) {
		var first, last u128
		if is4 {
			lo &= math.MaxUint32
			first = u128{Lo: lo}
			last = u128{Lo: min(lo+size, math.MaxUint32)}
			if lo+size < lo {
				last.Lo = math.MaxUint32
			}
		} else {
			first = u128{Hi: hi, Lo: lo}
			last = first.AddSmall(size)
			if last.Less(first) { // wrapped past the top of the space
				last = u128{Hi: math.MaxUint64, Lo: math.MaxUint64}
			}
		}
		r := &rangeState{first: first, last: last, is4: is4, avoidBuggy: avoid && is4}
		if r.avoidBuggy {
			r.buggy = countBuggy(first, last)
		}
		bigOf := func(u u128) *big.Int {
			b := new(big.Int).SetUint64(u.Hi)
			return b.Lsh(b, 64).Or(b, new(big.Int).SetUint64(u.Lo))
		}
		total := new(big.Int).Sub(bigOf(last), bigOf(first))
		total.Add(total, big.NewInt(1))
		if r.avoidBuggy {
			// #x in [f, l] with x mod 256 in {0, 255}, by floor division.
			cnt := func(n int64, rem int64) int64 { return floorDiv(n-rem, 256) }
			f, l := int64(first.Lo), int64(last.Lo)
			nb := cnt(l, 0) - cnt(f-1, 0) + cnt(l, 255) - cnt(f-1, 255)
			if uint64(nb) != r.buggy {
				t.Fatalf("countBuggy(%d, %d) = %d, want %d", f, l, r.buggy, nb)
			}
			total.Sub(total, big.NewInt(nb))
		}
		used := map[u128]bool{}
		naiveLowest := func() (u128, bool) {
			for x := first; ; x = x.AddSmall(1) {
				if r.usable(x) && !used[x] {
					return x, true
				}
				if x == last {
					return u128{}, false
				}
			}
		}
		var held []u128
		for i, op := range ops {
			want, wok := naiveLowest()
			got, gok := r.lowestFree()
			if wok != gok || got != want {
				t.Fatalf("op %d: lowestFree = %v %v, want %v %v", i, got, gok, want, wok)
			}
			avail := new(big.Int).Sub(total, big.NewInt(int64(len(used))))
			wantAvail := int64(math.MaxInt64)
			if avail.IsInt64() {
				wantAvail = avail.Int64()
			}
			if a := r.available(); a != wantAvail {
				t.Fatalf("op %d: available = %d, want %d", i, a, wantAvail)
			}
			var x u128
			switch op % 4 {
			case 0: // take the lowest, as Assign does
				if !wok {
					continue
				}
				x = want
			case 1: // an address near the start
				x = first.AddSmall(uint64(op / 4))
			case 2: // an address near the end
				x = last.SubSmall(uint64(op / 4))
			case 3: // free something
				if len(held) == 0 {
					continue
				}
				j := int(op/4) % len(held)
				r.markFree(held[j])
				delete(used, held[j])
				held = slices.Delete(held, j, j+1)
				continue
			}
			if !r.contains(x) || !r.usable(x) || used[x] {
				continue
			}
			r.markUsed(x)
			used[x] = true
			held = append(held, x)
			if r.used != uint64(len(used)) {
				t.Fatalf("used = %d, want %d", r.used, len(used))
			}
		}
		checkRuns(t, r)
		// Addresses round-trip through netip.
		if a := first.Addr(is4); iprange.U128From(a) != first || (is4 && !a.Is4()) {
			t.Fatalf("round trip %v", a)
		}

	})
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
