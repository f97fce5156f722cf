package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"regexp"
	"strings"
	"sync"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/bus"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/provider"
	"github.com/keyward/keyward/provider/gitea"
	"github.com/keyward/keyward/provider/n8n"
	"github.com/keyward/keyward/redis"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/tracing"
	goredis "github.com/redis/go-redis/v9"
)

// The store and the invalidation bus (docs/architecture.md, verification pipeline and storage): the
// store setting selects SQLite in the data directory (empty, the default)
// or PostgreSQL (a postgres:// URL); the bus is Redis pub/sub when redis is
// set, else PostgreSQL LISTEN/NOTIFY on a PostgreSQL store, else the polled
// invalidations table of the SQLite file (sqlite.Bus), which reaches the
// other processes on the same file (a gateway --data beside serve).

// storeExample shows a store URL in messages.
const storeExample = "postgres://keyward:PASSWORD@db.internal:5432/keyward"

// usesPostgres reports whether the store setting selects PostgreSQL.
func (c *Config) usesPostgres() bool { return hasScheme(c.Store, "postgres", "postgresql") }

// storeName describes the store for logs, without a password.
func (c *Config) storeName() string {
	if c.usesPostgres() {
		return redactURL(c.Store)
	}
	return "sqlite " + c.DatabasePath()
}

// validateStore checks store, redis, redis_channel and bus_down_cache_ttl.
// Messages never quote a URL: it may hold a password.
func (c *Config) validateStore(add func(key, format string, args ...any)) {
	if c.Store != "" && !c.usesPostgres() {
		add("store", "%s is not a store keyward knows: leave it empty for SQLite in the data directory, or set a PostgreSQL URL, e.g. %s", describeValue(c.Store), storeExample)
	} else if c.Store != "" {
		if _, err := url.Parse(c.Store); err != nil {
			add("store", "is not a valid URL: write it as %s (percent-encode special characters in the password)", storeExample)
		}
	}
	if c.Redis != "" {
		if !hasScheme(c.Redis, "redis", "rediss", "unix") {
			add("redis", "%s is not a Redis URL: use redis://[:PASSWORD@]HOST:6379/0, or rediss:// for TLS", describeValue(c.Redis))
		} else if client, err := redis.Open(c.Redis); err != nil {
			add("redis", "%s", keyward.ErrorMessage(err))
		} else {
			client.Close()
		}
	}
	switch {
	case c.BusChannel == "" || c.Redis != "":
	case !c.usesPostgres():
		add("bus_channel", "is set but there is no bus to name: set redis or a PostgreSQL store too, or unset bus_channel")
	case !notifyChannel.MatchString(c.BusChannel):
		add("bus_channel", "%q cannot name a PostgreSQL LISTEN/NOTIFY channel: use lower case letters, digits and underscores, not starting with a digit, at most 63 characters", c.BusChannel)
	}
	if c.BusDownCacheTTL < minCacheTTL || c.BusDownCacheTTL > c.CacheTTL {
		add("bus_down_cache_ttl", "%s is out of range: use between %s and cache_ttl (%s), e.g. %s", c.BusDownCacheTTL, minCacheTTL, c.CacheTTL, max(minCacheTTL, min(bus.DefaultDegradedTTL, c.CacheTTL)))
	}
}

// notifyChannel is what postgres.NewNotifyBus accepts as a channel.
var notifyChannel = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// hasScheme reports whether s is a URL with one of schemes.
func hasScheme(s string, schemes ...string) bool {
	scheme, _, ok := strings.Cut(s, "://")
	if !ok {
		return false
	}
	for _, want := range schemes {
		if strings.EqualFold(scheme, want) {
			return true
		}
	}
	return false
}

// describeValue names what s looks like without repeating it.
func describeValue(s string) string {
	if scheme, _, ok := strings.Cut(s, "://"); ok {
		return fmt.Sprintf("a URL with scheme %q", scheme)
	}
	return "the value"
}

// redactURL returns s with the password of its user info and of its
// password query parameters replaced by xxxxx, for logs and config check.
func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "(not a URL)"
	}
	q := u.Query()
	redacted := false
	for k := range q {
		if strings.Contains(strings.ToLower(k), "password") {
			q.Set(k, "xxxxx")
			redacted = true
		}
	}
	if redacted {
		u.RawQuery = q.Encode()
	}
	return u.Redacted()
}

// openStore opens the configured store, applying pending migrations. A
// schema newer than this binary is an exitError with ExitConfig.
func openStore(ctx context.Context, cfg *Config) (keyward.Store, error) {
	if cfg.usesPostgres() {
		s, err := postgres.OpenOptions(ctx, cfg.Store, postgres.Options{TracerProvider: cfg.tracer})
		if err != nil {
			return nil, storeError(cfg, err)
		}
		return s, nil
	}
	s, err := sqlite.OpenOptions(ctx, cfg.DatabasePath(), sqlite.Options{TracerProvider: cfg.tracer})
	if err != nil {
		return nil, storeError(cfg, err)
	}
	return s, nil
}

// storeError describes a failure to open or migrate the store.
func storeError(cfg *Config, err error) error {
	if errors.Is(err, keyward.ErrSchemaTooNew) {
		return &exitError{code: ExitConfig, err: fmt.Errorf("store %s: %w", cfg.storeName(), err)}
	}
	return fmt.Errorf("opening the store %s: %w", cfg.storeName(), err)
}

// sharedPepperError is returned when a PostgreSQL store has no pepper
// configured: keyward would generate one per instance, and keys created on
// one instance would verify on no other.
func sharedPepperError(cfg *Config) error {
	return configErrorf("peppers", "none configured, and the PostgreSQL store is shared by instances that must all hash keys with the same pepper: set %s (or pepper_file) to the same value on every instance, e.g. %s=%s", envPepper, envPepper, pepperExample)
}

// newAdmin returns the admin service of c telling observer about changes
// (nil: the engine).
func (c *core) newAdmin(observer keyward.KeyObserver, log *slog.Logger) *admin.Service {
	return admin.New(admin.Config{Store: c.store, Hasher: c.hasher, Verifier: c.engine, Observer: observer, Credits: c.ledger, Sealer: c.keyring, WebhookGuard: c.guard, Providers: c.openProvider, Logger: log})
}

// openProvider opens the provider of an external credentials connection,
// its requests traced as client spans "provider KIND" when tracing.
func (c *core) openProvider(kind string, conn provider.Connection) (provider.Provider, error) {
	conn.Transport = tracing.Transport(tracing.Tracer(c.tracer), "provider "+kind, conn.Transport)
	switch kind {
	case provider.KindGitea:
		return gitea.New(conn)
	case provider.KindN8n:
		return n8n.New(conn)
	}
	return nil, keyward.Errorf(keyward.EINVALID, "provider kind %q: use gitea or n8n", kind)
}

// startBus connects c's engine to the invalidation bus: it chooses the bus
// (Redis, else PostgreSQL LISTEN/NOTIFY, else SQLite's table), makes the
// Broadcaster the admin service's observer and runs its subscriber loop in
// the background. Register c.broadcaster with the metrics registry. The
// returned stop ends the loop and releases the bus; call it after the HTTP
// server has shut down and before closing the store.
func (c *core) startBus(ctx context.Context, cfg *Config, log *slog.Logger) (stop func(), err error) {
	b, kind, release, err := openBus(cfg, c.store, c.redis, log)
	if err != nil {
		return nil, err
	}
	c.broadcaster, err = bus.New(bus.Config{
		Engine:      c.engine,
		Bus:         b,
		DegradedTTL: cfg.BusDownCacheTTL,
		Logger:      log,
	})
	if err != nil {
		release()
		return nil, fmt.Errorf("starting the invalidation bus: %w", err)
	}
	c.admin = c.newAdmin(c.broadcaster, log)
	log.Info("invalidation bus", "bus", kind, "cache_ttl", cfg.CacheTTL, "bus_down_cache_ttl", cfg.BusDownCacheTTL)

	ctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := c.broadcaster.Run(ctx); err != nil {
			log.Error("invalidation bus stopped: other instances' changes are seen within the cache TTL", "err", err)
		}
	})
	return func() {
		cancel()
		wg.Wait()
		release()
	}, nil
}

// openBus returns the bus cfg selects, its name for logs and a function
// that releases it. A Redis bus uses client, which the core closes; a
// SQLite bus uses store.
func openBus(cfg *Config, store keyward.Store, client goredis.UniversalClient, log *slog.Logger) (keyward.Bus, string, func(), error) {
	switch {
	case client != nil:
		name := "redis pub/sub " + redis.Redact(cfg.Redis)
		return redis.NewBus(client, cfg.BusChannel, log), name, func() {}, nil
	case cfg.usesPostgres():
		nb, err := postgres.NewNotifyBus(cfg.Store, cfg.BusChannel, log)
		if err != nil {
			return nil, "", nil, configErrorf("bus_channel", "%s", keyward.ErrorMessage(err))
		}
		return nb, "postgres LISTEN/NOTIFY", nb.Close, nil
	}
	if s, ok := store.(*sqlite.Store); ok {
		return sqlite.NewBus(s, 0, log), "sqlite " + cfg.DatabasePath(), func() {}, nil
	}
	return bus.NewLocal(), "in process", func() {}, nil
}
