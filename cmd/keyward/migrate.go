package main

import (
	"fmt"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/sqlite"
	"github.com/spf13/cobra"
)

func (a *app) migrateCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "migrate [--store URL | --data DIR]",
		Short: "Apply pending schema migrations to the store",
		Long: `Bring the store's schema up to the version this binary knows and print
"schema at version N (was M)". serve migrates on start as well; run migrate
before rolling a new version out to many instances, so none of them migrates
under load. A schema newer than this binary is refused (exit 3): an older
keyward never writes to a schema it does not understand.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(a.getenv, cmd.Flags())
			if err != nil {
				return err
			}
			var from, to int
			if cfg.UsesPostgres() {
				from, to, err = postgres.Migrate(cmd.Context(), cfg.Store, postgres.Options{})
			} else {
				if err := cfg.PrepareDataDir(true); err != nil {
					return err
				}
				from, to, err = sqlite.Migrate(cmd.Context(), cfg.DatabasePath())
			}
			if err != nil {
				return server.StoreError(cfg, err)
			}
			_, err = fmt.Fprintf(a.stdout, "schema at version %d (was %d)\n", to, from)
			return err
		},
	}
	config.AddFlags(cmd.Flags(), "data", "store")
	return cmd
}
