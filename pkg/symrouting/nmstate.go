package symrouting

import (
	"net/netip"
	"strings"

	"sigs.k8s.io/yaml"
)

// nmState is the part of an nmstate document the checks read.
type nmState struct {
	Interfaces []nmIface `json:"interfaces,omitempty"`
	Routes     struct {
		Config []nmRoute `json:"config,omitempty"`
	} `json:"routes,omitempty"`
	RouteRules struct {
		Config []nmRule `json:"config,omitempty"`
	} `json:"route-rules,omitempty"`
}

type nmIface struct {
	Name  string `json:"name"`
	Type  string `json:"type,omitempty"`
	State string `json:"state,omitempty"`
	VRF   *struct {
		Port         []string `json:"port,omitempty"`
		RouteTableID *int64   `json:"route-table-id,omitempty"`
	} `json:"vrf,omitempty"`
	IPv4 *nmIP `json:"ipv4,omitempty"`
	IPv6 *nmIP `json:"ipv6,omitempty"`
}

type nmIP struct {
	Enabled *bool `json:"enabled,omitempty"`
	Address []struct {
		IP           string `json:"ip"`
		PrefixLength int    `json:"prefix-length"`
	} `json:"address,omitempty"`
}

type nmRoute struct {
	Destination      string `json:"destination,omitempty"`
	NextHopInterface string `json:"next-hop-interface,omitempty"`
	NextHopAddress   string `json:"next-hop-address,omitempty"`
	TableID          *int64 `json:"table-id,omitempty"`
	State            string `json:"state,omitempty"`
}

type nmRule struct {
	IPTo       string `json:"ip-to,omitempty"`
	IPFrom     string `json:"ip-from,omitempty"`
	Priority   *int64 `json:"priority,omitempty"`
	RouteTable *int64 `json:"route-table,omitempty"`
	Family     string `json:"family,omitempty"`
	State      string `json:"state,omitempty"`
}

func parseState(raw []byte) (nmState, error) {
	var s nmState
	if len(strings.TrimSpace(string(raw))) == 0 {
		return s, nil
	}
	err := yaml.Unmarshal(raw, &s)
	return s, err
}

// iface returns the index of the interface named name (not absent), or -1.
func (s *nmState) iface(name string) int {
	for i := range s.Interfaces {
		if s.Interfaces[i].Name == name && s.Interfaces[i].State != "absent" {
			return i
		}
	}
	return -1
}

func (i *nmIface) up() bool { return i.State == "" || i.State == "up" }

func (i *nmIface) table() int64 {
	if i.VRF == nil || i.VRF.RouteTableID == nil {
		return 0
	}
	return *i.VRF.RouteTableID
}

// addrs returns the enabled static addresses of the interface.
func (i *nmIface) addrs() []netip.Addr {
	var out []netip.Addr
	for _, ip := range []*nmIP{i.IPv4, i.IPv6} {
		if ip == nil || (ip.Enabled != nil && !*ip.Enabled) {
			continue
		}
		for _, a := range ip.Address {
			if addr, err := netip.ParseAddr(a.IP); err == nil {
				out = append(out, addr.Unmap())
			}
		}
	}
	return out
}

// keepsInMain reports whether the rule sends traffic to all of p to the
// main table (254) before the VRF's l3mdev rule (priority 1000).
func (r *nmRule) keepsInMain(p netip.Prefix) bool {
	if r.State == "absent" || r.RouteTable == nil || *r.RouteTable != 254 ||
		r.Priority == nil || *r.Priority >= 1000 || r.IPTo == "" {
		return false
	}
	if r.IPFrom != "" {
		from, err := parsePrefix(r.IPFrom)
		if err != nil || from.Bits() != 0 {
			return false
		}
	}
	to, err := parsePrefix(r.IPTo)
	if err != nil {
		return false
	}
	return to.Addr().Is4() == p.Addr().Is4() && to.Bits() <= p.Bits() && to.Contains(p.Addr())
}

// parsePrefix parses a prefix or a bare address (as a host prefix).
func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, err
	}
	return p.Masked(), nil
}
