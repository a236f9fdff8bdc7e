package calico

import (
	"encoding/json"
	"math/rand/v2"
	"net/netip"
	"slices"
	"testing"

	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/iprange"
)

func prefixes(ss ...string) []netip.Prefix {
	var out []netip.Prefix
	for _, s := range ss {
		out = append(out, netip.MustParsePrefix(s))
	}
	return out
}

func TestPoolCIDRs(t *testing.T) {
	for _, tc := range []struct {
		name      string
		addresses string // the pool's spec.addresses, YAML flow list
		want      []netip.Prefix
	}{
		{"one CIDR", `[203.0.113.0/24]`, prefixes("203.0.113.0/24")},
		{"CIDR with a single address", `[203.0.113.7/32]`, prefixes("203.0.113.7/32")},
		{"aligned range is one CIDR", `[203.0.113.0-203.0.113.255]`, prefixes("203.0.113.0/24")},
		{"unaligned range", `[203.0.113.10-203.0.113.20]`,
			prefixes("203.0.113.10/31", "203.0.113.12/30", "203.0.113.16/30", "203.0.113.20/32")},
		{"range of one address", `[203.0.113.9-203.0.113.9]`, prefixes("203.0.113.9/32")},
		{"touching entries merge", `[203.0.113.0-203.0.113.127, 203.0.113.128/25]`, prefixes("203.0.113.0/24")},
		{"touching entries in any order", `[203.0.113.128/25, 203.0.113.0/25]`, prefixes("203.0.113.0/24")},
		{"merged span split where unaligned", `[203.0.113.1-203.0.113.127, 203.0.113.128/25]`,
			prefixes("203.0.113.1/32", "203.0.113.2/31", "203.0.113.4/30", "203.0.113.8/29", "203.0.113.16/28",
				"203.0.113.32/27", "203.0.113.64/26", "203.0.113.128/25")},
		{"gap keeps entries apart", `[203.0.113.0/25, 198.51.100.0/24]`, prefixes("198.51.100.0/24", "203.0.113.0/25")},
		{"IPv6 range", `[2001:db8::1-2001:db8::ff]`,
			prefixes("2001:db8::1/128", "2001:db8::2/127", "2001:db8::4/126", "2001:db8::8/125", "2001:db8::10/124",
				"2001:db8::20/123", "2001:db8::40/122", "2001:db8::80/121")},
		{"dual stack, IPv4 first", `[2001:db8::/120, 203.0.113.0/24]`, prefixes("203.0.113.0/24", "2001:db8::/120")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := build(t, "kind: IPAddressPool\nmetadata: {name: p}\nspec: {addresses: "+tc.addresses+"}\n")
			if got := PoolCIDRs(c.Pools["p"]); !slices.Equal(got, tc.want) {
				t.Errorf("PoolCIDRs(%s) = %v, want %v", tc.addresses, got, tc.want)
			}
		})
	}
}

// TestPoolCIDRsExact: for random ranges of both families, the CIDRs are
// aligned, disjoint, in order, and together hold exactly the range's
// addresses (the Calico mode must never announce an address outside a
// pool).
func TestPoolCIDRsExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(19, 19))
	for i := 0; i < 2000; i++ {
		var first, last netip.Addr
		if i%2 == 0 {
			a := rng.Uint32()
			b := a + rng.Uint32N(1<<uint(rng.IntN(20)))
			if b < a {
				b = ^uint32(0)
			}
			first, last = netip.AddrFrom4([4]byte{byte(a >> 24), byte(a >> 16), byte(a >> 8), byte(a)}),
				netip.AddrFrom4([4]byte{byte(b >> 24), byte(b >> 16), byte(b >> 8), byte(b)})
		} else {
			base := netip.MustParseAddr("2001:db8::").As16()
			lo := rng.Uint64() >> 1
			hi := lo + rng.Uint64N(1<<uint(rng.IntN(40)))
			first, last = iprange.U128{Hi: beUint64(base[:8]), Lo: lo}.Addr(false), iprange.U128{Hi: beUint64(base[:8]), Lo: hi}.Addr(false)
		}
		pool := &config.Pool{Ranges: []config.AddrRange{{First: first, Last: last}}}
		got := PoolCIDRs(pool)
		next := first
		for j, p := range got {
			if p.Masked() != p {
				t.Fatalf("%s-%s: %v is not aligned", first, last, p)
			}
			if p.Addr() != next {
				t.Fatalf("%s-%s: CIDR %d is %v, expected it to start at %s (CIDRs %v)", first, last, j, p, next, got)
			}
			next = iprange.LastAddr(p).Next()
		}
		if end := iprange.LastAddr(got[len(got)-1]); end != last {
			t.Fatalf("%s-%s: CIDRs end at %s (CIDRs %v)", first, last, end, got)
		}
	}
}

func beUint64(b []byte) uint64 {
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

func TestCompute(t *testing.T) {
	const pools = `kind: IPAddressPool
metadata: {name: frontend}
spec: {addresses: [203.0.113.10-203.0.113.13]}
---
kind: IPAddressPool
metadata: {name: backend, labels: {tier: backend}}
spec: {addresses: [198.51.100.0/24, 2001:db8:1::/120]}
---
kind: IPAddressPool
metadata: {name: l2only}
spec: {addresses: [203.0.113.128/25]}
---
kind: L2Advertisement
metadata: {name: l2}
spec: {ipAddressPools: [l2only]}
`
	for _, tc := range []struct {
		name string
		advs string
		// want is the JSON of Desired.Spec().
		want string
	}{
		{
			name: "no BGPAdvertisement announces nothing",
			advs: ``,
			want: `{}`,
		},
		{
			name: "advertisement without communities: CIDRs only",
			advs: `kind: BGPAdvertisement
metadata: {name: adv}
spec: {ipAddressPools: [frontend]}`,
			want: `{"serviceLoadBalancerIPs":[{"cidr":"203.0.113.10/31"},{"cidr":"203.0.113.12/31"}]}`,
		},
		{
			name: "empty pool list selects every pool, layer-2 ones too",
			advs: `kind: BGPAdvertisement
metadata: {name: adv}`,
			want: `{"serviceLoadBalancerIPs":[{"cidr":"198.51.100.0/24"},{"cidr":"203.0.113.10/31"},{"cidr":"203.0.113.12/31"},{"cidr":"203.0.113.128/25"},{"cidr":"2001:db8:1::/120"}]}`,
		},
		{
			name: "pool selector, standard and large communities, an alias",
			advs: `kind: Community
metadata: {name: aliases}
spec: {communities: [{name: calico-large, value: "large:65535:300:100"}]}
---
kind: BGPAdvertisement
metadata: {name: adv}
spec:
  ipAddressPoolSelectors: [{matchLabels: {tier: backend}}]
  communities: [calico-large, "65535:120"]`,
			want: `{"serviceLoadBalancerIPs":[{"cidr":"198.51.100.0/24"},{"cidr":"2001:db8:1::/120"}],` +
				`"prefixAdvertisements":[{"cidr":"198.51.100.0/24","communities":["65535:120","65535:300:100"]},` +
				`{"cidr":"2001:db8:1::/120","communities":["65535:120","65535:300:100"]}]}`,
		},
		{
			name: "two advertisements of one pool: union of their communities, no duplicates",
			advs: `kind: BGPAdvertisement
metadata: {name: a}
spec: {ipAddressPools: [frontend], communities: ["65535:120", "large:1:2:3"]}
---
kind: BGPAdvertisement
metadata: {name: b}
spec: {ipAddressPools: [frontend], communities: ["65535:120", "100:1"]}
---
kind: BGPAdvertisement
metadata: {name: c}
spec: {ipAddressPools: [backend]}`,
			want: `{"serviceLoadBalancerIPs":[{"cidr":"198.51.100.0/24"},{"cidr":"203.0.113.10/31"},{"cidr":"203.0.113.12/31"},{"cidr":"2001:db8:1::/120"}],` +
				`"prefixAdvertisements":[{"cidr":"203.0.113.10/31","communities":["100:1","65535:120","1:2:3"]},` +
				`{"cidr":"203.0.113.12/31","communities":["100:1","65535:120","1:2:3"]}]}`,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := Compute(build(t, pools+"---\n"+tc.advs))
			got, err := json.Marshal(d.Spec())
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Errorf("Spec():\n got %s\nwant %s", got, tc.want)
			}
			if !slices.IsSortedFunc(d.ServiceLoadBalancerIPs, iprange.ComparePrefixes) || len(slices.Compact(slices.Clone(d.ServiceLoadBalancerIPs))) != len(d.ServiceLoadBalancerIPs) {
				t.Errorf("ServiceLoadBalancerIPs not sorted and unique: %v", d.ServiceLoadBalancerIPs)
			}
		})
	}
}

func TestComputeAnnouncedPools(t *testing.T) {
	c := build(t, `kind: IPAddressPool
metadata: {name: p}
spec: {addresses: [203.0.113.0/25, 203.0.113.128-203.0.113.255]}
---
kind: IPAddressPool
metadata: {name: quiet}
spec: {addresses: [198.51.100.0/24]}
---
kind: BGPAdvertisement
metadata: {name: b}
spec: {ipAddressPools: [p], communities: ["65535:120"]}
---
kind: BGPAdvertisement
metadata: {name: a}
spec: {ipAddressPools: [p]}
`)
	d := Compute(c)
	if len(d.Pools) != 1 {
		t.Fatalf("Pools = %+v, want only p", d.Pools)
	}
	p := d.Pools[0]
	if p.Name != "p" || !slices.Equal(p.CIDRs, prefixes("203.0.113.0/24")) || !slices.Equal(p.Advertisements, []string{"a", "b"}) || len(p.Communities) != 1 {
		t.Errorf("announced pool = %+v, want p with 203.0.113.0/24, advertisements a and b, one community", p)
	}
	if Compute(nil).Spec().ServiceLoadBalancerIPs != nil {
		t.Error("Compute(nil) announces something")
	}
}
