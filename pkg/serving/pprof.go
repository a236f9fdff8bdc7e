package serving

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/go-logr/logr"
)

// ServePprof serves Go's /debug/pprof profiles at addr until ctx ends, for
// a process without a controller-runtime manager (the frr-reloader; the
// manager's PprofBindAddress serves the others). "0" or "" serves nothing
// and returns a nil address. The profiles are not authenticated: bind it
// to loopback.
func ServePprof(ctx context.Context, addr string, log logr.Logger) (net.Addr, error) {
	if addr == "0" || addr == "" {
		return nil, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	go func() {
		if err := srv.Serve(l); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error(err, "pprof server")
		}
	}()
	return l.Addr(), nil
}
