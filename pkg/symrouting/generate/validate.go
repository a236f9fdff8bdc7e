package generate

import (
	"fmt"
	"net/netip"

	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	v1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
	ovnv1 "github.com/lbstack/lbstack/pkg/ovnapi/v1"
)

// Limits checked by Validate.
const (
	// MaxInterfaceNameLength is the kernel's interface name limit (IFNAMSIZ-1).
	MaxInterfaceNameLength = 15
	// MaxRouteTableID is the highest table ID allowed: OpenShift reserves
	// 1000 and above.
	MaxRouteTableID = 999
	// MaxPeerPort mirrors the BGPPeer CRD's limit on peerPort.
	MaxPeerPort = 16384
)

// Validate checks sr beyond what its CRD schema enforces, so that Generate
// produces objects that are consistent and accepted. Each error names its
// field path (e.g. spec.vrf.addresses[1]).
func Validate(sr *v1alpha1.SymmetricRouting) field.ErrorList {
	var errs field.ErrorList
	if sr == nil {
		return field.ErrorList{field.Required(field.NewPath("metadata"), "no SymmetricRouting")}
	}
	meta := field.NewPath("metadata", "name")
	if sr.Name == "" {
		errs = append(errs, field.Required(meta, ""))
	} else {
		// The name is the value of the symmetric-routing label.
		for _, m := range validation.IsValidLabelValue(sr.Name) {
			errs = append(errs, field.Invalid(meta, sr.Name, m))
		}
	}
	spec := field.NewPath("spec")
	errs = append(errs, validateVRF(sr, spec.Child("vrf"))...)
	errs = append(errs, validatePeer(sr, spec.Child("peer"))...)
	errs = append(errs, validateGeneratedPeer(sr, errs)...)
	errs = append(errs, validateServices(sr, spec.Child("services"))...)

	switch sr.Spec.SourceIPBy {
	case "", string(ovnv1.SourceIPLoadBalancer), string(ovnv1.SourceIPNetwork):
	default:
		errs = append(errs, field.NotSupported(spec.Child("sourceIPBy"), sr.Spec.SourceIPBy,
			[]ovnv1.SourceIPMode{ovnv1.SourceIPLoadBalancer, ovnv1.SourceIPNetwork}))
	}
	for i, s := range sr.Spec.MainTableNetworks {
		if _, err := netip.ParsePrefix(s); err != nil {
			errs = append(errs, field.Invalid(spec.Child("mainTableNetworks").Index(i), s, "must be a CIDR"))
		}
	}
	return errs
}

func validateName(p *field.Path, name string) field.ErrorList {
	var errs field.ErrorList
	for _, m := range validation.IsDNS1123Subdomain(name) {
		errs = append(errs, field.Invalid(p, name, m))
	}
	return errs
}

// validateAddresses checks port addresses (CIDR with the host's address)
// and returns the families present.
func validateAddresses(p *field.Path, addrs []string) (errs field.ErrorList, has4, has6 bool) {
	for i, s := range addrs {
		pf, err := netip.ParsePrefix(s)
		if err != nil {
			errs = append(errs, field.Invalid(p.Index(i), s, "must be an address in CIDR notation, e.g. 192.0.2.10/24"))
			continue
		}
		if pf.Addr().Is4() {
			has4 = true
		} else {
			has6 = true
		}
	}
	return errs, has4, has6
}

func validateVRF(sr *v1alpha1.SymmetricRouting, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	vrf := sr.Spec.VRF
	switch {
	case vrf.Name == "":
		errs = append(errs, field.Required(p.Child("name"), "the VRF device's name"))
	case len(vrf.Name) > MaxInterfaceNameLength:
		errs = append(errs, field.TooLong(p.Child("name"), vrf.Name, MaxInterfaceNameLength))
	}
	switch id := vrf.RouteTableID; {
	case id < 1:
		errs = append(errs, field.Invalid(p.Child("routeTableID"), id, "must be between 1 and 999"))
	case id >= 253 && id <= 255:
		errs = append(errs, field.Invalid(p.Child("routeTableID"), id, "253-255 are the kernel's default, main and local tables"))
	case id > MaxRouteTableID:
		errs = append(errs, field.Invalid(p.Child("routeTableID"), id, "OpenShift reserves route tables 1000 and above"))
	}
	if vrf.RouteMetric != nil && *vrf.RouteMetric < 0 {
		errs = append(errs, field.Invalid(p.Child("routeMetric"), *vrf.RouteMetric, "must not be negative"))
	}
	if vrf.RulePriority != nil && (*vrf.RulePriority < 1 || *vrf.RulePriority > 999) {
		errs = append(errs, field.Invalid(p.Child("rulePriority"), *vrf.RulePriority, "must be between 1 and 999"))
	}
	gwPath := p.Child("gateway")
	if vrf.Gateway != "" {
		if a, err := netip.ParseAddr(vrf.Gateway); err != nil || a.Zone() != "" {
			errs = append(errs, field.Invalid(gwPath, vrf.Gateway, "must be an IP address"))
		}
	}

	if vrf.ExistingPolicy != "" {
		const detail = "must not be set together with existingPolicy"
		if vrf.Port != "" {
			errs = append(errs, field.Forbidden(p.Child("port"), detail))
		}
		if len(vrf.Addresses) > 0 {
			errs = append(errs, field.Forbidden(p.Child("addresses"), detail))
		}
		if len(vrf.NodeAddresses) > 0 {
			errs = append(errs, field.Forbidden(p.Child("nodeAddresses"), detail))
		}
		return errs
	}

	// A policy is generated: port and exactly one of addresses and
	// nodeAddresses are needed.
	if vrf.Port == "" {
		errs = append(errs, field.Required(p.Child("port"), "either existingPolicy, or port with addresses or nodeAddresses, is required"))
	} else if len(vrf.Port) > MaxInterfaceNameLength {
		errs = append(errs, field.TooLong(p.Child("port"), vrf.Port, MaxInterfaceNameLength))
	} else if vrf.Port == vrf.Name {
		errs = append(errs, field.Invalid(p.Child("port"), vrf.Port, "must differ from the VRF's name"))
	}
	switch {
	case len(vrf.Addresses) == 0 && len(vrf.NodeAddresses) == 0:
		errs = append(errs, field.Required(p.Child("addresses"), "either existingPolicy, or port with addresses or nodeAddresses, is required"))
	case len(vrf.Addresses) > 0 && len(vrf.NodeAddresses) > 0:
		errs = append(errs, field.Forbidden(p.Child("nodeAddresses"), "addresses and nodeAddresses are mutually exclusive"))
	}

	// The default route's gateway must be reachable in its family: the
	// port needs an address of that family on every node.
	gw, gwErr := netip.ParseAddr(Gateway(sr))
	if vrf.Gateway == "" {
		gwPath = field.NewPath("spec", "peer", "peerAddress")
	}
	checkFamily := func(at *field.Path, has4, has6 bool) {
		if gwErr != nil || (!has4 && !has6) {
			return
		}
		if gw.Is4() && !has4 || !gw.Is4() && !has6 {
			fam := "IPv4"
			if !gw.Is4() {
				fam = "IPv6"
			}
			errs = append(errs, field.Invalid(gwPath, gw.String(),
				fmt.Sprintf("the VRF's default route goes via this %s address but %s has no %s address", fam, at, fam)))
		}
	}

	if len(vrf.Addresses) > 0 {
		e, has4, has6 := validateAddresses(p.Child("addresses"), vrf.Addresses)
		errs = append(errs, e...)
		checkFamily(p.Child("addresses"), has4, has6)
		if sr.Name != "" {
			errs = append(errs, validateName(field.NewPath("metadata", "name"), PolicyName(sr, ""))...)
		}
	}
	nodes := map[string]bool{}
	for i, na := range vrf.NodeAddresses {
		np := p.Child("nodeAddresses").Index(i)
		if na.Node == "" {
			errs = append(errs, field.Required(np.Child("node"), ""))
		} else {
			if nodes[na.Node] {
				errs = append(errs, field.Duplicate(np.Child("node"), na.Node))
			}
			nodes[na.Node] = true
			for _, m := range validation.IsValidLabelValue(na.Node) {
				errs = append(errs, field.Invalid(np.Child("node"), na.Node, "must fit the "+HostnameLabel+" label: "+m))
			}
			if sr.Name != "" {
				for _, m := range validation.IsDNS1123Subdomain(PolicyName(sr, na.Node)) {
					errs = append(errs, field.Invalid(np.Child("node"), na.Node, "the policy name "+PolicyName(sr, na.Node)+" is invalid: "+m))
				}
			}
		}
		if len(na.Addresses) == 0 {
			errs = append(errs, field.Required(np.Child("addresses"), ""))
		}
		e, has4, has6 := validateAddresses(np.Child("addresses"), na.Addresses)
		errs = append(errs, e...)
		checkFamily(np.Child("addresses"), has4, has6)
	}
	return errs
}

func validatePeer(sr *v1alpha1.SymmetricRouting, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	peer := sr.Spec.Peer
	if peer.Name != "" {
		errs = append(errs, validateName(p.Child("name"), peer.Name)...)
	}
	if peer.MyASN == 0 {
		errs = append(errs, field.Required(p.Child("myASN"), ""))
	}
	if peer.ASN == 0 {
		errs = append(errs, field.Required(p.Child("peerASN"), ""))
	}
	// The peer's address is also the VRF's default gateway unless
	// spec.vrf.gateway is set, so it is checked here, as an address.
	if peer.Address == "" {
		errs = append(errs, field.Required(p.Child("peerAddress"), ""))
	} else if a, err := netip.ParseAddr(peer.Address); err != nil || a.Zone() != "" {
		errs = append(errs, field.Invalid(p.Child("peerAddress"), peer.Address, "must be an IP address"))
	}
	if peer.Port > MaxPeerPort {
		errs = append(errs, field.Invalid(p.Child("peerPort"), peer.Port, fmt.Sprintf("must be at most %d", MaxPeerPort)))
	}
	// The rest of the peer's rules (timers, password secret, BFD profile)
	// are MetalLB's: validateGeneratedPeer runs them on the generated peer.
	return errs
}

func validateServices(sr *v1alpha1.SymmetricRouting, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(sr.Spec.Services) == 0 {
		return append(errs, field.Required(p, "at least one Service"))
	}
	services := map[string]bool{}
	pools := map[string]bool{}
	advs := map[string]bool{}
	for i, svc := range sr.Spec.Services {
		sp := p.Index(i)
		if svc.Namespace == "" {
			errs = append(errs, field.Required(sp.Child("namespace"), ""))
		} else {
			for _, m := range validation.IsDNS1123Label(svc.Namespace) {
				errs = append(errs, field.Invalid(sp.Child("namespace"), svc.Namespace, m))
			}
		}
		if svc.Name == "" {
			errs = append(errs, field.Required(sp.Child("name"), ""))
		} else {
			for _, m := range validation.IsDNS1035Label(svc.Name) {
				errs = append(errs, field.Invalid(sp.Child("name"), svc.Name, m))
			}
		}
		if svc.Namespace != "" && svc.Name != "" {
			key := svc.Namespace + "/" + svc.Name
			if services[key] {
				errs = append(errs, field.Duplicate(sp, key))
			}
			services[key] = true
			if n := len(svc.Namespace) + 1 + len(svc.Name); n > validation.LabelValueMaxLength {
				errs = append(errs, field.Invalid(sp, key, fmt.Sprintf(
					"<namespace>-<name> is %d characters, over the 63 of the name part of OVN's egress node label %s",
					n, ovnv1.NodeLabel(svc.Namespace, svc.Name))))
			}
		}
		if len(svc.Addresses) == 0 {
			errs = append(errs, field.Required(sp.Child("addresses"), ""))
		}
		// The addresses become the pool's: MetalLB's rules for them apply.
		errs = append(errs, validateGeneratedPool(sr, svc, sp, errs)...)

		poolPath := sp.Child("poolName")
		if (sr.Name != "" && svc.Namespace != "" && svc.Name != "") || svc.PoolName != "" {
			pool := PoolName(sr, svc)
			errs = append(errs, validateName(poolPath, pool)...)
			if pools[pool] {
				errs = append(errs, field.Duplicate(poolPath, pool))
			}
			pools[pool] = true
			adv := AdvertisementName(sr, svc)
			advPath := sp.Child("advertisementName")
			if svc.AdvertisementName != "" {
				errs = append(errs, validateName(advPath, adv)...)
			}
			if advs[adv] {
				errs = append(errs, field.Duplicate(advPath, adv))
			}
			advs[adv] = true
		}
	}
	return errs
}
