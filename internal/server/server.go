// Package server wires keyward's server side from a config.Config: Open
// assembles the store, hasher, admin service and (for serve and gateway)
// the verification engine with its limiter, ledger, abuse detector, usage
// aggregator and webhook sender; Serve runs the API and the gateway until a
// signal; StartTracing, StartBus and ListenGateway are the pieces the
// gateway command shares.
package server

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/abuse"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/bus"
	"github.com/keyward/keyward/console"
	"github.com/keyward/keyward/httpapi"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/ratelimit"
	"github.com/keyward/keyward/redis"
	"github.com/keyward/keyward/unkeyv2"
	"github.com/keyward/keyward/usage"
	"github.com/keyward/keyward/verify"
	"github.com/keyward/keyward/webhook"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
)

// HTTP server limits. Request bodies are bounded by httpapi.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
)

// Core is the wired server side of serve, gateway and the commands that
// work on the store directly: the store, the hasher, the verification
// engine and the admin services, with what they run on.
type Core struct {
	// Store is the opened store, migrations applied.
	Store keyward.Store
	// Engine verifies keys; nil unless Open was asked for it.
	Engine *verify.Engine
	// Admin are the admin services over Store.
	Admin admin.Services
	// Hasher hashes keys with the configured peppers.
	Hasher *apikey.Hasher
	// keyring seals audit details, secret metadata and webhook secrets.
	keyring *keyring.Keyring
	// redis is the client shared by the bus, the rate limiter, the credit
	// ledger and the abuse counter; nil without Redis.
	redis goredis.UniversalClient
	// limiter is the rate limit engine of the verification engine and of
	// the Unkey v2 API's standalone limits.
	limiter ratelimit.Limiter
	// ledger holds the live credits; closeLedger writes back its last
	// counts.
	ledger      keyward.CreditLedger
	closeLedger func() error
	// usage counts verification outcomes per minute, key and code;
	// stopUsage writes the last counts.
	usage     *usage.Aggregator
	stopUsage func() error
	// detector is the abuse detector, stopped by stopDetector.
	detector     *abuse.Detector
	stopDetector func()
	// broadcaster is set by StartBus (store.go).
	broadcaster *bus.Broadcaster
	// guard checks webhook endpoint URLs; sender delivers webhook events,
	// stopped by stopSender.
	guard      webhook.Guard
	sender     *webhook.Sender
	stopSender func()
	// tracer traces provider calls; nil: tracing is off.
	tracer trace.TracerProvider
	// prefixes are the configured key prefixes (key_prefixes).
	prefixes apikey.Prefixes
	// portalIdle ends portal sessions unused this long: the console's
	// idle timeout (console.idle_timeout, or the console's default).
	portalIdle time.Duration
}

// Open opens the data directory, loads (or generates) the peppers and
// opens the store. withEngine also starts the verification engine.
func Open(ctx context.Context, cfg *config.Config, tp trace.TracerProvider, log *slog.Logger, withEngine bool) (*Core, error) {
	if err := cfg.PrepareDataDir(true); err != nil {
		return nil, err
	}
	// A shared PostgreSQL store needs a shared pepper: never generate one.
	peppers, err := cfg.LoadPeppers(log, !cfg.UsesPostgres())
	if err != nil {
		return nil, err
	}
	if len(peppers) == 0 {
		return nil, SharedPepperError(cfg)
	}
	hasher, err := apikey.NewHasher(peppers)
	if err != nil {
		return nil, config.Errorf("peppers", "%s", keyward.ErrorMessage(err))
	}
	pg := postgres.Options{TracerProvider: tp, Logger: log}
	if withEngine { // only key lookups read replicas
		pg.Replicas = cfg.StoreReplicas
	}
	store, err := openStore(ctx, cfg, pg)
	if err != nil {
		return nil, err
	}
	if r, ok := store.(keyward.StorageReporter); ok {
		r.Storage().SetLogger(log.With("component", "store"))
	}
	c := &Core{Store: store, Hasher: hasher, tracer: tp, prefixes: cfg.KeyPrefixes, portalIdle: cmp.Or(cfg.Console.IdleTimeout, console.DefaultIdleTimeout)}
	if c.keyring, err = cfg.OpenKeyring(log); err != nil {
		store.Close()
		return nil, err
	}
	wc, err := cfg.SenderConfig()
	if err != nil {
		store.Close()
		return nil, config.Errorf("webhooks", "%v", err)
	}
	c.guard = wc.Guard
	if err := c.openEngine(cfg, log, withEngine); err != nil {
		c.Close(context.Background(), log)
		return nil, err
	}
	c.Admin = c.newAdmin(nil, log)
	return c, nil
}

// bindProviderPasswords re-seals the provider connection passwords that an
// older keyward sealed with their connection id only, binding them to
// their kind, base URL and user name (docs/providers.md). A password that
// fails to open is logged and left: the connection refuses to send it
// until root sets it again.
func (c *Core) bindProviderPasswords(ctx context.Context, log *slog.Logger) {
	n, err := c.keyring.ResealKind(ctx, c.Store, keyward.SealedProviderPassword)
	if n > 0 {
		log.Info("bound provider connection passwords to their kind, base URL and user name", "count", n)
	}
	if err != nil {
		log.Error("binding provider connection passwords: a connection whose password does not open refuses to send it; set it again with keyward providers update ID --password-file FILE", "err", err)
	}
}

// openEngine opens the Redis client, the rate limiter and the credit ledger
// of c and, withEngine, starts the abuse detector, the usage aggregator, the
// webhook sender and the verification engine.
func (c *Core) openEngine(cfg *config.Config, log *slog.Logger, withEngine bool) error {
	if cfg.Redis != "" {
		client, err := redis.Open(cfg.Redis)
		if err != nil {
			return config.Errorf("redis", "%s", keyward.ErrorMessage(err))
		}
		c.redis = client
	}
	limiter, ledger, closeLedger, err := openMetering(cfg, c.Store, c.redis, log)
	if err != nil {
		return fmt.Errorf("opening the rate limiter and credit ledger: %w", err)
	}
	c.limiter, c.ledger, c.closeLedger = limiter, ledger, closeLedger
	if !withEngine {
		return nil
	}
	if c.detector, c.stopDetector, err = startDetector(cfg, c, log); err != nil {
		return err
	}
	c.usage, c.stopUsage = startUsage(c.Store, cfg.Usage, log)
	if c.sender, c.stopSender, err = startSender(cfg, c, log); err != nil {
		return err
	}
	c.Engine, err = verify.New(verify.Config{
		Store:    c.Store,
		Hasher:   c.Hasher,
		CacheTTL: cfg.CacheTTL,
		MaxStale: cfg.MaxStale,
		MaxBytes: cfg.EffectiveCacheMaxBytes(),
		Limiter:  limiter,
		Credits:  ledger,
		Signals:  usage.Tee(c.detector, c.usage, c.sender),
		Logger:   log,

		TracerProvider: c.tracer,
	})
	if err != nil {
		return fmt.Errorf("starting the verification engine: %w", err)
	}
	return nil
}

// startMaintainTimeout bounds the usage maintenance a start waits for.
var startMaintainTimeout = 10 * time.Second

// startUsage runs the usage aggregator of store until the returned stop,
// which writes its last counts. It brings the rollups up to date before it
// returns (Run only maintains after its first interval), so reports served
// from the first request on include everything counted before this start.
// It waits for that at most startMaintainTimeout: instances starting
// together on one PostgreSQL queue on the roll-up's lock, and the one
// holding it brings the same rollups up to date, so the others serve
// rather than wait behind a long roll-up.
func startUsage(store keyward.Store, uc config.Usage, log *slog.Logger) (*usage.Aggregator, func() error) {
	agg := usage.New(store, usage.Config{Retention: uc, Logger: log})
	ctx, cancel := context.WithCancel(context.Background())
	mctx, mcancel := context.WithTimeout(ctx, startMaintainTimeout)
	if err := agg.Maintain(mctx); errors.Is(err, context.DeadlineExceeded) {
		log.Warn("usage maintenance did not finish at start (another instance may hold the roll-up); serving now, it is tried again every minute", "waited", startMaintainTimeout)
	} else if err != nil {
		log.Error("usage maintenance failed; it is tried again every minute", "error", err)
	}
	mcancel()
	done := make(chan error, 1)
	go func() { done <- agg.Run(ctx) }()
	return agg, func() error { cancel(); return <-done }
}

// Close stops the abuse detector and the webhook sender, flushes the
// engine's usage batch, the usage counts and the credit ledger's counts,
// then closes the store and Redis.
func (c *Core) Close(ctx context.Context, log *slog.Logger) error {
	var errs []error
	if c.stopDetector != nil {
		c.stopDetector()
	}
	if c.stopSender != nil {
		c.stopSender()
	}
	if c.Engine != nil {
		if err := c.Engine.Close(ctx); err != nil {
			log.Error("flushing key usage", "err", err)
			errs = append(errs, fmt.Errorf("flushing key usage: %w", err))
		}
	}
	if c.stopUsage != nil {
		// After the engine: its last usage batch is counted first.
		if err := c.stopUsage(); err != nil {
			log.Error("writing usage counts", "err", err)
			errs = append(errs, fmt.Errorf("writing usage counts: %w", err))
		}
	}
	if c.closeLedger != nil {
		if err := c.closeLedger(); err != nil {
			log.Error("writing back credits", "err", err)
			errs = append(errs, fmt.Errorf("writing back credits: %w", err))
		}
	}
	if err := c.Store.Close(); err != nil {
		log.Error("closing the store", "err", err)
		errs = append(errs, fmt.Errorf("closing the store: %w", err))
	}
	if c.redis != nil {
		c.redis.Close()
	}
	return errors.Join(errs...)
}

// Options is what Serve needs besides the settings.
type Options struct {
	// Getenv reads the environment (the OTEL_* variables of tracing).
	Getenv func(string) string
	// Version is reported in logs, on /healthz and in spans.
	Version string
	// Log receives the server's log.
	Log *slog.Logger
	// RootKey shows the root key created on the first start of a store;
	// it is never shown again, so it must be set.
	RootKey func(secret keyward.Secret)
	// Listening, if set, is called with the address the API accepts
	// connections on (useful with port 0).
	Listening func(addr string)
}

// Serve runs the API (and, with gateway_listen, the gateway) of cfg until
// ctx ends or SIGINT or SIGTERM arrives, then shuts down within
// shutdown_timeout. An unclean stop is a *ShutdownError.
func Serve(ctx context.Context, cfg *config.Config, opts Options) (err error) {
	log := opts.Log
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	log.Info("starting keyward", "version", opts.Version, "data", cfg.Data, "store", cfg.StoreName(), "peppers", cfg.PepperSource())
	tp, stopTracing, err := StartTracing(ctx, opts.Getenv, log, opts.Version)
	if err != nil {
		return err
	}
	defer StopTracing(ctx, cfg, stopTracing) // last: the spans of the shutdown are flushed too
	c, err := Open(ctx, cfg, tp, log, true)
	if err != nil {
		return err
	}
	c.bindProviderPasswords(ctx, log)
	if plainUntil, err := c.Admin.Audit.KeyAuditChain(ctx); err != nil {
		return fmt.Errorf("keying the audit chain: %w", err)
	} else if plainUntil > 0 {
		log.Warn("the audit log's newest entry is hashed with plain SHA-256: keyed the chain from it on (audit.chain_keyed). Expected once, at the upgrade that keys the chain; if this keyward was upgraded before, the log was rewritten: check it with keyward audit verify --expect against a checkpoint (docs/audit.md)", "plain_until", plainUntil)
	}
	defer func() {
		// Shutdown and the final usage flush get their own deadline: ctx
		// is already cancelled by then.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		if cerr := c.Close(sctx, log); err == nil {
			// Only a stop on a signal gets here without an error.
			err = Unclean(cerr)
		}
		if err == nil {
			log.Info("keyward stopped")
		}
	}()
	stopBus, err := c.StartBus(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer stopBus() // after the HTTP server is shut down, before the store closes

	// Bind first so a busy port fails before a root key is created.
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return config.Errorf("listen", "cannot listen on %s: %v", cfg.Listen, err)
	}
	defer ln.Close()
	var gw *GatewayServer
	if cfg.GatewayListen != "" {
		gc, errs := cfg.GatewayConfig()
		if len(errs) > 0 {
			return &config.Error{Errors: errs}
		}
		gc.Verifier, gc.Logger, gc.TracerProvider = c.Engine, log, tp
		if gw, err = ListenGateway(ctx, cfg.GatewayListen, gc, log, config.YAMLName, "gateway_listen"); err != nil {
			return err
		}
		defer gw.ln.Close()
	}

	// The first start of a store without a usable root key creates one and
	// shows it once; while a usable root key exists this is a conflict and
	// prints nothing.
	secret, key, err := c.Admin.Keys.Bootstrap(ctx)
	switch {
	case err == nil:
		opts.RootKey(secret)
		log.Warn("created the root key and printed it on stdout; it will not be shown again", "key_id", key.ID)
	case keyward.ErrorCode(err) == keyward.ECONFLICT:
		log.Debug("a usable root key exists; not bootstrapping")
	default:
		return fmt.Errorf("bootstrapping the root key: %w", err)
	}

	jobs, stopJobs, err := c.startLifecycle(cfg, log)
	if err != nil {
		return err
	}
	defer stopJobs() // before the store closes

	// A registry of our own: no package-global metrics.
	reg := prometheus.NewRegistry()
	if jobs != nil {
		if err := reg.Register(jobs); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}
	if col, ok := c.Store.(prometheus.Collector); ok { // read replicas
		if err := reg.Register(col); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}
	for _, col := range []prometheus.Collector{
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		c.Engine,
		c.broadcaster,
		c.detector,
		c.sender,
	} {
		if err := reg.Register(col); err != nil {
			return fmt.Errorf("registering metrics: %w", err)
		}
	}
	forwardAuth, err := newForwardAuth(cfg, c.Engine, log)
	if err != nil {
		return err
	}
	trusted, err := cfg.TrustedProxyPrefixes()
	if err != nil {
		return config.Errorf("trusted_proxies", "%v", err)
	}
	challenge, err := cfg.Challenge()
	if err != nil {
		return config.Errorf("www_authenticate_scheme", "%s", keyward.ErrorMessage(err))
	}
	services := httpapi.Services{Tenancy: c.Admin.Tenancy, Roles: c.Admin.Roles, Keys: c.Admin.Keys, Credentials: c.Admin.Credentials, Webhooks: c.Admin.Webhooks, Audit: c.Admin.Audit, Abuse: c.Admin.Abuse}
	if !cfg.Console.Disabled { // the portal's links lead to its pages, served with the console
		services.Portal = c.Admin.Portal
	}
	api := httpapi.New(httpapi.Config{
		TrustedProxies: trusted,
		Challenge:      challenge,
		AgentHeaders:   cfg.AgentHeaders,
		PortalURL:      cfg.Console.PortalURL(),
		Services:       services,
		Engine:         c.Engine,
		Store:          c.Store,
		Gatherer:       reg,
		Registerer:     reg,
		ForwardAuth:    forwardAuth,
		Logger:         log,
		Version:        opts.Version,
		TracerProvider: tp,
	})
	// The Unkey v2 keys API (docs/unkey.md) beside /v1, with the same
	// services, authentication and client addresses.
	handler := http.NewServeMux()
	handler.Handle("/", api)
	v2 := unkeyv2.New(unkeyv2.Config{
		Tenancy:        c.Admin.Tenancy,
		Keys:           c.Admin.Keys,
		Roles:          c.Admin.Roles,
		Engine:         c.Engine,
		Denied:         c.Admin.Audit,
		Prefixes:       cfg.KeyPrefixes,
		TrustedProxies: trusted,
		Challenge:      challenge,
		AgentHeaders:   cfg.AgentHeaders,
		Limiter:        c.limiter,
		Logger:         log,
	})
	// Counted in /metrics and traced as /v1 requests are.
	handler.Handle(unkeyv2.Prefix, api.Instrument(v2, v2.Routes(), v2.Route))
	if !cfg.Console.Disabled {
		handler.Handle(console.Path+"/", console.New(console.Config{
			Tenancy:        c.Admin.Tenancy,
			Keys:           c.Admin.Keys,
			Roles:          c.Admin.Roles,
			Abuse:          c.Admin.Abuse,
			Hooks:          c.Admin.Webhooks,
			Branding:       c.Admin.Portal,
			Audit:          c.Admin.Audit,
			Engine:         c.Engine,
			TrustedProxies: trusted,
			IdleTimeout:    cfg.Console.IdleTimeout,
			MaxAge:         cfg.Console.SessionLifetime,
			Logger:         log,
		}))
		handler.Handle(console.PortalPath+"/", console.NewPortal(console.PortalConfig{Sessions: c.Admin.Portal, Denied: c.Admin.Audit, TrustedProxies: trusted, Logger: log}))
	}

	addr := ln.Addr().String()
	if host, _, _ := net.SplitHostPort(addr); !isLoopback(host) {
		log.Warn("serving plain HTTP on a non-loopback address: put keyward behind a TLS-terminating proxy", "addr", addr)
	}
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	serveErr := make(chan error, 1)
	go func() { serveErr <- srv.Serve(ln) }()
	log.Info("listening", "addr", addr, "url", "http://"+addr)
	if !cfg.Console.Disabled {
		log.Info("web console", "url", "http://"+addr+console.Path+"/")
	}
	var gwErr chan error // nil (never ready) without a gateway
	if gw != nil {
		gw.Start(log)
		gwErr = gw.err
	}
	if opts.Listening != nil {
		opts.Listening(addr)
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serving HTTP: %w", err)
	case err := <-gwErr:
		return fmt.Errorf("serving the gateway: %w", err)
	case <-ctx.Done():
	}
	stop() // a second signal kills the process at once
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	var gwShutdown error
	if gw != nil {
		gwShutdown = gw.Shutdown(sctx, cfg.ShutdownTimeout)
	}
	if err := srv.Shutdown(sctx); err != nil {
		srv.Close()
		return Unclean(CutOff("shutting down HTTP", err, cfg.ShutdownTimeout))
	}
	return Unclean(gwShutdown)
}

// StopTracing flushes the last spans with the shutdown timeout of cfg.
func StopTracing(ctx context.Context, cfg *config.Config, stop func(context.Context)) {
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	stop(sctx)
}

// ShutdownError is a stop on a signal that was not clean: requests still
// in flight at shutdown_timeout were cut off, or the final write of key
// usage, usage counts or credits failed.
type ShutdownError struct{ Err error }

func (e *ShutdownError) Error() string { return e.Err.Error() }
func (e *ShutdownError) Unwrap() error { return e.Err }

// Unclean marks err, met while serve or gateway stops on a signal, as an
// unclean stop (*ShutdownError); nil stays nil.
func Unclean(err error) error {
	if err == nil {
		return nil
	}
	return &ShutdownError{Err: err}
}

// CutOff explains a graceful shutdown that ran out of time.
func CutOff(what string, err error, timeout time.Duration) error {
	if errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: requests still in flight after shutdown_timeout (%s) were cut off: raise shutdown_timeout to let them finish", what, timeout)
	}
	return fmt.Errorf("%s: %w", what, err)
}

// isLoopback reports whether host names the loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
