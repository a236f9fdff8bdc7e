package envtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/lbstack/lbstack/bindata"
	"github.com/lbstack/lbstack/pkg/cli"
	"github.com/lbstack/lbstack/pkg/render"
)

// RenderedRBAC creates the ServiceAccount, ClusterRole, Role and their
// bindings named name (lbstack-controller, lbstack-speaker) exactly as the
// operator renders them, deletes them when the test ends, and returns the
// service account's user name: a component run as that user has exactly
// the permissions its manifests give it.
func RenderedRBAC(tb testing.TB, c client.Client, name string) string {
	tb.Helper()
	objs, err := render.Render(bindata.FS, render.Params{
		Namespace: Namespace, OwnerName: "metallb", LogLevel: "info", BGPBackend: "frr", MemberlistSecretKey: "a2V5",
		Images: render.Images{Controller: "lbstack:test", Speaker: "lbstack:test", FRR: "frr:test"},
	})
	if err != nil {
		tb.Fatal(err)
	}
	n := 0
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding":
		default:
			continue
		}
		if o.GetName() != name {
			continue
		}
		if err := c.Create(context.Background(), o); err != nil {
			tb.Fatalf("%s %s: %v", o.GetKind(), o.GetName(), err)
		}
		n++
		tb.Cleanup(func() { _ = c.Delete(context.Background(), o) })
	}
	if n != 5 {
		tb.Fatalf("rendered %d RBAC objects named %s, want the ServiceAccount, a ClusterRole, a Role and their bindings", n, name)
	}
	return "system:serviceaccount:" + Namespace + ":" + name
}

// WriteKubeconfig writes a kubeconfig with cfg's server, credentials and
// impersonated user (if any), for a component run as a process.
func WriteKubeconfig(tb testing.TB, cfg *rest.Config) string {
	tb.Helper()
	kc := clientcmdapi.NewConfig()
	kc.Clusters["envtest"] = &clientcmdapi.Cluster{Server: cfg.Host, CertificateAuthorityData: cfg.CAData}
	kc.AuthInfos["envtest"] = &clientcmdapi.AuthInfo{ClientCertificateData: cfg.CertData, ClientKeyData: cfg.KeyData,
		Token: cfg.BearerToken, Impersonate: cfg.Impersonate.UserName}
	kc.Contexts["envtest"] = &clientcmdapi.Context{Cluster: "envtest", AuthInfo: "envtest"}
	kc.CurrentContext = "envtest"
	path := filepath.Join(tb.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		tb.Fatal(err)
	}
	return path
}

// As returns a copy of cfg that impersonates user.
func As(cfg *rest.Config, user string) *rest.Config {
	c := rest.CopyConfig(cfg)
	c.Impersonate = rest.ImpersonationConfig{UserName: user}
	return c
}

// cliArgsEnv carries the arguments of a test binary run as `lbstack`.
const cliArgsEnv = "LBSTACK_TEST_CLI_ARGS"

// RunCLIIfAsked, called first in a TestMain, makes the test binary run
// `lbstack` with the arguments CLICommand gave it, and exit: tests that
// need a component as the process a pod runs (restarted, replaced, run
// with reduced privileges) start it that way.
func RunCLIIfAsked() {
	args := os.Getenv(cliArgsEnv)
	if args == "" {
		return
	}
	root := cli.NewRoot()
	root.SetArgs(strings.Split(args, "\x1f"))
	if err := root.Execute(); err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}

// CLICommand is `lbstack args...` run by the test binary (see
// RunCLIIfAsked), behind prefix (say, setpriv and its flags) when given.
func CLICommand(tb testing.TB, prefix []string, args ...string) *exec.Cmd {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	argv := append(append([]string(nil), prefix...), exe)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), cliArgsEnv+"="+strings.Join(args, "\x1f"))
	return cmd
}

// BenchCommand is `lbstack args...` for a benchmark that measures a
// component as a process: the binary named by $LBSTACK_BENCH_BINARY (`make
// bench-scale` sets bin/lbstack: the figures are the real binary's), else
// this test binary run as lbstack (CLICommand: same code, a larger binary).
func BenchCommand(tb testing.TB, args ...string) *exec.Cmd {
	tb.Helper()
	if bin := os.Getenv("LBSTACK_BENCH_BINARY"); bin != "" {
		return exec.Command(bin, args...)
	}
	return CLICommand(tb, nil, args...)
}
