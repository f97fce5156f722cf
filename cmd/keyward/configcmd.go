package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/server"
	"github.com/spf13/cobra"
)

// effective is what config check prints: every setting of
// config.Config.Shown with its source, then what is derived from them
// (database, peppers, gateway routes, the admin key of the environment).
// Secrets show as REDACTED (keyward.Secret marshals so) and the passwords
// of URLs as xxxxx (config.RedactURL).
type effective struct {
	settings []config.Shown
	peppers  map[int]keyward.Secret
	current  int    // the pepper version that hashes new keys
	source   string // where the peppers come from, or will
	derived  []config.Shown
}

// MarshalJSON writes every setting by its key, each derived value
// likewise, and "sources" mapping each key to where it came from.
func (e *effective) MarshalJSON() ([]byte, error) {
	m := map[string]any{"peppers": e.peppers, "pepper_current_version": e.current, "pepper_source": e.source}
	sources := map[string]string{"peppers": e.source}
	for _, s := range slices.Concat(e.settings, e.derived) {
		m[s.Key] = s.Value
		sources[s.Key] = s.Source
	}
	m["sources"] = sources
	return json.Marshal(m)
}

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the server configuration",
	}
	cmd.AddCommand(a.configCheckCommand(), a.configScanPatternsCommand())
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
store, store_replicas and redis URLs as xxxxx. Exits 3 if the configuration is invalid. It
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
			eff := &effective{settings: cfg.Shown(), peppers: map[int]keyward.Secret{}}
			for i, st := range eff.settings {
				if st.Key == "cache_max_bytes" { // what the engine uses: set or derived
					eff.settings[i].Value = config.ByteSize(cfg.EffectiveCacheMaxBytes())
				}
			}
			for v, p := range peppers {
				eff.peppers[v] = p
				eff.current = max(eff.current, v)
			}
			eff.source = cfg.PepperSource()
			if len(peppers) == 0 {
				eff.source = "will be generated in " + cfg.DefaultPepperPath() + " on first start"
			}
			eff.derived = []config.Shown{
				{Key: "database", Value: cfg.StoreName(), Source: "store"},
				{Key: "gateway_routes", Value: len(cfg.Gateway.Routes), Source: cfg.Source("gateway")},
			}
			// KEYWARD_ADMIN_API_KEY is shown REDACTED when set.
			if v := a.getenv(config.EnvAdminAPIKey); v != "" {
				eff.derived = append(eff.derived, config.Shown{Key: "admin_api_key", Value: keyward.Secret(v), Source: "env " + config.EnvAdminAPIKey})
			}
			return a.show(eff, func(w io.Writer) error { return printEffective(w, eff) })
		},
	}
	// Every setting has its flag here, so config check can check exactly
	// what a command line of serve or gateway would run.
	config.AddFlags(check.Flags(), config.FlagNames()...)
	return check
}

func printEffective(w io.Writer, e *effective) error {
	var peppers []string
	for _, v := range slices.Backward(slices.Sorted(maps.Keys(e.peppers))) {
		s := strconv.Itoa(v) + ": " + e.peppers[v].String()
		if v == e.current {
			s += " (current)"
		}
		peppers = append(peppers, s)
	}
	pv := strings.Join(peppers, ", ")
	if pv == "" {
		pv = "none yet"
	}
	t := newTable(w, "SETTING", "VALUE", "SOURCE")
	for _, s := range e.settings {
		v := s.Text()
		switch {
		case s.Key == "store" && v == "":
			v = "sqlite"
		case s.Key == "dev_mode" && s.Value == true:
			v += " (NO AUTHENTICATION)"
		}
		t.row(s.Key, v, s.Source)
	}
	t.row("peppers", pv, e.source)
	admin := config.Shown{Key: "admin_api_key", Value: "unset", Source: "default"}
	for _, s := range e.derived {
		if s.Key == "admin_api_key" {
			admin = s
			continue
		}
		name := s.Key
		if name == "gateway_routes" {
			name = "gateway.routes" // the table names the block it counts
		}
		t.row(name, s.Text(), s.Source)
	}
	t.row(admin.Key, admin.Text(), admin.Source)
	if err := t.flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "\nconfiguration OK")
	return err
}
