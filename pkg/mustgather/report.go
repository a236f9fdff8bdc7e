package mustgather

import (
	"fmt"
	"io"
)

// Environment variables `oc adm must-gather --since/--since-time` set in
// the gather container: `lbstack must-gather` takes them as the defaults
// of its --since and --since-time.
const (
	EnvSince     = "MUST_GATHER_SINCE"
	EnvSinceTime = "MUST_GATHER_SINCE_TIME"
)

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
