package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/lbstack/lbstack/pkg/bgp/frr"
)

func newFRRReloaderCommand() *cobra.Command {
	var (
		logLevel  string
		pprofAddr string
		o         frr.SidecarOptions
	)
	cmd := &cobra.Command{
		Use:   "frr-reloader",
		Short: "Run next to FRR in the speaker pod: apply the speaker's BGP state to FRR in place",
		Long: `Run as the FRR backend's sidecar (bgpBackend: frr): render the speaker's
desired BGP state (in the shared handoff directory) into frr.conf, apply it in
place with frr-reload.py (a configuration FRR refuses is never kept), and report
the outcome, sessions and BFD peers back to the speaker (docs/bgp.md).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := setupLogging(logLevel); err != nil {
				return err
			}
			ctx, cancel := untilSignal(cmd.Context())
			defer cancel()
			o.Log = ctrl.Log.WithName("frr-reloader")
			if err := servePprof(ctx, pprofAddr); err != nil {
				return err
			}
			return frr.RunSidecar(ctx, o)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&logLevel, "log-level", "info", "all|debug|info|warn|error|none")
	fl.StringVar(&o.Config, "frr-config", "/etc/frr/frr.conf", "FRR's integrated configuration file, which the reloader owns")
	fl.StringVar(&o.VtySocket, "vty-socket", "/var/run/frr", "directory of FRR's vty sockets")
	fl.StringVar(&o.Handoff, "handoff-dir", "", "directory shared with the speaker (default: the directory of --frr-config)")
	fl.DurationVar(&o.Poll, "poll", 50*time.Millisecond, "how often the speaker's desired state is checked")
	fl.DurationVar(&o.ReloadTimeout, "reload-timeout", frr.DefaultReloadTimeout, "how long one run of frr-reload.py may take (the first load of tens of thousands of routes takes minutes)")
	fl.StringVar(&pprofAddr, "pprof-bind-address", "0", `address of Go's /debug/pprof profiles (heap, CPU); "0" (the default) disables it`)
	fl.BoolVar(&o.FastCheck, "fast-check", false, "check a configuration with vtysh's parser only, not frr-reload.py --test (about 0.3 s faster per reload)")
	return cmd
}

// servePprof serves Go's /debug/pprof at addr until ctx ends; "0" or ""
// serves nothing. The profiles are not authenticated: bind it to loopback.
func servePprof(ctx context.Context, addr string) error {
	if addr == "0" || addr == "" {
		return nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("--pprof-bind-address: %w", err)
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
			ctrl.Log.WithName("frr-reloader").Error(err, "pprof server")
		}
	}()
	return nil
}
