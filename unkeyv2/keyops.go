package unkeyv2

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/keyward/keyward"
)

type rerollKeyRequest struct {
	KeyID      string `json:"keyId"`
	Expiration *int64 `json:"expiration"`
}

// rerollKey rotates the key: the replacement has its role, owner,
// permissions, roles, meta, limits and credits, and the old key keeps
// working for expiration milliseconds (0: it stops at once).
func (s *Server) rerollKey(ctx context.Context, _ *http.Request, in *rerollKeyRequest) (*createKeyData, error) {
	if in.KeyID == "" {
		return nil, badField("keyId", "is required")
	}
	if in.Expiration == nil {
		return nil, badField("expiration", "is required: how many milliseconds the old key keeps working (0: it stops at once)")
	}
	if *in.Expiration < 0 {
		return nil, badField("expiration", "must not be negative")
	}
	k, err := s.cfg.Keys.RotateKey(ctx, in.KeyID, keyward.KeyRotate{Grace: keyward.Duration(time.Duration(*in.Expiration) * time.Millisecond)})
	if err != nil {
		return nil, err
	}
	return &createKeyData{KeyID: k.ID, Key: k.Secret}, nil
}

type updateCreditsRequest struct {
	KeyID     string          `json:"keyId"`
	Value     nullable[int64] `json:"value"`
	Operation string          `json:"operation"`
}

// updateCredits sets the key's credits (keeping its refill; null removes
// them), adds to them or takes from them (leaving zero when fewer remain,
// as Unkey does).
func (s *Server) updateCredits(ctx context.Context, _ *http.Request, in *updateCreditsRequest) (*creditsData, error) {
	if in.KeyID == "" {
		return nil, badField("keyId", "is required")
	}
	var (
		c   *keyward.Credits
		err error
	)
	switch in.Operation {
	case "set":
		if !in.Value.Set {
			return nil, badField("value", "is required with set (null removes the key's credits)")
		}
		var next *keyward.Credits
		if !in.Value.Null {
			next = &keyward.Credits{Remaining: in.Value.Value}
			if cur, err := s.cfg.Keys.Credits(ctx, in.KeyID); err == nil {
				next.Refill = cur.Refill
			} else if keyward.ErrorCode(err) != keyward.ENOTFOUND {
				return nil, err
			}
			if err := next.Validate(); err != nil {
				return nil, fieldErr("body.value", keyward.Errorf(keyward.EINVALID, "value: %s", keyward.ErrorMessage(err)))
			}
		}
		c, err = s.cfg.Keys.SetCredits(ctx, in.KeyID, next)
	case "increment":
		if !in.Value.Set || in.Value.Null {
			return nil, badField("value", "is required with increment")
		}
		c, err = s.cfg.Keys.TopUpCredits(ctx, in.KeyID, in.Value.Value)
	case "decrement":
		if !in.Value.Set || in.Value.Null {
			return nil, badField("value", "is required with decrement")
		}
		c, err = s.cfg.Keys.DecrementCredits(ctx, in.KeyID, in.Value.Value)
	case "":
		return nil, badField("operation", "is required: set, increment or decrement")
	default:
		return nil, badField("operation", "must be set, increment or decrement")
	}
	if err != nil {
		return nil, err
	}
	if c == nil {
		// Unlimited: Unkey answers remaining null.
		return &creditsData{}, nil
	}
	return creditsDataOf(c), nil
}

// listRequest is the body of the operations that change a key's
// permissions or roles: the list is in the field named by the operation.
type listRequest struct {
	KeyID       string   `json:"keyId"`
	Permissions []string `json:"permissions"`
	Roles       []string `json:"roles"`
}

// permissionData is a permission as Unkey answers it; a keyward permission
// is its own id, name and slug.
type permissionData struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Slug string `json:"slug"`
}

// roleData is a named role as Unkey answers it; a keyward role's name is
// its id.
type roleData struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// listChange is how add, remove and set change a key's list.
type listChange func(have, given []string) []string

func addTo(have, given []string) []string {
	out := slices.Clone(have)
	for _, g := range given {
		if !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	return out
}

func removeFrom(have, given []string) []string {
	return slices.DeleteFunc(slices.Clone(have), func(h string) bool { return slices.Contains(given, h) })
}

func replaceWith(_, given []string) []string { return slices.Clone(given) }

// keyList is one of a key's lists the operations change: its field in
// the request, how it is read from a key and written in an update, and how
// each item is answered.
type keyList[T any] struct {
	field  string
	given  func(*listRequest) []string
	of     func(*keyward.Key) []string
	update func(*keyward.KeyUpdate, *[]string)
	answer func(string) T
}

var (
	permissionList = keyList[permissionData]{
		field:  "permissions",
		given:  func(r *listRequest) []string { return r.Permissions },
		of:     func(k *keyward.Key) []string { return k.Permissions },
		update: func(u *keyward.KeyUpdate, l *[]string) { u.Permissions = l },
		answer: func(p string) permissionData { return permissionData{ID: p, Name: p, Slug: p} },
	}
	roleList = keyList[roleData]{
		field:  "roles",
		given:  func(r *listRequest) []string { return r.Roles },
		of:     func(k *keyward.Key) []string { return k.Roles },
		update: func(u *keyward.KeyUpdate, l *[]string) { u.Roles = l },
		answer: func(r string) roleData { return roleData{ID: r, Name: r} },
	}
)

// changeList returns the operation changing list l of a key by change; it
// answers the whole list after the change. The other list's field is
// refused as unknown, as any field the operation does not take.
func changeList[T any](s *Server, l keyList[T], change listChange) operation {
	return op(func(ctx context.Context, _ *http.Request, in *listRequest) ([]T, error) {
		other, otherField := in.Roles, "roles"
		if l.field == "roles" {
			other, otherField = in.Permissions, "permissions"
		}
		if other != nil {
			return nil, badField(otherField, "unknown field: this operation changes a key's %s only", l.field)
		}
		if in.KeyID == "" {
			return nil, badField("keyId", "is required")
		}
		given := l.given(in)
		if given == nil {
			return nil, badField(l.field, "is required")
		}
		k, err := s.cfg.Keys.Key(ctx, in.KeyID)
		if err != nil {
			return nil, err
		}
		var u keyward.KeyUpdate
		next := change(l.of(k), given)
		l.update(&u, &next)
		if k, err = s.cfg.Keys.UpdateKey(ctx, in.KeyID, u); err != nil {
			return nil, err
		}
		have := l.of(k)
		out := make([]T, len(have))
		for i, v := range have {
			out[i] = l.answer(v)
		}
		return out, nil
	})
}

type migrateKeysRequest struct {
	MigrationID string           `json:"migrationId"`
	APIID       string           `json:"apiId"`
	Keys        []migrateKeyData `json:"keys"`
}

// migrateKeyData is one key of a migration. Roles, credits, rate limits
// and a disabled state are not part of keyward's import: given, they are
// refused, and set after the import with keys.updateKey.
type migrateKeyData struct {
	Hash        string             `json:"hash"`
	Name        string             `json:"name"`
	ExternalID  string             `json:"externalId"`
	Meta        json.RawMessage    `json:"meta"`
	Roles       []string           `json:"roles"`
	Permissions []string           `json:"permissions"`
	Expires     *int64             `json:"expires"`
	Enabled     *bool              `json:"enabled"`
	Credits     *creditsRequest    `json:"credits"`
	Ratelimits  []ratelimitRequest `json:"ratelimits"`
}

type migration struct {
	Hash  string `json:"hash"`
	KeyID string `json:"keyId"`
}

type migrateKeysData struct {
	Migrated []migration `json:"migrated"`
	Failed   []string    `json:"failed"`
}

// migrateKeys imports keys by the base64 SHA-256 digests the peer stores,
// all or none, as user keys of the account apiId names (each of the user
// with its externalId, created if missing). Root only, as keyward's
// import.
func (s *Server) migrateKeys(ctx context.Context, _ *http.Request, in *migrateKeysRequest) (*migrateKeysData, error) {
	if in.MigrationID == "" {
		return nil, badField("migrationId", "is required")
	}
	if in.APIID == "" {
		return nil, badField("apiId", "is required")
	}
	if len(in.Keys) == 0 {
		return nil, badField("keys", "must hold at least one key")
	}
	if len(in.Keys) > keyward.MaxImportKeys {
		return nil, badField("keys", "holds %d keys; send at most %d per call", len(in.Keys), keyward.MaxImportKeys)
	}
	req := keyward.KeyImportRequest{Keys: make([]keyward.KeyImportEntry, len(in.Keys))}
	for i, k := range in.Keys {
		field := fmt.Sprintf("keys[%d]", i)
		switch {
		case len(k.Roles) > 0:
			return nil, badField(field+".roles", "keyward's import gives no roles: add them with keys.addRoles once imported")
		case k.Enabled != nil && !*k.Enabled:
			return nil, badField(field+".enabled", "keyward imports enabled keys: disable them with keys.updateKey once imported")
		case k.Credits != nil:
			return nil, badField(field+".credits", "keyward's import gives no credits: set them with keys.updateCredits once imported")
		case len(k.Ratelimits) > 0:
			return nil, badField(field+".ratelimits", "keyward's import gives no rate limits: set them with keys.updateKey once imported")
		}
		digest, err := base64.StdEncoding.DecodeString(k.Hash)
		if err != nil || len(digest) != 32 {
			return nil, badField(field+".hash", "must be the base64 SHA-256 digest of the key (44 characters)")
		}
		e := keyward.KeyImportEntry{SHA256: hex.EncodeToString(digest), Name: k.Name, Role: keyward.RoleUser, Account: in.APIID, Permissions: k.Permissions, Meta: k.Meta, Line: i + 1}
		if k.Expires != nil {
			e.ExpiresAt = expiry(*k.Expires)
		}
		req.Keys[i] = e
	}
	// Users first: each key belongs to one, found or made by externalId
	// (or made for it alone); made ones are removed if the import fails.
	// A dry run first, so a refused import creates no user.
	if _, err := s.dryRunImport(ctx, req); err != nil {
		return nil, err
	}
	var made []string
	for i, k := range in.Keys {
		id, created, err := s.userFor(ctx, in.APIID, k.ExternalID, k.Name)
		if created {
			made = append(made, id)
		}
		if err != nil {
			s.removeUsers(ctx, in.APIID, made)
			return nil, err
		}
		req.Keys[i].User = id
	}
	res, err := s.cfg.Keys.ImportKeys(ctx, req)
	if err != nil {
		s.removeUsers(ctx, in.APIID, made)
		return nil, err
	}
	out := &migrateKeysData{Migrated: make([]migration, len(res.Imported)), Failed: []string{}}
	for i, imp := range res.Imported {
		out.Migrated[i] = migration{Hash: in.Keys[imp.Line-1].Hash, KeyID: imp.ID}
	}
	return out, nil
}

// dryRunImport checks req, without its users (each entry takes a user
// key's place as an account_admin one: the same checks of digests,
// fields and permissions), writing nothing.
func (s *Server) dryRunImport(ctx context.Context, req keyward.KeyImportRequest) (*keyward.KeyImportResult, error) {
	dry := keyward.KeyImportRequest{Keys: slices.Clone(req.Keys), DryRun: true}
	for i := range dry.Keys {
		dry.Keys[i].Role = keyward.RoleAccountAdmin
	}
	return s.cfg.Keys.ImportKeys(ctx, dry)
}

// removeUsers deletes the users made for a refused migration.
func (s *Server) removeUsers(ctx context.Context, accountID string, ids []string) {
	for _, id := range ids {
		s.undo(ctx, "deleting a user made for a refused migration", s.cfg.Tenancy.DeleteUser(ctx, accountID, id))
	}
}
