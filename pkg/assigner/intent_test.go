package assigner

import (
	"net/netip"
	"reflect"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/lbstack/lbstack/pkg/ipam"
	"github.com/lbstack/lbstack/pkg/lbservice"
)

// svc builds a LoadBalancer Service in namespace "ns" for tests; mods
// adjust it.
func svc(name string, mods ...func(*corev1.Service)) *corev1.Service {
	s := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name},
		Spec: corev1.ServiceSpec{
			Type:       corev1.ServiceTypeLoadBalancer,
			Ports:      []corev1.ServicePort{{Protocol: corev1.ProtocolTCP, Port: 80}},
			Selector:   map[string]string{"app": name},
			IPFamilies: []corev1.IPFamily{corev1.IPv4Protocol},
		},
	}
	for _, m := range mods {
		m(s)
	}
	return s
}

func annotate(kv ...string) func(*corev1.Service) {
	return func(s *corev1.Service) {
		if s.Annotations == nil {
			s.Annotations = map[string]string{}
		}
		for i := 0; i+1 < len(kv); i += 2 {
			s.Annotations[kv[i]] = kv[i+1]
		}
	}
}

func dual(policy corev1.IPFamilyPolicy, fams ...corev1.IPFamily) func(*corev1.Service) {
	return func(s *corev1.Service) {
		s.Spec.IPFamilyPolicy = &policy
		s.Spec.IPFamilies = fams
	}
}

func addrs(ss ...string) []netip.Addr {
	var out []netip.Addr
	for _, s := range ss {
		out = append(out, netip.MustParseAddr(s))
	}
	return out
}

func TestParseIntent(t *testing.T) {
	v4, v6 := corev1.IPv4Protocol, corev1.IPv6Protocol
	cases := []struct {
		name    string
		svc     *corev1.Service
		want    func(*testing.T, intent)
		wantErr string
	}{
		{name: "plain", svc: svc("a"), want: func(t *testing.T, in intent) {
			if in.Key != "ns/a" || len(in.IPs) != 0 || in.Pool != "" || in.Sharing.SharingKey != "" || in.Sharing.BackendKey != "" {
				t.Errorf("got %+v", in)
			}
			if !reflect.DeepEqual(in.Families, []ipam.Family{ipam.IPv4}) || in.Required {
				t.Errorf("families %v required %v", in.Families, in.Required)
			}
			if !reflect.DeepEqual(in.Sharing.Ports, []ipam.Port{{Protocol: "TCP", Port: 80}}) {
				t.Errorf("ports %v", in.Sharing.Ports)
			}
		}},
		{name: "loadBalancerIPs annotation, spaces and empty entries ignored",
			svc: svc("a", annotate(lbservice.AnnotationLoadBalancerIPs, " 198.51.100.7 , 2001:db8::7,")),
			want: func(t *testing.T, in intent) {
				if !reflect.DeepEqual(in.IPs, addrs("198.51.100.7", "2001:db8::7")) || in.IPsFrom != lbservice.AnnotationLoadBalancerIPs {
					t.Errorf("IPs %v from %q", in.IPs, in.IPsFrom)
				}
			}},
		{name: "legacy loadBalancerIPs spelling", svc: svc("a", annotate(lbservice.AnnotationLoadBalancerIPsLegacy, "198.51.100.7")),
			want: func(t *testing.T, in intent) {
				if !reflect.DeepEqual(in.IPs, addrs("198.51.100.7")) || in.IPsFrom != lbservice.AnnotationLoadBalancerIPsLegacy {
					t.Errorf("IPs %v from %q", in.IPs, in.IPsFrom)
				}
			}},
		{name: "spec.loadBalancerIP", svc: svc("a", func(s *corev1.Service) { s.Spec.LoadBalancerIP = "198.51.100.10" }),
			want: func(t *testing.T, in intent) {
				if !reflect.DeepEqual(in.IPs, addrs("198.51.100.10")) || in.IPsFrom != "spec.loadBalancerIP" {
					t.Errorf("IPs %v from %q", in.IPs, in.IPsFrom)
				}
			}},
		{name: "IPv4-mapped address taken as IPv4", svc: svc("a", annotate(lbservice.AnnotationLoadBalancerIPs, "::ffff:198.51.100.7")),
			want: func(t *testing.T, in intent) {
				if !reflect.DeepEqual(in.IPs, addrs("198.51.100.7")) {
					t.Errorf("IPs %v", in.IPs)
				}
			}},
		{name: "both explicit forms set", svc: svc("a", annotate(lbservice.AnnotationLoadBalancerIPs, "198.51.100.7"), func(s *corev1.Service) { s.Spec.LoadBalancerIP = "198.51.100.7" }),
			wantErr: "both spec.loadBalancerIP (198.51.100.7) and the metallb.io/loadBalancerIPs annotation"},
		{name: "not an address", svc: svc("a", annotate(lbservice.AnnotationLoadBalancerIPs, "198.51.100.7,nope")),
			wantErr: `metallb.io/loadBalancerIPs: "nope" is not an IP address`},
		{name: "address with zone", svc: svc("a", annotate(lbservice.AnnotationLoadBalancerIPs, "fe80::1%eth0")),
			wantErr: "is not an IP address"},
		{name: "pool annotation", svc: svc("a", annotate(lbservice.AnnotationAddressPool, "gold")),
			want: func(t *testing.T, in intent) {
				if in.Pool != "gold" || in.PoolFrom != lbservice.AnnotationAddressPool {
					t.Errorf("pool %q from %q", in.Pool, in.PoolFrom)
				}
			}},
		{name: "legacy pool annotation kept as written", svc: svc("a", annotate(lbservice.AnnotationAddressPoolLegacy, "IPPool-B")),
			want: func(t *testing.T, in intent) {
				if in.Pool != "IPPool-B" || in.PoolFrom != lbservice.AnnotationAddressPoolLegacy {
					t.Errorf("pool %q from %q", in.Pool, in.PoolFrom)
				}
			}},
		{name: "both pool spellings agreeing", svc: svc("a", annotate(lbservice.AnnotationAddressPool, "gold", lbservice.AnnotationAddressPoolLegacy, "gold")),
			want: func(t *testing.T, in intent) {
				if in.Pool != "gold" {
					t.Errorf("pool %q", in.Pool)
				}
			}},
		{name: "pool spellings disagreeing", svc: svc("a", annotate(lbservice.AnnotationAddressPool, "gold", lbservice.AnnotationAddressPoolLegacy, "silver")),
			wantErr: `annotations metallb.io/address-pool ("gold") and metallb.universe.tf/address-pool ("silver") disagree`},
		{name: "sharing key, Cluster: no backend key", svc: svc("a", annotate(lbservice.AnnotationAllowSharedIPLegacy, "k")),
			want: func(t *testing.T, in intent) {
				if in.Sharing.SharingKey != "k" || in.Sharing.BackendKey != "" {
					t.Errorf("sharing %+v", in.Sharing)
				}
			}},
		{name: "externalTrafficPolicy Local: backend key is the selector",
			svc: svc("a", annotate(lbservice.AnnotationAllowSharedIP, "k"), func(s *corev1.Service) {
				s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
				s.Spec.Selector = map[string]string{"tier": "dns", "app": "dns"}
			}),
			want: func(t *testing.T, in intent) {
				if in.Sharing.BackendKey != "app=dns,tier=dns" {
					t.Errorf("backend key %q", in.Sharing.BackendKey)
				}
			}},
		{name: "SingleStack keeps the first family", svc: svc("a", dual(corev1.IPFamilyPolicySingleStack, v6, v4)),
			want: func(t *testing.T, in intent) {
				if !reflect.DeepEqual(in.Families, []ipam.Family{ipam.IPv6}) || in.Required {
					t.Errorf("families %v required %v", in.Families, in.Required)
				}
			}},
		{name: "PreferDualStack", svc: svc("a", dual(corev1.IPFamilyPolicyPreferDualStack, v6, v4)),
			want: func(t *testing.T, in intent) {
				if !reflect.DeepEqual(in.Families, []ipam.Family{ipam.IPv6, ipam.IPv4}) || in.Required {
					t.Errorf("families %v required %v", in.Families, in.Required)
				}
			}},
		{name: "RequireDualStack", svc: svc("a", dual(corev1.IPFamilyPolicyRequireDualStack, v4, v6)),
			want: func(t *testing.T, in intent) {
				if !reflect.DeepEqual(in.Families, []ipam.Family{ipam.IPv4, ipam.IPv6}) || !in.Required {
					t.Errorf("families %v required %v", in.Families, in.Required)
				}
			}},
		{name: "no families: IPv4", svc: svc("a", func(s *corev1.Service) { s.Spec.IPFamilies = nil }),
			want: func(t *testing.T, in intent) {
				if !reflect.DeepEqual(in.Families, []ipam.Family{ipam.IPv4}) {
					t.Errorf("families %v", in.Families)
				}
			}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in, err := parseIntent(tc.svc)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.want(t, in)
		})
	}
}

func TestServes(t *testing.T) {
	nodePort := svc("a", func(s *corev1.Service) { s.Spec.Type = corev1.ServiceTypeNodePort })
	classed := svc("a", func(s *corev1.Service) { s.Spec.LoadBalancerClass = ptr.To("example.com/lb") })
	for _, tc := range []struct {
		svc   *corev1.Service
		class string
		want  bool
	}{
		{svc("a"), "", true},
		{svc("a"), "example.com/lb", false},
		{nodePort, "", false},
		{classed, "", false},
		{classed, "example.com/lb", true},
		{classed, "other", false},
	} {
		if got := lbservice.Served(tc.svc, tc.class); got != tc.want {
			t.Errorf("lbservice.Served(type %s class %v, --lb-class %q) = %v", tc.svc.Spec.Type, tc.svc.Spec.LoadBalancerClass, tc.class, got)
		}
	}
}

func TestIngressIPsIPv4First(t *testing.T) {
	s := svc("a", func(s *corev1.Service) {
		s.Status.LoadBalancer.Ingress = []corev1.LoadBalancerIngress{{IP: "2001:db8::1"}, {Hostname: "lb.example.com"}, {IP: "198.51.100.1"}, {IP: "bad"}}
	})
	if got := lbservice.IngressAddrs(s); !reflect.DeepEqual(got, addrs("198.51.100.1", "2001:db8::1")) {
		t.Errorf("ingressIPs = %v", got)
	}
}
