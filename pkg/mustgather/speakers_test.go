package mustgather

import (
	"context"
	"errors"
	"sort"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/lbstack/lbstack/pkg/speaker"
)

// TestGatherSpeakerDecisions: what is collected from a speaker pod and
// what is recorded as not collected, for each kind of pod and failure.
func TestGatherSpeakerDecisions(t *testing.T) {
	healthy := speakerExec("router bgp 64512\n")
	failing := func(match string) func(execCall) execResult {
		return func(c execCall) execResult {
			if strings.Contains(c.cmd, match) {
				return execResult{Err: utilexec.CodeExitError{Err: errors.New("x"), Code: 1}, Stderr: []byte("boom"), Stdout: []byte("partial\n")}
			}
			return healthy(c)
		}
	}
	frr := func(name, node string) *corev1.Pod {
		return runningPod(name, node, map[string]string{"component": "speaker"}, "speaker", "frr", "reloader")
	}
	native := runningPod("native", "n2", map[string]string{"component": "speaker"}, "speaker")
	pending := frr("pending", "n3")
	pending.Status.Phase = corev1.PodPending
	unscheduled := frr("lost", "")
	unscheduled.Status.Phase = corev1.PodPending
	noSpeaker := runningPod("odd", "n4", map[string]string{"component": "speaker"}, "frr", "reloader")
	flagged := runningPod("flagged", "n5", map[string]string{"component": "speaker"}, "speaker")
	flagged.Spec.Containers[0].Args = []string{"--health-probe-bind-address=127.0.0.1:7473"}

	cases := []struct {
		name  string
		pods  []runtime.Object
		exec  func(execCall) execResult
		files map[string]string // exact contents ("": must be absent)
		// wantFailures are the failures recorded, sorted.
		wantFailures []string
		wantCmds     []string // commands that must have been run (pod container: cmd)
	}{
		{name: "a pod that is not running: pod.txt and a failure, nothing run",
			pods:         []runtime.Object{pending},
			files:        map[string]string{"speakers/n3/pod.txt": "pod: metallb-system/pending\nphase: Pending\n", "speakers/n3/frr/running-config.txt": ""},
			wantFailures: []string{"speakers/n3/: speaker pod metallb-system/pending on n3 is Pending: nothing can be run in it"}},
		{name: "an unscheduled pod is filed under its name",
			pods:         []runtime.Object{unscheduled},
			files:        map[string]string{"speakers/unscheduled-lost/pod.txt": "pod: metallb-system/lost\nphase: Pending\n"},
			wantFailures: []string{"speakers/unscheduled-lost/: speaker pod metallb-system/lost on unscheduled-lost is Pending: nothing can be run in it"}},
		{name: "native backend: no FRR, routing read by lbstack in the speaker container",
			pods: []runtime.Object{native},
			exec: func(c execCall) execResult {
				if strings.HasPrefix(c.cmd, "/usr/bin/lbstack node-routing") {
					return execResult{Stdout: []byte(c.cmd + "\n")}
				}
				return healthy(c)
			},
			files: map[string]string{
				"speakers/n2/frr/NONE.txt":           "This speaker runs the native (GoBGP) backend: there is no FRR container.\n",
				"speakers/n2/node/ip-rule.txt":       "/usr/bin/lbstack node-routing rules\n",
				"speakers/n2/node/ip6-route-all.txt": "/usr/bin/lbstack node-routing routes --family 6\n",
			},
			wantCmds: []string{"native speaker: /usr/bin/lbstack node-routing rules", "native speaker: /usr/bin/lbstack node-routing routes --family 6"}},
		{name: "a failing vtysh command: its output kept, failure recorded, the rest collected",
			pods: []runtime.Object{frr("s1", "n1")}, exec: failing("show bgp vrf all ipv6 json"),
			files:        map[string]string{"speakers/n1/frr/bgp-ipv6.json": "partial\n", "speakers/n1/frr/bgp-ipv4.json": "{}\n", "speakers/n1/node/ip-rule.txt": "ip rule output\n"},
			wantFailures: []string{`speakers/n1/frr/bgp-ipv6.json: vtysh -c "show bgp vrf all ipv6 json" in metallb-system/s1: exit code 1: boom`}},
		{name: "a file that cannot be read is not written",
			pods: []runtime.Object{frr("s1", "n1")}, exec: failing("cat /etc/lbstack-frr/lbstack-rendered.conf"),
			files:        map[string]string{"speakers/n1/frr/rendered.conf": "", "speakers/n1/frr/frr.conf": "contents of /etc/frr/frr.conf\n"},
			wantFailures: []string{"speakers/n1/frr/rendered.conf: cat /etc/lbstack-frr/lbstack-rendered.conf in container reloader of metallb-system/s1: exit code 1: boom"}},
		{name: "a failing routing command is not written",
			pods: []runtime.Object{frr("s1", "n1")}, exec: failing("ip -6 rule"),
			files:        map[string]string{"speakers/n1/node/ip6-rule.txt": "", "speakers/n1/node/ip-rule.txt": "ip rule output\n"},
			wantFailures: []string{"speakers/n1/node/ip6-rule.txt: ip -6 rule in container frr of metallb-system/s1: exit code 1: boom"}},
		{name: "no speaker container: its state is a failure",
			pods: []runtime.Object{noSpeaker}, exec: healthy,
			files:        map[string]string{"speakers/n4/speaker-state.json": "", "speakers/n4/frr/bgp-summary.json": "{}\n"},
			wantFailures: []string{"speakers/n4/speaker-state.json: pod metallb-system/odd has no speaker container"}},
		{name: "speaker state that cannot be read",
			pods: []runtime.Object{frr("s1", "n1")}, exec: failing("speaker-state"),
			files:        map[string]string{"speakers/n1/speaker-state.json": ""},
			wantFailures: []string{"speakers/n1/speaker-state.json: lbstack speaker-state in metallb-system/s1: exit code 1: boom"}},
		{name: "speaker state that is not JSON: written, and a failure",
			pods: []runtime.Object{frr("s1", "n1")},
			exec: func(c execCall) execResult {
				if strings.Contains(c.cmd, "speaker-state") {
					return execResult{Stdout: []byte("404 page not found\n")}
				}
				return healthy(c)
			},
			files:        map[string]string{"speakers/n1/speaker-state.json": "404 page not found\n"},
			wantFailures: []string{"speakers/n1/speaker-state.json: not the speaker's state: invalid character 'p' after top-level value"}},
		{name: "the speaker's state is read where its flag says",
			pods:     []runtime.Object{flagged},
			exec:     func(c execCall) execResult { return healthy(c) },
			wantCmds: []string{"flagged speaker: /usr/bin/lbstack speaker-state --url http://127.0.0.1:7473" + speaker.DebugStatePath},
			wantFailures: []string{
				"speakers/n5/node/ip-route-all.txt: /usr/bin/lbstack node-routing routes in container speaker of metallb-system/flagged: unexpected command /usr/bin/lbstack node-routing routes",
				"speakers/n5/node/ip-rule.txt: /usr/bin/lbstack node-routing rules in container speaker of metallb-system/flagged: unexpected command /usr/bin/lbstack node-routing rules",
				"speakers/n5/node/ip6-route-all.txt: /usr/bin/lbstack node-routing routes --family 6 in container speaker of metallb-system/flagged: unexpected command /usr/bin/lbstack node-routing routes --family 6",
				"speakers/n5/node/ip6-rule.txt: /usr/bin/lbstack node-routing rules --family 6 in container speaker of metallb-system/flagged: unexpected command /usr/bin/lbstack node-routing rules --family 6",
			}},
		{name: "a pod whose every command fails does not stop the others",
			pods: []runtime.Object{frr("dead", "n1"), frr("s2", "n2")},
			exec: func(c execCall) execResult {
				if c.pod == "dead" {
					return execResult{Err: errors.New("container not found")}
				}
				return healthy(c)
			},
			files: map[string]string{"speakers/n2/frr/running-config.txt": "router bgp 64512\n", "speakers/n1/speaker-state.json": "", "speakers/n1/pod.txt": "pod: metallb-system/dead\nphase: Running\n"},
		},
		{name: "no speaker pod: NONE.txt",
			pods:  []runtime.Object{runningPod("controller", "n1", map[string]string{"component": "controller"}, "controller")},
			files: map[string]string{"speakers/NONE.txt": "No speaker pod in namespace metallb-system.\n"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := &cluster{resources: withResources(), kube: tc.pods, exec: tc.exec}
			g := c.gatherer(t)
			g.res.Namespace = ns
			g.gatherPods(context.Background())
			g.failures = nil // pod logs are not under test here
			g.gatherSpeakers(context.Background())
			files := tree(t, g.opts.DestDir)
			for f, want := range tc.files {
				got, ok := files[f]
				if want == "" && ok {
					t.Errorf("%s written: %q", f, got)
				} else if want != "" && got != want {
					t.Errorf("%s = %q, want %q", f, got, want)
				}
			}
			failures := append([]string(nil), g.failures...)
			sort.Strings(failures)
			if tc.name == "a pod whose every command fails does not stop the others" {
				// Every command of the dead pod fails; none of s2's.
				for _, f := range failures {
					if !strings.Contains(f, "metallb-system/dead") {
						t.Errorf("failure not about the dead pod: %s", f)
					}
				}
				if len(failures) != len(frrCommands)+len(frrFiles)+len(routingCommands)+1 {
					t.Errorf("%d failures for the dead pod:\n%s", len(failures), strings.Join(failures, "\n"))
				}
				if _, ok := g.snap.speakerState["n2"]; !ok {
					t.Errorf("n2's state missing from the summary")
				}
			} else if strings.Join(failures, "\n") != strings.Join(tc.wantFailures, "\n") {
				t.Errorf("failures:\n%s\nwant:\n%s", strings.Join(failures, "\n"), strings.Join(tc.wantFailures, "\n"))
			}
			var ran []string
			for _, e := range c.execs {
				ran = append(ran, e.pod+" "+e.container+": "+e.cmd)
			}
			for _, want := range tc.wantCmds {
				found := false
				for _, r := range ran {
					found = found || r == want
				}
				if !found {
					t.Errorf("%q not run; ran:\n%s", want, strings.Join(ran, "\n"))
				}
			}
		})
	}
}

func TestReloaderStatusFeedsTheSummary(t *testing.T) {
	c := &cluster{resources: withResources(), kube: []runtime.Object{runningPod("s1", "n1", map[string]string{"component": "speaker"}, "speaker", "frr", "reloader")},
		exec: speakerExec("router bgp 64512\n")}
	g := c.gatherer(t)
	g.res.Namespace = ns
	g.gatherPods(context.Background())
	g.gatherSpeakers(context.Background())
	rs := g.snap.reloaderStatus["n1"]
	if rs == nil || len(rs.Sessions) != 1 || rs.Sessions[0].Name != "edge" || rs.Sessions[0].State != "Established" {
		t.Fatalf("reloader status %+v", rs)
	}
	st := g.snap.speakerState["n1"]
	if st == nil || len(st.Sessions) != 1 || st.Sessions[0].Advertised != 2 {
		t.Fatalf("speaker state %+v", st)
	}
}

// TestWithheldSpeakerOutput: with Secrets unknown, command output is
// withheld but pod.txt, written by must-gather itself, is not.
func TestWithheldSpeakerOutput(t *testing.T) {
	c := &cluster{resources: withResources(), kube: []runtime.Object{runningPod("s1", "n1", map[string]string{"component": "speaker"}, "speaker", "frr", "reloader")},
		exec: speakerExec("router bgp 64512\n")}
	g := c.gatherer(t)
	g.res.Namespace = ns
	g.scrub.markIncomplete("the Secrets of namespace metallb-system could not be read (forbidden)")
	g.gatherPods(context.Background())
	g.gatherSpeakers(context.Background())
	files := tree(t, g.opts.DestDir)
	for _, f := range []string{"speakers/n1/frr/running-config.txt", "speakers/n1/node/ip-rule.txt", "speakers/n1/speaker-state.json", "namespaces/metallb-system/pods/s1/logs/speaker.log"} {
		if _, ok := files[f]; ok {
			t.Errorf("%s written", f)
		}
		if !strings.HasPrefix(files[f+".WITHHELD.txt"], "Withheld: the Secrets of namespace metallb-system could not be read (forbidden), so this output (") {
			t.Errorf("%s.WITHHELD.txt = %q", f, files[f+".WITHHELD.txt"])
		}
	}
	if files["speakers/n1/pod.txt"] != "pod: metallb-system/s1\nphase: Running\n" {
		t.Errorf("pod.txt = %q", files["speakers/n1/pod.txt"])
	}
}
