package cli

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestTLSOptions(t *testing.T) {
	for _, tc := range []struct {
		f         servingFlags
		min       uint16
		protos    []string
		wantError string
	}{
		{f: servingFlags{tlsMinVersion: "VersionTLS13"}, min: tls.VersionTLS13, protos: []string{"http/1.1"}},
		{f: servingFlags{tlsMinVersion: "VersionTLS12", enableHTTP2: true}, min: tls.VersionTLS12, protos: []string{"h2"}},
		{f: servingFlags{tlsMinVersion: "VersionTLS10"}, wantError: "VersionTLS12, VersionTLS13"},
	} {
		opts, err := tc.f.tlsOptions()
		if tc.wantError != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantError) {
				t.Errorf("%+v: error %v, want one naming %s", tc.f, err, tc.wantError)
			}
			continue
		}
		c := &tls.Config{NextProtos: []string{"h2"}} // controller-runtime's starting point
		for _, o := range opts {
			o(c)
		}
		if c.MinVersion != tc.min || !slices.Equal(c.NextProtos, tc.protos) {
			t.Errorf("%+v: MinVersion %x NextProtos %v, want %x %v", tc.f, c.MinVersion, c.NextProtos, tc.min, tc.protos)
		}
	}
}

func TestLocalServer(t *testing.T) {
	for _, addr := range []string{":7473", "0.0.0.0:7473", "198.18.0.1:7473", "example.com:7473"} {
		if _, err := newLocalServer(addr); err == nil {
			t.Errorf("%s accepted: the health and debug endpoints must stay on loopback", addr)
		}
	}
	s, err := newLocalServer("127.0.0.1:7473")
	if err != nil {
		t.Fatal(err)
	}
	var fail error
	s.check("/readyz", "a", func() error { return nil })
	s.check("/readyz", "b", func() error { return fail })
	s.handle("/debug/state", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) }))
	get := func(path string) (int, string) {
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		return rec.Code, rec.Body.String()
	}
	if code, body := get("/readyz"); code != http.StatusOK || body != "[+]a ok\n[+]b ok\n" {
		t.Errorf("readyz %d %q", code, body)
	}
	fail = errors.New("no report from the frr-reloader container")
	if code, body := get("/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "[-]b failed: no report") {
		t.Errorf("failing readyz %d %q", code, body)
	}
	if code, body := get("/debug/state"); code != http.StatusOK || body != "{}" {
		t.Errorf("debug %d %q", code, body)
	}
	if code, _ := get("/metrics"); code != http.StatusNotFound {
		t.Errorf("/metrics on the local server: %d", code)
	}
}
