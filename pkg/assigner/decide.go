package assigner

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/lbstack/lbstack/pkg/ipam"
)

// outcome is what decide settled for one Service.
type outcome struct {
	// Assignment is what the Service holds now; no IPs when it holds
	// nothing (Err says why).
	Assignment ipam.Assignment
	// Err is why the Service has no address; nil on success.
	Err error
	// Dropped are addresses of the Service's status that it does not hold
	// any more, and DropReason why.
	Dropped    []netip.Addr
	DropReason string
	// Note is set when the pool annotation matched a pool ignoring case.
	Note string
}

// decide settles the addresses of a Service the controller serves, given
// what its status shows (status, IPv4 first). It is the whole allocation
// policy, free of Kubernetes I/O:
//
//  1. Explicit addresses (metallb.io/loadBalancerIPs, spec.loadBalancerIP)
//     must all lie in one pool that may serve the Service; ipam then checks
//     avoidBuggyIPs and sharing.
//  2. Otherwise the addresses the Service already has (held by the
//     allocator, or shown in its status after a restart) are kept when
//     their pool still contains them and may still serve the Service, for
//     the families it still wants. autoAssign does not matter for keeping.
//  3. Anything missing is allocated from the pool kept in 2, then from the
//     pools chosen by poolIndex.choose, lowest free address first.
//
// On failure the Service holds nothing (MetalLB clears it too). The
// allocator is changed accordingly; the caller writes the result.
func decide(a *ipam.Allocator, x *poolIndex, in *intent, nsLabels map[string]string, status []netip.Addr) outcome {
	var out outcome
	ch, err := x.choose(in, nsLabels)
	out.Note = ch.Note
	if err != nil {
		a.Release(in.Key)
		return out.failed(err, status, nil)
	}
	held, isHeld := a.Assigned(in.Key)

	var as ipam.Assignment
	var dropWhy error
	if len(in.IPs) > 0 {
		as, err = x.assignExplicit(a, in, ch.Pinned, nsLabels)
	} else {
		cur := status
		if isHeld {
			cur = held.IPs
		}
		pools := ch.Alloc
		if keep := keepable(cur, in); len(keep) > 0 {
			if p, cerr := x.claim(a, in, ch.Pinned, nsLabels, keep); cerr == nil {
				if !in.Required || len(keep) == len(in.Families) {
					// It holds what it asks for, in p: Assign keeps it
					// whatever the other candidates (ipam's matches), so
					// they need not be listed (there may be thousands).
					pools = []string{p}
				} else {
					// A family to add: p first, then the other candidates.
					pools = append([]string{p}, slices.DeleteFunc(slices.Clone(pools), func(s string) bool { return s == p })...)
				}
			} else {
				dropWhy = cerr
				a.Release(in.Key) // what it holds is no longer valid
			}
		} else if isHeld {
			a.Release(in.Key)
		}
		if len(pools) == 0 {
			err = x.noPool()
		} else {
			req := in.request()
			req.Pools = pools
			as, err = a.Assign(req)
		}
	}
	if err != nil {
		a.Release(in.Key)
		return out.failed(err, status, dropWhy)
	}
	out.Assignment = as
	for _, ip := range status {
		if !slices.Contains(as.IPs, ip) {
			out.Dropped = append(out.Dropped, ip)
		}
	}
	if len(out.Dropped) > 0 {
		out.DropReason = dropReason(in, out.Dropped, dropWhy)
	}
	return out
}

func (out outcome) failed(err error, status []netip.Addr, dropWhy error) outcome {
	out.Err = err
	out.Dropped = status
	if len(status) > 0 {
		if dropWhy == nil {
			dropWhy = err
		}
		out.DropReason = dropWhy.Error()
	}
	return out
}

// keepable returns the addresses of cur of the families the Service still
// wants, at most one per family.
func keepable(cur []netip.Addr, in *intent) []netip.Addr {
	var out []netip.Addr
	var seen4, seen6 bool
	for _, ip := range cur {
		if !in.wants(ip) {
			continue
		}
		if ip.Is4() {
			if seen4 {
				continue
			}
			seen4 = true
		} else {
			if seen6 {
				continue
			}
			seen6 = true
		}
		out = append(out, ip)
	}
	return out
}

// claim makes the allocator hold ips for the Service if it may keep them:
// they lie in one pool that may serve it, are still assignable there
// (avoidBuggyIPs) and shareable with whoever else holds them. It returns
// the pool. For a Service with explicit addresses, ips must be those.
func (x *poolIndex) claim(a *ipam.Allocator, in *intent, pinned string, nsLabels map[string]string, ips []netip.Addr) (string, error) {
	p, err := x.poolOf(ips)
	if err != nil {
		return "", err
	}
	if why := x.refuses(p, pinned, in, nsLabels); why != "" {
		return "", userErrorf("%s is in ipaddresspool %q, which may no longer serve this Service: %s", ips[0], p.Name, why)
	}
	req := in.request()
	req.Pools = []string{p.Name}
	req.IPs = in.IPs
	if len(in.IPs) == 0 && in.Required && len(ips) < len(in.Families) {
		// Keep the one address while the other family is added.
		req.Required = false
	}
	if err := a.Claim(req, ips); err != nil {
		return "", err
	}
	return p.Name, nil
}

// assignExplicit gives the Service the addresses it asks for.
func (x *poolIndex) assignExplicit(a *ipam.Allocator, in *intent, pinned string, nsLabels map[string]string) (ipam.Assignment, error) {
	p, err := x.poolOf(in.IPs)
	if err != nil {
		return ipam.Assignment{}, err
	}
	if why := x.refuses(p, pinned, in, nsLabels); why != "" {
		return ipam.Assignment{}, kindErrorf(ipam.ErrNotInPool, "%s (%s) is in ipaddresspool %q, which may not serve this Service: %s", joinAddrs(in.IPs), in.IPsFrom, p.Name, why)
	}
	req := in.request()
	req.IPs = in.IPs
	req.Pools = []string{p.Name}
	return a.Assign(req)
}

// noPool explains why no pool is a candidate.
func (x *poolIndex) noPool() error {
	if len(x.cfg.PoolNames) == 0 {
		return kindErrorf(ipam.ErrNoPool, "there is no IPAddressPool; create one")
	}
	return kindErrorf(ipam.ErrNoPool, "no ipaddresspool may give this Service an address automatically: every pool (%s) has autoAssign: false or a serviceAllocation that does not admit it; name a pool with metallb.io/address-pool, ask for an address with metallb.io/loadBalancerIPs, or add a pool",
		listNames(x.cfg.PoolNames, 10))
}

func dropReason(in *intent, dropped []netip.Addr, why error) string {
	if why != nil {
		return why.Error()
	}
	for _, ip := range dropped {
		if !in.wants(ip) {
			return fmt.Sprintf("the Service no longer asks for an %s address (spec.ipFamilyPolicy, spec.ipFamilies)", family(ip))
		}
	}
	if len(in.IPs) > 0 {
		return fmt.Sprintf("the Service now asks for %s (%s)", joinAddrs(in.IPs), in.IPsFrom)
	}
	return "the address no longer fits the Service's request"
}

func family(ip netip.Addr) string {
	if ip.Is4() {
		return "IPv4"
	}
	return "IPv6"
}

func joinAddrs(ips []netip.Addr) string {
	s := make([]string, len(ips))
	for i, ip := range ips {
		s[i] = ip.String()
	}
	return strings.Join(s, ", ")
}
