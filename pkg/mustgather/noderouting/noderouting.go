// Package noderouting owns printing the policy routing of the network
// namespace it runs in, as `ip rule` and `ip route show table all` would:
// must-gather runs it (`lbstack node-routing`) in each speaker pod, whose
// image has no iproute2, to collect a node's rules and tables in native
// mode too (the speaker runs in the host's namespace).
package noderouting

import (
	"fmt"
	"io"
	"net"
	"sort"
	"strings"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

func tableName(t int) string {
	switch t {
	case unix.RT_TABLE_MAIN:
		return "main"
	case unix.RT_TABLE_LOCAL:
		return "local"
	case unix.RT_TABLE_DEFAULT:
		return "default"
	}
	return fmt.Sprint(t)
}

// Rules prints the route rules of family fam (netlink.FAMILY_V4 or
// FAMILY_V6) as `ip rule` does.
func Rules(w io.Writer, fam int) error {
	rules, err := netlink.RuleList(fam)
	if err != nil {
		return fmt.Errorf("list rules: %w", err)
	}
	sort.SliceStable(rules, func(i, j int) bool { return rules[i].Priority < rules[j].Priority })
	for _, r := range rules {
		var b strings.Builder
		fmt.Fprintf(&b, "%d:\t", r.Priority)
		if r.Invert {
			b.WriteString("not ")
		}
		from := "all"
		if r.Src != nil {
			from = r.Src.String()
		}
		fmt.Fprintf(&b, "from %s", from)
		if r.Dst != nil {
			fmt.Fprintf(&b, " to %s", r.Dst)
		}
		if r.IifName != "" {
			fmt.Fprintf(&b, " iif %s", r.IifName)
		}
		if r.OifName != "" {
			fmt.Fprintf(&b, " oif %s", r.OifName)
		}
		if r.Mark != 0 {
			fmt.Fprintf(&b, " fwmark %#x", r.Mark)
		}
		fmt.Fprintf(&b, " lookup %s", tableName(r.Table))
		fmt.Fprintln(w, b.String())
	}
	return nil
}

// Routes prints the routes of every table of family fam as `ip route show
// table all` does.
func Routes(w io.Writer, fam int) error {
	routes, err := netlink.RouteListFiltered(fam, &netlink.Route{Table: unix.RT_TABLE_UNSPEC}, netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("list routes: %w", err)
	}
	names := map[int]string{}
	if links, err := netlink.LinkList(); err == nil {
		for _, l := range links {
			names[l.Attrs().Index] = l.Attrs().Name
		}
	}
	for _, r := range routes {
		var b strings.Builder
		switch r.Type {
		case unix.RTN_LOCAL:
			b.WriteString("local ")
		case unix.RTN_BROADCAST:
			b.WriteString("broadcast ")
		case unix.RTN_UNREACHABLE:
			b.WriteString("unreachable ")
		case unix.RTN_BLACKHOLE:
			b.WriteString("blackhole ")
		case unix.RTN_PROHIBIT:
			b.WriteString("prohibit ")
		}
		dst := "default"
		if r.Dst != nil && !(r.Dst.IP.IsUnspecified() && onesOf(r.Dst) == 0) {
			dst = r.Dst.String()
			if ones, bits := r.Dst.Mask.Size(); ones == bits {
				dst = r.Dst.IP.String() // ip prints host routes without /32 or /128
			}
		}
		b.WriteString(dst)
		if r.Gw != nil {
			fmt.Fprintf(&b, " via %s", r.Gw)
		}
		for _, nh := range r.MultiPath {
			fmt.Fprintf(&b, " nexthop via %s dev %s", nh.Gw, names[nh.LinkIndex])
		}
		if r.LinkIndex > 0 {
			fmt.Fprintf(&b, " dev %s", names[r.LinkIndex])
		}
		if r.Table != unix.RT_TABLE_MAIN {
			fmt.Fprintf(&b, " table %s", tableName(r.Table))
		}
		fmt.Fprintf(&b, " proto %s", r.Protocol)
		if r.Scope != netlink.SCOPE_UNIVERSE {
			fmt.Fprintf(&b, " scope %s", r.Scope)
		}
		if r.Src != nil {
			fmt.Fprintf(&b, " src %s", r.Src)
		}
		if r.Priority > 0 {
			fmt.Fprintf(&b, " metric %d", r.Priority)
		}
		fmt.Fprintln(w, b.String())
	}
	return nil
}

func onesOf(n *net.IPNet) int {
	ones, _ := n.Mask.Size()
	return ones
}

// Print prints "rules" or "routes" of family "4" or "6" (also "inet",
// "ipv4", "inet6", "ipv6"): the `lbstack node-routing` command.
func Print(w io.Writer, what, family string) error {
	fam := netlink.FAMILY_V4
	switch family {
	case "4", "inet", "ipv4":
	case "6", "inet6", "ipv6":
		fam = netlink.FAMILY_V6
	default:
		return fmt.Errorf("--family %q: want 4 or 6", family)
	}
	switch what {
	case "rules":
		return Rules(w, fam)
	case "routes":
		return Routes(w, fam)
	}
	return fmt.Errorf("%q: want rules or routes", what)
}
