package mustgather

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestScrub(t *testing.T) {
	var s scrubber
	s.add([]byte("s3cr3t-pw\n"), []byte("abc"), []byte("memberlist-key-0123456789"))
	cases := []struct{ name, in, want string }{
		{"frr password line", " neighbor 198.18.0.254 password whatever here\n neighbor 198.18.0.254 remote-as 65000\n",
			" neighbor 198.18.0.254 password <redacted>\n neighbor 198.18.0.254 remote-as 65000\n"},
		{"value anywhere", `{"password":"s3cr3t-pw"}`, `{"password":"<redacted>"}`},
		{"base64 form", "key: " + base64.StdEncoding.EncodeToString([]byte("memberlist-key-0123456789")), "key: <redacted>"},
		{"short values are left", "abc def", "abc def"},
		{"nothing secret", "router bgp 64512\n", "router bgp 64512\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(s.scrub([]byte(tc.in))); got != tc.want {
				t.Fatalf("scrub(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if strings.Contains(string(s.scrub([]byte(tc.in))), "s3cr3t-pw") {
				t.Fatal("secret survived")
			}
		})
	}
}

func TestConfigVRFs(t *testing.T) {
	conf := "frr version 8.4.4\n!\nvrf red\n exit-vrf\n!\nrouter bgp 65001\n!\nrouter bgp 65001 vrf ens4vrf\n neighbor 198.19.130.1 remote-as 200\n!\nrouter bgp 65001 vrf red\n"
	got := configVRFs([]byte(conf))
	if strings.Join(got, ",") != "ens4vrf,red" {
		t.Fatalf("configVRFs = %v", got)
	}
	if got := configVRFs([]byte("router bgp 65001\n")); len(got) != 0 {
		t.Fatalf("no VRF: %v", got)
	}
}
