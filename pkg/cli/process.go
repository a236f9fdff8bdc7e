package cli

// Helpers every command that runs a process shares: its client
// configuration and its logger.

import (
	"fmt"

	"go.uber.org/zap/zapcore"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

// restConfig loads a kubeconfig file, or the in-cluster configuration when
// path is empty (falling back to $KUBECONFIG and ~/.kube/config outside a pod).
func restConfig(path string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules.ExplicitPath = path
	} else if cfg, err := rest.InClusterConfig(); err == nil {
		return cfg, nil
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	return cfg, nil
}

// setupLogging installs the process logger for a MetalLB log level
// (all|debug|info|warn|error|none).
func setupLogging(level string) error {
	var lvl zapcore.Level
	switch level {
	case "all", "debug":
		lvl = zapcore.DebugLevel
	case "info", "":
		lvl = zapcore.InfoLevel
	case "warn":
		lvl = zapcore.WarnLevel
	case "error":
		lvl = zapcore.ErrorLevel
	case "none":
		lvl = zapcore.FatalLevel
	default:
		return fmt.Errorf("--log-level %q: want one of all, debug, info, warn, error, none", level)
	}
	ctrl.SetLogger(zap.New(zap.Level(lvl)))
	return nil
}
