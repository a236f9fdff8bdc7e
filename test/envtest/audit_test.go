package envtest_test

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/test/envtest"
)

// TestAuditLogCountsAUsersWrites: the API server's audit log gives one
// user's writes (a component run as a process, as its service account) and
// nothing of another's or of reads.
func TestAuditLogCountsAUsersWrites(t *testing.T) {
	audit, args := envtest.NewAuditLog(t)
	env := envtest.StartWith(t, envtest.Options{APIServerArgs: args})
	ctx := context.Background()
	user := envtest.RenderedRBAC(t, env.Client, "lbstack-speaker")
	before := audit.Writes(t, user)
	sp, err := client.New(envtest.As(env.Config, user), client.Options{Scheme: env.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	st := &v1beta1.ServiceBGPStatus{ObjectMeta: metav1.ObjectMeta{Name: "s1", Namespace: envtest.Namespace}}
	if err := sp.Create(ctx, st); err != nil {
		t.Fatal(err)
	}
	st.Status.Node = "n1"
	if err := sp.Status().Update(ctx, st); err != nil {
		t.Fatal(err)
	}
	var l v1beta1.ServiceBGPStatusList
	if err := sp.List(ctx, &l, client.InNamespace(envtest.Namespace)); err != nil {
		t.Fatal(err)
	}
	// Another user's write.
	if err := env.Client.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: envtest.Namespace}}); err != nil {
		t.Fatal(err)
	}
	if got, want := envtest.DiffWrites(audit.Writes(t, user), before), "2 (CREATE servicebgpstatuses 1, UPDATE servicebgpstatuses/status 1)"; got != want {
		t.Errorf("the speaker's writes: %s, want %s", got, want)
	}
}

// TestCPUGroupCountsEndedChildren: a control group counts what the
// process put in it and its children used, after they have ended.
func TestCPUGroupCountsEndedChildren(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root (control groups)")
	}
	g := envtest.NewCPUGroup(t, "probe")
	// The child waits until it is in the group, then starts a grandchild
	// that spins for a while.
	cmd := exec.Command("sh", "-c", `read go; sh -c 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done'`)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	if err := g.Add(cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := in.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	wall := time.Since(start)
	used, err := g.Usage()
	if err != nil {
		t.Fatal(err)
	}
	// The loop is pure CPU: the group must have counted most of its
	// wall time, which was spent in the grandchild.
	if used < wall/4 || used > wall+50*time.Millisecond {
		t.Errorf("group counted %v for a spin of %v", used, wall)
	}
}
