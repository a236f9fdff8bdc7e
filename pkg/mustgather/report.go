package mustgather

import (
	"fmt"
	"io"
	"time"
)

// Environment variables `oc adm must-gather --since/--since-time` set in
// the gather container: `lbstack must-gather` takes them as the defaults
// of its --since and --since-time.
const (
	EnvSince     = "MUST_GATHER_SINCE"
	EnvSinceTime = "MUST_GATHER_SINCE_TIME"
)

// SinceFromEnv fills what the flags left unset from the environment
// (EnvSince, EnvSinceTime) and checks both: sinceSet says whether --since
// was given, sinceTime is --since-time as written ("" when not given).
func (o *Options) SinceFromEnv(sinceSet bool, sinceTime string, getenv func(string) string) error {
	if !sinceSet {
		if v := getenv(EnvSince); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("$%s=%q: %w", EnvSince, v, err)
			}
			o.Since = d
		}
	}
	if sinceTime == "" {
		sinceTime = getenv(EnvSinceTime)
	}
	if sinceTime != "" {
		t, err := time.Parse(time.RFC3339, sinceTime)
		if err != nil {
			return fmt.Errorf("--since-time %q: want RFC 3339 (2006-01-02T15:04:05Z): %w", sinceTime, err)
		}
		o.SinceTime = &t
	}
	if o.Since < 0 {
		return fmt.Errorf("--since %s: must not be negative", o.Since)
	}
	return nil
}

// WriteSummary writes a run's last words for the person who started it:
// where the output went, which namespace was gathered and how it was
// found, and whether the operator is installed at all.
func (r *Result) WriteSummary(w io.Writer, destDir string) error {
	if _, err := fmt.Fprintf(w, "must-gather: wrote %s (stack namespace %s, found by %s)\n", destDir, r.Namespace, r.Found); err != nil {
		return err
	}
	if !r.OperatorInstalled {
		_, err := fmt.Fprintln(w, "must-gather: the lbstack operator is not installed in this cluster")
		return err
	}
	return nil
}
