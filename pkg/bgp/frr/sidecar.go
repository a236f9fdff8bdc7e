package frr

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/go-logr/logr"
)

// SidecarOptions configure the reloader sidecar, `lbstack frr-reloader`.
type SidecarOptions struct {
	// Config is FRR's integrated configuration file, which the reloader owns.
	Config string
	// VtySocket is the directory of FRR's vty sockets.
	VtySocket string
	// Handoff is the directory shared with the speaker; empty: the
	// directory of Config.
	Handoff string
	// Poll is how often the speaker's desired state is checked.
	Poll time.Duration
	// FastCheck checks a configuration with vtysh's parser only (see
	// ReloaderOptions).
	FastCheck bool
	// ReloadTimeout bounds one run of frr-reload.py; DefaultReloadTimeout
	// when 0. A first reload of 10,000 routes takes minutes of CPU.
	ReloadTimeout time.Duration
	Log           logr.Logger
}

// RunSidecar runs the reloader sidecar in FRR's container until ctx ends: a
// Backend rendering for the node's forwarding settings, fed by RunReloader
// from the handoff directory.
func RunSidecar(ctx context.Context, o SidecarOptions) error {
	if o.Handoff == "" {
		o.Handoff = filepath.Dir(o.Config)
	}
	fwd4, fwd6, err := NodeForwarding()
	if err != nil {
		return fmt.Errorf("read the node's forwarding settings: %w", err)
	}
	be, err := NewBackend(BackendOptions{
		Render: Options{IPForwarding: fwd4, IPv6Forwarding: fwd6},
		Reloader: ReloaderOptions{
			Path: o.Config, ConfDir: filepath.Dir(o.Config), VtySocket: o.VtySocket,
			FastCheck: o.FastCheck, Timeout: o.ReloadTimeout, Log: o.Log,
		},
		// FRR stops with the pod; keep its configuration until then.
		KeepSessionsOnClose: true,
	})
	if err != nil {
		return err
	}
	defer be.Close()
	o.Log.Info("applying the speaker's state", "handoff", o.Handoff, "config", o.Config, "vtySocket", o.VtySocket)
	return RunReloader(ctx, o.Handoff, be, o.Poll, o.Log)
}
