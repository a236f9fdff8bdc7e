package serving

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
)

func TestTLS(t *testing.T) {
	for _, tc := range []struct {
		o      Options
		min    uint16
		protos []string
	}{
		{o: Options{MinTLSVersion: tls.VersionTLS13}, min: tls.VersionTLS13, protos: []string{"http/1.1"}},
		{o: Options{MinTLSVersion: tls.VersionTLS12, HTTP2: true}, min: tls.VersionTLS12, protos: []string{"h2"}},
	} {
		c := &tls.Config{NextProtos: []string{"h2"}} // controller-runtime's starting point
		for _, o := range tc.o.TLS() {
			o(c)
		}
		if c.MinVersion != tc.min || !slices.Equal(c.NextProtos, tc.protos) {
			t.Errorf("%+v: MinVersion %x NextProtos %v, want %x %v", tc.o, c.MinVersion, c.NextProtos, tc.min, tc.protos)
		}
	}
}

func TestTLSVersion(t *testing.T) {
	if v, err := TLSVersion("VersionTLS12"); err != nil || v != tls.VersionTLS12 {
		t.Errorf("VersionTLS12: %x, %v", v, err)
	}
	if _, err := TLSVersion("VersionTLS10"); err == nil || err.Error() != "want one of VersionTLS12, VersionTLS13" {
		t.Errorf("VersionTLS10: %v", err)
	}
}

func TestMetrics(t *testing.T) {
	if m := (Options{}).Metrics(":8080"); m.BindAddress != ":8080" || m.SecureServing || m.FilterProvider != nil {
		t.Errorf("plain metrics: %+v", m)
	}
	m := (Options{MinTLSVersion: tls.VersionTLS13, SecureMetrics: true}).Metrics(":8443")
	if m.BindAddress != ":8443" || !m.SecureServing || m.FilterProvider == nil || len(m.TLSOpts) != 2 {
		t.Errorf("secure metrics: %+v", m)
	}
}

func TestLocalServer(t *testing.T) {
	for _, addr := range []string{":7473", "0.0.0.0:7473", "198.18.0.1:7473", "example.com:7473"} {
		if _, err := NewLocalServer(addr); err == nil {
			t.Errorf("%s accepted: the health and debug endpoints must stay on loopback", addr)
		}
	}
	s, err := NewLocalServer("127.0.0.1:7473")
	if err != nil {
		t.Fatal(err)
	}
	var fail error
	s.Check("/readyz", "a", func() error { return nil })
	s.Check("/readyz", "b", func() error { return fail })
	s.Handle("/debug/state", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("{}")) }))
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
