package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/abuse"
	"github.com/keyward/keyward/abuse/redisabuse"
	"github.com/keyward/keyward/credits"
	"github.com/keyward/keyward/credits/redisledger"
	"github.com/keyward/keyward/ratelimit"
	"github.com/keyward/keyward/ratelimit/redislimit"
	goredis "github.com/redis/go-redis/v9"
)

// The engines of rate limits and credits: in this process (local, and the
// store's atomic update for credits) or shared by every instance through
// Redis. Empty settings choose Redis when Redis is configured.
const (
	engineLocal = "local"
	engineStore = "store"
	engineRedis = "redis"
)

// AbuseConfig is the abuse: block of keyward.yaml: brute-force blocking and
// the anomaly rules (docs/abuse-protection.md). Zero values keep the
// defaults of package abuse.
type AbuseConfig struct {
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

// abuseConfig returns the detector configuration of c, with its defaults
// filled and checked; the error names the setting.
func (c *Config) abuseConfig() (abuse.Config, error) {
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
		{"rate_limit_engine", c.RateLimitEngine, engineLocal},
		{"credit_ledger", c.CreditLedger, engineStore},
	} {
		switch s.v {
		case "", s.local:
		case engineRedis:
			if c.Redis == "" {
				add(s.key, "is redis but no Redis is configured: set redis (KEYWARD_REDIS_URL), or use %s", s.local)
			}
		default:
			add(s.key, "%q: use %s or redis (empty: redis when Redis is configured)", s.v, s.local)
		}
	}
	if _, err := c.abuseConfig(); err != nil {
		add("abuse", "%v", err)
	}
}

// usesRedis reports whether setting v (rate_limit_engine or credit_ledger)
// selects Redis.
func (c *Config) usesRedis(v string) bool { return v == engineRedis || (v == "" && c.Redis != "") }

// openMetering returns the rate limiter and the credit ledger cfg selects,
// on the shared Redis client when they use Redis.
func openMetering(cfg *Config, store keyward.Store, client goredis.UniversalClient, log *slog.Logger) (ratelimit.Limiter, keyward.CreditLedger, func() error, error) {
	var limiter ratelimit.Limiter = ratelimit.NewLocal(ratelimit.LocalOptions{})
	if cfg.usesRedis(cfg.RateLimitEngine) {
		l, err := redislimit.New(client, "")
		if err != nil {
			return nil, nil, nil, err
		}
		limiter = l
	}
	if !cfg.usesRedis(cfg.CreditLedger) {
		return limiter, credits.NewStoreLedger(store), func() error { return nil }, nil
	}
	ledger, err := redisledger.New(client, store, redisledger.Options{Logger: log})
	if err != nil {
		return nil, nil, nil, err
	}
	return limiter, ledger, ledger.Close, nil
}

// startDetector builds the abuse detector of cfg and runs it until the
// returned stop. Its actions go through c's admin service, read when an
// action runs, so they reach the invalidation bus once it is started.
func startDetector(cfg *Config, c *core, log *slog.Logger) (*abuse.Detector, func(), error) {
	ac, err := cfg.abuseConfig()
	if err != nil {
		return nil, nil, configErrorf("abuse", "%v", err)
	}
	ac.Recorder, ac.Actions, ac.Logger = abuseActions{c}, abuseActions{c}, log
	if ac.TrustedProxies, err = cfg.trustedProxies(); err != nil {
		return nil, nil, configErrorf("trusted_proxies", "%v", err)
	}
	if c.redis != nil {
		// Counts are keyed by address: clusters sharing one Redis keep
		// them apart by their bus channel, as they do their invalidations.
		prefix := ""
		if cfg.BusChannel != "" {
			prefix = redisabuse.DefaultPrefix + cfg.BusChannel + ":"
		}
		ac.Counter = redisabuse.New(c.redis, prefix)
	}
	d, err := abuse.New(ac)
	if err != nil {
		return nil, nil, configErrorf("abuse", "%s", keyward.ErrorMessage(err))
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { d.Run(ctx) })
	return d, func() { cancel(); wg.Wait() }, nil
}

// abuseActions carries out the detector's actions as the system, and
// records its findings, through the admin service: blocks are global IP
// rules with an expiry, made, applied and audited like an operator's, and
// marked automatic (a valid key still passes them; see verify).
type abuseActions struct{ c *core }

// systemIdentity is who the detector acts as: root power, no key.
var systemIdentity = &keyward.Identity{Role: keyward.RoleRoot}

func (a abuseActions) BlockIP(ctx context.Context, network netip.Prefix, until time.Time, reason string) error {
	ctx = keyward.NewContextWithIdentity(ctx, systemIdentity)
	_, err := a.c.admin.CreateIPRule(ctx, keyward.IPRuleCreate{Action: keyward.IPBlock, CIDR: network.String(), Reason: reason, ExpiresAt: &until, Automatic: true})
	return err
}

func (a abuseActions) DisableKey(ctx context.Context, keyID, reason string) error {
	ctx = keyward.NewContextWithIdentity(ctx, systemIdentity)
	disabled := true
	_, err := a.c.admin.UpdateKey(ctx, keyID, keyward.KeyUpdate{Disabled: &disabled})
	return err
}

// CreateAnomaly stores a finding with its audit entry.
func (a abuseActions) CreateAnomaly(ctx context.Context, an *keyward.Anomaly) error {
	return a.c.admin.RecordAnomaly(ctx, an)
}

func (a abuseActions) ReloadIPRules(ctx context.Context) error {
	return a.c.engine.ReloadIPRules(ctx)
}
