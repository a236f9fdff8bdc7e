package generate

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	v1alpha1 "github.com/lbstack/lbstack/api/lbstack/v1alpha1"
)

func TestValidate(t *testing.T) {
	type sr = v1alpha1.SymmetricRouting
	svc := func(ns, name string) v1alpha1.SymmetricService {
		return v1alpha1.SymmetricService{Namespace: ns, Name: name, Addresses: []string{"198.51.100.1/32"}}
	}
	tests := []struct {
		name   string
		mutate func(*sr)
		// want are substrings of the errors, one per expected error, in
		// order; each names the field path. Empty: valid.
		want []string
	}{
		{"minimal is valid", func(*sr) {}, nil},
		{"scenario is valid", func(s *sr) { *s = *scenarioSR(); s.Spec.MainTableNetworks = []string{"10.132.0.0/14"} }, nil},
		{"existingPolicy alone is valid", func(s *sr) {
			s.Spec.VRF.Port, s.Spec.VRF.Addresses, s.Spec.VRF.ExistingPolicy = "", nil, "p"
		}, nil},
		{"nodeAddresses is valid", func(s *sr) {
			s.Spec.VRF.Addresses = nil
			s.Spec.VRF.NodeAddresses = []v1alpha1.SymmetricNodeAddresses{{Node: "n1", Addresses: []string{"192.0.2.2/24"}}}
		}, nil},
		{"pool address range is valid", func(s *sr) {
			s.Spec.Services[0].Addresses = []string{"198.51.100.1-198.51.100.9", "2001:db8::1-2001:db8::9"}
		}, nil},

		{"existingPolicy with port, addresses", func(s *sr) { s.Spec.VRF.ExistingPolicy = "p" },
			[]string{"spec.vrf.port: Forbidden: must not be set together with existingPolicy", "spec.vrf.addresses: Forbidden"}},
		{"existingPolicy with nodeAddresses", func(s *sr) {
			s.Spec.VRF.Port, s.Spec.VRF.Addresses, s.Spec.VRF.ExistingPolicy = "", nil, "p"
			s.Spec.VRF.NodeAddresses = []v1alpha1.SymmetricNodeAddresses{{Node: "n1", Addresses: []string{"192.0.2.2/24"}}}
		}, []string{"spec.vrf.nodeAddresses: Forbidden: must not be set together with existingPolicy"}},
		{"neither existingPolicy nor port and addresses", func(s *sr) { s.Spec.VRF.Port, s.Spec.VRF.Addresses = "", nil },
			[]string{"spec.vrf.port: Required", "spec.vrf.addresses: Required"}},
		{"port without addresses", func(s *sr) { s.Spec.VRF.Addresses = nil },
			[]string{"spec.vrf.addresses: Required value: either existingPolicy, or port with addresses or nodeAddresses"}},
		{"addresses without port", func(s *sr) { s.Spec.VRF.Port = "" }, []string{"spec.vrf.port: Required"}},
		{"both addresses and nodeAddresses", func(s *sr) {
			s.Spec.VRF.NodeAddresses = []v1alpha1.SymmetricNodeAddresses{{Node: "n1", Addresses: []string{"192.0.2.2/24"}}}
		}, []string{"spec.vrf.nodeAddresses: Forbidden: addresses and nodeAddresses are mutually exclusive"}},
		{"bad address", func(s *sr) { s.Spec.VRF.Addresses = []string{"192.0.2.10/24", "192.0.2.11"} },
			[]string{`spec.vrf.addresses[1]: Invalid value: "192.0.2.11": must be an address in CIDR notation`}},
		{"bad node address, missing node, duplicate node", func(s *sr) {
			s.Spec.VRF.Addresses = nil
			s.Spec.VRF.NodeAddresses = []v1alpha1.SymmetricNodeAddresses{
				{Node: "n1", Addresses: []string{"192.0.2.2/24"}},
				{Node: "n1", Addresses: []string{"192.0.2.3/24", "bogus"}},
				{Addresses: []string{"192.0.2.4/24"}},
				{Node: "n2"},
			}
		}, []string{
			`spec.vrf.nodeAddresses[1].node: Duplicate value: "n1"`,
			`spec.vrf.nodeAddresses[1].addresses[1]: Invalid value: "bogus"`,
			"spec.vrf.nodeAddresses[2].node: Required",
			"spec.vrf.nodeAddresses[3].addresses: Required",
		}},
		{"bad main-table network", func(s *sr) { s.Spec.MainTableNetworks = []string{"10.0.0.0/8", "10.0.0.0/33"} },
			[]string{`spec.mainTableNetworks[1]: Invalid value: "10.0.0.0/33": must be a CIDR`}},
		{"gateway not an IP", func(s *sr) { s.Spec.VRF.Gateway = "router.example" },
			[]string{`spec.vrf.gateway: Invalid value: "router.example": must be an IP address`}},
		{"gateway family without a port address", func(s *sr) { s.Spec.VRF.Gateway = "2001:db8::1" },
			[]string{`spec.vrf.gateway: Invalid value: "2001:db8::1": the VRF's default route goes via this IPv6 address but spec.vrf.addresses has no IPv6 address`}},
		{"defaulted gateway family without a port address", func(s *sr) {
			s.Spec.VRF.Addresses = []string{"2001:db8::10/64"}
		}, []string{`spec.peer.peerAddress: Invalid value: "192.0.2.1": the VRF's default route goes via this IPv4 address but spec.vrf.addresses has no IPv4`}},
		{"peer address not an IP", func(s *sr) { s.Spec.Peer.Address = "192.0.2.1/24" },
			[]string{`spec.peer.peerAddress: Invalid value: "192.0.2.1/24": must be an IP address`}},
		{"peer address missing", func(s *sr) { s.Spec.Peer.Address = "" }, []string{"spec.peer.peerAddress: Required"}},
		{"peer ASNs missing", func(s *sr) { s.Spec.Peer.MyASN, s.Spec.Peer.ASN = 0, 0 },
			[]string{"spec.peer.myASN: Required", "spec.peer.peerASN: Required"}},
		{"peer port, name, hold time", func(s *sr) {
			s.Spec.Peer.Port = 20000
			s.Spec.Peer.Name = "Up_Link"
			s.Spec.Peer.HoldTime = &metav1.Duration{Duration: time.Second}
		}, []string{"spec.peer.name: Invalid value", "spec.peer.peerPort: Invalid value: 20000: must be at most 16384", "spec.peer.holdTime: Invalid value"}},
		{"duplicate Service", func(s *sr) { s.Spec.Services = append(s.Spec.Services, svc("ns", "web")) },
			[]string{`spec.services[1]: Duplicate value: "ns/web"`, `spec.services[1].poolName: Duplicate value: "sr-ns-web"`, `spec.services[1].advertisementName: Duplicate value: "sr-ns-web"`}},
		{"two Services, one pool name", func(s *sr) {
			s.Spec.Services[0].PoolName = "pool"
			other := svc("ns", "api")
			other.PoolName = "pool"
			other.AdvertisementName = "adv"
			s.Spec.Services = append(s.Spec.Services, other)
		}, []string{`spec.services[1].poolName: Duplicate value: "pool"`}},
		{"explicit pool name equal to another's default", func(s *sr) {
			other := svc("ns", "api")
			other.PoolName = "sr-ns-web"
			other.AdvertisementName = "adv"
			s.Spec.Services = append(s.Spec.Services, other)
		}, []string{`spec.services[1].poolName: Duplicate value: "sr-ns-web"`}},
		{"two Services, one advertisement name", func(s *sr) {
			s.Spec.Services[0].AdvertisementName = "adv"
			other := svc("ns", "api")
			other.AdvertisementName = "adv"
			s.Spec.Services = append(s.Spec.Services, other)
		}, []string{`spec.services[1].advertisementName: Duplicate value: "adv"`}},
		{"namespace-name over 63 characters", func(s *sr) {
			s.Spec.Services[0] = svc("n"+strings.Repeat("s", 30), "w"+strings.Repeat("e", 31))
			s.Spec.Services[0].PoolName = "p"
		}, []string{`spec.services[0]: Invalid value: "nssssssssssssssssssssssssssssss/weeeeeeeeeeeeeeeeeeeeeeeeeeeeeee": <namespace>-<name> is 64 characters, over the 63`}},
		{"namespace-name of 63 characters", func(s *sr) {
			s.Spec.Services[0] = svc("n"+strings.Repeat("s", 30), "w"+strings.Repeat("e", 30))
			s.Spec.Services[0].PoolName = "p"
		}, nil},
		{"Service fields", func(s *sr) {
			s.Spec.Services = append(s.Spec.Services, v1alpha1.SymmetricService{Addresses: []string{"198.51.100.9-198.51.100.1", "x"}})
		}, []string{
			"spec.services[1].namespace: Required", "spec.services[1].name: Required",
			`spec.services[1].addresses[0]: Invalid value: "198.51.100.9-198.51.100.1"`, `spec.services[1].addresses[1]: Invalid value: "x"`,
		}},
		{"no Services", func(s *sr) { s.Spec.Services = nil }, []string{"spec.services: Required"}},
		{"route table 253", func(s *sr) { s.Spec.VRF.RouteTableID = 253 }, []string{"spec.vrf.routeTableID: Invalid value: 253"}},
		{"route table 254", func(s *sr) { s.Spec.VRF.RouteTableID = 254 }, []string{"spec.vrf.routeTableID: Invalid value: 254: 253-255 are the kernel's"}},
		{"route table 255", func(s *sr) { s.Spec.VRF.RouteTableID = 255 }, []string{"spec.vrf.routeTableID: Invalid value: 255"}},
		{"route table 252", func(s *sr) { s.Spec.VRF.RouteTableID = 252 }, nil},
		{"route table 1000", func(s *sr) { s.Spec.VRF.RouteTableID = 1000 }, []string{"spec.vrf.routeTableID: Invalid value: 1000: OpenShift reserves"}},
		{"route table 0", func(s *sr) { s.Spec.VRF.RouteTableID = 0 }, []string{"spec.vrf.routeTableID: Invalid value: 0"}},
		{"vrf name 16 characters", func(s *sr) { s.Spec.VRF.Name = "vrf4567890123456" }, []string{"spec.vrf.name: Too long"}},
		{"vrf name 15 characters", func(s *sr) { s.Spec.VRF.Name = "vrf456789012345" }, nil},
		{"vrf name missing", func(s *sr) { s.Spec.VRF.Name = "" }, []string{"spec.vrf.name: Required"}},
		{"port equal to vrf name", func(s *sr) { s.Spec.VRF.Port = "vrf1" }, []string{"spec.vrf.port: Invalid value"}},
		{"metric and rule priority", func(s *sr) {
			s.Spec.VRF.RouteMetric = ptr(int32(-1))
			s.Spec.VRF.RulePriority = ptr(int32(1000))
		}, []string{"spec.vrf.routeMetric: Invalid value: -1", "spec.vrf.rulePriority: Invalid value: 1000"}},
		{"sourceIPBy", func(s *sr) { s.Spec.SourceIPBy = "Host" }, []string{`spec.sourceIPBy: Unsupported value: "Host"`}},
		// MetalLB's rules, from pkg/config, on the generated peer and pools.
		{"hold time 0 is valid", func(s *sr) { s.Spec.Peer.HoldTime = &metav1.Duration{} }, nil},
		{"hold time 3s is valid", func(s *sr) { s.Spec.Peer.HoldTime = &metav1.Duration{Duration: 3 * time.Second} }, nil},
		{"hold time 2s", func(s *sr) { s.Spec.Peer.HoldTime = &metav1.Duration{Duration: 2 * time.Second} },
			[]string{`spec.peer.holdTime: Invalid value: "2s": holdTime 2s must be 0 or at least 3s`}},
		{"hold time above the BGP maximum", func(s *sr) { s.Spec.Peer.HoldTime = &metav1.Duration{Duration: 65536 * time.Second} },
			[]string{`spec.peer.holdTime: Invalid value: "18h12m16s": holdTime 18h12m16s is above the BGP maximum of 65535s`}},
		{"password secret name", func(s *sr) { s.Spec.Peer.PasswordSecret = "Bad_Name" },
			[]string{`spec.peer.passwordSecret: Invalid value: "Bad_Name": passwordSecret "Bad_Name" is not a valid object name`}},
		{"BFD profile name", func(s *sr) { s.Spec.Peer.BFDProfile = "Bad_BFD" },
			[]string{`spec.peer.bfdProfile: Invalid value: "Bad_BFD": bfdProfile "Bad_BFD" is not a valid object name`}},
		{"vrf named default", func(s *sr) { s.Spec.VRF.Name = "default" },
			[]string{`spec.vrf.name: Invalid value: "default": invalid vrf: "default" is FRR's and iproute2's name for the default VRF`}},
		{"vrf node selector key", func(s *sr) { s.Spec.VRF.NodeSelector = map[string]string{"bad key!": "x"} },
			[]string{`spec.vrf.nodeSelector: Invalid value: {"bad key!":"x"}: invalid label selector`}},
		{"pool address without a prefix length", func(s *sr) { s.Spec.Services[0].Addresses = []string{"198.51.100.1"} },
			[]string{`spec.services[0].addresses[0]: Invalid value: "198.51.100.1": invalid entry "198.51.100.1": a single address is written as a prefix (198.51.100.1/32)`}},
		{"pool addresses overlapping", func(s *sr) { s.Spec.Services[0].Addresses = []string{"198.51.100.0/24", "198.51.100.7/32"} },
			[]string{`spec.services[0].addresses[1]: Invalid value: "198.51.100.7/32": 198.51.100.7/32 overlaps spec.services[0].addresses[0] 198.51.100.0/24 of the same pool`}},
		{"name too long for its label", func(s *sr) {
			s.Name = strings.Repeat("a", 64)
			s.Spec.Services[0].PoolName = "p"
		}, []string{"metadata.name: Invalid value"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := minimalSR()
			tc.mutate(s)
			errs := Validate(s)
			if len(errs) != len(tc.want) {
				t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(tc.want), errs)
			}
			for i, w := range tc.want {
				if !strings.Contains(errs[i].Error(), w) {
					t.Errorf("error %d = %q, want it to contain %q", i, errs[i].Error(), w)
				}
			}
			_, err := Generate(s, testInputs)
			if (err != nil) != (len(tc.want) > 0) {
				t.Errorf("Generate error = %v, want error: %v", err, len(tc.want) > 0)
			}
		})
	}
	if errs := Validate(nil); len(errs) != 1 {
		t.Errorf("Validate(nil) = %v", errs)
	}
}
