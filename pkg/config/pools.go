package config

import (
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/lbstack/lbstack/api/v1beta1"
)

// buildPools parses every pool, builds the sorted interval index of all
// their ranges and reports overlaps, within a pool and across pools, in one
// O(n log n) sweep.
func (b *builder) buildPools(namespaces []corev1.Namespace) {
	b.poolExists = make(map[string]bool, len(b.poolObjs))
	b.poolByName = make(map[string]*Pool, len(b.poolObjs))
	var spans []span
	for _, obj := range b.poolObjs {
		b.poolExists[obj.Name] = true
		p := b.buildPool(obj, namespaces)
		idx := len(b.pools)
		b.pools = append(b.pools, p)
		b.poolByName[p.Name] = p
		for k, r := range p.Ranges {
			spans = append(spans, span{first: r.First, last: r.Last, pool: idx, entry: k})
		}
	}
	b.index = newRangeIndex(spans)
	b.reportOverlaps()
	b.poolNames = make([]string, 0, len(b.pools))
	for _, p := range b.pools {
		b.poolNames = append(b.poolNames, p.Name)
	}
	slices.Sort(b.poolNames)
}

func (b *builder) buildPool(obj *v1beta1.IPAddressPool, namespaces []corev1.Namespace) *Pool {
	ref := ObjectRef{Kind: KindIPAddressPool, Name: obj.Name}
	p := &Pool{
		Name:          obj.Name,
		AutoAssign:    obj.Spec.AutoAssign == nil || *obj.Spec.AutoAssign,
		AvoidBuggyIPs: obj.Spec.AvoidBuggyIPs,
		Labels:        maps.Clone(obj.Labels),
	}
	if len(obj.Spec.Addresses) == 0 {
		b.c.errorf(ref, "spec.addresses", nil, "a pool needs at least one address range")
	}
	var spans []span
	for i, s := range obj.Spec.Addresses {
		r, hostBits, err := parseRange(s)
		if err != nil {
			b.c.errorf(ref, field("spec.addresses[%d]", i), nil, "%v", err)
			continue
		}
		r.Index = i
		if hostBits {
			// MetalLB (net.ParseCIDR) masks such a prefix silently; say what
			// the pool really holds.
			b.c.warnf(ref, field("spec.addresses[%d]", i), nil, "%s has host bits set; the pool holds %s", strings.TrimSpace(s), r.CIDRs[0])
		}
		spans = append(spans, span{first: r.First, last: r.Last, entry: len(p.Ranges)})
		p.Ranges = append(p.Ranges, r)
		p.CIDRs = append(p.CIDRs, r.CIDRs...)
		if r.Is4() {
			p.HasIPv4 = true
		} else {
			p.HasIPv6 = true
		}
	}
	p.index = newRangeIndex(spans)
	p.ServiceAllocation = b.buildServiceAllocation(ref, obj.Spec.AllocateTo, namespaces)
	return p
}

func (b *builder) buildServiceAllocation(ref ObjectRef, sa *v1beta1.ServiceAllocation, namespaces []corev1.Namespace) *ServiceAllocation {
	if sa == nil {
		return nil
	}
	out := &ServiceAllocation{
		Priority:          sa.Priority,
		Namespaces:        make(map[string]bool, len(sa.Namespaces)),
		MatchedNamespaces: make(map[string]bool, len(sa.Namespaces)),
	}
	first := make(map[string]int, len(sa.Namespaces))
	for i, ns := range sa.Namespaces {
		f := field("spec.serviceAllocation.namespaces[%d]", i)
		if j, dup := first[ns]; dup {
			b.c.errorf(ref, f, nil, "namespace %q is listed twice (also spec.serviceAllocation.namespaces[%d])", ns, j)
			continue
		}
		first[ns] = i
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			// No namespace can have this name: the entry could never match.
			b.c.errorf(ref, f, nil, "%q is not a valid namespace name: %s", ns, strings.Join(errs, "; "))
			continue
		}
		out.Namespaces[ns] = true
		out.MatchedNamespaces[ns] = true
	}
	out.NamespaceSelectors = parseSelectors(&b.c, ref, "spec.serviceAllocation.namespaceSelectors", sa.NamespaceSelectors)
	out.ServiceSelectors = parseSelectors(&b.c, ref, "spec.serviceAllocation.serviceSelectors", sa.ServiceSelectors)
	if len(out.NamespaceSelectors) > 0 {
		for i := range namespaces {
			if anySelectorMatches(out.NamespaceSelectors, namespaces[i].Labels) {
				out.MatchedNamespaces[namespaces[i].Name] = true
			}
		}
	}
	return out
}

// reportOverlaps sweeps the sorted index once, keeping the span that
// reaches furthest so far: a span starting at or before that reach overlaps
// it. Each overlapping span is reported once, against the span it overlaps,
// on the later of the two in input order.
func (b *builder) reportOverlaps() {
	spans := b.index.spans
	reach := -1
	for i, s := range spans {
		if reach >= 0 && s.first.Compare(spans[reach].last) <= 0 {
			b.reportOverlap(s, spans[reach])
		}
		if reach < 0 || s.last.Compare(spans[reach].last) > 0 {
			reach = i
		}
	}
}

func (b *builder) reportOverlap(x, y span) {
	// Attribute to the later one in input order (the object under
	// admission, which webhooks put last).
	if x.pool < y.pool || (x.pool == y.pool && x.entry < y.entry) {
		x, y = y, x
	}
	px, py := b.pools[x.pool], b.pools[y.pool]
	rx, ry := px.Ranges[x.entry], py.Ranges[y.entry]
	ref := ObjectRef{Kind: KindIPAddressPool, Name: px.Name}
	f := field("spec.addresses[%d]", rx.Index)
	if x.pool == y.pool {
		b.c.errorf(ref, f, nil, "%s overlaps spec.addresses[%d] %s of the same pool",
			strings.TrimSpace(rx.Spec), ry.Index, strings.TrimSpace(ry.Spec))
		return
	}
	other := ObjectRef{Kind: KindIPAddressPool, Name: py.Name}
	b.c.errorf(ref, f, []ObjectRef{other}, "%s overlaps %s of %s",
		strings.TrimSpace(rx.Spec), strings.TrimSpace(ry.Spec), other)
}
