package legacyconfig

import "testing"

// FuzzParse feeds arbitrary input to the whole conversion: Parse must
// either refuse it or accept it, and whatever it accepts must convert
// without error into valid, uniquely named objects whose YAML decodes
// strictly back into the same objects.
func FuzzParse(f *testing.F) {
	// Small seeds keep the engine's minimisation of new inputs short; the
	// big inputs are covered by the golden tests.
	for _, s := range []string{
		"",
		"peers: []\n",
		"peers:\n- name: P_1\n  peer-address: 198.51.100.1\n  peer-asn: 1\n  my-asn: 2\n  hold-time: 1.5s\n  keepalive-time: 500ms\n  peer-port: 20000\n  bfd-profile: B\n",
		"peers:\n- node-selectors:\n  - match-labels: {a: b}\n    match-expressions: [{key: k, operator: In, values: [v]}]\n  password: 0123\n  ebgp-multihop: yes\n  vrf: red\n  router-id: x\n  source-address: ::1\n",
		"address-pools:\n- name: A_B\n  protocol: bgp\n  addresses: ['203.0.113.0/24', '203.0.113.5 - 203.0.113.9']\n  bgp-advertisements: [{communities: [x, 1:1, 'large:1:2:3'], localpref: 3}, {aggregation-length: 24, aggregation-length-v6: 64}]\n",
		"address-pools:\n- name: a\n  protocol: layer2\n  auto-assign: false\n  avoid-buggy-ips: true\n  addresses: [2001:db8::/64]\n- name: A\n  protocol: layer2\n  addresses: [2001:db8::/120]\n",
		"bgp-communities: {a: 1:1, '': x}\nbfd-profiles:\n- name: X\n  receive-interval: 5\n  echo-mode: true\n- name: x\n  minimum-ttl: 254\n",
		"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: config, namespace: ns}\ndata:\n  config: 'peers: [{name: P}]'\n  other: x\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		src, err := Parse(data)
		if err != nil {
			return
		}
		r, err := Convert(src, Options{})
		if err != nil {
			t.Fatalf("Parse accepted the input but Convert failed: %v", err)
		}
		seen := map[string]bool{}
		for _, o := range r.Objects() {
			k := o.GetObjectKind().GroupVersionKind().Kind + "/" + o.GetName()
			if seen[k] {
				t.Fatalf("two objects %s", k)
			}
			seen[k] = true
			if !validName(o.GetName()) {
				t.Fatalf("%s: invalid name", k)
			}
			if o.GetNamespace() != r.Namespace || r.Namespace == "" {
				t.Fatalf("%s in namespace %q, result namespace %q", k, o.GetNamespace(), r.Namespace)
			}
		}
		checkRoundTrip(t, r)
	})
}
