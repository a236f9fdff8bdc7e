package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/lbstack/lbstack/pkg/legacyconfig"
)

// newConfigCommand returns `lbstack config`, the configuration tools.
func newConfigCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Work with the metallb.io configuration (convert MetalLB's legacy ConfigMap)",
		Long: `Tools for the metallb.io configuration that lbstack serves.

  lbstack config convert   turn MetalLB's legacy ConfigMap (MetalLB v0.12 and
                           earlier) into the equivalent metallb.io objects`,
		Args: cobra.NoArgs,
	}
	cmd.AddCommand(newConfigConvertCommand())
	return cmd
}

func newConfigConvertCommand() *cobra.Command {
	var file, namespace string
	cmd := &cobra.Command{
		Use:   "convert [-f FILE|-] [--namespace NS]",
		Short: "Convert MetalLB's legacy ConfigMap into metallb.io objects",
		Long: `Convert MetalLB's legacy configuration (the "config" key of the ConfigMap
that MetalLB v0.12 and earlier read) into the equivalent metallb.io objects:
IPAddressPool, BGPPeer (v1beta2), BGPAdvertisement, L2Advertisement,
BFDProfile and Community.

The input is the ConfigMap manifest (for example the output of
"kubectl get configmap -n metallb-system config -o yaml") or just the text of
its data.config. It is read from FILE, or from standard input when FILE is
"-" or -f is not given. The objects are printed to standard output as one
multi-document YAML stream, ready for "kubectl apply -f"; warnings go to
standard error as YAML comments (and also appear as comments above the
object they concern).

Nothing is dropped: every pool, peer, advertisement, BFD profile and
community becomes an object; names Kubernetes refuses are made valid and
the original kept in the annotation metallb.io/legacy-name. Values that
MetalLB or admission would refuse are converted as written and reported as
warnings. The input is decoded strictly: an unknown field, a repeated field
or a value of the wrong type is an error that names it.

The objects go to --namespace, else the ConfigMap's namespace, else
metallb-system. See docs/legacy-configmap.md.`,
		Example: `  kubectl get configmap -n metallb-system config -o yaml | lbstack config convert > metallb.yaml
  lbstack config convert -f legacy-configmap.yaml --namespace metallb-system
  lbstack config convert -f config.txt          # just the text of data.config`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			res, err := legacyconfig.ConvertFile(file, cmd.InOrStdin(), cmd.ErrOrStderr(), legacyconfig.Options{Namespace: namespace})
			if err != nil {
				return fmt.Errorf("lbstack config convert: %w", err)
			}
			if err := res.WriteYAML(cmd.OutOrStdout()); err != nil {
				return fmt.Errorf("lbstack config convert: %w", err)
			}
			return res.WriteWarnings(cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", `the ConfigMap manifest or data.config text to convert ("-" or unset: standard input)`)
	cmd.Flags().StringVarP(&namespace, "namespace", "n", "", "namespace of the objects (default: the ConfigMap's namespace, else "+legacyconfig.DefaultNamespace+")")
	return cmd
}
