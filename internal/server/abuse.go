package server

import (
	"context"
	"log/slog"
	"net/netip"
	"sync"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/abuse"
	"github.com/keyward/keyward/abuse/redisabuse"
	"github.com/keyward/keyward/credits"
	"github.com/keyward/keyward/credits/redisledger"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/ratelimit"
	"github.com/keyward/keyward/ratelimit/redislimit"
	goredis "github.com/redis/go-redis/v9"
)

// openMetering returns the rate limiter and the credit ledger cfg selects,
// on the shared Redis client when they use Redis.
func openMetering(cfg *config.Config, store keyward.Store, client goredis.UniversalClient, log *slog.Logger) (ratelimit.Limiter, keyward.CreditLedger, func() error, error) {
	var limiter ratelimit.Limiter = ratelimit.NewLocal(ratelimit.LocalOptions{})
	if cfg.UsesRedis(cfg.RateLimitEngine) {
		l, err := redislimit.New(client, "")
		if err != nil {
			return nil, nil, nil, err
		}
		limiter = l
	}
	if !cfg.UsesRedis(cfg.CreditLedger) {
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
func startDetector(cfg *config.Config, c *Core, log *slog.Logger) (*abuse.Detector, func(), error) {
	ac, err := cfg.DetectorConfig()
	if err != nil {
		return nil, nil, config.Errorf("abuse", "%v", err)
	}
	ac.Recorder, ac.Actions, ac.Logger = abuseActions{c}, abuseActions{c}, log
	if ac.TrustedProxies, err = cfg.TrustedProxyPrefixes(); err != nil {
		return nil, nil, config.Errorf("trusted_proxies", "%v", err)
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
		return nil, nil, config.Errorf("abuse", "%s", keyward.ErrorMessage(err))
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
type abuseActions struct{ c *Core }

// systemIdentity is who the detector acts as: root power, no key.
var systemIdentity = &keyward.Identity{Role: keyward.RoleRoot}

func (a abuseActions) BlockIP(ctx context.Context, network netip.Prefix, until time.Time, reason string) error {
	ctx = keyward.NewContextWithIdentity(ctx, systemIdentity)
	_, err := a.c.Admin.Abuse.CreateIPRule(ctx, keyward.IPRuleCreate{Action: keyward.IPBlock, CIDR: network.String(), Reason: reason, ExpiresAt: &until, Automatic: true})
	return err
}

func (a abuseActions) DisableKey(ctx context.Context, keyID, reason string) error {
	ctx = keyward.NewContextWithIdentity(ctx, systemIdentity)
	disabled := true
	_, err := a.c.Admin.Keys.UpdateKey(ctx, keyID, keyward.KeyUpdate{Disabled: &disabled})
	return err
}

// RecordAnomaly stores a finding with its audit entry (Core.Admin is set
// after the detector is made, so it is read here, at use).
func (a abuseActions) RecordAnomaly(ctx context.Context, an *keyward.Anomaly) error {
	return a.c.Admin.Abuse.RecordAnomaly(ctx, an)
}

func (a abuseActions) ReloadIPRules(ctx context.Context) error {
	return a.c.Engine.ReloadIPRules(ctx)
}
