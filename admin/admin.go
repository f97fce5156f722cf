// Package admin implements keyward's account, user and key services on top
// of a keyward.Store: the permission model (who may do what to whom), the key
// lifecycle (create, update, revoke, rotate, delete) and the notifications
// that keep verification caches current. The HTTP API and the CLI reach it
// through the keyward service interfaces.
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

// Config configures a Service.
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
	// Now is the clock; it defaults to time.Now.
	Now func() time.Time
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Service implements keyward.AccountService, keyward.UserService and
// keyward.KeyService. Every method acts for the identity in its context
// (keyward.NewContextWithIdentity) and returns EUNAUTHORIZED without one.
type Service struct {
	mu sync.Mutex // serialises changes with their notices; see writer

	store        keyward.Store
	hasher       *apikey.Hasher
	verifier     *verify.Engine
	credits      keyward.CreditLedger
	sealer       Sealer
	observer     keyward.KeyObserver
	webhookGuard webhook.Guard
	factory      ProviderFactory

	provMu sync.Mutex // guards provs
	provs  providers
	now    func() time.Time
	log    *slog.Logger
}

var (
	_ keyward.AccountService = (*Service)(nil)
	_ keyward.UserService    = (*Service)(nil)
	_ keyward.KeyService     = (*Service)(nil)
	_ keyward.CreditService  = (*Service)(nil)
	_ keyward.AnomalyService = (*Service)(nil)
	_ keyward.AuditService   = (*Service)(nil)
	_ keyward.LeakService    = (*Service)(nil)
	_ keyward.WebhookService = (*Service)(nil)
)

// New returns a Service.
func New(cfg Config) *Service {
	s := &Service{
		store:        cfg.Store,
		hasher:       cfg.Hasher,
		verifier:     cfg.Verifier,
		credits:      cfg.Credits,
		sealer:       cfg.Sealer,
		observer:     cfg.Observer,
		webhookGuard: cfg.WebhookGuard,
		factory:      cfg.Providers,
		now:          cfg.Now,
		log:          cfg.Logger,
	}
	if s.observer == nil && cfg.Verifier != nil {
		s.observer = cfg.Verifier
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	s.log = s.log.With("component", "admin")
	return s
}

// caller returns the authenticated identity of ctx.
func caller(ctx context.Context) (*keyward.Identity, error) {
	id := keyward.IdentityFrom(ctx)
	if id == nil {
		return nil, keyward.Errorf(keyward.EUNAUTHORIZED, "authentication required")
	}
	return id, nil
}

// writer returns the authenticated identity of ctx for a change, and locks
// the service until the returned unlock is called. A rotated key in its
// grace window may not change anything: it was replaced, perhaps because it
// leaked.
//
// The lock makes observers hear of changes in the order they were
// committed: without it a slow notice of an older state (a key enabled)
// could overwrite a newer one (the same key disabled) in the cache.
func (s *Service) writer(ctx context.Context) (*keyward.Identity, func(), error) {
	id, err := changer(ctx)
	if err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	return id, s.mu.Unlock, nil
}

// changer returns the authenticated identity of ctx for a change that no
// verification cache depends on (external credentials), without the lock
// writer takes: such changes may wait on other systems.
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

func (s *Service) keyChanged(k *keyward.Key) {
	if s.observer != nil {
		s.observer.KeyChanged(k)
	}
}

func (s *Service) keysDeleted(hashes []keyward.KeyHash) {
	if s.observer != nil && len(hashes) > 0 {
		s.observer.KeysDeleted(hashes)
	}
}

func (s *Service) accountChanged(id string) {
	if s.observer != nil {
		s.observer.AccountChanged(id)
	}
}

// utc returns the current time, in UTC, truncated to microseconds so what
// is returned equals what every backend stores.
func (s *Service) utc() time.Time { return s.now().UTC().Truncate(time.Microsecond) }
