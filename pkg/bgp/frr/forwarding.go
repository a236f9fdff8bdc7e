package frr

import (
	"fmt"
	"os"
	"strings"
)

// The kernel's forwarding switches.
const (
	procIPv4Forwarding = "/proc/sys/net/ipv4/ip_forward"
	procIPv6Forwarding = "/proc/sys/net/ipv6/conf/all/forwarding"
)

// NodeForwarding reads the node's IPv4 and IPv6 forwarding settings, for
// Options.IPForwarding and Options.IPv6Forwarding. It is the only function
// of the package that touches the system; Render stays pure.
func NodeForwarding() (ipv4, ipv6 *bool, err error) {
	if ipv4, err = readSwitch(procIPv4Forwarding); err != nil {
		return nil, nil, err
	}
	if ipv6, err = readSwitch(procIPv6Forwarding); err != nil {
		return nil, nil, err
	}
	return ipv4, ipv6, nil
}

func readSwitch(path string) (*bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read forwarding setting: %w", err)
	}
	on := strings.TrimSpace(string(b)) != "0"
	return &on, nil
}
