package iprange

import (
	"math/rand/v2"
	"net/netip"
)

// Index is a dynamic interval index: each key (a pool name, say) owns some
// address ranges, and Overlapping finds the keys whose ranges intersect an
// interval. Set, Delete and Overlapping take O(log n) expected time (plus
// the matches found), n being the number of ranges held: the admission
// webhook keeps one up to date from watch events and asks it, per request,
// for the few pools an object can conflict with, so that admission does not
// slow down as a cluster's pools grow.
//
// It is a treap ordered by first address, each node holding the highest
// last address of its subtree, so that a search skips every subtree that
// ends before the interval. Ranges may overlap (a configuration in error
// has overlapping pools, and the webhook must still see them). An Index is
// not safe for concurrent use.
type Index[K comparable] struct {
	root  *indexNode[K]
	byKey map[K][]*indexNode[K]
	seq   uint64
	size  int
}

type indexNode[K comparable] struct {
	first, last netip.Addr
	// seq breaks ties between ranges with the same first address.
	seq   uint64
	prio  uint64
	key   K
	reach netip.Addr // highest last address in this subtree
	left  *indexNode[K]
	right *indexNode[K]
}

// NewIndex returns an empty index.
func NewIndex[K comparable]() *Index[K] {
	return &Index[K]{byKey: make(map[K][]*indexNode[K])}
}

// Len returns the number of ranges held.
func (x *Index[K]) Len() int { return x.size }

// Keys returns the number of keys holding at least one range.
func (x *Index[K]) Keys() int { return len(x.byKey) }

// Set makes ranges the ranges of key, replacing those it had. Ranges that
// are not valid (zero addresses, mixed families, First after Last) are
// left out.
func (x *Index[K]) Set(key K, ranges []Range) {
	x.Delete(key)
	var nodes []*indexNode[K]
	for _, r := range ranges {
		if !r.First.IsValid() || !r.Last.IsValid() || r.First.Is4() != r.Last.Is4() || r.First.Compare(r.Last) > 0 {
			continue
		}
		x.seq++
		n := &indexNode[K]{first: r.First, last: r.Last, seq: x.seq, prio: rand.Uint64(), key: key, reach: r.Last}
		l, rest := split(x.root, n.first, n.seq)
		x.root = merge(merge(l, n), rest)
		nodes = append(nodes, n)
	}
	if len(nodes) > 0 {
		x.byKey[key] = nodes
		x.size += len(nodes)
	}
}

// Delete removes every range of key.
func (x *Index[K]) Delete(key K) {
	for _, n := range x.byKey[key] {
		l, rest := split(x.root, n.first, n.seq)
		_, r := split(rest, n.first, n.seq+1)
		x.root = merge(l, r)
		x.size--
	}
	delete(x.byKey, key)
}

// Overlapping calls fn with the key of every range that intersects
// first..last, in order of first address, until fn returns false. A key
// with several such ranges is passed once per range.
func (x *Index[K]) Overlapping(first, last netip.Addr, fn func(key K, r Range) bool) {
	if !first.IsValid() || !last.IsValid() || first.Compare(last) > 0 {
		return
	}
	overlapping(x.root, first, last, fn)
}

func overlapping[K comparable](n *indexNode[K], first, last netip.Addr, fn func(K, Range) bool) bool {
	if n == nil || n.reach.Compare(first) < 0 {
		return true
	}
	if !overlapping(n.left, first, last, fn) {
		return false
	}
	if n.first.Compare(last) > 0 {
		// Every node to the right starts later still.
		return true
	}
	if n.last.Compare(first) >= 0 && !fn(n.key, Range{First: n.first, Last: n.last}) {
		return false
	}
	return overlapping(n.right, first, last, fn)
}

// before reports whether n sorts before (first, seq).
func (n *indexNode[K]) before(first netip.Addr, seq uint64) bool {
	if c := n.first.Compare(first); c != 0 {
		return c < 0
	}
	return n.seq < seq
}

func (n *indexNode[K]) update() {
	n.reach = n.last
	if n.left != nil && n.left.reach.Compare(n.reach) > 0 {
		n.reach = n.left.reach
	}
	if n.right != nil && n.right.reach.Compare(n.reach) > 0 {
		n.reach = n.right.reach
	}
}

// split divides t into the nodes before (first, seq) and the others.
func split[K comparable](t *indexNode[K], first netip.Addr, seq uint64) (l, r *indexNode[K]) {
	if t == nil {
		return nil, nil
	}
	if t.before(first, seq) {
		t.right, r = split(t.right, first, seq)
		t.update()
		return t, r
	}
	l, t.left = split(t.left, first, seq)
	t.update()
	return l, t
}

// merge joins l and r, every node of l sorting before every node of r.
func merge[K comparable](l, r *indexNode[K]) *indexNode[K] {
	switch {
	case l == nil:
		return r
	case r == nil:
		return l
	case l.prio > r.prio:
		l.right = merge(l.right, r)
		l.update()
		return l
	default:
		r.left = merge(l, r.left)
		r.update()
		return r
	}
}
