package frr

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"

	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
	"github.com/lbstack/lbstack/test/lab/frrtest"
)

// TestDesiredStateJSONRoundTrip: the handoff carries every Session and
// Route field the renderer uses, unchanged.
func TestDesiredStateJSONRoundTrip(t *testing.T) {
	s := bgp.Session{Name: "p", MyASN: 64512, PeerASN: 64513, LocalASN: 64600, PeerAddr: addr("198.18.0.254"), Port: 1179,
		SourceAddr: addr("198.18.0.1"), RouterID: addr("198.18.0.1"), HoldTime: dur(9 * time.Second), KeepaliveTime: dur(3 * time.Second),
		ConnectTime: dur(time.Second), Password: "pw", EBGPMultiHop: true, GracefulRestart: true, VRF: "red", DualStack: true,
		BFDProfile: &config.BFDProfile{Name: "fast", ReceiveInterval: 25, TransmitInterval: 25, DetectMultiplier: 3}}
	d := bgp.DesiredState{Sessions: []bgp.Session{s}, Routes: map[string][]bgp.Route{"p": {
		{Prefix: pfx("203.0.113.0/24"), Communities: []config.Community{std(65535, 120), large(65535, 300, 100)}, LocalPref: 150},
		{Prefix: pfx("2001:db8::1/128")},
	}}}
	norm, err := d.Normalize()
	if err != nil {
		t.Fatal(err)
	}
	data, err := json.Marshal(norm)
	if err != nil {
		t.Fatal(err)
	}
	var back bgp.DesiredState
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, norm) {
		t.Fatalf("round trip changed the state:\n got %+v\nwant %+v", back, norm)
	}
	a, err := Render(norm, Options{})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := Render(back, Options{})
	if a != b {
		t.Errorf("the rendered configuration differs after the round trip")
	}
}

// TestFileBackendThroughReloader: the speaker's FileBackend and the
// reloader's RunReloader, through a directory, against a real FRR: the
// route reaches the router, Status comes back through the status file,
// an unchanged state writes nothing, and a state FRR rejects is reported
// by the speaker's next Apply while the last good routes stay.
func TestFileBackendThroughReloader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts FRR daemons; skipped with -short")
	}
	needReloadScript(t)
	lab := frrtest.Start(t, "")
	dir := nodeFRR(t, lab)
	r := lab.Router()
	fwd4, fwd6 := nsForwarding(t, lab.NodeNS)
	be, err := NewBackend(BackendOptions{
		Render:              Options{Hostname: "lbs-node", IPForwarding: fwd4, IPv6Forwarding: fwd6},
		Reloader:            ReloaderOptions{Path: filepath.Join(dir, "frr.conf"), VtySocket: dir, Log: testr.New(t)},
		KeepSessionsOnClose: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = be.Close() })
	handoff := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- RunReloader(ctx, handoff, be, 20*time.Millisecond, testr.New(t)) }()
	t.Cleanup(func() {
		cancel()
		<-done
	})

	speaker := NewFileBackend(handoff)
	s4 := bgp.Session{Name: "router-v4", MyASN: frrtest.NodeAS, PeerASN: frrtest.RouterAS,
		PeerAddr: addr(frrtest.RouterV4), Port: 179, RouterID: addr(frrtest.NodeV4), ConnectTime: dur(time.Second)}
	state := func(prefix string) bgp.DesiredState {
		return bgp.DesiredState{Sessions: []bgp.Session{s4}, Routes: map[string][]bgp.Route{s4.Name: {
			{Prefix: pfx(prefix), Communities: []config.Community{std(65535, 120)}}}}}
	}
	if err := speaker.Apply(ctx, state("203.0.113.7/32")); err != nil {
		t.Fatal(err)
	}
	frrtest.Eventually(t, 60*time.Second, "route at the router", func() string {
		if !r.Prefixes("ipv4")["203.0.113.7/32"] {
			return "missing"
		}
		return ""
	})
	frrtest.Eventually(t, 30*time.Second, "Status through the status file", func() string {
		st := speaker.Status()
		if len(st) != 1 || st[0].Name != s4.Name || st[0].State != bgp.StateEstablished {
			return fmt.Sprintf("%+v", st)
		}
		return ""
	})
	gen := speaker.gen
	if err := speaker.Apply(ctx, state("203.0.113.7/32")); err != nil || speaker.gen != gen {
		t.Errorf("an unchanged state: err %v, generation %d -> %d", err, gen, speaker.gen)
	}

	// A configuration FRR rejects (the reloader's node options carry a
	// line FRR cannot parse) is reported by the speaker's next Apply, and
	// the last good routes stay.
	be.SetOptions(Options{Hostname: "lbs-node", IPForwarding: fwd4, IPv6Forwarding: fwd6, ExtraConfig: "this is not frr\n"})
	if err := speaker.Apply(ctx, state("203.0.113.8/32")); err != nil {
		t.Fatalf("first Apply of the bad state: %v", err)
	}
	frrtest.Eventually(t, 60*time.Second, "the reload error reaches the speaker", func() string {
		if err := speaker.Apply(ctx, state("203.0.113.8/32")); err == nil {
			return "no error yet"
		}
		return ""
	})
	if !r.Prefixes("ipv4")["203.0.113.7/32"] {
		t.Errorf("the last good route was withdrawn after a failed reload")
	}
}

// TestFileBackendSkipsWhatFRRCannotExpress: the speaker hands the reloader
// only sessions FRR can run and names the others in Apply's error; the
// rest of the state is handed over (before, one such session stopped every
// update of the node).
func TestFileBackendSkipsWhatFRRCannotExpress(t *testing.T) {
	dir := t.TempDir()
	be := NewFileBackend(dir)
	good := bgp.Session{Name: "good", MyASN: 64512, PeerASN: 64513, PeerAddr: addr("198.18.0.254"), Port: 179, RouterID: addr("198.18.0.1")}
	badVRF := good
	badVRF.Name, badVRF.PeerAddr, badVRF.VRF = "bad-vrf", addr("198.18.0.253"), "default"
	badPW := good
	badPW.Name, badPW.PeerAddr, badPW.Password = "bad-pw", addr("198.18.0.252"), "two words"
	d := bgp.DesiredState{Sessions: []bgp.Session{badVRF, good, badPW}, Routes: map[string][]bgp.Route{
		"good": {{Prefix: pfx("203.0.113.1/32")}}, "bad-vrf": {{Prefix: pfx("203.0.113.2/32")}}, "bad-pw": {{Prefix: pfx("203.0.113.3/32")}},
	}}
	skipped, rest := bgp.SplitSkipped(be.Apply(context.Background(), d))
	if rest != nil || len(skipped) != 2 || skipped["bad-vrf"] == nil || skipped["bad-pw"] == nil {
		t.Fatalf("skipped %v, rest %v; want bad-vrf and bad-pw skipped, nothing else", skipped, rest)
	}
	raw, err := os.ReadFile(filepath.Join(dir, DesiredFile))
	if err != nil {
		t.Fatal(err)
	}
	var doc desiredDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.State.Sessions) != 1 || doc.State.Sessions[0].Name != "good" || len(doc.State.Routes) != 1 || len(doc.State.Routes["good"]) != 1 {
		t.Fatalf("handed over %+v, want the good session and its route only", doc.State)
	}
	if _, err := Render(doc.State, Options{}); err != nil {
		t.Errorf("the reloader could not render what it was handed: %v", err)
	}
}
