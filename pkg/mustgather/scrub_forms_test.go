package mustgather

import (
	"encoding/base64"
	"strings"
	"testing"
)

// TestScrubForms: every form a learnt value can take in the output is
// removed: as written, JSON-escaped and base64 - of the value as the
// Secret stores it (often with a trailing newline, from a file) as well
// as trimmed.
func TestScrubForms(t *testing.T) {
	b64 := func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }
	cases := []struct {
		name     string
		secret   string // learnt as a Secret value
		password string // learnt as a password
		in       string
		want     string
	}{
		{name: "raw", secret: "abcd-secret", in: "x abcd-secret y", want: "x <redacted> y"},
		{name: "base64 of the value", secret: "abcd-secret", in: "data: " + b64("abcd-secret"), want: "data: <redacted>"},
		{name: "base64 of the value as stored, with its newline", secret: "abcd-secret\n", in: "data: " + b64("abcd-secret\n"), want: "data: <redacted>"},
		{name: "base64 of the value as stored, with CRLF", secret: "abcd-secret\r\n", in: "data: " + b64("abcd-secret\r\n"), want: "data: <redacted>"},
		{name: "JSON-escaped", secret: `a"b\c<d>`, in: `{"k":"a\"b\\c\u003cd\u003e"}`, want: `{"k":"<redacted>"}`},
		{name: "a password in FRR's configuration, any length", password: "p", in: " neighbor 192.0.2.1 password p\n", want: " neighbor 192.0.2.1 password <redacted>\n"},
		{name: "a short password as a word in JSON", password: "pw", in: `{"note":"pw"}`, want: `{"note":"<redacted>"}`},
		{name: "a short password inside a word stays", password: "pw", in: "pwd", want: "pwd"},
		{name: "a short password in base64", password: "pw", in: "x " + b64("pw") + " y", want: "x <redacted> y"},
		{name: "a value containing another goes whole", secret: "long-secret-value", password: "secret", in: "long-secret-value secret", want: "<redacted> <redacted>"},
		{name: "password fields of a JSON document, nested in arrays",
			in:   `[{"a":{"BGPPassword":"unknown"}},{"password":""}]`,
			want: "[\n  {\n    \"a\": {\n      \"BGPPassword\": \"<redacted>\"\n    }\n  },\n  {\n    \"password\": \"\"\n  }\n]\n"},
		{name: "two JSON documents are not one: left to the other rules", in: `{"password":"x1"} {"password":"x2"}`, want: `{"password":"x1"} {"password":"x2"}`},
		{name: "JSON without a password field is kept byte for byte", in: `{"b":1,  "a":2}`, want: `{"b":1,  "a":2}`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var s scrubber
			if tc.secret != "" {
				s.add([]byte(tc.secret))
			}
			if tc.password != "" {
				s.addPasswords([]byte(tc.password))
			}
			got := string(s.scrub([]byte(tc.in)))
			if got != tc.want {
				t.Errorf("scrub(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if v := strings.TrimSpace(tc.secret); v != "" && strings.Contains(got, v) {
				t.Errorf("%q survived", v)
			}
		})
	}
}
