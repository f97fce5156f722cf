package admin

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

var _ keyward.KeyImportService = (*Keys)(nil)

// ImportKeys creates keys whose raw keys keyward does not know, from their
// SHA-256 digests (docs/importing-keys.md). Root only. Every entry is
// checked before anything is written, and the keys are stored in one
// transaction with one key.import audit entry (its details hold the count
// and the new ids, never a digest): a bad entry changes nothing, and the
// error names it by its Line (or position) and says what is wrong.
//
// Each key is stored with a random placeholder hash and its digest; on its
// first successful verification the engine re-hashes it with the pepper
// and removes the digest (verify/imports.go).
func (s *Keys) ImportKeys(ctx context.Context, r keyward.KeyImportRequest) (*keyward.KeyImportResult, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if err := requireRoot(id, "import keys"); err != nil {
		return nil, err
	}
	if len(r.Keys) == 0 || len(r.Keys) > keyward.MaxImportKeys {
		return nil, keyward.Errorf(keyward.EINVALID, "keys must hold 1 to %d keys; split a longer list into several imports", keyward.MaxImportKeys)
	}
	now := s.utc()
	res := &resolver{s: s, accounts: map[string]*keyward.Account{}}
	imports := make([]keyward.KeyImport, len(r.Keys))
	seen := make(map[keyward.KeyDigest]string, len(r.Keys))
	for i, e := range r.Keys {
		label := importLabel(i, e.Line)
		im, err := s.importEntry(ctx, res, id, e, now)
		if err != nil {
			return nil, importError(label, err)
		}
		if prev, dup := seen[im.Digest]; dup {
			return nil, keyward.Errorf(keyward.ECONFLICT, "%s: the same sha256 as %s: one raw key, one entry", label, prev)
		}
		seen[im.Digest] = label
		switch k, err := s.store.KeyByDigest(ctx, im.Digest); keyward.ErrorCode(err) {
		case "":
			return nil, keyward.Errorf(keyward.ECONFLICT, "%s: this sha256 is already imported, as key %s: remove the entry", label, k.ID)
		case keyward.ENOTFOUND:
		default:
			return nil, err
		}
		imports[i] = im
	}
	out := &keyward.KeyImportResult{Imported: make([]keyward.ImportedKey, len(imports))}
	for i, im := range imports {
		out.Imported[i] = keyward.ImportedKey{Name: im.Key.Name, Line: r.Keys[i].Line}
	}
	if !r.DryRun {
		if err := s.saveImports(ctx, id, imports); err != nil {
			return nil, err
		}
		for i, im := range imports {
			out.Imported[i].ID = im.Key.ID
		}
	}
	if out.Counts, err = s.store.KeyImportCounts(ctx); err != nil {
		return nil, err
	}
	return out, nil
}

// saveImports stores checked imports with their audit entry and has the
// local engine count them at once.
func (s *Keys) saveImports(ctx context.Context, id *keyward.Identity, imports []keyward.KeyImport) error {
	ids := make([]string, len(imports))
	for i, im := range imports {
		ids[i] = im.Key.ID
	}
	ch, err := s.audit(ctx, id, "key.import", "key", "", "", map[string]any{"count": len(ids), "key_ids": ids})
	if err != nil {
		return err
	}
	if err := s.store.ImportKeys(ctx, ch, imports); err != nil {
		return err
	}
	s.log.InfoContext(ctx, "keys imported", "count", len(imports), "by", id.KeyID)
	if s.verifier != nil {
		if err := s.verifier.ReloadImports(context.WithoutCancel(ctx)); err != nil {
			s.log.WarnContext(ctx, "counting imported keys failed: this instance verifies them once it counts them again", "err", err)
		}
	}
	return nil
}

// importEntry checks one entry and returns its import.
func (s *Keys) importEntry(ctx context.Context, res *resolver, id *keyward.Identity, e keyward.KeyImportEntry, now time.Time) (keyward.KeyImport, error) {
	var im keyward.KeyImport
	d, err := keyward.ParseDigest(e.SHA256)
	if err != nil {
		return im, err
	}
	role := e.Role
	if role == "" && e.User != "" {
		role = keyward.RoleUser
	}
	if role == "" {
		return im, keyward.Errorf(keyward.EINVALID, "role is required: root, account_admin or user")
	}
	if !role.Valid() {
		return im, keyward.Errorf(keyward.EINVALID, "role %q is not one of root, account_admin, user", role)
	}
	if err := validateName("name", e.Name, false); err != nil {
		return im, err
	}
	env := keyward.EnvironmentOf(e.Environment)
	if err := keyward.ValidateEnvironment("environment", env); err != nil {
		return im, err
	}
	perms, err := normalizePermissions(e.Permissions)
	if err != nil {
		return im, err
	}
	if err := checkEverything(role, perms); err != nil {
		return im, err
	}
	meta, err := normalizeMeta(e.Meta)
	if err != nil {
		return im, err
	}
	expires, err := futureExpiry(e.ExpiresAt, now)
	if err != nil {
		return im, err
	}
	var account *keyward.Account
	if e.Account != "" {
		if account, err = res.account(ctx, e.Account); err != nil {
			return im, err
		}
	}
	var user *keyward.User
	if e.User != "" {
		if account == nil {
			return im, keyward.Errorf(keyward.EINVALID, "user %q needs its account: set account", e.User)
		}
		if user, err = res.user(ctx, account.ID, e.User); err != nil {
			return im, err
		}
	}
	k := &keyward.Key{
		ID:          apikey.NewID("key"),
		Name:        e.Name,
		Role:        role,
		Permissions: perms,
		Meta:        meta,
		ExpiresAt:   expires,
		Environment: env,
		CreatedAt:   now,
		UpdatedAt:   now,
		CreatedBy:   id.KeyID,
	}
	if account != nil {
		k.AccountID = account.ID
	}
	if user != nil {
		k.UserID = user.ID
	}
	if err := keyward.ValidateOwner(k.Role, k.AccountID, k.UserID); err != nil {
		return im, err
	}
	// The environment must be one keys may be created in; the prefix the
	// key would get is not its own (it was made elsewhere), so none is set.
	var accountPrefix string
	if account != nil {
		accountPrefix = account.KeyPrefix
	}
	if _, err := s.prefixes.Prefix(role, env, accountPrefix); err != nil {
		return im, err
	}
	if k.Permissions == nil {
		k.Permissions = []string{}
	}
	// The secret is unknown until first use: the hash is a random value
	// that no raw key hashes to, and pepper version 0 marks it.
	rand.Read(k.Hash[:])
	return keyward.KeyImport{Key: k, Digest: d}, nil
}

// importLabel names entry i of a request: by its line when it has one.
func importLabel(i, line int) string {
	if line > 0 {
		return fmt.Sprintf("line %d", line)
	}
	return fmt.Sprintf("keys[%d]", i)
}

// importError prefixes err's message with the entry's label, keeping its
// code.
func importError(label string, err error) error {
	code := keyward.ErrorCode(err)
	if code == "" || code == keyward.EINTERNAL || code == keyward.EUNAVAILABLE {
		return err
	}
	return keyward.WrapError(code, err, "%s: %s", label, keyward.ErrorMessage(err))
}

// resolver finds the accounts and users an import names, by id or by name
// (an account) or external id (a user), each once.
type resolver struct {
	s        *Keys
	accounts map[string]*keyward.Account
	byName   map[string]*keyward.Account         // every account by name, read once when needed
	users    map[string]map[string]*keyward.User // by account id, then by id and external id
}

func (r *resolver) account(ctx context.Context, ref string) (*keyward.Account, error) {
	if a, ok := r.accounts[ref]; ok {
		return a, nil
	}
	a, err := r.s.store.Account(ctx, ref)
	if keyward.ErrorCode(err) == keyward.ENOTFOUND {
		if r.byName == nil {
			if r.byName, err = r.allAccounts(ctx); err != nil {
				return nil, err
			}
		}
		if a = r.byName[ref]; a == nil {
			return nil, keyward.Errorf(keyward.ENOTFOUND, "account %q not found (by id or name): create it first (keyward accounts create)", ref)
		}
	} else if err != nil {
		return nil, err
	}
	r.accounts[ref] = a
	return a, nil
}

func (r *resolver) allAccounts(ctx context.Context) (map[string]*keyward.Account, error) {
	out := map[string]*keyward.Account{}
	p := keyward.Page{Limit: keyward.MaxPageLimit}
	for {
		items, next, err := r.s.store.Accounts(ctx, p)
		if err != nil {
			return nil, err
		}
		for _, a := range items {
			out[a.Name] = a
		}
		if next == "" {
			return out, nil
		}
		p.After = next
	}
}

func (r *resolver) user(ctx context.Context, accountID, ref string) (*keyward.User, error) {
	users, ok := r.users[accountID]
	if !ok {
		users = map[string]*keyward.User{}
		p := keyward.Page{Limit: keyward.MaxPageLimit}
		for {
			items, next, err := r.s.store.Users(ctx, accountID, p)
			if err != nil {
				return nil, err
			}
			for _, u := range items {
				users[u.ID] = u
				if u.ExternalID != "" {
					users[u.ExternalID] = u
				}
			}
			if next == "" {
				break
			}
			p.After = next
		}
		if r.users == nil {
			r.users = map[string]map[string]*keyward.User{}
		}
		r.users[accountID] = users
	}
	if u := users[ref]; u != nil {
		return u, nil
	}
	return nil, keyward.Errorf(keyward.ENOTFOUND, "user %q not found in account %s (by id or external id): create it first (keyward users create)", ref, accountID)
}
