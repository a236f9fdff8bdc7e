package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/lbstack/lbstack/pkg/speaker"
	"github.com/lbstack/lbstack/test/lab"
)

// frrMustGather (TestBGP/frr/MustGather) runs the must-gather image's /usr/bin/gather (the
// lbstack binary behind it) against bgp-ecmp-bfd running on FRR, with a
// BGP password and the memberlist key in the cluster and a Service whose
// requested pool does not exist, and checks the layout docs/must-gather.md
// promises: real FRR output from every speaker, logs of every container,
// the summary's addresses, pools, announcing nodes and the missing pool as
// the cause, and no secret value anywhere.
func frrMustGather(t *testing.T, l *lab.Lab, _ string) {
	ctx := context.Background()
	useECMPBFD(t, l)
	ip := ingressIPs(t, l, "default", "my-nginx-svc", 1)[0]

	// A password-protected peer nobody answers (a lab address): FRR's
	// running configuration then holds the password, as in production.
	const password = "e2e-gather-md5-Secret"
	// The plain password carries the characters JSON escapes (<, >, &); the
	// short one is under the 4 bytes a value scrubber would ignore.
	const plainPassword = "e2e<gather>&plain-Secret"
	const shortPassword = "Zq7"
	applyYAML(t, l, "gather-secrets", `apiVersion: v1
kind: Secret
metadata:
  name: e2e-gather-password
  namespace: metallb-system
type: kubernetes.io/basic-auth
stringData:
  password: `+password+`
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: e2e-gather-protected
  namespace: metallb-system
spec:
  myASN: 65001
  peerASN: 65010
  peerAddress: 198.18.0.250
  passwordSecret: {name: e2e-gather-password}
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: e2e-gather-plain
  namespace: metallb-system
spec:
  myASN: 65001
  peerASN: 65011
  peerAddress: 198.18.0.251
  password: '`+plainPassword+`'
---
apiVersion: metallb.io/v1beta2
kind: BGPPeer
metadata:
  name: e2e-gather-short
  namespace: metallb-system
spec:
  myASN: 65001
  peerASN: 65012
  peerAddress: 198.18.0.252
  password: `+shortPassword+`
`)
	lbService(t, l, "default", "e2e-nopool", "nginx", func(s *corev1.Service) {
		s.Annotations = map[string]string{"metallb.io/address-pool": "no-such-pool"}
	})
	t.Cleanup(func() {
		_ = l.Kube.CoreV1().Services("default").Delete(context.Background(), "e2e-nopool", metav1.DeleteOptions{})
	})
	// FRR must carry the protected neighbor before the gather, or the
	// redaction would be tested on nothing: wait for it in every speaker's
	// frr.conf (the text FRR accepted).
	eventually(t, 60*time.Second, "every FRR accepts the password-protected neighbor", func() (bool, string) {
		pods, err := l.Kube.CoreV1().Pods(lab.StackNamespace).List(ctx, metav1.ListOptions{LabelSelector: "component=speaker"})
		if err != nil {
			return false, err.Error()
		}
		n := 0
		for _, p := range pods.Items {
			data, err := l.Kubectl(ctx, "-n", lab.StackNamespace, "exec", p.Name, "-c", "reloader", "--", "cat", "/etc/frr/frr.conf")
			if err == nil && strings.Contains(data, "neighbor 198.18.0.250 password") &&
				strings.Contains(data, "neighbor 198.18.0.251 password") && strings.Contains(data, "neighbor 198.18.0.252 password "+shortPassword) {
				n++
			}
		}
		return n == l.State.Nodes, fmt.Sprintf("%d of %d", n, l.State.Nodes)
	})

	// The gather is a snapshot: take it with every session up.
	// The gather is a snapshot and the checks below need every node
	// announcing during it; a session that flaps meanwhile (BFD at 3 x
	// 25 ms does, on two busy cores, and the gather keeps them busy) makes
	// the snapshot say so. Such a snapshot is taken again, up to 3 times.
	var dest string
	for attempt := 1; ; attempt++ {
		waitSessions(t, l, nodeAddrs(allNodes(l)...), 60*time.Second)
		waitBFDUp(t, l)
		eventually(t, 60*time.Second, "ServiceBGPStatus names bgp-peer on every node", func() (bool, string) {
			out, err := l.Kubectl(ctx, "get", "servicebgpstatus", "-A", "-l", "metallb.io/service-name=my-nginx-svc",
				"-o", `jsonpath={range .items[*]}{.status.node}={.status.peers}{" "}{end}`)
			return err == nil && strings.Count(out, `"bgp-peer"`) == l.State.Nodes, out
		})
		dest = filepath.Join(t.TempDir(), "must-gather")
		cmd := exec.Command(filepath.Join(l.State.Root, "hack", "must-gather", "gather"), "--kubeconfig", l.State.Kubeconfig())
		cmd.Env = append(os.Environ(), "LBSTACK="+l.State.LbstackBinary, "MUST_GATHER_DEST="+dest, "MUST_GATHER_SINCE=2h")
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		t.Logf("gather took %s", took.Round(time.Millisecond))
		if err != nil {
			errs, _ := os.ReadFile(filepath.Join(dest, "errors.txt"))
			t.Fatalf("gather failed: %v\n%s\nerrors.txt:\n%s", err, out, errs)
		}
		flapped := sessionsRestartedWithin(t, l, took)
		if len(flapped) == 0 || attempt == 3 {
			break
		}
		t.Logf("sessions %v went down and up during the gather: gathering again", flapped)
	}
	read := func(rel string) string {
		t.Helper()
		data, err := os.ReadFile(filepath.Join(dest, rel))
		if err != nil {
			t.Errorf("%s: %v", rel, err)
		}
		return string(data)
	}
	if v := read("version"); !strings.HasPrefix(v, "lbstack/must-gather\n") {
		t.Errorf("version = %q", v)
	}
	if e := read("errors.txt"); e != "" {
		t.Errorf("errors.txt is not empty:\n%s", e)
	}
	for rel, want := range map[string][]string{
		"metallb.io/metallbs.yaml":                          {"name: metallb"},
		"metallb.io/ipaddresspools.yaml":                    {"name: first-pool"},
		"metallb.io/bgppeers.yaml":                          {"name: bgp-peer", "name: e2e-gather-plain"},
		"metallb.io/bfdprofiles.yaml":                       {"name: bfdprofile"},
		"metallb.io/servicebgpstatuses.yaml":                {"my-nginx-svc"},
		"metallb.io/configurationstates.yaml":               {"kind: ConfigurationState"},
		"namespaces/metallb-system/daemonsets.yaml":         {"name: lbstack-speaker"},
		"namespaces/metallb-system/deployments.yaml":        {"name: lbstack-controller"},
		"namespaces/metallb-system/secrets.txt":             {"e2e-gather-password\tkubernetes.io/basic-auth"},
		"services/default/my-nginx-svc/service.yaml":        {ip},
		"services/default/my-nginx-svc/endpointslices.yaml": {"kubernetes.io/service-name: my-nginx-svc"},
		"services/default/e2e-nopool/events.yaml":           {"AllocationFailed"},
		"cluster/nodes.yaml":                                {"lbl-node1"},
	} {
		text := read(rel)
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s does not contain %q", rel, w)
			}
		}
	}

	// Every container of every pod of the stack has its log.
	pods, err := l.Kube.CoreV1().Pods(lab.StackNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range pods.Items {
		// Init containers that copy files print nothing; every other
		// container logs at start.
		for _, c := range p.Spec.InitContainers {
			rel := filepath.Join("namespaces", lab.StackNamespace, "pods", p.Name, "logs", c.Name+".log")
			if _, err := os.Stat(filepath.Join(dest, rel)); err != nil {
				t.Error(err)
			}
		}
		for _, c := range p.Spec.Containers {
			rel := filepath.Join("namespaces", lab.StackNamespace, "pods", p.Name, "logs", c.Name+".log")
			if fi, err := os.Stat(filepath.Join(dest, rel)); err != nil || fi.Size() == 0 {
				t.Errorf("%s: missing or empty (%v)", rel, err)
			}
		}
		if _, err := os.Stat(filepath.Join(dest, "namespaces", lab.StackNamespace, "pods", p.Name, "pod.yaml")); err != nil {
			t.Error(err)
		}
	}

	// Real FRR output and the speaker's view, from every speaker.
	for _, n := range allNodes(l) {
		node := lab.NodeName(n)
		dir := "speakers/" + node + "/"
		if rc := read(dir + "frr/running-config.txt"); !strings.Contains(rc, "router bgp 65001") || !strings.Contains(rc, "neighbor 198.18.0.250 password <redacted>") {
			t.Errorf("%s: running-config lacks router bgp 65001 or the masked password:\n%s", node, rc)
		}
		for _, f := range []string{"bgp-summary.json", "bgp-ipv4.json", "bgp-ipv6.json", "bgp-neighbors.json", "bfd-peers.json", "reloader-status.json"} {
			var v any
			if err := json.Unmarshal([]byte(read(dir+"frr/"+f)), &v); err != nil {
				t.Errorf("%s frr/%s is not JSON: %v", node, f, err)
			}
		}
		if s := read(dir + "frr/bgp-summary.json"); !strings.Contains(s, "198.18.0.254") {
			t.Errorf("%s: bgp summary does not show the router", node)
		}
		// The speaker's real BFD session with the router, in whatever
		// state it is at that moment: at 3 x 25 ms a busy 2-core machine
		// (the gather itself loads it) lets sessions flap now and then.
		if s := read(dir + "frr/bfd-peers.json"); !strings.Contains(s, `"peer":"198.18.0.254"`) || !strings.Contains(s, `"status":`) {
			t.Errorf("%s: the router is not a BFD peer in %s", node, s)
		}
		for _, f := range []string{"frr/frr.conf", "frr/rendered.conf"} {
			if s := read(dir + f); !strings.Contains(s, "router bgp 65001") {
				t.Errorf("%s %s lacks router bgp 65001", node, f)
			}
		}
		if s := read(dir + "node/ip-route-all.txt"); !strings.Contains(s, "198.18.0.0/24") {
			t.Errorf("%s: ip route show table all lacks the node segment:\n%s", node, s)
		}
		read(dir + "node/ip-rule.txt")
		var st speaker.DebugState
		if err := json.Unmarshal([]byte(read(dir+"speaker-state.json")), &st); err != nil {
			t.Errorf("%s speaker-state.json: %v", node, err)
		} else if st.Node != node || len(st.Sessions) == 0 || len(st.BGPServices) == 0 {
			t.Errorf("%s speaker state: %+v", node, st)
		}
	}

	sum := read("summary.txt")
	t.Logf("summary.txt:\n%s", sum)
	for _, w := range []string{"default/my-nginx-svc", ip, "first-pool", "bgp-peer", "Established",
		"default/e2e-nopool has no address", `"no-such-pool"`} {
		if !strings.Contains(sum, w) {
			t.Errorf("summary.txt does not mention %q", w)
		}
	}
	for _, n := range allNodes(l) {
		if !strings.Contains(sum, lab.NodeName(n)+" (peers bgp-peer)") {
			t.Errorf("summary.txt does not name %s as announcing my-nginx-svc", lab.NodeName(n))
		}
	}

	// No secret value anywhere: every value of every Secret of the
	// stack's namespace (the memberlist key among them), the plain
	// BGPPeer passwords, raw, JSON-escaped or base64; the short password
	// as a whole word (as a substring, three characters would match
	// innocent text).
	secrets, err := l.Kube.CoreV1().Secrets(lab.StackNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	values := map[string][]byte{"plain BGPPeer password": []byte(plainPassword), "BGP password": []byte(password)}
	memberlist := false
	for _, s := range secrets.Items {
		for k, v := range s.Data {
			if len(bytes.TrimSpace(v)) >= 4 {
				values[s.Name+"/"+k] = bytes.TrimSpace(v)
			}
			if strings.Contains(s.Name, "memberlist") {
				memberlist = true
			}
		}
	}
	if !memberlist {
		t.Error("no memberlist key in the cluster: the leak check would miss it")
	}
	shortWord := regexp.MustCompile(`\b` + regexp.QuoteMeta(shortPassword) + `\b`)
	files := 0
	_ = filepath.WalkDir(dest, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		files++
		data, _ := os.ReadFile(path)
		for name, v := range values {
			escaped, _ := json.Marshal(string(v))
			escaped = escaped[1 : len(escaped)-1]
			if bytes.Contains(data, v) || bytes.Contains(data, escaped) || bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString(v))) {
				t.Errorf("%s holds the value of %s", path, name)
			}
		}
		if shortWord.Match(data) {
			t.Errorf("%s holds the short BGPPeer password %q", path, shortPassword)
		}
		return nil
	})
	t.Logf("checked %d files against %d secret values", files, len(values))
}

// TestMustGatherImage runs the must-gather image as `oc adm must-gather`
// does: its entrypoint (/usr/bin/gather) in a pod with a cluster-reading
// service account, writing to /must-gather, and a second container of the
// same image (bash, tar, rsync) from which the result is read.
func TestMustGatherImage(t *testing.T) {
	l := requireStack(t)
	ctx := context.Background()
	ns := gatherWithImage(t, l, lab.MustGatherImage)
	out, err := l.Kubectl(ctx, "-n", ns, "exec", "must-gather", "-c", "copy", "--", "bash", "-c", "head -1 /must-gather/version; tar -C /must-gather -cf - . | tar -tf - | grep -c yaml")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Fields(out)
	if len(lines) != 2 || lines[0] != "lbstack/must-gather" || lines[1] == "0" {
		t.Errorf("the must-gather image's output: %q, want its version line and YAML files", out)
	}
	if out, err := l.Kubectl(ctx, "-n", ns, "exec", "must-gather", "-c", "copy", "--", "cat", "/must-gather/metallb.io/metallbs.yaml"); err != nil || !strings.Contains(out, "name: metallb") {
		t.Errorf("metallbs.yaml from the image's gather: %v\n%s", err, out)
	}
}

// gatherWithImage runs image as `oc adm must-gather --image` does, in a
// new namespace, and returns that namespace once the gather container
// has finished and the pod's copy container (the same image, sleeping)
// holds the result in /must-gather.
func gatherWithImage(t testing.TB, l *lab.Lab, image string) string {
	t.Helper()
	ctx := context.Background()
	ns := newNamespace(t, l, "gather")
	applyYAML(t, l, "gather-rbac", fmt.Sprintf(`apiVersion: v1
kind: ServiceAccount
metadata: {name: gather, namespace: %[1]s}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: e2e-gather-%[1]s}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects:
- {kind: ServiceAccount, name: gather, namespace: %[1]s}
`, ns))
	applyYAML(t, l, "gather-pod", fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: must-gather, namespace: %s}
spec:
  serviceAccountName: gather
  restartPolicy: Never
  terminationGracePeriodSeconds: 0
  initContainers:
  - name: gather
    image: %s
    volumeMounts: [{name: out, mountPath: /must-gather}]
  containers:
  - name: copy
    image: %[2]s
    command: ["/bin/bash", "-c", "trap 'exit 0' TERM; sleep infinity & wait"]
    volumeMounts: [{name: out, mountPath: /must-gather}]
  volumes:
  - {name: out, emptyDir: {}}
`, ns, image))
	eventually(t, 3*time.Minute, "the gather init container finished and the copy container runs", func() (bool, string) {
		p, err := l.Kube.CoreV1().Pods(ns).Get(ctx, "must-gather", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, cs := range p.Status.InitContainerStatuses {
			if term := cs.State.Terminated; term != nil && term.ExitCode != 0 {
				logs, _ := l.Kubectl(ctx, "-n", ns, "logs", "must-gather", "-c", "gather")
				t.Fatalf("gather exited %d:\n%s", term.ExitCode, logs)
			}
		}
		return p.Status.Phase == corev1.PodRunning, string(p.Status.Phase)
	})
	return ns
}

// sessionsRestartedWithin lists the nodes whose session with the router is
// not Established or came up less than d ago.
func sessionsRestartedWithin(t testing.TB, l *lab.Lab, d time.Duration) []string {
	t.Helper()
	ns, err := l.Router.Neighbors(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, addr := range nodeAddrs(allNodes(l)...) {
		ok := false
		for _, n := range ns {
			if n.Address == addr && n.Established() && time.Duration(n.UptimeMsec)*time.Millisecond >= d {
				ok = true
			}
		}
		if !ok {
			out = append(out, addr)
		}
	}
	return out
}
