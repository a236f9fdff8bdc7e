package mustgather

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"regexp"
	"sort"
	"strings"
	"sync"
)

// redacted replaces every secret value in the output.
const redacted = "<redacted>"

// minSecretLen is the shortest value of an arbitrary Secret scrubbed
// wherever it appears: shorter ones ("1", "tcp") are rarely secret and
// would mangle unrelated text. Passwords are scrubbed whatever their
// length (as whole words when short, see scrubber).
const minSecretLen = 4

// frrPassword matches FRR's password syntax (`neighbor X password P`, in
// frr.conf, `show running-config` and any log line that echoes it) up to
// the end of the password.
var frrPassword = regexp.MustCompile(`(neighbor\s+\S+\s+password\s+)\S+`)

// scrubber removes secret values from everything written. It knows two
// kinds: passwords (BGPPeer spec.password and the password key of the
// Secrets), removed whatever their length, and every other Secret value
// of at least minSecretLen bytes. Each is removed as written, as JSON
// escapes it and in base64; files that are JSON have every field named
// like a password masked too, whatever its value.
type scrubber struct {
	mu     sync.RWMutex
	values [][]byte // longest first, so a value containing another goes whole
	// words are short passwords, removed only as whole words (not inside
	// longer tokens), in their written and escaped forms.
	words []*regexp.Regexp
	// incomplete names what could not be learnt (Secrets that could not be
	// read): free text cannot be vouched for then.
	incomplete []string
}

// add learns Secret values; short ones are left (see minSecretLen).
func (s *scrubber) add(values ...[]byte) { s.learn(false, values...) }

// addPasswords learns passwords: removed whatever their length.
func (s *scrubber) addPasswords(values ...[]byte) { s.learn(true, values...) }

func (s *scrubber) learn(password bool, values ...[]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, raw := range values {
		v := bytes.TrimSpace(raw)
		if len(v) == 0 {
			continue
		}
		forms := [][]byte{v, []byte(base64.StdEncoding.EncodeToString(v))}
		if len(raw) != len(v) {
			// The base64 of the value as stored (with the newline of the
			// file it came from) does not contain the trimmed value's.
			forms = append(forms, []byte(base64.StdEncoding.EncodeToString(raw)))
		}
		if esc := jsonEscaped(v); !bytes.Equal(esc, v) {
			forms = append(forms, esc)
		}
		if len(v) < minSecretLen {
			if !password {
				continue
			}
			for _, f := range forms {
				s.words = append(s.words, regexp.MustCompile(`(^|[^A-Za-z0-9])`+regexp.QuoteMeta(string(f))+`($|[^A-Za-z0-9])`))
			}
			continue
		}
		for _, f := range forms {
			s.values = append(s.values, append([]byte(nil), f...))
		}
	}
	sort.SliceStable(s.values, func(i, j int) bool { return len(s.values[i]) > len(s.values[j]) })
}

// markIncomplete records that some secret values could not be learnt.
func (s *scrubber) markIncomplete(why string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.incomplete = append(s.incomplete, why)
}

// complete reports whether every secret value was learnt, and if not why.
func (s *scrubber) complete() (bool, string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.incomplete) == 0, strings.Join(s.incomplete, "; ")
}

// jsonEscaped is v as it appears inside a JSON string (Go escapes <, >
// and &, quotes, backslashes and control characters).
func jsonEscaped(v []byte) []byte {
	b, err := json.Marshal(string(v))
	if err != nil || len(b) < 2 {
		return v
	}
	return b[1 : len(b)-1]
}

// scrub returns data with password fields and FRR passwords masked and
// every known secret value replaced.
func (s *scrubber) scrub(data []byte) []byte {
	data = maskPasswordFields(data)
	data = frrPassword.ReplaceAll(data, []byte("${1}"+redacted))
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, v := range s.values {
		if bytes.Contains(data, v) {
			data = bytes.ReplaceAll(data, v, []byte(redacted))
		}
	}
	for _, w := range s.words {
		data = w.ReplaceAll(data, []byte("${1}"+redacted+"${2}"))
	}
	return data
}

// maskPasswordFields masks, in a JSON document, the value of every field
// whose name contains "password" (any case): a BGP session's Password in
// the speaker's desired state, a peer's spec.password, whatever its value.
// Anything that is not JSON is returned unchanged.
func maskPasswordFields(data []byte) []byte {
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 || (trimmed[0] != '{' && trimmed[0] != '[') || !bytes.Contains(bytes.ToLower(data), []byte("password")) {
		return data
	}
	var doc any
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	if err := dec.Decode(&doc); err != nil || dec.More() {
		return data
	}
	if !maskIn(doc) {
		return data
	}
	var out bytes.Buffer
	enc := json.NewEncoder(&out)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return data
	}
	return out.Bytes()
}

func maskIn(v any) bool {
	changed := false
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && s != "" && strings.Contains(strings.ToLower(k), "password") {
				x[k] = redacted
				changed = true
				continue
			}
			changed = maskIn(e) || changed
		}
	case []any:
		for _, e := range x {
			changed = maskIn(e) || changed
		}
	}
	return changed
}
