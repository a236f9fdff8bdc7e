package responder

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"regexp"
	"slices"
	"syscall"
	"unsafe"
)

// DefaultExclude are interfaces that never carry a Service's layer-2
// traffic on a Kubernetes node: container and CNI plumbing, tunnels and
// kube-proxy's dummy device. Callers pass it (or their own list) to
// SelectInterfaces.
var DefaultExclude = []*regexp.Regexp{
	regexp.MustCompile(`^(docker|cni|cali|flannel|vxlan|genev|tun|tap|kube-ipvs|cilium|lxc|weave|ovs-system|virbr)`),
}

// SelectInterfaces returns the interfaces of the calling thread's network
// namespace that announce, sorted by name, and why each other one does
// not. names are the L2Advertisement's spec.interfaces: when empty every
// suitable interface is chosen, otherwise only the named ones that are
// suitable (a name absent from this node is skipped, not an error: nodes
// differ). An interface is suitable when it is up, broadcast-capable (ARP
// needs broadcast), not a loopback, not enslaved to a bridge or bond (the
// master answers for the segment: a port of it must not), and its name
// matches none of exclude. The exclusions apply to named interfaces too:
// they are the node's hard limits, not defaults.
func SelectInterfaces(names []string, exclude []*regexp.Regexp) ([]net.Interface, map[string]string, error) {
	all, err := net.Interfaces()
	if err != nil {
		return nil, nil, fmt.Errorf("listing interfaces: %w", err)
	}
	masters, err := linkMasters()
	if err != nil {
		return nil, nil, err
	}
	return selectInterfaces(all, names, exclude, func(name string) (string, error) { return masters[name], nil })
}

// selectInterfaces is SelectInterfaces on a given interface list, with
// master telling the master of an interface ("" for none).
func selectInterfaces(all []net.Interface, names []string, exclude []*regexp.Regexp, master func(string) (string, error)) ([]net.Interface, map[string]string, error) {
	skipped := map[string]string{}
	var out []net.Interface
	for _, ifi := range all {
		if len(names) > 0 && !slices.Contains(names, ifi.Name) {
			continue
		}
		why, err := unsuitable(ifi, exclude, master)
		if err != nil {
			return nil, nil, err
		}
		if why != "" {
			skipped[ifi.Name] = why
			continue
		}
		out = append(out, ifi)
	}
	for _, n := range names {
		if !slices.ContainsFunc(all, func(ifi net.Interface) bool { return ifi.Name == n }) {
			skipped[n] = "not present on this node"
		}
	}
	slices.SortFunc(out, func(a, b net.Interface) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out, skipped, nil
}

// unsuitable tells why an interface may not announce, or "".
func unsuitable(ifi net.Interface, exclude []*regexp.Regexp, master func(string) (string, error)) (string, error) {
	switch {
	case ifi.Flags&net.FlagLoopback != 0:
		return "loopback", nil
	case ifi.Flags&net.FlagUp == 0:
		return "down", nil
	case ifi.Flags&net.FlagBroadcast == 0:
		return "not broadcast-capable", nil
	}
	for _, re := range exclude {
		if re.MatchString(ifi.Name) {
			return fmt.Sprintf("name matches exclusion %q", re.String()), nil
		}
	}
	m, err := master(ifi.Name)
	if err != nil {
		return "", fmt.Errorf("interface %q: %w", ifi.Name, err)
	}
	if m != "" {
		return fmt.Sprintf("enslaved to %s", m), nil
	}
	return "", nil
}

// linkMasters maps the name of every enslaved interface (a bridge or bond
// port) to its master's name, from the kernel's link table (IFLA_MASTER).
// It asks netlink rather than reading /sys/class/net/<if>/master because
// sysfs shows the namespace it was mounted in, while netlink answers for
// the calling thread's namespace, like net.Interfaces.
func linkMasters() (map[string]string, error) {
	rib, err := syscall.NetlinkRIB(syscall.RTM_GETLINK, syscall.AF_UNSPEC)
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", os.NewSyscallError("netlinkrib", err))
	}
	msgs, err := syscall.ParseNetlinkMessage(rib)
	if err != nil {
		return nil, fmt.Errorf("parsing link list: %w", os.NewSyscallError("parsenetlinkmessage", err))
	}
	names := map[int32]string{}
	masterOf := map[string]int32{}
	for i := range msgs {
		m := &msgs[i]
		if m.Header.Type != syscall.RTM_NEWLINK || len(m.Data) < syscall.SizeofIfInfomsg {
			continue
		}
		ifim := (*syscall.IfInfomsg)(unsafe.Pointer(&m.Data[0]))
		attrs, err := syscall.ParseNetlinkRouteAttr(m)
		if err != nil {
			return nil, fmt.Errorf("parsing link attributes: %w", os.NewSyscallError("parsenetlinkrouteattr", err))
		}
		var name string
		var master int32
		for _, a := range attrs {
			switch a.Attr.Type {
			case syscall.IFLA_IFNAME:
				name = string(bytes.TrimRight(a.Value, "\x00"))
			case syscall.IFLA_MASTER:
				if len(a.Value) >= 4 {
					master = *(*int32)(unsafe.Pointer(&a.Value[0]))
				}
			}
		}
		names[ifim.Index] = name
		if master != 0 {
			masterOf[name] = master
		}
	}
	out := map[string]string{}
	for n, idx := range masterOf {
		m := names[idx]
		if m == "" {
			m = fmt.Sprintf("interface #%d", idx)
		}
		out[n] = m
	}
	return out, nil
}
