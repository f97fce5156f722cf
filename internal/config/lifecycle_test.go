package config

import (
	"strings"
	"testing"
	"time"
)

func TestLifecycleConfig(t *testing.T) {
	c, err := load(t, "lifecycle:\n  expiry_interval: 30s\n  key_retention: 720h\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	l := c.Lifecycle
	if l.ExpiryInterval != 30*time.Second || l.KeyRetention != 720*time.Hour || l.IPRuleRetention != 7*24*time.Hour {
		t.Errorf("lifecycle = %+v: want the expiry interval and key retention set, the IP rule retention default", l)
	}
	_, err = load(t, "lifecycle:\n  cleanup_interval: 10ms\n  ip_rule_retention: 5m\n", nil)
	for _, want := range []string{"lifecycle.cleanup_interval: 10ms is out of range", "lifecycle.ip_rule_retention: 5m0s is too short", "or 0 to keep them forever"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not say %q", err, want)
		}
	}
	if _, err := load(t, "lifecycle:\n  key_retention: 0s\n", nil); err != nil {
		t.Errorf("key_retention 0 (keep forever): %v", err)
	}
}

func TestUsageRetentionConfig(t *testing.T) {
	c, err := load(t, "usage:\n  minute_retention: 3h\n  day_retention: 8760h\n", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Usage.MinuteRetention != 3*time.Hour || c.Usage.HourRetention != 0 || c.Usage.DayRetention != 8760*time.Hour {
		t.Errorf("usage = %+v", c.Usage)
	}
	_, err = load(t, "usage:\n  minute_retention: 30m\n", nil)
	if err == nil || !strings.Contains(err.Error(), "usage.minute_retention: 30m0s is too short") {
		t.Errorf("minute_retention 30m: error %v, want it named as too short", err)
	}
}
