package keyward

import (
	"context"
	"time"
)

// Page selects a slice of a list ordered by id. Ids begin with their
// creation time in milliseconds, so a list reads roughly oldest first (ids
// made within one millisecond are in random order).
type Page struct {
	// After is the cursor: the last id of the previous page, or "" for the
	// first page.
	After string
	// Limit is the page size; 0 means DefaultPageLimit, and it is capped at
	// MaxPageLimit.
	Limit int
}

// Page size bounds.
const (
	DefaultPageLimit = 100
	MaxPageLimit     = 1000
)

// Size returns the effective page size.
func (p Page) Size() int {
	switch {
	case p.Limit <= 0:
		return DefaultPageLimit
	case p.Limit > MaxPageLimit:
		return MaxPageLimit
	}
	return p.Limit
}

// KeyFilter narrows a key list. Empty fields match everything.
type KeyFilter struct {
	AccountID string
	UserID    string
	Role      Role
	// Environment selects the keys of one environment.
	Environment string
}

// KeyUse records that a key was used at a time.
type KeyUse struct {
	ID string
	At time.Time
}

// CreditWrite is one key's credits in a Store.WriteCredits batch, or a
// user's or account's shared credits (Level set, KeyID the meter's id).
type CreditWrite struct {
	// Level is LevelUser or LevelAccount for a meter's credits; empty (or
	// LevelKey) for a key's.
	Level      LimitLevel
	KeyID      string
	Remaining  int64
	RefilledAt time.Time
	Version    int64
}

// Change is what a write method records besides the change itself, in the
// same transaction, so the change and its records commit together or not
// at all. The zero Change records nothing.
type Change struct {
	// Audit is appended to the audit log (Seq, PrevHash and Hash are set
	// then, and Time truncated to the microseconds stores keep, in UTC).
	// It must be sealed already; an invalid one (AuditEntry.Validate)
	// fails the write with EINVALID, changing nothing.
	Audit *AuditEntry
	// Events are written to the webhook outbox, oldest first. An invalid
	// one (Event.Validate) fails the write with EINVALID, changing nothing.
	Events []*Event
	// Notice is recorded as AddKeyNotice records it, so a job's change and
	// the notice that it was made commit together. ECONFLICT, and nothing
	// written, if the key has that notice already.
	Notice *KeyNotice
}

// Store is the storage contract every backend (sqlite, postgres) meets; the
// suite in keywardtest is its executable specification. Methods return
// *Error with ENOTFOUND for a missing id, ECONFLICT for a uniqueness
// violation, EUNAVAILABLE when the backend cannot be reached, and EINVALID
// for a value the backend cannot store.
type Store interface {
	// CreateAccount inserts a. ECONFLICT if the id or name is taken.
	CreateAccount(ctx context.Context, ch Change, a *Account) error
	// Account returns the account with id. ENOTFOUND if none.
	Account(ctx context.Context, id string) (*Account, error)
	// Accounts lists accounts by id after the cursor; next is the cursor of
	// the following page or "" on the last one.
	Accounts(ctx context.Context, p Page) (accounts []*Account, next string, err error)
	// UpdateAccount loads the account, applies fn and saves the result in
	// one transaction; an error from fn aborts it unchanged.
	UpdateAccount(ctx context.Context, ch Change, id string, fn func(*Account) error) (*Account, error)
	// DeleteAccount deletes the account with its users and keys and
	// returns the hashes of the deleted keys.
	DeleteAccount(ctx context.Context, ch Change, id string) ([]KeyHash, error)

	// CreateUser inserts u. ENOTFOUND if its account does not exist,
	// ECONFLICT if the id or the external id (within the account) is taken.
	CreateUser(ctx context.Context, ch Change, u *User) error
	// User returns the user with id. ENOTFOUND if none.
	User(ctx context.Context, id string) (*User, error)
	// Users lists the users of an account.
	Users(ctx context.Context, accountID string, p Page) (users []*User, next string, err error)
	// UserByExternalID returns the user of the account with that
	// (non-empty) external id. ENOTFOUND if none.
	UserByExternalID(ctx context.Context, accountID, externalID string) (*User, error)
	// UpdateUser loads the user, applies fn and saves the result in one
	// transaction; an error from fn aborts it unchanged. fn may not change
	// the id or the account. ECONFLICT if the new external id is taken in
	// the account. It returns the user and its keys as read after the
	// change (carrying the user's new state), for caches to replace.
	UpdateUser(ctx context.Context, ch Change, id string, fn func(*User) error) (*User, []*Key, error)
	// DeleteUser deletes the user with its keys and returns their hashes.
	DeleteUser(ctx context.Context, ch Change, id string) ([]KeyHash, error)

	// CreateKey inserts k. ENOTFOUND if its account or user does not exist,
	// ECONFLICT if the id or hash is taken.
	CreateKey(ctx context.Context, ch Change, k *Key) error
	// CreateKeys inserts many keys at once (bulk loads, benchmarks), far
	// faster than one CreateKey each. It is all-or-nothing: every key is
	// inserted in one transaction, or none is. It returns the errors of
	// CreateKey (ENOTFOUND, ECONFLICT, EINVALID, EUNAVAILABLE), ECONFLICT
	// also when two keys of the batch share an id or hash; the message may
	// not say which key failed. Like CreateKey it fills AccountDisabled of
	// each key. An empty batch does nothing.
	CreateKeys(ctx context.Context, ch Change, keys []*Key) error
	// BootstrapRootKey inserts k, a root key, only if the store holds no
	// usable root key at k.CreatedAt (one neither disabled, revoked nor
	// expired, as Key.Status says); otherwise ECONFLICT. Unusable root
	// keys do not count: they cannot manage anything.
	BootstrapRootKey(ctx context.Context, ch Change, k *Key) error
	// Key returns the key with id. ENOTFOUND if none.
	Key(ctx context.Context, id string) (*Key, error)
	// KeyByHash returns the key with hash h, with AccountDisabled filled.
	// ENOTFOUND if none. This is the verification cache's miss path.
	KeyByHash(ctx context.Context, h KeyHash) (*Key, error)
	// Keys lists the keys matching f.
	Keys(ctx context.Context, f KeyFilter, p Page) (keys []*Key, next string, err error)
	// UpdateKey loads the key, applies fn and saves the result in one
	// transaction; an error from fn aborts it unchanged. The id, hash,
	// role, account and user of a key never change.
	UpdateKey(ctx context.Context, ch Change, id string, fn func(*Key) error) (*Key, error)
	// UpdateKeyTree loads the key with id and its descendants (the keys
	// it created, the keys those created, and so on: Key.CreatedBy) and
	// calls fn on each in one transaction, the key with id first and
	// every key before the keys it created. fn changes the key and returns
	// the audit entry recording the change and the events announcing it,
	// written with it; a nil entry means fn left the key as it was, and
	// it is not saved. The audit entry, events and notice of ch, if any, are
	// written too. An error from fn aborts the whole, unchanged. It
	// returns the keys fn changed, as stored, in the order fn saw them.
	// ENOTFOUND if no key has id.
	UpdateKeyTree(ctx context.Context, ch Change, id string, fn func(*Key) (*AuditEntry, []*Event, error)) ([]*Key, error)
	// RotateKey loads the key, lets fn change it (setting its grace window)
	// and return its replacement, then saves both in one transaction. The
	// key's own rotation policy, if any, moves to the replacement.
	RotateKey(ctx context.Context, ch Change, id string, fn func(old *Key) (next *Key, err error)) (old, next *Key, err error)
	// DeleteKey deletes the key with id and returns it.
	DeleteKey(ctx context.Context, ch Change, id string) (*Key, error)
	// TouchKeys raises last_used_at of each key to the given time; unknown
	// ids are ignored. It is called with batches, off the hot path.
	TouchKeys(ctx context.Context, uses []KeyUse) error

	// CreateIPRule inserts r. ENOTFOUND if its account does not exist,
	// ECONFLICT if the id is taken, EINVALID for an action other than
	// block or allow or an invalid CIDR.
	CreateIPRule(ctx context.Context, ch Change, r *IPRule) error
	// IPRule returns the rule with id. ENOTFOUND if none.
	IPRule(ctx context.Context, id string) (*IPRule, error)
	// IPRules lists the rules matching f by id, expired ones included.
	// EINVALID if f sets both AccountID and Global.
	IPRules(ctx context.Context, f IPRuleFilter, p Page) (rules []*IPRule, next string, err error)
	// ActiveIPRules returns every rule that applies at now (no expiry, or
	// one after now), global and of every account, in id order. It is how
	// the verification engine loads its matcher.
	ActiveIPRules(ctx context.Context, now time.Time) ([]*IPRule, error)
	// DeleteIPRule deletes the rule with id and returns it. ENOTFOUND if
	// none. Deleting an account deletes its rules.
	DeleteIPRule(ctx context.Context, ch Change, id string) (*IPRule, error)

	// SpendCredits applies the refills due at now to the key's credits and,
	// if at least cost remains, spends it, atomically: concurrent spends
	// (of this and other instances sharing the store) never take
	// Remaining below zero. It returns the credits after the call and
	// whether cost was spent; nil credits (the key has no quota) with ok
	// true. ENOTFOUND if the key does not exist. It bumps Version.
	SpendCredits(ctx context.Context, keyID string, cost int64, now time.Time) (c *Credits, ok bool, err error)
	// WriteCredits stores credits counted elsewhere (the Redis ledger's
	// write-back): for each write whose Version is newer than the stored
	// one, Remaining, RefilledAt and Version are replaced; older writes,
	// keys without credits and unknown ids are ignored.
	WriteCredits(ctx context.Context, writes []CreditWrite) error

	// Meter returns the shared rate limits and credits of the user or
	// account with id. ENOTFOUND if it has none.
	Meter(ctx context.Context, id string) (*Meter, error)
	// SetMeter stores m (m.Validate), replacing what the user or account
	// had; m.Credits is stored as given (version included). ENOTFOUND if
	// the user or account does not exist (or the user is not in
	// m.AccountID). It sets m.UpdatedAt as stored.
	SetMeter(ctx context.Context, ch Change, m *Meter) error
	// DeleteMeter removes the shared limits and credits of the user or
	// account with id. ENOTFOUND if it has none.
	DeleteMeter(ctx context.Context, ch Change, id string) error
	// SpendLevelCredits applies the refills due at now to the credits of
	// each holder in refs (keys and meters) and spends cost from every one
	// of them, or from none: atomically, so concurrent spends never take
	// one below zero. It returns the credits of each after the call (nil
	// for a holder without credits) and the index in refs of the first
	// holder with too few (-1 when cost was spent). Every spend or refill
	// bumps Version. ENOTFOUND if a key does not exist.
	SpendLevelCredits(ctx context.Context, refs []LevelRef, cost int64, now time.Time) (cs []*Credits, refused int, err error)

	// CreateAnomaly inserts a. ECONFLICT if the id is taken. A key or
	// account it names need not exist any more.
	CreateAnomaly(ctx context.Context, ch Change, a *Anomaly) error
	// Anomalies lists the anomalies matching f, newest first; the cursor
	// is the last id of the previous page.
	Anomalies(ctx context.Context, f AnomalyFilter, p Page) (anomalies []*Anomaly, next string, err error)

	// AppendAudit appends e to the audit log on its own: an event that
	// changes nothing else (a refused admin action). Every other write
	// method appends the entry of its Change in its own transaction, so a
	// change never commits without its entry.
	// The store sets Seq (the next number, without gaps, also with
	// concurrent writers), PrevHash (the previous entry's Hash, nil for
	// the first), ChainVersion and Hash (AuditEntry.Chain, keyed with
	// e.ChainKey). EINVALID without an Action, an Outcome or a Time.
	AppendAudit(ctx context.Context, e *AuditEntry) error
	// LastAuditEntry returns the newest audit entry as stored, nil when
	// the log is empty.
	LastAuditEntry(ctx context.Context) (*AuditEntry, error)
	// AuditEntries lists the audit entries matching f by Seq, oldest
	// first; the cursor is the last Seq of the previous page, in decimal.
	// Entries come as stored: Sealed, not Details.
	AuditEntries(ctx context.Context, f AuditFilter, p Page) (entries []*AuditEntry, next string, err error)

	// Usage analytics (see usage.go and package usage). Counts are added per
	// minute, rolled up to hours and days, and deleted by retention.

	// AddUsage adds the count of each row to the stored minute row of the
	// same minute, key, account and code (creating it at zero), in one
	// transaction. Start is truncated to the minute; rows that share a
	// minute, key, account and code add up. EINVALID, and nothing added, if
	// a row fails UsageRow.ValidateAdd. An empty batch does nothing.
	AddUsage(ctx context.Context, rows []UsageRow) error
	// RollUpUsage adds the minute rows of every complete hour before
	// before (truncated to the hour) to hour rows, and the hour rows of
	// every complete UTC day before before (truncated to the day) to day
	// rows, in one transaction. Source rows are kept (retention deletes
	// them); each remembers how much of its count is already rolled up, so
	// a second call adds nothing and a count added to a source row later
	// (a late flush) is added by the next call.
	RollUpUsage(ctx context.Context, before time.Time) error
	// Usage lists the stored rows of f.Granularity matching f, ordered by
	// start, key, code and account. EINVALID if f fails Validate or more
	// than MaxUsageRows rows match.
	Usage(ctx context.Context, f UsageFilter) ([]UsageRow, error)
	// DeleteUsageBefore deletes the rows of granularity g that start before
	// before and returns how many it deleted. EINVALID for an unknown g.
	DeleteUsageBefore(ctx context.Context, g UsageGranularity, before time.Time) (int64, error)

	// WebhookStore holds webhook endpoints, the event outbox and
	// deliveries (see webhooks.go).
	WebhookStore

	// CredentialStore holds provider connections and the credentials
	// managed through them (see credential.go).
	CredentialStore

	// RoleStore holds the named roles of accounts (see role.go).
	RoleStore
	// PortalStore holds portal sessions and the branding of accounts
	// (see portal.go).
	PortalStore

	// LifecycleStore holds job locks, rotation policies and key notices,
	// and finds the work of the lifecycle jobs (see lifecycle.go).
	LifecycleStore

	// Imported keys (keyimport.go, docs/importing-keys.md).

	// ImportKeys inserts the keys of a batch with their digests, in one
	// transaction, all or none. Each key is checked as CreateKey checks it
	// (ENOTFOUND, ECONFLICT, EINVALID); ECONFLICT also when a digest is
	// already stored (pending) or given twice in the batch. Like CreateKeys
	// it fills AccountDisabled of each key. An empty batch does nothing.
	ImportKeys(ctx context.Context, ch Change, imports []KeyImport) error
	// KeyByDigest returns the imported key whose digest is d and waits for
	// its first use, with AccountDisabled filled. ENOTFOUND if none (never
	// imported, adopted already, or deleted).
	KeyByDigest(ctx context.Context, d KeyDigest) (*Key, error)
	// AdoptKey replaces the digest d of a pending imported key by its
	// peppered hash h (of pepper version v), in one transaction: the key's
	// Hash and PepperVersion become h and v and the digest is removed. It
	// returns the key as stored after the change. ENOTFOUND if no key waits
	// with digest d: of two concurrent adoptions exactly one succeeds and
	// the other gets ENOTFOUND (the key is then found by h). ECONFLICT if
	// another key has hash h.
	AdoptKey(ctx context.Context, d KeyDigest, h KeyHash, v int) (*Key, error)
	// KeyImportCounts counts the pending and adopted imported keys.
	KeyImportCounts(ctx context.Context) (KeyImportCounts, error)

	// SealedStore walks the values sealed at rest under master keys
	// (secret metadata, webhook secrets, audit data keys) for a rekey
	// (see secretmeta.go).
	SealedStore

	// Ping reports whether the backend is reachable (EUNAVAILABLE if not).
	Ping(ctx context.Context) error
	// Close releases the backend.
	Close() error
}

// KeyObserver is told, after each commit, about every change that can alter
// a verification outcome, so caches (local, or on other instances through an
// invalidation bus) never keep serving a stale state.
type KeyObserver interface {
	// KeyChanged gives the new state of a key; caches overwrite their entry
	// with it rather than only dropping it.
	KeyChanged(k *Key)
	// KeysDeleted names keys that no longer exist.
	KeysDeleted(hashes []KeyHash)
	// AccountChanged says an account's state changed (disabled, enabled):
	// every cached key of it must be reloaded.
	AccountChanged(accountID string)
}
