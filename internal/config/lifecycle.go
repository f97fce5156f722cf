package config

import (
	"time"

	"github.com/keyward/keyward/lifecycle"
)

// Bounds of the lifecycle settings.
const (
	minJobInterval = time.Second
	maxJobInterval = 24 * time.Hour
	minRetention   = time.Hour
)

// Lifecycle is the lifecycle: block of keyward.yaml
// (docs/lifecycle.md). Zero intervals take the defaults of package
// lifecycle; a zero retention keeps forever.
type Lifecycle struct {
	// Disabled runs no job on this instance (others sharing the store
	// still may).
	Disabled           bool `yaml:"disabled"`
	lifecycle.Settings `yaml:",inline"`
}

// defaultLifecycle is the lifecycle block when none is configured.
func defaultLifecycle() Lifecycle {
	return Lifecycle{Settings: lifecycle.Settings{KeyRetention: 90 * 24 * time.Hour, IPRuleRetention: 7 * 24 * time.Hour, WebhookRetention: 30 * 24 * time.Hour}}
}

// validateLifecycle checks the lifecycle block.
func (c *Config) validateLifecycle(add func(key, format string, args ...any)) {
	l := c.Lifecycle
	for _, iv := range []struct {
		name string
		d    time.Duration
	}{{"expiry_interval", l.ExpiryInterval}, {"rotation_interval", l.RotationInterval}, {"cleanup_interval", l.CleanupInterval}, {"refill_interval", l.RefillInterval}, {"checkpoint_interval", l.CheckpointInterval}} {
		if iv.d != 0 && (iv.d < minJobInterval || iv.d > maxJobInterval) {
			add("lifecycle."+iv.name, "%s is out of range: use between %s and %s, or omit it for the default", iv.d, minJobInterval, maxJobInterval)
		}
	}
	for _, r := range []struct {
		name string
		d    time.Duration
	}{{"key_retention", l.KeyRetention}, {"ip_rule_retention", l.IPRuleRetention}, {"webhook_retention", l.WebhookRetention}} {
		if r.d != 0 && r.d < minRetention {
			add("lifecycle."+r.name, "%s is too short: use at least %s (e.g. 720h), or 0 to keep them forever", r.d, minRetention)
		}
	}
}
