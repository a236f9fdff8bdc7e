package speaker

import (
	"context"
	"fmt"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
)

// With bgpBackend calico (issue #19) Calico's nodes announce the addresses
// over BGP, and the speakers run no BGP session: their configuration is
// decided without its BGPPeers (SessionConfig), so no session, route or
// ServiceBGPStatus comes out of it, and the backend is noSessions. Layer 2
// is decided and announced as in every other mode.

// SessionConfig is the configuration the speaker decides BGP from: cfg
// itself, or with bgpBackend calico a copy without BGPPeers (the operator
// reports them as ignored, pkg/calico). cfg is never modified.
func SessionConfig(backend v1beta1.BGPType, cfg *config.Config) *config.Config {
	if backend != v1beta1.BGPTypeCalico || cfg == nil || len(cfg.PeerNames) == 0 {
		return cfg
	}
	c := *cfg
	c.Peers, c.PeerNames = map[string]*config.Peer{}, nil
	return &c
}

// noSessions is the BGP backend of bgpBackend calico: it runs nothing, and
// refuses a state with sessions, which SessionConfig never lets through.
type noSessions struct{}

var _ bgp.Backend = noSessions{}

func (noSessions) Apply(_ context.Context, d bgp.DesiredState) error {
	if len(d.Sessions) > 0 {
		return fmt.Errorf("bgpBackend calico runs no BGP sessions, but the state has %d (session %s)", len(d.Sessions), d.Sessions[0].Name)
	}
	return nil
}

func (noSessions) Status() []bgp.SessionStatus { return nil }

func (noSessions) Close() error { return nil }
