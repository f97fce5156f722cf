package config

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/abuse"
)

// The engines of rate limits and credits: in this process (local, and the
// store's atomic update for credits) or shared by every instance through
// Redis. Empty settings choose Redis when Redis is configured.
const (
	EngineLocal = "local"
	EngineStore = "store"
	EngineRedis = "redis"
)

// Abuse is the abuse: block of keyward.yaml: brute-force blocking and
// the anomaly rules (docs/abuse-protection.md). Zero values keep the
// defaults of package abuse.
type Abuse struct {
	// Disabled turns brute-force blocking and every anomaly rule off.
	Disabled bool `yaml:"disabled"`
	// BlockFor is how long an automatic block lasts.
	BlockFor time.Duration `yaml:"block_for"`
	// AllowList holds networks never blocked automatically.
	AllowList []string `yaml:"allow_list"`
	// IPv6PrefixLen is the IPv6 network counted and blocked as one client.
	IPv6PrefixLen int `yaml:"ipv6_prefix_len"`

	BruteForce    AbuseRule `yaml:"brute_force"`
	IPSpread      AbuseRule `yaml:"ip_spread"`
	UsageSpike    AbuseRule `yaml:"usage_spike"`
	RevokedKeyUse AbuseRule `yaml:"revoked_key_use"`
	FailureBurst  AbuseRule `yaml:"failure_burst"`
}

// AbuseRule is the settings of one rule; each rule reads those it has (see
// docs/abuse-protection.md) and refuses the others.
type AbuseRule struct {
	Enabled     *bool         `yaml:"enabled"`
	Threshold   int64         `yaml:"threshold"`
	Window      time.Duration `yaml:"window"`
	Windows     int           `yaml:"windows"`
	MinNetworks int           `yaml:"min_networks"`
	Factor      float64       `yaml:"factor"`
	Minimum     int64         `yaml:"minimum"`
	Severity    string        `yaml:"severity"`
	Action      string        `yaml:"action"`
}

// DetectorConfig returns the detector configuration of c, with its defaults
// filled and checked; the error names the setting.
func (c *Config) DetectorConfig() (abuse.Config, error) {
	a := c.Abuse
	out := abuse.DefaultConfig()
	if a.BlockFor != 0 {
		out.BlockFor = a.BlockFor
	}
	if a.IPv6PrefixLen != 0 {
		out.IPv6PrefixLen = a.IPv6PrefixLen
	}
	for _, s := range a.AllowList {
		p, err := keyward.ParsePrefix(s)
		if err != nil {
			return out, fmt.Errorf("allow_list: %s", keyward.ErrorMessage(err))
		}
		out.AllowList = append(out.AllowList, p)
	}
	type field struct {
		name string
		set  bool
	}
	var bad []string
	rule := func(name string, r AbuseRule, enabled *bool, allowed ...string) {
		if r.Enabled != nil {
			*enabled = *r.Enabled && !a.Disabled
		} else {
			*enabled = !a.Disabled
		}
		for _, f := range []field{{"threshold", r.Threshold != 0}, {"window", r.Window != 0}, {"windows", r.Windows != 0},
			{"min_networks", r.MinNetworks != 0}, {"factor", r.Factor != 0}, {"minimum", r.Minimum != 0},
			{"severity", r.Severity != ""}, {"action", r.Action != ""}} {
			if f.set && !slices.Contains(allowed, f.name) {
				bad = append(bad, name+"."+f.name)
			}
		}
	}
	bf, ips, us, rk, fb := a.BruteForce, a.IPSpread, a.UsageSpike, a.RevokedKeyUse, a.FailureBurst
	rule("brute_force", bf, &out.BruteForce.Enabled, "threshold", "window", "severity")
	override(&out.BruteForce.Threshold, bf.Threshold)
	override(&out.BruteForce.Window, bf.Window)
	override(&out.BruteForce.Severity, keyward.Severity(bf.Severity))
	rule("ip_spread", ips, &out.IPSpread.Enabled, "window", "windows", "min_networks", "factor", "severity", "action")
	override(&out.IPSpread.Window, ips.Window)
	override(&out.IPSpread.Windows, ips.Windows)
	override(&out.IPSpread.MinNetworks, ips.MinNetworks)
	override(&out.IPSpread.Factor, ips.Factor)
	override(&out.IPSpread.Severity, keyward.Severity(ips.Severity))
	override(&out.IPSpread.Action, keyward.AnomalyAction(ips.Action))
	rule("usage_spike", us, &out.UsageSpike.Enabled, "window", "windows", "factor", "minimum", "severity", "action")
	override(&out.UsageSpike.Window, us.Window)
	override(&out.UsageSpike.Windows, us.Windows)
	override(&out.UsageSpike.Factor, us.Factor)
	override(&out.UsageSpike.Minimum, us.Minimum)
	override(&out.UsageSpike.Severity, keyward.Severity(us.Severity))
	override(&out.UsageSpike.Action, keyward.AnomalyAction(us.Action))
	rule("revoked_key_use", rk, &out.RevokedKeyUse.Enabled, "window", "severity", "action")
	override(&out.RevokedKeyUse.Window, rk.Window)
	override(&out.RevokedKeyUse.Severity, keyward.Severity(rk.Severity))
	override(&out.RevokedKeyUse.Action, keyward.AnomalyAction(rk.Action))
	rule("failure_burst", fb, &out.FailureBurst.Enabled, "threshold", "window", "severity")
	override(&out.FailureBurst.Threshold, fb.Threshold)
	override(&out.FailureBurst.Window, fb.Window)
	override(&out.FailureBurst.Severity, keyward.Severity(fb.Severity))
	if len(bad) > 0 {
		return out, fmt.Errorf("%s: not a setting of that rule (see docs/abuse-protection.md)", strings.Join(bad, ", "))
	}
	if err := out.Validate(); err != nil {
		// "abuse: Config.BruteForce.Window is ..." names the Go field;
		// the message is clear enough with the setting named around it.
		return out, fmt.Errorf("%s", strings.TrimPrefix(keyward.ErrorMessage(err), "abuse: "))
	}
	return out, nil
}

// override sets *dst to v unless v is the zero value.
func override[T comparable](dst *T, v T) {
	var zero T
	if v != zero {
		*dst = v
	}
}

// validateAbuse checks the engine selectors and the abuse block.
func (c *Config) validateAbuse(add func(key, format string, args ...any)) {
	for _, s := range []struct{ key, v, local string }{
		{"rate_limit_engine", c.RateLimitEngine, EngineLocal},
		{"credit_ledger", c.CreditLedger, EngineStore},
	} {
		switch s.v {
		case "", s.local:
		case EngineRedis:
			if c.Redis == "" {
				add(s.key, "is redis but no Redis is configured: set redis (KEYWARD_REDIS_URL), or use %s", s.local)
			}
		default:
			add(s.key, "%q: use %s or redis (empty: redis when Redis is configured)", s.v, s.local)
		}
	}
	if _, err := c.DetectorConfig(); err != nil {
		add("abuse", "%v", err)
	}
}

// UsesRedis reports whether setting v (rate_limit_engine or credit_ledger)
// selects Redis.
func (c *Config) UsesRedis(v string) bool { return v == EngineRedis || (v == "" && c.Redis != "") }
