package frr

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
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
)

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
}

var _ bgp.Backend = (*FileBackend)(nil)

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
	state, err := json.Marshal(norm.Without(skipped))
	if err != nil {
		return fmt.Errorf("frr handoff: %w", err)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !bytes.Equal(state, b.last) {
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
		b.last = state
	}
	st, err := ReadStatus(b.dir)
	if err != nil || st.Error == "" {
		return skipped.OrNil()
	}
	return errors.Join(skipped.OrNil(), fmt.Errorf("frr reloader: %s", st.Error))
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

// RunReloader is the reloader's side: it watches dir's DesiredFile (every
// poll), applies each new state through backend, and writes StatusFile
// after each attempt and every second, until ctx ends.
func RunReloader(ctx context.Context, dir string, backend *Backend, poll time.Duration, log logr.Logger) error {
	if poll <= 0 {
		poll = 50 * time.Millisecond
	}
	desired := filepath.Join(dir, DesiredFile)
	var (
		lastRaw   []byte
		gen       uint64
		applyErr  error
		lastWrite time.Time
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
	tick := time.NewTicker(poll)
	defer tick.Stop()
	for {
		raw, err := os.ReadFile(desired)
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			log.Error(err, "read desired state")
		case !bytes.Equal(raw, lastRaw):
			lastRaw = raw
			var doc desiredDoc
			if err := json.Unmarshal(raw, &doc); err != nil {
				// A torn read cannot happen (atomic rename); a bad file is
				// reported and the last applied state stays.
				applyErr = fmt.Errorf("%s: %w", DesiredFile, err)
			} else {
				gen = doc.Generation
				applyErr = backend.Apply(ctx, doc.State)
				if text := backend.Rendered(); text != "" {
					if err := writeAtomic(filepath.Join(dir, RenderedFile), []byte(text), 0o600); err != nil {
						log.Error(err, "write rendered configuration")
					}
				}
				log.V(1).Info("desired state", "generation", gen, "sessions", len(doc.State.Sessions))
			}
			writeStatus()
		}
		if time.Since(lastWrite) >= time.Second {
			writeStatus()
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
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
