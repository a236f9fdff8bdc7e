package calico

import (
	"strings"
	"testing"

	"sigs.k8s.io/yaml"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/api/v1beta2"
	"github.com/lbstack/lbstack/pkg/config"
)

const testNS = "metallb-system"

// build decodes metallb.io manifests (documents separated by "---", each
// with its kind; the namespace is filled in) and builds the configuration
// the Calico mode starts from.
func build(t *testing.T, manifests string) *config.Config {
	t.Helper()
	var res config.Resources
	for _, doc := range strings.Split(manifests, "\n---\n") {
		if strings.TrimSpace(doc) == "" {
			continue
		}
		var head struct{ Kind string }
		if err := yaml.Unmarshal([]byte(doc), &head); err != nil {
			t.Fatalf("manifest %q: %v", doc, err)
		}
		var err error
		switch head.Kind {
		case "IPAddressPool":
			var o v1beta1.IPAddressPool
			err = yaml.UnmarshalStrict([]byte(doc), &o)
			o.Namespace = testNS
			res.Pools = append(res.Pools, o)
		case "BGPAdvertisement":
			var o v1beta1.BGPAdvertisement
			err = yaml.UnmarshalStrict([]byte(doc), &o)
			o.Namespace = testNS
			res.BGPAdvs = append(res.BGPAdvs, o)
		case "L2Advertisement":
			var o v1beta1.L2Advertisement
			err = yaml.UnmarshalStrict([]byte(doc), &o)
			o.Namespace = testNS
			res.L2Advs = append(res.L2Advs, o)
		case "Community":
			var o v1beta1.Community
			err = yaml.UnmarshalStrict([]byte(doc), &o)
			o.Namespace = testNS
			res.Communities = append(res.Communities, o)
		case "BGPPeer":
			var o v1beta2.BGPPeer
			err = yaml.UnmarshalStrict([]byte(doc), &o)
			o.Namespace = testNS
			res.Peers = append(res.Peers, o)
		default:
			t.Fatalf("manifest of unexpected kind %q:\n%s", head.Kind, doc)
		}
		if err != nil {
			t.Fatalf("manifest %q: %v", doc, err)
		}
	}
	r := config.Build(res, config.Options{Namespace: testNS})
	if len(r.Errors) > 0 || r.Config == nil {
		t.Fatalf("config.Build refused the test's manifests: %v", r.Errors)
	}
	return r.Config
}
