package lab

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

func marker(id, at string) string {
	return "== lab: " + id + " started at " + at + " on lbl-node1: /bin/sh -c echo\n"
}

func TestSplitRuns(t *testing.T) {
	a0 := "lab://aaaaaaaa-ctr-0"
	a1 := "lab://aaaaaaaa-ctr-1"
	b0 := "lab://bbbbbbbb-ctr-0"
	tests := []struct {
		name   string
		log    string
		prefix string
		want   []string // run data
		ids    []string
		extra  int
	}{
		{name: "empty", log: "", prefix: runIDPrefix("aaaaaaaa-1234", "ctr")},
		{name: "one run", log: marker(a0, "2026-01-02T03:04:05Z") + "one\ntwo\n", prefix: "lab://aaaaaaaa-ctr-", want: []string{"one\ntwo\n"}, ids: []string{a0}},
		{name: "restart", log: marker(a0, "2026-01-02T03:04:05Z") + "first\n" + marker(a1, "2026-01-02T03:04:09Z") + "second\n",
			prefix: "lab://aaaaaaaa-ctr-", want: []string{"first\n", "second\n"}, ids: []string{a0, a1}},
		{name: "run without output", log: marker(a0, "2026-01-02T03:04:05Z") + marker(a1, "2026-01-02T03:04:09Z") + "x",
			prefix: "lab://aaaaaaaa-ctr-", want: []string{"", "x"}, ids: []string{a0, a1}},
		{name: "unterminated last line before marker", log: marker(a0, "2026-01-02T03:04:05Z") + "no newline" + marker(a1, "2026-01-02T03:04:09Z") + "next\n",
			prefix: "lab://aaaaaaaa-ctr-", want: []string{"no newline", "next\n"}, ids: []string{a0, a1}},
		{name: "earlier pod of the same name skipped", log: marker(b0, "2026-01-02T03:00:00Z") + "old pod\n" + marker(a0, "2026-01-02T03:04:05Z") + "new pod\n",
			prefix: "lab://aaaaaaaa-ctr-", want: []string{"new pod\n"}, ids: []string{a0}},
		{name: "multi-line argv", log: "== lab: " + a0 + " started at 2026-01-02T03:04:05Z on lbl-node1: /bin/sh -c echo a\necho b\n\nout\n", prefix: "", extra: 2,
			want: []string{"out\n"}, ids: []string{a0}},
		{name: "output before any marker dropped", log: "stray\n" + marker(a0, "2026-01-02T03:04:05Z") + "x\n", prefix: "", want: []string{"x\n"}, ids: []string{a0}},
		{name: "marker-like text in output stays output", log: marker(a0, "2026-01-02T03:04:05Z") + "== lab: something else\n", prefix: "",
			want: []string{"== lab: something else\n"}, ids: []string{a0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs := splitRuns([]byte(tt.log), tt.prefix, tt.extra)
			if len(runs) != len(tt.want) {
				t.Fatalf("got %d runs %+v, want %d", len(runs), runs, len(tt.want))
			}
			for i, r := range runs {
				if string(r.Data) != tt.want[i] || r.ID != tt.ids[i] {
					t.Errorf("run %d: %q %q, want %q %q", i, r.ID, r.Data, tt.ids[i], tt.want[i])
				}
				if r.Start.IsZero() {
					t.Errorf("run %d: no start time", i)
				}
			}
			if n := len(runs); n > 0 && runs[n-1].End != int64(len(tt.log)) {
				t.Errorf("last run ends at %d, want %d", runs[n-1].End, len(tt.log))
			}
		})
	}
	if n := argvNewlines(corev1.Container{Command: []string{"/bin/sh", "-c"}, Args: []string{"a\nb\n", "c"}}); n != 2 {
		t.Errorf("argvNewlines = %d, want 2", n)
	}
	if p := runIDPrefix("0123456789abcdef", "speaker"); p != "lab://01234567-speaker-" {
		t.Errorf("runIDPrefix = %q", p)
	}
}

func TestTailLines(t *testing.T) {
	tests := []struct {
		in   string
		n    int64
		want string
	}{
		{"a\nb\nc\n", -1, "a\nb\nc\n"},
		{"a\nb\nc\n", 0, ""},
		{"a\nb\nc\n", 1, "c\n"},
		{"a\nb\nc\n", 2, "b\nc\n"},
		{"a\nb\nc\n", 3, "a\nb\nc\n"},
		{"a\nb\nc\n", 10, "a\nb\nc\n"},
		{"a\nb\nc", 1, "c"},
		{"a\nb\nc", 2, "b\nc"},
		{"a\n\n\n", 2, "\n\n"},
		{"", 5, ""},
	}
	for _, tt := range tests {
		if got := string(tailLines([]byte(tt.in), tt.n)); got != tt.want {
			t.Errorf("tailLines(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}

func TestLimitBytesAndStamps(t *testing.T) {
	for _, tt := range []struct {
		in   string
		n    int64
		want string
	}{{"hello\n", -1, "hello\n"}, {"hello\n", 3, "hel"}, {"hello\n", 6, "hello\n"}, {"hello\n", 100, "hello\n"}, {"", 1, ""}} {
		if got := string(limitBytes([]byte(tt.in), tt.n)); got != tt.want {
			t.Errorf("limitBytes(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if got := string(stampLines([]byte("a\nb"), ts)); got != "2026-01-02T03:04:05Z a\n2026-01-02T03:04:05Z b" {
		t.Errorf("stampLines = %q", got)
	}
}

func TestSelectLog(t *testing.T) {
	start := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	run := logRun{ID: "lab://x-c-0", Start: start, Data: []byte("one\ntwo\nthree\n")}
	lastWrite := start.Add(time.Minute)
	now := lastWrite.Add(time.Minute)
	tests := []struct {
		name string
		opts corev1.PodLogOptions
		want string
	}{
		{"all", corev1.PodLogOptions{}, "one\ntwo\nthree\n"},
		{"tail", corev1.PodLogOptions{TailLines: ptr.To(int64(2))}, "two\nthree\n"},
		{"tail then limit", corev1.PodLogOptions{TailLines: ptr.To(int64(2)), LimitBytes: ptr.To(int64(5))}, "two\nt"},
		{"limit", corev1.PodLogOptions{LimitBytes: ptr.To(int64(4))}, "one\n"},
		{"timestamps", corev1.PodLogOptions{Timestamps: true, TailLines: ptr.To(int64(1))}, "2026-01-02T03:04:05Z three\n"},
		{"since before the last write", corev1.PodLogOptions{SinceSeconds: ptr.To(int64(600))}, "one\ntwo\nthree\n"},
		{"since after the last write", corev1.PodLogOptions{SinceSeconds: ptr.To(int64(30))}, ""},
		{"sinceTime after the last write", corev1.PodLogOptions{SinceTime: &metav1.Time{Time: lastWrite.Add(time.Second)}}, ""},
		{"sinceTime at the start", corev1.PodLogOptions{SinceTime: &metav1.Time{Time: start}}, "one\ntwo\nthree\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := selectLog(run, lastWrite, newLogQuery(&tt.opts, now))
			if !bytes.Equal(got, []byte(tt.want)) {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestKubeletFlagsAndEndpoint(t *testing.T) {
	s := &State{Dir: "/x", Assets: "/a"}
	args := strings.Join(s.apiserverDaemon().Argv, " ")
	for _, f := range []string{"--kubelet-client-certificate=/x/pki/" + kubeletClientCertFile, "--kubelet-client-key=/x/pki/" + kubeletClientKeyFile,
		"--kubelet-certificate-authority=/x/pki/" + caCertFile, "--kubelet-preferred-address-types=InternalIP"} {
		if !strings.Contains(args, f) {
			t.Errorf("kube-apiserver lacks %s", f)
		}
	}
	n := &node{index: 2, name: NodeName(2)}
	if p := n.status(nil).DaemonEndpoints.KubeletEndpoint.Port; p != KubeletPort {
		t.Errorf("kubelet endpoint port %d, want %d", p, KubeletPort)
	}
}

func TestParseLogOptions(t *testing.T) {
	since := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		query   string
		want    corev1.PodLogOptions
		wantErr bool
	}{
		{query: "", want: corev1.PodLogOptions{}},
		{query: "follow=true&previous=1&timestamps=true", want: corev1.PodLogOptions{Follow: true, Previous: true, Timestamps: true}},
		{query: "tailLines=3&limitBytes=10&sinceSeconds=5", want: corev1.PodLogOptions{TailLines: ptr.To(int64(3)), LimitBytes: ptr.To(int64(10)), SinceSeconds: ptr.To(int64(5))}},
		{query: "sinceTime=2026-01-02T03:04:05Z", want: corev1.PodLogOptions{SinceTime: &metav1.Time{Time: since}}},
		{query: "tailLines=x", wantErr: true},
		{query: "follow=maybe", wantErr: true},
		{query: "sinceTime=yesterday", wantErr: true},
		{query: "sinceSeconds=1&sinceTime=2026-01-02T03:04:05Z", wantErr: true},
	}
	for _, tt := range tests {
		q, _ := url.ParseQuery(tt.query)
		got, err := parseLogOptions(q)
		if (err != nil) != tt.wantErr {
			t.Errorf("%q: error %v, want error %v", tt.query, err, tt.wantErr)
			continue
		}
		if err == nil && !equality.Semantic.DeepEqual(*got, tt.want) {
			t.Errorf("%q: got %+v, want %+v", tt.query, *got, tt.want)
		}
	}
}

func TestKubeletCertificates(t *testing.T) {
	s := &State{Dir: t.TempDir(), Nodes: 1}
	if _, err := newPKI(s.pkiDir()); err != nil {
		t.Fatal(err)
	}
	// Made when missing, kept when current.
	if err := s.ensureKubeletClientCert(); err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(filepath.Join(s.pkiDir(), kubeletClientCertFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.ensureKubeletClientCert(); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(s.pkiDir(), kubeletClientCertFile)); !bytes.Equal(first, again) {
		t.Error("a current kubelet client certificate was reissued")
	}
	pair, err := tls.LoadX509KeyPair(filepath.Join(s.pkiDir(), kubeletClientCertFile), filepath.Join(s.pkiDir(), kubeletClientKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(pair.Certificate[0])
	if c.Subject.CommonName != "kube-apiserver-kubelet-client" || !slices.Equal(c.Subject.Organization, []string{"system:masters"}) {
		t.Errorf("kubelet client certificate subject %v", c.Subject)
	}
	cfg, err := s.kubeletTLSConfig(1)
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if len(srv.IPAddresses) != 2 || srv.IPAddresses[0].String() != NodeAddr(1) || srv.IPAddresses[1].String() != NodeAddr6(1) {
		t.Errorf("serving certificate IPs %v", srv.IPAddresses)
	}
	if cfg.ClientAuth != tls.RequireAndVerifyClientCert {
		t.Error("client certificates not required")
	}
	if _, err := c.Verify(x509.VerifyOptions{Roots: cfg.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Errorf("the API server's client certificate does not verify against the kubelet's CA: %v", err)
	}
}
