package generate

import (
	"fmt"
	"net/netip"

	"sigs.k8s.io/yaml"

	v1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
)

// The nmstate desired state, only the parts generated here. Marshalled
// through sigs.k8s.io/yaml, so keys come out sorted and the output is
// deterministic.
type nmState struct {
	Interfaces []nmInterface `json:"interfaces"`
	Routes     nmRoutes      `json:"routes"`
	RouteRules nmRouteRules  `json:"route-rules"`
}

type nmInterface struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	State string `json:"state"`
	VRF   *nmVRF `json:"vrf,omitempty"`
	IPv4  *nmIP  `json:"ipv4,omitempty"`
	IPv6  *nmIP  `json:"ipv6,omitempty"`
}

type nmVRF struct {
	Port         []string `json:"port"`
	RouteTableID int32    `json:"route-table-id"`
}

type nmIP struct {
	Address  []nmAddress `json:"address"`
	DHCP     bool        `json:"dhcp"`
	Autoconf *bool       `json:"autoconf,omitempty"`
	Enabled  bool        `json:"enabled"`
}

type nmAddress struct {
	IP           string `json:"ip"`
	PrefixLength int    `json:"prefix-length"`
}

type nmRoutes struct {
	Config []nmRoute `json:"config"`
}

type nmRoute struct {
	Destination      string `json:"destination"`
	Metric           int32  `json:"metric"`
	NextHopAddress   string `json:"next-hop-address"`
	NextHopInterface string `json:"next-hop-interface"`
	TableID          int32  `json:"table-id"`
}

type nmRouteRules struct {
	Config []nmRouteRule `json:"config"`
}

type nmRouteRule struct {
	IPTo       string `json:"ip-to"`
	Priority   int32  `json:"priority"`
	RouteTable int32  `json:"route-table"`
}

// Gateway is the next hop of the VRF table's default route:
// spec.vrf.gateway, or the peer's address.
func Gateway(sr *v1alpha1.SymmetricRouting) string {
	if sr.Spec.VRF.Gateway != "" {
		return sr.Spec.VRF.Gateway
	}
	return sr.Spec.Peer.Address
}

// desiredState renders the VRF policy's desiredState: the VRF over the
// port; the port (type ethernet) with the given addresses, a family
// section only for the families present (nmstate leaves an unmentioned
// family alone), DHCP and IPv6 autoconf off; one default route in the
// VRF's table via the gateway, in the gateway's family; one rule per
// main-table destination sending it to the main table.
func desiredState(sr *v1alpha1.SymmetricRouting, addresses []string, dests []netip.Prefix) ([]byte, error) {
	vrf := sr.Spec.VRF
	metric := DefaultRouteMetric
	if vrf.RouteMetric != nil {
		metric = *vrf.RouteMetric
	}
	priority := DefaultRulePriority
	if vrf.RulePriority != nil {
		priority = *vrf.RulePriority
	}

	port := nmInterface{Name: vrf.Port, Type: "ethernet", State: "up"}
	for _, s := range addresses {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, fmt.Errorf("address %q is not a CIDR", s)
		}
		a := nmAddress{IP: p.Addr().String(), PrefixLength: p.Bits()}
		if p.Addr().Is4() {
			if port.IPv4 == nil {
				port.IPv4 = &nmIP{Enabled: true}
			}
			port.IPv4.Address = append(port.IPv4.Address, a)
		} else {
			if port.IPv6 == nil {
				f := false
				port.IPv6 = &nmIP{Enabled: true, Autoconf: &f}
			}
			port.IPv6.Address = append(port.IPv6.Address, a)
		}
	}

	gw, err := netip.ParseAddr(Gateway(sr))
	if err != nil {
		return nil, fmt.Errorf("gateway %q is not an IP address", Gateway(sr))
	}
	dst := "0.0.0.0/0"
	if !gw.Is4() {
		dst = "::/0"
	}

	st := nmState{
		Interfaces: []nmInterface{
			{
				Name:  vrf.Name,
				Type:  "vrf",
				State: "up",
				VRF:   &nmVRF{Port: []string{vrf.Port}, RouteTableID: vrf.RouteTableID},
			},
			port,
		},
		Routes: nmRoutes{Config: []nmRoute{{
			Destination:      dst,
			Metric:           metric,
			NextHopAddress:   gw.String(),
			NextHopInterface: vrf.Port,
			TableID:          vrf.RouteTableID,
		}}},
	}
	for _, d := range dests {
		st.RouteRules.Config = append(st.RouteRules.Config, nmRouteRule{
			IPTo:       d.String(),
			Priority:   priority,
			RouteTable: MainRouteTable,
		})
	}
	return yaml.Marshal(st)
}
