package cli

// Helpers every command that runs a process shares: its client
// configuration and its logger.

import (
	"fmt"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"

	"github.com/lbstack/lbstack/pkg/loglevel"
)

// restConfig loads a kubeconfig file, or the in-cluster configuration when
// path is empty (falling back to $KUBECONFIG and ~/.kube/config outside a pod).
func restConfig(path string) (*rest.Config, error) {
	rules := clientcmd.NewDefaultClientConfigLoadingRules()
	if path != "" {
		rules.ExplicitPath = path
	} else if cfg, err := rest.InClusterConfig(); err == nil {
		return cfg, nil
	}
	cfg, err := clientcmd.NewNonInteractiveDeferredLoadingClientConfig(rules, nil).ClientConfig()
	if err != nil {
		return nil, fmt.Errorf("kubernetes client configuration: %w", err)
	}
	return cfg, nil
}

// setupLogging installs the process logger for a MetalLB log level.
func setupLogging(level string) error {
	lvl, err := loglevel.Parse(level)
	if err != nil {
		return err
	}
	ctrl.SetLogger(zap.New(zap.Level(lvl)))
	return nil
}
