package keyward

import (
	"context"
	"time"
)

// Bounds of a RotationPolicy, checked by Validate.
const (
	MinRotationMaxAge = time.Hour
	MaxRotationMaxAge = 10 * 366 * 24 * time.Hour
	// MaxRotationNotice bounds ExpireAfter: a notice period longer than
	// a year is no rotation policy.
	MaxRotationNotice = 366 * 24 * time.Hour
)

// RotationPolicy asks that keys be rotated before they are MaxAge old. It
// belongs to an account (it applies to every key of the account) or to one
// key (it applies to that key, instead of its account's). The rotation job
// announces each key past its MaxAge once (EventKeyRotationDue); with
// ExpireAfter set, it also makes the key expire that long after the
// announcement, unless the key expires earlier anyway.
type RotationPolicy struct {
	// AccountID or KeyID names what the policy belongs to; exactly one is
	// set.
	AccountID string   `json:"account_id,omitempty"`
	KeyID     string   `json:"key_id,omitempty"`
	MaxAge    Duration `json:"max_age"`
	// ExpireAfter, when not 0, is the notice period: a key announced due
	// for rotation expires this long after the announcement.
	ExpireAfter Duration  `json:"expire_after,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
	// UpdatedBy is the id of the key that set the policy.
	UpdatedBy string `json:"updated_by,omitempty"`
}

// Scope returns what the policy belongs to.
func (p *RotationPolicy) Scope() RotationScope {
	return RotationScope{AccountID: p.AccountID, KeyID: p.KeyID}
}

// Validate returns EINVALID, naming the field, unless p belongs to exactly
// one account or key, MaxAge is between MinRotationMaxAge and
// MaxRotationMaxAge and ExpireAfter is at most MaxRotationNotice.
func (p *RotationPolicy) Validate() error {
	if err := p.Scope().Validate(); err != nil {
		return err
	}
	if d := time.Duration(p.MaxAge); d < MinRotationMaxAge || d > MaxRotationMaxAge {
		return Errorf(EINVALID, "rotation policy max_age must be between %v and %v, got %v", MinRotationMaxAge, MaxRotationMaxAge, d)
	}
	if d := time.Duration(p.ExpireAfter); d < 0 || d > MaxRotationNotice {
		return Errorf(EINVALID, "rotation policy expire_after must be between 0 (never expire) and %v, got %v", MaxRotationNotice, d)
	}
	return nil
}

// RotationScope names the account or the key a rotation policy belongs to;
// exactly one is set.
type RotationScope struct {
	AccountID string
	KeyID     string
}

// Validate returns EINVALID unless exactly one of AccountID and KeyID is
// set.
func (s RotationScope) Validate() error {
	if (s.AccountID == "") == (s.KeyID == "") {
		return Errorf(EINVALID, "a rotation policy belongs to an account or to a key: name exactly one")
	}
	return nil
}

// String returns "account ID" or "key ID".
func (s RotationScope) String() string {
	if s.KeyID != "" {
		return "key " + s.KeyID
	}
	return "account " + s.AccountID
}

// RotationPolicySet is the input of RotationPolicyService.SetRotationPolicy.
type RotationPolicySet struct {
	MaxAge      Duration `json:"max_age"`
	ExpireAfter Duration `json:"expire_after,omitempty"`
}

// RotationPolicyService manages rotation policies for a caller (the identity
// in ctx): root any, an account admin those of its account and its
// account's keys; users none (EFORBIDDEN). Implemented by admin.Keys and
// client.Client.
type RotationPolicyService interface {
	// SetRotationPolicy creates or replaces the policy of s.
	SetRotationPolicy(ctx context.Context, s RotationScope, p RotationPolicySet) (*RotationPolicy, error)
	// RotationPolicy returns the policy of s; ENOTFOUND if it has none.
	RotationPolicy(ctx context.Context, s RotationScope) (*RotationPolicy, error)
	// DeleteRotationPolicy removes the policy of s; ENOTFOUND if none.
	DeleteRotationPolicy(ctx context.Context, s RotationScope) error
}

// NoticeKind names what a KeyNotice records.
type NoticeKind string

// The kinds of key notices.
const (
	// NoticeExpired: the key's expiry (Subject) was announced
	// (EventKeyExpired).
	NoticeExpired NoticeKind = "expired"
	// NoticeRotationDue: the key was announced due for rotation
	// (EventKeyRotationDue); Subject is the time it became due.
	NoticeRotationDue NoticeKind = "rotation_due"
	// NoticeExpiryScheduled: the key was made to expire by its rotation
	// policy, at Subject.
	NoticeExpiryScheduled NoticeKind = "expiry_scheduled"
)

// KeyNotice records that the lifecycle jobs have dealt with something about
// a key, so that each thing is dealt with once: a key holds at most one
// notice of each kind, the latest.
type KeyNotice struct {
	KeyID string     `json:"key_id"`
	Kind  NoticeKind `json:"kind"`
	// Subject is the time the notice is about: the expiry announced, the
	// time the key became due for rotation, the expiry scheduled. A
	// notice of the same kind about another time replaces it.
	Subject time.Time `json:"subject"`
	// At is when the notice was made.
	At time.Time `json:"at"`
}

// RotationDue is a key past the MaxAge of its rotation policy (its own, or
// its account's).
type RotationDue struct {
	Key    *Key
	Policy RotationPolicy
	// DueAt is when the key became due: its creation plus MaxAge.
	DueAt time.Time
	// NoticeAt is when the key was announced due (for the auto-expiry
	// query; zero otherwise).
	NoticeAt time.Time
}

// ExpireAt returns when the policy makes the key expire: NoticeAt plus
// ExpireAfter; zero without an ExpireAfter.
func (d *RotationDue) ExpireAt() time.Time {
	if d.Policy.ExpireAfter == 0 || d.NoticeAt.IsZero() {
		return time.Time{}
	}
	return d.NoticeAt.Add(time.Duration(d.Policy.ExpireAfter))
}

// LifecycleStore is the part of Store that the lifecycle jobs (package
// lifecycle) use: a lock per job, rotation policies, key notices, and the
// queries that find the work of each job. The queries list at most limit
// items by id after the cursor after ("" for the start), so a job works
// through them in batches.
type LifecycleStore interface {
	// TryLock takes the lock called name unless someone holds it (in this
	// or another process sharing the backend) and returns its release;
	// ok is false, with nothing to release, when it is held. A holder
	// that dies loses the lock: with its connection on PostgreSQL, when
	// its lease (LockLease) runs out on SQLite.
	TryLock(ctx context.Context, name string) (release func(), ok bool, err error)

	// SetRotationPolicy inserts p, replacing the policy of its scope.
	// EINVALID if p fails Validate, ENOTFOUND if its account or key does
	// not exist. Deleting the account or key deletes its policy.
	SetRotationPolicy(ctx context.Context, ch Change, p *RotationPolicy) error
	// RotationPolicy returns the policy of s. ENOTFOUND if none.
	RotationPolicy(ctx context.Context, s RotationScope) (*RotationPolicy, error)
	// DeleteRotationPolicy deletes the policy of s and returns it.
	// ENOTFOUND if none.
	DeleteRotationPolicy(ctx context.Context, ch Change, s RotationScope) (*RotationPolicy, error)

	// AddKeyNotice records n, replacing the key's notice of the same kind
	// about another Subject. ECONFLICT, and nothing written (events and
	// audit entry of ctx included), if the key has that notice already:
	// so of several instances announcing the same thing, one does.
	// ENOTFOUND if the key does not exist.
	AddKeyNotice(ctx context.Context, ch Change, n *KeyNotice) error
	// KeyNotices returns the notices of a key, by kind.
	KeyNotices(ctx context.Context, keyID string) ([]*KeyNotice, error)

	// ExpiredKeys lists the keys whose expiry is at or before now and has
	// no NoticeExpired, except keys revoked before they expired.
	ExpiredKeys(ctx context.Context, now time.Time, after string, limit int) ([]*Key, error)
	// RotationDueKeys lists the keys, neither revoked nor expired at now,
	// whose policy's MaxAge has passed at now and that have no
	// NoticeRotationDue about their DueAt.
	RotationDueKeys(ctx context.Context, now time.Time, after string, limit int) ([]*RotationDue, error)
	// ExpiryDueKeys lists the keys, not revoked, that have a
	// NoticeRotationDue about their current DueAt, a policy with an
	// ExpireAfter, and no NoticeExpiryScheduled about the resulting
	// ExpireAt; NoticeAt is set.
	ExpiryDueKeys(ctx context.Context, after string, limit int) ([]*RotationDue, error)
	// RetiredKeys lists the keys, root keys excepted, revoked or expired
	// at or before before.
	RetiredKeys(ctx context.Context, before time.Time, after string, limit int) ([]*Key, error)
	// ExpiredIPRules lists the IP rules that expired at or before before.
	ExpiredIPRules(ctx context.Context, before time.Time, after string, limit int) ([]*IPRule, error)
	// DeleteWebhookEventsBefore deletes the webhook events announced
	// before before whose deliveries are all finished (delivered or
	// failed), with their deliveries and delivery log, and returns how
	// many events it deleted. Events not yet dispatched or with a pending
	// delivery are kept.
	DeleteWebhookEventsBefore(ctx context.Context, before time.Time) (int64, error)
	// CredentialsDue lists, by id after the cursor, the credentials the
	// lifecycle job must revoke at now: active ones whose expiry is at or
	// before now, and rotated ones whose grace ended at or before now.
	CredentialsDue(ctx context.Context, now time.Time, after string, limit int) ([]*ManagedCredential, error)
	// CreditRefillsDue lists the ids of the keys whose stored credits
	// have a refill due at now.
	CreditRefillsDue(ctx context.Context, now time.Time, after string, limit int) ([]string, error)
}

// LockLease is how long a lock of LifecycleStore.TryLock lasts on a backend
// that cannot tie it to a connection (SQLite) unless released: a holder that
// dies without releasing it blocks the job that long.
const LockLease = 10 * time.Minute
