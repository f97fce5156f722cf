package lifecycle

import "github.com/prometheus/client_golang/prometheus"

var (
	runsDesc = prometheus.NewDesc("keyward_lifecycle_runs_total",
		"Runs of each lifecycle job on this instance.", []string{"job"}, nil)
	skippedDesc = prometheus.NewDesc("keyward_lifecycle_runs_skipped_total",
		"Runs of each lifecycle job skipped because another instance held its lock.", []string{"job"}, nil)
	errorsDesc = prometheus.NewDesc("keyward_lifecycle_errors_total",
		"Runs of each lifecycle job that failed (the next run tries again).", []string{"job"}, nil)
	changesDesc = prometheus.NewDesc("keyward_lifecycle_changes_total",
		"Changes made by the lifecycle jobs of this instance, by action: key_expired and key_rotation_due (announced), key_expiry_scheduled, key_deleted, ip_rule_deleted, credits_refilled, credential_retired, audit_checkpoint_published.", []string{"action"}, nil)
)

// Describe implements prometheus.Collector.
func (r *Runner) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{runsDesc, skippedDesc, errorsDesc, changesDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (r *Runner) Collect(ch chan<- prometheus.Metric) {
	for _, job := range Jobs {
		ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.CounterValue, float64(r.m.runs[job].Load()), job)
		ch <- prometheus.MustNewConstMetric(skippedDesc, prometheus.CounterValue, float64(r.m.skipped[job].Load()), job)
		ch <- prometheus.MustNewConstMetric(errorsDesc, prometheus.CounterValue, float64(r.m.errors[job].Load()), job)
	}
	for _, a := range actions {
		ch <- prometheus.MustNewConstMetric(changesDesc, prometheus.CounterValue, float64(r.m.changes[a].Load()), a)
	}
}

var _ prometheus.Collector = (*Runner)(nil)
