package speaker

import (
	"context"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/lbstack/lbstack/api/v1beta1"
	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/config"
)

// TestSessionConfig: with bgpBackend calico the speaker decides no BGP
// session, route or ServiceBGPStatus; the other backends decide as before;
// the configuration given is never changed.
func TestSessionConfig(t *testing.T) {
	cluster, local := corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceExternalTrafficPolicyLocal
	svcs := []*corev1.Service{lbSvc("s", cluster, "203.0.113.5"), lbSvc("l", local, "203.0.113.6", "2001:db8:1::6")}
	eps := []*discoveryv1.EndpointSlice{slice("s", ep{node: "n1", ready: yes}), slice("l", ep{node: "n1", ready: yes})}
	tests := []struct {
		backend      v1beta1.BGPType
		wantSessions int
	}{
		{v1beta1.BGPTypeNative, 3}, // r4, r6, ri: rb is for zone b
		{v1beta1.BGPTypeFRR, 3},
		{v1beta1.BGPTypeCalico, 0},
	}
	for _, tc := range tests {
		t.Run(string(tc.backend), func(t *testing.T) {
			built := config.Build(world(), config.Options{Namespace: ns, BGPBackend: tc.backend})
			if built.Config == nil {
				t.Fatalf("config.Build: %v", built.Err())
			}
			peersBefore := len(built.Config.PeerNames)
			cfg := SessionConfig(tc.backend, built.Config)
			res, err := Decide(Input{Config: cfg, Node: node("n1"), Services: svcs, EndpointSlices: eps})
			if err != nil {
				t.Fatal(err)
			}
			if got := len(res.State.Sessions); got != tc.wantSessions {
				t.Errorf("sessions = %d, want %d", got, tc.wantSessions)
			}
			if tc.wantSessions == 0 {
				if len(res.State.Routes) != 0 || len(res.Announced) != 0 || len(res.Problems) != 0 {
					t.Errorf("calico decides routes %v, announcements %v, problems %v; want none", res.State.Routes, res.Announced, res.Problems)
				}
				if err := (noSessions{}).Apply(context.Background(), res.State); err != nil {
					t.Errorf("noSessions refuses the calico state: %v", err)
				}
			} else if len(res.Announced) != 2 {
				t.Errorf("announced = %v, want both Services", res.Announced)
			}
			if len(built.Config.PeerNames) != peersBefore || len(built.Config.Peers) != peersBefore {
				t.Errorf("SessionConfig changed the configuration it was given: %d peers, had %d", len(built.Config.PeerNames), peersBefore)
			}
			// Layer 2 reads the pools and L2 advertisements: kept.
			if len(cfg.PoolNames) != len(built.Config.PoolNames) || len(cfg.L2Advs) != len(built.Config.L2Advs) {
				t.Errorf("SessionConfig dropped pools or L2 advertisements")
			}
		})
	}
}

func TestNoSessionsBackend(t *testing.T) {
	var b bgp.Backend = noSessions{}
	err := b.Apply(context.Background(), bgp.DesiredState{Sessions: []bgp.Session{{Name: "r4"}}})
	if err == nil || !strings.Contains(err.Error(), "session r4") {
		t.Errorf("Apply with a session: %v, want a refusal naming it", err)
	}
	if st := b.Status(); st != nil {
		t.Errorf("Status = %v, want none", st)
	}
	if err := b.Close(); err != nil {
		t.Error(err)
	}
}

func TestOptionsValidateBackends(t *testing.T) {
	for backend, ok := range map[v1beta1.BGPType]bool{
		v1beta1.BGPTypeNative: true, v1beta1.BGPTypeFRR: true, v1beta1.BGPTypeCalico: true,
		v1beta1.BGPTypeFRRK8s: false, "": false,
	} {
		err := Options{NodeName: "n1", Namespace: ns, BGPBackend: backend}.Validate()
		if (err == nil) != ok {
			t.Errorf("Validate with --bgp-backend %q: %v, want ok=%v", backend, err, ok)
		}
	}
}
