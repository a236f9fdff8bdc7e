package envtest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
)

// The API server's audit log, for counting a component's writes when the
// component runs as a process of its own (its client cannot be wrapped):
// the server records every mutating request with the user that made it.

// auditPolicy records the mutating requests (metadata only, once the
// response is sent) and nothing else.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived, ResponseStarted, Panic]
rules:
- level: Metadata
  verbs: [create, update, patch, delete, deletecollection]
- level: None
`

// AuditLog is the API server's audit log of mutating requests.
type AuditLog struct {
	Path string
	mu   sync.Mutex
	off  int64
	// byUser counts "VERB resource[/subresource]" per user; a request
	// made by impersonation counts for the impersonated user.
	byUser map[string]map[string]int
}

// NewAuditLog writes the audit policy into a temporary directory and
// returns the log and the kube-apiserver flags (Options.APIServerArgs)
// that make the API server write it.
func NewAuditLog(tb testing.TB) (*AuditLog, map[string]string) {
	tb.Helper()
	dir := tb.TempDir()
	policy := filepath.Join(dir, "audit-policy.yaml")
	if err := os.WriteFile(policy, []byte(auditPolicy), 0o644); err != nil {
		tb.Fatal(err)
	}
	a := &AuditLog{Path: filepath.Join(dir, "audit.log"), byUser: map[string]map[string]int{}}
	return a, map[string]string{
		"audit-policy-file":   policy,
		"audit-log-path":      a.Path,
		"audit-log-format":    "json",
		"audit-log-mode":      "blocking",
		"audit-log-maxsize":   "0", // never rotated under the reader
		"audit-log-maxage":    "0",
		"audit-log-maxbackup": "0",
	}
}

// auditEvent is the part of an audit.k8s.io/v1 Event counted here.
type auditEvent struct {
	Stage            string                     `json:"stage"`
	Verb             string                     `json:"verb"`
	User             struct{ Username string }  `json:"user"`
	ImpersonatedUser *struct{ Username string } `json:"impersonatedUser"`
	ObjectRef        *struct {
		Resource    string `json:"resource"`
		Subresource string `json:"subresource"`
	} `json:"objectRef"`
}

// Writes returns the mutating requests user has made so far, by "VERB
// resource[/subresource]" (the API server has written a request's line
// by the time its response is sent: the log is blocking).
func (a *AuditLog) Writes(tb testing.TB, user string) map[string]int {
	tb.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.read(); err != nil {
		tb.Fatalf("audit log %s: %v", a.Path, err)
	}
	out := map[string]int{}
	for k, n := range a.byUser[user] {
		out[k] = n
	}
	return out
}

// read counts the lines added since the last read.
func (a *AuditLog) read() error {
	f, err := os.Open(a.Path)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := f.Seek(a.off, io.SeekStart); err != nil {
		return err
	}
	r := bufio.NewReaderSize(f, 1<<20)
	for {
		line, err := r.ReadBytes('\n')
		if err == io.EOF {
			// A line the server is still writing is read next time.
			return nil
		}
		if err != nil {
			return err
		}
		a.off += int64(len(line))
		user, key, err := countedWrite(line)
		if err != nil {
			return err
		}
		if key == "" {
			continue
		}
		if a.byUser[user] == nil {
			a.byUser[user] = map[string]int{}
		}
		a.byUser[user][key]++
	}
}

// countedWrite returns the user and the "VERB resource[/subresource]" of
// an audit line, or an empty key for a line that is not a completed
// mutating request.
func countedWrite(line []byte) (user, key string, err error) {
	var e auditEvent
	if err := json.Unmarshal(line, &e); err != nil {
		return "", "", fmt.Errorf("audit line %q: %w", strings.TrimSpace(string(line)), err)
	}
	switch e.Verb {
	case "create", "update", "patch", "delete", "deletecollection":
	default:
		return "", "", nil
	}
	if e.Stage != "ResponseComplete" || e.ObjectRef == nil {
		return "", "", nil
	}
	user = e.User.Username
	if e.ImpersonatedUser != nil && e.ImpersonatedUser.Username != "" {
		user = e.ImpersonatedUser.Username
	}
	key = strings.ToUpper(e.Verb) + " " + e.ObjectRef.Resource
	if e.ObjectRef.Subresource != "" {
		key += "/" + e.ObjectRef.Subresource
	}
	return user, key, nil
}

// DiffWrites formats after - before: the total and each kind ("3 (CREATE
// events 1, CREATE servicebgpstatuses 1, PATCH servicebgpstatuses/status
// 1)"), "none" when nothing was written.
func DiffWrites(after, before map[string]int) string {
	var parts []string
	total := 0
	for k, n := range after {
		if d := n - before[k]; d != 0 {
			parts = append(parts, fmt.Sprintf("%s %d", k, d))
			total += d
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	sort.Strings(parts)
	return fmt.Sprintf("%d (%s)", total, strings.Join(parts, ", "))
}
