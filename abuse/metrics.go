package abuse

import "github.com/prometheus/client_golang/prometheus"

var (
	processedDesc = prometheus.NewDesc("keyward_abuse_signals_total",
		"Verification signals evaluated by abuse detection.", nil, nil)
	droppedDesc = prometheus.NewDesc("keyward_abuse_signals_dropped_total",
		"Verification signals dropped, not evaluated, because the abuse detection queue was full.", nil, nil)
	anomaliesDesc = prometheus.NewDesc("keyward_abuse_anomalies_total",
		"Anomalies found by this instance, by type (brute_force counts blocks).", []string{"type"}, nil)
	errorsDesc = prometheus.NewDesc("keyward_abuse_errors_total",
		"Errors of abuse detection by operation: count and claim (the Counter), action, reload (of IP rules), record (storing an anomaly), track (a table at Config.MaxTracked).", []string{"op"}, nil)
	trackedDesc = prometheus.NewDesc("keyward_abuse_tracked",
		"Entries of each in-memory table of abuse detection, each bounded by Config.MaxTracked: networks acted on (blocked), keys reported as revoked (revoked), accounts reported for bursts (bursts), keys of ip_spread (spread) and usage_spike (usage), and the counts and markers of the local counter (counts, markers) when no shared one is configured.", []string{"table"}, nil)
)

// Describe implements prometheus.Collector.
func (d *Detector) Describe(ch chan<- *prometheus.Desc) {
	for _, desc := range []*prometheus.Desc{processedDesc, droppedDesc, anomaliesDesc, errorsDesc, trackedDesc} {
		ch <- desc
	}
}

// Collect implements prometheus.Collector.
func (d *Detector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(processedDesc, prometheus.CounterValue, float64(d.m.processed.Load()))
	ch <- prometheus.MustNewConstMetric(droppedDesc, prometheus.CounterValue, float64(d.m.dropped.Load()))
	for _, t := range anomalyTypes {
		ch <- prometheus.MustNewConstMetric(anomaliesDesc, prometheus.CounterValue, float64(d.m.anomalies[t].Load()), string(t))
	}
	for _, op := range ops {
		ch <- prometheus.MustNewConstMetric(errorsDesc, prometheus.CounterValue, float64(d.m.errors[op].Load()), op)
	}
	d.mu.Lock()
	tracked := map[string]int{"blocked": len(d.blocked.m), "revoked": len(d.revoked.m), "bursts": len(d.bursts.m),
		"spread": len(d.spread.m), "usage": len(d.usage.m)}
	d.mu.Unlock()
	if lc, ok := d.counter.(*LocalCounter); ok {
		tracked["counts"], tracked["markers"] = lc.Len()
	}
	for table, n := range tracked {
		ch <- prometheus.MustNewConstMetric(trackedDesc, prometheus.GaugeValue, float64(n), table)
	}
}

var _ prometheus.Collector = (*Detector)(nil)
