package speaker

import (
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/bgp/frr"
)

// The FRR backend's sessions and BFD peers, as the reloader reports them,
// become the speaker's metrics.
func TestSessionCollectorExportsBFDPeers(t *testing.T) {
	dir := t.TempDir()
	st := frr.StatusDoc{
		Sessions: []bgp.SessionStatus{{Name: "p", State: bgp.StateEstablished, Advertised: 2}},
		BFDPeers: []frr.BFDPeer{{Session: "p", Peer: netip.MustParseAddr("198.18.0.254"), Status: "up"}},
	}
	data, _ := json.Marshal(st)
	if err := os.WriteFile(filepath.Join(dir, frr.StatusFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(sessionCollector{frr.NewFileBackend(dir)})
	got, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string]float64{}
	for _, mf := range got {
		for _, m := range mf.GetMetric() {
			values[mf.GetName()] = m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	if values["lbstack_bfd_session_up"] != 1 || values["lbstack_bgp_session_up"] != 1 || values["lbstack_bgp_announced_prefixes"] != 2 {
		t.Errorf("metrics %v", values)
	}
}
