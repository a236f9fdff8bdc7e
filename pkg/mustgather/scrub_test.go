package mustgather

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestScrub(t *testing.T) {
	var s scrubber
	s.add([]byte("s3cr3t-pw\n"), []byte("abc"), []byte("memberlist-key-0123456789"), []byte("a<b>&c\"d"))
	// BGP passwords: removed whatever their length.
	s.addPasswords([]byte("pq"), []byte("x&y"))
	cases := []struct{ name, in, want string }{
		{"frr password line", " neighbor 198.18.0.254 password whatever here\n neighbor 198.18.0.254 remote-as 65000\n",
			" neighbor 198.18.0.254 password <redacted> here\n neighbor 198.18.0.254 remote-as 65000\n"},
		{"frr password in a log line", "2026/12/06 bgpd: [X] neighbor 198.18.0.254 password hunter2 applied\n",
			"2026/12/06 bgpd: [X] neighbor 198.18.0.254 password <redacted> applied\n"},
		{"value anywhere", `key=s3cr3t-pw;`, `key=<redacted>;`},
		{"base64 form", "key: " + base64.StdEncoding.EncodeToString([]byte("memberlist-key-0123456789")), "key: <redacted>"},
		{"JSON-escaped form", `{"v":"a\u003cb\u003e\u0026c\"d"}`, `{"v":"<redacted>"}`},
		{"short Secret values are left", "abc def", "abc def"},
		{"short password as a word", "user pq logged in; pqr stays\n", "user <redacted> logged in; pqr stays\n"},
		{"short password escaped", `"x\u0026y"`, `"<redacted>"`},
		{"nothing secret", "router bgp 64512\n", "router bgp 64512\n"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := string(s.scrub([]byte(tc.in))); got != tc.want {
				t.Fatalf("scrub(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// TestScrubPasswordFields: a JSON document has every field named like a
// password masked, whatever its value (known to the scrubber or not): the
// speaker's desired state handed to FRR carries each session's Password.
func TestScrubPasswordFields(t *testing.T) {
	var s scrubber
	in := `{"generation":3,"state":{"Sessions":[{"Name":"edge","Password":"unknown-to-the-scrubber","PasswordPending":false,"PeerASN":65000},` +
		`{"Name":"other","Password":""}],"Routes":{}},"spec":{"passwordSecret":{"name":"pw"},"password":"z"}}`
	got := string(s.scrub([]byte(in)))
	for _, leak := range []string{"unknown-to-the-scrubber", `"password": "z"`} {
		if strings.Contains(got, leak) {
			t.Errorf("%q survived:\n%s", leak, got)
		}
	}
	for _, kept := range []string{`"Password": "<redacted>"`, `"Password": ""`, `"name": "pw"`, `"PeerASN": 65000`, `"PasswordPending": false`} {
		if !strings.Contains(got, kept) {
			t.Errorf("%q missing:\n%s", kept, got)
		}
	}
	if plain := "not json, Password: visible-to-regexes-only"; string(s.scrub([]byte(plain))) != plain {
		t.Errorf("text that is not JSON was changed")
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

// TestWithheldWhenSecretsUnknown: when some Secrets could not be read, the
// gatherer cannot vouch for workload output (logs, command output, files
// read in containers) and withholds it; what it generates itself is
// written.
func TestWithheldWhenSecretsUnknown(t *testing.T) {
	dir := t.TempDir()
	g := &gatherer{opts: Options{DestDir: dir}}
	g.writeText("pods/a/logs/speaker.log", []byte("hello\n"))
	if b, err := os.ReadFile(filepath.Join(dir, "pods/a/logs/speaker.log")); err != nil || string(b) != "hello\n" {
		t.Fatalf("with every secret known: %q %v", b, err)
	}
	g.scrub.markIncomplete("the Secrets of namespace metallb-system could not be read (forbidden)")
	g.writeText("pods/b/logs/speaker.log", []byte("bgp password might be here\n"))
	if _, err := os.Stat(filepath.Join(dir, "pods/b/logs/speaker.log")); err == nil {
		t.Error("a log was written although Secrets could not be read")
	}
	note, err := os.ReadFile(filepath.Join(dir, "pods/b/logs/speaker.log.WITHHELD.txt"))
	if err != nil || !strings.Contains(string(note), "metallb-system could not be read") {
		t.Errorf("no note saying why: %q %v", note, err)
	}
	g.writeFile("summary.txt", []byte("ok\n"))
	if _, err := os.Stat(filepath.Join(dir, "summary.txt")); err != nil {
		t.Errorf("generated files are withheld too: %v", err)
	}
}
