package cli

import (
	"context"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/lbstack/lbstack/api/v1beta1"
	lbwebhook "github.com/lbstack/lbstack/pkg/webhook"
)

// webhookFlags are the flags of `lbstack webhook`; `lbstack controller`
// and `lbstack operator` reuse them, as they serve the webhooks too. Most
// fill the server's options directly.
type webhookFlags struct {
	server     lbwebhook.ServerOptions
	bgpBackend string
	healthAddr string
	kubeconfig string
	logLevel   string
	serving    servingFlags
}

func (f *webhookFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.server.Namespace, "namespace", envOr("METALLB_NAMESPACE", "metallb-system"), "the stack's namespace (env METALLB_NAMESPACE)")
	fl.StringVar(&f.server.Host, "webhook-host", "", "address the webhook server listens on (all when empty)")
	fl.IntVar(&f.server.Port, "webhook-port", 9443, "port the webhook server listens on")
	fl.StringVar(&f.server.Certs.CertDir, "cert-dir", "/tmp/k8s-webhook-server/serving-certs", "directory of the serving certificate (tls.crt, tls.key)")
	fl.StringVar(&f.server.Certs.Mode, "cert-mode", lbwebhook.CertsRotator, "rotator: generate, rotate and inject certificates; external: use certificates provided in --cert-dir (OpenShift service CA)")
	fl.StringVar(&f.server.Certs.SecretName, "cert-secret", "lbstack-webhook-server-cert", "Secret holding the generated CA and serving certificate")
	fl.StringVar(&f.server.Certs.ServiceName, "webhook-service", "lbstack-webhook-service", "Service in front of the webhook server (the certificate's name)")
	fl.StringVar(&f.server.Certs.ValidatingWebhookConfiguration, "webhook-configuration", "lbstack-validating-webhook-configuration", "ValidatingWebhookConfiguration that receives the CA bundle")
	fl.StringSliceVar(&f.server.Certs.ConversionCRDs, "conversion-crds", []string{"bgppeers.metallb.io"}, "CRDs whose conversion webhook receives the CA bundle")
	fl.StringSliceVar(&f.server.Certs.ExtraDNSNames, "cert-extra-dns-names", nil, "extra DNS names in the generated certificate")
	fl.StringVar(&f.bgpBackend, "bgp-backend", "", "BGP backend the rules are checked against (native|frr|calico); empty: read the MetalLB object")
	fl.StringVar(&f.healthAddr, "health-probe-bind-address", ":8081", "address of /healthz and /readyz")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig file (in-cluster configuration when empty)")
	fl.StringVar(&f.logLevel, "log-level", "info", "all|debug|info|warn|error|none")
	f.serving.add(fl)
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func newWebhookCommand() *cobra.Command {
	var f webhookFlags
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Serve the metallb.io validating and conversion webhooks over TLS",
		Long: `Serve the admission webhooks: every metallb.io object is validated by building the
whole configuration with it in place (the rules the controller and speakers use),
the BGPPeer v1beta1/v1beta2 conversion, and the one-MetalLB-per-cluster rule.
Certificates are generated, rotated and injected as caBundle (--cert-mode rotator)
or provided by the platform (--cert-mode external).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := setupLogging(f.logLevel); err != nil {
				return err
			}
			ctx, cancel := untilSignal(cmd.Context())
			defer cancel()
			return runWebhook(ctx, f)
		},
	}
	f.add(cmd)
	return cmd
}

func runWebhook(ctx context.Context, f webhookFlags) error {
	if err := f.validate(); err != nil {
		return err
	}
	o, err := f.serverOptions()
	if err != nil {
		return err
	}
	cfg, err := restConfig(f.kubeconfig)
	if err != nil {
		return err
	}
	return lbwebhook.Serve(ctx, cfg, f.healthAddr, o)
}

// validate checks the flags that can be checked before connecting.
func (f *webhookFlags) validate() error {
	if f.bgpBackend == "" || v1beta1.BGPType(f.bgpBackend).Supported() {
		return nil
	}
	return fmt.Errorf("--bgp-backend %q: want native, frr or calico", f.bgpBackend)
}

// serverOptions are the webhook server the flags describe.
func (f *webhookFlags) serverOptions() (lbwebhook.ServerOptions, error) {
	s, err := f.serving.options()
	if err != nil {
		return lbwebhook.ServerOptions{}, err
	}
	o := f.server
	o.Certs.Namespace = o.Namespace
	o.BGPBackend = v1beta1.BGPType(f.bgpBackend)
	o.TLSOpts = s.TLS()
	return o, nil
}
