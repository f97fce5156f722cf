package main

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/server"
	"github.com/spf13/cobra"
)

// effectiveConfig is what config check prints: every setting with secrets
// as REDACTED (keyward.Secret marshals so) and the passwords of URLs as
// xxxxx (config.RedactURL).
type effectiveConfig struct {
	Listen          string                 `json:"listen"`
	Data            string                 `json:"data"`
	Database        string                 `json:"database"`
	Peppers         map[int]keyward.Secret `json:"peppers"`
	PepperSource    string                 `json:"pepper_source"`
	PepperCurrent   int                    `json:"pepper_current_version"`
	CacheTTL        string                 `json:"cache_ttl"`
	MaxStale        string                 `json:"max_stale"`
	CacheMaxBytes   int64                  `json:"cache_max_bytes"` // what the engine uses: set or derived
	Store           string                 `json:"store"`
	Redis           string                 `json:"redis"`
	BusChannel      string                 `json:"bus_channel"`
	BusDownCacheTTL string                 `json:"bus_down_cache_ttl"`
	LogLevel        string                 `json:"log_level"`
	LogFormat       string                 `json:"log_format"`
	ShutdownTimeout string                 `json:"shutdown_timeout"`
	GatewayListen   string                 `json:"gateway_listen"`
	TrustedProxies  []string               `json:"trusted_proxies"`
	// WWWAuthenticate is the challenge of every 401.
	WWWAuthenticateScheme string   `json:"www_authenticate_scheme"`
	WWWAuthenticateRealm  string   `json:"www_authenticate_realm"`
	AgentHeaders          []string `json:"agent_headers"`
	GatewayRoutes         int      `json:"gateway_routes"`
	Keystore              string   `json:"keystore"`
	DevMode               bool     `json:"dev_mode"`
	// AdminAPIKey is REDACTED when KEYWARD_ADMIN_API_KEY is set, else empty.
	AdminAPIKey keyward.Secret    `json:"admin_api_key,omitempty"`
	Sources     map[string]string `json:"sources"`
}

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the server configuration",
	}
	cmd.AddCommand(a.configCheckCommand())
	return cmd
}

func (a *app) configCheckCommand() *cobra.Command {
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and print the effective settings (secrets REDACTED)",
		Long: `Read keyward.yaml, KEYWARD_* variables and flags as serve would, check every
setting (including the permissions of the config file, the data directory
and the pepper file, and the keystore file) and print the result with the
source of each setting. Secrets are printed as REDACTED and passwords in the
store and redis URLs as xxxxx. Exits 3 if the configuration is invalid. It
creates nothing: a pepper that serve would generate is reported as such.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(a.getenv, cmd.Flags())
			if err != nil {
				return err
			}
			if err := cfg.PrepareDataDir(false); err != nil {
				return err
			}
			peppers, err := cfg.LoadPeppers(slog.New(slog.DiscardHandler), false)
			if err != nil {
				return err
			}
			if len(peppers) == 0 && cfg.UsesPostgres() {
				// serve generates no pepper for a shared store.
				return server.SharedPepperError(cfg)
			}
			// The keystore file and KEYWARD_ADMIN_API_KEY, as the gateway
			// and serve's forward-auth would load them.
			if _, err := server.LoadSimpleModes(cfg, a.getenv, cfg.Listen, slog.New(slog.DiscardHandler)); err != nil {
				return err
			}
			eff := effectiveConfig{
				Listen:          cfg.Listen,
				Data:            cfg.Data,
				Database:        cfg.StoreName(),
				Peppers:         map[int]keyward.Secret{},
				PepperSource:    cfg.PepperSource(),
				CacheTTL:        cfg.CacheTTL.String(),
				MaxStale:        cfg.MaxStale.String(),
				CacheMaxBytes:   cfg.EffectiveCacheMaxBytes(),
				Store:           config.RedactURL(cfg.Store),
				Redis:           config.RedactURL(cfg.Redis),
				BusChannel:      cfg.BusChannel,
				BusDownCacheTTL: cfg.BusDownCacheTTL.String(),
				LogLevel:        cfg.LogLevel,
				LogFormat:       cfg.LogFormat,
				ShutdownTimeout: cfg.ShutdownTimeout.String(),
				GatewayListen:   cfg.GatewayListen,
				TrustedProxies:  cfg.TrustedProxies,

				WWWAuthenticateScheme: cfg.WWWAuthenticateScheme,
				WWWAuthenticateRealm:  cfg.WWWAuthenticateRealm,
				AgentHeaders:          cfg.AgentHeaders,
				GatewayRoutes:         len(cfg.Gateway.Routes),
				Keystore:              cfg.Keystore,
				DevMode:               cfg.DevMode,
				Sources:               map[string]string{},
			}
			if eff.TrustedProxies == nil {
				eff.TrustedProxies = []string{}
			}
			if eff.AgentHeaders == nil {
				eff.AgentHeaders = []string{}
			}
			if v := a.getenv(config.EnvAdminAPIKey); v != "" {
				eff.AdminAPIKey = keyward.Secret(v)
				eff.Sources["admin_api_key"] = "env " + config.EnvAdminAPIKey
			}
			for v, p := range peppers {
				eff.Peppers[v] = p
				eff.PepperCurrent = max(eff.PepperCurrent, v)
			}
			if len(peppers) == 0 {
				eff.PepperSource = "will be generated in " + cfg.DefaultPepperPath() + " on first start"
			}
			eff.Sources["peppers"] = cfg.Source("peppers")
			eff.Sources["gateway"] = cfg.Source("gateway")
			for _, key := range config.Keys() {
				eff.Sources[key] = cfg.Source(key)
			}
			return a.show(eff, func(w io.Writer) error { return printEffective(w, &eff) })
		},
	}
	// Every setting has its flag here, so config check can check exactly
	// what a command line of serve or gateway would run.
	config.AddFlags(check.Flags(), config.FlagNames()...)
	return check
}

func printEffective(w io.Writer, e *effectiveConfig) error {
	var vs []int
	for v := range e.Peppers {
		vs = append(vs, v)
	}
	slices.Sort(vs)
	var peppers []string
	for _, v := range slices.Backward(vs) {
		s := strconv.Itoa(v) + ": " + e.Peppers[v].String()
		if v == e.PepperCurrent {
			s += " (current)"
		}
		peppers = append(peppers, s)
	}
	pv := strings.Join(peppers, ", ")
	if pv == "" {
		pv = "none yet"
	}
	store := e.Store
	if store == "" {
		store = "sqlite"
	}
	t := newTable(w, "SETTING", "VALUE", "SOURCE")
	t.row("listen", e.Listen, e.Sources["listen"])
	t.row("data", e.Data, e.Sources["data"])
	t.row("store", store, e.Sources["store"])
	t.row("database", e.Database, "store")
	t.row("peppers", pv, e.PepperSource)
	t.row("cache_ttl", e.CacheTTL, e.Sources["cache_ttl"])
	t.row("max_stale", e.MaxStale, e.Sources["max_stale"])
	t.row("cache_max_bytes", config.ByteSize(e.CacheMaxBytes).String(), e.Sources["cache_max_bytes"])
	t.row("redis", e.Redis, e.Sources["redis"])
	t.row("bus_channel", e.BusChannel, e.Sources["bus_channel"])
	t.row("bus_down_cache_ttl", e.BusDownCacheTTL, e.Sources["bus_down_cache_ttl"])
	t.row("log_level", e.LogLevel, e.Sources["log_level"])
	t.row("log_format", e.LogFormat, e.Sources["log_format"])
	t.row("shutdown_timeout", e.ShutdownTimeout, e.Sources["shutdown_timeout"])
	t.row("gateway_listen", e.GatewayListen, e.Sources["gateway_listen"])
	t.row("trusted_proxies", strings.Join(e.TrustedProxies, ","), e.Sources["trusted_proxies"])
	t.row("www_authenticate_scheme", e.WWWAuthenticateScheme, e.Sources["www_authenticate_scheme"])
	t.row("www_authenticate_realm", e.WWWAuthenticateRealm, e.Sources["www_authenticate_realm"])
	t.row("agent_headers", strings.Join(e.AgentHeaders, ","), e.Sources["agent_headers"])
	t.row("gateway.routes", strconv.Itoa(e.GatewayRoutes), e.Sources["gateway"])
	t.row("keystore", e.Keystore, e.Sources["keystore"])
	dev := strconv.FormatBool(e.DevMode)
	if e.DevMode {
		dev += " (NO AUTHENTICATION)"
	}
	t.row("dev_mode", dev, e.Sources["dev_mode"])
	admin, src := "unset", "default"
	if e.AdminAPIKey != "" {
		admin, src = e.AdminAPIKey.String(), e.Sources["admin_api_key"]
	}
	t.row("admin_api_key", admin, src)
	if err := t.flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "\nconfiguration OK")
	return err
}
