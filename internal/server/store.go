package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/bus"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/provider"
	"github.com/keyward/keyward/provider/gitea"
	"github.com/keyward/keyward/provider/n8n"
	"github.com/keyward/keyward/redis"
	"github.com/keyward/keyward/sqlite"
	"github.com/keyward/keyward/tracing"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
)

// The store and the invalidation bus (docs/architecture.md, verification pipeline and storage): the
// store setting selects SQLite in the data directory (empty, the default)
// or PostgreSQL (a postgres:// URL); the bus is Redis pub/sub when redis is
// set, else PostgreSQL LISTEN/NOTIFY on a PostgreSQL store, else the polled
// invalidations table of the SQLite file (sqlite.Bus), which reaches the
// other processes on the same file (a gateway --data beside serve).

// OpenStore opens the configured store, applying pending migrations; its
// errors come from StoreError. It reads no replica (store_replicas): the
// commands that open it alone do not verify keys.
func OpenStore(ctx context.Context, cfg *config.Config, tp trace.TracerProvider) (keyward.Store, error) {
	return openStore(ctx, cfg, postgres.Options{TracerProvider: tp})
}

// openStore opens the configured store with pg, the options of a
// PostgreSQL store.
func openStore(ctx context.Context, cfg *config.Config, pg postgres.Options) (keyward.Store, error) {
	tp := pg.TracerProvider
	if cfg.UsesPostgres() {
		s, err := postgres.OpenOptions(ctx, cfg.Store, pg)
		if err != nil {
			return nil, StoreError(cfg, err)
		}
		return s, nil
	}
	s, err := sqlite.OpenOptions(ctx, cfg.DatabasePath(), sqlite.Options{TracerProvider: tp})
	if err != nil {
		return nil, StoreError(cfg, err)
	}
	return s, nil
}

// StoreError describes a failure to open or migrate the store. A schema
// newer than this binary still wraps keyward.ErrSchemaTooNew.
func StoreError(cfg *config.Config, err error) error {
	if errors.Is(err, keyward.ErrSchemaTooNew) {
		return fmt.Errorf("store %s: %w", cfg.StoreName(), err)
	}
	return fmt.Errorf("opening the store %s: %w", cfg.StoreName(), err)
}

// SharedPepperError is returned when a PostgreSQL store has no pepper
// configured: keyward would generate one per instance, and keys created on
// one instance would verify on no other.
func SharedPepperError(cfg *config.Config) error {
	return config.Errorf("peppers", "none configured, and the PostgreSQL store is shared by instances that must all hash keys with the same pepper: set %s (or pepper_file) to the same value on every instance, e.g. %s=%s", config.EnvPepper, config.EnvPepper, config.PepperExample)
}

// newAdmin returns the admin services of c telling observer about changes
// (nil: the engine).
func (c *Core) newAdmin(observer keyward.KeyObserver, log *slog.Logger) admin.Services {
	return admin.New(admin.Config{Store: c.Store, Hasher: c.Hasher, Verifier: c.Engine, Observer: observer, Credits: c.ledger, Sealer: c.keyring, WebhookGuard: c.guard, Providers: c.OpenProvider, Prefixes: c.prefixes, PortalIdleTimeout: c.portalIdle, Logger: log})
}

// OpenProvider opens the provider of an external credentials connection,
// its requests traced as client spans "provider KIND" when tracing.
func (c *Core) OpenProvider(kind string, conn provider.Connection) (provider.Provider, error) {
	conn.Transport = tracing.Transport(tracing.Tracer(c.tracer), "provider "+kind, conn.Transport)
	switch kind {
	case provider.KindGitea:
		return gitea.New(conn)
	case provider.KindN8n:
		return n8n.New(conn)
	}
	return nil, keyward.Errorf(keyward.EINVALID, "provider kind %q: use gitea or n8n", kind)
}

// StartBus connects c's engine to the invalidation bus: it chooses the bus
// (Redis, else PostgreSQL LISTEN/NOTIFY, else SQLite's table), makes the
// Broadcaster the admin service's observer and runs its subscriber loop in
// the background. Register c.broadcaster with the metrics registry. The
// returned stop ends the loop and releases the bus; call it after the HTTP
// server has shut down and before closing the store.
func (c *Core) StartBus(ctx context.Context, cfg *config.Config, log *slog.Logger) (stop func(), err error) {
	b, kind, release, err := openBus(cfg, c.Store, c.redis, log)
	if err != nil {
		return nil, err
	}
	c.broadcaster, err = bus.New(bus.Config{
		Engine:      c.Engine,
		Bus:         b,
		DegradedTTL: cfg.BusDownCacheTTL,
		Logger:      log,
	})
	if err != nil {
		release()
		return nil, fmt.Errorf("starting the invalidation bus: %w", err)
	}
	c.Admin = c.newAdmin(c.broadcaster, log)
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
// that releases it. A Redis bus uses client, which the Core closes; a
// SQLite bus uses store.
func openBus(cfg *config.Config, store keyward.Store, client goredis.UniversalClient, log *slog.Logger) (keyward.Bus, string, func(), error) {
	switch {
	case client != nil:
		name := "redis pub/sub " + redis.Redact(cfg.Redis)
		return redis.NewBus(client, cfg.BusChannel, log), name, func() {}, nil
	case cfg.UsesPostgres():
		nb, err := postgres.NewNotifyBus(cfg.Store, cfg.BusChannel, log)
		if err != nil {
			return nil, "", nil, config.Errorf("bus_channel", "%s", keyward.ErrorMessage(err))
		}
		return nb, "postgres LISTEN/NOTIFY", nb.Close, nil
	}
	if s, ok := store.(*sqlite.Store); ok {
		return sqlite.NewBus(s, 0, log), "sqlite " + cfg.DatabasePath(), func() {}, nil
	}
	return bus.NewLocal(), "in process", func() {}, nil
}
