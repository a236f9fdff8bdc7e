// Package version reports the build's version, stamped at link time with
// -ldflags "-X github.com/lbstack/lbstack/pkg/version.Version=...".
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version is the release version; "dev" in unstamped builds.
var Version = "dev"

// Commit is the source commit; read from the build info when not stamped.
var Commit = ""

// String renders the version line printed by `lbstack version`.
func String() string {
	commit := Commit
	if commit == "" {
		if bi, ok := debug.ReadBuildInfo(); ok {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" {
					commit = s.Value
				}
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	return fmt.Sprintf("lbstack %s (commit %s, %s, %s/%s)", Version, commit, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
