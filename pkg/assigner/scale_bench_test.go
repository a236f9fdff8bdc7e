package assigner

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/pkg/ipam"
)

// The per-event costs of the controller's pure part at the scale of issue
// 21: 5,000 autoAssign pools (a /28 each in 198.18.0.0/15) and 10,000
// Services holding addresses (the first 625 pools full).
//
//	go test -run '^$' -bench Scale -benchmem ./pkg/assigner/

const (
	scalePools    = 5000
	scaleServices = 10000
)

func scalePoolObjects(extra int) []v1beta1.IPAddressPool {
	out := make([]v1beta1.IPAddressPool, scalePools)
	for i := range out {
		first := netip.AddrFrom4([4]byte{198, 18 + byte(i/4096), byte(i % 4096 / 16), byte(i % 16 * 16)})
		out[i] = pool(fmt.Sprintf("scale-%04d", i), netip.PrefixFrom(first, 28).String())
	}
	if extra >= 0 { // the one pool change: an unused pool gets a second range
		out[scalePools-1].Spec.Addresses = append(out[scalePools-1].Spec.Addresses, netip.PrefixFrom(netip.AddrFrom4([4]byte{198, 19, 128, byte(16 * extra)}), 28).String())
	}
	return out
}

func scaleConfig(b *testing.B, extra int) *config.Config {
	r := config.Build(config.Resources{Pools: scalePoolObjects(extra)}, config.Options{Namespace: testNS})
	if r.Config == nil {
		b.Fatal(r.Err())
	}
	return r.Config
}

// scaleWorld is 10,000 Services decided under cfg.
func scaleWorld(b *testing.B, cfg *config.Config) (*ipam.Allocator, *poolIndex, []intent) {
	a := ipam.New()
	a.SetPools(ipamPools(cfg))
	x := newPoolIndex(cfg)
	ins := make([]intent, scaleServices)
	for i := range ins {
		s := svc(fmt.Sprintf("svc-%05d", i))
		s.Spec.IPFamilyPolicy = ptr.To(corev1.IPFamilyPolicySingleStack)
		in, err := parseIntent(s)
		if err != nil {
			b.Fatal(err)
		}
		ins[i] = in
		if out := decide(a, x, &ins[i], nil, nil); out.Err != nil {
			b.Fatal(out.Err)
		}
	}
	return a, x, ins
}

// BenchmarkScaleDecideNew: one new Service gets an address (and goes).
func BenchmarkScaleDecideNew(b *testing.B) {
	a, x, _ := scaleWorld(b, scaleConfig(b, -1))
	in, _ := parseIntent(svc("new"))
	b.ResetTimer()
	for range b.N {
		if out := decide(a, x, &in, nil, nil); out.Err != nil {
			b.Fatal(out.Err)
		}
		a.Release(in.Key)
	}
}

// BenchmarkScaleRedecide: an assigned Service is reconciled again (a
// restart, a resync, an unrelated change of it): it keeps its address.
func BenchmarkScaleRedecide(b *testing.B) {
	a, x, ins := scaleWorld(b, scaleConfig(b, -1))
	in := &ins[scaleServices/2]
	held, _ := a.Assigned(in.Key)
	b.ResetTimer()
	for range b.N {
		if out := decide(a, x, in, nil, held.IPs); out.Err != nil || out.Assignment.IPs[0] != held.IPs[0] {
			b.Fatal(out)
		}
	}
}

// BenchmarkScalePoolChange: one pool no Service uses gets a range, and
// back: config.Build (pkg/config, the whole configuration) and the
// controller's step (reconfigure, the Services it names re-decided).
func BenchmarkScalePoolChange(b *testing.B) {
	cfgs := [2]*config.Config{scaleConfig(b, -1), scaleConfig(b, 0)}
	a, _, ins := scaleWorld(b, cfgs[0])
	byKey := map[string]*intent{}
	for i := range ins {
		byKey[ins[i].Key] = &ins[i]
	}
	var build, step, redecided int64
	b.ResetTimer()
	for i := range b.N {
		old, cur := cfgs[i%2], cfgs[(i+1)%2]
		t0 := nanotime()
		_ = config.Build(config.Resources{Pools: scalePoolObjects(i%2*2 - 1)}, config.Options{Namespace: testNS})
		t1 := nanotime()
		x := newPoolIndex(cur)
		_, affected, _ := reconfigure(a, old, cur)
		for k := range affected {
			in := byKey[k]
			held, _ := a.Assigned(k)
			decide(a, x, in, nil, held.IPs)
		}
		t2 := nanotime()
		build += t1 - t0
		step += t2 - t1
		redecided += int64(len(affected))
	}
	b.ReportMetric(float64(build)/float64(b.N)/1e6, "build-ms/op")
	b.ReportMetric(float64(step)/float64(b.N)/1e6, "step-ms/op")
	b.ReportMetric(float64(redecided)/float64(b.N), "redecided/op")
}

func nanotime() int64 { return time.Now().UnixNano() }
