package legacyconfig

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/diff"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// scenario returns the path of a seed scenario file: $LBSTACK_SCENARIOS, or
// the repository's config/samples/scenarios (see docs/development.md).
func scenario(t testing.TB, rel string) string {
	t.Helper()
	dir := os.Getenv("LBSTACK_SCENARIOS")
	if dir == "" {
		dir = filepath.Join("..", "..", "config", "samples", "scenarios")
	}
	p := filepath.Join(dir, rel)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("seed scenario %s not found (set LBSTACK_SCENARIOS): %v", rel, err)
	}
	return p
}

// goldenInputs are the inputs with a golden output in testdata/golden.
func goldenInputs(t testing.TB) map[string]string {
	return map[string]string{
		"legacy-configmap":     scenario(t, "bgp-pools-sharing/legacy-configmap.yaml"),
		"legacy-configmap-bfd": scenario(t, "bgp-pools-sharing/legacy-configmap-bfd.yaml"),
		"full-configmap":       filepath.Join("testdata", "full-configmap.yaml"),
		"renames":              filepath.Join("testdata", "renames.yaml"),
	}
}

func convertFile(t *testing.T, path string) (*Source, *Result) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src, err := Parse(data)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	r, err := Convert(src, Options{})
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return src, r
}

func TestGolden(t *testing.T) {
	for name, in := range goldenInputs(t) {
		t.Run(name, func(t *testing.T) {
			_, r := convertFile(t, in)
			got, err := r.YAML()
			if err != nil {
				t.Fatal(err)
			}
			golden := filepath.Join("testdata", "golden", name+".yaml")
			if *update {
				if err := os.WriteFile(golden, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("output differs from %s (go test -update rewrites it):\n%s", golden, diff.Diff(string(got), string(want)))
			}
		})
	}
}

// decodeStream decodes a YAML stream of metallb.io objects strictly into
// the API types.
func decodeStream(data []byte) ([]client.Object, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var out []client.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var tm metav1.TypeMeta
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			return nil, err
		}
		if tm.Kind == "" && tm.APIVersion == "" {
			continue // comments only
		}
		var obj client.Object
		switch tm.APIVersion + "/" + tm.Kind {
		case "metallb.io/v1beta1/IPAddressPool":
			obj = &v1beta1.IPAddressPool{}
		case "metallb.io/v1beta2/BGPPeer":
			obj = &v1beta2.BGPPeer{}
		case "metallb.io/v1beta1/BGPAdvertisement":
			obj = &v1beta1.BGPAdvertisement{}
		case "metallb.io/v1beta1/L2Advertisement":
			obj = &v1beta1.L2Advertisement{}
		case "metallb.io/v1beta1/BFDProfile":
			obj = &v1beta1.BFDProfile{}
		case "metallb.io/v1beta1/Community":
			obj = &v1beta1.Community{}
		default:
			return nil, fmt.Errorf("unexpected %s %s", tm.APIVersion, tm.Kind)
		}
		if err := yaml.UnmarshalStrict(doc, obj); err != nil {
			return nil, fmt.Errorf("%s: %w\n%s", tm.Kind, err, doc)
		}
		out = append(out, obj)
	}
}

// checkRoundTrip renders r, decodes the YAML strictly and checks that the
// objects read back are the typed objects, field for field.
func checkRoundTrip(t testing.TB, r *Result) []byte {
	t.Helper()
	y, err := r.YAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeStream(y)
	if err != nil {
		t.Fatalf("decoding the output strictly: %v\n%s", err, y)
	}
	objs := r.Objects()
	if len(back) != len(objs) {
		t.Fatalf("read back %d objects, rendered %d", len(back), len(objs))
	}
	for i := range objs {
		if !equality.Semantic.DeepEqual(back[i], objs[i]) {
			t.Errorf("%s %q changed through YAML (-read back +converted):\n%s", objs[i].GetObjectKind().GroupVersionKind().Kind, objs[i].GetName(), diff.Diff(back[i], objs[i]))
		}
	}
	for line := range strings.Lines(string(y)) {
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, noise := range []string{"status:", "creationTimestamp", "passwordSecret"} {
			if strings.Contains(line, noise) {
				t.Errorf("output contains %q:\n%s", noise, y)
			}
		}
	}
	return y
}

func TestRoundTrip(t *testing.T) {
	for name, in := range goldenInputs(t) {
		t.Run(name, func(t *testing.T) {
			_, r := convertFile(t, in)
			checkRoundTrip(t, r)
		})
	}
}

// byKindName indexes objects by "Kind/name".
func byKindName(t *testing.T, objs []client.Object) map[string]client.Object {
	t.Helper()
	m := map[string]client.Object{}
	for _, o := range objs {
		k := o.GetObjectKind().GroupVersionKind().Kind + "/" + o.GetName()
		if _, dup := m[k]; dup {
			t.Fatalf("two objects %s", k)
		}
		m[k] = o
	}
	return m
}

// TestSeedMatchesCRDForm checks that the plain seed converts to the objects
// of the scenario's CRD form, apart from the legacy-name annotations.
func TestSeedMatchesCRDForm(t *testing.T) {
	_, r := convertFile(t, scenario(t, "bgp-pools-sharing/legacy-configmap.yaml"))
	want, err := os.ReadFile(scenario(t, "bgp-pools-sharing/metallb-config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	wantObjs, err := decodeStream(want)
	if err != nil {
		t.Fatal(err)
	}
	var got []client.Object
	for _, o := range r.Objects() {
		o = o.DeepCopyObject().(client.Object)
		if legacy, ok := o.GetAnnotations()[LegacyNameAnnotation]; ok {
			if !strings.EqualFold(legacy, o.GetName()) {
				t.Errorf("%s carries legacy name %q", o.GetName(), legacy)
			}
			o.SetAnnotations(nil)
		}
		got = append(got, o)
	}
	g, w := byKindName(t, got), byKindName(t, wantObjs)
	if !slices.Equal(slices.Sorted(maps.Keys(g)), slices.Sorted(maps.Keys(w))) {
		t.Fatalf("objects = %v, want %v", slices.Sorted(maps.Keys(g)), slices.Sorted(maps.Keys(w)))
	}
	for k, o := range w {
		if !equality.Semantic.DeepEqual(g[k], o) {
			t.Errorf("%s differs (-converted +scenario):\n%s", k, diff.Diff(g[k], o))
		}
	}
}

func TestBFDSeedKeepsProfile(t *testing.T) {
	_, r := convertFile(t, scenario(t, "bgp-pools-sharing/legacy-configmap-bfd.yaml"))
	if len(r.BFDProfiles) != 1 {
		t.Fatalf("got %d BFD profiles", len(r.BFDProfiles))
	}
	b := r.BFDProfiles[0]
	want := v1beta1.BFDProfileSpec{ReceiveInterval: pt[uint32](300), TransmitInterval: pt[uint32](300), PassiveMode: pt(false), MinimumTTL: pt[uint32](254)}
	if b.Name != "full1" || !equality.Semantic.DeepEqual(b.Spec, want) {
		t.Errorf("BFD profile %q = %+v", b.Name, b.Spec)
	}
	if len(r.BGPPeers) != 1 || r.BGPPeers[0].Spec.BFDProfile != "full1" {
		t.Errorf("peers = %+v", r.BGPPeers)
	}
	if len(r.Warnings) != 0 {
		t.Errorf("warnings: %v", r.Warnings)
	}
}

// TestNothingLost maps the converted objects back to the legacy format and
// checks that the result is the input: every value of the ConfigMap is in
// some object.
func TestNothingLost(t *testing.T) {
	for name, in := range goldenInputs(t) {
		t.Run(name, func(t *testing.T) {
			src, r := convertFile(t, in)
			y := checkRoundTrip(t, r)
			objs, err := decodeStream(y)
			if err != nil {
				t.Fatal(err)
			}
			got := toLegacy(t, objs)
			want := canonical(src.Config)
			if !equality.Semantic.DeepEqual(got, want) {
				t.Errorf("legacy configuration rebuilt from the objects differs (-rebuilt +input):\n%s", diff.Diff(got, want))
			}
		})
	}
}

// canonical normalises a legacy configuration to the form toLegacy
// produces: what means the same is written the same way.
func canonical(c Config) Config {
	out := Config{BGPCommunities: maps.Clone(c.BGPCommunities)}
	if len(out.BGPCommunities) == 0 {
		out.BGPCommunities = nil
	}
	for i, p := range c.Peers {
		if p.Name == fmt.Sprintf("peer%d", i+1) {
			p.Name = ""
		}
		p.HoldTime, p.KeepaliveTime = canonicalDuration(p.HoldTime), canonicalDuration(p.KeepaliveTime)
		var sels []NodeSelector
		for _, s := range p.NodeSelectors {
			if len(s.MatchLabels) == 0 {
				s.MatchLabels = nil
			}
			var exprs []SelectorRequirement
			for _, e := range s.MatchExpressions {
				if len(e.Values) == 0 {
					e.Values = nil
				}
				exprs = append(exprs, e)
			}
			s.MatchExpressions = exprs
			sels = append(sels, s)
		}
		p.NodeSelectors = sels
		out.Peers = append(out.Peers, p)
	}
	for _, p := range c.Pools {
		p.Addresses = append([]string{}, p.Addresses...)
		var ads []BGPAdvertisement
		for _, a := range p.BGPAdvertisements {
			if a.LocalPref != nil && *a.LocalPref == 0 {
				a.LocalPref = nil // MetalLB's default
			}
			var cs []string
			for _, c := range a.Communities {
				if !slices.Contains(cs, c) {
					cs = append(cs, c)
				}
			}
			a.Communities = cs
			ads = append(ads, a)
		}
		if len(ads) == 1 && ads[0].AggregationLength == nil && ads[0].AggregationLengthV6 == nil && ads[0].LocalPref == nil && len(ads[0].Communities) == 0 {
			ads = nil // one default advertisement is what MetalLB did without any
		}
		p.BGPAdvertisements = ads
		out.Pools = append(out.Pools, p)
	}
	out.BFDProfiles = append(out.BFDProfiles, c.BFDProfiles...)
	return out
}

func canonicalDuration(s string) string {
	if s == "" {
		return ""
	}
	d, _ := time.ParseDuration(s)
	return d.Truncate(time.Second).String()
}

// toLegacy rebuilds the legacy configuration from converted objects, using
// the legacy-name annotations for the original names.
func toLegacy(t *testing.T, objs []client.Object) Config {
	t.Helper()
	legacy := func(o client.Object) string {
		if n, ok := o.GetAnnotations()[LegacyNameAnnotation]; ok {
			return n
		}
		return o.GetName()
	}
	var c Config
	bfdLegacy := map[string]string{}
	bgpAds := map[string][]BGPAdvertisement{}
	l2 := map[string]bool{}
	for _, o := range objs {
		switch o := o.(type) {
		case *v1beta1.BGPAdvertisement:
			s := o.Spec
			if len(s.IPAddressPools) != 1 || s.IPAddressPoolSelectors != nil || s.NodeSelectors != nil || s.Peers != nil || s.ServiceSelectors != nil {
				t.Errorf("BGPAdvertisement %s has a shape the converter does not produce: %+v", o.Name, s)
			}
			ad := BGPAdvertisement{AggregationLength: s.AggregationLength, AggregationLengthV6: s.AggregationLengthV6, Communities: s.Communities}
			if s.LocalPref != 0 {
				ad.LocalPref = pt(s.LocalPref)
			}
			bgpAds[s.IPAddressPools[0]] = append(bgpAds[s.IPAddressPools[0]], ad)
		case *v1beta1.L2Advertisement:
			l2[o.Spec.IPAddressPools[0]] = true
		case *v1beta1.BFDProfile:
			bfdLegacy[o.Name] = legacy(o)
		}
	}
	for _, o := range objs {
		switch o := o.(type) {
		case *v1beta1.BFDProfile:
			s := o.Spec
			c.BFDProfiles = append(c.BFDProfiles, BFDProfile{Name: legacy(o), ReceiveInterval: s.ReceiveInterval, TransmitInterval: s.TransmitInterval,
				DetectMultiplier: s.DetectMultiplier, EchoInterval: s.EchoInterval, EchoMode: s.EchoMode, PassiveMode: s.PassiveMode, MinimumTTL: s.MinimumTTL})
		case *v1beta1.Community:
			if c.BGPCommunities == nil {
				c.BGPCommunities = map[string]string{}
			}
			for _, a := range o.Spec.Communities {
				c.BGPCommunities[a.Name] = a.Value
			}
		case *v1beta1.IPAddressPool:
			p := AddressPool{Name: legacy(o), Addresses: o.Spec.Addresses, AvoidBuggyIPs: o.Spec.AvoidBuggyIPs, AutoAssign: o.Spec.AutoAssign, Protocol: ProtocolBGP}
			if l2[o.Name] {
				p.Protocol = ProtocolLayer2
			}
			ads := bgpAds[o.Name]
			if len(ads) == 1 && ads[0].AggregationLength == nil && ads[0].AggregationLengthV6 == nil && ads[0].LocalPref == nil && len(ads[0].Communities) == 0 {
				ads = nil
			}
			p.BGPAdvertisements = ads
			c.Pools = append(c.Pools, p)
		case *v1beta2.BGPPeer:
			s := o.Spec
			p := Peer{MyASN: s.MyASN, ASN: s.ASN, Addr: s.Address, SrcAddr: s.SrcAddress, RouterID: s.RouterID, Password: s.Password,
				EBGPMultiHop: s.EBGPMultiHop, VRF: s.VRFName}
			if n, ok := o.Annotations[LegacyNameAnnotation]; ok {
				p.Name = n
			} else if gen := fmt.Sprintf("peer%d", len(c.Peers)+1); o.Name != gen && !strings.HasPrefix(o.Name, gen+"-") {
				p.Name = o.Name // a generated name, possibly with a collision suffix, stands for no name
			}
			if s.Port != nil {
				p.Port = *s.Port
			}
			if s.HoldTime != nil {
				p.HoldTime = s.HoldTime.Duration.String()
			}
			if s.KeepaliveTime != nil {
				p.KeepaliveTime = s.KeepaliveTime.Duration.String()
			}
			if s.BFDProfile != "" {
				p.BFDProfile = bfdLegacy[s.BFDProfile]
			}
			for _, sel := range s.NodeSelectors {
				ns := NodeSelector{MatchLabels: sel.MatchLabels}
				for _, e := range sel.MatchExpressions {
					ns.MatchExpressions = append(ns.MatchExpressions, SelectorRequirement{Key: e.Key, Operator: string(e.Operator), Values: e.Values})
				}
				p.NodeSelectors = append(p.NodeSelectors, ns)
			}
			if s.PasswordSecret.Name != "" || s.Interface != "" || s.DynamicASN != "" || s.ConnectTime != nil || s.LocalASN != 0 {
				t.Errorf("BGPPeer %s has fields the converter does not produce: %+v", o.Name, s)
			}
			c.Peers = append(c.Peers, p)
		}
	}
	return c
}
