package frr

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
)

// Name limits.
const (
	// maxNameLen bounds the session part of route-map names (lbs- and
	// -out around it).
	maxNameLen = 48
	// maxProfileName is the longest BFD profile name bfdd takes
	// (BFD_PROFILE_NAME_LEN 64, with the terminating NUL).
	maxProfileName = 63
	// maxDescription bounds a neighbour's description.
	maxDescription = 80
	// hashLen is the number of hex digits of the hash suffix.
	hashLen = 8
)

// SanitizeName returns a name FRR accepts as one word in route-map and
// BFD profile names: letters, digits, '-', '_' and '.',
// at most max bytes. A name that already qualifies is returned unchanged
// (Kubernetes object names always do, up to the length); any other gets
// its invalid characters replaced by '_', is cut to fit, and ends with '-'
// and a short hash of the original, so that distinct names stay distinct.
func SanitizeName(name string, limit int) string {
	if name != "" && len(name) <= limit && validName(name) {
		return name
	}
	var b strings.Builder
	for _, r := range name {
		if validNameRune(r) {
			b.WriteRune(r)
		} else {
			b.WriteByte('_')
		}
	}
	clean := b.String()
	sum := sha256.Sum256([]byte(name))
	suffix := "-" + hex.EncodeToString(sum[:])[:hashLen]
	if keep := limit - len(suffix); len(clean) > keep {
		clean = clean[:max(keep, 0)]
	}
	return clean + suffix
}

func validName(s string) bool {
	for _, r := range s {
		if !validNameRune(r) {
			return false
		}
	}
	return true
}

func validNameRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.'
}

// isWord reports whether s is one non-empty token of FRR's command line:
// printable ASCII without whitespace, not starting a comment.
func isWord(s string) bool {
	if s == "" || s[0] == '!' || s[0] == '#' {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f {
			return false
		}
	}
	return true
}
