package iprange

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"
)

// addr4 returns 198.51.100.0 + i (i < 256) or, past that, 2001:db8::i.
func indexAddr(i int) netip.Addr {
	if i < 256 {
		return netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
	}
	return netip.MustParseAddr(fmt.Sprintf("2001:db8::%x", i-256))
}

func TestIndexTable(t *testing.T) {
	r := func(a, b string) Range { return Range{First: netip.MustParseAddr(a), Last: netip.MustParseAddr(b)} }
	x := NewIndex[string]()
	x.Set("a", []Range{r("198.51.100.0", "198.51.100.15"), r("198.51.100.64", "198.51.100.127")})
	x.Set("b", []Range{r("198.51.100.16", "198.51.100.31")})
	x.Set("wide", []Range{r("198.51.100.0", "198.51.100.255")})
	x.Set("v6", []Range{r("2001:db8::", "2001:db8::ff")})
	x.Set("bad", []Range{r("198.51.100.9", "198.51.100.1"), {}, r("198.51.100.1", "2001:db8::1")})

	tests := []struct {
		first, last string
		want        []string
	}{
		{"198.51.100.0", "198.51.100.0", []string{"a", "wide"}},
		{"198.51.100.16", "198.51.100.16", []string{"b", "wide"}},
		{"198.51.100.32", "198.51.100.63", []string{"wide"}},
		{"198.51.100.100", "198.51.100.100", []string{"a", "wide"}},
		{"198.51.101.0", "198.51.101.255", nil},
		{"2001:db8::80", "2001:db8::1:0", []string{"v6"}},
		{"2001:db8::100", "2001:db8::1:0", nil},
		{"198.51.100.5", "198.51.100.1", nil}, // empty interval
	}
	for _, tc := range tests {
		var got []string
		x.Overlapping(netip.MustParseAddr(tc.first), netip.MustParseAddr(tc.last), func(k string, _ Range) bool {
			got = append(got, k)
			return true
		})
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("%s-%s: got %v, want %v", tc.first, tc.last, got, tc.want)
		}
	}
	if x.Keys() != 4 || x.Len() != 5 {
		t.Errorf("keys %d ranges %d, want 4 and 5 (invalid ranges left out)", x.Keys(), x.Len())
	}
	x.Delete("wide")
	x.Set("a", []Range{r("198.51.100.200", "198.51.100.200")})
	var got []string
	x.Overlapping(netip.MustParseAddr("198.51.100.0"), netip.MustParseAddr("198.51.100.255"), func(k string, _ Range) bool {
		got = append(got, k)
		return true
	})
	if !slices.Equal(got, []string{"b", "a"}) {
		t.Errorf("after delete and replace: got %v, want [b a] in address order", got)
	}
	stops := 0
	x.Overlapping(netip.MustParseAddr("198.51.100.0"), netip.MustParseAddr("198.51.100.255"), func(string, Range) bool { stops++; return false })
	if stops != 1 {
		t.Errorf("fn returning false should stop the search; called %d times", stops)
	}
}

// TestIndexMatchesBruteForce applies random Sets and Deletes, overlapping
// ranges included, and compares every answer with a scan of all ranges.
func TestIndexMatchesBruteForce(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	x := NewIndex[int]()
	model := map[int][]Range{}
	randRange := func() Range {
		a, b := rng.IntN(300), rng.IntN(300)
		if (a < 256) != (b < 256) {
			b = a
		}
		if a > b {
			a, b = b, a
		}
		return Range{First: indexAddr(a), Last: indexAddr(b)}
	}
	for step := range 3000 {
		key := rng.IntN(60)
		if rng.IntN(4) == 0 {
			x.Delete(key)
			delete(model, key)
		} else {
			rs := make([]Range, 1+rng.IntN(3))
			for i := range rs {
				rs[i] = randRange()
			}
			x.Set(key, rs)
			model[key] = rs
		}
		q := randRange()
		var got, want []string
		x.Overlapping(q.First, q.Last, func(k int, r Range) bool {
			got = append(got, fmt.Sprint(k, r.First, r.Last))
			return true
		})
		for k, rs := range model {
			for _, r := range rs {
				if r.First.Compare(q.Last) <= 0 && q.First.Compare(r.Last) <= 0 {
					want = append(want, fmt.Sprint(k, r.First, r.Last))
				}
			}
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("step %d, query %s-%s: got %v, want %v", step, q.First, q.Last, got, want)
		}
		n := 0
		for _, rs := range model {
			n += len(rs)
		}
		if x.Len() != n || x.Keys() != len(model) {
			t.Fatalf("step %d: %d ranges of %d keys, want %d of %d", step, x.Len(), x.Keys(), n, len(model))
		}
	}
}

// BenchmarkIndex: one pool replaced and one overlap query, with n pools of
// one /28 each held. Compare ns/op across n: it should grow like log n.
func BenchmarkIndex(b *testing.B) {
	pool := func(i int) []Range {
		base := U128From(netip.MustParseAddr("198.18.0.0")).AddSmall(uint64(i) * 16)
		return []Range{{First: base.Addr(true), Last: base.AddSmall(15).Addr(true)}}
	}
	for _, n := range []int{10, 1000, 5000, 50000} {
		b.Run(fmt.Sprintf("pools=%d", n), func(b *testing.B) {
			x := NewIndex[int]()
			for i := range n {
				x.Set(i, pool(i))
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				k := i % n
				x.Set(k, pool(k))
				r := pool((i * 7919) % n)[0]
				x.Overlapping(r.First, r.Last, func(int, Range) bool { return true })
				i++
			}
		})
	}
}
