package main

import (
	"fmt"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/server"
	"github.com/spf13/cobra"
)

// rootKeyNotice follows the root key printed by the first serve.
const rootKeyNotice = "Store this root key now (a password manager or secret store): keyward keeps only its hash and will not show it again."

func (a *app) serveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the keyward server",
		Long: `Run the keyward HTTP API on --listen with its data in --data (SQLite), or in
the PostgreSQL database of --store; --redis shares cache invalidations between
instances (docs/deployment.md). Pending schema migrations are applied first.

On the first start with an empty store (or one whose root keys are all revoked,
disabled or expired) it creates a root key and prints it once on stdout, on a
line beginning "root key: ". Starts with a usable root key never print one.
SIGINT or SIGTERM shut it down gracefully, flushing recorded key usage.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(a.getenv, cmd.Flags())
			if err != nil {
				return err
			}
			return server.Serve(cmd.Context(), cfg, server.Options{
				Getenv:  a.getenv,
				Version: a.version(),
				Log:     cfg.Logger(a.stderr),
				RootKey: func(secret keyward.Secret) {
					fmt.Fprintf(a.stdout, "root key: %s\n%s\n", secret.Reveal(), rootKeyNotice)
				},
				Listening: a.m.Listening,
			})
		},
	}
	config.AddFlags(cmd.Flags(), "listen", "data", "store", "redis", "bus-channel", "pepper-file", "cache-ttl", "max-stale", "cache-max-bytes", "bus-down-cache-ttl", "log-level", "log-format", "shutdown-timeout", "gateway-listen", "trusted-proxies", "www-authenticate-scheme", "www-authenticate-realm", "agent-headers")
	return cmd
}

func (a *app) bootstrapCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "bootstrap [--data DIR]",
		Short: "Create the root key of a store without one offline and print it",
		Long: `Create a root key in the data directory without starting the server, and
print the bare key on stdout (for scripts). Uses the same configuration as serve
(data directory and peppers). Refuses, exiting 7, if a usable root key exists
(revoked, disabled and expired root keys do not count).`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(a.getenv, cmd.Flags())
			if err != nil {
				return err
			}
			log := cfg.Logger(a.stderr)
			c, err := server.Open(cmd.Context(), cfg, nil, log, false)
			if err != nil {
				return err
			}
			secret, _, err := c.Admin.Keys.Bootstrap(cmd.Context())
			if err == nil {
				// Print before closing: the key is committed, and a
				// failing close must not lose the only copy.
				_, err = fmt.Fprintln(a.stdout, secret.Reveal())
			}
			cerr := c.Close(cmd.Context(), log)
			switch {
			case keyward.ErrorCode(err) == keyward.ECONFLICT:
				return keyward.Errorf(keyward.ECONFLICT, "a usable root key already exists in %s: bootstrap only works on a store without one (create more root keys with: keyward keys create --role root)", cfg.DatabasePath())
			case err != nil:
				return fmt.Errorf("bootstrapping the root key: %w", err)
			}
			return cerr
		},
	}
	config.AddFlags(cmd.Flags(), "data", "pepper-file", "log-level", "log-format")
	return cmd
}
