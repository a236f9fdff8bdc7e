package legacyconfig

import (
	"strconv"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// validName reports whether s can be a metallb.io object name (a lowercase
// RFC 1123 subdomain, at most 253 characters).
func validName(s string) bool {
	return len(validation.IsDNS1123Subdomain(s)) == 0
}

// NormalizeName turns a legacy name into a Kubernetes object name: lower
// case, every run of characters other than a-z, 0-9 and '.' replaced by one
// '-', each dot-separated part trimmed of leading and trailing '-', and
// cut to 253 characters. It returns "" when nothing usable is left.
// `IPPool-A` becomes `ippool-a`, `pool_b` becomes `pool-b`.
func NormalizeName(s string) string {
	var b strings.Builder
	lastDash := false
	for _, r := range strings.ToLower(s) {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '.':
			b.WriteRune(r)
			lastDash = false
		default:
			if !lastDash {
				b.WriteByte('-')
				lastDash = true
			}
		}
	}
	return cleanParts(b.String(), validation.DNS1123SubdomainMaxLength)
}

// cleanParts trims every dot-separated part of s of '-' at either end,
// drops empty parts and keeps the result within max characters.
func cleanParts(s string, max int) string {
	var parts []string
	for p := range strings.SplitSeq(s, ".") {
		if p = strings.Trim(p, "-"); p != "" {
			parts = append(parts, p)
		}
	}
	out := strings.Join(parts, ".")
	if len(out) > max {
		return cleanParts(out[:max], max)
	}
	return out
}

// withSuffix appends suffix (such as "-2") to base, shortening base so the
// result stays a valid name.
func withSuffix(base, suffix string) string {
	if limit := validation.DNS1123SubdomainMaxLength - len(suffix); len(base) > limit {
		base = cleanParts(base[:limit], limit)
	}
	return base + suffix
}

// namer hands out unique names within one kind.
type namer struct {
	used map[string]bool
	next map[string]int // next suffix to try for a base name
}

func newNamer() *namer { return &namer{used: map[string]bool{}, next: map[string]int{}} }

// claim returns name if it is free, otherwise the first free name-2, name-3...
// and true.
func (n *namer) claim(name string) (string, bool) {
	if !n.used[name] {
		n.used[name] = true
		return name, false
	}
	for i := max(n.next[name], 2); ; i++ {
		c := withSuffix(name, "-"+strconv.Itoa(i))
		if !n.used[c] {
			n.used[c] = true
			n.next[name] = i + 1
			return c, true
		}
	}
}

// nameRequest asks for a name for one object: its legacy name, or the name
// to generate when it had none.
type nameRequest struct {
	legacy    string
	generated string
}

// assignedName is the outcome of a nameRequest.
type assignedName struct {
	name string
	// renamed: the object had a legacy name and this is not it.
	renamed bool
	// wanted is the name asked for before a collision suffix was added;
	// equal to name when there was no collision.
	wanted string
}

// assignNames names every request uniquely within one kind. Legacy names
// that are already valid are served first, then legacy names that need
// normalising, then generated ones: a renamed or generated object never
// takes the name of an object that needed no renaming (a Service asking for
// pool "ippool-a" keeps getting the pool that was called "ippool-a").
func assignNames(reqs []nameRequest, n *namer, fallback func(i int) string) []assignedName {
	out := make([]assignedName, len(reqs))
	for pass := range 3 {
		for i, r := range reqs {
			var want string
			switch {
			case pass == 0 && r.legacy != "" && validName(r.legacy):
				want = r.legacy
			case pass == 1 && r.legacy != "" && !validName(r.legacy):
				if want = NormalizeName(r.legacy); want == "" {
					want = fallback(i)
				}
			case pass == 2 && r.legacy == "":
				want = r.generated
			default:
				continue
			}
			name, _ := n.claim(want)
			out[i] = assignedName{name: name, wanted: want, renamed: r.legacy != "" && name != r.legacy}
		}
	}
	return out
}
