package verify

import (
	"sync/atomic"
	"time"

	"github.com/keyward/keyward"
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the engine's Prometheus metrics, kept as plain atomic counters
// that Collect turns into constant metrics: the hot path pays one atomic add
// per number and never a float or a lock. A verification's decision and
// latency bucket share one counter (cells), so it costs three adds: that
// cell, the latency sum and a cache hit or miss. The Engine is a
// prometheus.Collector; register it with the registry of your choice.
type metrics struct {
	// cells[d][b] counts the verifications with decision
	// keyward.Decisions[d] in latency bucket b (the last is +Inf).
	cells        [][len(durationBounds) + 1]atomic.Uint64
	hits, misses atomic.Uint64
	sumNanos     atomic.Uint64
}

// durationBounds are the upper bounds of the latency histogram's buckets:
// 1µs to about 1s, by fours.
var durationBounds = [...]time.Duration{
	1 << 0 * time.Microsecond, 1 << 2 * time.Microsecond, 1 << 4 * time.Microsecond,
	1 << 6 * time.Microsecond, 1 << 8 * time.Microsecond, 1 << 10 * time.Microsecond,
	1 << 12 * time.Microsecond, 1 << 14 * time.Microsecond, 1 << 16 * time.Microsecond,
	1 << 18 * time.Microsecond, 1 << 20 * time.Microsecond,
}

var (
	verificationsDesc = prometheus.NewDesc("keyward_verifications_total",
		"Key verifications by decision code.", []string{"code"}, nil)
	durationDesc = prometheus.NewDesc("keyward_verify_duration_seconds",
		"Time to verify a key in process, cache hits and misses alike.", nil, nil)
	hitsDesc = prometheus.NewDesc("keyward_verify_cache_hits_total",
		"Verifications answered from the cache (positive or negative entry).", nil, nil)
	missesDesc = prometheus.NewDesc("keyward_verify_cache_misses_total",
		"Verifications that had to ask the store.", nil, nil)
	entriesDesc = prometheus.NewDesc("keyward_verify_cache_entries",
		"Keys in the verification cache.", nil, nil)
	negativeDesc = prometheus.NewDesc("keyward_verify_cache_negative_entries",
		"Negative entries (no such key) in the verification cache.", nil, nil)
	bytesDesc = prometheus.NewDesc("keyward_verify_cache_bytes",
		"Memory of the keys in the verification cache, as it estimates it.", nil, nil)
	maxBytesDesc = prometheus.NewDesc("keyward_verify_cache_max_bytes",
		"The bound of keyward_verify_cache_bytes (cache_max_bytes).", nil, nil)
	evictionsDesc = prometheus.NewDesc("keyward_verify_cache_evictions_total",
		"Keys evicted from the verification cache to stay within cache_max_bytes.", nil, nil)
)

func newMetrics() *metrics {
	return &metrics{cells: make([][len(durationBounds) + 1]atomic.Uint64, len(keyward.Decisions))}
}

func (m *metrics) observe(d keyward.Decision, took time.Duration) {
	i := 0
	for i < len(keyward.Decisions)-1 && keyward.Decisions[i] != d {
		i++
	}
	b := 0
	for b < len(durationBounds) && took > durationBounds[b] {
		b++
	}
	m.cells[i][b].Add(1)
	m.sumNanos.Add(uint64(max(took, 0)))
}

// Describe implements prometheus.Collector.
func (e *Engine) Describe(ch chan<- *prometheus.Desc) {
	ch <- verificationsDesc
	ch <- durationDesc
	ch <- hitsDesc
	ch <- missesDesc
	ch <- entriesDesc
	ch <- negativeDesc
	ch <- bytesDesc
	ch <- maxBytesDesc
	ch <- evictionsDesc
}

// Collect implements prometheus.Collector.
func (e *Engine) Collect(ch chan<- prometheus.Metric) {
	m := e.m
	var buckets [len(durationBounds) + 1]uint64
	for i, d := range keyward.Decisions {
		var n uint64
		for b := range buckets {
			c := m.cells[i][b].Load()
			n += c
			buckets[b] += c
		}
		ch <- prometheus.MustNewConstMetric(verificationsDesc, prometheus.CounterValue, float64(n), string(d))
	}
	var count uint64
	cumulative := make(map[float64]uint64, len(durationBounds))
	for i, le := range durationBounds {
		count += buckets[i]
		cumulative[le.Seconds()] = count
	}
	count += buckets[len(durationBounds)]
	ch <- prometheus.MustNewConstHistogram(durationDesc, count, float64(m.sumNanos.Load())/1e9, cumulative)
	ch <- prometheus.MustNewConstMetric(hitsDesc, prometheus.CounterValue, float64(m.hits.Load()))
	ch <- prometheus.MustNewConstMetric(missesDesc, prometheus.CounterValue, float64(m.misses.Load()))
	c := &e.cache
	ch <- prometheus.MustNewConstMetric(entriesDesc, prometheus.GaugeValue, float64(c.entries.Load()))
	ch <- prometheus.MustNewConstMetric(negativeDesc, prometheus.GaugeValue, float64(c.negCount.Load()))
	ch <- prometheus.MustNewConstMetric(bytesDesc, prometheus.GaugeValue, float64(c.bytes.Load()))
	ch <- prometheus.MustNewConstMetric(maxBytesDesc, prometheus.GaugeValue, float64(c.shardMax*numShards))
	ch <- prometheus.MustNewConstMetric(evictionsDesc, prometheus.CounterValue, float64(c.evictions.Load()))
}

var _ prometheus.Collector = (*Engine)(nil)
