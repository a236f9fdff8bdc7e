package ipam

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/lbstack/lbstack/pkg/iprange"
)

// This file checks the Allocator against a reference model: the same rules
// written the obvious way (linear scans over addresses and services, no
// trees, no indexes). Both are driven by the same random operations and
// must agree on every result, every error kind, every eviction list and every
// counter; on top of that the invariants the brief asks for are checked
// directly: no address held by two services that may not share it, every
// address inside its current pool.
//
// The model reuses validate (request normalization) and normalizePools
// (defensive input cleaning), which have their own table tests; everything
// the data structures decide is computed independently.

type modelSvc struct {
	svc  Service
	pool string
	ips  []netip.Addr
}

type model struct {
	pools []Pool
	svcs  map[string]*modelSvc
}

func newModel() *model { return &model{svcs: map[string]*modelSvc{}} }

func (m *model) keys() []string {
	ks := make([]string, 0, len(m.svcs))
	for k := range m.svcs {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

func (m *model) holders(ip netip.Addr) []*modelSvc {
	var hs []*modelSvc
	for _, k := range m.keys() {
		if slices.Contains(m.svcs[k].ips, ip) {
			hs = append(hs, m.svcs[k])
		}
	}
	return hs
}

func buggyAddr(ip netip.Addr) bool {
	if !ip.Is4() {
		return false
	}
	b := ip.As4()[3]
	return b == 0 || b == 255
}

// poolOf: the pool whose range contains ip, and whether it may assign it.
func (m *model) poolOf(ip netip.Addr) (Pool, bool, bool) {
	for _, p := range m.pools {
		for _, r := range p.Ranges {
			if r.First.Is4() == ip.Is4() && !ip.Less(r.First) && !r.Last.Less(ip) {
				return p, true, !(p.AvoidBuggyIPs && buggyAddr(ip))
			}
		}
	}
	return Pool{}, false, false
}

func (m *model) pool(name string) (Pool, bool) {
	for _, p := range m.pools {
		if p.Name == name {
			return p, true
		}
	}
	return Pool{}, false
}

func compat(a, b Service) bool {
	if a.SharingKey == "" || b.SharingKey == "" || a.SharingKey != b.SharingKey || a.BackendKey != b.BackendKey {
		return false
	}
	for _, p := range a.Ports {
		if slices.Contains(b.Ports, p) {
			return false
		}
	}
	return true
}

func (m *model) mayUse(ip netip.Addr, s Service) bool {
	for _, h := range m.holders(ip) {
		if h.svc.Key != s.Key && !compat(s, h.svc) {
			return false
		}
	}
	return true
}

func (m *model) assign(r request) (Assignment, error) {
	held := m.svcs[r.svc.Key]
	if held != nil && m.matches(held, r) {
		ok := true
		for _, ip := range held.ips {
			ok = ok && m.mayUse(ip, r.svc)
		}
		if ok {
			held.svc = r.svc
			return Assignment{Pool: held.pool, IPs: slices.Clone(held.ips)}, nil
		}
	}
	delete(m.svcs, r.svc.Key)
	pool, got, err := m.allocate(r)
	if err != nil {
		if held != nil {
			m.svcs[r.svc.Key] = held
		}
		return Assignment{}, err
	}
	m.svcs[r.svc.Key] = &modelSvc{svc: r.svc, pool: pool, ips: got}
	return Assignment{Pool: pool, IPs: slices.Clone(got)}, nil
}

func (m *model) matches(held *modelSvc, r request) bool {
	if !slices.Contains(r.pools, held.pool) {
		return false
	}
	if len(r.ips) > 0 {
		return slices.Equal(held.ips, r.ips)
	}
	for _, ip := range held.ips {
		if !slices.Contains(r.fams, famOf(ip)) {
			return false
		}
	}
	if len(r.fams) == 1 || r.required {
		return len(held.ips) == len(r.fams)
	}
	return true
}

func (m *model) allocate(r request) (string, []netip.Addr, error) {
	if len(r.ips) > 0 {
		var pool string
		for i, ip := range r.ips {
			p, in, usable := m.poolOf(ip)
			switch {
			case !in, !usable:
				return "", nil, ErrNotInPool
			case i > 0 && p.Name != pool:
				return "", nil, ErrDifferentPools
			}
			pool = p.Name
		}
		if !slices.Contains(r.pools, pool) {
			return "", nil, ErrNotInPool
		}
		for _, ip := range r.ips {
			if !m.mayUse(ip, r.svc) {
				return "", nil, ErrSharingConflict
			}
		}
		return pool, slices.Clone(r.ips), nil
	}
	if len(r.pools) == 0 {
		return "", nil, ErrNoPool
	}
	var errs []error
	var cands []Pool
	for _, n := range r.pools {
		if p, ok := m.pool(n); ok {
			cands = append(cands, p)
		} else {
			errs = append(errs, ErrUnknownPool)
		}
	}
	if len(r.fams) == 1 {
		for _, p := range cands {
			if ip, err := m.pick(p, r.fams[0], r.svc); err == nil {
				return p.Name, []netip.Addr{ip}, nil
			} else {
				errs = append(errs, err)
			}
		}
		return "", nil, errors.Join(errs...)
	}
	for _, p := range cands {
		a4, e4 := m.pick(p, v4, r.svc)
		a6, e6 := m.pick(p, v6, r.svc)
		if e4 == nil && e6 == nil {
			return p.Name, []netip.Addr{a4, a6}, nil
		}
		errs = append(errs, e4, e6)
	}
	if r.required {
		return "", nil, errors.Join(errs...)
	}
	for _, f := range r.fams {
		for _, p := range cands {
			if ip, err := m.pick(p, f, r.svc); err == nil {
				return p.Name, []netip.Addr{ip}, nil
			} else {
				errs = append(errs, err)
			}
		}
	}
	return "", nil, errors.Join(errs...)
}

func (m *model) pick(p Pool, fam int, s Service) (netip.Addr, error) {
	var ranges []Range
	for _, r := range p.Ranges {
		if famOf(r.First) == fam {
			ranges = append(ranges, r)
		}
	}
	if len(ranges) == 0 {
		return netip.Addr{}, ErrFamilyUnavailable
	}
	slices.SortFunc(ranges, func(a, b Range) int { return a.First.Compare(b.First) })
	if s.SharingKey != "" {
		var shared []netip.Addr
		for _, k := range m.keys() {
			h := m.svcs[k]
			if h.svc.SharingKey != s.SharingKey || h.pool != p.Name {
				continue
			}
			for _, ip := range h.ips {
				if famOf(ip) == fam && !slices.Contains(shared, ip) {
					shared = append(shared, ip)
				}
			}
		}
		slices.SortFunc(shared, compareAddrs)
		for _, ip := range shared {
			if m.mayUse(ip, s) {
				return ip, nil
			}
		}
	}
	used := map[netip.Addr]bool{}
	for _, h := range m.svcs {
		for _, ip := range h.ips {
			used[ip] = true
		}
	}
	for _, r := range ranges {
		// Terminates quickly even in a /64: at most len(used)+1 steps
		// (plus buggy skips) before a free address.
		for x := r.First; x.IsValid() && !r.Last.Less(x); x = x.Next() {
			if (p.AvoidBuggyIPs && buggyAddr(x)) || used[x] {
				continue
			}
			return x, nil
		}
	}
	return netip.Addr{}, ErrPoolExhausted
}

func (m *model) release(key string) { delete(m.svcs, key) }

func (m *model) setPools(pools []Pool) []string {
	m.pools, _ = normalizePools(pools)
	var evicted []string
	for _, k := range m.keys() {
		s := m.svcs[k]
		var pool string
		ok := true
		for i, ip := range s.ips {
			p, in, usable := m.poolOf(ip)
			if !in || !usable || (i > 0 && p.Name != pool) {
				ok = false
				break
			}
			pool = p.Name
		}
		if ok {
			s.pool = pool
		} else {
			evicted = append(evicted, k)
			delete(m.svcs, k)
		}
	}
	return evicted
}

func (m *model) stats(name string) PoolStats {
	var st PoolStats
	p, ok := m.pool(name)
	if !ok {
		return st
	}
	held := map[netip.Addr]bool{}
	for _, s := range m.svcs {
		for _, ip := range s.ips {
			held[ip] = true
		}
	}
	var assigned, avail [2]big.Int
	for _, r := range p.Ranges {
		f := famOf(r.First)
		size := new(big.Int).Sub(new(big.Int).SetBytes(r.Last.AsSlice()), new(big.Int).SetBytes(r.First.AsSlice()))
		size.Add(size, big.NewInt(1))
		if p.AvoidBuggyIPs && f == v4 {
			for x := r.First; !r.Last.Less(x); x = x.Next() {
				if buggyAddr(x) {
					size.Sub(size, big.NewInt(1))
				}
				if x == r.Last {
					break
				}
			}
		}
		avail[f].Add(&avail[f], size)
		for ip := range held {
			if famOf(ip) == f && !ip.Less(r.First) && !r.Last.Less(ip) {
				assigned[f].Add(&assigned[f], big.NewInt(1))
				avail[f].Sub(&avail[f], big.NewInt(1))
			}
		}
	}
	sat := func(b *big.Int) int64 {
		if !b.IsInt64() {
			return math.MaxInt64
		}
		return b.Int64()
	}
	st.AssignedIPv4, st.AssignedIPv6 = sat(&assigned[v4]), sat(&assigned[v6])
	st.AvailableIPv4, st.AvailableIPv6 = sat(&avail[v4]), sat(&avail[v6])
	return st
}

// errKinds summarizes an error as the set of sentinels it matches.
func errKinds(err error) string {
	if err == nil {
		return "ok"
	}
	var ks []string
	for _, k := range []error{ErrPoolExhausted, ErrNotInPool, ErrSharingConflict, ErrUnknownPool, ErrFamilyUnavailable, ErrDifferentPools, ErrNoPool, ErrInvalidRequest} {
		if errors.Is(err, k) {
			ks = append(ks, k.Error())
		}
	}
	if len(ks) == 0 {
		return "untyped: " + err.Error()
	}
	return strings.Join(ks, "|")
}

// source of random choices: math/rand in the property test, the fuzzer's
// bytes in the fuzz target.
type source interface{ intn(n int) int }

type randSource struct{ r *rand.Rand }

func (s randSource) intn(n int) int { return s.r.IntN(n) }

type byteSource struct{ b []byte }

func (s *byteSource) intn(n int) int {
	if len(s.b) == 0 {
		return 0
	}
	v := int(s.b[0])
	s.b = s.b[1:]
	return v % n
}

func (s *byteSource) empty() bool { return len(s.b) == 0 }

// zones are disjoint address blocks pools are cut from; they cross .255/.0
// boundaries, 128-bit word carries, and include a /64.
var zones = []Range{
	rng("198.51.99.248", "198.51.100.8"),
	rng("203.0.113.0", "203.0.113.15"),
	rng("192.0.2.250", "192.0.3.3"),
	rng("2001:db8::", "2001:db8::f"),
	rng("2001:db8:2::fffe", "2001:db8:2::1:1"),
	cidr("2001:db8:1::/64"),
}

var poolNames = []string{"p0", "p1", "p2", "p3"}

func randAddrIn(src source, z Range) netip.Addr {
	if z.First.Is6() && z.First == ip("2001:db8:1::") {
		// in the /64: near either end
		if src.intn(2) == 0 {
			return ip("2001:db8:1::").Next()
		}
		return ip("2001:db8:1::ffff:ffff:ffff:fff0")
	}
	n := int(iprange.U128From(z.Last).Sub(iprange.U128From(z.First)).Lo) + 1
	return iprange.U128From(z.First).AddSmall(uint64(src.intn(n + 2))).SubSmall(1).Addr(z.First.Is4())
}

func randPools(src source) []Pool {
	var pools []Pool
	avoid := map[string]bool{}
	for _, n := range poolNames {
		avoid[n] = src.intn(2) == 0
	}
	idx := map[string]int{}
	for _, z := range zones {
		if src.intn(4) == 0 {
			continue
		}
		r := z
		if z.First.Is4() || z.First.Is6() && z != cidr("2001:db8:1::/64") {
			n := int(iprange.U128From(z.Last).Sub(iprange.U128From(z.First)).Lo) + 1
			a, b := src.intn(n), src.intn(n)
			if a > b {
				a, b = b, a
			}
			r = Range{iprange.U128From(z.First).AddSmall(uint64(a)).Addr(z.First.Is4()), iprange.U128From(z.First).AddSmall(uint64(b)).Addr(z.First.Is4())}
		}
		name := poolNames[src.intn(len(poolNames))]
		i, ok := idx[name]
		if !ok {
			i = len(pools)
			idx[name] = i
			pools = append(pools, Pool{Name: name, AvoidBuggyIPs: avoid[name]})
		}
		pools[i].Ranges = append(pools[i].Ranges, r)
	}
	if src.intn(8) == 0 { // occasionally something SetPools has to clean up
		pools = append(pools, Pool{Name: "p0", Ranges: []Range{zones[0]}}, Pool{Name: "bad", Ranges: []Range{zones[1], rng("203.0.113.1", "203.0.113.0")}})
	}
	return pools
}

// changeOne returns cur with one pool replaced by the pool of the same
// name in fresh, or dropped when fresh has none: most pools stay as they
// are, as in a cluster where one pool is edited.
func changeOne(src source, cur, fresh []Pool) []Pool {
	out := slices.Clone(cur)
	i := src.intn(len(out))
	for _, p := range fresh {
		if p.Name == out[i].Name {
			out[i] = p
			return out
		}
	}
	return slices.Delete(out, i, i+1)
}

// randRequest builds a request; held (the addresses in use) lets explicit
// requests aim at shared addresses often enough to exercise sharing.
func randRequest(src source, held []netip.Addr) Request {
	var s Service
	s.Key = fmt.Sprintf("ns/s%d", src.intn(10))
	s.SharingKey = []string{"", "k1", "k1", "k2"}[src.intn(4)]
	s.BackendKey = []string{"", "", "", "app=x"}[src.intn(4)]
	all := []Port{{"TCP", 53}, {"UDP", 53}, {"tcp", 80}, {"", 80}, {"SCTP", 9}, {"TCP", 443}}
	for range src.intn(3) {
		s.Ports = append(s.Ports, all[src.intn(len(all))])
	}
	req := Request{Service: s}
	req.Families = [][]Family{{IPv4}, {IPv6}, {IPv4, IPv6}, {IPv6, IPv4}, {IPv4}}[src.intn(5)]
	req.Required = src.intn(3) == 0
	names := append(slices.Clone(poolNames), poolNames[0], poolNames[1], "px")
	for range 1 + src.intn(3) {
		req.Pools = append(req.Pools, names[src.intn(len(names))])
	}
	switch src.intn(20) {
	case 0:
		req.Pools = nil
	case 1:
		req.Families = nil
	}
	if src.intn(3) == 0 {
		req.IPs = randIPs(src, held)
	}
	return req
}

func randIPs(src source, held []netip.Addr) []netip.Addr {
	var out []netip.Addr
	for range 1 + src.intn(2) {
		if len(held) > 0 && src.intn(2) == 0 {
			out = append(out, held[src.intn(len(held))])
		} else {
			out = append(out, randAddrIn(src, zones[src.intn(len(zones))]))
		}
	}
	return out
}

// step applies one random operation to both and compares the outcomes.
func step(t testing.TB, src source, a *Allocator, m *model) string {
	var held []netip.Addr
	for _, k := range m.keys() {
		for _, ip := range m.svcs[k].ips {
			if !slices.Contains(held, ip) {
				held = append(held, ip)
			}
		}
	}
	switch op := src.intn(20); {
	case op == 0:
		pools := randPools(src)
		if len(m.pools) > 0 && src.intn(2) == 0 {
			pools = changeOne(src, m.pools, pools)
		}
		got, want := a.SetPools(pools), m.setPools(pools)
		if !slices.Equal(got, want) {
			t.Fatalf("SetPools(%v): evicted %v, model %v", pools, got, want)
		}
		return fmt.Sprintf("SetPools(%v) -> %v", pools, got)
	case op < 4:
		k := fmt.Sprintf("ns/s%d", src.intn(10))
		a.Release(k)
		m.release(k)
		return "Release " + k
	case op < 6:
		req := randRequest(src, held)
		var claim []netip.Addr
		switch s := m.svcs[req.Service.Key]; {
		case s != nil && src.intn(2) == 0:
			claim = slices.Clone(s.ips)
		case src.intn(10) > 0:
			claim = randIPs(src, held)
		}
		if src.intn(2) == 0 {
			req.IPs = nil // the usual case: no explicit addresses in the spec
		}
		err := a.Claim(req, claim)
		var werr error
		if len(claim) == 0 {
			werr = ErrInvalidRequest
		} else if r, verr := validate(req); len(req.IPs) > 0 && (verr != nil || !slices.Equal(sortedNorm(claim), r.ips)) {
			werr = ErrInvalidRequest
		} else {
			req.IPs = claim
			if r, verr := validate(req); verr != nil {
				werr = verr
			} else {
				_, werr = m.assign(r)
			}
		}
		if errKinds(err) != errKinds(werr) {
			t.Fatalf("Claim(%+v, %v): %v, model %v", req, claim, err, werr)
		}
		return fmt.Sprintf("Claim(%+v, %v) -> %v", req, claim, err)
	default:
		req := randRequest(src, held)
		got, err := a.Assign(req)
		var want Assignment
		r, werr := validate(req)
		if werr == nil {
			want, werr = m.assign(r)
		}
		if errKinds(err) != errKinds(werr) || got.Pool != want.Pool || !slices.Equal(got.IPs, want.IPs) {
			t.Fatalf("Assign(%+v): %v %v, model %v %v", req, got, err, want, werr)
		}
		return fmt.Sprintf("Assign(%+v) -> %v %v", req, got, err)
	}
}

func sortedNorm(ips []netip.Addr) []netip.Addr {
	out := make([]netip.Addr, len(ips))
	for i, ip := range ips {
		out[i] = normAddr(ip)
	}
	slices.SortFunc(out, compareAddrs)
	return out
}

// checkState compares the full observable state and the invariants.
func checkState(t testing.TB, a *Allocator, m *model) {
	t.Helper()
	if len(a.services) != len(m.svcs) {
		t.Fatalf("%d services, model %d", len(a.services), len(m.svcs))
	}
	held := map[netip.Addr]bool{}
	for _, k := range m.keys() {
		s := m.svcs[k]
		got, ok := a.Assigned(k)
		if !ok || got.Pool != s.pool || !slices.Equal(got.IPs, s.ips) {
			t.Fatalf("%s: %v %v, model %v %v", k, got, ok, s.pool, s.ips)
		}
		for _, ip := range s.ips {
			held[ip] = true
			// Every assigned address is inside its current pool.
			if p, ok := a.PoolOf(ip); !ok || p != s.pool {
				t.Fatalf("%s holds %s, PoolOf = %q %v, assignment says %q", k, ip, p, ok, s.pool)
			}
			// Never given to two services that may not share it.
			for _, h := range m.holders(ip) {
				if h.svc.Key != k && !compat(h.svc, s.svc) {
					t.Fatalf("%s shared by %s and %s", ip, h.svc.Key, k)
				}
			}
		}
	}
	for ip := range held {
		var want []string
		for _, h := range m.holders(ip) {
			want = append(want, h.svc.Key)
		}
		if got := a.Owner(ip); !slices.Equal(got, want) {
			t.Fatalf("Owner(%s) = %v, model %v", ip, got, want)
		}
	}
	if len(a.addrs) != len(held) {
		t.Fatalf("%d address records, %d held", len(a.addrs), len(held))
	}
	for _, n := range append(slices.Clone(poolNames), "bad", "px") {
		var want []string
		for _, k := range m.keys() {
			if m.svcs[k].pool == n {
				want = append(want, k)
			}
		}
		if got := a.ServicesIn(n); !slices.Equal(got, want) {
			t.Fatalf("ServicesIn(%s) = %v, model %v", n, got, want)
		}
	}
	for _, n := range append(slices.Clone(poolNames), "bad", "px") {
		if got, want := a.Stats(n), m.stats(n); got != want {
			t.Fatalf("Stats(%s) = %+v, model %+v", n, got, want)
		}
	}
	// Internal structures.
	nKey := 0
	for key, l := range a.byKey {
		if len(l) == 0 || !slices.IsSortedFunc(l, func(x, y *addrRecord) int { return x.ip.Compare(y.ip) }) {
			t.Fatalf("byKey[%s] empty or unsorted", key)
		}
		for _, ar := range l {
			if a.addrs[ar.ip] != ar || ar.holders[0].svc.SharingKey != key {
				t.Fatalf("byKey[%s] has stale %s", key, ar.ip)
			}
		}
		nKey += len(l)
	}
	for _, ar := range a.addrs {
		if ar.holders[0].svc.SharingKey != "" {
			nKey--
		}
	}
	if nKey != 0 {
		t.Fatal("byKey misses addresses")
	}
	for f := range a.index {
		for _, r := range a.index[f] {
			checkRuns(t, r)
			var n uint64
			for ip := range held {
				if famOf(ip) == f && r.contains(iprange.U128From(ip)) {
					n++
					if fr := r.runs.floor(iprange.U128From(ip)); fr == nil || fr.e.Less(iprange.U128From(ip)) {
						t.Fatalf("%s held but not in a run", ip)
					}
				}
			}
			if n != r.used {
				t.Fatalf("range used = %d, held in range %d", r.used, n)
			}
		}
	}
}

func TestAgainstModel(t *testing.T) {
	seeds := 300
	if testing.Short() {
		seeds = 30
	}
	for seed := range seeds {
		src := randSource{rand.New(rand.NewPCG(uint64(seed), 0x1b5))}
		a, m := New(), newModel()
		pools := randPools(src)
		a.SetPools(pools)
		m.setPools(pools)
		var log []string
		func() {
			defer func() {
				if t.Failed() {
					t.Logf("seed %d, last operations:\n%s", seed, strings.Join(log, "\n"))
				}
			}()
			for i := range 400 {
				log = append(log, step(t, src, a, m))
				if len(log) > 8 {
					log = log[1:]
				}
				if i%5 == 0 {
					checkState(t, a, m)
				}
			}
			checkState(t, a, m)
		}()
	}
}

// TestFirstFitAgrees: the quick search Assign makes first (firstFit) picks
// exactly what the search that explains every candidate (allocateOrExplain)
// picks, and finds nothing exactly when that one fails, on random states
// and requests (duplicated and unknown pool names included).
func TestFirstFitAgrees(t *testing.T) {
	for seed := range 100 {
		src := randSource{rand.New(rand.NewPCG(uint64(seed), 0xf1f))}
		a, m := New(), newModel()
		pools := randPools(src)
		a.SetPools(pools)
		m.setPools(pools)
		for range 200 {
			step(t, src, a, m)
			req := randRequest(src, nil)
			req.IPs = nil
			if len(req.Families) == 0 {
				req.Families = []Family{IPv4}
			}
			r, err := validate(req)
			if err != nil {
				continue
			}
			a.mu.Lock()
			p1, c1, ok := a.firstFit(r, nil)
			r.pools = distinctPools(r.pools)
			p2, c2, err := a.allocateOrExplain(r, nil)
			a.mu.Unlock()
			if ok != (err == nil) || p1 != p2 || !slices.EqualFunc(c1, c2, func(x, y choice) bool { return x.ip == y.ip && x.rng == y.rng }) {
				t.Fatalf("seed %d, %+v: firstFit %v %v %v, allocateOrExplain %v %v %v", seed, req, p1, c1, ok, p2, c2, err)
			}
		}
	}
}
