package ipam

import (
	"errors"
	"math"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/lbstack/lbstack/pkg/iprange"
)

// checkRuns verifies the run-tree invariants of r against the set of used
// addresses (as offsets from r.first, for small ranges) and the AVL balance.
func checkRuns(t testing.TB, r *rangeState) {
	t.Helper()
	var prev *run
	n := 0
	r.runs.walk(func(x *run) {
		n++
		if !r.contains(x.s) || !r.contains(x.e) || x.e.Less(x.s) {
			t.Fatalf("run %v-%v outside range or reversed", x.s, x.e)
		}
		if !r.usable(x.s) || !r.usable(x.e) {
			t.Fatalf("run %v-%v starts or ends on an unusable address", x.s, x.e)
		}
		if prev != nil {
			if !prev.e.Less(x.s) {
				t.Fatalf("runs overlap or are unordered: %v-%v, %v-%v", prev.s, prev.e, x.s, x.e)
			}
			if r.nextUsable(prev.e.AddSmall(1)) == x.s {
				t.Fatalf("runs %v-%v and %v-%v are not maximal", prev.s, prev.e, x.s, x.e)
			}
		}
		prev = x
	})
	if n != r.runs.n {
		t.Fatalf("run count %d, tree says %d", n, r.runs.n)
	}
	if _, ok := r.lowestFree(); ok == r.full() {
		t.Fatalf("full() = %v but lowestFree ok = %v", r.full(), ok)
	}
	if r.pool != nil {
		s := r.pool.room[famIndex(r.is4)]
		if on := s.levels[0][r.idx/64]&(1<<(r.idx%64)) != 0; on == r.full() {
			t.Fatalf("room bit %v, full %v", on, r.full())
		}
	}
	var bal func(*run) int8
	bal = func(x *run) int8 {
		if x == nil {
			return 0
		}
		l, rr := bal(x.left), bal(x.right)
		if l-rr > 1 || rr-l > 1 || x.h != 1+max(l, rr) {
			t.Fatalf("AVL invariant broken at %v", x.s)
		}
		return x.h
	}
	bal(r.runs.root)
}

// TestRunsAgainstNaive drives a range with random take/free operations and
// compares lowestFree, the used count and availability with a plain set.
func TestRunsAgainstNaive(t *testing.T) {
	cases := []struct {
		name        string
		first, last string
		avoid       bool
	}{
		{"v4 small", "198.51.100.0", "198.51.100.63", false},
		{"v4 across /24s avoid", "198.51.99.250", "198.51.101.5", true},
		{"v4 across /24s", "198.51.99.250", "198.51.101.5", false},
		{"v4 top of space avoid", "255.255.254.240", "255.255.255.255", true},
		{"v4 bottom avoid", "0.0.0.0", "0.0.1.10", true},
		{"v6 top of space", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffc0", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", false},
		{"v6 carry", "2001:db8::ffff:ffff:ffff:ffe0", "2001:db8:0:1::1f", false},
		{"single .0 avoid", "198.51.100.0", "198.51.100.0", true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f, l := netip.MustParseAddr(tc.first), netip.MustParseAddr(tc.last)
			r := &rangeState{first: iprange.U128From(f), last: iprange.U128From(l), is4: f.Is4(), avoidBuggy: tc.avoid && f.Is4()}
			if r.avoidBuggy {
				r.buggy = countBuggy(r.first, r.last)
			}
			size := int(r.last.Sub(r.first).Lo) + 1
			at := func(i int) u128 { return r.first.AddSmall(uint64(i)) }
			used := make([]bool, size)
			var usable []int
			for i := range size {
				if r.usable(at(i)) {
					usable = append(usable, i)
				}
			}
			if got := uint64(size - len(usable)); got != r.buggy {
				t.Fatalf("countBuggy = %d, naive %d", r.buggy, got)
			}
			rng := rand.New(rand.NewPCG(1, uint64(size)))
			nUsed := 0
			for step := range 20000 {
				// naive lowest free
				want := -1
				for _, i := range usable {
					if !used[i] {
						want = i
						break
					}
				}
				got, ok := r.lowestFree()
				if (want >= 0) != ok || (ok && got != at(want)) {
					t.Fatalf("step %d: lowestFree = %v,%v want %d", step, got, ok, want)
				}
				if av := r.available(); av != int64(len(usable)-nUsed) {
					t.Fatalf("step %d: available = %d want %d", step, av, len(usable)-nUsed)
				}
				if len(usable) == 0 {
					return
				}
				i := usable[rng.IntN(len(usable))]
				switch {
				case rng.IntN(3) == 0 && want >= 0: // allocate lowest, like Assign
					r.markUsed(at(want))
					used[want] = true
					nUsed++
				case used[i]:
					r.markFree(at(i))
					used[i] = false
					nUsed--
				default:
					r.markUsed(at(i))
					used[i] = true
					nUsed++
				}
				if r.used != uint64(nUsed) {
					t.Fatalf("used = %d want %d", r.used, nUsed)
				}
				if step%97 == 0 {
					checkRuns(t, r)
				}
			}
			checkRuns(t, r)
		})
	}
}

func TestAvailableSaturates(t *testing.T) {
	all := &rangeState{first: u128{}, last: u128{Hi: math.MaxUint64, Lo: math.MaxUint64}}
	if got := all.available(); got != math.MaxInt64 {
		t.Fatalf("::/0 available = %d", got)
	}
	all.markUsed(u128{})
	if got := all.available(); got != math.MaxInt64 {
		t.Fatalf("::/0 minus one available = %d", got)
	}
	// exactly 2^63 addresses minus one used = MaxInt64
	r := &rangeState{first: u128{}, last: u128{Hi: 0, Lo: 1<<63 - 1}}
	if got := r.available(); got != math.MaxInt64 {
		t.Fatalf("2^63 available = %d", got)
	}
	r.markUsed(u128{Hi: 0, Lo: 5})
	if got := r.available(); got != math.MaxInt64 {
		t.Fatalf("2^63-1 available = %d", got)
	}
	r.markUsed(u128{Hi: 0, Lo: 6})
	if got := r.available(); got != math.MaxInt64-1 {
		t.Fatalf("2^63-2 available = %d", got)
	}
}

func TestRangeSet(t *testing.T) {
	for _, n := range []int{1, 5, 64, 65, 4096, 4097, 300000} {
		s := newRangeSet(n)
		on := map[int]bool{}
		naive := func() int {
			best := -1
			for i := range on {
				if best < 0 || i < best {
					best = i
				}
			}
			return best
		}
		rnd := rand.New(rand.NewPCG(7, uint64(n)))
		for range 3000 {
			i := rnd.IntN(n)
			if rnd.IntN(2) == 0 {
				s.set(i, true)
				on[i] = true
			} else {
				s.set(i, false)
				delete(on, i)
			}
			if got, want := s.first(), naive(); got != want {
				t.Fatalf("n=%d: first = %d, want %d", n, got, want)
			}
		}
	}
}

// A pool of many single addresses does not get slower as it fills: the
// summary bitmap jumps over full ranges.
func TestManySmallRanges(t *testing.T) {
	var ranges []Range
	for i := range 1000 {
		a := u128{Lo: uint64(0xc6120000 + 4*i)}.Addr(true) // 198.18.x.y, every 4th address
		ranges = append(ranges, Range{a, a})
	}
	a := New()
	a.SetPools([]Pool{{Name: "p", Ranges: ranges}})
	for i := range 1000 {
		got, err := a.Assign(Request{Service: Service{Key: "ns/" + netip.AddrFrom4([4]byte{0, 0, byte(i >> 8), byte(i)}).String()}, Pools: []string{"p"}, Families: []Family{IPv4}})
		if err != nil || got.IPs[0] != ranges[i].First {
			t.Fatalf("%d: %v %v", i, got, err)
		}
	}
	if _, err := a.Assign(Request{Service: Service{Key: "ns/x"}, Pools: []string{"p"}, Families: []Family{IPv4}}); !errors.Is(err, ErrPoolExhausted) {
		t.Fatal(err)
	}
	a.Release("ns/0.0.3.200")
	if got, _ := a.Assign(Request{Service: Service{Key: "ns/x"}, Pools: []string{"p"}, Families: []Family{IPv4}}); got.IPs[0] != ranges[3*256+200].First {
		t.Fatalf("got %v", got)
	}
}
