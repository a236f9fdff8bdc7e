// Package ipam is lbstack's LoadBalancer address allocator. It is pure Go
// (no Kubernetes imports): the Service controller translates Services and the
// validated configuration into calls on an Allocator.
//
// # Division of labour
//
// The controller decides which pools a Service may use and in which order
// (Request.Pools: the pool annotation, serviceAllocation matching and
// priority, autoAssign, deterministic name order) and what the Service
// looks like for sharing purposes (Service). ipam owns the addresses:
// which are free, who holds which, whether two Services may share one, and
// the per-pool counters.
//
// # Semantics (MetalLB's allocator, made deterministic)
//
//   - Inside a pool, the lowest free address is given first; a pool's ranges
//     are visited in address order (IPv4 and IPv6 separately).
//   - AvoidBuggyIPs: IPv4 addresses ending in .0 or .255 are never given out,
//     not even when requested explicitly, and are not counted as available.
//   - Explicit addresses (Request.IPs): at most one per family, all in one
//     pool, and that pool must be among Request.Pools.
//   - Sharing: an address held by one service may be given to another only if
//     both have the same non-empty SharingKey, the same BackendKey, and no
//     (protocol, port) pair in common. A sharing service that asks without
//     explicit addresses first gets the lowest address of the pool already
//     held under its sharing key that it may join; only if there is none does
//     it get the lowest free address.
//   - Dual stack: see Request.
//   - Stability: an assignment that still matches the request is kept
//     (Assign is idempotent); SetPools keeps every assignment whose addresses
//     are still inside one pool, whatever that pool is now called.
//
// Everything is deterministic: no result depends on map iteration order.
//
// # Where this differs from MetalLB (on purpose)
//
//   - Determinism: MetalLB's choice among shareable addresses follows Go map
//     order; here it is the lowest such address.
//   - Assign and Claim are all-or-nothing: on error the service keeps what it
//     held. MetalLB clears the old assignment first; the controller can do
//     the same with Release when it wants MetalLB's behaviour.
//   - PreferDualStack with no pool holding both families falls back to the
//     first family, then to the second (MetalLB only tries what it is told).
//   - An explicit .0/.255 address in an AvoidBuggyIPs pool fails with a
//     message saying so, not a generic "not allowed by config".
//   - Errors are typed (see the Err* sentinels and SharingConflictError) and
//     name the pool, address, holder and port involved.
//   - Counters never overflow: they saturate at math.MaxInt64.
//
// # Cost
//
// Per pool range, the used addresses are kept as maximal runs in an AVL tree
// (runs.go), and per pool a summary bitmap says which ranges still have room
// (rangeset.go). Finding the lowest free address of a pool therefore costs
// O(log64 R + log n), taking or freeing a given address O(log n), and finding
// the pool of an explicit address O(log R), where R is the number of ranges
// and n the number of runs in the range (at most the number of addresses in
// use) — independent of how full the pool is and of its size. Memory is
// proportional to the number of addresses in use plus the number of ranges,
// so an IPv6 /64 (or larger) pool costs nothing until used. A sharing service
// looks at the addresses already held under its sharing key, so that step is
// linear in their number (normally one). SetPools rebuilds in O(m log m) for
// m addresses in use.
package ipam

import (
	"cmp"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/lbstack/lbstack/pkg/iprange"
)

// Range is an inclusive address range of one family.
type Range struct{ First, Last netip.Addr }

// Pool is an address pool as validated by pkg/config.
type Pool struct {
	Name string
	// Ranges must not overlap each other or another pool's ranges (pkg/config
	// validates this; see ValidatePools). Order does not matter: addresses
	// are handed out in address order.
	Ranges []Range
	// AvoidBuggyIPs: never hand out IPv4 addresses ending in .0 or .255.
	AvoidBuggyIPs bool
}

// Port is one (protocol, port) pair of a Service. Protocol is "TCP", "UDP"
// or "SCTP"; it is upper-cased, and empty means "TCP" (the Kubernetes
// default).
type Port struct {
	Protocol string
	Port     int32
}

// Service is what ipam needs to know about a Service to decide sharing.
type Service struct {
	Key string // "namespace/name"; must not be empty
	// SharingKey is the metallb.io/allow-shared-ip (or
	// metallb.universe.tf/allow-shared-ip) value; "" means no sharing.
	SharingKey string
	Ports      []Port
	// BackendKey identifies the endpoints behind the Service for sharing.
	// The rule is MetalLB's: two services may share an address only if
	// their BackendKeys are equal. The controller passes the selector
	// (labels.Set(selector).String()) for externalTrafficPolicy Local and ""
	// for Cluster, so two Cluster services always pass this check, two Local
	// services pass only with identical selectors, and a Local service never
	// shares with a Cluster one (a Local service is only announced from the
	// nodes with its endpoints, which must then be right for both).
	BackendKey string
}

// Family is an IP family.
type Family int

const (
	IPv4 Family = 4
	IPv6 Family = 6
)

func (f Family) String() string {
	switch f {
	case IPv4:
		return "IPv4"
	case IPv6:
		return "IPv6"
	}
	return fmt.Sprintf("Family(%d)", int(f))
}

// Request asks for addresses for one Service.
type Request struct {
	Service Service
	// IPs are explicit addresses (metallb.io/loadBalancerIPs or
	// spec.loadBalancerIP): at most one per family, all from one pool, which
	// must be in Pools. Empty: allocate from Pools.
	IPs []netip.Addr
	// Pools are the candidate pools in preference order; for explicit IPs,
	// the pools the Service may use. Unknown names are reported
	// (ErrUnknownPool) but do not stop the other candidates from being tried.
	Pools []string
	// Families wanted, in the Service's order (spec.ipFamilies), e.g.
	// [IPv4] or [IPv4, IPv6]. May be empty only with explicit IPs, which
	// then define the families.
	//
	// With two families: the first candidate pool that can provide both is
	// used. If there is none:
	//   - Required (RequireDualStack): the request fails;
	//   - otherwise (PreferDualStack): the first pool that can provide the
	//     first family is used, and failing that, the first pool that can
	//     provide the second family. The result then has one address.
	// With explicit IPs, Required demands one address per family, and every
	// explicit address must be of a family in Families.
	Families []Family
	Required bool
}

// Assignment is the result of Assign: the pool and the addresses, IPv4
// first.
type Assignment struct {
	Pool string
	IPs  []netip.Addr
}

// PoolStats are a pool's counters. A shared address counts once; addresses
// skipped by AvoidBuggyIPs are neither assigned nor available. Values
// saturate at math.MaxInt64 (an IPv6 /64 has 2^64 addresses).
type PoolStats struct {
	AssignedIPv4, AssignedIPv6   int64
	AvailableIPv4, AvailableIPv6 int64
}

const (
	v4 = 0 // family indexes
	v6 = 1
)

var famNames = [2]string{"IPv4", "IPv6"}

type poolState struct {
	spec       Pool // as given to SetPools, normalized
	name       string
	avoidBuggy bool
	ranges     [2][]*rangeState // per family, in address order
	room       [2]*rangeSet     // per family: which ranges have a free address
	svcs       map[string]bool  // keys of the services holding addresses here
}

// addrRecord is one address in use, with the services holding it.
type addrRecord struct {
	ip      netip.Addr
	u       u128
	rng     *rangeState
	holders []*svcRecord  // sorted by service key; all share SharingKey and BackendKey
	hbuf    [1]*svcRecord // backs holders while unshared: one allocation less per address
}

func (ar *addrRecord) fam() int { return famOf(ar.ip) }

type svcRecord struct {
	svc   Service // normalized (see normService)
	pool  *poolState
	addrs []*addrRecord  // IPv4 first
	abuf  [2]*addrRecord // backs addrs
}

// choice is an address picked for an assignment but not yet committed.
type choice struct {
	ip   netip.Addr
	u    u128
	rng  *rangeState
	free bool // known to be unused: commit can skip a map lookup
}

// Allocator assigns addresses from pools to services. The zero value is not
// usable; call New. All methods are safe for concurrent use.
type Allocator struct {
	mu       sync.Mutex
	spec     []Pool // the accepted, normalized pool set (to detect no-op SetPools)
	pools    map[string]*poolState
	index    [2][]*rangeState // all ranges per family, in address order
	services map[string]*svcRecord
	addrs    map[netip.Addr]*addrRecord
	// byKey lists, per sharing key, the addresses held under it in address
	// order, so a sharing service can find an address to join without
	// scanning the pool.
	byKey map[string][]*addrRecord
}

// New returns an empty Allocator (no pools).
func New() *Allocator {
	return &Allocator{
		pools:    map[string]*poolState{},
		services: map[string]*svcRecord{},
		addrs:    map[netip.Addr]*addrRecord{},
		byKey:    map[string][]*addrRecord{},
	}
}

func famOf(a netip.Addr) int {
	if a.Is4() {
		return v4
	}
	return v6
}

// normAddr drops the IPv4-in-IPv6 wrapping and zones, so that
// ::ffff:198.51.100.1 and 198.51.100.1 are the same address.
func normAddr(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

func comparePorts(a, b Port) int {
	if c := strings.Compare(a.Protocol, b.Protocol); c != 0 {
		return c
	}
	return cmp.Compare(a.Port, b.Port)
}

// normService upper-cases protocols, defaults them to TCP, and sorts and
// de-duplicates ports so that clash checks are a merge of two sorted lists.
func normService(s Service) Service {
	if portsNormal(s.Ports) {
		return s // the caller's slice; commit copies it before keeping it
	}
	ports := make([]Port, len(s.Ports))
	for i, p := range s.Ports {
		p.Protocol = strings.ToUpper(p.Protocol)
		if p.Protocol == "" {
			p.Protocol = "TCP"
		}
		ports[i] = p
	}
	slices.SortFunc(ports, comparePorts)
	s.Ports = slices.Compact(ports)
	return s
}

func portsNormal(ports []Port) bool {
	for i, p := range ports {
		if p.Protocol == "" || strings.ToUpper(p.Protocol) != p.Protocol || (i > 0 && comparePorts(ports[i-1], p) >= 0) {
			return false
		}
	}
	return true
}

func sameService(a, b Service) bool {
	return a.Key == b.Key && a.SharingKey == b.SharingKey && a.BackendKey == b.BackendKey && slices.Equal(a.Ports, b.Ports)
}

func compareAddrs(a, b netip.Addr) int { return a.Compare(b) } // IPv4 sorts before IPv6

// request is a validated, normalized Request.
type request struct {
	svc      Service
	ips      []netip.Addr // IPv4 first
	pools    []string     // de-duplicated
	fams     []int        // de-duplicated, in preference order
	required bool
}

func validate(req Request) (request, error) {
	var r request
	if req.Service.Key == "" {
		return r, errorf(ErrInvalidRequest, "service key is empty")
	}
	r.svc = normService(req.Service)
	r.required = req.Required
	for _, f := range req.Families {
		var i int
		switch f {
		case IPv4:
			i = v4
		case IPv6:
			i = v6
		default:
			return r, errorf(ErrInvalidRequest, "%s: unknown IP family %s", r.svc.Key, f)
		}
		r.fams = addFam(r.fams, i)
	}
	for _, ip := range req.IPs {
		if !ip.IsValid() {
			return r, errorf(ErrInvalidRequest, "%s: invalid (zero) address requested", r.svc.Key)
		}
		ip = normAddr(ip)
		for _, o := range r.ips {
			if o == ip {
				return r, errorf(ErrInvalidRequest, "%s: address %s requested twice", r.svc.Key, ip)
			}
			if famOf(o) == famOf(ip) {
				return r, errorf(ErrInvalidRequest, "%s: two %s addresses requested (%s, %s); a service gets at most one address per family", r.svc.Key, famNames[famOf(ip)], o, ip)
			}
		}
		if len(r.fams) > 0 && !slices.Contains(r.fams, famOf(ip)) {
			return r, errorf(ErrInvalidRequest, "%s: requested address %s is %s, which is not one of the service's IP families", r.svc.Key, ip, famNames[famOf(ip)])
		}
		r.ips = append(r.ips, ip)
	}
	slices.SortFunc(r.ips, compareAddrs)
	if len(r.ips) > 0 {
		if len(r.fams) == 0 {
			for _, ip := range r.ips {
				r.fams = addFam(r.fams, famOf(ip))
			}
		}
		if r.required && len(r.fams) == 2 && len(r.ips) != 2 {
			return r, errorf(ErrInvalidRequest, "%s: RequireDualStack needs one IPv4 and one IPv6 address, got only %s", r.svc.Key, r.ips[0])
		}
	}
	if len(r.fams) == 0 {
		return r, errorf(ErrInvalidRequest, "%s: no IP family requested", r.svc.Key)
	}
	// Not de-duplicated here: a candidate list may name thousands of
	// pools, and a duplicate changes no choice (a pool that failed fails
	// again). The messages that list pools de-duplicate (distinctPools).
	r.pools = req.Pools
	return r, nil
}

// distinctPools returns pools without duplicates, first occurrence kept;
// pools itself when it has none.
func distinctPools(pools []string) []string {
	seen := make(map[string]bool, len(pools))
	for i, p := range pools {
		if seen[p] { // rare: copy without duplicates
			out := slices.Clone(pools[:i])
			for _, p := range pools[i+1:] {
				if !seen[p] {
					seen[p] = true
					out = append(out, p)
				}
			}
			return out
		}
		seen[p] = true
	}
	return pools
}

// famOrders are the only possible de-duplicated family lists; sharing them
// saves an allocation per request.
var famOrders = [4][]int{{v4}, {v6}, {v4, v6}, {v6, v4}}

func addFam(fams []int, f int) []int {
	switch {
	case len(fams) == 0:
		return famOrders[f]
	case len(fams) == 2 || fams[0] == f:
		return fams
	case f == v6:
		return famOrders[2]
	}
	return famOrders[3]
}

// Assign gives the service addresses according to req, or returns an error
// and leaves the allocator unchanged (the service keeps what it held; the
// controller may Release it, as MetalLB does).
//
// If the service already holds addresses that match req — its pool is among
// req.Pools, they equal req.IPs when those are set, their families match
// (for PreferDualStack any non-empty subset matches: an address is never
// moved just to add a family) and it may still share them under its new
// SharingKey/Ports/BackendKey — it keeps them. Otherwise it gets a new
// assignment as if it held nothing (its old addresses are free for it).
func (a *Allocator) Assign(req Request) (Assignment, error) {
	r, err := validate(req)
	if err != nil {
		return Assignment{}, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.assign(r)
}

// Claim restores an assignment the service had before a restart (its
// status addresses). It succeeds whenever the addresses are still valid for
// req — all in one of req.Pools, of the service's families, not excluded by
// AvoidBuggyIPs, shareable with whoever already claimed them — so a
// controller that claims every existing assignment before its first Assign
// never moves an address. If req.IPs is set it must equal ips (otherwise the
// user changed the Service and the controller should Assign instead).
func (a *Allocator) Claim(req Request, ips []netip.Addr) error {
	if len(ips) == 0 {
		return errorf(ErrInvalidRequest, "%s: no addresses to claim", req.Service.Key)
	}
	if len(req.IPs) > 0 {
		r, err := validate(req)
		if err != nil {
			return err
		}
		want := make([]netip.Addr, len(ips))
		for i, ip := range ips {
			want[i] = normAddr(ip)
		}
		slices.SortFunc(want, compareAddrs)
		if !slices.Equal(want, r.ips) {
			return errorf(ErrInvalidRequest, "%s: claimed addresses %v differ from the requested %v", r.svc.Key, want, r.ips)
		}
	}
	req.IPs = ips
	r, err := validate(req)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	_, err = a.assign(r)
	return err
}

func (a *Allocator) assign(r request) (Assignment, error) {
	held := a.services[r.svc.Key]
	if held != nil && a.matches(held, r) && a.mayKeep(held, r.svc) {
		if !sameService(held.svc, r.svc) {
			// Re-commit so the sharing index and holder lists see the new
			// key and ports.
			p, chs := held.pool, held.choices()
			a.release(held)
			held = a.commit(r.svc, p, chs)
		}
		return held.assignment(), nil
	}
	// Allocate as if the service held nothing, then put the old state back
	// if that fails: Assign is all-or-nothing.
	if held != nil {
		a.release(held)
	}
	var buf [2]choice
	p, chs, err := a.allocate(r, buf[:0])
	if err != nil {
		if held != nil {
			a.commit(held.svc, held.pool, held.choices())
		}
		return Assignment{}, err
	}
	return a.commit(r.svc, p, chs).assignment(), nil
}

func (rec *svcRecord) choices() []choice {
	chs := make([]choice, len(rec.addrs))
	for i, ar := range rec.addrs {
		chs[i] = choice{ip: ar.ip, u: ar.u, rng: ar.rng}
	}
	return chs
}

func (rec *svcRecord) assignment() Assignment {
	as := Assignment{Pool: rec.pool.name, IPs: make([]netip.Addr, len(rec.addrs))}
	for i, ar := range rec.addrs {
		as.IPs[i] = ar.ip
	}
	return as
}

// matches reports whether what the service holds satisfies r (sharing aside).
func (a *Allocator) matches(held *svcRecord, r request) bool {
	if !slices.Contains(r.pools, held.pool.name) || a.pools[held.pool.name] != held.pool {
		return false
	}
	if len(r.ips) > 0 {
		if len(r.ips) != len(held.addrs) {
			return false
		}
		for i, ar := range held.addrs {
			if ar.ip != r.ips[i] {
				return false
			}
		}
		return true
	}
	for _, ar := range held.addrs {
		if !slices.Contains(r.fams, ar.fam()) {
			return false
		}
	}
	if len(r.fams) == 1 || r.required {
		return len(held.addrs) == len(r.fams)
	}
	return len(held.addrs) > 0 // PreferDualStack: one family is enough
}

// mayKeep reports whether the service, described now by svc, may go on
// sharing its addresses with their other holders.
func (a *Allocator) mayKeep(held *svcRecord, svc Service) bool {
	for _, ar := range held.addrs {
		if conflict(ar, svc) != nil {
			return false
		}
	}
	return true
}

// conflict checks whether svc may use ar alongside its other holders.
func conflict(ar *addrRecord, svc Service) *SharingConflictError {
	for _, h := range ar.holders {
		if h.svc.Key == svc.Key {
			continue
		}
		e := &SharingConflictError{IP: ar.ip, Service: svc.Key, Holder: h.svc.Key}
		switch {
		case svc.SharingKey == "" || h.svc.SharingKey == "":
			e.Reason, e.Keys = ConflictNotShared, [2]string{svc.SharingKey, h.svc.SharingKey}
		case svc.SharingKey != h.svc.SharingKey:
			e.Reason, e.Keys = ConflictSharingKey, [2]string{svc.SharingKey, h.svc.SharingKey}
		case svc.BackendKey != h.svc.BackendKey:
			e.Reason, e.Keys = ConflictBackend, [2]string{svc.BackendKey, h.svc.BackendKey}
		default:
			p, ok := commonPort(svc.Ports, h.svc.Ports)
			if !ok {
				continue
			}
			e.Reason, e.Port = ConflictPort, p
		}
		return e
	}
	return nil
}

// commonPort returns the lowest port in both sorted lists.
func commonPort(a, b []Port) (Port, bool) {
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch c := comparePorts(a[i], b[j]); {
		case c < 0:
			i++
		case c > 0:
			j++
		default:
			return a[i], true
		}
	}
	return Port{}, false
}

// allocate picks addresses for r; chs is a buffer for the result.
func (a *Allocator) allocate(r request, chs []choice) (*poolState, []choice, error) {
	if len(r.ips) > 0 {
		return a.allocateExplicit(r, chs)
	}
	if p, got, ok := a.firstFit(r, chs); ok {
		return p, got, nil
	}
	// Nothing fits: the same search again, saying why for every candidate.
	r.pools = distinctPools(r.pools)
	return a.allocateOrExplain(r, chs)
}

// firstFit is the choice allocateOrExplain makes when one succeeds, without
// building an error per candidate that does not fit: its cost is a map
// lookup and a bitmap test per pool passed over, so a Service whose
// candidates are thousands of pools, most of them full, is cheap.
func (a *Allocator) firstFit(r request, chs []choice) (*poolState, []choice, bool) {
	if len(r.fams) == 1 {
		for _, name := range r.pools {
			if p := a.pools[name]; p != nil {
				if c, ok := a.try(p, r.fams[0], r.svc); ok {
					return p, append(chs, c), true
				}
			}
		}
		return nil, nil, false
	}
	for _, name := range r.pools {
		if p := a.pools[name]; p != nil {
			c4, ok4 := a.try(p, v4, r.svc)
			if !ok4 {
				continue
			}
			if c6, ok6 := a.try(p, v6, r.svc); ok6 {
				return p, append(chs, c4, c6), true
			}
		}
	}
	if r.required {
		return nil, nil, false
	}
	for _, f := range r.fams {
		for _, name := range r.pools {
			if p := a.pools[name]; p != nil {
				if c, ok := a.try(p, f, r.svc); ok {
					return p, append(chs, c), true
				}
			}
		}
	}
	return nil, nil, false
}

// allocateOrExplain picks addresses for r, or returns why no candidate
// can give them (every candidate's reason).
func (a *Allocator) allocateOrExplain(r request, chs []choice) (*poolState, []choice, error) {
	if len(r.pools) == 0 {
		return nil, nil, errorf(ErrNoPool, "no address pool is available to %s", r.svc.Key)
	}
	var errs []error
	var cands []*poolState
	for _, name := range r.pools {
		if p := a.pools[name]; p != nil {
			cands = append(cands, p)
		} else {
			errs = append(errs, errorf(ErrUnknownPool, "address pool %q does not exist", name))
		}
	}
	if len(r.fams) == 1 {
		for _, p := range cands {
			c, err := a.pick(p, r.fams[0], r.svc)
			if err == nil {
				return p, append(chs, c), nil
			}
			errs = append(errs, err)
		}
		return nil, nil, combine(errs)
	}
	unknown := len(errs)
	for _, p := range cands {
		c4, err4 := a.pick(p, v4, r.svc)
		c6, err6 := a.pick(p, v6, r.svc)
		if err4 == nil && err6 == nil {
			return p, append(chs, c4, c6), nil
		}
		for _, err := range []error{err4, err6} {
			if err != nil {
				errs = append(errs, err)
			}
		}
	}
	if r.required {
		return nil, nil, combine(errs)
	}
	// PreferDualStack: no pool has both; one family, in the service's order.
	errs = errs[:unknown]
	for _, f := range r.fams {
		for _, p := range cands {
			c, err := a.pick(p, f, r.svc)
			if err == nil {
				return p, append(chs, c), nil
			}
			errs = append(errs, err)
		}
	}
	return nil, nil, combine(errs)
}

// pick chooses an address of family fam from pool p for svc without
// committing it.
func (a *Allocator) pick(p *poolState, fam int, svc Service) (choice, error) {
	if c, ok := a.try(p, fam, svc); ok {
		return c, nil
	}
	if len(p.ranges[fam]) == 0 {
		return choice{}, errorf(ErrFamilyUnavailable, "address pool %q has no %s range", p.name, famNames[fam])
	}
	return choice{}, errorf(ErrPoolExhausted, "address pool %q has no free %s address", p.name, famNames[fam])
}

// try is pick without the error: false when p has no range of fam or no
// address svc may use.
func (a *Allocator) try(p *poolState, fam int, svc Service) (choice, bool) {
	if len(p.ranges[fam]) == 0 {
		return choice{}, false
	}
	if svc.SharingKey != "" {
		// MetalLB's rule: join an address already used under the same key
		// when allowed; lowest such address, for determinism.
		for _, ar := range a.byKey[svc.SharingKey] {
			if ar.rng.pool == p && ar.fam() == fam && conflict(ar, svc) == nil {
				return choice{ip: ar.ip, u: ar.u, rng: ar.rng}, true
			}
		}
	}
	if i := p.room[fam].first(); i >= 0 {
		r := p.ranges[fam][i]
		if u, ok := r.lowestFree(); ok {
			return choice{ip: u.Addr(r.is4), u: u, rng: r, free: true}, true
		}
		panic("ipam: internal error: range marked as having room is full")
	}
	return choice{}, false
}

func (a *Allocator) allocateExplicit(r request, chs []choice) (*poolState, []choice, error) {
	var p *poolState
	for _, ip := range r.ips {
		u := iprange.U128From(ip)
		rng := a.lookup(famOf(ip), u)
		if rng == nil {
			return nil, nil, errorf(ErrNotInPool, "%s is not in any address pool", ip)
		}
		if !rng.usable(u) {
			return nil, nil, errorf(ErrNotInPool, "%s is in address pool %q, which sets avoidBuggyIPs: addresses ending in .0 or .255 are never assigned", ip, rng.pool.name)
		}
		if p != nil && rng.pool != p {
			return nil, nil, errorf(ErrDifferentPools, "%s is in address pool %q but %s is in %q; all requested addresses must come from one pool", chs[0].ip, p.name, ip, rng.pool.name)
		}
		p = rng.pool
		chs = append(chs, choice{ip: ip, u: u, rng: rng})
	}
	if !slices.Contains(r.pools, p.name) {
		allowed := "no pool is allowed for it"
		if len(r.pools) > 0 {
			allowed = "allowed: " + strings.Join(distinctPools(r.pools), ", ")
		}
		return nil, nil, errorf(ErrNotInPool, "%s is in address pool %q, which %s may not use (%s)", chs[0].ip, p.name, r.svc.Key, allowed)
	}
	for _, c := range chs {
		if ar := a.addrs[c.ip]; ar != nil {
			if e := conflict(ar, r.svc); e != nil {
				return nil, nil, e
			}
		}
	}
	return p, chs, nil
}

// commit records svc as holding chs from pool p. The choices must be valid.
func (a *Allocator) commit(svc Service, p *poolState, chs []choice) *svcRecord {
	svc.Ports = slices.Clip(slices.Clone(svc.Ports)) // never keep the caller's slice
	rec := &svcRecord{svc: svc, pool: p}
	rec.addrs = rec.abuf[:0]
	for _, c := range chs {
		var ar *addrRecord
		if !c.free {
			ar = a.addrs[c.ip]
		}
		if ar == nil {
			ar = &addrRecord{ip: c.ip, u: c.u, rng: c.rng}
			ar.holders = ar.hbuf[:0]
			c.rng.markUsed(c.u)
			a.addrs[c.ip] = ar
			if svc.SharingKey != "" {
				a.indexAdd(svc.SharingKey, ar)
			}
		}
		i, _ := slices.BinarySearchFunc(ar.holders, svc.Key, func(h *svcRecord, k string) int { return strings.Compare(h.svc.Key, k) })
		ar.holders = slices.Insert(ar.holders, i, rec)
		rec.addrs = append(rec.addrs, ar)
	}
	a.services[svc.Key] = rec
	p.svcs[svc.Key] = true
	return rec
}

func (a *Allocator) release(rec *svcRecord) {
	for _, ar := range rec.addrs {
		i := slices.Index(ar.holders, rec)
		ar.holders = slices.Delete(ar.holders, i, i+1)
		if len(ar.holders) == 0 {
			ar.rng.markFree(ar.u)
			delete(a.addrs, ar.ip)
			if rec.svc.SharingKey != "" {
				a.indexRemove(rec.svc.SharingKey, ar)
			}
		}
	}
	delete(a.services, rec.svc.Key)
	delete(rec.pool.svcs, rec.svc.Key)
}

func cmpRecord(x *addrRecord, ip netip.Addr) int { return x.ip.Compare(ip) }

func (a *Allocator) indexAdd(key string, ar *addrRecord) {
	l := a.byKey[key]
	i, _ := slices.BinarySearchFunc(l, ar.ip, cmpRecord)
	a.byKey[key] = slices.Insert(l, i, ar)
}

func (a *Allocator) indexRemove(key string, ar *addrRecord) {
	l := a.byKey[key]
	i, found := slices.BinarySearchFunc(l, ar.ip, cmpRecord)
	if !found {
		return
	}
	if l = slices.Delete(l, i, i+1); len(l) == 0 {
		delete(a.byKey, key)
	} else {
		a.byKey[key] = l
	}
}

// lookup returns the range containing u, or nil.
func (a *Allocator) lookup(fam int, u u128) *rangeState {
	return lookupIn(a.index[fam], u)
}

// Release frees everything the service holds. Unknown keys are ignored.
func (a *Allocator) Release(serviceKey string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if rec := a.services[serviceKey]; rec != nil {
		a.release(rec)
	}
}

// Assigned returns what the service holds.
func (a *Allocator) Assigned(serviceKey string) (Assignment, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	rec := a.services[serviceKey]
	if rec == nil {
		return Assignment{}, false
	}
	return rec.assignment(), true
}

// ServicesIn returns the keys of the services holding addresses of the
// pool, sorted; none for an unknown pool.
func (a *Allocator) ServicesIn(pool string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	p := a.pools[pool]
	if p == nil {
		return nil
	}
	keys := make([]string, 0, len(p.svcs))
	for k := range p.svcs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// Owner returns the keys of the services holding ip, sorted; several when
// the address is shared, none when it is free.
func (a *Allocator) Owner(ip netip.Addr) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	ar := a.addrs[normAddr(ip)]
	if ar == nil {
		return nil
	}
	keys := make([]string, len(ar.holders))
	for i, h := range ar.holders {
		keys[i] = h.svc.Key
	}
	return keys
}

// PoolOf returns the pool that could assign ip: the pool whose range
// contains it, unless the pool's AvoidBuggyIPs excludes it.
func (a *Allocator) PoolOf(ip netip.Addr) (string, bool) {
	if !ip.IsValid() {
		return "", false
	}
	ip = normAddr(ip)
	a.mu.Lock()
	defer a.mu.Unlock()
	u := iprange.U128From(ip)
	r := a.lookup(famOf(ip), u)
	if r == nil || !r.usable(u) {
		return "", false
	}
	return r.pool.name, true
}

// Stats returns the counters of a pool (zero for an unknown pool).
func (a *Allocator) Stats(pool string) PoolStats {
	a.mu.Lock()
	defer a.mu.Unlock()
	var st PoolStats
	p := a.pools[pool]
	if p == nil {
		return st
	}
	for _, r := range p.ranges[v4] {
		st.AssignedIPv4 = satAdd(st.AssignedIPv4, int64(r.used))
		st.AvailableIPv4 = satAdd(st.AvailableIPv4, r.available())
	}
	for _, r := range p.ranges[v6] {
		st.AssignedIPv6 = satAdd(st.AssignedIPv6, int64(r.used))
		st.AvailableIPv6 = satAdd(st.AvailableIPv6, r.available())
	}
	return st
}
