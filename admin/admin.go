// Package admin implements keyward's management services on top of a
// keyward.Store: the permission model (who may do what to whom), the key
// lifecycle (create, update, revoke, rotate, delete) and the notifications
// that keep verification caches current. The HTTP API and the CLI reach
// them through the keyward service interfaces.
//
// New builds seven services from one Config, each over only what it uses:
//   - Tenancy: accounts and their users (accounts.go, users.go);
//   - Roles: the named roles of accounts, attached to keys (roles.go);
//   - Keys: keys and their tree, rotation policies and the lifecycle jobs'
//     key changes, secret metadata, rate limits and credits, imports
//     (keys.go and the files it names);
//   - Credentials: provider connections and the credentials managed through
//     them (credentials.go);
//   - Webhooks: webhook endpoints and their deliveries (webhooks.go);
//   - Audit: the audit log and usage (audit.go);
//   - Abuse: IP rules, anomalies and leak reports (abuse.go).
//
// Jobs gives the lifecycle jobs their changes, each through the service of
// its domain (jobs.go). What the services share is in one place each: the
// caller's identity (caller, changer) and the lock that orders changes with
// their cache notices (writes) here, the audit records of a change
// (recorder, record.go), the permission checks (policy.go) and input
// validation (validate.go).
package admin

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/verify"
	"github.com/keyward/keyward/webhook"
)

// Config configures the services New returns.
type Config struct {
	// Store holds accounts, users and keys.
	Store keyward.Store
	// Hasher hashes new keys with the current pepper.
	Hasher *apikey.Hasher
	// Verifier answers VerifyKey.
	Verifier *verify.Engine
	// Observer is told about every committed change that can alter a
	// verification; it defaults to Verifier so the local cache is updated
	// at once.
	Observer keyward.KeyObserver
	// Credits is the ledger that holds the live credit counts; the
	// credit methods answer EINTERNAL without one.
	Credits keyward.CreditLedger
	// Sealer encrypts audit details; without one they are not recorded
	// (the entries still are).
	Sealer Sealer
	// WebhookGuard checks the URLs of webhook endpoints; the zero Guard
	// refuses every internal address.
	WebhookGuard webhook.Guard
	// Providers opens the providers of external credentials (package
	// provider); the credential methods answer EINTERNAL without it.
	Providers ProviderFactory
	// Prefixes are the key prefixes of each tier and environment; the zero
	// value is apikey.DefaultPrefixes. They must be valid
	// (apikey.Prefixes.Validate): a prefix the format refuses fails the
	// creation of its keys with EINVALID.
	Prefixes apikey.Prefixes
	// PortalIdleTimeout ends a portal session after this long without a
	// request; zero: keyward.DefaultPortalIdleTimeout.
	PortalIdleTimeout time.Duration
	// Now is the clock; it defaults to time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Services are the admin services of one Config. Every method acts for the
// identity in its context (keyward.NewContextWithIdentity) and returns
// EUNAUTHORIZED without one.
type Services struct {
	Tenancy     *Tenancy
	Roles       *Roles
	Keys        *Keys
	Credentials *Credentials
	Webhooks    *Webhooks
	Audit       *Audit
	Abuse       *Abuse
	Portal      *Portal
}

// New returns the services of cfg. Tenancy, Roles, Keys and Abuse share one
// lock: they change what verification caches hold (accounts, users, roles,
// keys, IP rules), and observers
// must hear of those changes in the order they were committed.
func New(cfg Config) Services {
	rec := recorder{sealer: cfg.Sealer, now: cfg.Now, log: cfg.Logger}
	if rec.now == nil {
		rec.now = time.Now
	}
	if rec.log == nil {
		rec.log = slog.Default()
	}
	rec.log = rec.log.With("component", "admin")
	w := &writes{observer: cfg.Observer}
	keys := &Keys{recorder: rec, writes: w, store: cfg.Store, hasher: cfg.Hasher, credits: cfg.Credits, prefixes: cfg.Prefixes}
	abuse := &Abuse{recorder: rec, writes: w, store: cfg.Store, hasher: cfg.Hasher, keys: keys}
	if cfg.Verifier != nil { // else the interfaces stay nil, not a nil *Engine
		keys.verifier, abuse.rules = cfg.Verifier, cfg.Verifier
		if w.observer == nil {
			w.observer = cfg.Verifier
		}
	}
	return Services{
		Tenancy:     &Tenancy{recorder: rec, writes: w, store: cfg.Store, prefixes: cfg.Prefixes},
		Roles:       &Roles{recorder: rec, writes: w, store: cfg.Store},
		Keys:        keys,
		Credentials: &Credentials{recorder: rec, store: cfg.Store, factory: cfg.Providers},
		Webhooks:    &Webhooks{recorder: rec, writes: &writes{}, store: cfg.Store, guard: cfg.WebhookGuard},
		Audit:       &Audit{recorder: rec, store: cfg.Store},
		Abuse:       abuse,
		Portal:      newPortal(rec, cfg.Store, keys, cfg.PortalIdleTimeout),
	}
}

// caller returns the authenticated identity of ctx.
func caller(ctx context.Context) (*keyward.Identity, error) {
	id := keyward.IdentityFrom(ctx)
	if id == nil {
		return nil, keyward.Errorf(keyward.EUNAUTHORIZED, "authentication required")
	}
	return id, nil
}

// changer returns the authenticated identity of ctx for a change. A
// rotated key in its grace window may not change anything: it was
// replaced, perhaps because it leaked. Changes that no verification cache
// depends on (external credentials) take no lock: they may wait on other
// systems.
func changer(ctx context.Context) (*keyward.Identity, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if id.Retiring {
		return nil, keyward.Errorf(keyward.EFORBIDDEN, "key %s was rotated and may only authenticate until its grace ends: use its replacement", id.KeyID)
	}
	return id, nil
}

// writes serialises the changes of the services sharing it with their
// notices to the observer.
//
// The lock makes observers hear of changes in the order they were
// committed: without it a slow notice of an older state (a key enabled)
// could overwrite a newer one (the same key disabled) in the cache. It
// also keeps a per-account bound (IP rules, webhook endpoints) from being
// overrun by concurrent changes on this instance.
type writes struct {
	mu       sync.Mutex
	observer keyward.KeyObserver // nil: none
}

// writer returns the identity of ctx for a change (changer) and locks the
// writes until the returned unlock is called.
func (w *writes) writer(ctx context.Context) (*keyward.Identity, func(), error) {
	id, err := changer(ctx)
	if err != nil {
		return nil, nil, err
	}
	w.mu.Lock()
	return id, w.mu.Unlock, nil
}

// lock serialises a lifecycle job's change with the admin changes of this
// instance, as writer does, for keyward itself acting.
func (w *writes) lock() func() {
	w.mu.Lock()
	return w.mu.Unlock
}

func (w *writes) keyChanged(k *keyward.Key) {
	if w.observer != nil {
		w.observer.KeyChanged(k)
	}
}

func (w *writes) keysDeleted(hashes []keyward.KeyHash) {
	if w.observer != nil && len(hashes) > 0 {
		w.observer.KeysDeleted(hashes)
	}
}

func (w *writes) accountChanged(id string) {
	if w.observer != nil {
		w.observer.AccountChanged(id)
	}
}
