package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/lbstack/lbstack/pkg/bgp/frr"
	"github.com/lbstack/lbstack/pkg/serving"
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
			if _, err := serving.ServePprof(ctx, pprofAddr, o.Log); err != nil {
				return fmt.Errorf("--pprof-bind-address: %w", err)
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
