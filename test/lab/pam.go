package lab

import (
	"fmt"
	"path"
	"strings"

	"github.com/lbstack/lbstack/test/lab/oci"
)

// pamModuleDir is where Debian's libpam finds a module named without a
// directory.
const pamModuleDir = "usr/lib/x86_64-linux-gnu/security"

// PAMProblems lists what makes libpam abort for the given services in an
// image built from unpacked packages, whose maintainer scripts never ran:
// libpam parses the service asked for and always "other" too, and a
// missing @include or module in either fails the service with "Critical
// error - immediate abort" (for vtysh's service, frr, vtysh then refuses
// to run, and frr-reload.py with it). A module on a line whose type starts
// with '-' may be missing, as libpam allows.
func PAMProblems(layers []*oci.Layer, services ...string) []string {
	read := func(p string) ([]byte, bool) {
		for i := len(layers) - 1; i >= 0; i-- {
			if data, err := layers[i].Read(p); err == nil {
				return data, true
			}
		}
		return nil, false
	}
	has := func(p string) bool {
		for _, l := range layers {
			if l.Has(p) {
				return true
			}
		}
		return false
	}
	var out []string
	for _, svc := range services {
		for _, file := range []string{svc, "other"} {
			out = append(out, pamFileProblems(svc, file, read, has, map[string]bool{})...)
		}
	}
	return dedupe(out)
}

func pamFileProblems(svc, file string, read func(string) ([]byte, bool), has func(string) bool, visiting map[string]bool) []string {
	p := "etc/pam.d/" + file
	if visiting[p] {
		return []string{fmt.Sprintf("PAM service %s: /%s includes itself", svc, p)}
	}
	visiting[p] = true
	defer delete(visiting, p)
	data, ok := read(p)
	if !ok {
		return []string{fmt.Sprintf("PAM service %s: /%s is missing", svc, p)}
	}
	var out []string
	for n, line := range strings.Split(string(data), "\n") {
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		fields := strings.Fields(line)
		if len(fields) == 0 {
			continue
		}
		if fields[0] == "@include" {
			if len(fields) != 2 {
				out = append(out, fmt.Sprintf("PAM service %s: /%s line %d: @include takes one file", svc, p, n+1))
				continue
			}
			out = append(out, pamFileProblems(svc, fields[1], read, has, visiting)...)
			continue
		}
		optional := strings.HasPrefix(fields[0], "-")
		// type control module [args]; control may be a bracketed list
		// with spaces ([success=1 default=ignore]).
		rest := fields[1:]
		if len(rest) > 0 && strings.HasPrefix(rest[0], "[") {
			for len(rest) > 0 && !strings.HasSuffix(rest[0], "]") {
				rest = rest[1:]
			}
		}
		if len(rest) < 2 {
			out = append(out, fmt.Sprintf("PAM service %s: /%s line %d: no module in %q", svc, p, n+1, strings.TrimSpace(line)))
			continue
		}
		module := rest[1]
		if optional {
			continue
		}
		mp := strings.TrimPrefix(module, "/")
		if !strings.Contains(module, "/") {
			mp = path.Join(pamModuleDir, module)
		}
		if !has(mp) {
			out = append(out, fmt.Sprintf("PAM service %s: /%s line %d: module /%s is missing", svc, p, n+1, mp))
		}
	}
	return out
}

func dedupe(in []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range in {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
