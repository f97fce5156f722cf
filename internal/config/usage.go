package config

import (
	"time"

	"github.com/keyward/keyward/usage"
)

// Usage is the usage: block of keyward.yaml: how long the counts of
// each granularity are kept (docs/usage-reports.md). Zero keeps the
// default.
type Usage = usage.Retention

// validateUsage checks the usage block: a granularity's rows must outlive
// the rollup into the next one (a minute row the hour it belongs to, an
// hour row its day).
func (c *Config) validateUsage(add func(key, format string, args ...any)) {
	for _, r := range []struct {
		name     string
		d, least time.Duration
	}{
		{"minute_retention", c.Usage.MinuteRetention, 2 * time.Hour},
		{"hour_retention", c.Usage.HourRetention, 48 * time.Hour},
		{"day_retention", c.Usage.DayRetention, 48 * time.Hour},
	} {
		if r.d != 0 && r.d < r.least {
			add("usage."+r.name, "%s is too short: use at least %s (its rows must outlive their rollup), or omit it for the default", r.d, r.least)
		}
	}
}
