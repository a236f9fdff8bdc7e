package frr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"

	"github.com/lbstack/lbstack/pkg/bgp"
)

// The speaker and the reloader (a sidecar next to FRR in the speaker pod)
// share one directory, the pod's /etc/frr volume, and two files:
//
//   - DesiredFile, written by the speaker (FileBackend.Apply, atomically):
//     the desired BGP state as JSON, with a generation that grows with
//     every change. The speaker never runs vtysh or frr-reload.py.
//   - StatusFile, written by the reloader (RunReloader, atomically, after
//     each reload attempt and every second): the generation it last read,
//     the outcome of its reload (empty when applied), and FRR's sessions
//     and BFD peers as vtysh reports them.
//   - RenderedFile, written by the reloader after each new desired state:
//     the frr.conf text rendered from it, for must-gather to compare with
//     frr.conf (the last text FRR accepted).
//   - ChangesFile, written by the speaker (FileBackend.ApplyChanges,
//     atomically): the routes changed since the desired state of
//     generation Base, each with its latest value, under a generation of
//     their own (the same counter). The desired state with these routes
//     in place is the state to apply. A change of a few routes thus
//     costs both sides a small file, not the whole table; the speaker
//     writes DesiredFile again (and removes ChangesFile) on a full Apply
//     or once maxHandoffChanges routes have changed.
//
// The reloader renders the state (Render), applies it in place (Reloader:
// frr-reload.py, debounced, retried, the last good configuration kept) and
// owns frr.conf. Files rather than signals: either side may restart at any
// time and picks the other's latest word up from the volume.
const (
	DesiredFile = "lbstack-desired.json"
	StatusFile  = "lbstack-status.json"
	// RenderedFile holds the text rendered from the newest desired state.
	RenderedFile = "lbstack-rendered.conf"
	// ChangesFile holds the routes changed since the desired state.
	ChangesFile = "lbstack-changes.json"
)

// maxHandoffChanges bounds ChangesFile: past it, the speaker hands the
// whole state over again.
const maxHandoffChanges = 512

// changesDoc is ChangesFile.
type changesDoc struct {
	// Base is the generation of the desired state the routes change.
	Base       uint64 `json:"base"`
	Generation uint64 `json:"generation"`
	// Routes are the routes changed since Base, by session and prefix,
	// with their latest values.
	Routes []changedRoute `json:"routes"`
}

// changedRoute is one route of a changesDoc; Route is nil when the
// session no longer announces the prefix.
type changedRoute struct {
	Session string       `json:"session"`
	Prefix  netip.Prefix `json:"prefix"`
	Route   *bgp.Route   `json:"route,omitempty"`
}

type desiredDoc struct {
	Generation uint64           `json:"generation"`
	State      bgp.DesiredState `json:"state"`
}

// StatusDoc is the reloader's report in StatusFile.
type StatusDoc struct {
	// Generation is the desired state's generation the reloader last read.
	Generation uint64 `json:"generation"`
	// Error is the latest reload's failure ("" when the newest state is
	// applied, or pending without failure).
	Error    string              `json:"error,omitempty"`
	Sessions []bgp.SessionStatus `json:"sessions,omitempty"`
	BFDPeers []BFDPeer           `json:"bfdPeers,omitempty"`
	// Time is when the report was written.
	Time time.Time `json:"time"`
}

// FileBackend is the speaker's side of the handoff: a bgp.Backend that
// writes the desired state for the reloader and reads its status back.
type FileBackend struct {
	dir string

	mu   sync.Mutex
	gen  uint64
	last []byte
	// base is the generation of the desired state written last; given
	// its sessions as Apply was given them, handed the sessions written
	// (not skipped), and skipped the others.
	base    uint64
	given   []bgp.Session
	handed  map[string]bool
	skipped *bgp.SkippedError
	// followable is set after a full write of a state whose routes were
	// given normal: ApplyChanges may then hand over changes.
	followable bool
	// changes are the routes changed since base, as written in
	// ChangesFile.
	changes map[bgp.RouteChange]*bgp.Route
}

var _ bgp.ChangeApplier = (*FileBackend)(nil)

// NewFileBackend hands states over through dir. The generation continues
// from a desired file left by an earlier speaker, so the reloader never
// mistakes a new state for an old one.
func NewFileBackend(dir string) *FileBackend {
	b := &FileBackend{dir: dir}
	if data, err := os.ReadFile(filepath.Join(dir, DesiredFile)); err == nil {
		var doc desiredDoc
		if json.Unmarshal(data, &doc) == nil {
			b.gen = doc.Generation
		}
	}
	if data, err := os.ReadFile(filepath.Join(dir, ChangesFile)); err == nil {
		var doc changesDoc
		if json.Unmarshal(data, &doc) == nil {
			b.gen = max(b.gen, doc.Generation)
		}
	}
	return b
}

// Apply writes d (normalised) for the reloader unless it is what was
// written last, and returns the reloader's latest reload error.
func (b *FileBackend) Apply(ctx context.Context, d bgp.DesiredState) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// Render here too: a session FRR cannot express is left out of what
	// the reloader gets and reported at once, naming it; every other
	// session is handed over and keeps announcing.
	_, skipped, err := RenderState(d, Options{})
	if err != nil {
		return err
	}
	norm, _ := d.Normalize() // only skipped sessions, which RenderState names too
	handed := norm.Without(skipped)
	state, err := json.Marshal(handed)
	if err != nil {
		return fmt.Errorf("frr handoff: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !bytes.Equal(state, b.last) || len(b.changes) > 0 {
		b.followable = false
		doc, err := json.Marshal(struct {
			Generation uint64          `json:"generation"`
			State      json.RawMessage `json:"state"`
		}{b.gen + 1, state})
		if err != nil {
			return fmt.Errorf("frr handoff: %w", err)
		}
		if err := writeAtomic(filepath.Join(b.dir, DesiredFile), doc, 0o600); err != nil {
			return fmt.Errorf("frr handoff: %w", err)
		}
		b.gen++
		b.last, b.base, b.changes = state, b.gen, nil
		// Changes of an older state are void; the reloader ignores them
		// anyway (their base is not the desired state's generation).
		if err := os.Remove(filepath.Join(b.dir, ChangesFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("frr handoff: %w", err)
		}
	}
	b.given = slices.Clone(d.Sessions)
	b.handed = map[string]bool{}
	for _, s := range handed.Sessions {
		b.handed[s.Name] = true
	}
	b.skipped = skipped
	b.followable = givenNormal(d, handed)
	return b.statusErr()
}

// statusErr is the skipped sessions and the reloader's reported error.
func (b *FileBackend) statusErr() error {
	st, err := ReadStatus(b.dir)
	if err != nil || st.Error == "" {
		return b.skipped.OrNil()
	}
	return errors.Join(b.skipped.OrNil(), fmt.Errorf("frr reloader: %s", st.Error))
}

// ApplyChanges implements bgp.ChangeApplier: the changed routes are
// handed over in ChangesFile, with the others changed since the last
// full handover, instead of the whole state. It hands the whole state
// over (Apply) when the sessions differ from the last Apply's, a route
// of a session not handed over changes, the last full handover failed or
// was given routes that were not normal, or too many routes changed
// since. The reloader checks the routes themselves (Backend.ApplyChanges).
func (b *FileBackend) ApplyChanges(ctx context.Context, d bgp.DesiredState, changed []bgp.RouteChange) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.Lock()
	follow := b.followable && len(b.changes)+len(changed) <= maxHandoffChanges &&
		slices.EqualFunc(d.Sessions, b.given, func(x, y bgp.Session) bool { return x.Equal(&y) })
	for _, c := range changed {
		follow = follow && b.handed[c.Session]
	}
	if !follow {
		b.mu.Unlock()
		return b.Apply(ctx, d)
	}
	defer b.mu.Unlock()
	next := maps.Clone(b.changes)
	if next == nil {
		next = map[bgp.RouteChange]*bgp.Route{}
	}
	for _, c := range changed {
		if r, ok := findRoute(d.Routes[c.Session], c.Prefix); ok {
			next[c] = &r
		} else {
			next[c] = nil
		}
	}
	doc := changesDoc{Base: b.base, Generation: b.gen + 1, Routes: make([]changedRoute, 0, len(next))}
	for c, r := range next {
		doc.Routes = append(doc.Routes, changedRoute{Session: c.Session, Prefix: c.Prefix, Route: r})
	}
	slices.SortFunc(doc.Routes, func(x, y changedRoute) int {
		if c := strings.Compare(x.Session, y.Session); c != 0 {
			return c
		}
		return bgp.ComparePrefixes(x.Prefix, y.Prefix)
	})
	data, err := json.Marshal(doc)
	if err != nil {
		return fmt.Errorf("frr handoff: %w", err)
	}
	if err := writeAtomic(filepath.Join(b.dir, ChangesFile), data, 0o600); err != nil {
		// Unknown whether the reloader saw it: hand everything over next.
		b.followable = false
		return fmt.Errorf("frr handoff: %w", err)
	}
	b.gen++
	b.changes = next
	return b.statusErr()
}

// Status returns the sessions as the reloader last reported them.
func (b *FileBackend) Status() []bgp.SessionStatus {
	st, err := ReadStatus(b.dir)
	if err != nil {
		return nil
	}
	return st.Sessions
}

// BFDPeers returns the BFD peers as the reloader last reported them.
func (b *FileBackend) BFDPeers() []BFDPeer {
	st, err := ReadStatus(b.dir)
	if err != nil {
		return nil
	}
	return st.BFDPeers
}

// statusStale is how old the reloader's report may be before the speaker
// takes the reloader (or FRR's container) to be gone: it writes one every
// second.
const statusStale = 15 * time.Second

// Healthy reports whether the reloader reports: its status file exists
// and is fresh. The speaker is not ready without it (nothing would reach
// FRR).
func (b *FileBackend) Healthy() error {
	st, err := ReadStatus(b.dir)
	if err != nil {
		return fmt.Errorf("no report from the frr-reloader container: %w", err)
	}
	if age := time.Since(st.Time); age > statusStale {
		return fmt.Errorf("the frr-reloader container's last report is %s old", age.Round(time.Second))
	}
	return nil
}

// Close does nothing: FRR belongs to its own container, which stops with
// the pod (bgpd closes its sessions with a NOTIFICATION then).
func (b *FileBackend) Close() error { return nil }

// ReadStatus reads the reloader's report in dir.
func ReadStatus(dir string) (StatusDoc, error) {
	var st StatusDoc
	data, err := os.ReadFile(filepath.Join(dir, StatusFile))
	if err != nil {
		return st, err
	}
	if err := json.Unmarshal(data, &st); err != nil {
		return st, fmt.Errorf("%s: %w", StatusFile, err)
	}
	return st, nil
}

// RunReloader is the reloader's side: it watches dir's DesiredFile and
// ChangesFile (every poll; a file is read only when its inode, size or
// modification time changed), applies each new desired state through
// backend.Apply and each new set of changed routes on top of it through
// backend.ApplyChanges, and writes StatusFile after each attempt and
// every second, until ctx ends.
func RunReloader(ctx context.Context, dir string, backend *Backend, poll time.Duration, log logr.Logger) error {
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	var (
		desired = watchedFile{path: filepath.Join(dir, DesiredFile)}
		changes = watchedFile{path: filepath.Join(dir, ChangesFile)}
		// base is the desired state last read, with its generation; cur
		// is the state applied last: base with the changed routes.
		base      bgp.DesiredState
		baseGen   uint64
		haveBase  bool
		cur       bgp.DesiredState
		changeGen uint64
		gen       uint64
		applyErr  error
		lastWrite time.Time
		// rendered is the text RenderedFile holds; renderedAt when it
		// was written.
		rendered   string
		renderedAt time.Time
	)
	writeStatus := func() {
		sessions, peers, _ := backend.Snapshot()
		st := StatusDoc{Generation: gen, Sessions: sessions, BFDPeers: peers, Time: time.Now()}
		if applyErr != nil {
			st.Error = applyErr.Error()
		} else if err := backend.Reloader().Err(); err != nil {
			st.Error = err.Error()
		}
		data, err := json.Marshal(st)
		if err == nil {
			err = writeAtomic(filepath.Join(dir, StatusFile), data, 0o644)
		}
		if err != nil {
			log.Error(err, "write status")
		}
		lastWrite = time.Now()
	}
	// writeRendered writes RenderedFile when the rendered text changed:
	// at once when asked (a full apply, a failed one), otherwise at most
	// every renderedEvery. It is for must-gather, next to frr.conf, and
	// at 10,000 routes it is half a megabyte: written for every changed
	// Service, it was a large part of a change's CPU.
	writeRendered := func(now bool) {
		text := backend.Rendered()
		if text == "" || text == rendered || (!now && time.Since(renderedAt) < renderedEvery) {
			return
		}
		if err := writeAtomic(filepath.Join(dir, RenderedFile), []byte(text), 0o600); err != nil {
			log.Error(err, "write rendered configuration")
			return
		}
		rendered, renderedAt = text, time.Now()
	}
	// readChanges returns the changes of the desired state read, when
	// ChangesFile holds newer ones than applied.
	readChanges := func(force bool) (changesDoc, bool) {
		raw, fresh, err := changes.read(force)
		switch {
		case errors.Is(err, os.ErrNotExist) || (err == nil && !fresh):
			return changesDoc{}, false
		case err != nil:
			log.Error(err, "read changed routes")
			return changesDoc{}, false
		}
		var doc changesDoc
		if err := json.Unmarshal(raw, &doc); err != nil {
			log.Error(err, "read changed routes", "file", ChangesFile)
			return changesDoc{}, false
		}
		if !haveBase || doc.Base != baseGen || doc.Generation <= changeGen {
			// Of another desired state (older, or one not read yet).
			return changesDoc{}, false
		}
		return doc, true
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		raw, fresh, err := desired.read(false)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			log.Error(err, "read desired state")
		case fresh:
			var doc desiredDoc
			if err := json.Unmarshal(raw, &doc); err != nil {
				// A torn read cannot happen (atomic rename); a bad file is
				// reported and the last applied state stays.
				applyErr = fmt.Errorf("%s: %w", DesiredFile, err)
			} else {
				base, baseGen, haveBase, changeGen = doc.State, doc.Generation, true, 0
				cur, gen = base, doc.Generation
				if ch, ok := readChanges(true); ok {
					cur, _ = withChanges(cur, ch.Routes)
					changeGen, gen = ch.Generation, ch.Generation
				}
				applyErr = backend.Apply(ctx, cur)
				writeRendered(true)
				log.V(1).Info("desired state", "generation", gen, "sessions", len(doc.State.Sessions))
			}
			writeStatus()
		}
		if ch, ok := readChanges(false); ok {
			var changed []bgp.RouteChange
			cur, changed = withChanges(cur, ch.Routes)
			changeGen, gen = ch.Generation, ch.Generation
			applyErr = backend.ApplyChanges(ctx, cur, changed)
			writeRendered(applyErr != nil)
			log.V(1).Info("changed routes", "generation", gen, "routes", len(changed))
			writeStatus()
		}
		if time.Since(lastWrite) >= time.Second {
			writeStatus()
			writeRendered(false)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// withChanges returns st with routes in place, and the routes that
// differ. st's route slices are edited in place, not copied: the
// reloader owns them (decoded from the handoff), and the backend, which
// keeps the last state it was given, reads the changed sessions' routes
// only from the state of the call that changes them. A copy was the
// session's whole table (10,000 routes, 640 kB) per changed Service.
func withChanges(st bgp.DesiredState, routes []changedRoute) (bgp.DesiredState, []bgp.RouteChange) {
	out := bgp.DesiredState{Sessions: st.Sessions, Routes: maps.Clone(st.Routes)}
	if out.Routes == nil {
		out.Routes = map[string][]bgp.Route{}
	}
	var changed []bgp.RouteChange
	for _, c := range routes {
		rs := out.Routes[c.Session]
		i, found := slices.BinarySearchFunc(rs, c.Prefix, func(r bgp.Route, p netip.Prefix) int { return bgp.ComparePrefixes(r.Prefix, p) })
		if (c.Route == nil && !found) || (c.Route != nil && found && rs[i].Equal(*c.Route)) {
			continue
		}
		switch {
		case c.Route == nil:
			rs = slices.Delete(rs, i, i+1)
		case found:
			rs[i] = *c.Route
		default:
			rs = slices.Insert(rs, i, *c.Route)
		}
		if len(rs) == 0 {
			delete(out.Routes, c.Session)
		} else {
			out.Routes[c.Session] = rs
		}
		changed = append(changed, bgp.RouteChange{Session: c.Session, Prefix: c.Prefix})
	}
	return out, changed
}

// watchedFile reads a file when it was replaced or changed since the last
// read (inode, size, modification time), and, while its modification time
// is recent, at least every second anyway: a file replaced twice within
// the clock's granularity by one of the same size could reuse the inode
// seen. Once the file has been still for longer (recentWrite), its
// identity is enough: at 10,000 routes the desired state is megabytes,
// and reading it every second was most of an idle reloader's CPU.
type watchedFile struct {
	path     string
	seen     fileID
	last     []byte
	lastRead time.Time
}

// renderedEvery is how often, at most, changed routes rewrite
// RenderedFile.
const renderedEvery = 5 * time.Second

// recentWrite is how long after its modification time a file is read
// again even though its identity is unchanged: more than any clock
// granularity a modification time has here (nanoseconds on Linux's
// filesystems; whole seconds on the coarsest).
const recentWrite = 3 * time.Second

type fileID struct {
	ino, size int64
	mtime     time.Time
}

// read returns the file's content and whether it differs from the last
// read's (always read when force).
func (w *watchedFile) read(force bool) ([]byte, bool, error) {
	fi, err := os.Stat(w.path)
	if err != nil {
		w.seen, w.last = fileID{}, nil
		return nil, false, err
	}
	id := fileID{size: fi.Size(), mtime: fi.ModTime()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		id.ino = int64(st.Ino)
	}
	if id == w.seen && !force && (time.Since(w.lastRead) < time.Second || time.Since(fi.ModTime()) > recentWrite) {
		return nil, false, nil
	}
	raw, err := os.ReadFile(w.path)
	if err != nil {
		return nil, false, err
	}
	w.seen, w.lastRead = id, time.Now()
	if !force && bytes.Equal(raw, w.last) {
		return raw, false, nil
	}
	w.last = raw
	return raw, true, nil
}

// writeAtomic writes data to path through a temporary file and a rename,
// so a reader sees the old or the new content, never a part.
func writeAtomic(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(mode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}
