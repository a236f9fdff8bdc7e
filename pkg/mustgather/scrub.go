package mustgather

import (
	"bytes"
	"encoding/base64"
	"regexp"
	"sort"
	"sync"
)

// redacted replaces every secret value in the output.
const redacted = "<redacted>"

// minSecretLen is the shortest secret value scrubbed by value: shorter
// ones ("1", "tcp") would mangle unrelated text and reveal little.
const minSecretLen = 4

// frrPassword matches FRR's password lines (`neighbor X password P`, as in
// frr.conf and `show running-config`) up to the end of the line.
var frrPassword = regexp.MustCompile(`(?m)^(\s*neighbor\s+\S+\s+password\s+)\S.*$`)

// scrubber removes secret values from everything written. Values come
// from the Secrets of the stack's namespace and from BGPPeer
// spec.password; each is also removed in its base64 form.
type scrubber struct {
	mu     sync.RWMutex
	values [][]byte // longest first, so a value containing another goes whole
}

func (s *scrubber) add(values ...[]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		v = bytes.TrimSpace(v)
		if len(v) < minSecretLen {
			continue
		}
		s.values = append(s.values, append([]byte(nil), v...))
		b64 := []byte(base64.StdEncoding.EncodeToString(v))
		s.values = append(s.values, b64)
	}
	sort.SliceStable(s.values, func(i, j int) bool { return len(s.values[i]) > len(s.values[j]) })
}

// scrub returns data with FRR passwords masked and every known secret
// value replaced.
func (s *scrubber) scrub(data []byte) []byte {
	data = frrPassword.ReplaceAll(data, []byte("${1}"+redacted))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range s.values {
		if bytes.Contains(data, v) {
			data = bytes.ReplaceAll(data, v, []byte(redacted))
		}
	}
	return data
}
