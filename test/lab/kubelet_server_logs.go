package lab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// A container's log file holds every run of the container, each headed
// by the marker startProcess writes:
//
//	== lab: <id> started at <RFC 3339 time> on <node>: <argv>
//
// The kubelet API serves what the container wrote: markers are never part
// of the output, they only split the file into runs. Runs whose id is not
// the pod's (an earlier pod of the same name) are skipped. The argv is
// joined with spaces as is, so a command with newlines (a `sh -c` script)
// makes the marker span more lines: as many as the container's command
// and args hold newlines (see argvNewlines).
var runMarker = regexp.MustCompile(`== lab: (lab://\S+) started at (\S+) on \S+: [^\n]*\n`)

// logRun is one run of a container in its log file.
type logRun struct {
	ID    string
	Start time.Time
	// Data is what the run wrote; End is the file offset just past it
	// (where a follower continues).
	Data []byte
	End  int64
}

// runIDPrefix is the prefix of every instance id of the pod's container
// (see container.start).
func runIDPrefix(uid, ctr string) string {
	return "lab://" + shortUID(uid) + "-" + ctr + "-"
}

// splitRuns splits a container log into runs, keeping those whose id
// starts with idPrefix (all when empty). extraLines is how many more lines
// each marker spans (argvNewlines). Output before the first marker belongs
// to no known run and is dropped.
func splitRuns(data []byte, idPrefix string, extraLines int) []logRun {
	locs := runMarker.FindAllSubmatchIndex(data, -1)
	var runs []logRun
	for i, m := range locs {
		end := len(data)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		id := string(data[m[2]:m[3]])
		if !strings.HasPrefix(id, idPrefix) {
			continue
		}
		from := m[1]
		for k := 0; k < extraLines && from < end; k++ {
			nl := bytes.IndexByte(data[from:end], '\n')
			if nl < 0 {
				from = end
				break
			}
			from += nl + 1
		}
		start, _ := time.Parse(time.RFC3339, string(data[m[4]:m[5]]))
		runs = append(runs, logRun{ID: id, Start: start, Data: data[from:end], End: int64(end)})
	}
	return runs
}

// argvNewlines counts the newlines in a container's command and args,
// which its run markers carry (a $(VAR) expanding to newlines is not
// foreseen).
func argvNewlines(c corev1.Container) int {
	return strings.Count(strings.Join(append(append([]string(nil), c.Command...), c.Args...), " "), "\n")
}

// tailLines returns the last n lines of b (a final line without newline
// counts); n < 0 means all.
func tailLines(b []byte, n int64) []byte {
	if n < 0 {
		return b
	}
	if n == 0 {
		return nil
	}
	end := len(b)
	if end > 0 && b[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if b[i] == '\n' {
			n--
			if n == 0 {
				return b[i+1:]
			}
		}
	}
	return b
}

// limitBytes returns at most n bytes of b; n < 0 means all.
func limitBytes(b []byte, n int64) []byte {
	if n >= 0 && int64(len(b)) > n {
		return b[:n]
	}
	return b
}

// stampLines prefixes every line of b with ts as the kubelet does with
// timestamps=true (RFC 3339 with nanoseconds and a space).
func stampLines(b []byte, ts time.Time) []byte {
	if len(b) == 0 {
		return b
	}
	prefix := []byte(ts.UTC().Format(time.RFC3339Nano) + " ")
	var out bytes.Buffer
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		line := b
		if i >= 0 {
			line = b[:i+1]
		}
		out.Write(prefix)
		out.Write(line)
		b = b[len(line):]
	}
	return out.Bytes()
}

// logQuery is what the kubelet does with a run, from PodLogOptions.
type logQuery struct {
	// Tail and Limit are -1 when not given.
	Tail, Limit int64
	// Since is zero when not given.
	Since      time.Time
	Timestamps bool
}

func newLogQuery(o *corev1.PodLogOptions, now time.Time) logQuery {
	q := logQuery{Tail: -1, Limit: -1, Timestamps: o.Timestamps}
	if o.TailLines != nil {
		q.Tail = *o.TailLines
	}
	if o.LimitBytes != nil {
		q.Limit = *o.LimitBytes
	}
	switch {
	case o.SinceSeconds != nil:
		q.Since = now.Add(-time.Duration(*o.SinceSeconds) * time.Second)
	case o.SinceTime != nil:
		q.Since = o.SinceTime.Time
	}
	return q
}

// selectLog applies q to a run that ended (was last written) at lastWrite.
// Lines carry no time of their own in the lab's log files, so since is
// decided per run: a run last written before since yields nothing, any
// other run all of its lines (some may be older). With timestamps, every
// line carries the run's start time, the only time the file records.
// Limit applies last, to the bytes sent (timestamps included), as the
// kubelet's limit writer does.
func selectLog(run logRun, lastWrite time.Time, q logQuery) []byte {
	if !q.Since.IsZero() && lastWrite.Before(q.Since) {
		return nil
	}
	b := tailLines(run.Data, q.Tail)
	if q.Timestamps {
		b = stampLines(b, run.Start)
	}
	return limitBytes(b, q.Limit)
}

// serveLogs answers GET /containerLogs/{namespace}/{pod}/{container}.
func (n *node) serveLogs(w http.ResponseWriter, r *http.Request, ns, podName, ctrName string) {
	pw := n.findPod(ns, podName)
	if pw == nil {
		kubeletError(w, http.StatusNotFound, fmt.Sprintf("pod %q does not exist", podName))
		return
	}
	pod, _ := pw.snapshot()
	spec, ok := containerSpecOf(pod, ctrName)
	if !ok {
		kubeletError(w, http.StatusNotFound, fmt.Sprintf("container %q not found in pod %q", ctrName, podName))
		return
	}
	query := r.URL.Query()
	// The kubelet's backwards-compatible "tail" parameter.
	if tail := query.Get("tail"); tail != "" {
		query["tailLines"] = []string{tail}
		if tail == "all" {
			delete(query, "tailLines")
		}
	}
	opts, err := parseLogOptions(query)
	if err != nil {
		kubeletError(w, http.StatusBadRequest, `{"message": "Unable to decode query."}`)
		return
	}
	if (opts.TailLines != nil && *opts.TailLines < 0) || (opts.LimitBytes != nil && *opts.LimitBytes < 1) || (opts.SinceSeconds != nil && *opts.SinceSeconds < 1) {
		kubeletError(w, http.StatusBadRequest, "tailLines must be >= 0, limitBytes and sinceSeconds >= 1")
		return
	}
	path := n.k.st.containerLogPath(ns, podName, ctrName)
	data, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		kubeletError(w, http.StatusInternalServerError, err.Error())
		return
	}
	fileTime := time.Now()
	if fi, err := os.Stat(path); err == nil {
		fileTime = fi.ModTime()
	}
	runs := splitRuns(data, runIDPrefix(string(pod.UID), ctrName), argvNewlines(spec))
	var run logRun
	lastWrite := fileTime
	switch {
	case opts.Previous:
		if len(runs) < 2 {
			kubeletError(w, http.StatusBadRequest, fmt.Sprintf("previous terminated container %q in pod %q not found", ctrName, podName))
			return
		}
		run = runs[len(runs)-2]
		// The previous run was last written when the next one started.
		lastWrite = runs[len(runs)-1].Start
	case len(runs) > 0:
		run = runs[len(runs)-1]
	default:
		// Never ran (or a simulated container, which writes nothing):
		// empty, as the log of a container that printed nothing.
		run = logRun{End: int64(len(data))}
	}
	q := newLogQuery(opts, time.Now())
	out := selectLog(run, lastWrite, q)
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(out)
	if f, ok := w.(http.Flusher); ok {
		f.Flush()
	}
	if !opts.Follow || opts.Previous || run.ID == "" {
		return
	}
	// Follow the current run while it runs.
	c := pw.findContainer(ctrName)
	if c == nil {
		return
	}
	inst, running := c.running()
	if inst == nil || inst.id != run.ID || !running {
		return
	}
	if q.Limit >= 0 {
		q.Limit -= int64(len(out))
		if q.Limit <= 0 {
			return
		}
	}
	followLog(r.Context(), w, path, run.End, inst.exited, q)
}

// followLog streams what is appended to path from offset until ctx ends,
// exited closes (then the rest is sent), the next run's marker appears or
// q.Limit bytes were sent. Streamed lines are stamped with the time they
// were read.
func followLog(ctx context.Context, w io.Writer, path string, offset int64, exited chan struct{}, q logQuery) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return
	}
	flush := func() {
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	var pending []byte // read, not yet sent (an incomplete line or marker)
	buf := make([]byte, 64<<10)
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		last := isClosed(exited) // read once more after the exit
		for {
			k, err := f.Read(buf)
			pending = append(pending, buf[:k]...)
			if err != nil || k == 0 {
				break
			}
		}
		send := pending
		stop := last
		if m := runMarker.FindIndex(pending); m != nil {
			send, stop = pending[:m[0]], true
		} else if i := bytes.LastIndexByte(pending, '\n'); !last {
			// Whole lines only, unless a marker could still be forming
			// (it starts at a line start).
			send = pending[:i+1]
		}
		pending = pending[len(send):]
		if q.Timestamps {
			send = stampLines(send, time.Now())
		}
		if q.Limit >= 0 && int64(len(send)) >= q.Limit {
			send, stop = send[:q.Limit], true
		}
		if len(send) > 0 {
			if _, err := w.Write(send); err != nil {
				return
			}
			if q.Limit >= 0 {
				q.Limit -= int64(len(send))
			}
			flush()
		}
		if stop {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// parseLogOptions reads the kubelet's containerLogs query parameters
// (PodLogOptions' query names, as the API server sends them).
func parseLogOptions(q url.Values) (*corev1.PodLogOptions, error) {
	o := &corev1.PodLogOptions{Container: q.Get("container")}
	boolParam := func(name string, dst *bool) error {
		if v := q.Get(name); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			*dst = b
		}
		return nil
	}
	intParam := func(name string) (*int64, error) {
		v := q.Get(name)
		if v == "" {
			return nil, nil
		}
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		return &i, nil
	}
	var err error
	for name, dst := range map[string]*bool{"follow": &o.Follow, "previous": &o.Previous, "timestamps": &o.Timestamps, "insecureSkipTLSVerifyBackend": &o.InsecureSkipTLSVerifyBackend} {
		if err = boolParam(name, dst); err != nil {
			return nil, err
		}
	}
	if o.TailLines, err = intParam("tailLines"); err != nil {
		return nil, err
	}
	if o.LimitBytes, err = intParam("limitBytes"); err != nil {
		return nil, err
	}
	if o.SinceSeconds, err = intParam("sinceSeconds"); err != nil {
		return nil, err
	}
	if v := q.Get("sinceTime"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return nil, fmt.Errorf("sinceTime: %w", err)
		}
		o.SinceTime = &metav1.Time{Time: t}
	}
	if o.SinceSeconds != nil && o.SinceTime != nil {
		return nil, errors.New("at most one of sinceTime or sinceSeconds may be specified")
	}
	return o, nil
}

func containerSpecOf(pod *corev1.Pod, name string) (corev1.Container, bool) {
	for _, c := range append(append([]corev1.Container(nil), pod.Spec.InitContainers...), pod.Spec.Containers...) {
		if c.Name == name {
			return c, true
		}
	}
	return corev1.Container{}, false
}

func hasContainer(pod *corev1.Pod, name string) bool {
	_, ok := containerSpecOf(pod, name)
	return ok
}
