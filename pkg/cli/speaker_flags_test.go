package cli

import (
	"testing"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/lbstack/lbstack/bindata"
	"github.com/lbstack/lbstack/pkg/render"
)

// TestComponentsAcceptTheRenderedFlags parses the arguments the operator
// renders for every lbstack container (bindata/), so a rendered component
// never exits on an unknown flag.
func TestComponentsAcceptTheRenderedFlags(t *testing.T) {
	commands := map[string]func() *cobra.Command{
		"speaker": newSpeakerCommand, "controller": newControllerCommand, "frr-reloader": newFRRReloaderCommand,
		"install-binary": newInstallBinaryCommand,
	}
	seen := map[string]bool{}
	for _, backend := range []string{"native", "frr"} {
		objs, err := render.Render(bindata.FS, render.Params{
			Namespace: "metallb-system", OwnerName: "metallb", LogLevel: "info", BGPBackend: backend, MemberlistSecretKey: "a2V5",
			LoadBalancerClass: "lbstack.io/edge", Images: render.Images{Controller: "lbstack:test", Speaker: "lbstack:test", FRR: "frr:test"},
		})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
			ics, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "initContainers")
			for _, c := range append(cs, ics...) {
				args, _, _ := unstructured.NestedStringSlice(c.(map[string]any), "args")
				if len(args) == 0 || commands[args[0]] == nil {
					continue
				}
				seen[args[0]] = true
				cmd := commands[args[0]]()
				if err := cmd.ParseFlags(args[1:]); err != nil {
					t.Errorf("%s: %s refuses the rendered flags %q: %v", backend, args[0], args[1:], err)
				}
			}
		}
	}
	for name := range commands {
		if !seen[name] {
			t.Errorf("no rendered container runs %s", name)
		}
	}
}
