package membership

import (
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"
)

var key = []byte("0123456789abcdef0123456789abcdef")

// recorder keeps every set OnChange reported.
type recorder struct {
	mu   sync.Mutex
	sets [][]string
}

func (r *recorder) record(live []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sets = append(r.sets, live)
}

func (r *recorder) last() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.sets) == 0 {
		return nil
	}
	return r.sets[len(r.sets)-1]
}

// start starts a member on a free port of 127.0.0.1 and shuts it down
// when the test ends.
func start(t *testing.T, name string, k []byte, rec *recorder) *Member {
	t.Helper()
	cfg := Config{Name: name, BindAddr: "127.0.0.1", BindPort: 0, SecretKey: k}
	if rec != nil {
		cfg.OnChange = rec.record
	}
	m, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Shutdown(); err != nil {
			t.Errorf("shutdown %s: %v", name, err)
		}
	})
	return m
}

// waitMembers waits until m sees exactly want, and returns how long it took.
func waitMembers(t *testing.T, m *Member, want []string, timeout time.Duration) time.Duration {
	t.Helper()
	begin := time.Now()
	for time.Since(begin) < timeout {
		if slices.Equal(m.Members(), want) {
			return time.Since(begin)
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("members = %v after %s, want %v", m.Members(), timeout, want)
	return 0
}

func TestDeadMemberIsDetected(t *testing.T) {
	var recA recorder
	a := start(t, "node-a", key, &recA)
	b := start(t, "node-b", key, nil)
	c := start(t, "node-c", key, nil)
	for _, m := range []*Member{b, c} {
		if n, err := m.Join([]string{a.Addr()}); err != nil || n != 1 {
			t.Fatalf("join: %d, %v", n, err)
		}
	}
	all := []string{"node-a", "node-b", "node-c"}
	for _, m := range []*Member{a, b, c} {
		waitMembers(t, m, all, 10*time.Second)
	}
	if got := a.Live(); !reflect.DeepEqual(got, map[string]bool{"node-a": true, "node-b": true, "node-c": true}) {
		t.Errorf("Live = %v", got)
	}

	// Kill c without a word to the others, as a crashed speaker would.
	if err := c.Shutdown(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	rest := []string{"node-a", "node-b"}
	waitMembers(t, a, rest, 10*time.Second)
	da := time.Since(killed)
	waitMembers(t, b, rest, 10*time.Second)
	t.Logf("dead member detected after %s by node-a, %s by both (ProbeInterval %s, SuspicionMult %d)",
		da, time.Since(killed), DefaultProbeInterval, DefaultSuspicionMult)

	// OnChange is asynchronous; it must end on the final set.
	deadline := time.Now().Add(5 * time.Second)
	for !slices.Equal(recA.last(), rest) && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := recA.last(); !slices.Equal(got, rest) {
		t.Errorf("last OnChange = %v, want %v", got, rest)
	}
}

func TestLeaveIsSeenAtOnce(t *testing.T) {
	a := start(t, "node-a", key, nil)
	b := start(t, "node-b", key, nil)
	if _, err := b.Join([]string{a.Addr()}); err != nil {
		t.Fatal(err)
	}
	waitMembers(t, a, []string{"node-a", "node-b"}, 10*time.Second)
	if err := b.Leave(time.Second); err != nil {
		t.Fatal(err)
	}
	d := waitMembers(t, a, []string{"node-a"}, 10*time.Second)
	t.Logf("leave seen after %s", d)
}

// TestWrongKeyCannotJoin: gossip is encrypted and authenticated, so a
// member without the key cannot get in.
func TestWrongKeyCannotJoin(t *testing.T) {
	a := start(t, "node-a", key, nil)
	intruder := start(t, "intruder", []byte("fedcba9876543210"), nil)
	if n, err := intruder.Join([]string{a.Addr()}); err == nil || n != 0 {
		t.Fatalf("join with the wrong key: %d, %v; want failure", n, err)
	}
	time.Sleep(500 * time.Millisecond)
	if got := a.Members(); !slices.Equal(got, []string{"node-a"}) {
		t.Errorf("members = %v after a join with the wrong key", got)
	}
}

func TestStartRejects(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
	}{
		{"no name", Config{BindAddr: "127.0.0.1", SecretKey: key}},
		{"no key", Config{Name: "n", BindAddr: "127.0.0.1"}},
		{"short key", Config{Name: "n", BindAddr: "127.0.0.1", SecretKey: []byte("short")}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if m, err := Start(tt.cfg); err == nil {
				_ = m.Shutdown()
				t.Fatal("Start succeeded")
			}
		})
	}
}
