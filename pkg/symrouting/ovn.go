package symrouting

import (
	"encoding/json"
	"net/netip"

	corev1 "k8s.io/api/core/v1"
)

// NodeMasqueradeAnnotation is set by OVN-Kubernetes on every node:
// {"ipv4":"169.254.0.0/17","ipv6":"fd69::/112"}.
const NodeMasqueradeAnnotation = "k8s.ovn.org/node-masquerade-subnet"

// MasqueradeDefaults are OVN-Kubernetes' masquerade subnet defaults per
// family (index 0 IPv4, 1 IPv6): clusters installed before OpenShift 4.17
// keep the first, newer ones use the second.
var MasqueradeDefaults = [2][2]netip.Prefix{
	{netip.MustParsePrefix("169.254.169.0/29"), netip.MustParsePrefix("169.254.0.0/17")},
	{netip.MustParsePrefix("fd69::/125"), netip.MustParsePrefix("fd69::/112")},
}

// familyNames are the keys of NodeMasqueradeAnnotation, by family index.
var familyNames = [2]string{"ipv4", "ipv6"}

// NodeMasqueradeSubnet is the masquerade subnet of family fi (0 IPv4,
// 1 IPv6) that node n's NodeMasqueradeAnnotation names; false when the
// annotation is absent, unreadable or silent about that family.
func NodeMasqueradeSubnet(n *corev1.Node, fi int) (netip.Prefix, bool) {
	raw := n.Annotations[NodeMasqueradeAnnotation]
	if raw == "" {
		return netip.Prefix{}, false
	}
	var m map[string]string
	if json.Unmarshal([]byte(raw), &m) != nil {
		return netip.Prefix{}, false
	}
	p, err := parsePrefix(m[familyNames[fi]])
	return p, err == nil
}
