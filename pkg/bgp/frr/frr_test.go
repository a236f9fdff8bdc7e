package frr

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the renderer's output")

func addr(s string) netip.Addr           { return netip.MustParseAddr(s) }
func pfx(s string) netip.Prefix          { return netip.MustParsePrefix(s) }
func dur(d time.Duration) *time.Duration { return &d }
func ptr[T any](v T) *T                  { return &v }

func std(hi, lo uint16) config.Community {
	return config.Community{Type: config.StandardCommunity, High: hi, Low: lo}
}

func large(g, l1, l2 uint32) config.Community {
	return config.Community{Type: config.LargeCommunity, Global: g, Local1: l1, Local2: l2}
}

// v4 is a minimal IPv4 eBGP session; tests change what they need.
func v4(name, peer string) bgp.Session {
	return bgp.Session{Name: name, MyASN: 64512, PeerASN: 64513, PeerAddr: addr(peer), Port: 179, RouterID: addr("198.18.0.1")}
}

var fullProfile = config.BFDProfile{
	Name: "full", ReceiveInterval: 250, TransmitInterval: 200, DetectMultiplier: 5,
	EchoInterval: 60, EchoMode: true, PassiveMode: true, MinimumTTL: 250,
}

var defaultProfile = config.BFDProfile{
	Name:             "default-profile",
	ReceiveInterval:  config.DefaultBFDReceiveInterval,
	TransmitInterval: config.DefaultBFDTransmitInterval,
	DetectMultiplier: config.DefaultBFDDetectMultiplier,
	EchoInterval:     config.DefaultBFDEchoInterval,
	MinimumTTL:       config.DefaultBFDMinimumTTL,
}

type goldenCase struct {
	name  string
	state bgp.DesiredState
	opts  Options
}

func goldenCases() []goldenCase {
	return []goldenCase{
		{
			name: "ipv4-minimal",
			state: bgp.DesiredState{
				Sessions: []bgp.Session{v4("router", "198.18.0.254")},
				Routes:   map[string][]bgp.Route{"router": {{Prefix: pfx("203.0.113.10/32")}}},
			},
			opts: Options{Hostname: "node-1", IPForwarding: ptr(false), IPv6Forwarding: ptr(false)},
		},
		{
			name: "no-routes",
			state: bgp.DesiredState{
				Sessions: []bgp.Session{v4("router", "198.18.0.254")},
			},
		},
		{
			// Every Session field set on an IPv4 eBGP session.
			name: "ipv4-all-fields",
			state: bgp.DesiredState{
				Sessions: []bgp.Session{func() bgp.Session {
					s := v4("all-fields", "198.18.0.254")
					s.LocalASN = 64600
					s.Port = 1179
					s.SourceAddr = addr("198.18.0.1")
					s.HoldTime, s.KeepaliveTime = dur(90*time.Second), dur(30*time.Second)
					s.ConnectTime = dur(10 * time.Second)
					s.Password = "s3cr!t#pw"
					s.EBGPMultiHop = true
					s.GracefulRestart = true
					s.DualStack = true
					s.NextHopIPv4 = addr("198.18.0.10")
					s.NextHopIPv6 = addr("2001:db8:18::1")
					s.BFDProfile = &fullProfile
					return s
				}()},
				Routes: map[string][]bgp.Route{"all-fields": {
					{Prefix: pfx("203.0.113.10/32"), Communities: []config.Community{std(65000, 100), large(64512, 1, 2)}},
					{Prefix: pfx("203.0.113.11/32"), Communities: []config.Community{std(65000, 100), large(64512, 1, 2)}},
					{Prefix: pfx("203.0.113.12/32")},
					{Prefix: pfx("2001:db8:1::10/128"), Communities: []config.Community{std(65000, 200)}},
					// Dropped by Normalize on eBGP: LOCAL_PREF is iBGP only.
					{Prefix: pfx("198.51.100.0/24"), LocalPref: 200},
				}},
			},
			opts: Options{Hostname: "node-1"},
		},
		{
			// iBGP: local preference per group, hold time only (keepalive
			// derived), hold time 0 on a second session.
			name: "ibgp-local-pref",
			state: bgp.DesiredState{
				Sessions: []bgp.Session{
					func() bgp.Session {
						s := v4("ibgp", "198.18.0.254")
						s.PeerASN = 64512
						s.HoldTime = dur(9 * time.Second)
						return s
					}(),
					func() bgp.Session {
						s := v4("ibgp-no-keepalive", "198.18.0.253")
						s.PeerASN = 64512
						s.HoldTime, s.KeepaliveTime = dur(0), dur(0)
						s.KeepaliveTime = nil
						return s
					}(),
				},
				Routes: map[string][]bgp.Route{
					"ibgp": {
						{Prefix: pfx("203.0.113.10/32"), LocalPref: 200},
						{Prefix: pfx("203.0.113.11/32"), LocalPref: 200, Communities: []config.Community{std(65000, 1)}},
						{Prefix: pfx("203.0.113.12/32"), LocalPref: 300},
						{Prefix: pfx("203.0.113.13/32")},
						// Merged with the first: highest local-pref wins.
						{Prefix: pfx("203.0.113.10/32"), LocalPref: 100},
					},
					"ibgp-no-keepalive": {{Prefix: pfx("203.0.113.12/32"), LocalPref: 50}},
				},
			},
		},
		{
			// Single-hop IPv6 eBGP (disable-connected-check), multihop IPv6
			// eBGP (no check disabled), IPv6 iBGP.
			name: "ipv6",
			state: bgp.DesiredState{
				Sessions: []bgp.Session{
					func() bgp.Session {
						s := v4("v6-ebgp", "2001:db8:18::fe")
						s.SourceAddr = addr("2001:db8:18::1")
						return s
					}(),
					func() bgp.Session {
						s := v4("v6-multihop", "2001:db8:19::fe")
						s.EBGPMultiHop = true
						return s
					}(),
					func() bgp.Session {
						s := v4("v6-ibgp", "2001:db8:18::fd")
						s.PeerASN = 64512
						return s
					}(),
				},
				Routes: map[string][]bgp.Route{
					"v6-ebgp": {
						{Prefix: pfx("2001:db8:1::10/128"), Communities: []config.Community{large(1, 2, 3)}},
						// Not carried: IPv4 over an IPv6 session that is not dual-stack.
						{Prefix: pfx("203.0.113.10/32")},
					},
					"v6-multihop": {{Prefix: pfx("2001:db8:1::/64")}},
					"v6-ibgp":     {{Prefix: pfx("2001:db8:1::10/128"), LocalPref: 150}},
				},
			},
		},
		{
			name: "dual-stack",
			state: bgp.DesiredState{
				Sessions: []bgp.Session{
					func() bgp.Session {
						s := v4("ds-v4", "198.18.0.254")
						s.DualStack = true
						s.NextHopIPv6 = addr("2001:db8:18::1")
						return s
					}(),
					func() bgp.Session {
						s := v4("ds-v6", "2001:db8:18::fe")
						s.DualStack = true
						s.NextHopIPv4 = addr("198.18.0.1")
						return s
					}(),
				},
				Routes: map[string][]bgp.Route{
					"ds-v4": {{Prefix: pfx("203.0.113.10/32")}, {Prefix: pfx("2001:db8:1::10/128")}},
					"ds-v6": {{Prefix: pfx("203.0.113.10/32")}, {Prefix: pfx("2001:db8:1::10/128")}},
				},
			},
		},
		{
			// The same peer address and AS in the default VRF and two VRFs,
			// with another AS in one VRF.
			name: "vrf",
			state: bgp.DesiredState{
				Sessions: []bgp.Session{
					v4("default-vrf", "198.18.0.254"),
					func() bgp.Session {
						s := v4("red", "198.18.0.254")
						s.VRF = "red"
						return s
					}(),
					func() bgp.Session {
						s := v4("red-v6", "2001:db8:18::fe")
						s.VRF = "red"
						return s
					}(),
					func() bgp.Session {
						s := v4("blue", "198.18.0.254")
						s.VRF = "blue"
						s.MyASN = 64700
						s.RouterID = addr("198.18.1.1")
						return s
					}(),
				},
				Routes: map[string][]bgp.Route{
					"default-vrf": {{Prefix: pfx("203.0.113.10/32")}},
					"red":         {{Prefix: pfx("203.0.113.20/32")}},
					"red-v6":      {{Prefix: pfx("2001:db8:1::20/128")}},
					"blue":        {{Prefix: pfx("198.51.100.0/24")}},
				},
			},
		},
		{
			name: "dynamic-asn",
			state: bgp.DesiredState{
				Sessions: []bgp.Session{
					func() bgp.Session {
						s := v4("dyn-internal", "198.18.0.254")
						s.PeerASN, s.DynamicASN = 0, "internal"
						return s
					}(),
					func() bgp.Session {
						s := v4("dyn-external", "2001:db8:18::fe")
						s.PeerASN, s.DynamicASN = 0, "external"
						return s
					}(),
				},
				Routes: map[string][]bgp.Route{
					"dyn-internal": {{Prefix: pfx("203.0.113.10/32"), LocalPref: 120}},
					"dyn-external": {{Prefix: pfx("2001:db8:1::10/128"), LocalPref: 120}},
				},
			},
		},
		{
			// Two profiles, one shared by two sessions; a session without BFD.
			name: "bfd-profiles",
			state: bgp.DesiredState{
				Sessions: []bgp.Session{
					func() bgp.Session {
						s := v4("bfd-a", "198.18.0.254")
						s.BFDProfile = &fullProfile
						return s
					}(),
					func() bgp.Session {
						s := v4("bfd-b", "198.18.0.253")
						s.BFDProfile = &defaultProfile
						return s
					}(),
					func() bgp.Session {
						s := v4("bfd-c", "2001:db8:18::fe")
						s.BFDProfile = &defaultProfile
						return s
					}(),
					v4("no-bfd", "198.18.0.252"),
				},
			},
		},
		{
			// Several sessions, each with its own routes and attributes.
			name: "multi-session",
			state: bgp.DesiredState{
				Sessions: []bgp.Session{
					v4("peer-b", "198.18.0.253"),
					v4("peer-a", "198.18.0.254"),
					func() bgp.Session {
						s := v4("peer-c", "198.18.0.252")
						s.PeerASN = 64512
						return s
					}(),
				},
				Routes: map[string][]bgp.Route{
					"peer-a": {
						{Prefix: pfx("203.0.113.10/32"), Communities: []config.Community{std(65000, 1)}},
						{Prefix: pfx("203.0.113.11/32")},
					},
					"peer-b": {
						{Prefix: pfx("203.0.113.11/32"), Communities: []config.Community{std(65000, 2), std(65000, 1)}},
						{Prefix: pfx("198.51.100.0/24"), Communities: []config.Community{large(4200000000, 0, 4294967295)}},
					},
					"peer-c": {
						{Prefix: pfx("203.0.113.12/32"), LocalPref: 250, Communities: []config.Community{std(65535, 65281)}},
					},
				},
			},
		},
		{
			// Node options: debug logging, forwarding on, extra config; a
			// session name that needs sanitising.
			name: "options",
			state: bgp.DesiredState{
				Sessions: []bgp.Session{v4("Peer With Spaces/and:colons", "198.18.0.254")},
				Routes:   map[string][]bgp.Route{"Peer With Spaces/and:colons": {{Prefix: pfx("203.0.113.10/32")}}},
			},
			opts: Options{
				Hostname: "worker-0.example", LogLevel: "debugging",
				IPForwarding: ptr(true), IPv6Forwarding: ptr(true),
				ExtraConfig: "ip prefix-list extra seq 5 deny any\n",
			},
		},
	}
}

func TestGolden(t *testing.T) {
	for _, tc := range goldenCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Render(tc.state, tc.opts)
			if err != nil {
				t.Fatalf("Render: %v", err)
			}
			// Rendering is deterministic, also with the input shuffled.
			shuffled := tc.state
			shuffled.Sessions = slices.Clone(tc.state.Sessions)
			slices.Reverse(shuffled.Sessions)
			again, err := Render(shuffled, tc.opts)
			if err != nil || again != got {
				t.Fatalf("Render of reversed sessions differs (err %v):\n%s", err, again)
			}
			path := filepath.Join("testdata", tc.name+".golden")
			if *update {
				if err := os.MkdirAll("testdata", 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test ./pkg/bgp/frr/ -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("%s differs from the rendered configuration (go test ./pkg/bgp/frr/ -update rewrites it):\n%s", path, lineDiff(string(want), got))
			}
		})
	}
}

// lineDiff is a crude diff: the first differing line and both texts' tails.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < max(len(w), len(g)); i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			return fmt.Sprintf("line %d:\n  want: %s\n  got:  %s\n--- got ---\n%s", i+1, wl, gl, got)
		}
	}
	return ""
}

// vtyshDryRun feeds a configuration to FRR's own parser (vtysh --dryrun)
// and fails the test on a non-zero exit or any output.
func vtyshDryRun(t *testing.T, vtysh, conf string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "frr.conf")
	if err := os.WriteFile(file, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(vtysh, "--dryrun", "-f", file)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err != nil || strings.TrimSpace(out.String()) != "" {
		t.Errorf("vtysh --dryrun -f %s: %v\n%s", file, err, out.String())
	}
}

func findVtysh(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("vtysh")
	if err != nil {
		t.Skip("vtysh (Debian package frr) is not installed: FRR's parser cannot check the rendered configurations")
	}
	return p
}

// TestGoldenAcceptedByFRR checks every golden configuration with FRR's
// own parser. FRR 8.4's dry run checks the syntax of the commands of the
// daemons vtysh knows (bgpd, bfdd, zebra among them), not their semantics.
func TestGoldenAcceptedByFRR(t *testing.T) {
	vtysh := findVtysh(t)
	files, err := filepath.Glob(filepath.Join("testdata", "*.golden"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden files (%v)", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			vtyshDryRun(t, vtysh, string(b))
		})
	}
}

// TestDryRunCatchesErrors makes sure the dry run is a real check here: a
// broken command must fail it.
func TestDryRunCatchesErrors(t *testing.T) {
	vtysh := findVtysh(t)
	file := filepath.Join(t.TempDir(), "bad.conf")
	if err := os.WriteFile(file, []byte("router bgp 64512\n neighbor 198.18.0.254 no-such-command\nexit\nbfd\n profile p\n  no-such-command 1\n exit\nexit\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(vtysh, "--dryrun", "-f", file).CombinedOutput()
	if err == nil {
		t.Fatalf("vtysh --dryrun accepted a broken configuration:\n%s", out)
	}
}

func TestVRFRendersRouterBGPVRF(t *testing.T) {
	s := v4("in-red", "198.18.0.254")
	s.VRF = "red"
	conf, err := Render(bgp.DesiredState{
		Sessions: []bgp.Session{s},
		Routes:   map[string][]bgp.Route{"in-red": {{Prefix: pfx("203.0.113.10/32")}}},
	}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(conf, "\nrouter bgp 64512 vrf red\n") {
		t.Fatalf("no `router bgp 64512 vrf red` in:\n%s", conf)
	}
	if strings.Contains(conf, "\nrouter bgp 64512\n") {
		t.Errorf("a default-VRF router for a VRF-only state:\n%s", conf)
	}
	vtyshDryRun(t, findVtysh(t), conf)
}

func TestRenderErrors(t *testing.T) {
	withs := func(mod func(*bgp.Session)) bgp.Session {
		s := v4("bad", "198.18.0.254")
		mod(&s)
		return s
	}
	tests := []struct {
		name     string
		sessions []bgp.Session
		opts     Options
		want     []string
	}{
		{"invalid session", []bgp.Session{withs(func(s *bgp.Session) { s.MyASN = 0 })}, Options{}, []string{`"bad"`, "myASN"}},
		{"password with space", []bgp.Session{withs(func(s *bgp.Session) { s.Password = "two words" })}, Options{}, []string{`session "bad"`, "whitespace"}},
		{"password too long", []bgp.Session{withs(func(s *bgp.Session) { s.Password = strings.Repeat("x", 81) })}, Options{}, []string{`session "bad"`, "80 bytes"}},
		{"password control", []bgp.Session{withs(func(s *bgp.Session) { s.Password = "a\nneighbor" })}, Options{}, []string{`session "bad"`, "control"}},
		{"hold too short", []bgp.Session{withs(func(s *bgp.Session) { s.HoldTime = dur(2 * time.Second) })}, Options{}, []string{`session "bad"`, "at least 3s"}},
		{"hold too long", []bgp.Session{withs(func(s *bgp.Session) { s.HoldTime = dur(70000 * time.Second) })}, Options{}, []string{`session "bad"`, "maximum"}},
		{"connect zero", []bgp.Session{withs(func(s *bgp.Session) { s.ConnectTime = dur(0) })}, Options{}, []string{`session "bad"`, "connect time"}},
		{"vrf default", []bgp.Session{withs(func(s *bgp.Session) { s.VRF = "default" })}, Options{}, []string{`session "bad"`, "default VRF"}},
		{"vrf too long", []bgp.Session{withs(func(s *bgp.Session) { s.VRF = "a-very-long-vrf-name" })}, Options{}, []string{`session "bad"`, "longer than 15"}},
		{"vrf space", []bgp.Session{withs(func(s *bgp.Session) { s.VRF = "re d" })}, Options{}, []string{`session "bad"`, "contains ' '"}},
		{"zone", []bgp.Session{withs(func(s *bgp.Session) { s.PeerAddr = addr("fe80::1%eth0") })}, Options{}, []string{`session "bad"`, "zone"}},
		{"mapped", []bgp.Session{withs(func(s *bgp.Session) { s.PeerAddr = addr("::ffff:198.18.0.254") })}, Options{}, []string{`session "bad"`, "IPv4-mapped"}},
		{"bfd range", []bgp.Session{withs(func(s *bgp.Session) {
			p := defaultProfile
			p.DetectMultiplier = 1
			s.BFDProfile = &p
		})}, Options{}, []string{`session "bad"`, "detectMultiplier 1 is out of range"}},
		{"bfd no name", []bgp.Session{withs(func(s *bgp.Session) { s.BFDProfile = &config.BFDProfile{} })}, Options{}, []string{`session "bad"`, "no name"}},
		{"two ASNs in a VRF", []bgp.Session{
			v4("a", "198.18.0.254"),
			withs(func(s *bgp.Session) { s.PeerAddr, s.MyASN = addr("198.18.0.253"), 64999 }),
		}, Options{}, []string{`session "bad"`, `session "a"`, "myASN 64999"}},
		{"two router IDs in a VRF", []bgp.Session{
			v4("a", "198.18.0.254"),
			withs(func(s *bgp.Session) { s.PeerAddr, s.RouterID = addr("198.18.0.253"), addr("198.18.9.9") }),
		}, Options{}, []string{`session "bad"`, `session "a"`, "router ID"}},
		{"same peer twice", []bgp.Session{
			v4("a", "198.18.0.254"),
			withs(func(s *bgp.Session) { s.Port = 1179 }),
		}, Options{}, []string{`session "bad"`, `session "a"`, "198.18.0.254"}},
		{"profile conflict", []bgp.Session{
			func() bgp.Session { s := v4("a", "198.18.0.253"); s.BFDProfile = &defaultProfile; return s }(),
			withs(func(s *bgp.Session) { p := defaultProfile; p.ReceiveInterval = 999; s.BFDProfile = &p }),
		}, Options{}, []string{`session "bad"`, `session "a"`, "default-profile"}},
		{"hostname", []bgp.Session{v4("a", "198.18.0.254")}, Options{Hostname: "two words"}, []string{"hostname"}},
		{"log level", []bgp.Session{v4("a", "198.18.0.254")}, Options{LogLevel: "loud"}, []string{"log level"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Render(bgp.DesiredState{Sessions: tc.sessions}, tc.opts)
			if err == nil {
				t.Fatal("Render succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestSameAddressInTwoVRFs(t *testing.T) {
	a := v4("a", "198.18.0.254")
	b := v4("b", "198.18.0.254")
	b.VRF = "red"
	if _, err := Render(bgp.DesiredState{Sessions: []bgp.Session{a, b}}, Options{}); err != nil {
		t.Fatalf("the same peer address in two VRFs is fine for FRR: %v", err)
	}
}

func TestSanitizeName(t *testing.T) {
	long := strings.Repeat("a", 60)
	tests := []struct {
		in    string
		limit int
		want  string
	}{
		{"peer-a", 48, "peer-a"},
		{"peer.a_b-C9", 48, "peer.a_b-C9"},
		{"", 48, "-" + hash8("")},
		{"a b", 48, "a_b-" + hash8("a b")},
		{"a/b:c", 48, "a_b_c-" + hash8("a/b:c")},
		{"é", 48, "_-" + hash8("é")},
		{long, 48, strings.Repeat("a", 39) + "-" + hash8(long)},
		{long, 60, long},
	}
	for _, tc := range tests {
		got := SanitizeName(tc.in, tc.limit)
		if got != tc.want {
			t.Errorf("SanitizeName(%q, %d) = %q, want %q", tc.in, tc.limit, got, tc.want)
		}
		if len(got) > tc.limit || !validName(got) {
			t.Errorf("SanitizeName(%q, %d) = %q: too long or invalid", tc.in, tc.limit, got)
		}
	}
	// Names that sanitise alike stay distinct.
	if SanitizeName("a b", 48) == SanitizeName("a/b", 48) {
		t.Error("a b and a/b sanitise to the same name")
	}
}

func hash8(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:8]
}

func TestTimers(t *testing.T) {
	tests := []struct {
		name          string
		ka, hold      *time.Duration
		wantKA, wantH int
		wantSet       bool
		wantErr       string
	}{
		{"unset", nil, nil, 0, 0, false, ""},
		{"both", dur(30 * time.Second), dur(90 * time.Second), 30, 90, true, ""},
		{"hold only", nil, dur(90 * time.Second), 30, 90, true, ""},
		{"keepalive only", dur(20 * time.Second), nil, 20, 60, true, ""},
		{"fractions dropped", dur(1500 * time.Millisecond), dur(4500 * time.Millisecond), 1, 4, true, ""},
		{"hold zero", dur(0), dur(0), 0, 0, true, ""},
		{"hold zero keepalive set", dur(10 * time.Second), dur(0), 0, 0, true, ""},
		{"hold 2s", nil, dur(2 * time.Second), 0, 0, false, "at least 3s"},
		{"too long", dur(65536 * time.Second), dur(65536 * time.Second), 0, 0, false, "maximum"},
		{"negative", dur(-time.Second), dur(3 * time.Second), 0, 0, false, "negative"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ka, h, set, err := timers(tc.ka, tc.hold)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || ka != tc.wantKA || h != tc.wantH || set != tc.wantSet {
				t.Fatalf("timers = %d %d %v %v, want %d %d %v", ka, h, set, err, tc.wantKA, tc.wantH, tc.wantSet)
			}
		})
	}
}

// TestAssignTags: prefixes with the same announcement set (sessions,
// their attributes, family) share a tag, any difference makes another;
// each session's route-map OUT has one entry per tag it announces, with
// its own attributes for it.
func TestAssignTags(t *testing.T) {
	a, b := v4("a", "198.18.0.254"), v4("b", "198.18.0.253")
	a.DualStack = true
	c1 := []config.Community{std(1, 1)}
	d := bgp.DesiredState{Sessions: []bgp.Session{a, b}, Routes: map[string][]bgp.Route{
		"a": {
			{Prefix: pfx("203.0.113.1/32"), Communities: c1},
			{Prefix: pfx("203.0.113.2/32"), Communities: c1},
			{Prefix: pfx("203.0.113.3/32"), Communities: c1},
			{Prefix: pfx("203.0.113.4/32")},
			{Prefix: pfx("2001:db8::1/128"), Communities: c1},
		},
		"b": {
			{Prefix: pfx("203.0.113.1/32")},
			{Prefix: pfx("203.0.113.2/32")},
			{Prefix: pfx("203.0.113.5/32"), Communities: []config.Community{std(1, 1), large(1, 2, 3)}},
		},
	}}
	r, err := render(d, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rt := r.m.routers[0]
	tag := map[string]uint32{}
	for i, p := range rt.networks4 {
		tag[p.String()] = rt.tags4[i]
	}
	tag["2001:db8::1/128"] = rt.tags6[0]
	distinct := map[uint32]bool{}
	for _, t := range tag {
		distinct[t] = true
	}
	// .1 and .2 share a set (a with 1:1, b plain); .3 (a alone), .4 (a
	// plain), .5 (b alone) and the IPv6 prefix each have their own.
	if tag["203.0.113.1/32"] != tag["203.0.113.2/32"] || len(distinct) != 5 || len(r.m.tags) != 5 {
		t.Errorf("tags %v (in use %v): want .1 and .2 to share one, five in all", tag, r.m.tags)
	}
	type flat struct {
		tag       uint32
		v6        bool
		std       string
		large     string
		localPref uint32
	}
	entries := func(n *neighbor) []flat {
		var out []flat
		seqs := map[int]bool{}
		for _, e := range n.entries {
			if e.seq < 1 || e.seq > maxEntrySeq || seqs[e.seq] || e.seq != homeEntrySeq(e.tag) {
				t.Errorf("%s: entry of tag %d at %d", n.s.Name, e.tag, e.seq)
			}
			seqs[e.seq] = true
			out = append(out, flat{e.tag, e.v6, strings.Join(e.std, " "), strings.Join(e.large, " "), e.localPref})
		}
		slices.SortFunc(out, func(a, b flat) int { return cmp.Compare(a.tag, b.tag) })
		return out
	}
	sortFlat := func(fs []flat) []flat {
		slices.SortFunc(fs, func(a, b flat) int { return cmp.Compare(a.tag, b.tag) })
		return fs
	}
	wantA := sortFlat([]flat{
		{tag["203.0.113.1/32"], false, "1:1", "", 0},
		{tag["203.0.113.3/32"], false, "1:1", "", 0},
		{tag["203.0.113.4/32"], false, "", "", 0},
		{tag["2001:db8::1/128"], true, "1:1", "", 0},
	})
	wantB := sortFlat([]flat{
		{tag["203.0.113.1/32"], false, "", "", 0},
		{tag["203.0.113.5/32"], false, "1:1", "1:2:3", 0},
	})
	if got := entries(rt.neighbors[0]); !slices.Equal(got, wantA) {
		t.Errorf("a's entries:\n got %+v\nwant %+v", got, wantA)
	}
	if got := entries(rt.neighbors[1]); !slices.Equal(got, wantB) {
		t.Errorf("b's entries:\n got %+v\nwant %+v", got, wantB)
	}
}

func TestIsWord(t *testing.T) {
	for s, want := range map[string]bool{"node-1": true, "a.b": true, "": false, "a b": false, "!x": false, "#x": false, "a\tb": false, "é": false} {
		if got := isWord(s); got != want {
			t.Errorf("isWord(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestNodeForwarding(t *testing.T) {
	if _, err := os.Stat(procIPv6Forwarding); err != nil {
		t.Skipf("no %s here: %v", procIPv6Forwarding, err)
	}
	v4, v6, err := NodeForwarding()
	if err != nil || v4 == nil || v6 == nil {
		t.Fatalf("NodeForwarding = %v %v %v", v4, v6, err)
	}
	conf, err := Render(bgp.DesiredState{}, Options{IPForwarding: v4, IPv6Forwarding: v6})
	if err != nil {
		t.Fatal(err)
	}
	want := map[bool]string{true: "\nip forwarding\n", false: "\nno ip forwarding\n"}[*v4]
	if !strings.Contains(conf, want) {
		t.Errorf("node forwarding %v, configuration lacks %q:\n%s", *v4, want, conf)
	}
}
