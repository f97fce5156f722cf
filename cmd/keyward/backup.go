package main

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/server"
	"github.com/keyward/keyward/keyring"
	"github.com/keyward/keyward/postgres"
	"github.com/keyward/keyward/sqlite"
	"github.com/spf13/cobra"
)

// The files of a backup directory.
const (
	backupManifestFile  = "manifest.json"
	backupDatabaseFile  = "keyward.db"
	backupPepperFile    = "pepper"
	backupMasterKeyFile = "master-keys"
	// backupFormat is the version of the manifest's format.
	backupFormat = 1
)

// backupManifest describes a backup: enough to tell that a copy (or a
// database restored from a dump) is the one backed up, and which secrets
// restore it. It never holds a pepper or a master key.
type backupManifest struct {
	Format         int       `json:"format"`
	KeywardVersion string    `json:"keyward_version"`
	CreatedAt      time.Time `json:"created_at"`
	// Store is sqlite (the copy is Database, in the backup directory) or
	// postgres (restore with the database's own tools).
	Store         string `json:"store"`
	Database      string `json:"database,omitempty"`
	SchemaVersion int    `json:"schema_version"`
	backupState
	// SecretsIncluded lists the secret files copied with --include-secrets.
	SecretsIncluded []string `json:"secrets_included,omitempty"`
}

// backupState is what backup records of a store and backup verify checks.
type backupState struct {
	Accounts int64 `json:"accounts"`
	Users    int64 `json:"users"`
	// Keys counts keys by stored state: revoked (also a rotated key whose
	// revocation is set for the end of its grace window), disabled,
	// active, and imported (an imported digest no key was presented for
	// yet: it needs no pepper). Expiry is left out: it comes with the
	// clock, not with a change.
	Keys map[string]int64 `json:"keys"`
	// Peppers are the pepper versions the keys are hashed with.
	Peppers []pepperUse `json:"peppers"`
	// MasterKeyVersions are the master key versions that chain audit
	// entries or seal values in the store: a restore needs each.
	MasterKeyVersions []int                    `json:"master_key_versions"`
	AuditEntries      int64                    `json:"audit_entries"`
	AuditHead         *keyward.AuditCheckpoint `json:"audit_head,omitempty"`
}

// pepperUse is a pepper version, how many keys it hashes, and the
// fingerprint (apikey.Hasher.Fingerprint) of the pepper it was at backup.
type pepperUse struct {
	Version     int    `json:"version"`
	Keys        int64  `json:"keys"`
	Fingerprint string `json:"fingerprint"`
}

// backupSecrets are the configured peppers and master keys.
type backupSecrets struct {
	hasher  *apikey.Hasher
	keyring *keyring.Keyring
}

// errBackupRefused is a backup that does not match its manifest or whose
// database is damaged (exit 1); a backup the configured secrets cannot
// restore is a *config.Error (exit 3).
var errBackupRefused = errors.New("backup refused")

func refusef(format string, args ...any) error {
	return &exitError{code: ExitError, err: fmt.Errorf("%w: "+format, append([]any{errBackupRefused}, args...)...)}
}

func (a *app) backupCommand() *cobra.Command {
	var includeSecrets bool
	cmd := &cobra.Command{
		Use:   "backup DIR [--store URL | --data DIR] [--include-secrets]",
		Short: "Take a consistent copy of the store into DIR, with a manifest to check it by",
		Long: `Write a backup to DIR, a new or empty directory (created with mode 0700).

On SQLite it takes an online, consistent copy of the database (DIR/keyward.db:
safe while keyward serve runs) and writes DIR/manifest.json: the schema
version, the counts of accounts, users and keys by state, the audit log's
head (a signed checkpoint), the pepper versions the keys use with a
fingerprint of each configured pepper, and the master key versions the
store needs. The manifest holds no secret.

On PostgreSQL it copies nothing: use pg_dump or pg_basebackup. It still
checks the configured secrets and writes DIR/manifest.json, so that a
restored database can be checked with keyward backup verify DIR.

The peppers and master keys are not copied: back them up separately, from
your secret store (without them no key verifies and the audit log cannot be
read). --include-secrets copies the pepper and master key files into DIR
(mode 0600): then DIR must be kept like the secrets themselves.

It refuses (exit 3) when a pepper version the keys use or a master key
version the store needs is not configured: such a backup would not restore.`,
		Args: exactArgs("DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(a.getenv, cmd.Flags())
			if err != nil {
				return err
			}
			return a.backup(cmd.Context(), cfg, args[0], includeSecrets)
		},
	}
	config.AddFlags(cmd.Flags(), "data", "store", "pepper-file", "master-key-file")
	cmd.Flags().BoolVar(&includeSecrets, "include-secrets", false, "also copy the pepper and master key files into DIR (mode 0600)")
	cmd.AddCommand(a.backupVerifyCommand())
	return cmd
}

func (a *app) backupVerifyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "verify DIR [--data DIR | --store URL] [--pepper-file FILE] [--master-key-file FILE]",
		Short: "Check that a backup is intact and that the configured secrets restore it",
		Long: `Check the backup in DIR against its manifest with the configured peppers and
master keys (configure them as for keyward serve on the restored machine):

  - SQLite: the copy DIR/keyward.db is opened read-only and passes SQLite's
    integrity check; a PostgreSQL manifest is checked against the configured
    store, the database restored from the dump;
  - its schema version and its counts of accounts, users and keys equal the
    manifest's;
  - the audit log's chain verifies with the master keys, and its head is the
    manifest's (whose signature must verify too);
  - every pepper version the keys use is configured, and is the same pepper
    as at backup (its fingerprint equals the manifest's);
  - every master key version the store needs is configured.

Exit 0 when all hold; 1 when the backup is damaged or differs from its
manifest; 3 when the configured peppers or master keys cannot restore it.`,
		Args: exactArgs("DIR"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := config.Load(a.getenv, cmd.Flags())
			if err != nil {
				return err
			}
			return a.backupVerify(cmd.Context(), cfg, args[0])
		},
	}
	config.AddFlags(cmd.Flags(), "data", "store", "pepper-file", "master-key-file")
	return cmd
}

// backup takes the backup of cfg's store into dir. A backup that fails
// leaves dir without the files it wrote.
func (a *app) backup(ctx context.Context, cfg *config.Config, dir string, includeSecrets bool) (err error) {
	secrets, err := loadBackupSecrets(cfg, a.stderr)
	if err != nil {
		return err
	}
	if err := makeBackupDir(dir); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			for _, f := range []string{backupDatabaseFile, backupPepperFile, backupMasterKeyFile, backupManifestFile} {
				os.Remove(filepath.Join(dir, f))
			}
		}
	}()
	m := &backupManifest{Format: backupFormat, KeywardVersion: a.version(), CreatedAt: time.Now().UTC()}
	var st keyward.Store
	if cfg.UsesPostgres() {
		m.Store, m.SchemaVersion = "postgres", postgres.SchemaVersion()
		if st, err = server.OpenStore(ctx, cfg, nil); err != nil {
			return err
		}
	} else {
		if err := cfg.PrepareDataDir(false); err != nil {
			return err
		}
		m.Store, m.Database = "sqlite", backupDatabaseFile
		copyPath := filepath.Join(dir, backupDatabaseFile)
		if err := sqlite.Backup(ctx, cfg.DatabasePath(), copyPath); err != nil {
			return fmt.Errorf("copying the database %s: %w", cfg.DatabasePath(), err)
		}
		ro, err := sqlite.OpenReadOnly(ctx, copyPath)
		if err != nil {
			return err
		}
		if m.SchemaVersion, err = ro.AppliedSchemaVersion(ctx); err != nil {
			ro.Close()
			return err
		}
		st = ro
	}
	defer st.Close()
	state, err := inspectStore(ctx, st, secrets, nil)
	if err != nil {
		return err
	}
	m.backupState = state.backupState
	if err := secrets.restores(m); err != nil {
		return err
	}
	if !state.auditOK() {
		return refusef("the audit log of the store does not verify: run keyward audit verify and investigate before backing it up")
	}
	if includeSecrets {
		if m.SecretsIncluded, err = copySecrets(cfg, dir); err != nil {
			return err
		}
		cfg.Logger(a.stderr).Warn("the backup holds the pepper and master keys: whoever reads it can check keys offline and read the audit log; keep it as secret as they are", "dir", dir)
	}
	if err := writeManifest(dir, m); err != nil {
		return err
	}
	return a.show(m, func(w io.Writer) error {
		kv := []string{"backup", dir}
		if m.Store == "postgres" {
			kv = append(kv, "database", "NOT copied: take it with PostgreSQL's tools, e.g. pg_dump --format=custom --file=keyward.dump \"$KEYWARD_STORE\"")
		} else {
			kv = append(kv, "database", filepath.Join(dir, m.Database))
		}
		kv = append(kv, m.summary()...)
		if len(m.SecretsIncluded) > 0 {
			kv = append(kv, "secrets", "INCLUDED ("+strings.Join(m.SecretsIncluded, ", ")+"): keep this directory as secret as the peppers and master keys")
		} else {
			kv = append(kv, "secrets", "not included: back up the peppers and master keys separately, from your secret store")
		}
		return fields(w, kv...)
	})
}

// backupVerify checks the backup in dir.
func (a *app) backupVerify(ctx context.Context, cfg *config.Config, dir string) error {
	m, err := readManifest(dir)
	if err != nil {
		return err
	}
	if m.Store == "postgres" && !cfg.UsesPostgres() {
		return usageErrorf("the backup in %s is of a PostgreSQL store: set --store (or KEYWARD_STORE) to the database restored from its dump", dir)
	}
	secrets, err := loadBackupSecrets(cfg, a.stderr)
	if err != nil {
		return err
	}
	var (
		st     keyward.Store
		schema int
	)
	switch m.Store {
	case "sqlite":
		path := filepath.Join(dir, backupDatabaseFile)
		ro, err := sqlite.OpenReadOnly(ctx, path)
		if err != nil {
			return refusef("%s is damaged or not a keyward database: %v", path, err)
		}
		defer ro.Close()
		if err := ro.CheckIntegrity(ctx); err != nil {
			return refusef("%s is damaged: %v", path, err)
		}
		if schema, err = ro.AppliedSchemaVersion(ctx); err != nil {
			return refusef("%s is damaged: %v", path, err)
		}
		st = ro
	case "postgres":
		if st, err = server.OpenStore(ctx, cfg, nil); err != nil {
			return err
		}
		defer st.Close()
		schema = postgres.SchemaVersion()
	default:
		return refusef("%s names store %q: keyward knows sqlite and postgres", filepath.Join(dir, backupManifestFile), m.Store)
	}
	if schema != m.SchemaVersion && !(m.Store == "postgres" && schema > m.SchemaVersion) {
		return refusef("the schema is at version %d, the manifest says %d", schema, m.SchemaVersion)
	}
	if err := secrets.restores(m); err != nil {
		return err
	}
	if h := m.AuditHead; h != nil {
		if err := secrets.checkHead(h); err != nil {
			return err
		}
	}
	got, err := inspectStore(ctx, st, secrets, m.AuditHead)
	if err != nil {
		return err
	}
	if !got.auditOK() {
		return refusef("the audit log's chain is broken at entry %d: %s", got.audit.FirstBad, got.audit.Problem)
	}
	if diff := m.backupState.differences(got); diff != "" {
		return refusef("the database differs from the manifest: %s", diff)
	}
	return a.show(m, func(w io.Writer) error {
		return fields(w, append(append([]string{"backup", dir, "ok", "yes", "store", m.Store, "taken", formatTime(m.CreatedAt)}, m.summary()...),
			"peppers", "configured and the same as at backup", "master keys", "configured")...)
	})
}

// summary returns the fields of m for people.
func (m *backupManifest) summary() []string {
	head := "(empty log)"
	if m.AuditHead != nil {
		head = m.AuditHead.String()
	}
	var peppers []string
	for _, p := range m.Peppers {
		peppers = append(peppers, fmt.Sprintf("%d (%d keys)", p.Version, p.Keys))
	}
	var keys []string
	for _, s := range slices.Sorted(maps.Keys(m.Keys)) {
		keys = append(keys, fmt.Sprintf("%d %s", m.Keys[s], s))
	}
	return []string{
		"schema version", strconv.Itoa(m.SchemaVersion),
		"accounts", strconv.FormatInt(m.Accounts, 10),
		"users", strconv.FormatInt(m.Users, 10),
		"keys", orNone(strings.Join(keys, ", ")),
		"audit entries", strconv.FormatInt(m.AuditEntries, 10),
		"audit head", head,
		"pepper versions", orNone(strings.Join(peppers, ", ")),
		"master key versions", orNone(joinInts(m.MasterKeyVersions)),
	}
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

func joinInts(vs []int) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ", ")
}

// loadBackupSecrets reads the configured peppers and master keys, never
// generating either: a backup is checked with the secrets that restore it.
func loadBackupSecrets(cfg *config.Config, stderr io.Writer) (*backupSecrets, error) {
	log := cfg.Logger(stderr)
	peppers, err := cfg.LoadPeppers(log, false)
	if err != nil {
		return nil, err
	}
	if len(peppers) == 0 {
		return nil, config.Errorf("peppers", "none configured and %s does not exist: configure the peppers the keys were hashed with (%s, pepper_file or peppers)", cfg.DefaultPepperPath(), config.EnvPepper)
	}
	hasher, err := apikey.NewHasher(peppers)
	if err != nil {
		return nil, config.Errorf("peppers", "%s", keyward.ErrorMessage(err))
	}
	if len(cfg.MasterKeys) == 0 && cfg.MasterKeyFile == "" && !cfg.UsesPostgres() {
		if _, err := os.Stat(cfg.DefaultMasterKeyPath()); errors.Is(err, fs.ErrNotExist) {
			return nil, config.Errorf("master_keys", "none configured and %s does not exist: configure the master keys of the store (%s or master_key_file)", cfg.DefaultMasterKeyPath(), config.EnvMasterKeys)
		}
	}
	kr, err := cfg.OpenKeyring(log)
	if err != nil {
		return nil, err
	}
	return &backupSecrets{hasher: hasher, keyring: kr}, nil
}

// restores checks that the secrets restore the store m describes: every
// pepper version its keys use is configured with the fingerprint m
// records, and every master key version it needs is configured.
func (s *backupSecrets) restores(m *backupManifest) error {
	configured := s.hasher.Versions()
	for _, p := range m.Peppers {
		if !slices.Contains(configured, p.Version) {
			return config.Errorf("peppers", "pepper version %d hashes %d keys of the backup but is not configured (configured: %s): without it those keys would not verify after a restore; configure it from your secret store", p.Version, p.Keys, joinInts(configured))
		}
		if fp := s.hasher.Fingerprint(p.Version); fp != p.Fingerprint {
			return config.Errorf("peppers", "pepper version %d is not the pepper the backup's keys were hashed with (fingerprint %s, the backup's %s): none of its %d keys would verify; configure the pepper of the backup", p.Version, fp, p.Fingerprint, p.Keys)
		}
	}
	for _, v := range m.MasterKeyVersions {
		if _, err := s.keyring.AuditChainKey(v); err != nil {
			return config.Errorf("master_keys", "master key version %d is needed by the backup (its audit log and sealed values) but is not configured (configured: %s); configure it from your secret store", v, joinInts(s.keyring.Versions()))
		}
	}
	return nil
}

// checkHead checks the signature of a manifest's audit head: whoever wrote
// it held the master keys.
func (s *backupSecrets) checkHead(h *keyward.AuditCheckpoint) error {
	key, err := s.keyring.AuditChainKey(h.KeyVersion)
	if err != nil {
		return config.Errorf("master_keys", "master key version %d signed the backup's audit head but is not configured; configure it from your secret store", h.KeyVersion)
	}
	hash, err := hex.DecodeString(h.Hash)
	mac, macErr := hex.DecodeString(h.MAC)
	if err != nil || macErr != nil || !hmac.Equal(keyward.CheckpointMAC(key, h.Seq, hash), mac) {
		return refusef("the manifest's audit head %s does not carry a valid signature under master key version %d: the manifest was edited, or is of another store", h, h.KeyVersion)
	}
	return nil
}

// inspectStore counts what st holds and checks its audit chain with the
// master keys, against expect when not nil (a manifest's head).
func inspectStore(ctx context.Context, st keyward.Store, s *backupSecrets, expect *keyward.AuditCheckpoint) (*inspected, error) {
	r := &inspected{backupState: backupState{Keys: map[string]int64{}, MasterKeyVersions: []int{}, Peppers: []pepperUse{}}}
	p := keyward.Page{Limit: keyward.MaxPageLimit}
	for {
		accounts, next, err := st.Accounts(ctx, p)
		if err != nil {
			return nil, fmt.Errorf("counting accounts: %w", err)
		}
		r.Accounts += int64(len(accounts))
		for _, acc := range accounts {
			up := keyward.Page{Limit: keyward.MaxPageLimit}
			for {
				users, next, err := st.Users(ctx, acc.ID, up)
				if err != nil {
					return nil, fmt.Errorf("counting users: %w", err)
				}
				r.Users += int64(len(users))
				if next == "" {
					break
				}
				up.After = next
			}
		}
		if next == "" {
			break
		}
		p.After = next
	}
	pepperKeys := map[int]int64{}
	p = keyward.Page{Limit: keyward.MaxPageLimit}
	for {
		keys, next, err := st.Keys(ctx, keyward.KeyFilter{}, p)
		if err != nil {
			return nil, fmt.Errorf("counting keys: %w", err)
		}
		for _, k := range keys {
			r.Keys[keyState(k)]++
			if k.PepperVersion > 0 {
				pepperKeys[k.PepperVersion]++
			}
		}
		if next == "" {
			break
		}
		p.After = next
	}
	for _, v := range slices.Sorted(maps.Keys(pepperKeys)) {
		fp := ""
		if slices.Contains(s.hasher.Versions(), v) {
			fp = s.hasher.Fingerprint(v)
		}
		r.Peppers = append(r.Peppers, pepperUse{Version: v, Keys: pepperKeys[v], Fingerprint: fp})
	}

	masterKeys := map[int]bool{}
	sealed, err := st.SealedCounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("counting sealed values: %w", err)
	}
	for _, c := range sealed {
		if c.Count > 0 {
			masterKeys[c.Version] = true
		}
	}
	chain := keyward.AuditChain{Keys: s.keyring.AuditChainKey, Expect: expect}
	var last *keyward.AuditEntry
	p = keyward.Page{Limit: keyward.MaxPageLimit}
	for {
		entries, next, err := st.AuditEntries(ctx, keyward.AuditFilter{}, p)
		if err != nil {
			return nil, fmt.Errorf("reading the audit log: %w", err)
		}
		for _, e := range entries {
			if e.ChainVersion > 0 {
				masterKeys[e.ChainVersion] = true
			}
			last = e
		}
		r.AuditEntries += int64(len(entries))
		// Keep counting past a break: the counts are compared too.
		chain.Check(entries)
		if next == "" {
			break
		}
		p.After = next
	}
	r.MasterKeyVersions = slices.Sorted(maps.Keys(masterKeys))
	r.audit = chain.Result()
	if last != nil {
		ck := s.keyring.CurrentAuditChainKey()
		r.AuditHead = &keyward.AuditCheckpoint{Seq: last.Seq, Hash: hex.EncodeToString(last.Hash), KeyVersion: ck.Version,
			MAC: hex.EncodeToString(keyward.CheckpointMAC(ck.Key, last.Seq, last.Hash))}
	}
	return r, nil
}

// inspected is what inspectStore found: the state and the audit chain's
// verification.
type inspected struct {
	backupState
	audit keyward.AuditVerification
}

func (r *inspected) auditOK() bool { return r.audit.OK }

// keyState is the state of k a backup counts it under.
func keyState(k *keyward.Key) string {
	switch {
	case k.PepperVersion == 0:
		return "imported"
	case k.RevokedAt != nil:
		return "revoked"
	case k.Disabled:
		return "disabled"
	}
	return "active"
}

// differences says how got differs from the recorded state b; "" when it
// does not. Fingerprints are checked by restores, MACs by checkHead.
func (b *backupState) differences(got *inspected) string {
	var d []string
	cmp := func(what string, want, have int64) {
		if want != have {
			d = append(d, fmt.Sprintf("%s: %d, the manifest says %d", what, have, want))
		}
	}
	cmp("accounts", b.Accounts, got.Accounts)
	cmp("users", b.Users, got.Users)
	for _, s := range slices.Sorted(maps.Keys(mergeKeys(b.Keys, got.Keys))) {
		cmp(s+" keys", b.Keys[s], got.Keys[s])
	}
	cmp("audit entries", b.AuditEntries, got.AuditEntries)
	wantPeppers, havePeppers := map[int]int64{}, map[int]int64{}
	for _, p := range b.Peppers {
		wantPeppers[p.Version] = p.Keys
	}
	for _, p := range got.Peppers {
		havePeppers[p.Version] = p.Keys
	}
	for _, v := range slices.Sorted(maps.Keys(mergeKeys(wantPeppers, havePeppers))) {
		cmp("keys under pepper version "+strconv.Itoa(v), wantPeppers[v], havePeppers[v])
	}
	switch h := got.AuditHead; {
	case (b.AuditHead == nil) != (h == nil):
		d = append(d, "the audit log's head differs from the manifest's")
	case h != nil && (h.Seq != b.AuditHead.Seq || h.Hash != strings.ToLower(b.AuditHead.Hash)):
		d = append(d, fmt.Sprintf("the audit log's head is %s, the manifest says %s", h, b.AuditHead))
	}
	if !slices.Equal(b.MasterKeyVersions, got.MasterKeyVersions) {
		d = append(d, fmt.Sprintf("master key versions in use: %s, the manifest says %s", orNone(joinInts(got.MasterKeyVersions)), orNone(joinInts(b.MasterKeyVersions))))
	}
	return strings.Join(d, "; ")
}

// mergeKeys returns a map with the keys of a and b.
func mergeKeys[K comparable, V any](a, b map[K]V) map[K]bool {
	m := make(map[K]bool, len(a)+len(b))
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

// makeBackupDir creates dir with mode 0700, or accepts an empty one.
func makeBackupDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return usageErrorf("creating %s: %v", dir, err)
		}
		return nil
	case err != nil:
		return usageErrorf("%s: %v", dir, err)
	case len(entries) > 0:
		return usageErrorf("%s is not empty: give a new or empty directory, so no backup is mixed with another", dir)
	}
	return os.Chmod(dir, 0o700)
}

// copySecrets copies the pepper and master key files of cfg into dir with
// mode 0600 and returns their names there. Secrets given in the
// environment or keyward.yaml are not files: it refuses, naming them.
func copySecrets(cfg *config.Config, dir string) ([]string, error) {
	if len(cfg.Peppers) > 0 {
		return nil, usageErrorf("--include-secrets: the peppers come from %s, not a file: back them up from your secret store", cfg.Source("peppers"))
	}
	if len(cfg.MasterKeys) > 0 {
		return nil, usageErrorf("--include-secrets: the master keys come from %s, not a file: back them up from your secret store", cfg.Source("master_keys"))
	}
	pepper := firstNonEmpty(cfg.PepperFile, cfg.DefaultPepperPath())
	masterKeys := firstNonEmpty(cfg.MasterKeyFile, cfg.DefaultMasterKeyPath())
	var names []string
	for _, c := range []struct{ from, to string }{{pepper, backupPepperFile}, {masterKeys, backupMasterKeyFile}} {
		b, err := os.ReadFile(c.from)
		if err != nil {
			return nil, fmt.Errorf("--include-secrets: %w", err)
		}
		if err := keyring.CreateSecretFile(filepath.Join(dir, c.to), string(b)); err != nil {
			return nil, fmt.Errorf("--include-secrets: %w", err)
		}
		names = append(names, c.to)
	}
	return names, nil
}

// writeManifest writes m to dir/manifest.json (mode 0600).
func writeManifest(dir string, m *backupManifest) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	return keyring.CreateSecretFile(filepath.Join(dir, backupManifestFile), string(b)+"\n")
}

// readManifest reads dir/manifest.json.
func readManifest(dir string) (*backupManifest, error) {
	path := filepath.Join(dir, backupManifestFile)
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErrorf("%s: %v: give the directory keyward backup wrote", dir, err)
	}
	var m backupManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, refusef("%s is not a manifest keyward can read: %v", path, err)
	}
	if m.Format != backupFormat {
		return nil, refusef("%s has format %d: this keyward reads format %d", path, m.Format, backupFormat)
	}
	return &m, nil
}
