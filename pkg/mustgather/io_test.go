package mustgather

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes"
	kfake "k8s.io/client-go/kubernetes/fake"
	"k8s.io/client-go/rest"
	k8stesting "k8s.io/client-go/testing"
	"sigs.k8s.io/yaml"
)

// TestEventsOrderAndSelection: events are sorted by their best time
// (lastTimestamp, else eventTime, else creation) and, for one object,
// selected by its UID.
func TestEventsOrderAndSelection(t *testing.T) {
	at := func(h int) time.Time { return time.Date(2026, 12, 6, h, 0, 0, 0, time.UTC) }
	ev := func(name string, mod func(*corev1.Event)) *corev1.Event {
		e := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, CreationTimestamp: metav1.NewTime(at(1))}}
		mod(e)
		return e
	}
	kube := []runtime.Object{
		ev("last-at-5", func(e *corev1.Event) { e.LastTimestamp = metav1.NewTime(at(5)) }),
		ev("eventtime-at-3", func(e *corev1.Event) { e.EventTime = metav1.NewMicroTime(at(3)) }),
		ev("created-at-1", func(e *corev1.Event) {}),
		ev("last-at-4-over-eventtime-at-9", func(e *corev1.Event) {
			e.LastTimestamp, e.EventTime = metav1.NewTime(at(4)), metav1.NewMicroTime(at(9))
		}),
	}
	c := &cluster{resources: withResources(), kube: kube}
	g := c.gatherer(t)
	evs := g.writeEvents(context.Background(), "events.yaml", ns, "")
	var names []string
	for _, e := range evs {
		names = append(names, e.Name)
	}
	if got := strings.Join(names, ","); got != "created-at-1,eventtime-at-3,last-at-4-over-eventtime-at-9,last-at-5" {
		t.Errorf("order %s", got)
	}
	b, _ := os.ReadFile(filepath.Join(g.opts.DestDir, "events.yaml"))
	var list corev1.EventList
	if err := yaml.Unmarshal(b, &list); err != nil || list.Kind != "List" || len(list.Items) != 4 || list.Items[0].Name != "created-at-1" {
		t.Errorf("events.yaml: %v %q", err, b)
	}

	g.writeEvents(context.Background(), "one.yaml", ns, "uid-1")
	kc := g.kube.(kubeWithLogs).Interface.(*kfake.Clientset)
	var selectors []string
	for _, a := range kc.Actions() {
		if l, ok := a.(k8stesting.ListAction); ok && a.GetResource().Resource == "events" {
			selectors = append(selectors, l.GetListRestrictions().Fields.String())
		}
	}
	if got := strings.Join(selectors, "|"); got != "|involvedObject.uid=uid-1" {
		t.Errorf("field selectors %q", got)
	}
}

// TestWriteFailuresAreRecorded: a file that cannot be written is a
// failure; the run goes on.
func TestWriteFailuresAreRecorded(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "blocked"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	g := &gatherer{opts: Options{DestDir: dir, Progress: &progress}}
	g.writeFile("blocked/file.txt", []byte("x"))
	g.writeYAML("ok.yaml", map[string]int{"a": 1})
	g.writeYAML("bad.yaml", func() {})
	if len(g.failures) != 2 || !strings.HasPrefix(g.failures[0], "blocked/file.txt: mkdir ") || !strings.HasPrefix(g.failures[1], "bad.yaml: ") {
		t.Errorf("failures %q", g.failures)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "ok.yaml")); string(b) != "a: 1\n" {
		t.Errorf("ok.yaml = %q", b)
	}
	if !strings.HasPrefix(progress.String(), "must-gather: not collected: blocked/file.txt: mkdir ") {
		t.Errorf("progress %q", progress.String())
	}
}

// TestFailuresAreScrubbed: an error message that quotes a secret value
// is scrubbed before it reaches errors.txt.
func TestFailuresAreScrubbed(t *testing.T) {
	g := &gatherer{opts: Options{DestDir: t.TempDir()}}
	g.scrub.add([]byte("hunter2-long"))
	g.fail("x", errorString("bad token hunter2-long"))
	if g.failures[0] != "x: bad token <redacted>" {
		t.Errorf("failure %q", g.failures[0])
	}
}

type errorString string

func (e errorString) Error() string { return string(e) }

// TestExecThroughTheAPI drives the real exec path against an API server
// that refuses it: the error is returned (WebSocket, then SPDY), and a
// done context says it timed out.
func TestExecThroughTheAPI(t *testing.T) {
	var (
		mu    sync.Mutex
		paths []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		http.Error(w, "exec refused", http.StatusForbidden)
	}))
	defer srv.Close()
	cfg := &rest.Config{Host: srv.URL}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	g := &gatherer{opts: Options{ExecTimeout: time.Minute}, rest: cfg, kube: kc}
	r := g.exec(context.Background(), ns, "speaker-a", "frr", "vtysh", "-c", "show bgp summary")
	if r.Err == nil || strings.HasPrefix(r.Err.Error(), "timed out") {
		t.Fatalf("error %v", r.Err)
	}
	mu.Lock()
	first := append([]string(nil), paths...)
	mu.Unlock()
	if len(first) == 0 || first[0] != "GET /api/v1/namespaces/metallb-system/pods/speaker-a/exec" {
		t.Errorf("requests %q", first)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r = g.exec(ctx, ns, "speaker-a", "frr", "true")
	if r.Err == nil || !strings.HasPrefix(r.Err.Error(), "timed out after 1m0s: ") {
		t.Errorf("error %v", r.Err)
	}
}
