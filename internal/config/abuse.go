package config

import (
	"fmt"
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
// the anomaly rules (docs/abuse-protection.md). Each rule's block is that
// rule's settings in package abuse, so a rule reads exactly the settings it
// has (another is not a setting: yamldoc names it); Default holds
// abuse.DefaultConfig's values, and a zero value keeps the default.
type Abuse struct {
	// Disabled turns brute-force blocking and every anomaly rule off.
	Disabled bool `yaml:"disabled"`
	// BlockFor is how long an automatic block lasts.
	BlockFor time.Duration `yaml:"block_for"`
	// AllowList holds networks (CIDRs or addresses) never blocked
	// automatically.
	AllowList []string `yaml:"allow_list"`
	// IPv6PrefixLen is the IPv6 network counted and blocked as one client.
	IPv6PrefixLen int `yaml:"ipv6_prefix_len"`

	BruteForce    abuse.BruteForce    `yaml:"brute_force"`
	IPSpread      abuse.IPSpread      `yaml:"ip_spread"`
	UsageSpike    abuse.UsageSpike    `yaml:"usage_spike"`
	RevokedKeyUse abuse.RevokedKeyUse `yaml:"revoked_key_use"`
	FailureBurst  abuse.FailureBurst  `yaml:"failure_burst"`
}

// defaultAbuse is the abuse block of Default: abuse.DefaultConfig's.
func defaultAbuse() Abuse {
	d := abuse.DefaultConfig()
	return Abuse{
		BlockFor: d.BlockFor, IPv6PrefixLen: d.IPv6PrefixLen,
		BruteForce: d.BruteForce, IPSpread: d.IPSpread, UsageSpike: d.UsageSpike,
		RevokedKeyUse: d.RevokedKeyUse, FailureBurst: d.FailureBurst,
	}
}

// DetectorConfig returns the detector configuration of c, with its defaults
// filled and checked; the error names the setting.
func (c *Config) DetectorConfig() (abuse.Config, error) {
	a := c.Abuse
	out := abuse.DefaultConfig()
	out.BlockFor, out.IPv6PrefixLen = a.BlockFor, a.IPv6PrefixLen
	out.BruteForce, out.IPSpread, out.UsageSpike = a.BruteForce, a.IPSpread, a.UsageSpike
	out.RevokedKeyUse, out.FailureBurst = a.RevokedKeyUse, a.FailureBurst
	if a.Disabled {
		out.BruteForce.Enabled, out.IPSpread.Enabled, out.UsageSpike.Enabled = false, false, false
		out.RevokedKeyUse.Enabled, out.FailureBurst.Enabled = false, false
	}
	for _, s := range a.AllowList {
		p, err := keyward.ParsePrefix(s)
		if err != nil {
			return out, fmt.Errorf("allow_list: %s", keyward.ErrorMessage(err))
		}
		out.AllowList = append(out.AllowList, p)
	}
	if err := out.Validate(); err != nil {
		// "abuse: Config.BruteForce.Window is ..." names the Go field;
		// the message is clear enough with the setting named around it.
		return out, fmt.Errorf("%s", strings.TrimPrefix(keyward.ErrorMessage(err), "abuse: "))
	}
	return out, nil
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
