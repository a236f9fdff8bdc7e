package frr

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
)

// Reloader applies rendered configurations to a running FRR in place,
// with FRR's own frr-reload.py. The contract (the speaker uses it
// in-process; a sidecar next to FRR can run the same type, fed with the
// text by whatever carries it):
//
//   - File: ReloaderOptions.Path, normally CONFDIR/frr.conf. The Reloader
//     owns it and it always holds the last text FRR accepted, so an FRR
//     that restarts comes back with what last worked. Candidates are
//     temporary files next to it, renamed over it (atomic).
//   - Trigger: Submit(text), from any goroutine, never blocking on FRR.
//     Submissions within ReloaderOptions.Debounce of the first pending
//     one coalesce into one reload of the newest text; a text equal to
//     the one applied costs nothing; resubmitting the pending text does
//     not hurry a retry. Resync reloads the newest text even if unchanged
//     (for an FRR that restarted or was changed by hand).
//   - Reload: `frr-reload.py --test` on the candidate (FRR parses it; the
//     running configuration is not touched; FastCheck runs only that
//     parse), rename over Path, `frr-reload.py --reload` (FRR gets only
//     the difference, so unchanged sessions are not reset), then `clear
//     bgp [vrf V] ipv4|ipv6 unicast * soft out` for every BGP instance
//     (no reset either): a full reload may change the route-maps OUT of
//     routes already announced (a tag's entries, an old configuration's
//     prefix lists), and FRR 8.4 does not always re-run them then. The
//     fast path (routeDelta) and SubmitChange's edits only change
//     network statements, each of which re-evaluates its own route, and
//     add or remove the entries of tags no other route carries: no
//     refresh.
//   - Errors: every failed attempt is a *ReloadError (stage and the
//     script's error lines). A candidate failing the check never reaches
//     Path or FRR; one failing the reload is taken back out (the last
//     good text is written and reloaded again). Either way the last good
//     configuration stays applied and keeps announcing, and the newest
//     text is retried with exponential back-off (MinBackoff doubling up
//     to MaxBackoff; a new text is tried after Debounce). Err is the
//     outcome of the latest attempt (nil once the newest text is
//     applied); Flush waits for the pending text's outcome; OnReload
//     sees every attempt; Stats counts them.
//
// The process needs what vtysh needs: the daemons' vty sockets (root, or
// the frrvty group). A Reloader runs one goroutine from NewReloader until
// Close.
type Reloader struct {
	opts ReloaderOptions
	log  logr.Logger

	mu sync.Mutex
	// desired is the newest text; desiredGen counts distinct submissions.
	desired    string
	desiredGen uint64
	// applied is the text FRR last accepted (and Path holds); appliedGen
	// the generation it answered. hasApplied is false until the first
	// success.
	applied    string
	appliedGen uint64
	hasApplied bool
	// attemptGen is the generation of the latest finished attempt.
	attemptGen uint64
	lastErr    error
	attempt    int
	inflight   bool
	// force makes the next attempt reload even an unchanged text
	// (Resync).
	force bool
	// chain are the route edits submitted with SubmitChange since
	// generation chainBase, one per generation from chainBase+1 on: when
	// FRR runs chainBase's text, they take it to the newest one.
	chain     []routeEdit
	chainBase uint64
	stats     ReloadStats
	changed   chan struct{}

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// ReloaderOptions configures a Reloader. Only Path is required.
type ReloaderOptions struct {
	// Path is the configuration file the Reloader owns, normally
	// CONFDIR/frr.conf; its directory must be writable (temporary files
	// are created there, then renamed).
	Path string
	// ConfDir is frr-reload.py's --confdir (where vtysh.conf is read and
	// where `write` would save frr.conf); the directory of Path when
	// empty. With Path = ConfDir/frr.conf the script saves nothing itself.
	ConfDir string
	// VtySocket is the directory of the daemons' vty sockets
	// (--vty_socket); FRR's default when empty.
	VtySocket string
	// RunDir is where frr-reload.py writes its temporary command files
	// (--rundir); ConfDir when empty.
	RunDir string
	// BinDir is the directory holding vtysh (--bindir); "/usr/bin" when
	// empty.
	BinDir string
	// Python and Script run frr-reload.py; FRR 8.4's script needs
	// /usr/bin/python3. Defaults "/usr/bin/python3" and
	// "/usr/lib/frr/frr-reload.py".
	Python, Script string
	// Debounce is how long the first of a burst of submissions waits for
	// more; DefaultDebounce when 0, none when negative.
	Debounce time.Duration
	// MinBackoff and MaxBackoff bound the retry delay after a failure;
	// DefaultMinBackoff and DefaultMaxBackoff when 0.
	MinBackoff, MaxBackoff time.Duration
	// Timeout bounds one run of the script; DefaultReloadTimeout when 0.
	Timeout time.Duration
	// FastCheck checks a candidate with `vtysh -m -f FILE` (the parse
	// that --test and --reload themselves run first) instead of
	// `frr-reload.py --test`: a broken text is refused just the same, a
	// reload costs one run of the script instead of two (about 0.3 s less
	// here), and ReloadResult.Diff stays empty.
	FastCheck bool
	// NoFastPath sends every change through frr-reload.py, even one that
	// only changes network statements and tags (see routeDelta).
	NoFastPath bool
	// UseVtysh runs SubmitChange's commands and Backend.Snapshot's
	// queries with a vtysh process (and Exec) instead of writing them to
	// the daemons' vty sockets in VtySocket (vty.go), which costs a
	// fraction of starting vtysh. For tests with a fake vtysh.
	UseVtysh bool
	// FileMode is the mode of Path; 0640 when 0 (the file may hold TCP
	// MD5 passwords).
	FileMode os.FileMode
	// Log receives a line per reload (V(1) for successes).
	Log logr.Logger
	// OnReload, when set, is called after every attempt, from the
	// Reloader's goroutine, before Flush returns.
	OnReload func(ReloadResult)
	// Exec runs a command and returns its combined output; os/exec when
	// nil. A test seam.
	Exec func(ctx context.Context, name string, args ...string) ([]byte, error)
}

// Reloader defaults.
const (
	DefaultDebounce      = 100 * time.Millisecond
	DefaultMinBackoff    = 250 * time.Millisecond
	DefaultMaxBackoff    = 8 * time.Second
	DefaultReloadTimeout = 2 * time.Minute
	DefaultBinDir        = "/usr/bin"
	DefaultPython        = "/usr/bin/python3"
	DefaultReloadScript  = "/usr/lib/frr/frr-reload.py"
)

// maxOutput bounds the script output an error carries.
const maxOutput = 4096

// ReloadStats counts what a Reloader did.
type ReloadStats struct {
	// Reloads is the number of successful `--reload` runs.
	Reloads uint64
	// Failures is the number of failed attempts (check or reload).
	Failures uint64
	// Skipped is the number of submissions equal to the applied text.
	Skipped uint64
	// Fast is the number of Reloads done by the route-only fast path.
	Fast uint64
	// Edits is the number of those that ran SubmitChange's commands.
	Edits uint64
}

// ReloadResult describes one attempt, for ReloaderOptions.OnReload.
type ReloadResult struct {
	// Generation is the submission the attempt applied.
	Generation uint64
	// Err is nil on success, else a *ReloadError.
	Err error
	// Diff is the output of `--test`: the lines the reload deletes and
	// adds.
	Diff string
	// Duration is the attempt's wall time; Test, Reload and Refresh the
	// parts of it each stage took (zero for stages not reached).
	Duration, Test, Reload, Refresh time.Duration
	// Fast is true when only network statements and tags changed and
	// FRR took them (routeDelta) instead of frr-reload.py; Diff then
	// holds the commands.
	Fast bool
	// Edit is true when the commands were SubmitChange's (no diff of the
	// configurations was made).
	Edit bool
}

// ReloadError is a failed check or reload.
type ReloadError struct {
	// Stage is "write", "test", "reload" or "refresh" (the soft refresh
	// after a reload, see Reloader).
	Stage string
	// Err is the underlying error (often an exit status).
	Err error
	// Output is what explains the failure in the script's output (its
	// error and warning entries, vtysh's "%" lines), at most 4 KiB.
	Output string
}

func (e *ReloadError) Error() string {
	msg := fmt.Sprintf("frr reload (%s): %v", e.Stage, e.Err)
	if e.Output != "" {
		msg += ": " + e.Output
	}
	return msg
}

func (e *ReloadError) Unwrap() error { return e.Err }

// NewReloader checks the options and starts the Reloader's goroutine.
func NewReloader(opts ReloaderOptions) (*Reloader, error) {
	if opts.Path == "" {
		return nil, errors.New("frr reloader: no configuration path")
	}
	if opts.ConfDir == "" {
		opts.ConfDir = filepath.Dir(opts.Path)
	}
	if opts.RunDir == "" {
		opts.RunDir = opts.ConfDir
	}
	if opts.BinDir == "" {
		opts.BinDir = DefaultBinDir
	}
	if opts.Python == "" {
		opts.Python = DefaultPython
	}
	if opts.Script == "" {
		opts.Script = DefaultReloadScript
	}
	if opts.Debounce == 0 {
		opts.Debounce = DefaultDebounce
	} else if opts.Debounce < 0 {
		opts.Debounce = 0
	}
	if opts.MinBackoff <= 0 {
		opts.MinBackoff = DefaultMinBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	opts.MaxBackoff = max(opts.MaxBackoff, opts.MinBackoff)
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultReloadTimeout
	}
	if opts.FileMode == 0 {
		opts.FileMode = 0o640
	}
	if opts.Exec == nil {
		opts.Exec = runCommand
	}
	r := &Reloader{
		opts:    opts,
		log:     opts.Log,
		changed: make(chan struct{}),
		kick:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go r.loop()
	return r, nil
}

func runCommand(ctx context.Context, name string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.WaitDelay = 5 * time.Second
	return cmd.CombinedOutput()
}

// Submit makes conf the configuration to apply and returns its
// generation (unchanged when conf equals the newest text). It never
// blocks on FRR.
func (r *Reloader) Submit(conf string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.desiredGen > 0 && conf == r.desired {
		// Nothing new: a pending or retrying attempt already covers it;
		// a caller retrying does not defeat the back-off.
		return r.desiredGen
	}
	r.desiredGen++
	r.desired = conf
	r.chain = nil
	if !r.inflight && !r.force && r.hasApplied && conf == r.applied {
		r.appliedGen = r.desiredGen
		r.attemptGen = r.desiredGen
		r.lastErr = nil
		r.attempt = 0
		r.stats.Skipped++
		r.notifyLocked()
		return r.desiredGen
	}
	r.kickLocked()
	return r.desiredGen
}

// routeEdit is one SubmitChange: the vtysh commands from the previous
// submission's configuration to this one's, and the soft refreshes they
// need.
type routeEdit struct {
	gen           uint64
	cmds, refresh []string
}

// SubmitChange is Submit for a configuration that differs from the
// previous submission only as cmds say: network statements, as
// routeDelta writes them, followed by the refresh commands (`clear bgp
// ... soft out`; live.change needs none since route tags). While FRR runs the previous
// submission, or one whose edits up to this one were all submitted this
// way, the attempt runs the commands with vtysh and writes conf, nothing
// else; otherwise (a text pending or failed, a Resync) it goes the way of
// Submit.
func (r *Reloader) SubmitChange(conf string, cmds, refresh []string) uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.desiredGen > 0 && conf == r.desired {
		return r.desiredGen
	}
	prev := r.desiredGen
	if len(r.chain) == 0 || r.chain[len(r.chain)-1].gen != prev {
		r.chain, r.chainBase = nil, prev
	}
	r.desiredGen++
	r.desired = conf
	r.chain = append(r.chain, routeEdit{gen: r.desiredGen, cmds: cmds, refresh: refresh})
	r.kickLocked()
	return r.desiredGen
}

// Resync forgets what was applied and reloads the newest text, for an FRR
// that restarted or was changed behind the Reloader's back.
func (r *Reloader) Resync() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.desiredGen == 0 {
		return
	}
	r.force = true
	r.desiredGen++
	r.chain = nil
	r.kickLocked()
}

func (r *Reloader) kickLocked() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

func (r *Reloader) notifyLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
}

// Err is the outcome of the latest attempt: nil when the newest
// submission is applied or has not been tried yet after a success, else
// the *ReloadError of the latest failure.
func (r *Reloader) Err() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastErr
}

// Applied returns the text FRR last accepted and the generation it
// answered; ok is false before the first success.
func (r *Reloader) Applied() (conf string, gen uint64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.applied, r.appliedGen, r.hasApplied
}

// Stats returns the counters.
func (r *Reloader) Stats() ReloadStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats
}

// Flush waits until the newest submission (at the time of the call) is
// applied, or an attempt at it (or a newer one) failed, and returns Err.
func (r *Reloader) Flush(ctx context.Context) error {
	r.mu.Lock()
	gen := r.desiredGen
	for {
		if r.appliedGen >= gen {
			r.mu.Unlock()
			return nil
		}
		if r.attemptGen >= gen && r.lastErr != nil {
			err := r.lastErr
			r.mu.Unlock()
			return err
		}
		ch := r.changed
		r.mu.Unlock()
		select {
		case <-ch:
		case <-r.done:
			return errors.New("frr reloader: closed")
		case <-ctx.Done():
			return ctx.Err()
		}
		r.mu.Lock()
	}
}

// Close stops the goroutine after the attempt in progress, if any. FRR
// keeps its configuration.
func (r *Reloader) Close() error {
	r.once.Do(func() { close(r.stop) })
	<-r.done
	return nil
}

func (r *Reloader) loop() {
	defer close(r.done)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	// armed is when the timer fires; debouncing tells whether it waits for
	// a burst to end (new submissions then leave it alone) or for a retry
	// (a new submission brings it forward).
	var armed time.Time
	debouncing := false
	arm := func(d time.Duration) {
		timer.Stop()
		select {
		case <-timer.C:
		default:
		}
		timer.Reset(d)
		armed = time.Now().Add(d)
	}
	for {
		select {
		case <-r.stop:
			timer.Stop()
			return
		case <-r.kick:
			if !r.pending() || debouncing {
				continue
			}
			if armed.IsZero() || time.Until(armed) > r.opts.Debounce {
				arm(r.opts.Debounce)
				debouncing = true
			}
		case <-timer.C:
			armed, debouncing = time.Time{}, false
			if err := r.attemptOnce(); err != nil {
				arm(r.backoff())
			} else if r.pending() {
				arm(r.opts.Debounce)
				debouncing = true
			}
		}
	}
}

func (r *Reloader) pending() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.appliedGen < r.desiredGen
}

func (r *Reloader) backoff() time.Duration {
	r.mu.Lock()
	n := r.attempt
	r.mu.Unlock()
	d := r.opts.MinBackoff
	for i := 1; i < n && d < r.opts.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, r.opts.MaxBackoff)
}

// attemptOnce applies the newest text if it is not applied yet.
func (r *Reloader) attemptOnce() error {
	r.mu.Lock()
	if r.appliedGen >= r.desiredGen {
		r.mu.Unlock()
		return nil
	}
	conf, gen := r.desired, r.desiredGen
	if !r.force && r.hasApplied && conf == r.applied {
		r.appliedGen, r.attemptGen = gen, gen
		r.lastErr, r.attempt = nil, 0
		r.stats.Skipped++
		r.notifyLocked()
		r.mu.Unlock()
		return nil
	}
	prev, hadPrev, forced := r.applied, r.hasApplied, r.force
	r.inflight, r.force = true, false
	// The edits from the applied generation to gen, when every one since
	// was a SubmitChange.
	var edits []routeEdit
	if hadPrev && !forced && len(r.chain) > 0 && r.chainBase == r.appliedGen && r.chain[len(r.chain)-1].gen == gen {
		edits = slices.Clone(r.chain)
	}
	r.mu.Unlock()

	start := time.Now()
	var err error
	res := ReloadResult{Generation: gen}
	if edits != nil && !r.opts.NoFastPath {
		res.Diff, err = r.applyEdits(&res, conf, edits)
	} else {
		res.Diff, err = r.apply(&res, conf, prev, hadPrev, forced)
	}
	res.Err, res.Duration = err, time.Since(start)

	r.mu.Lock()
	r.inflight = false
	r.attemptGen = max(r.attemptGen, gen)
	// Edits after gen (submitted meanwhile) follow gen's text if it went
	// in; else nothing can follow it.
	i := 0
	for i < len(r.chain) && r.chain[i].gen <= gen {
		i++
	}
	r.chain = r.chain[i:]
	if err == nil {
		r.chainBase = gen
	} else {
		r.chain = nil
	}
	if err == nil {
		r.applied, r.hasApplied = conf, true
		r.appliedGen = max(r.appliedGen, gen)
		r.lastErr, r.attempt = nil, 0
		r.stats.Reloads++
		if res.Fast {
			r.stats.Fast++
		}
		if res.Edit {
			r.stats.Edits++
		}
	} else {
		r.lastErr = err
		r.attempt++
		r.stats.Failures++
		r.force = r.force || forced // a failed Resync is retried too
	}
	attempt := r.attempt
	r.mu.Unlock()
	// Waiters (Flush) wake after the log line and the hook.
	defer func() {
		r.mu.Lock()
		r.notifyLocked()
		r.mu.Unlock()
	}()

	if err != nil {
		r.log.Error(err, "FRR reload failed; the last good configuration stays applied", "generation", gen, "failures", attempt)
	} else {
		r.log.V(1).Info("FRR reloaded", "generation", gen, "duration", res.Duration, "test", res.Test, "reload", res.Reload, "refresh", res.Refresh)
	}
	if r.opts.OnReload != nil {
		r.opts.OnReload(res)
	}
	return err
}

// apply checks conf, installs it as Path and reloads FRR; on a failed
// reload it restores prev (when there is one).
func (r *Reloader) apply(res *ReloadResult, conf, prev string, hadPrev, forced bool) (diff string, err error) {
	// fastFailed: FRR may hold part of a route delta vtysh did not finish.
	fastFailed := false
	if hadPrev && !forced && !r.opts.NoFastPath {
		if cmds, ok := routeDelta(prev, conf); ok {
			t0 := time.Now()
			ferr := r.fastApply(conf, cmds)
			res.Reload = time.Since(t0)
			if ferr == nil {
				// No soft refresh: each network statement written
				// re-evaluates its own route through the route-maps OUT,
				// whose entries changed only for tags no other route
				// carries, and a refresh of every instance costs a walk
				// of the whole table.
				res.Fast = true
				return strings.Join(cmds, "\n"), nil
			}
			// The full path diffs against FRR's running configuration,
			// so it also repairs whatever part of the delta went in.
			r.log.Error(ferr, "fast route update failed; reloading in full")
			fastFailed = true
		}
	}
	dir := filepath.Dir(r.opts.Path)
	tmp, err := r.writeTemp(dir, conf)
	if err != nil {
		return "", &ReloadError{Stage: "write", Err: err}
	}
	defer os.Remove(tmp) // gone after the rename; cleans up after a failure
	t0 := time.Now()
	var out []byte
	if r.opts.FastCheck {
		out, err = r.check(tmp)
	} else {
		out, err = r.script("--test", tmp)
	}
	res.Test = time.Since(t0)
	if err != nil {
		if fastFailed {
			// Part of the delta may be in FRR, and the full path will not
			// take it: back to the last good configuration, which Path
			// still holds.
			r.restore(prev)
		}
		return "", &ReloadError{Stage: "test", Err: err, Output: scriptOutput(out)}
	}
	if !r.opts.FastCheck {
		diff = string(out)
	}
	if err := os.Rename(tmp, r.opts.Path); err != nil {
		return diff, &ReloadError{Stage: "write", Err: err}
	}
	t0 = time.Now()
	if hadPrev && !forced {
		// Prefixes changing tag move in place first (retagFirst); should
		// that fail, frr-reload.py, which diffs against FRR's running
		// configuration, does the rest (with the moment's withdraw).
		if pre := retagFirst(prev, conf); len(pre) > 0 {
			if err := r.configure(dir, pre); err != nil {
				r.log.Error(err, "moving routes to their new tags before the reload")
			}
		}
	}
	out, err = r.script("--reload", r.opts.Path)
	res.Reload = time.Since(t0)
	if err == nil {
		t0 = time.Now()
		err := r.refresh(conf)
		res.Refresh = time.Since(t0)
		if err != nil {
			return diff, &ReloadError{Stage: "refresh", Err: err}
		}
		if hadPrev {
			if err := r.restartAfterBFDRemoval(bfdRemoved(prev, conf)); err != nil {
				// The configuration is in; a session that stays down
				// shows in the speaker's status. Logged, not retried.
				r.log.Error(err, "FRR reloaded")
			}
		}
		return diff, nil
	}
	rerr := &ReloadError{Stage: "reload", Err: err, Output: scriptOutput(out)}
	if hadPrev {
		// FRR may hold part of the new text: put the last good one back,
		// in the file and in FRR.
		r.restore(prev)
	}
	return diff, rerr
}

// applyEdits runs SubmitChange's commands, then their refreshes; should
// vtysh fail, FRR may hold part of them, and the full path (which diffs
// against FRR's running configuration) takes conf in.
func (r *Reloader) applyEdits(res *ReloadResult, conf string, edits []routeEdit) (string, error) {
	var cmds, refresh []string
	seen := map[string]bool{}
	for _, e := range edits {
		cmds = append(cmds, e.cmds...)
		for _, c := range e.refresh {
			if !seen[c] {
				seen[c] = true
				refresh = append(refresh, c)
			}
		}
	}
	// One vtysh: the edits, then (out of configuration mode) the
	// refreshes.
	run := cmds
	if len(refresh) > 0 {
		run = append(append(slices.Clip(cmds), "end"), refresh...)
	}
	t0 := time.Now()
	err := r.fastApply(conf, run)
	res.Reload = time.Since(t0)
	if err != nil {
		r.log.Error(err, "route edit failed; reloading in full")
		r.mu.Lock()
		prev, hadPrev := r.applied, r.hasApplied
		r.mu.Unlock()
		diff, err := r.apply(res, conf, prev, hadPrev, true)
		if err != nil {
			// The next attempt must not trust the running configuration
			// either.
			r.mu.Lock()
			r.force = true
			r.mu.Unlock()
		}
		return diff, err
	}
	res.Fast, res.Edit = true, true
	return strings.Join(run, "\n"), nil
}

// configure runs configuration commands with `vtysh -f`, which sends
// each to the daemons that have it (route-maps to zebra and bgpd alike,
// as frr-reload.py would): a file, since the commands can be a network
// statement per route.
func (r *Reloader) configure(dir string, cmds []string) error {
	f, err := os.CreateTemp(dir, ".lbstack-retag.*.conf")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	_, err = f.WriteString(strings.Join(cmds, "\n") + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	var args []string
	if r.opts.VtySocket != "" {
		args = append(args, "--vty_socket", r.opts.VtySocket)
	}
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
	defer cancel()
	out, err := r.opts.Exec(ctx, filepath.Join(r.opts.BinDir, "vtysh"), append(args, "-f", f.Name())...)
	if s := trimOutput(out); err != nil || strings.Contains(s, "%") {
		return fmt.Errorf("vtysh -f: %v: %s", err, s)
	}
	return nil
}

// restore puts prev, the last configuration FRR accepted, back in Path
// and in FRR.
func (r *Reloader) restore(prev string) {
	if werr := r.writeFile(prev); werr != nil {
		r.log.Error(werr, "restoring the last good FRR configuration")
	} else if out, err := r.script("--reload", r.opts.Path); err != nil {
		r.log.Error(err, "reloading the last good FRR configuration", "output", scriptOutput(out))
	}
}

// fastApply applies cmds (routeDelta's) to FRR with one vtysh call and,
// only once FRR took them, writes conf as Path: Path always holds what FRR
// last accepted.
func (r *Reloader) fastApply(conf string, cmds []string) error {
	if len(cmds) == 0 {
		return r.writeFile(conf)
	}
	if !r.opts.UseVtysh {
		if err := runDirect(r.opts.VtySocket, cmds); err != nil {
			return err
		}
		return r.writeFile(conf)
	}
	out, err := r.runVtysh(append([]string{"configure terminal"}, cmds...)...)
	s := trimOutput(out)
	if err == nil && strings.Contains(s, "%") {
		err = errors.New("vtysh refused")
	}
	if err != nil {
		return fmt.Errorf("vtysh: %w: %s", err, s)
	}
	return r.writeFile(conf)
}

// routerLine matches the `router bgp ASN [vrf NAME]` lines of a
// configuration.
var routerLine = regexp.MustCompile(`(?m)^router bgp [0-9]+(?: vrf (\S+))?\s*$`)

// refresh re-evaluates the outbound policy of every BGP instance of conf
// (`clear bgp [vrf NAME] ipv4|ipv6 unicast * soft out`; no session is
// reset, and peers only get UPDATEs for what changed). A full reload may
// change the route-maps OUT under routes already in the table (a tag's
// entries come or go; a configuration from before route tags loses its
// prefix lists), and FRR 8.4 does not re-run the route-maps of routes
// already in its table when a prefix list they match changes: without
// this a route could keep its old policy until the next route-map
// change.
func (r *Reloader) refresh(conf string) error {
	var cmds []string
	for _, m := range routerLine.FindAllStringSubmatch(conf, -1) {
		vrf := ""
		if m[1] != "" {
			vrf = "vrf " + m[1] + " "
		}
		for _, afi := range []string{"ipv4", "ipv6"} {
			cmds = append(cmds, "clear bgp "+vrf+afi+" unicast * soft out")
		}
	}
	if len(cmds) == 0 {
		return nil
	}
	if !r.opts.UseVtysh {
		if err := runDirect(r.opts.VtySocket, append([]string{"end"}, cmds...)); err != nil {
			return fmt.Errorf("soft refresh: %w", err)
		}
		return nil
	}
	out, err := r.runVtysh(cmds...)
	s := trimOutput(out)
	if err == nil && (strings.Contains(s, "%") || strings.Contains(s, "Can't find")) {
		err = errors.New("vtysh refused")
	}
	if err != nil {
		return fmt.Errorf("soft refresh: %w: %s", err, s)
	}
	return nil
}

// writeFile writes conf to Path atomically.
func (r *Reloader) writeFile(conf string) error {
	tmp, err := r.writeTemp(filepath.Dir(r.opts.Path), conf)
	if err != nil {
		return err
	}
	if err := os.Rename(tmp, r.opts.Path); err != nil {
		_ = os.Remove(tmp)
		return err
	}
	return nil
}

func (r *Reloader) writeTemp(dir, conf string) (string, error) {
	f, err := os.CreateTemp(dir, "."+filepath.Base(r.opts.Path)+".*.tmp")
	if err != nil {
		return "", err
	}
	name := f.Name()
	_, err = f.WriteString(conf)
	if err == nil {
		err = f.Chmod(r.opts.FileMode)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		_ = os.Remove(name)
		return "", err
	}
	return name, nil
}

// check parses file as frr-reload.py does (vtysh in mark mode).
func (r *Reloader) check(file string) ([]byte, error) {
	args := []string{"--config_dir", r.opts.ConfDir}
	if r.opts.VtySocket != "" {
		args = append(args, "--vty_socket", r.opts.VtySocket)
	}
	args = append(args, "-m", "-f", file)
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
	defer cancel()
	return r.opts.Exec(ctx, filepath.Join(r.opts.BinDir, "vtysh"), args...)
}

func (r *Reloader) script(mode, file string) ([]byte, error) {
	args := []string{r.opts.Script, mode, "--stdout",
		"--bindir", r.opts.BinDir, "--confdir", r.opts.ConfDir, "--rundir", r.opts.RunDir}
	if r.opts.VtySocket != "" {
		args = append(args, "--vty_socket", r.opts.VtySocket)
	}
	args = append(args, file)
	ctx, cancel := context.WithTimeout(context.Background(), r.opts.Timeout)
	defer cancel()
	return r.opts.Exec(ctx, r.opts.Python, args...)
}

// ansiEscape matches the colour codes frr-reload.py puts around ERROR.
var ansiEscape = regexp.MustCompile("\x1b\\[[0-9;]*m")

// logStart matches the timestamp that starts each log line of
// frr-reload.py.
var logStart = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)

// scriptOutput extracts what explains a failure from frr-reload.py's
// output: its ERROR and WARNING log entries and vtysh's "%" lines (after a
// failed parse, --test goes on to print a meaningless diff against an
// empty configuration, which would hide them); the trimmed output when
// there are none.
func scriptOutput(b []byte) string {
	text := ansiEscape.ReplaceAllString(string(b), "")
	var keep []string
	inEntry := false
	for _, line := range strings.Split(text, "\n") {
		if logStart.MatchString(line) {
			inEntry = strings.Contains(line, "ERROR") || strings.Contains(line, "WARNING")
		} else if strings.Contains(line, "% ") {
			inEntry = true
		}
		if inEntry && strings.TrimSpace(line) != "" {
			keep = append(keep, strings.TrimSpace(line))
		}
	}
	if len(keep) == 0 {
		return trimOutput(b)
	}
	return trimOutput([]byte(strings.Join(keep, "\n")))
}

// trimOutput keeps the end of the output (where errors are), at most
// maxOutput bytes.
func trimOutput(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > maxOutput {
		s = "..." + s[len(s)-maxOutput:]
	}
	return s
}
