// Package loglevel maps MetalLB's log level names (the --log-level of
// every lbstack component, and the MetalLB object's logLevel) to zap's
// levels.
package loglevel

import (
	"fmt"

	"go.uber.org/zap/zapcore"
)

// Parse returns the zap level of a MetalLB log level: all and debug log
// everything (logr's V(1) included), none only what is fatal; empty is info.
func Parse(level string) (zapcore.Level, error) {
	switch level {
	case "all", "debug":
		return zapcore.DebugLevel, nil
	case "info", "":
		return zapcore.InfoLevel, nil
	case "warn":
		return zapcore.WarnLevel, nil
	case "error":
		return zapcore.ErrorLevel, nil
	case "none":
		return zapcore.FatalLevel, nil
	}
	return 0, fmt.Errorf("--log-level %q: want one of all, debug, info, warn, error, none", level)
}
