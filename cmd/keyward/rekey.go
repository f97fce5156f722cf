package main

import (
	"fmt"
	"io"
	"strconv"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/keyring"
	"github.com/spf13/cobra"
)

func (a *app) rekeyCommand() *cobra.Command {
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "rekey [--store URL | --data DIR] [--master-key-file FILE] [--dry-run]",
		Short: "Re-encrypt everything sealed at rest under the newest master key",
		Long: `Re-encrypt every value sealed under an older master key version with the newest
one configured (the highest version of master_keys, KEYWARD_MASTER_KEYS or
master_key_file): the secret metadata of keys and accounts, webhook signing
secrets, provider connection passwords (also binding those an older keyward
sealed to their kind, base URL and user name), and the data keys of audit
entries (re-wrapped: the entries and their hash chain do not change). It reads the store directly, like migrate, in
batches of ` + strconv.Itoa(keyward.ResealBatch) + ` values per transaction, and can be run again at any time.

Rotating a master key:
  1. add the new version (e.g. 2:hex:...) beside the old one on every instance,
     and restart them: new values are sealed under it from then on;
  2. run keyward rekey;
  3. remove the old version from the configuration and restart; or keep it
     to verify the audit entries chained under it (keyward audit verify needs
     the chain key of every version that keyed entries: docs/audit.md).

Audit entries written before envelope encryption (keyward before migration 8)
have their details sealed directly under a master key, inside the hash
chain: rekey cannot re-encrypt them and says how many remain under which
version. Keep that version configured to read their details.

--dry-run only counts the sealed values by kind and version.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(a.getenv, cmd.Flags())
			if err != nil {
				return err
			}
			if !cfg.UsesPostgres() {
				if err := cfg.PrepareDataDir(false); err != nil {
					return err
				}
			}
			kr, err := cfg.OpenKeyring(cfg.Logger(a.stderr))
			if err != nil {
				return err
			}
			st, err := server.OpenStore(cmd.Context(), cfg, nil)
			if err != nil {
				return err
			}
			defer st.Close()
			if dryRun {
				counts, err := st.SealedCounts(cmd.Context())
				if err != nil {
					return err
				}
				return a.show(counts, func(w io.Writer) error { return printSealedCounts(w, counts, kr.Current()) })
			}
			r, err := kr.Rekey(cmd.Context(), st)
			if err != nil {
				return fmt.Errorf("rekey stopped (what it re-encrypted stays re-encrypted; fix the cause and run it again): %w", err)
			}
			return a.show(r, func(w io.Writer) error { return printRekey(w, r) })
		},
	}
	config.AddFlags(cmd.Flags(), "data", "store", "master-key-file")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count the sealed values by kind and master key version; change nothing")
	return cmd
}

// sealedKindNames describe the kinds of sealed values for people.
var sealedKindNames = map[keyward.SealedKind]string{
	keyward.SealedKeySecretMeta:     "key secret metadata",
	keyward.SealedAccountSecretMeta: "account secret metadata",
	keyward.SealedUserSecretMeta:    "user secret metadata",
	keyward.SealedWebhookSecret:     "webhook secrets",
	keyward.SealedProviderPassword:  "provider connection passwords",
	keyward.SealedAuditKey:          "audit data keys",
	keyward.SealedAuditDetails:      "audit details sealed before envelopes",
}

func printSealedCounts(w io.Writer, counts []keyward.SealedCount, current int) error {
	t := newTable(w, "KIND", "VERSION", "COUNT", "REKEY")
	for _, c := range counts {
		todo := "-"
		switch {
		case c.Version == current:
		case c.Kind == keyward.SealedAuditDetails:
			todo = "cannot (hash chain)"
		default:
			todo = "yes"
		}
		t.row(sealedKindNames[c.Kind], strconv.Itoa(c.Version), strconv.FormatInt(c.Count, 10), todo)
	}
	if err := t.flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "newest master key version: %d\n", current)
	return err
}

func printRekey(w io.Writer, r *keyring.RekeyReport) error {
	t := newTable(w, "KIND", "RE-ENCRYPTED")
	for _, c := range r.Resealed {
		t.row(sealedKindNames[c.Kind], strconv.FormatInt(c.Count, 10))
	}
	if err := t.flush(); err != nil {
		return err
	}
	if _, err := fmt.Fprintf(w, "everything re-encryptable is now under master key version %d\n", r.Version); err != nil {
		return err
	}
	for _, c := range r.Left {
		why := "not re-encrypted"
		if c.Kind == keyward.SealedAuditDetails {
			why = "written before envelope encryption: the hash chain covers them, so they cannot be re-encrypted; keep this version configured to read their details"
		}
		if _, err := fmt.Fprintf(w, "left under version %d: %d %s (%s)\n", c.Version, c.Count, sealedKindNames[c.Kind], why); err != nil {
			return err
		}
	}
	return nil
}
