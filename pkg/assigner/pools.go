package assigner

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/ipam"
)

// poolIndex is a configuration prepared for pool choice; built once per
// configuration change.
type poolIndex struct {
	cfg *config.Config
	// restricted are the autoAssign pools with a serviceAllocation, lowest
	// priority value first, priority 0 (unset) last, then by name.
	restricted []*config.Pool
	// open are the autoAssign pools without a serviceAllocation, by name.
	open []string
	// nsSelectors is true when some pool selects namespaces by label, so
	// pool choice needs the Service's namespace labels.
	nsSelectors bool
}

func newPoolIndex(cfg *config.Config) *poolIndex {
	x := &poolIndex{cfg: cfg}
	for _, name := range cfg.PoolNames { // sorted
		p := cfg.Pools[name]
		if sa := p.ServiceAllocation; sa != nil && len(sa.NamespaceSelectors) > 0 {
			x.nsSelectors = true
		}
		if !p.AutoAssign {
			continue
		}
		if p.ServiceAllocation == nil {
			x.open = append(x.open, name)
		} else {
			x.restricted = append(x.restricted, p)
		}
	}
	slices.SortStableFunc(x.restricted, func(a, b *config.Pool) int {
		pa, pb := a.ServiceAllocation.Priority, b.ServiceAllocation.Priority
		if (pa == 0) != (pb == 0) { // unset last
			return cmp.Compare(b2i(pa == 0), b2i(pb == 0))
		}
		if c := cmp.Compare(pa, pb); c != 0 {
			return c
		}
		return strings.Compare(a.Name, b.Name)
	})
	return x
}

// poolChoice is where a Service may get addresses from.
type poolChoice struct {
	// Pinned is the pool named by the pool annotation, resolved to an
	// existing pool; "" when the Service names none.
	Pinned string
	// Alloc are the pools to allocate from, in order of preference. Empty
	// for explicit addresses, which pick their own pool. It may be shared
	// with the poolIndex: read only.
	Alloc []string
	// Note is set when the pool annotation matched a pool only ignoring
	// case; the controller puts it in an event.
	Note string
}

// choose decides the pools a Service may allocate from:
//   - the pool annotation: that pool only (autoAssign does not matter),
//     provided its serviceAllocation admits the Service;
//   - otherwise the autoAssign pools whose serviceAllocation admits the
//     Service, by priority (lower first, unset last) then name, followed by
//     the autoAssign pools without serviceAllocation, by name.
func (x *poolIndex) choose(in *intent, nsLabels map[string]string) (poolChoice, error) {
	var ch poolChoice
	if in.Pool != "" {
		name, note, err := x.resolve(in.Pool, in.PoolFrom)
		if err != nil {
			return ch, err
		}
		ch.Pinned, ch.Note = name, note
		if why := x.refuses(x.cfg.Pools[name], "", in, nsLabels); why != "" {
			return ch, userErrorf("ipaddresspool %q (%s) does not serve this Service: %s", name, in.PoolFrom, why)
		}
		ch.Alloc = []string{name}
		return ch, nil
	}
	if len(in.IPs) > 0 {
		return ch, nil
	}
	for _, p := range x.restricted {
		if p.ServiceAllocation.Matches(in.Namespace, nsLabels, in.Labels) {
			ch.Alloc = append(ch.Alloc, p.Name)
		}
	}
	if len(ch.Alloc) == 0 {
		// The common case, shared rather than copied: there may be
		// thousands of open pools. Callers never modify Alloc.
		ch.Alloc = x.open
		return ch, nil
	}
	ch.Alloc = append(ch.Alloc, x.open...)
	return ch, nil
}

// resolve finds the pool a pool annotation names. Kubernetes names are
// lower case, so a value such as "IPPool-B" (written for MetalLB's legacy
// ConfigMap, where pool names could have capitals) can never name a pool
// exactly; when exactly one pool matches it ignoring case, that pool is
// used and the note says so. Anything else is an error naming the value.
func (x *poolIndex) resolve(name, from string) (string, string, error) {
	if _, ok := x.cfg.Pools[name]; ok {
		return name, "", nil
	}
	var folded []string
	for _, n := range x.cfg.PoolNames {
		if strings.EqualFold(n, name) {
			folded = append(folded, n)
		}
	}
	switch len(folded) {
	case 1:
		return folded[0], fmt.Sprintf("%s %q names no pool exactly; using ipaddresspool %q, the only pool whose name matches ignoring case (Kubernetes names are lower case). Change the annotation to %q to silence this event",
			from, name, folded[0], folded[0]), nil
	case 0:
		return "", "", userErrorf("%s names ipaddresspool %q, which does not exist (pools: %s); create it or fix the annotation", from, name, listNames(x.cfg.PoolNames, 10))
	}
	return "", "", userErrorf("%s %q matches ipaddresspools %s ignoring case; write the exact name", from, name, strings.Join(folded, ", "))
}

// refuses returns "" when the Service may hold addresses of pool p (keep
// them across restarts and configuration changes, or ask for them
// explicitly), or why not: p must admit it by its serviceAllocation, and be
// the pinned pool when there is one. autoAssign does not matter: it only
// governs new automatic allocations.
func (x *poolIndex) refuses(p *config.Pool, pinned string, in *intent, nsLabels map[string]string) string {
	if pinned != "" && p.Name != pinned {
		return fmt.Sprintf("the Service asks for ipaddresspool %q with %s", pinned, in.PoolFrom)
	}
	if sa := p.ServiceAllocation; !sa.Matches(in.Namespace, nsLabels, in.Labels) {
		return "its serviceAllocation " + describeAllocation(sa)
	}
	return ""
}

// poolOf returns the pool containing every address of ips (nil when one is
// in no pool) or an error naming the address outside any pool.
func (x *poolIndex) poolOf(ips []netip.Addr) (*config.Pool, error) {
	var pool *config.Pool
	for _, ip := range ips {
		p := x.cfg.PoolFor(ip)
		if p == nil {
			return nil, kindErrorf(ipam.ErrNotInPool, "%s is not in any ipaddresspool", ip)
		}
		if pool != nil && p != pool {
			return nil, kindErrorf(ipam.ErrDifferentPools, "%s is in ipaddresspool %q but %s is in %q; all of a Service's addresses must come from one pool", ips[0], pool.Name, ip, p.Name)
		}
		pool = p
	}
	return pool, nil
}

func describeAllocation(sa *config.ServiceAllocation) string {
	var where []string
	if len(sa.Namespaces) > 0 {
		where = append(where, "namespaces "+listNames(slices.Sorted(maps.Keys(sa.Namespaces)), 10))
	}
	for _, s := range sa.NamespaceSelectors {
		where = append(where, fmt.Sprintf("namespaces labelled %q", s.String()))
	}
	var labelled []string
	for _, s := range sa.ServiceSelectors {
		labelled = append(labelled, fmt.Sprintf("%q", s.String()))
	}
	var out string
	switch {
	case len(where) > 0 && len(labelled) > 0:
		out = "admits only Services in " + strings.Join(where, " or ") + " that are labelled " + strings.Join(labelled, " or ")
	case len(where) > 0:
		out = "admits only Services in " + strings.Join(where, " or ")
	case len(labelled) > 0:
		out = "admits only Services labelled " + strings.Join(labelled, " or ")
	default:
		return "admits every Service"
	}
	return out + "; label the Service or its namespace accordingly, or use another pool"
}

// listNames prints names for a message, at most max of them.
func listNames(names []string, max int) string {
	if len(names) == 0 {
		return "none"
	}
	if len(names) <= max {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:max], ", "), len(names)-max)
}

// ipamPools converts the configuration's pools for the allocator.
func ipamPools(cfg *config.Config) []ipam.Pool {
	out := make([]ipam.Pool, 0, len(cfg.PoolNames))
	for _, name := range cfg.PoolNames {
		p := cfg.Pools[name]
		ip := ipam.Pool{Name: name, AvoidBuggyIPs: p.AvoidBuggyIPs, Ranges: make([]ipam.Range, len(p.Ranges))}
		for i, r := range p.Ranges {
			ip.Ranges[i] = ipam.Range{First: r.First, Last: r.Last}
		}
		out = append(out, ip)
	}
	return out
}

// sameAllocation reports whether two versions of a pool allocate alike:
// same autoAssign, avoidBuggyIPs, ranges and serviceAllocation.
func sameAllocation(a, b *config.Pool) bool {
	if a.AutoAssign != b.AutoAssign || a.AvoidBuggyIPs != b.AvoidBuggyIPs ||
		!slices.EqualFunc(a.Ranges, b.Ranges, func(x, y config.AddrRange) bool { return x.First == y.First && x.Last == y.Last }) {
		return false
	}
	if (a.ServiceAllocation == nil) != (b.ServiceAllocation == nil) {
		return false
	}
	return a.ServiceAllocation == nil || allocationView(a.ServiceAllocation) == allocationView(b.ServiceAllocation)
}

// allocationView is what of a serviceAllocation matters to address
// allocation, as text.
func allocationView(sa *config.ServiceAllocation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d/%v/", sa.Priority, slices.Sorted(maps.Keys(sa.Namespaces)))
	for _, s := range sa.NamespaceSelectors {
		b.WriteString("ns:" + s.String() + ";")
	}
	for _, s := range sa.ServiceSelectors {
		b.WriteString("svc:" + s.String() + ";")
	}
	return b.String()
}

// changedPools returns, sorted, the pools of old and cur that do not
// allocate alike in both: added, removed, or changed in what matters to
// allocation. Only Services holding addresses of those pools (or waiting
// for an address) can be decided differently under cur: a Service keeps
// addresses of a pool that still contains them and still admits it
// (decide), pools never overlap, and a pool annotation naming a pool
// resolves the same while that pool is neither added nor removed.
func changedPools(old, cur *config.Config) []string {
	var out []string
	for _, name := range cur.PoolNames {
		if o := old.Pools[name]; o == nil || !sameAllocation(o, cur.Pools[name]) {
			out = append(out, name)
		}
	}
	for _, name := range old.PoolNames {
		if cur.Pools[name] == nil {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// allocationChanged reports whether going from old to cur can change any
// Service's addresses.
func allocationChanged(old, cur *config.Config) bool {
	return old == nil || len(changedPools(old, cur)) > 0
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
