package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/pflag"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
)

// servingFlags configure every TLS server a command runs (admission
// webhooks, metrics) and whether metrics need authentication.
type servingFlags struct {
	tlsMinVersion string
	enableHTTP2   bool
	metricsSecure bool
}

// TLS versions --tls-min-version takes, with Kubernetes' spelling.
var tlsVersions = map[string]uint16{"VersionTLS12": tls.VersionTLS12, "VersionTLS13": tls.VersionTLS13}

func (f *servingFlags) add(fl *pflag.FlagSet) {
	fl.StringVar(&f.tlsMinVersion, "tls-min-version", "VersionTLS13", "oldest TLS version the webhook and metrics servers accept: VersionTLS12 or VersionTLS13")
	fl.BoolVar(&f.enableHTTP2, "enable-http2", false, "serve HTTP/2 on the webhook and metrics servers (off: HTTP/2 rapid-reset and stream-flood attacks, CVE-2023-44487 and CVE-2023-39325, need it)")
	fl.BoolVar(&f.metricsSecure, "metrics-secure", true, "serve /metrics over HTTPS to clients that authenticate with a token the API server accepts (TokenReview) and may get the /metrics URL (SubjectAccessReview); false: plain HTTP for anyone")
}

// tlsOptions returns the TLS settings of every server: the minimum version
// and, unless enabled, no HTTP/2 (as MetalLB and kubebuilder projects do).
func (f servingFlags) tlsOptions() ([]func(*tls.Config), error) {
	v, ok := tlsVersions[f.tlsMinVersion]
	if !ok {
		names := make([]string, 0, len(tlsVersions))
		for n := range tlsVersions {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("--tls-min-version %q: want one of %s", f.tlsMinVersion, strings.Join(names, ", "))
	}
	opts := []func(*tls.Config){func(c *tls.Config) { c.MinVersion = v }}
	if !f.enableHTTP2 {
		opts = append(opts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	return opts, nil
}

// metricsOptions serves /metrics on addr: with --metrics-secure, over
// HTTPS (a self-signed certificate made at start, so nothing is written)
// to authenticated and authorized clients only, as controller-runtime's
// secure serving does; else plain HTTP.
func (f servingFlags) metricsOptions(addr string) (metricsserver.Options, error) {
	o := metricsserver.Options{BindAddress: addr}
	if !f.metricsSecure {
		return o, nil
	}
	tlsOpts, err := f.tlsOptions()
	if err != nil {
		return o, err
	}
	o.SecureServing = true
	o.FilterProvider = filters.WithAuthenticationAndAuthorization
	o.TLSOpts = tlsOpts
	return o, nil
}

// localServer serves a component's health and debug endpoints on a
// loopback address only: the kubelet probes them from the node (the
// speaker shares the node's network), `lbstack speaker-state` reads them
// from inside the pod, and nothing off the node reaches them.
type localServer struct {
	addr string

	mu       sync.Mutex
	checks   map[string]map[string]func() error // path → name → check
	handlers map[string]http.Handler
}

func newLocalServer(addr string) (*localServer, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%q is not a loopback address: the health and debug endpoints are served on the node only", addr)
	}
	return &localServer{addr: addr, checks: map[string]map[string]func() error{}, handlers: map[string]http.Handler{}}, nil
}

// check adds a named check to /healthz or /readyz.
func (s *localServer) check(path, name string, fn func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.checks[path] == nil {
		s.checks[path] = map[string]func() error{}
	}
	s.checks[path][name] = fn
}

// handle serves h at path.
func (s *localServer) handle(path string, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[path] = h
}

func (s *localServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	checks, h := s.checks[r.URL.Path], s.handlers[r.URL.Path]
	s.mu.Unlock()
	if h != nil {
		h.ServeHTTP(w, r)
		return
	}
	if checks == nil {
		http.NotFound(w, r)
		return
	}
	names := make([]string, 0, len(checks))
	for n := range checks {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	failed := false
	for _, n := range names {
		if err := checks[n](); err != nil {
			failed = true
			fmt.Fprintf(&b, "[-]%s failed: %v\n", n, err)
		} else {
			fmt.Fprintf(&b, "[+]%s ok\n", n)
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if failed {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = w.Write([]byte(b.String()))
}

// Start implements manager.Runnable: it serves until ctx ends.
func (s *localServer) Start(ctx context.Context) error {
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("health and debug endpoints: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	ctrl.Log.WithName("local-server").Info("serving health and debug endpoints", "address", s.addr)
	if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// NeedLeaderElection implements manager.LeaderElectionRunnable.
func (s *localServer) NeedLeaderElection() bool { return false }

var _ manager.LeaderElectionRunnable = (*localServer)(nil)
