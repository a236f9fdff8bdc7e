package cli

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/lbstack/lbstack/pkg/bgp/frr"
)

// frrReloaderFlags are the flags of `lbstack frr-reloader`.
type frrReloaderFlags struct {
	logLevel  string
	config    string
	vtySocket string
	handoff   string
	poll      time.Duration
	fastCheck bool
}

func newFRRReloaderCommand() *cobra.Command {
	var f frrReloaderFlags
	cmd := &cobra.Command{
		Use:   "frr-reloader",
		Short: "Run next to FRR in the speaker pod: apply the speaker's BGP state to FRR in place",
		Long: `Run as the FRR backend's sidecar (bgpBackend: frr). The speaker writes its desired
BGP state to lbstack-desired.json in the shared /etc/frr volume; this command
renders it into frr.conf and applies it in place with FRR's frr-reload.py
(debounced; a configuration FRR refuses is never kept, the last good one keeps
announcing, and the newest is retried with back-off), and reports the reload's
outcome, FRR's BGP sessions and BFD peers in lbstack-status.json for the
speaker. It needs vtysh, python3 and frr-reload.py, as FRR's own image has them.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := setupLogging(f.logLevel); err != nil {
				return err
			}
			ctx, cancel := untilSignal(cmd.Context())
			defer cancel()
			return runFRRReloader(ctx, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.logLevel, "log-level", "info", "all|debug|info|warn|error|none")
	fl.StringVar(&f.config, "frr-config", "/etc/frr/frr.conf", "FRR's integrated configuration file, which the reloader owns")
	fl.StringVar(&f.vtySocket, "vty-socket", "/var/run/frr", "directory of FRR's vty sockets")
	fl.StringVar(&f.handoff, "handoff-dir", "", "directory shared with the speaker (default: the directory of --frr-config)")
	fl.DurationVar(&f.poll, "poll", 50*time.Millisecond, "how often the speaker's desired state is checked")
	fl.BoolVar(&f.fastCheck, "fast-check", false, "check a configuration with vtysh's parser only, not frr-reload.py --test (about 0.3 s faster per reload)")
	return cmd
}

func runFRRReloader(ctx context.Context, f frrReloaderFlags) error {
	log := ctrl.Log.WithName("frr-reloader")
	if f.handoff == "" {
		f.handoff = filepath.Dir(f.config)
	}
	fwd4, fwd6, err := frr.NodeForwarding()
	if err != nil {
		return fmt.Errorf("read the node's forwarding settings: %w", err)
	}
	be, err := frr.NewBackend(frr.BackendOptions{
		Render: frr.Options{IPForwarding: fwd4, IPv6Forwarding: fwd6},
		Reloader: frr.ReloaderOptions{
			Path: f.config, ConfDir: filepath.Dir(f.config), VtySocket: f.vtySocket,
			FastCheck: f.fastCheck, Log: log,
		},
		// FRR stops with the pod; keep its configuration until then.
		KeepSessionsOnClose: true,
	})
	if err != nil {
		return err
	}
	defer be.Close()
	log.Info("applying the speaker's state", "handoff", f.handoff, "config", f.config, "vtySocket", f.vtySocket)
	return frr.RunReloader(ctx, f.handoff, be, f.poll, log)
}
