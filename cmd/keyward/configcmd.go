package main

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"

	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

// effectiveConfig is what config check prints: every setting with secrets
// as REDACTED (keyward.Secret marshals so).
type effectiveConfig struct {
	Listen          string                 `json:"listen"`
	Data            string                 `json:"data"`
	Database        string                 `json:"database"`
	Peppers         map[int]keyward.Secret `json:"peppers"`
	PepperSource    string                 `json:"pepper_source"`
	PepperCurrent   int                    `json:"pepper_current_version"`
	CacheTTL        string                 `json:"cache_ttl"`
	LogLevel        string                 `json:"log_level"`
	LogFormat       string                 `json:"log_format"`
	ShutdownTimeout string                 `json:"shutdown_timeout"`
	Sources         map[string]string      `json:"sources"`
}

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the server configuration",
	}
	check := &cobra.Command{
		Use:   "check",
		Short: "Validate the configuration and print the effective settings (secrets REDACTED)",
		Long: `Read keyward.yaml, KEYWARD_* variables and flags as serve would, check every
setting (including the pepper file's permissions) and print the result with
the source of each setting. Secrets are printed as REDACTED. Exits 3 if the
configuration is invalid. It creates nothing: a pepper that serve would
generate is reported as such.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := loadConfig(a.getenv, cmd.Flags())
			if err != nil {
				return err
			}
			if err := cfg.prepareDataDir(false); err != nil {
				return err
			}
			peppers, err := cfg.loadPeppers(slog.New(slog.DiscardHandler), false)
			if err != nil {
				return err
			}
			eff := effectiveConfig{
				Listen:          cfg.Listen,
				Data:            cfg.Data,
				Database:        cfg.DatabasePath(),
				Peppers:         map[int]keyward.Secret{},
				PepperSource:    cfg.pepperSource(),
				CacheTTL:        cfg.CacheTTL.String(),
				LogLevel:        cfg.LogLevel,
				LogFormat:       cfg.LogFormat,
				ShutdownTimeout: cfg.ShutdownTimeout.String(),
				Sources:         map[string]string{},
			}
			for v, p := range peppers {
				eff.Peppers[v] = p
				eff.PepperCurrent = max(eff.PepperCurrent, v)
			}
			if len(peppers) == 0 {
				eff.PepperSource = "will be generated in " + cfg.DefaultPepperPath() + " on first start"
			}
			for _, k := range []string{"listen", "data", "peppers", "pepper_file", "cache_ttl", "log_level", "log_format", "shutdown_timeout"} {
				eff.Sources[k] = cfg.Source(k)
			}
			return a.show(eff, func(w io.Writer) error { return printEffective(w, &eff) })
		},
	}
	addConfigFlags(check.Flags(), "listen", "data", "pepper-file", "cache-ttl", "log-level", "log-format", "shutdown-timeout")
	cmd.AddCommand(check)
	return cmd
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
	t := newTable(w, "SETTING", "VALUE", "SOURCE")
	t.row("listen", e.Listen, e.Sources["listen"])
	t.row("data", e.Data, e.Sources["data"])
	t.row("database", e.Database, "data")
	t.row("peppers", pv, e.PepperSource)
	t.row("cache_ttl", e.CacheTTL, e.Sources["cache_ttl"])
	t.row("log_level", e.LogLevel, e.Sources["log_level"])
	t.row("log_format", e.LogFormat, e.Sources["log_format"])
	t.row("shutdown_timeout", e.ShutdownTimeout, e.Sources["shutdown_timeout"])
	if err := t.flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintln(w, "\nconfiguration OK")
	return err
}
