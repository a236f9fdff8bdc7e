package cli

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/lbstack/lbstack/pkg/serving"
)

func TestServingFlags(t *testing.T) {
	o, err := servingFlags{tlsMinVersion: "VersionTLS12", enableHTTP2: true, metricsSecure: true}.options()
	if err != nil || o != (serving.Options{MinTLSVersion: tls.VersionTLS12, HTTP2: true, SecureMetrics: true}) {
		t.Errorf("options %+v, %v", o, err)
	}
	if _, err := (servingFlags{tlsMinVersion: "VersionTLS10"}).options(); err == nil || !strings.Contains(err.Error(), "VersionTLS12, VersionTLS13") {
		t.Errorf("error %v, want one naming VersionTLS12, VersionTLS13", err)
	}
}
