// Package serving owns how lbstack's components serve over the network:
// the TLS settings of every server (admission webhooks, metrics), /metrics
// behind authentication and authorization, and the loopback-only server of
// a component's health and debug endpoints.
package serving

import (
	"crypto/tls"
	"fmt"
	"sort"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// Options are the settings every TLS server of a component shares, and
// whether its /metrics needs authentication.
type Options struct {
	// MinTLSVersion is the oldest TLS version accepted (tls.VersionTLS12...).
	MinTLSVersion uint16
	// HTTP2 serves HTTP/2. Off, HTTP/2 rapid-reset and stream-flood attacks
	// (CVE-2023-44487, CVE-2023-39325) have nothing to use.
	HTTP2 bool
	// SecureMetrics serves /metrics over HTTPS to clients that authenticate
	// with a token the API server accepts and may get the /metrics URL;
	// false serves plain HTTP to anyone.
	SecureMetrics bool
}

// tlsVersions are the TLS versions TLSVersion knows, with Kubernetes'
// spelling (as in --tls-min-version of its components).
var tlsVersions = map[string]uint16{"VersionTLS12": tls.VersionTLS12, "VersionTLS13": tls.VersionTLS13}

// TLSVersion returns the TLS version named name (VersionTLS12 or
// VersionTLS13; older ones are not served).
func TLSVersion(name string) (uint16, error) {
	if v, ok := tlsVersions[name]; ok {
		return v, nil
	}
	names := make([]string, 0, len(tlsVersions))
	for n := range tlsVersions {
		names = append(names, n)
	}
	sort.Strings(names)
	return 0, fmt.Errorf("want one of %s", strings.Join(names, ", "))
}

// TLS returns the TLS settings of every server: the minimum version and,
// unless enabled, no HTTP/2 (as MetalLB and kubebuilder projects do).
func (o Options) TLS() []func(*tls.Config) {
	v := o.MinTLSVersion
	opts := []func(*tls.Config){func(c *tls.Config) { c.MinVersion = v }}
	if !o.HTTP2 {
		opts = append(opts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	return opts
}

// Metrics serves /metrics on addr: with SecureMetrics, over HTTPS (a
// self-signed certificate made at start, so nothing is written) to
// authenticated and authorized clients only, as controller-runtime's secure
// serving does; else plain HTTP.
func (o Options) Metrics(addr string) metricsserver.Options {
	m := metricsserver.Options{BindAddress: addr}
	if !o.SecureMetrics {
		return m
	}
	m.SecureServing = true
	m.FilterProvider = filters.WithAuthenticationAndAuthorization
	m.TLSOpts = o.TLS()
	return m
}
