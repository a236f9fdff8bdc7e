package loglevel

import (
	"testing"

	"go.uber.org/zap/zapcore"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want zapcore.Level
		err  bool
	}{
		{in: "all", want: zapcore.DebugLevel},
		{in: "debug", want: zapcore.DebugLevel},
		{in: "info", want: zapcore.InfoLevel},
		{in: "", want: zapcore.InfoLevel},
		{in: "warn", want: zapcore.WarnLevel},
		{in: "error", want: zapcore.ErrorLevel},
		{in: "none", want: zapcore.FatalLevel},
		{in: "verbose", err: true},
		{in: "INFO", err: true},
	} {
		got, err := Parse(tc.in)
		if (err != nil) != tc.err || (!tc.err && got != tc.want) {
			t.Errorf("Parse(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}
