package config

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
)

// resolvedResources exercises every resolution Build does.
func resolvedResources() Resources {
	return Resources{
		Pools: []v1beta1.IPAddressPool{
			poolWith("web", func(p *v1beta1.IPAddressPool) { p.Labels = map[string]string{"tier": "web"} },
				"203.0.113.0/25", "2001:db8::/120"),
			poolWith("db", func(p *v1beta1.IPAddressPool) {
				p.Spec.AutoAssign = ptr(false)
				p.Spec.AvoidBuggyIPs = true
				p.Spec.AllocateTo = &v1beta1.ServiceAllocation{
					Priority:           10,
					Namespaces:         []string{"db"},
					NamespaceSelectors: []metav1.LabelSelector{sel("team", "data")},
					ServiceSelectors:   []metav1.LabelSelector{sel("app", "pg")},
				}
			}, "203.0.113.128-203.0.113.200"),
		},
		Namespaces: []corev1.Namespace{
			{ObjectMeta: metav1.ObjectMeta{Name: "analytics", Labels: map[string]string{"team": "data"}}},
			{ObjectMeta: metav1.ObjectMeta{Name: "web"}},
		},
		Peers: []v1beta2.BGPPeer{
			peer("r1", "198.18.0.254", func(s *v1beta2.BGPPeerSpec) {
				s.HoldTime = dur(90 * time.Second)
				s.PasswordSecret = corev1.SecretReference{Name: "r1-pass"}
				s.NodeSelectors = []metav1.LabelSelector{sel("rack", "1")}
			}),
			peer("r2", "::ffff:198.18.0.253", func(s *v1beta2.BGPPeerSpec) {
				s.KeepaliveTime = dur(10 * time.Second)
				s.BFDProfile = "fast"
				s.Port = ptr[uint16](1179)
				s.ASN = s.MyASN
			}),
			peer("r3", "2001:db8:ffff::1", func(s *v1beta2.BGPPeerSpec) {
				s.ASN = 0
				s.DynamicASN = v1beta2.InternalASNMode
				s.LocalASN = 64999
				s.ConnectTime = dur(5 * time.Second)
			}),
		},
		Secrets:     []corev1.Secret{secret("r1-pass", corev1.SecretTypeBasicAuth, map[string]string{"password": "s3cret"})},
		BFDProfiles: []v1beta1.BFDProfile{bfd("fast", func(s *v1beta1.BFDProfileSpec) { s.ReceiveInterval = ptr[uint32](25) })},
		Communities: []v1beta1.Community{community("aliases", "edge", "65000:1")},
		BGPAdvs: []v1beta1.BGPAdvertisement{
			bgpAdv("sel", func(s *v1beta1.BGPAdvertisementSpec) {
				s.IPAddressPoolSelectors = []metav1.LabelSelector{sel("tier", "web")}
				s.Communities = []string{"large:1:2:3", "edge", "65000:2", "65000:1"}
				s.Peers = []string{"r1"}
			}),
			bgpAdv("all"),
		},
		L2Advs: []v1beta1.L2Advertisement{
			l2Adv("l2", func(s *v1beta1.L2AdvertisementSpec) {
				s.IPAddressPools = []string{"db"}
				s.Interfaces = []string{"eth1"}
				s.PreferredNodeSelectors = []v1beta1.PreferredNodeSelector{
					{Weight: 50, Preference: sel("zone", "a")},
					{Weight: 20, Preference: sel("ssd", "true")},
				}
			}),
		},
	}
}

func TestResolvedConfig(t *testing.T) {
	r := Build(resolvedResources(), Options{Namespace: testNS})
	if err := r.Err(); err != nil {
		t.Fatal(err)
	}
	if len(r.Warnings) != 0 {
		t.Fatalf("warnings: %v", r.Warnings)
	}
	cfg := r.Config
	if cfg.BGPBackend != v1beta1.BGPTypeFRR {
		t.Errorf("default backend %q", cfg.BGPBackend)
	}

	// Pools.
	if !slices.Equal(cfg.PoolNames, []string{"db", "web"}) {
		t.Errorf("PoolNames %v", cfg.PoolNames)
	}
	web, db := cfg.Pools["web"], cfg.Pools["db"]
	if !web.AutoAssign || db.AutoAssign || !db.AvoidBuggyIPs || web.AvoidBuggyIPs {
		t.Errorf("autoAssign/avoidBuggyIPs: web %v/%v db %v/%v", web.AutoAssign, web.AvoidBuggyIPs, db.AutoAssign, db.AvoidBuggyIPs)
	}
	if !web.HasIPv4 || !web.HasIPv6 || !db.HasIPv4 || db.HasIPv6 {
		t.Error("families wrong")
	}
	if len(web.Ranges) != 2 || web.Ranges[1].Index != 1 || web.Ranges[1].Spec != "2001:db8::/120" || web.Labels["tier"] != "web" {
		t.Errorf("web ranges %+v", web.Ranges)
	}
	if got := prefixStrings(db.CIDRs); !slices.Equal(got, []string{"203.0.113.128/26", "203.0.113.192/29", "203.0.113.200/32"}) {
		t.Errorf("db CIDRs %v", got)
	}
	for a, want := range map[string]*Pool{
		"203.0.113.0": web, "203.0.113.127": web, "2001:db8::ff": web, "203.0.113.128": db, "203.0.113.200": db,
		"203.0.113.201": nil, "2001:db8::100": nil, "::ffff:203.0.113.5": web,
	} {
		if got := cfg.PoolFor(netip.MustParseAddr(a)); got != want {
			t.Errorf("PoolFor(%s) = %v", a, got)
		}
		if want != nil && !want.Contains(netip.MustParseAddr(a)) {
			t.Errorf("%s.Contains(%s) false", want.Name, a)
		}
	}
	if web.ServiceAllocation != nil || !web.ServiceAllocation.Matches("any", nil, nil) {
		t.Error("web has no allocation and matches everything")
	}
	sa := db.ServiceAllocation
	if sa.Priority != 10 || !sa.RestrictsNamespaces() || !sa.RestrictsServices() {
		t.Errorf("allocation %+v", sa)
	}
	if !sa.MatchedNamespaces["db"] || !sa.MatchedNamespaces["analytics"] || sa.MatchedNamespaces["web"] || len(sa.Namespaces) != 1 {
		t.Errorf("namespaces %v matched %v", sa.Namespaces, sa.MatchedNamespaces)
	}
	pg := map[string]string{"app": "pg"}
	for _, tc := range []struct {
		ns       string
		nsLabels map[string]string
		svc      map[string]string
		want     bool
	}{
		{"db", nil, pg, true},
		{"other", map[string]string{"team": "data"}, pg, true},
		{"other", nil, pg, false},
		{"db", nil, map[string]string{"app": "web"}, false},
	} {
		if got := sa.Matches(tc.ns, tc.nsLabels, tc.svc); got != tc.want {
			t.Errorf("Matches(%s, %v, %v) = %v", tc.ns, tc.nsLabels, tc.svc, got)
		}
	}

	// Peers.
	if !slices.Equal(cfg.PeerNames, []string{"r1", "r2", "r3"}) {
		t.Errorf("PeerNames %v", cfg.PeerNames)
	}
	r1, r2, r3 := cfg.Peers["r1"], cfg.Peers["r2"], cfg.Peers["r3"]
	if *r1.HoldTime != 90*time.Second || *r1.KeepaliveTime != 30*time.Second {
		t.Errorf("r1 timers %v/%v", *r1.HoldTime, *r1.KeepaliveTime)
	}
	if *r2.HoldTime != 30*time.Second || *r2.KeepaliveTime != 10*time.Second {
		t.Errorf("r2 timers %v/%v", *r2.HoldTime, *r2.KeepaliveTime)
	}
	if r3.HoldTime != nil || r3.KeepaliveTime != nil || *r3.ConnectTime != 5*time.Second {
		t.Error("r3: unset timers must stay nil (backend defaults)")
	}
	if r1.Port != 179 || r2.Port != 1179 {
		t.Errorf("ports %d %d", r1.Port, r2.Port)
	}
	if r1.Password != "s3cret" || r1.PasswordSecret != "r1-pass" || r1.PasswordPending {
		t.Errorf("r1 password %q from %q", r1.Password, r1.PasswordSecret)
	}
	if r2.Address != netip.MustParseAddr("198.18.0.253") || !r2.Address.Is4() {
		t.Errorf("r2 address %v (IPv4-mapped addresses are unmapped)", r2.Address)
	}
	if r1.IBGP() || !r2.IBGP() || !r3.IBGP() {
		t.Error("IBGP()")
	}
	if !r1.MatchesNode(map[string]string{"rack": "1"}) || r1.MatchesNode(nil) || !r2.MatchesNode(nil) {
		t.Error("MatchesNode")
	}
	fast := cfg.BFDProfiles["fast"]
	if r2.BFDProfile != fast || r2.BFDProfileName != "fast" || r1.BFDProfile != nil {
		t.Error("BFD profile not resolved")
	}
	if *fast != (BFDProfile{Name: "fast", ReceiveInterval: 25, TransmitInterval: 300, DetectMultiplier: 3, EchoInterval: 50, MinimumTTL: 254}) {
		t.Errorf("BFD defaults: %+v", *fast)
	}

	// Advertisements.
	if len(cfg.BGPAdvs) != 2 || cfg.BGPAdvs[0].Name != "all" || cfg.BGPAdvs[1].Name != "sel" {
		t.Fatalf("BGPAdvs not sorted by name")
	}
	all, selAdv := cfg.BGPAdvs[0], cfg.BGPAdvs[1]
	if !slices.Equal(all.Pools, []string{"db", "web"}) || !slices.Equal(selAdv.Pools, []string{"web"}) {
		t.Errorf("pools: all %v sel %v", all.Pools, selAdv.Pools)
	}
	if all.AggregationLength != 32 || all.AggregationLengthV6 != 128 {
		t.Error("aggregation defaults")
	}
	var cs []string
	for _, c := range selAdv.Communities {
		cs = append(cs, c.String())
	}
	if !slices.Equal(cs, []string{"65000:1", "65000:2", "large:1:2:3"}) {
		t.Errorf("communities %v (alias resolved, duplicates by value merged, sorted)", cs)
	}
	if !selAdv.ReachesPeer("r1") || selAdv.ReachesPeer("r2") || !all.ReachesPeer("r2") {
		t.Error("ReachesPeer")
	}
	if !all.MatchesNode(nil) || !all.MatchesService(nil) {
		t.Error("empty selectors match everything")
	}
	if names(web.BGPAdvertisements) != "all,sel" || names(db.BGPAdvertisements) != "all" {
		t.Errorf("pool back-references: web %s db %s", names(web.BGPAdvertisements), names(db.BGPAdvertisements))
	}
	if len(db.L2Advertisements) != 1 || len(web.L2Advertisements) != 0 {
		t.Error("L2 back-references")
	}
	l2 := cfg.L2Advs[0]
	if !slices.Equal(l2.Interfaces, []string{"eth1"}) || !slices.Equal(l2.Pools, []string{"db"}) {
		t.Errorf("l2 %+v", l2)
	}
	if got := l2.NodePreference(map[string]string{"zone": "a", "ssd": "true"}); got != 70 {
		t.Errorf("NodePreference = %d", got)
	}
	if cfg.Communities["edge"] != (Community{High: 65000, Low: 1}) {
		t.Errorf("aliases %v", cfg.Communities)
	}
}

func prefixStrings(ps []netip.Prefix) []string {
	var s []string
	for _, p := range ps {
		s = append(s, p.String())
	}
	return s
}

func names(advs []*BGPAdvertisement) string {
	var s []string
	for _, a := range advs {
		s = append(s, a.Name)
	}
	return strings.Join(s, ",")
}

// A warning alone never withholds the Config; pending references are left
// unresolved in it.
func TestWarningsKeepConfig(t *testing.T) {
	res := Resources{Peers: []v1beta2.BGPPeer{peer("p", "198.18.0.1", func(s *v1beta2.BGPPeerSpec) {
		s.BFDProfile = "later"
		s.PasswordSecret = corev1.SecretReference{Name: "later"}
	})}}
	r := Build(res, frrOpts)
	if r.Config == nil || len(r.Warnings) != 2 {
		t.Fatalf("config %v, warnings %v", r.Config, r.Warnings)
	}
	p := r.Config.Peers["p"]
	if p.BFDProfile != nil || p.BFDProfileName != "later" || !p.PasswordPending || p.Password != "" {
		t.Errorf("pending references resolved? %+v", p)
	}
	// Involves lets the webhook find the warnings a new object resolves.
	if !r.Warnings[0].Involves(ObjectRef{Kind: KindBFDProfile, Name: "later"}) || !r.Warnings[1].Involves(ObjectRef{Kind: KindSecret, Name: "later"}) {
		t.Errorf("warnings do not name the missing objects: %+v", r.Warnings)
	}
}

func TestProblemAndResult(t *testing.T) {
	p := Problem{Object: ObjectRef{KindIPAddressPool, "b"}, Field: "spec.addresses[0]", Message: "m", Related: []ObjectRef{{KindIPAddressPool, "a"}}}
	if p.Error() != `ipaddresspool "b": spec.addresses[0]: m` {
		t.Error(p.Error())
	}
	p.Field = ""
	if p.Error() != `ipaddresspool "b": m` {
		t.Error(p.Error())
	}
	if !p.Involves(ObjectRef{KindIPAddressPool, "a"}) || !p.Involves(ObjectRef{KindIPAddressPool, "b"}) || p.Involves(ObjectRef{KindBGPPeer, "a"}) {
		t.Error("Involves")
	}

	r := Build(Resources{Pools: []v1beta1.IPAddressPool{pool("a", "203.0.113.0/24"), pool("b", "203.0.113.0/25", "x")}}, frrOpts)
	if r.Config != nil {
		t.Fatal("config with errors")
	}
	want := "ipaddresspool \"b\": spec.addresses[0]: 203.0.113.0/25 overlaps 203.0.113.0/24 of ipaddresspool \"a\"\n" +
		"ipaddresspool \"b\": spec.addresses[1]: invalid entry \"x\": not a CIDR prefix or a start-end range"
	if r.Err().Error() != want {
		t.Errorf("Err() = %q", r.Err())
	}
	var prob Problem
	if !errors.As(r.Err(), &prob) || prob.Object.Name != "b" {
		t.Error("errors.As(Problem)")
	}
	if (Result{}).Err() != nil {
		t.Error("no errors, non-nil Err")
	}
	// Fields sort numerically.
	if compareFields("spec.addresses[2]", "spec.addresses[10]") >= 0 || compareFields("a[010]", "a[9]") <= 0 {
		t.Error("compareFields")
	}
}

// Build neither changes its input nor depends on anything but it.
func TestBuildIsPure(t *testing.T) {
	res := resolvedResources()
	res.Pools = append(res.Pools, pool("bad", "203.0.113.0/24"))
	res.BGPAdvs = append(res.BGPAdvs, bgpAdv("x", func(s *v1beta1.BGPAdvertisementSpec) {
		s.NodeSelectors = []metav1.LabelSelector{{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "k", Operator: "In", Values: []string{"z", "a"}}}}}
	}))
	before := deepCopyResources(res)
	r1 := Build(res, frrOpts)
	r2 := Build(res, frrOpts)
	if !equalProblems(r1.Errors, r2.Errors) || !equalProblems(r1.Warnings, r2.Warnings) || len(r1.Errors) == 0 {
		t.Errorf("two builds differ or no error: %v / %v", r1.Errors, r2.Errors)
	}
	if !equalResources(before, res) {
		t.Error("Build modified its input")
	}
}
