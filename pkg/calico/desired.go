package calico

import (
	"net/netip"
	"slices"

	v3 "github.com/projectcalico/api/pkg/apis/projectcalico/v3"

	"github.com/lbstack/lbstack/pkg/community"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/iprange"
)

// Desired is the part of Calico's default BGPConfiguration that lbstack
// owns in the Calico announcement mode.
type Desired struct {
	// ServiceLoadBalancerIPs are the CIDRs of every pool that at least one
	// BGPAdvertisement selects, sorted (IPv4 first, then by address), without
	// duplicates. Each pool's CIDRs hold exactly its addresses.
	ServiceLoadBalancerIPs []netip.Prefix
	// PrefixAdvertisements tag the CIDRs whose pools' advertisements carry
	// communities, in the order of ServiceLoadBalancerIPs; a CIDR without
	// communities has none.
	PrefixAdvertisements []PrefixAdvertisement
	// Pools are the announced pools, sorted by name: what each contributes,
	// for status and messages.
	Pools []AnnouncedPool
}

// PrefixAdvertisement is one spec.prefixAdvertisements entry.
type PrefixAdvertisement struct {
	CIDR netip.Prefix
	// Communities are literal values as Calico writes them: "aa:nn"
	// (standard) and "aa:nn:mm" (large), standard first, each sorted
	// numerically. Calico also accepts names defined in spec.communities;
	// literals keep lbstack out of that list, which users edit too.
	Communities []string
}

// AnnouncedPool is one pool that some BGPAdvertisement selects.
type AnnouncedPool struct {
	Name string
	// CIDRs cover exactly the pool's addresses, in address order.
	CIDRs []netip.Prefix
	// Advertisements are the names of the BGPAdvertisements selecting the
	// pool, sorted.
	Advertisements []string
	// Communities are the union of their communities, sorted.
	Communities []community.Community
}

// Compute derives the desired Calico fields from a built configuration.
// Pools only an L2Advertisement selects stay out: layer 2 keeps announcing
// them from the speakers.
func Compute(c *config.Config) Desired {
	var d Desired
	if c == nil {
		return d
	}
	byCIDR := map[netip.Prefix][]community.Community{}
	for _, name := range c.PoolNames {
		p := c.Pools[name]
		if len(p.BGPAdvertisements) == 0 {
			continue
		}
		ap := AnnouncedPool{Name: name, CIDRs: PoolCIDRs(p)}
		for _, adv := range p.BGPAdvertisements {
			ap.Advertisements = append(ap.Advertisements, adv.Name)
			ap.Communities = append(ap.Communities, adv.Communities...)
		}
		slices.Sort(ap.Advertisements)
		ap.Communities = sortedCommunities(ap.Communities)
		d.Pools = append(d.Pools, ap)
		for _, cidr := range ap.CIDRs {
			// Pools are disjoint, so a CIDR belongs to one pool; merging
			// anyway keeps the result right if that ever changes.
			byCIDR[cidr] = sortedCommunities(append(byCIDR[cidr], ap.Communities...))
		}
	}
	for cidr := range byCIDR {
		d.ServiceLoadBalancerIPs = append(d.ServiceLoadBalancerIPs, cidr)
	}
	slices.SortFunc(d.ServiceLoadBalancerIPs, iprange.ComparePrefixes)
	for _, cidr := range d.ServiceLoadBalancerIPs {
		if cs := byCIDR[cidr]; len(cs) > 0 {
			std, large := community.Split(cs)
			d.PrefixAdvertisements = append(d.PrefixAdvertisements, PrefixAdvertisement{CIDR: cidr, Communities: append(std, large...)})
		}
	}
	return d
}

// Spec returns a BGPConfiguration spec holding only the fields lbstack
// owns: the body of its server-side apply, so that every other field stays
// with whoever set it. Empty lists are left out (omitempty), which is how an
// apply gives up lbstack's entries.
func (d Desired) Spec() v3.BGPConfigurationSpec {
	var s v3.BGPConfigurationSpec
	for _, p := range d.ServiceLoadBalancerIPs {
		s.ServiceLoadBalancerIPs = append(s.ServiceLoadBalancerIPs, v3.ServiceLoadBalancerIPBlock{CIDR: p.String()})
	}
	for _, pa := range d.PrefixAdvertisements {
		s.PrefixAdvertisements = append(s.PrefixAdvertisements, v3.PrefixAdvertisement{
			CIDR:        pa.CIDR.String(),
			Communities: slices.Clone(pa.Communities),
		})
	}
	return s
}

// PoolCIDRs returns the fewest CIDRs that hold exactly the pool's
// addresses, in address order: the pool's ranges are merged where they
// touch (two entries 203.0.113.0-203.0.113.127 and 203.0.113.128/25 give
// 203.0.113.0/24), then each span is split into aligned blocks. A range
// a-b is always exactly a union of CIDRs, so no address outside the pool is
// ever covered.
func PoolCIDRs(p *config.Pool) []netip.Prefix {
	if p == nil {
		return nil
	}
	spans := make([][2]netip.Addr, 0, len(p.Ranges))
	for _, r := range p.Ranges {
		spans = append(spans, [2]netip.Addr{r.First, r.Last})
	}
	slices.SortFunc(spans, func(a, b [2]netip.Addr) int { return a[0].Compare(b[0]) })
	var merged [][2]netip.Addr
	for _, s := range spans {
		if n := len(merged); n > 0 {
			last := &merged[n-1]
			next := last[1].Next() // invalid past the family's last address
			if next.IsValid() && next.Is4() == s[0].Is4() && s[0].Compare(next) <= 0 {
				if s[1].Compare(last[1]) > 0 {
					last[1] = s[1]
				}
				continue
			}
		}
		merged = append(merged, s)
	}
	var out []netip.Prefix
	for _, s := range merged {
		out = append(out, iprange.Summarize(s[0], s[1])...)
	}
	return out
}

func sortedCommunities(cs []community.Community) []community.Community {
	slices.SortFunc(cs, community.Community.Compare)
	return slices.Compact(cs)
}
