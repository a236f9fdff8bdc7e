package cli

import (
	"fmt"

	"github.com/spf13/pflag"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/lbstack/lbstack/pkg/serving"
)

// servingFlags configure every TLS server a command runs (admission
// webhooks, metrics) and whether metrics need authentication.
type servingFlags struct {
	tlsMinVersion string
	enableHTTP2   bool
	metricsSecure bool
}

func (f *servingFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.tlsMinVersion, "tls-min-version", "VersionTLS13", "oldest TLS version the webhook and metrics servers accept: VersionTLS12 or VersionTLS13")
	fl.BoolVar(&f.enableHTTP2, "enable-http2", false, "serve HTTP/2 on the webhook and metrics servers (off: HTTP/2 rapid-reset and stream-flood attacks, CVE-2023-44487 and CVE-2023-39325, need it)")
	fl.BoolVar(&f.metricsSecure, "metrics-secure", true, "serve /metrics over HTTPS to clients that authenticate with a token the API server accepts (TokenReview) and may get the /metrics URL (SubjectAccessReview); false: plain HTTP for anyone")
}

// options checks the flags and returns the serving options they ask for.
func (f servingFlags) options() (serving.Options, error) {
	v, err := serving.TLSVersion(f.tlsMinVersion)
	if err != nil {
		return serving.Options{}, fmt.Errorf("--tls-min-version %q: %w", f.tlsMinVersion, err)
	}
	return serving.Options{MinTLSVersion: v, HTTP2: f.enableHTTP2, SecureMetrics: f.metricsSecure}, nil
}

// metricsOptions serves /metrics on addr as the flags ask (serving.Options.Metrics).
func (f servingFlags) metricsOptions(addr string) (metricsserver.Options, error) {
	o, err := f.options()
	if err != nil {
		return metricsserver.Options{}, err
	}
	return o.Metrics(addr), nil
}
