package legacyconfig

import (
	"strings"
	"testing"
)

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, input string
		want        []string // fragments of the error
	}{
		{"empty input", "", []string{"holds no configuration"}},
		{"only comments", "# nothing\n", []string{"holds no configuration"}},
		{"not YAML", "peers: [\n", []string{"not valid YAML"}},
		{"a list", "- a\n- b\n", []string{"YAML list"}},
		{"two documents", "peers: []\n---\naddress-pools: []\n", []string{"2 YAML documents"}},
		{"unknown top-level field", "peer:\n- peer-address: 1.2.3.4\n", []string{`unknown field "peer" in the configuration`, "known fields: peers, bgp-communities, address-pools, bfd-profiles"}},
		{"ConfigMap without apiVersion and kind", "metadata:\n  name: config\ndata:\n  config: ''\n", []string{`unknown field "metadata"`, "apiVersion: v1 and kind: ConfigMap"}},
		{"unknown peer field", "peers:\n- peer-address: 1.2.3.4\n  peer-asn: 1\n  my-asn: 2\n  holdtime: 90s\n", []string{"line 5", `unknown field "holdtime" in a peers entry`, "hold-time"}},
		{"field names are case-sensitive, as in MetalLB", "peers:\n- Peer-Address: 1.2.3.4\n", []string{`unknown field "Peer-Address"`}},
		{"unknown pool field", "address-pools:\n- name: a\n  protocol: bgp\n  cidr: [1.2.3.0/24]\n", []string{`unknown field "cidr" in an address-pools entry`}},
		{"unknown advertisement field", "address-pools:\n- name: a\n  protocol: bgp\n  addresses: [1.2.3.0/24]\n  bgp-advertisements:\n  - local-pref: 1\n", []string{`unknown field "local-pref" in a bgp-advertisements entry`, "localpref"}},
		{"unknown BFD field", "bfd-profiles:\n- name: a\n  echo-receive-interval: 10\n", []string{`unknown field "echo-receive-interval" in a bfd-profiles entry`}},
		{"unknown selector field", "peers:\n- node-selectors:\n  - matchLabels: {a: b}\n", []string{`unknown field "matchLabels" in a node-selectors entry`, "match-labels"}},
		{"unknown expression field", "peers:\n- node-selectors:\n  - match-expressions:\n    - key: a\n      op: In\n", []string{`unknown field "op" in a match-expressions entry`}},
		{"repeated field", "peers:\n- peer-asn: 1\n  peer-asn: 2\n", []string{"line 3", `field "peer-asn" is repeated in a peers entry`}},
		{"repeated alias", "bgp-communities:\n  a: 1:1\n  a: 1:2\n", []string{`"a" already set`}},
		{"wrong type", "peers:\n- peer-asn: sixty-four\n", []string{"line 2", "cannot unmarshal", "uint32"}},
		{"ASN out of range", "peers:\n- peer-asn: 4294967296\n", []string{"uint32"}},
		{"port out of range", "peers:\n- peer-port: 70000\n", []string{"uint16"}},
		{"addresses not a list", "address-pools:\n- name: a\n  protocol: bgp\n  addresses: 1.2.3.0/24\n", []string{"cannot unmarshal"}},
		{"pool without name", "address-pools:\n- protocol: bgp\n  addresses: [1.2.3.0/24]\n", []string{"address-pools[0]: missing name"}},
		{"pool without protocol", "address-pools:\n- name: a\n  addresses: [1.2.3.0/24]\n", []string{`address-pools[0] ("a"): missing protocol`}},
		{"unknown protocol", "address-pools:\n- name: a\n  protocol: arp\n  addresses: [1.2.3.0/24]\n", []string{`unknown protocol "arp"`}},
		{"advertisements in a layer2 pool", "address-pools:\n- name: a\n  protocol: layer2\n  addresses: [1.2.3.0/24]\n  bgp-advertisements: [{localpref: 1}]\n", []string{"bgp-advertisements in a layer2 pool"}},
		{"BFD profile without name", "bfd-profiles:\n- detect-multiplier: 3\n", []string{"bfd-profiles[0]: missing name"}},
		{"hold-time not a duration", "peers:\n- hold-time: 90\n", []string{`peers[0]: hold-time "90" is not a duration`}},
		{"keepalive-time not a duration", "peers:\n- keepalive-time: soon\n", []string{`keepalive-time "soon"`}},
		{"several structural errors at once", "address-pools:\n- protocol: bgp\n- name: b\n", []string{"address-pools[0]: missing name", `address-pools[1] ("b"): missing protocol`}},
		{"other kind", "apiVersion: v1\nkind: Secret\nmetadata:\n  name: x\n", []string{`kind "Secret"`}},
		{"ConfigMap typo", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\ndta:\n  config: ''\n", []string{"ConfigMap manifest", `unknown field "dta"`}},
		{"ConfigMap without config", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\n  namespace: ns\ndata:\n  other: x\n", []string{"ConfigMap ns/config has no data.config"}},
		{"error inside data.config", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\ndata:\n  config: |\n    peers:\n    - asn: 1\n", []string{"data.config: line 2", `unknown field "asn"`}},
		{"two documents inside data.config", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\ndata:\n  config: |\n    peers: []\n    ---\n    peers: []\n", []string{"data.config holds 2 YAML documents"}},
		{"data.config a list", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\ndata:\n  config: '[1]'\n", []string{"data.config: the configuration is a YAML list"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.input))
			if err == nil {
				t.Fatalf("Parse accepted:\n%s", tc.input)
			}
			for _, f := range tc.want {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("error %q does not contain %q", err, f)
				}
			}
		})
	}
}

func TestParseForms(t *testing.T) {
	bare := "peers:\n- peer-address: 198.51.100.1\n  peer-asn: 2\n  my-asn: 1\n"
	cm := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\n  namespace: lb\ndata:\n  config: |\n    peers:\n    - peer-address: 198.51.100.1\n      peer-asn: 2\n      my-asn: 1\n"
	want := Config{Peers: []Peer{{Addr: "198.51.100.1", ASN: 2, MyASN: 1}}}
	for _, tc := range []struct {
		name, input string
		fromCM      bool
	}{
		{"bare text", bare, false},
		{"bare text with a leading document marker", "---\n" + bare + "---\n", false},
		{"ConfigMap", cm, true},
		{"ConfigMap between empty documents", "---\n# leading comment\n---\n" + cm + "---\n", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src, err := Parse([]byte(tc.input))
			if err != nil {
				t.Fatal(err)
			}
			if src.FromConfigMap != tc.fromCM {
				t.Errorf("FromConfigMap = %v", src.FromConfigMap)
			}
			if tc.fromCM && (src.ConfigMapNamespace != "lb" || src.ConfigMapName != "config") {
				t.Errorf("ConfigMap = %s/%s", src.ConfigMapNamespace, src.ConfigMapName)
			}
			if len(src.Config.Peers) != 1 || src.Config.Peers[0].Addr != want.Peers[0].Addr || src.Config.Peers[0].ASN != 2 || src.Config.Peers[0].MyASN != 1 {
				t.Errorf("config = %+v", src.Config)
			}
		})
	}
}

func TestConfigMapWarnings(t *testing.T) {
	in := "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: config\n  namespace: lb\ndata:\n  config: ''\n  extra: x\nbinaryData:\n  blob: AAEC\n"
	src, err := Parse([]byte(in))
	if err != nil {
		t.Fatal(err)
	}
	var msgs []string
	for _, w := range src.Warnings {
		msgs = append(msgs, w.Message)
	}
	all := strings.Join(msgs, "\n")
	for _, f := range []string{"data.extra is not MetalLB configuration", "binaryData.blob is not MetalLB configuration", "data.config is empty"} {
		if !strings.Contains(all, f) {
			t.Errorf("no warning %q in:\n%s", f, all)
		}
	}
	r, err := Convert(src, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Objects()) != 0 || len(r.Warnings) != len(src.Warnings) {
		t.Errorf("objects %d, warnings %v", len(r.Objects()), r.Warnings)
	}
}
