package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/randfill"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/iprange"
)

// FuzzParseRange checks that every accepted entry is a well-formed range
// whose CIDR summary covers exactly that range, minimally.
func FuzzParseRange(f *testing.F) {
	for _, s := range []string{
		"203.0.113.0/24", "203.0.113.5/24", "203.0.113.1-203.0.113.254", "2001:db8::/64", "2001:db8::ff-2001:db8::1:0",
		"0.0.0.0/0", "::/0", "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "255.255.255.255-255.255.255.255",
		"203.0.113.9-203.0.113.1", "::ffff:1.2.3.4/128", "fe80::1%eth0/64", " 1.2.3.4 - 1.2.3.5 ", "1.2.3.4", "-",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRange(s)
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		checkRange(t, s, r)
		again, err := ParseRange(r.String())
		if err != nil || again.First != r.First || again.Last != r.Last {
			t.Fatalf("%q → %q → %v..%v, %v", s, r.String(), again.First, again.Last, err)
		}
	})
}

func checkRange(t *testing.T, s string, r AddrRange) {
	t.Helper()
	if !r.First.IsValid() || !r.Last.IsValid() || r.First.Is4() != r.Last.Is4() || r.First.Compare(r.Last) > 0 {
		t.Fatalf("%q: bad range %v..%v", s, r.First, r.Last)
	}
	if r.First.Is4In6() || r.Last.Is4In6() || r.First.Zone() != "" || r.Last.Zone() != "" {
		t.Fatalf("%q: mapped or zoned %v..%v", s, r.First, r.Last)
	}
	if len(r.CIDRs) == 0 || r.CIDRs[0].Addr() != r.First || iprange.LastAddr(r.CIDRs[len(r.CIDRs)-1]) != r.Last {
		t.Fatalf("%q: CIDRs %v do not span %v..%v", s, r.CIDRs, r.First, r.Last)
	}
	for i, p := range r.CIDRs {
		if p != p.Masked() || p.Addr().Is4() != r.First.Is4() {
			t.Fatalf("%q: CIDR %v not masked", s, p)
		}
		if i == 0 {
			continue
		}
		prev := r.CIDRs[i-1]
		if iprange.LastAddr(prev).Next() != p.Addr() {
			t.Fatalf("%q: CIDRs %v and %v are not consecutive", s, prev, p)
		}
		// Minimal: two consecutive prefixes of one length forming an
		// aligned block of twice the size would be one prefix.
		if prev.Bits() == p.Bits() && prev.Bits() > 0 && netip.PrefixFrom(prev.Addr(), prev.Bits()-1).Masked().Addr() == prev.Addr() {
			t.Fatalf("%q: %v and %v should be one prefix", s, prev, p)
		}
	}
}

// FuzzParseCommunity checks that accepted communities print back to a
// literal parsing to the same value, and that nothing else is accepted.
func FuzzParseCommunity(f *testing.F) {
	for _, s := range []string{"65000:100", "0:0", "65535:65535", "65536:0", "large:1:2:3", "large:4294967295:4294967295:4294967295",
		"large:4294967296:0:0", "1:2:3", "no-export", ":", "large:::", "+1:1", "01:001"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCommunity(s)
		if err != nil {
			return
		}
		if n := strings.Count(s, ":"); n != 1 && n != 3 {
			t.Fatalf("%q accepted with %d colons", s, n)
		}
		again, err := ParseCommunity(c.String())
		if err != nil || again != c || again.Compare(c) != 0 {
			t.Fatalf("%q → %q → %+v, %v", s, c.String(), again, err)
		}
	})
}

// fuzzInput is what FuzzBuild builds from the fuzzer's bytes.
type fuzzInput struct {
	Res  Resources
	Opts Options
}

// FuzzBuild feeds Build plausible configurations (names, addresses and
// selectors from small vocabularies so that objects refer to and collide
// with each other, plus some garbage) and checks that it never panics, that
// it is deterministic and leaves its input alone, and that every Config it
// returns satisfies the invariants the controller and speakers rely on.
func FuzzBuild(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte("bgp-ecmp-bfd: one pool, a peer with BFD, an aggregate"))
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 250, 251, 252, 253, 254, 255})
	f.Fuzz(func(t *testing.T, data []byte) {
		var in fuzzInput
		randfill.NewFromGoFuzz(data).Funcs(fillInput).Fill(&in)
		before := deepCopyResources(in.Res)
		r := Build(in.Res, in.Opts)
		if !equalResources(before, in.Res) {
			t.Fatal("Build modified its input")
		}
		again := Build(in.Res, in.Opts)
		if !equalProblems(r.Errors, again.Errors) || !equalProblems(r.Warnings, again.Warnings) {
			t.Fatalf("Build is not deterministic:\n%v\n%v", r.Errors, again.Errors)
		}
		checkResult(t, in, r)
	})
}

func checkResult(t *testing.T, in fuzzInput, r Result) {
	t.Helper()
	checkConfigPresence(t, r)
	for _, ps := range [][]Problem{r.Errors, r.Warnings} {
		for i, p := range ps {
			if _, ok := kindRank[p.Object.Kind]; !ok || p.Message == "" || p.Error() == "" {
				t.Fatalf("malformed problem %+v", p)
			}
			if slices.Contains(p.Related, p.Object) || !slices.IsSortedFunc(p.Related, compareRefs) {
				t.Fatalf("related of %v: %v", p, p.Related)
			}
			if i > 0 && compareProblems(ps[i-1], p) >= 0 {
				t.Fatalf("problems not sorted or duplicated: %v / %v", ps[i-1], p)
			}
		}
	}

	// Overlaps, found by brute force over the pools Build considers.
	type owned struct {
		pool string
		r    AddrRange
	}
	var all []owned
	seen := map[string]bool{}
	for _, p := range in.Res.Pools {
		if p.Name == "" || seen[p.Name] || (p.Namespace != "" && p.Namespace != in.Opts.Namespace) {
			continue
		}
		seen[p.Name] = true
		for _, s := range p.Spec.Addresses {
			if rg, err := ParseRange(s); err == nil {
				all = append(all, owned{p.Name, rg})
			}
		}
	}
	overlap := false
	for i := range all {
		for j := i + 1; j < len(all); j++ {
			if all[i].r.First.Compare(all[j].r.Last) <= 0 && all[j].r.First.Compare(all[i].r.Last) <= 0 {
				overlap = true
			}
		}
	}
	reported := slices.ContainsFunc(r.Errors, func(p Problem) bool { return strings.Contains(p.Message, " overlaps ") })
	if overlap != reported {
		t.Fatalf("brute force overlap %v, reported %v: %v", overlap, reported, r.Errors)
	}

	cfg := r.Config
	if cfg == nil {
		return
	}
	if !slices.IsSorted(cfg.PoolNames) || !slices.IsSorted(cfg.PeerNames) || len(cfg.PoolNames) != len(cfg.Pools) || len(cfg.PeerNames) != len(cfg.Peers) {
		t.Fatal("name lists")
	}
	for _, name := range cfg.PoolNames {
		p := cfg.Pools[name]
		if p == nil || p.Name != name || len(p.Ranges) == 0 {
			t.Fatalf("pool %q: %+v", name, p)
		}
		for _, rg := range p.Ranges {
			checkRange(t, rg.Spec, rg)
			for _, a := range []netip.Addr{rg.First, rg.Last} {
				if cfg.PoolFor(a) != p || !p.Contains(a) {
					t.Fatalf("PoolFor(%v) = %v, want %q", a, cfg.PoolFor(a), name)
				}
			}
			if a := rg.First.Prev(); a.IsValid() && p.Contains(a) && !slices.ContainsFunc(p.Ranges, func(o AddrRange) bool { return o.Contains(a) }) {
				t.Fatalf("%q contains %v outside its ranges", name, a)
			}
		}
	}
	for _, name := range cfg.PeerNames {
		p := cfg.Peers[name]
		if p.MyASN == 0 || p.Address.IsValid() == (p.Interface != "") || (p.PeerASN == 0) == (p.DynamicASN == "") || p.Port == 0 {
			t.Fatalf("peer %+v", p)
		}
		if (p.HoldTime == nil) != (p.KeepaliveTime == nil) {
			t.Fatalf("peer %q: one timer set", name)
		}
		if p.HoldTime != nil {
			h, k := *p.HoldTime, *p.KeepaliveTime
			if (h == 0 && k != 0) || (h != 0 && (h < 3*time.Second || k >= h || h > 65535*time.Second)) || k < 0 {
				t.Fatalf("peer %q: timers %v/%v", name, h, k)
			}
		}
		if p.BFDProfile != nil && (p.BFDProfile != cfg.BFDProfiles[p.BFDProfileName] || (p.BFDProfile.EchoMode && !p.Address.Is4())) {
			t.Fatalf("peer %q: BFD %+v", name, p.BFDProfile)
		}
		if cfg.BGPBackend == v1beta1.BGPTypeNative && (p.BFDProfileName != "" || p.Interface != "" || p.DynamicASN != "") {
			t.Fatalf("native peer %q uses FRR-only features", name)
		}
		if len(p.Password) > maxMD5KeyLen || strings.ContainsAny(p.Password, "\r\n") {
			t.Fatalf("peer %q: password %q", name, p.Password)
		}
	}
	for _, b := range cfg.BFDProfiles {
		if b.ReceiveInterval < 10 || b.ReceiveInterval > 60000 || b.TransmitInterval < 10 || b.TransmitInterval > 60000 ||
			b.EchoInterval < 10 || b.EchoInterval > 60000 || b.DetectMultiplier < 2 || b.DetectMultiplier > 255 || b.MinimumTTL < 1 || b.MinimumTTL > 254 {
			t.Fatalf("BFD profile %+v", b)
		}
	}
	for i, a := range cfg.BGPAdvs {
		if i > 0 && cfg.BGPAdvs[i-1].Name >= a.Name {
			t.Fatal("BGPAdvs not sorted")
		}
		if a.AggregationLength < 1 || a.AggregationLength > 32 || a.AggregationLengthV6 < 1 || a.AggregationLengthV6 > 128 {
			t.Fatalf("adv %q aggregation %d/%d", a.Name, a.AggregationLength, a.AggregationLengthV6)
		}
		if len(a.Communities) > maxCommunities || !slices.IsSortedFunc(a.Communities, Community.Compare) {
			t.Fatalf("adv %q communities %v", a.Name, a.Communities)
		}
		if len(a.ServiceSelectors) > 0 && (a.AggregationLength != 32 || a.AggregationLengthV6 != 128) {
			t.Fatalf("adv %q: serviceSelectors with aggregation", a.Name)
		}
		checkAdvPools(t, cfg, a.Name, a.Pools)
		for _, pn := range a.Pools {
			if !slices.Contains(cfg.Pools[pn].BGPAdvertisements, a) {
				t.Fatalf("pool %q does not list adv %q", pn, a.Name)
			}
		}
	}
	checkAggregatesByBruteForce(t, cfg)
	checkNoConflictsByBruteForce(t, cfg)
	for _, a := range cfg.L2Advs {
		checkAdvPools(t, cfg, a.Name, a.Pools)
		for _, w := range a.PreferredNodes {
			if w.Weight < 1 || w.Weight > 100 {
				t.Fatalf("l2 adv %q weight %d", a.Name, w.Weight)
			}
		}
		for _, i := range a.Interfaces {
			if checkLinkName(i) != "" {
				t.Fatalf("l2 adv %q interface %q", a.Name, i)
			}
		}
	}
}

func checkAdvPools(t *testing.T, cfg *Config, adv string, pools []string) {
	t.Helper()
	if !slices.IsSorted(pools) || len(slices.Compact(slices.Clone(pools))) != len(pools) {
		t.Fatalf("adv %q pools %v", adv, pools)
	}
	for _, p := range pools {
		if cfg.Pools[p] == nil {
			t.Fatalf("adv %q names missing pool %q", adv, p)
		}
	}
}

// The generator draws every field from a small vocabulary of valid values
// (so that objects refer to and collide with each other) and, with odds
// chosen per input, from a vocabulary of invalid ones: some inputs are
// mostly valid, so that the Config invariants are exercised, others are
// full of mistakes.

var (
	fzNames      = []string{"a", "b", "c", "d", "e", "f"}
	fzBadNames   = []string{"Bad_Name", "", "a b"}
	fzLabelKeys  = []string{"rack", "zone", "tier"}
	fzLabelVals  = []string{"1", "2", "web", ""}
	fzIfaces     = []string{"eth0", "eth1", "bond0.100"}
	fzBadIfaces  = []string{"eth/0", "a-very-long-interface", "", "eth0\n"}
	fzBadAddrs   = []string{"::ffff:198.18.0.1", "fe80::1%eth0", "198.18.0", "", "2001:db8::1:"}
	fzCommunity  = []string{"65000:1", "65000:2", "large:1:2:3", "edge", "core"}
	fzBadComm    = []string{"65536:1", "1:2:3", "", "edge:1", "large:1:2"}
	fzDurations  = []time.Duration{3 * time.Second, 10 * time.Second, 30 * time.Second, 90 * time.Second}
	fzBadDurs    = []time.Duration{0, 500 * time.Millisecond, time.Second, -time.Second, 70000 * time.Second}
	fzBFDValues  = []uint32{2, 3, 10, 25, 50, 254, 300}
	fzBadBFDVals = []uint32{0, 1, 9, 255, 60001}
)

func fillInput(in *fuzzInput, c randfill.Continue) {
	odds := []int{3, 12, 60, 400, 5000}[c.Intn(5)]
	bad := func() bool { return c.Intn(odds) == 0 }
	pickBad := func(wrong []string) string {
		if c.Intn(4) == 0 {
			return c.String(8)
		}
		return wrong[c.Intn(len(wrong))]
	}
	pickOf := func(good, wrong []string) string {
		if bad() {
			return pickBad(wrong)
		}
		return good[c.Intn(len(good))]
	}
	n := func(max int) int { return c.Intn(max + 1) }
	name := func() string { return pickOf(fzNames, fzBadNames) }
	// Objects of one kind get distinct names (a, b, c, ...) unless the odds
	// say otherwise; references pick from the same names.
	meta := func(i int) metav1.ObjectMeta {
		objName := fzNames[i%len(fzNames)]
		if bad() {
			objName = name()
		}
		m := metav1.ObjectMeta{Name: objName, Namespace: pickOf([]string{testNS, testNS, ""}, []string{"default"})}
		if c.Intn(3) == 0 {
			m.Labels = map[string]string{fzLabelKeys[c.Intn(len(fzLabelKeys))]: fzLabelVals[c.Intn(len(fzLabelVals))]}
		}
		return m
	}
	labelKey := func() string { return pickOf(fzLabelKeys, []string{"bad key!", ""}) }
	labelVal := func() string { return pickOf(fzLabelVals, []string{"bad value!"}) }
	selector := func() metav1.LabelSelector {
		switch c.Intn(4) {
		case 0:
			return metav1.LabelSelector{}
		case 1:
			return metav1.LabelSelector{MatchLabels: map[string]string{labelKey(): labelVal()}}
		}
		ops := []metav1.LabelSelectorOperator{metav1.LabelSelectorOpIn, metav1.LabelSelectorOpNotIn, metav1.LabelSelectorOpExists, metav1.LabelSelectorOpDoesNotExist}
		r := metav1.LabelSelectorRequirement{Key: labelKey(), Operator: ops[c.Intn(len(ops))]}
		if bad() {
			r.Operator = "Near"
		}
		if r.Operator == metav1.LabelSelectorOpIn || r.Operator == metav1.LabelSelectorOpNotIn {
			r.Values = []string{labelVal()}
			if bad() {
				r.Values = append(r.Values, r.Values[0])
			}
		} else if bad() {
			r.Values = []string{"x"}
		}
		return metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{r}}
	}
	selectors := func() []metav1.LabelSelector {
		var s []metav1.LabelSelector
		for range n(2) {
			if c.Intn(2) == 0 {
				s = append(s, selector())
			}
		}
		return s
	}
	distinct := func(vocab []string, max int) []string {
		var s []string
		for _, i := range c.Perm(len(vocab))[:n(min(max, len(vocab)))] {
			s = append(s, vocab[i])
		}
		if len(s) > 0 && bad() {
			s = append(s, s[0])
		}
		return s
	}
	// Pool entries: every entry of every pool gets its own block (a /28
	// of 203.0.113.0/24 or 198.51.100.0/24, or 256 addresses of
	// 2001:db8::/116), so entries only overlap when the odds say so.
	blocks := c.Perm(64)
	entry := func(pool, k int) string {
		blk := blocks[(pool*3+k)%len(blocks)]
		if bad() {
			blk = c.Intn(64)
		}
		if bad() {
			return []string{c.String(12), "203.0.113.7", "203.0.113.9-203.0.113.1", "203.0.113.0/33", "::ffff:1.2.3.0/120"}[c.Intn(5)]
		}
		if blk < 32 {
			base := []string{"203.0.113", "198.51.100"}[blk/16]
			lo := (blk % 16) * 16
			if c.Intn(2) == 0 {
				a := lo + c.Intn(16)
				return fmt.Sprintf("%s.%d-%s.%d", base, a, base, a+c.Intn(lo+16-a))
			}
			bits := 28 + c.Intn(5)
			return fmt.Sprintf("%s.%d/%d", base, (lo+c.Intn(16))&^(1<<(32-bits)-1), bits)
		}
		lo := (blk - 32) * 256
		a := lo + c.Intn(256)
		if c.Intn(2) == 0 {
			return fmt.Sprintf("2001:db8::%x-2001:db8::%x", a, a+c.Intn(lo+256-a))
		}
		bits := 120 + c.Intn(9)
		return fmt.Sprintf("2001:db8::%x/%d", a&^(1<<(128-bits)-1), bits)
	}
	u32 := func() *uint32 {
		if c.Intn(2) == 0 {
			return nil
		}
		v := fzBFDValues[c.Intn(len(fzBFDValues))]
		if bad() {
			v = fzBadBFDVals[c.Intn(len(fzBadBFDVals))]
		}
		return &v
	}
	durp := func() *metav1.Duration {
		if c.Intn(2) == 0 {
			return nil
		}
		d := fzDurations[c.Intn(len(fzDurations))]
		if bad() {
			d = fzBadDurs[c.Intn(len(fzBadDurs))]
		}
		return &metav1.Duration{Duration: d}
	}

	in.Opts = Options{Namespace: testNS, BGPBackend: []v1beta1.BGPType{"", v1beta1.BGPTypeFRR, v1beta1.BGPTypeNative}[c.Intn(3)]}
	native := in.Opts.BGPBackend == v1beta1.BGPTypeNative
	r := &in.Res
	for i := range n(6) {
		p := v1beta1.IPAddressPool{ObjectMeta: meta(i)}
		for k := range 1 + n(2) {
			p.Spec.Addresses = append(p.Spec.Addresses, entry(i, k))
		}
		if bad() {
			p.Spec.Addresses = nil
		}
		if c.Intn(3) == 0 {
			p.Spec.AutoAssign = ptr(c.Intn(2) == 0)
		}
		p.Spec.AvoidBuggyIPs = c.Intn(2) == 0
		if c.Intn(4) == 0 {
			p.Spec.AllocateTo = &v1beta1.ServiceAllocation{Priority: c.Intn(3), Namespaces: distinct([]string{"web", "db"}, 2), NamespaceSelectors: selectors(), ServiceSelectors: selectors()}
		}
		r.Pools = append(r.Pools, p)
	}
	routerID := []string{"", "198.18.0.10"}[c.Intn(2)]
	for i := range n(4) {
		s := v1beta2.BGPPeerSpec{
			MyASN:                  65001,
			ASN:                    []uint32{65000, 65001, 65002}[c.Intn(3)],
			Address:                fmt.Sprintf("198.18.0.%d", 1+i),
			RouterID:               routerID,
			HoldTime:               durp(),
			KeepaliveTime:          durp(),
			ConnectTime:            durp(),
			EnableGracefulRestart:  c.Intn(2) == 0,
			DisableMP:              c.Intn(4) == 0,
			DualStackAddressFamily: c.Intn(3) == 0,
		}
		if c.Intn(3) == 0 {
			s.Address = fmt.Sprintf("2001:db8:1::%d", 1+i)
		}
		if bad() {
			s.Address = []string{"198.18.0.1", pickBad(fzBadAddrs)}[c.Intn(2)]
		}
		if c.Intn(3) == 0 && (!native || bad()) {
			s.Address, s.Interface = "", pickOf(fzIfaces, fzBadIfaces)
			if bad() {
				s.Address = "198.18.0.99"
			}
		}
		if c.Intn(3) == 0 {
			s.NodeSelectors = selectors()
		}
		if c.Intn(4) == 0 && (!native || bad()) {
			s.ASN, s.DynamicASN = 0, []v1beta2.DynamicASNMode{v1beta2.InternalASNMode, v1beta2.ExternalASNMode}[c.Intn(2)]
		}
		if bad() {
			s.DynamicASN = []v1beta2.DynamicASNMode{v1beta2.InternalASNMode, "x"}[c.Intn(2)]
		}
		if bad() {
			s.MyASN = []uint32{0, 65002}[c.Intn(2)]
		}
		if c.Intn(4) == 0 {
			s.LocalASN = 64999
			if bad() {
				s.LocalASN = s.MyASN
			}
		}
		if c.Intn(3) == 0 {
			s.EBGPMultiHop = s.ASN != s.MyASN || bad()
		}
		if c.Intn(3) == 0 {
			s.Port = ptr[uint16](1179)
			if bad() {
				*s.Port = 0
			}
		}
		if c.Intn(4) == 0 {
			s.SrcAddress = "198.18.0.100"
			if bad() {
				s.SrcAddress = pickBad(fzBadAddrs)
			}
		}
		if bad() {
			s.RouterID = []string{"198.18.0.11", "2001:db8::1"}[c.Intn(2)]
		}
		if c.Intn(4) == 0 {
			s.VRFName = pickOf([]string{"red"}, []string{"bad/vrf", "a-very-long-vrf-name"})
		}
		if c.Intn(3) == 0 && (!native || bad()) {
			s.BFDProfile = pickOf([]string{"a", "b"}, []string{"Bad Name", "later"})
		}
		switch c.Intn(4) {
		case 0:
			s.Password = pickOf([]string{"secret"}, []string{"new\nline", strings.Repeat("x", 81), "\xff"})
		case 1:
			s.PasswordSecret = corev1.SecretReference{Name: name()}
			if bad() {
				s.PasswordSecret.Namespace = "default"
			}
			if bad() {
				s.Password = "both"
			}
		}
		r.Peers = append(r.Peers, v1beta2.BGPPeer{ObjectMeta: meta(i), Spec: s})
	}
	for i := range n(3) {
		s := v1beta1.BGPAdvertisementSpec{IPAddressPools: distinct(fzNames, 2), Peers: distinct(fzNames, 2)}
		if c.Intn(4) == 0 {
			s.AggregationLength = ptr(int32(20 + c.Intn(13)))
			if bad() {
				*s.AggregationLength = []int32{-1, 0, 33}[c.Intn(3)]
			}
		}
		if c.Intn(4) == 0 {
			s.AggregationLengthV6 = ptr(int32(112 + c.Intn(17)))
			if bad() {
				*s.AggregationLengthV6 = []int32{0, 129}[c.Intn(2)]
			}
		}
		if c.Intn(3) == 0 {
			s.LocalPref = []uint32{100, 200}[c.Intn(2)]
		}
		if c.Intn(3) == 0 {
			s.IPAddressPoolSelectors = selectors()
		}
		if c.Intn(3) == 0 {
			s.NodeSelectors = selectors()
		}
		if c.Intn(4) == 0 && (s.AggregationLength == nil && s.AggregationLengthV6 == nil || bad()) {
			s.ServiceSelectors = selectors()
		}
		s.Communities = distinct(fzCommunity, 3)
		if bad() {
			s.Communities = append(s.Communities, pickBad(fzBadComm))
		}
		if bad() {
			for i := range 64 {
				s.Communities = append(s.Communities, fmt.Sprintf("1:%d", i))
			}
		}
		r.BGPAdvs = append(r.BGPAdvs, v1beta1.BGPAdvertisement{ObjectMeta: meta(i), Spec: s})
	}
	for i := range n(2) {
		s := v1beta1.L2AdvertisementSpec{IPAddressPools: distinct(fzNames, 2), Interfaces: distinct(fzIfaces, 2)}
		if bad() {
			s.Interfaces = append(s.Interfaces, pickBad(fzBadIfaces))
		}
		if c.Intn(3) == 0 {
			s.IPAddressPoolSelectors = selectors()
		}
		if c.Intn(3) == 0 {
			s.NodeSelectors = selectors()
		}
		if c.Intn(3) == 0 {
			s.ServiceSelectors = selectors()
		}
		for range n(2) {
			w := int32(1 + c.Intn(100))
			if bad() {
				w = []int32{0, 101, -1}[c.Intn(3)]
			}
			s.PreferredNodeSelectors = append(s.PreferredNodeSelectors, v1beta1.PreferredNodeSelector{Weight: w, Preference: selector()})
		}
		r.L2Advs = append(r.L2Advs, v1beta1.L2Advertisement{ObjectMeta: meta(i), Spec: s})
	}
	for i := range n(2) {
		s := v1beta1.BFDProfileSpec{ReceiveInterval: u32(), TransmitInterval: u32(), DetectMultiplier: u32(), EchoInterval: u32(), MinimumTTL: u32()}
		// The generic values cover every field's range; keep the valid
		// draws valid for each field.
		for _, f := range []struct {
			v      **uint32
			lo, hi uint32
		}{{&s.ReceiveInterval, 10, 60000}, {&s.TransmitInterval, 10, 60000}, {&s.EchoInterval, 10, 60000}, {&s.DetectMultiplier, 2, 255}, {&s.MinimumTTL, 1, 254}} {
			if *f.v != nil && (**f.v < f.lo || **f.v > f.hi) && !bad() {
				*f.v = nil
			}
		}
		if c.Intn(2) == 0 {
			s.EchoMode = ptr(c.Intn(2) == 0)
		}
		if c.Intn(2) == 0 {
			s.PassiveMode = ptr(c.Intn(2) == 0)
		}
		r.BFDProfiles = append(r.BFDProfiles, v1beta1.BFDProfile{ObjectMeta: meta(i), Spec: s})
	}
	for i := range n(2) {
		co := v1beta1.Community{ObjectMeta: meta(i)}
		for _, alias := range distinct([]string{"edge", "core", "edge:1"}, 2) {
			co.Spec.Communities = append(co.Spec.Communities, v1beta1.CommunityAlias{Name: alias, Value: pickOf([]string{"65000:1", "large:1:2:3"}, fzBadComm)})
		}
		if bad() {
			co.Spec.Communities = append(co.Spec.Communities, v1beta1.CommunityAlias{Name: pickBad([]string{"", "65000:1"}), Value: "1:1"})
		}
		r.Communities = append(r.Communities, co)
	}
	for i := range n(3) {
		s := corev1.Secret{ObjectMeta: meta(i), Type: corev1.SecretTypeBasicAuth, Data: map[string][]byte{"password": []byte("pw")}}
		if bad() {
			s.Type = corev1.SecretTypeOpaque
		}
		if bad() {
			s.Data = map[string][]byte{"username": []byte("u")}
		}
		if bad() {
			s.Data["password"] = []byte("a\nb")
		}
		r.Secrets = append(r.Secrets, s)
	}
	for range n(3) {
		r.Nodes = append(r.Nodes, corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name(), Labels: map[string]string{fzLabelKeys[c.Intn(3)]: fzLabelVals[c.Intn(4)]}}})
	}
	for range n(2) {
		r.Namespaces = append(r.Namespaces, corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name(), Labels: map[string]string{fzLabelKeys[c.Intn(3)]: fzLabelVals[c.Intn(4)]}}})
	}
}

// checkAggregatesByBruteForce re-checks the aggregation rule without the
// index: an aggregate shorter than an entry's widest CIDR covers no address
// of another pool.
func checkAggregatesByBruteForce(t *testing.T, cfg *Config) {
	t.Helper()
	for _, a := range cfg.BGPAdvs {
		for _, pn := range a.Pools {
			for _, r := range cfg.Pools[pn].Ranges {
				length := a.AggregationLength
				if !r.Is4() {
					length = a.AggregationLengthV6
				}
				if length >= widestBits(r.CIDRs) {
					continue
				}
				lo := netip.PrefixFrom(r.First, length).Masked().Addr()
				hi := iprange.LastAddr(netip.PrefixFrom(r.Last, length).Masked())
				for _, on := range cfg.PoolNames {
					if on == pn {
						continue
					}
					for _, o := range cfg.Pools[on].Ranges {
						if o.First.Compare(hi) <= 0 && lo.Compare(o.Last) <= 0 {
							t.Fatalf("adv %q: aggregate %v-%v of pool %q entry %q covers pool %q entry %q", a.Name, lo, hi, pn, r.Spec, on, o.Spec)
						}
					}
				}
			}
		}
	}
}

// checkNoConflictsByBruteForce re-checks, pair by pair, the conflicts that
// are certain whatever the nodes: duplicate sessions and localPref
// conflicts between objects that select every node.
func checkNoConflictsByBruteForce(t *testing.T, cfg *Config) {
	t.Helper()
	for i, x := range cfg.PeerNames {
		for _, y := range cfg.PeerNames[i+1:] {
			p, q := cfg.Peers[x], cfg.Peers[y]
			kp, _ := peerKey(p)
			kq, _ := peerKey(q)
			if kp == kq && len(p.NodeSelectors) == 0 && len(q.NodeSelectors) == 0 {
				t.Fatalf("peers %q and %q are the same session on every node", x, y)
			}
			if cfg.BGPBackend != v1beta1.BGPTypeNative && p.VRF == q.VRF && len(p.NodeSelectors) == 0 && len(q.NodeSelectors) == 0 &&
				(p.MyASN != q.MyASN || p.RouterID != q.RouterID) {
				t.Fatalf("frr peers %q and %q disagree on AS or router ID", x, y)
			}
		}
	}
	for i, a := range cfg.BGPAdvs {
		for _, b := range cfg.BGPAdvs[i+1:] {
			if a.LocalPref == b.LocalPref || len(a.ServiceSelectors) > 0 || len(b.ServiceSelectors) > 0 ||
				len(a.NodeSelectors) > 0 || len(b.NodeSelectors) > 0 || !peersOverlap(a, b) {
				continue
			}
			for _, pn := range a.Pools {
				if containsSorted(b.Pools, pn) && !aggregationDiffers(a, b, cfg.Pools[pn]) {
					t.Fatalf("advs %q and %q announce pool %q with localPref %d and %d", a.Name, b.Name, pn, a.LocalPref, b.LocalPref)
				}
			}
		}
	}
}

// TestFuzzGenerator keeps FuzzBuild's generator useful: a fair share of its
// inputs must be valid configurations (or the Config invariants are never
// checked) and the others must reach the main rules. It also runs the
// invariants over a fixed set of seeds in every `go test`.
func TestFuzzGenerator(t *testing.T) {
	const seeds = 400
	valid := 0
	seen := map[string]bool{}
	for seed := range int64(seeds) {
		var in fuzzInput
		randfill.NewWithSeed(seed).Funcs(fillInput).Fill(&in)
		r := Build(in.Res, in.Opts)
		checkResult(t, in, r)
		if r.Config != nil {
			valid++
		}
		for _, p := range append(slices.Clone(r.Errors), r.Warnings...) {
			for _, what := range []string{" overlaps ", "would announce", "also cover", "does not exist (yet)", "not supported with bgpBackend native", "differs from", "same BGP session", "echoMode"} {
				if strings.Contains(p.Message, what) {
					seen[what] = true
				}
			}
		}
	}
	if valid < seeds/10 {
		t.Errorf("only %d of %d generated configurations are valid", valid, seeds)
	}
	for _, what := range []string{" overlaps ", "would announce", "also cover", "does not exist (yet)", "not supported with bgpBackend native", "differs from", "same BGP session", "echoMode"} {
		if !seen[what] {
			t.Errorf("no generated configuration produced %q", what)
		}
	}
	t.Logf("%d of %d valid", valid, seeds)
}
