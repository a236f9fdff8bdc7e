package cli

import (
	"fmt"

	"go.uber.org/zap/zapcore"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
)

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
