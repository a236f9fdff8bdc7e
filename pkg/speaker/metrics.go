package speaker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lbstack/lbstack/pkg/bgp"
	"github.com/lbstack/lbstack/pkg/bgp/frr"
)

// Metrics of the BGP sessions, per peer (BGPPeer name) and VRF.
var (
	descSessionUp = prometheus.NewDesc("lbstack_bgp_session_up",
		"1 when the BGP session with the peer is Established, else 0.", []string{"peer", "vrf"}, nil)
	descAnnounced = prometheus.NewDesc("lbstack_bgp_announced_prefixes",
		"Number of prefixes announced to the peer.", []string{"peer", "vrf"}, nil)
	descUpdates = prometheus.NewDesc("lbstack_bgp_updates_total",
		"BGP UPDATE messages sent to the peer (restarts from 0 when the session is re-created).", []string{"peer", "vrf"}, nil)
)

// descBFDUp is the BFD state of a session's peer (FRR backend only).
var descBFDUp = prometheus.NewDesc("lbstack_bfd_session_up",
	"1 when the BFD session with the peer is up, else 0 (bgpBackend frr).", []string{"peer", "vrf", "address"}, nil)

// sessionCollector exports the backend's session status, read at scrape
// time from the backend: no polling, never stale.
type sessionCollector struct{ backend bgp.Backend }

func (sessionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descSessionUp
	ch <- descAnnounced
	ch <- descUpdates
	ch <- descBFDUp
}

// bfdReporter is a backend that knows BFD peers (the FRR backend).
type bfdReporter interface{ BFDPeers() []frr.BFDPeer }

func (c sessionCollector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.backend.Status() {
		up := 0.0
		if s.State == bgp.StateEstablished {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(descSessionUp, prometheus.GaugeValue, up, s.Name, s.VRF)
		ch <- prometheus.MustNewConstMetric(descAnnounced, prometheus.GaugeValue, float64(s.Advertised), s.Name, s.VRF)
		ch <- prometheus.MustNewConstMetric(descUpdates, prometheus.CounterValue, float64(s.UpdatesSent), s.Name, s.VRF)
	}
	if r, ok := c.backend.(bfdReporter); ok {
		for _, p := range r.BFDPeers() {
			up := 0.0
			if p.Up() {
				up = 1
			}
			ch <- prometheus.MustNewConstMetric(descBFDUp, prometheus.GaugeValue, up, p.Session, p.VRF, p.Peer.String())
		}
	}
}
