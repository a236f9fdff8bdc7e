package ipam

// This file holds the structure that makes allocation cheap: for every pool
// range, the addresses in use are kept as a set of maximal "runs" in an AVL
// tree keyed by the run's first address.
//
// Why runs and not a bitmap: an IPv6 /64 pool has 2^64 addresses, so any
// structure proportional to the pool size is out of the question; a set of
// runs costs one tree node per run of consecutive used addresses, which is at
// most the number of used addresses and usually far less (lowest-first
// allocation produces one run per range until services are released).
//
// Why this makes "lowest free address" O(log n) regardless of how full the
// range is: runs are maximal, so the lowest free address is either the first
// usable address of the range or the first usable address after the first
// run. Finding the first run is a walk down the left spine of the tree.
//
// avoidBuggyIPs: with it, the IPv4 addresses ending in .0 and .255 are never
// used. Runs are therefore defined over *usable* addresses only: two runs are
// merged when nothing usable lies between them, even if a .255/.0 pair does.
// Invariants, for every range:
//   - every run [s, e] has s and e in use, and every usable address in [s, e]
//     is in use (unusable ones inside are simply ignored);
//   - between two consecutive runs there is at least one usable free address.
// Both are kept by insert and remove below and checked by checkRuns in tests.

// run is both an interval of used addresses and an AVL node.
type run struct {
	s, e        u128
	left, right *run
	h           int8
}

type runTree struct {
	root *run
	n    int // number of runs, for tests and memory accounting
}

func height(n *run) int8 {
	if n == nil {
		return 0
	}
	return n.h
}

func (n *run) fix() { n.h = 1 + max(height(n.left), height(n.right)) }

func rotateRight(n *run) *run {
	l := n.left
	n.left = l.right
	l.right = n
	n.fix()
	l.fix()
	return l
}

func rotateLeft(n *run) *run {
	r := n.right
	n.right = r.left
	r.left = n
	n.fix()
	r.fix()
	return r
}

func rebalance(n *run) *run {
	n.fix()
	switch bf := height(n.left) - height(n.right); {
	case bf > 1:
		if height(n.left.left) < height(n.left.right) {
			n.left = rotateLeft(n.left)
		}
		return rotateRight(n)
	case bf < -1:
		if height(n.right.right) < height(n.right.left) {
			n.right = rotateRight(n.right)
		}
		return rotateLeft(n)
	}
	return n
}

func insertNode(n, nn *run) *run {
	if n == nil {
		return nn
	}
	if nn.s.Less(n.s) {
		n.left = insertNode(n.left, nn)
	} else {
		n.right = insertNode(n.right, nn)
	}
	return rebalance(n)
}

// removeMin detaches the leftmost node of n. Nodes are relinked, never
// copied, so pointers the caller holds to other runs stay valid.
func removeMin(n *run) (root, min *run) {
	if n.left == nil {
		return n.right, n
	}
	n.left, min = removeMin(n.left)
	return rebalance(n), min
}

func removeNode(n *run, key u128) *run {
	if n == nil {
		return nil
	}
	switch key.Cmp(n.s) {
	case -1:
		n.left = removeNode(n.left, key)
	case 1:
		n.right = removeNode(n.right, key)
	default:
		if n.left == nil {
			return n.right
		}
		if n.right == nil {
			return n.left
		}
		var m *run
		n.right, m = removeMin(n.right)
		m.left, m.right = n.left, n.right
		n.left, n.right = nil, nil
		return rebalance(m)
	}
	return rebalance(n)
}

func (t *runTree) insert(s, e u128) {
	t.root = insertNode(t.root, &run{s: s, e: e, h: 1})
	t.n++
}

func (t *runTree) remove(s u128) {
	t.root = removeNode(t.root, s)
	t.n--
}

func (t *runTree) min() *run {
	n := t.root
	if n == nil {
		return nil
	}
	for n.left != nil {
		n = n.left
	}
	return n
}

// floor returns the run with the greatest start <= x.
func (t *runTree) floor(x u128) *run {
	var best *run
	for n := t.root; n != nil; {
		if x.Less(n.s) {
			n = n.left
		} else {
			best = n
			n = n.right
		}
	}
	return best
}

// after returns the run with the smallest start > x.
func (t *runTree) after(x u128) *run {
	var best *run
	for n := t.root; n != nil; {
		if x.Less(n.s) {
			best = n
			n = n.left
		} else {
			n = n.right
		}
	}
	return best
}

// walk calls f for every run in address order (tests, rebuilds).
func (t *runTree) walk(f func(*run)) {
	var rec func(*run)
	rec = func(n *run) {
		if n == nil {
			return
		}
		rec(n.left)
		f(n)
		rec(n.right)
	}
	rec(t.root)
}

// rangeState is one pool range with its used-address runs.
type rangeState struct {
	first, last u128
	is4         bool
	avoidBuggy  bool // pool.AvoidBuggyIPs && is4: .0/.255 are never used
	pool        *poolState
	idx         int // position in pool.ranges[family] and pool.room[family]
	runs        runTree
	used        uint64 // addresses in use (a shared address counts once)
	buggy       uint64 // addresses skipped by avoidBuggy
}

// isBuggy reports whether an IPv4 address ends in .0 or .255; some old
// firmware treats those as network/broadcast addresses even outside a /24.
func isBuggy(x u128) bool { b := x.Lo & 0xff; return b == 0 || b == 0xff }

func (r *rangeState) usable(x u128) bool { return !r.avoidBuggy || !isBuggy(x) }

// nextUsable returns the lowest usable address >= x (possibly beyond last).
func (r *rangeState) nextUsable(x u128) u128 {
	if !r.avoidBuggy {
		return x
	}
	switch x.Lo & 0xff {
	case 0xff:
		return x.AddSmall(2)
	case 0:
		return x.AddSmall(1)
	}
	return x
}

// prevUsable returns the highest usable address <= x. Only called with an
// in-use address below x, so it never runs below the range.
func (r *rangeState) prevUsable(x u128) u128 {
	if !r.avoidBuggy {
		return x
	}
	switch x.Lo & 0xff {
	case 0:
		return x.SubSmall(2)
	case 0xff:
		return x.SubSmall(1)
	}
	return x
}

// countBuggy counts IPv4 addresses ending in .0 or .255 in [first, last].
func countBuggy(first, last u128) uint64 {
	upTo := func(n, rem uint64) uint64 { // #x in [0, n] with x%256 == rem
		if n < rem {
			return 0
		}
		return (n-rem)/256 + 1
	}
	f, l := first.Lo, last.Lo
	c := upTo(l, 0) + upTo(l, 255)
	if f > 0 {
		c -= upTo(f-1, 0) + upTo(f-1, 255)
	}
	return c
}

// lowestFree returns the lowest usable free address of the range.
func (r *rangeState) lowestFree() (u128, bool) {
	c := r.nextUsable(r.first)
	if r.last.Less(c) {
		return u128{}, false // e.g. a /32 on .0 with avoidBuggyIPs
	}
	m := r.runs.min()
	if m == nil || c.Less(m.s) {
		return c, true
	}
	// m starts at the first usable address; runs are maximal, so the first
	// usable address after m is free (or beyond the range).
	if m.e == r.last {
		return u128{}, false
	}
	c = r.nextUsable(m.e.AddSmall(1))
	if r.last.Less(c) {
		return u128{}, false
	}
	return c, true
}

// full reports whether the range has no usable free address, in O(1):
// runs are maximal, so a full range is exactly one run from the first to
// the last usable address (or has no usable address at all).
func (r *rangeState) full() bool {
	c := r.nextUsable(r.first)
	if r.last.Less(c) {
		return true
	}
	if r.runs.n != 1 {
		return false
	}
	m := r.runs.root
	return m.s == c && (m.e == r.last || r.last.Less(r.nextUsable(m.e.AddSmall(1))))
}

// updateRoom tells the pool whether this range still has room.
func (r *rangeState) updateRoom() {
	if r.pool != nil {
		r.pool.room[famIndex(r.is4)].set(r.idx, !r.full())
	}
}

func famIndex(is4 bool) int {
	if is4 {
		return v4
	}
	return v6
}

// contains reports whether x lies in [first, last].
func (r *rangeState) contains(x u128) bool { return !x.Less(r.first) && !r.last.Less(x) }

// markUsed records x (usable, inside the range, not yet used) as used.
func (r *rangeState) markUsed(x u128) {
	r.used++
	pred := r.runs.floor(x)
	succ := r.runs.after(x)
	// pred.e < x < succ.s here, so the +1s below cannot overflow.
	leftAdj := pred != nil && r.nextUsable(pred.e.AddSmall(1)) == x
	rightAdj := succ != nil && r.nextUsable(x.AddSmall(1)) == succ.s
	switch {
	case leftAdj && rightAdj:
		e := succ.e
		r.runs.remove(succ.s)
		pred.e = e
	case leftAdj:
		pred.e = x
	case rightAdj:
		succ.s = x // order is kept: pred (if any) ends below x
	default:
		r.runs.insert(x, x)
	}
	r.updateRoom()
}

// markFree records the used address x as free again.
func (r *rangeState) markFree(x u128) {
	m := r.runs.floor(x)
	if m == nil || m.e.Less(x) {
		panic("ipam: internal error: freeing an address that is not in use")
	}
	r.used--
	switch {
	case m.s == x && m.e == x:
		r.runs.remove(x)
	case m.s == x:
		m.s = r.nextUsable(x.AddSmall(1))
	case m.e == x:
		m.e = r.prevUsable(x.SubSmall(1))
	default:
		e := m.e
		m.e = r.prevUsable(x.SubSmall(1))
		r.runs.insert(r.nextUsable(x.AddSmall(1)), e)
	}
	r.updateRoom()
}

// available is the number of usable free addresses, saturated to int64.
func (r *rangeState) available() int64 {
	span := r.last.Sub(r.first) // size - 1
	taken := r.buggy + r.used
	if taken == 0 {
		if span.Hi != 0 || span.Lo >= 1<<63-1 {
			return 1<<63 - 1
		}
		return int64(span.Lo) + 1
	}
	// taken <= size, so size - taken = span - (taken-1) >= 0.
	return span.Sub(u128{Lo: taken - 1}).SatInt64()
}
