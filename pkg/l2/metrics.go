package l2

import "github.com/prometheus/client_golang/prometheus"

// Metrics of the layer-2 responders, per interface, read at scrape time.
var (
	descL2Requests = prometheus.NewDesc("lbstack_layer2_requests_received_total",
		"ARP requests and neighbour solicitations received for announced addresses.", []string{"interface"}, nil)
	descL2Responses = prometheus.NewDesc("lbstack_layer2_responses_sent_total",
		"ARP replies and neighbour advertisements sent.", []string{"interface"}, nil)
	descL2Gratuitous = prometheus.NewDesc("lbstack_layer2_gratuitous_sent_total",
		"Gratuitous ARP packets and unsolicited neighbour advertisements sent.", []string{"interface"}, nil)
)

// Collector exports the responders' counters: read at scrape time, never
// stale.
func (l *Announcer) Collector() prometheus.Collector { return collector{l} }

type collector struct{ l *Announcer }

func (collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descL2Requests
	ch <- descL2Responses
	ch <- descL2Gratuitous
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for name, s := range c.l.stats() {
		ch <- prometheus.MustNewConstMetric(descL2Requests, prometheus.CounterValue, float64(s.RequestsReceived), name)
		ch <- prometheus.MustNewConstMetric(descL2Responses, prometheus.CounterValue, float64(s.ResponsesSent), name)
		ch <- prometheus.MustNewConstMetric(descL2Gratuitous, prometheus.CounterValue, float64(s.GratuitousSent), name)
	}
}
