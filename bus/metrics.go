package bus

import "github.com/prometheus/client_golang/prometheus"

var (
	upDesc = prometheus.NewDesc("keyward_invalidation_bus_up",
		"1 while the invalidation bus subscription is established and publishing works; 0 while the instance runs on a shorter cache TTL.", nil, nil)
	publishedDesc = prometheus.NewDesc("keyward_invalidations_published_total",
		"Invalidations published to other instances.", nil, nil)
	publishErrorsDesc = prometheus.NewDesc("keyward_invalidation_publish_errors_total",
		"Publishes that failed (messages lost, and probes while the bus is down).", nil, nil)
	droppedDesc = prometheus.NewDesc("keyward_invalidations_dropped_total",
		"Invalidations dropped because the publish queue was full.", nil, nil)
	receivedDesc = prometheus.NewDesc("keyward_invalidations_received_total",
		"Invalidations received from other instances and applied.", nil, nil)
	reconnectsDesc = prometheus.NewDesc("keyward_invalidation_bus_reconnects_total",
		"Times the subscription was established again after an outage (each drops the whole cache).", nil, nil)
)

// Describe implements prometheus.Collector.
func (b *Broadcaster) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{upDesc, publishedDesc, publishErrorsDesc, droppedDesc, receivedDesc, reconnectsDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (b *Broadcaster) Collect(ch chan<- prometheus.Metric) {
	up := 0.0
	if b.up.Load() {
		up = 1
	}
	ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up)
	for _, c := range []struct {
		d *prometheus.Desc
		v uint64
	}{
		{publishedDesc, b.m.published.Load()},
		{publishErrorsDesc, b.m.publishErrors.Load()},
		{droppedDesc, b.m.dropped.Load()},
		{receivedDesc, b.m.received.Load()},
		{reconnectsDesc, b.m.reconnects.Load()},
	} {
		ch <- prometheus.MustNewConstMetric(c.d, prometheus.CounterValue, float64(c.v))
	}
}

var _ prometheus.Collector = (*Broadcaster)(nil)
