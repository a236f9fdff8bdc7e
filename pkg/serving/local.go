package serving

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// LocalServer serves a component's health and debug endpoints on a
// loopback address only: the kubelet probes them from the node (the
// speaker shares the node's network), `lbstack speaker-state` reads them
// from inside the pod, and nothing off the node reaches them.
type LocalServer struct {
	addr string

	mu       sync.Mutex
	checks   map[string]map[string]func() error // path → name → check
	handlers map[string]http.Handler
}

// NewLocalServer returns a server for addr, which must be a loopback
// address (or localhost) and a port.
func NewLocalServer(addr string) (*LocalServer, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, fmt.Errorf("%q: %w", addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("%q is not a loopback address: the health and debug endpoints are served on the node only", addr)
	}
	return &LocalServer{addr: addr, checks: map[string]map[string]func() error{}, handlers: map[string]http.Handler{}}, nil
}

// Check adds a named check to path (/healthz, /readyz): the path answers
// 200 when every check passes, 503 otherwise, listing each.
func (s *LocalServer) Check(path, name string, fn func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.checks[path] == nil {
		s.checks[path] = map[string]func() error{}
	}
	s.checks[path][name] = fn
}

// Handle serves h at path.
func (s *LocalServer) Handle(path string, h http.Handler) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handlers[path] = h
}

func (s *LocalServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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
func (s *LocalServer) Start(ctx context.Context) error {
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

// NeedLeaderElection implements manager.LeaderElectionRunnable: every
// replica answers its own probes.
func (s *LocalServer) NeedLeaderElection() bool { return false }

var _ manager.LeaderElectionRunnable = (*LocalServer)(nil)
