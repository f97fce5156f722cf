package config

import "time"

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
	Disabled bool `yaml:"disabled"`
	// ExpiryInterval, RotationInterval, CleanupInterval, RefillInterval
	// and CheckpointInterval are how often each job runs.
	ExpiryInterval     time.Duration `yaml:"expiry_interval"`
	RotationInterval   time.Duration `yaml:"rotation_interval"`
	CleanupInterval    time.Duration `yaml:"cleanup_interval"`
	RefillInterval     time.Duration `yaml:"refill_interval"`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval"`
	// KeyRetention is how long a revoked or expired key is kept before
	// cleanup deletes it; 0 keeps keys forever.
	KeyRetention time.Duration `yaml:"key_retention"`
	// IPRuleRetention is how long an expired IP rule is kept; 0 keeps
	// them forever.
	IPRuleRetention time.Duration `yaml:"ip_rule_retention"`
	// WebhookRetention is how long finished webhook events and their
	// delivery log are kept; 0 keeps them forever.
	WebhookRetention time.Duration `yaml:"webhook_retention"`
}

// defaultLifecycle is the lifecycle block when none is configured.
func defaultLifecycle() Lifecycle {
	return Lifecycle{KeyRetention: 90 * 24 * time.Hour, IPRuleRetention: 7 * 24 * time.Hour, WebhookRetention: 30 * 24 * time.Hour}
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
