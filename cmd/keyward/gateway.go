package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/gateway"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/keystore"
	"github.com/keyward/keyward/permission"
	"github.com/keyward/keyward/tracing"
	"github.com/spf13/cobra"
	"go.opentelemetry.io/otel/trace"
)

// defaultGatewayListen is where "keyward gateway" listens without --listen
// or gateway_listen.
const defaultGatewayListen = "127.0.0.1:8081"

// remoteVerifyTimeout bounds one verification by a remote keyward.
const remoteVerifyTimeout = 5 * time.Second

// gatewayFlags are the flags of "keyward gateway" that are not settings.
type gatewayFlags struct {
	listen      string
	upstream    string
	prefix      string
	host        string
	exempt      []string
	permissions []string
	stampField  string
	stampValue  string
	remote      string
	apiKey      string
	forwardCred bool
	maxBody     int64
}

func (a *app) gatewayCommand() *cobra.Command {
	var f gatewayFlags
	cmd := &cobra.Command{
		Use:   "gateway --upstream URL [--listen ADDR] [--exempt PATH]... [--permission P]... [--keystore FILE | --data DIR | --remote URL]",
		Short: "Run an authenticating reverse proxy in front of an HTTP service",
		Long: `Run a reverse proxy that lets through only requests with a valid key, sends
them to --upstream with the key's identity in X-Keyward-* headers (removing any
the client sent), and refuses the others with 401, 403 or 503 (problem+json).

Keys are checked by, in this order:
  --remote URL           a remote keyward (POST /v1/keys/verify), authenticated
                         by --api-key or KEYWARD_API_KEY (root or keys:verify);
  --keystore FILE and/or KEYWARD_ADMIN_API_KEY
                         the simple modes, no database (docs/simple-modes.md);
                         with --data as well, the key store is asked first;
  --data DIR | --store URL
                         the key store of "keyward serve", verified in
                         process: SQLite in DIR (the default, ./keyward-data)
                         or PostgreSQL at URL.

Without --upstream the routes come from the gateway block of the config file.
See docs/gateway.md.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(a.getenv, cmd.Flags())
			if err != nil {
				return err
			}
			return a.runGateway(cmd, cfg, &f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "", "address to listen on, host:port (default gateway_listen, else "+defaultGatewayListen+")")
	fl.StringVar(&f.upstream, "upstream", "", "URL of the service to protect, e.g. http://127.0.0.1:9000")
	fl.StringVar(&f.prefix, "prefix", "/", "path prefix the --upstream route serves")
	fl.StringVar(&f.host, "host", "", "host the --upstream route is limited to (default any)")
	fl.StringArrayVar(&f.exempt, "exempt", nil, "exact path that passes without a key, e.g. /docs (repeatable)")
	fl.StringArrayVar(&f.permissions, "permission", nil, "permission every request needs (repeatable)")
	fl.StringVar(&f.stampField, "stamp-field", "", "JSON body field set to the key id on POST/PUT/PATCH, e.g. created_by")
	fl.StringVar(&f.stampValue, "stamp-value", "", "what --stamp-field is set to: key (the key id, default), user (the key's user; keys without one get 403) or subject (its user, else its account, else its id)")
	fl.StringVar(&f.remote, "remote", "", "URL of a remote keyward that verifies the keys")
	fl.StringVar(&f.apiKey, "api-key", "", "API key for --remote, root or keys:verify (env KEYWARD_API_KEY, preferred: flags show in ps)")
	fl.BoolVar(&f.forwardCred, "forward-credentials", false, "send Authorization and X-API-Key upstream too (default: removed)")
	fl.Int64Var(&f.maxBody, "max-body-bytes", 0, fmt.Sprintf("largest request body (default gateway.max_body_bytes, else %d; negative: no limit)", gateway.DefaultMaxBodyBytes))
	config.AddFlags(fl, "data", "store", "redis", "bus-channel", "bus-down-cache-ttl", "pepper-file", "cache-ttl", "max-stale", "keystore", "dev", "trusted-proxies", "www-authenticate-scheme", "www-authenticate-realm", "agent-headers", "log-level", "log-format", "shutdown-timeout")
	cmd.MarkFlagsMutuallyExclusive("remote", "keystore")
	cmd.MarkFlagsMutuallyExclusive("remote", "data")
	cmd.MarkFlagsMutuallyExclusive("remote", "store")
	return cmd
}

func (a *app) runGateway(cmd *cobra.Command, cfg *config.Config, f *gatewayFlags) (err error) {
	ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := cfg.Logger(a.stderr)
	gc, errs := cfg.GatewayConfig()
	if len(errs) > 0 {
		return &config.Error{Errors: errs}
	}
	tp, stopTracing, err := server.StartTracing(ctx, a.getenv, log, a.version())
	if err != nil {
		return err
	}
	defer server.StopTracing(ctx, cfg, stopTracing)
	name := config.YAMLName
	if f.upstream != "" {
		u, err := url.Parse(f.upstream)
		if err != nil {
			return config.Errorf("upstream", "--upstream %q is not a URL: use e.g. http://127.0.0.1:9000", f.upstream)
		}
		gc.Routes = []gateway.Route{{PathPrefix: f.prefix, Host: f.host, Upstream: u, Permissions: f.permissions, Exempt: f.exempt, StampField: f.stampField, StampValue: f.stampValue}}
		name = flagName
	} else if len(gc.Routes) == 0 {
		return usageErrorf("--upstream is required (or routes in the gateway block of the config file)")
	} else if len(f.exempt)+len(f.permissions) > 0 || f.stampField != "" || f.stampValue != "" || cmd.Flags().Changed("prefix") || f.host != "" {
		return usageErrorf("--prefix, --host, --exempt, --permission, --stamp-field and --stamp-value describe the --upstream route: give --upstream, or set them in gateway.routes")
	}
	if cmd.Flags().Changed("forward-credentials") {
		gc.ForwardCredentials = f.forwardCred
	}
	if f.maxBody != 0 {
		gc.MaxBodyBytes = f.maxBody
	}
	listen := firstNonEmpty(f.listen, cfg.GatewayListen, defaultGatewayListen)
	if err := config.CheckListen(listen); err != nil {
		return config.Errorf("listen", "--listen %q %v", listen, err)
	}

	verifier, closeVerifier, err := a.gatewayVerifier(ctx, cmd, cfg, tp, f, listen, log)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
		defer cancel()
		if cerr := closeVerifier(sctx); err == nil {
			// Only a stop on a signal gets here without an error.
			err = server.Unclean(cerr)
		}
	}()
	gc.Verifier, gc.Logger, gc.Anonymous, gc.TracerProvider = verifier, log, cfg.DevMode, tp
	gs, err := server.ListenGateway(ctx, listen, gc, log, name, "listen")
	if err != nil {
		return err
	}
	gs.Start(log)
	for _, r := range gc.Routes {
		log.Info("gateway route", "prefix", r.PathPrefix, "host", r.Host, "upstream", r.Upstream.Redacted(), "permissions", r.Permissions, "exempt", r.Exempt)
	}
	if a.m.Listening != nil {
		a.m.Listening(gs.Addr())
	}
	select {
	case err := <-gs.Err():
		return fmt.Errorf("serving the gateway: %w", err)
	case <-ctx.Done():
	}
	stop()
	log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cfg.ShutdownTimeout)
	defer cancel()
	return server.Unclean(gs.Shutdown(sctx, cfg.ShutdownTimeout))
}

// flagName names a gateway field as a flag of "keyward gateway".
func flagName(field string) string {
	_, f, ok := strings.Cut(field, ".")
	if !ok {
		return config.YAMLName(field)
	}
	switch f {
	case "upstream", "prefix", "host", "exempt":
		return f
	case "permissions":
		return "permission"
	case "stamp_field":
		return "stamp-field"
	case "stamp_value":
		return "stamp-value"
	}
	return config.YAMLName(field)
}

// gatewayVerifier picks what checks keys (see the command's help) and
// returns it with the function that releases it.
func (a *app) gatewayVerifier(ctx context.Context, cmd *cobra.Command, cfg *config.Config, tp trace.TracerProvider, f *gatewayFlags, listen string, log *slog.Logger) (keyward.KeyVerifier, func(context.Context) error, error) {
	noop := func(context.Context) error { return nil }
	if f.remote != "" {
		if cfg.DevMode {
			return nil, nil, config.Errorf("dev_mode", "dev mode lets every request through, so --remote would never be consulted: turn dev mode off, or drop --remote")
		}
		if a.getenv(config.EnvAdminAPIKey) != "" || cfg.Keystore != "" {
			return nil, nil, config.Errorf("remote", "--remote verifies with a remote keyward, but %s or keystore is set too: unset them, or drop --remote", config.EnvAdminAPIKey)
		}
		v, err := a.remoteVerifier(ctx, cfg, tp, f, log)
		return v, noop, err
	}
	simple, err := server.LoadSimpleModes(cfg, a.getenv, listen, log)
	if err != nil {
		return nil, nil, err
	}
	explicitStore := cfg.Source("data") != "default" || cfg.Store != ""
	if simple != nil && !explicitStore {
		return simple, noop, nil
	}
	// The SQLite key store of "keyward serve": never create one here, it
	// could only refuse every key.
	if _, err := os.Stat(cfg.DatabasePath()); cfg.Store == "" && errors.Is(err, fs.ErrNotExist) {
		return nil, nil, config.Errorf("data", "no keyward database in %s: run keyward serve there first, point --data at its data directory, or use --keystore, %s or --remote", cfg.Data, config.EnvAdminAPIKey)
	}
	c, err := server.Open(ctx, cfg, tp, log, true)
	if err != nil {
		return nil, nil, err
	}
	// Join the invalidation bus, as serve does, so a key revoked on any
	// instance stops passing here at once rather than after cache_ttl.
	stopBus, err := c.StartBus(ctx, cfg, log)
	if err != nil {
		cerr := c.Close(context.WithoutCancel(ctx), log)
		return nil, nil, errors.Join(err, cerr)
	}
	log.Info("verifying keys in process", "data", cfg.Data, "store", config.RedactURL(cfg.Store), "cache_ttl", cfg.CacheTTL, "max_stale", cfg.MaxStale)
	closeCore := func(ctx context.Context) error {
		stopBus()
		return c.Close(ctx, log)
	}
	if simple != nil {
		return keystore.Chain(c.Engine, simple), closeCore, nil
	}
	return c.Engine, closeCore, nil
}

// remoteVerifier verifies with a remote keyward. It checks the API key
// once at start and only warns on failure: keyward may start later.
// Answers are cached briefly (client.CachedVerifier), so a revocation
// reaches this gateway within client.DefaultCacheTTL.
func (a *app) remoteVerifier(ctx context.Context, cfg *config.Config, tp trace.TracerProvider, f *gatewayFlags, log *slog.Logger) (keyward.KeyVerifier, error) {
	u, err := url.Parse(f.remote)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, config.Errorf("remote", "--remote %q is not a keyward URL: use e.g. http://127.0.0.1:8080", f.remote)
	}
	key := firstNonEmpty(f.apiKey, a.getenv("KEYWARD_API_KEY"))
	if key == "" {
		return nil, config.Errorf("remote", "--remote needs an API key with keys:verify: set KEYWARD_API_KEY (or --api-key)")
	}
	c := client.New(f.remote, keyward.Secret(key))
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = 256
	t.Proxy = nil
	c.HTTPClient = &http.Client{
		// Traced: the remote keyward's spans join the gateway's trace.
		Transport: tracing.Transport(tracing.Tracer(tp), "keyward remote verify", t),
		Timeout:   remoteVerifyTimeout,
		// A redirect would carry the API key and the keys being verified.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}

	cctx, cancel := context.WithTimeout(ctx, remoteVerifyTimeout)
	defer cancel()
	id, err := c.WhoAmI(cctx)
	switch {
	case keyward.ErrorCode(err) == keyward.EUNAUTHORIZED:
		return nil, config.Errorf("remote", "the remote keyward refused the API key: set KEYWARD_API_KEY to a root key or one with keys:verify")
	case err != nil:
		log.Warn("the remote keyward cannot be reached yet; requests get 503 until it can", "remote", u.Redacted(), "err", err)
	case id.Role != keyward.RoleRoot && !permission.Holds(id.Permissions, admin.PermissionVerify):
		log.Warn("the API key may lack keys:verify: the remote keyward may refuse to verify", "key_id", id.KeyID)
	}
	// --cache-ttl bounds how long a revocation on the remote takes to be
	// seen here; by default the remote cache's own, shorter TTL.
	ttl := client.DefaultCacheTTL
	if cfg.Source("cache_ttl") != "default" {
		ttl = cfg.CacheTTL
	}
	log.Info("verifying keys with a remote keyward", "remote", u.Redacted(), "cache_ttl", ttl)
	return client.NewCachedVerifier(c, client.CacheConfig{TTL: ttl}), nil
}
