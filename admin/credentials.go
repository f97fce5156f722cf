package admin

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/provider"
)

// Credentials manages provider connections and the credentials created
// through them at external systems (Gitea, n8n). Its changes reach no
// verification cache, and may wait on the provider: they take no lock.
type Credentials struct {
	recorder
	store   credentialStore
	factory ProviderFactory

	provMu sync.Mutex // guards provs
	provs  providers
}

var _ keyward.CredentialService = (*Credentials)(nil)

// credentialStore is what Credentials reads and writes: connections and
// credentials, the account a connection joins, and the audit entries of
// changes made at a provider alone.
type credentialStore interface {
	keyward.CredentialStore
	Account(ctx context.Context, id string) (*keyward.Account, error)
	AppendAudit(ctx context.Context, e *keyward.AuditEntry) error
}

// ProviderFactory returns the Provider of a connection (gitea.New, n8n.New
// by kind); EINVALID for an unknown kind.
type ProviderFactory func(kind string, c provider.Connection) (provider.Provider, error)

// maxScopes bounds the scopes of a credential.
const maxScopes = 50

// providers caches a Provider per connection, so a provider that keeps a
// session (n8n logins are rate-limited) keeps it between calls. An entry
// is replaced when its connection changed.
type providers struct {
	byConn map[string]cachedProvider
}

type cachedProvider struct {
	updated time.Time
	p       provider.Provider
}

// provider returns the Provider of c, opening its password.
func (s *Credentials) provider(c *keyward.ProviderConnection) (provider.Provider, error) {
	s.provMu.Lock()
	defer s.provMu.Unlock()
	if e, ok := s.provs.byConn[c.ID]; ok && e.updated.Equal(c.UpdatedAt) {
		return e.p, nil
	}
	if s.factory == nil {
		return nil, keyward.Errorf(keyward.EINTERNAL, "admin: no provider factory configured (admin.Config.Providers)")
	}
	if s.sealer == nil {
		return nil, keyward.Errorf(keyward.EINTERNAL, "provider connections need master keys: configure master_keys")
	}
	pw, err := s.openPassword(c)
	if err != nil {
		return nil, err
	}
	p, err := s.factory(c.Kind, provider.Connection{BaseURL: c.BaseURL, Username: c.Username, Password: keyward.Secret(pw), Timeout: time.Duration(c.Timeout)})
	if err != nil {
		return nil, err
	}
	if s.provs.byConn == nil {
		s.provs.byConn = map[string]cachedProvider{}
	}
	s.provs.byConn[c.ID] = cachedProvider{updated: c.UpdatedAt, p: p}
	return p, nil
}

// openPassword returns the password of c, which opens only with the kind,
// base URL and user name it was sealed for: a connection whose fields were
// changed in the database behind keyward's back is refused, and its
// password is sent nowhere.
func (s *Credentials) openPassword(c *keyward.ProviderConnection) ([]byte, error) {
	if !c.PasswordBound {
		return nil, keyward.Errorf(keyward.ECONFLICT, "the password of provider connection %s was sealed by an older keyward and is not yet bound to its kind, base URL and user name: restart keyward serve or run keyward rekey to bind it (see docs/providers.md)", c.ID)
	}
	pw, err := s.sealer.Open(c.PasswordVersion, c.SealedPassword, c.PasswordAD())
	if err != nil {
		return nil, keyward.WrapError(keyward.ECONFLICT, err, "the password of provider connection %s does not open with the connection's kind, base URL and user name: they were changed in the database behind keyward's back (or the password was altered); nothing was sent. Check the connection, then set its password again with keyward providers update %s --password-file FILE", c.ID, c.ID)
	}
	return pw, nil
}

// CreateProviderConnection checks that the provider is reachable and accepts
// the credentials, then stores the connection with its password sealed.
// Only root adds, changes and removes connections: a connection makes
// keyward send a password to a URL from its own network, which a tenant
// must not be able to point anywhere. Account admins use their account's.
func (s *Credentials) CreateProviderConnection(ctx context.Context, n keyward.NewProviderConnection) (*keyward.ProviderConnection, error) {
	id, err := changer(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireRoot(id, "add provider connections"); err != nil {
		return nil, err
	}
	if n.AccountID == "" {
		return nil, keyward.Errorf(keyward.EINVALID, "account_id is required: a connection belongs to an account")
	}
	if err := validateConnection(n.Kind, n.BaseURL, n.Username, n.Password, n.Timeout); err != nil {
		return nil, err
	}
	if err := validateName("name", n.Name, true); err != nil {
		return nil, err
	}
	if s.sealer == nil {
		return nil, keyward.Errorf(keyward.EINTERNAL, "provider connections need master keys: configure master_keys")
	}
	if _, err := s.store.Account(ctx, n.AccountID); err != nil {
		return nil, err
	}
	now := s.utc()
	c := &keyward.ProviderConnection{
		ID: apikey.NewID("prv"), AccountID: n.AccountID, Kind: n.Kind, Name: n.Name,
		BaseURL: strings.TrimRight(n.BaseURL, "/"), Username: n.Username, Timeout: n.Timeout,
		CreatedBy: id.KeyID, CreatedAt: now, UpdatedAt: now,
	}
	c.PasswordBound = true
	if c.PasswordVersion, c.SealedPassword, err = s.sealer.Seal([]byte(n.Password), c.PasswordAD()); err != nil {
		return nil, keyward.WrapError(keyward.EINTERNAL, err, "admin: sealing the password of provider connection %s", c.ID)
	}
	p, err := s.provider(c)
	if err != nil {
		return nil, err
	}
	if err := checkNew(ctx, p); err != nil {
		s.forget(c.ID)
		return nil, err
	}
	ch, err := s.audit(ctx, id, "provider.add", "provider_connection", c.ID, c.AccountID,
		map[string]any{"kind": c.Kind, "name": c.Name, "base_url": c.BaseURL, "username": c.Username})
	if err != nil {
		return nil, err
	}
	if err := s.store.CreateProviderConnection(ctx, ch, c); err != nil {
		s.forget(c.ID)
		return nil, err
	}
	return c, nil
}

// checkNew checks a provider with credentials a caller just gave: a refusal
// of them is bad input, not a refusal of the caller's own key.
func checkNew(ctx context.Context, p provider.Provider) error {
	err := p.Check(ctx)
	if code := keyward.ErrorCode(err); code == keyward.EUNAUTHORIZED || code == keyward.EFORBIDDEN {
		return keyward.WrapError(keyward.EINVALID, err, "%s", keyward.ErrorMessage(err))
	}
	return err
}

// UpdateProviderConnection changes a connection's base URL, username,
// password or timeout (root only), after checking the provider accepts the
// result: the way to repair a connection whose admin password changed.
func (s *Credentials) UpdateProviderConnection(ctx context.Context, connID string, u keyward.ProviderConnectionUpdate) (*keyward.ProviderConnection, error) {
	id, err := changer(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireRoot(id, "change provider connections"); err != nil {
		return nil, err
	}
	cur, err := s.store.ProviderConnection(ctx, connID)
	if err != nil {
		return nil, err
	}
	next := *cur
	if u.BaseURL != nil {
		next.BaseURL = strings.TrimRight(*u.BaseURL, "/")
	}
	if u.Username != nil {
		next.Username = *u.Username
	}
	if u.Timeout != nil {
		next.Timeout = *u.Timeout
	}
	if err := validateConnection(next.Kind, next.BaseURL, next.Username, "x", next.Timeout); err != nil {
		return nil, err
	}
	next.UpdatedAt = s.utc()
	if u.Password != nil && *u.Password == "" {
		return nil, keyward.Errorf(keyward.EINVALID, "password must not be empty")
	}
	if s.sealer == nil {
		return nil, keyward.Errorf(keyward.EINTERNAL, "provider connections need master keys: configure master_keys")
	}
	// The password is bound to the base URL and user name: sealed again
	// for the new ones, the stored one first opened with the old ones.
	var pw []byte
	if u.Password != nil {
		pw = []byte(*u.Password)
	} else if pw, err = s.openPassword(cur); err != nil {
		return nil, err
	}
	next.PasswordBound = true
	if next.PasswordVersion, next.SealedPassword, err = s.sealer.Seal(pw, next.PasswordAD()); err != nil {
		return nil, keyward.WrapError(keyward.EINTERNAL, err, "admin: sealing the password of provider connection %s", next.ID)
	}
	p, err := s.provider(&next)
	if err != nil {
		return nil, err
	}
	if err := checkNew(ctx, p); err != nil {
		s.forget(next.ID)
		return nil, err
	}
	ch, err := s.audit(ctx, id, "provider.update", "provider_connection", next.ID, next.AccountID,
		map[string]any{"base_url": next.BaseURL, "username": next.Username, "timeout": next.Timeout, "password_changed": u.Password != nil})
	if err != nil {
		return nil, err
	}
	out, err := s.store.UpdateProviderConnection(ctx, ch, connID, func(c *keyward.ProviderConnection) error {
		c.BaseURL, c.Username, c.Timeout, c.UpdatedAt = next.BaseURL, next.Username, next.Timeout, next.UpdatedAt
		c.SealedPassword, c.PasswordVersion, c.PasswordBound = next.SealedPassword, next.PasswordVersion, next.PasswordBound
		return nil
	})
	if err != nil {
		s.forget(next.ID)
	}
	return out, err
}

// validateConnection checks the settings of a connection.
func validateConnection(kind, baseURL, username, password string, timeout keyward.Duration) error {
	switch {
	case kind != provider.KindGitea && kind != provider.KindN8n:
		return keyward.Errorf(keyward.EINVALID, "kind %q: use gitea or n8n", kind)
	case username == "" || password == "":
		return keyward.Errorf(keyward.EINVALID, "username and password are required: the %s credentials keyward manages tokens with", credentialOwner(kind))
	case timeout < 0 || time.Duration(timeout) > maxProviderTimeout:
		return keyward.Errorf(keyward.EINVALID, "timeout %s is out of range: use up to %s, or leave it out for the default", time.Duration(timeout), maxProviderTimeout)
	}
	if err := validateName("username", username, true); err != nil {
		return err
	}
	_, err := provider.NewHTTP(kind, provider.Connection{BaseURL: baseURL})
	return err // not a URL keyward may store: no credentials or query in it
}

// maxProviderTimeout bounds a connection's timeout: a credential's creation
// makes a few requests, all within the API's own request deadlines.
const maxProviderTimeout = 20 * time.Second

// credentialOwner names who a connection's credentials belong to.
func credentialOwner(kind string) string {
	if kind == provider.KindN8n {
		return "n8n owner's"
	}
	return "Gitea admin's"
}

// forget drops the cached Provider of a connection.
func (s *Credentials) forget(connID string) {
	s.provMu.Lock()
	defer s.provMu.Unlock()
	delete(s.provs.byConn, connID)
}

// connection returns the connection with id if the caller may use it
// (ENOTFOUND otherwise, as for a missing one).
func (s *Credentials) connection(ctx context.Context, id *keyward.Identity, connID string) (*keyward.ProviderConnection, error) {
	account := ""
	if err := scopeToAccount(id, &account, "manage provider connections"); err != nil {
		return nil, err
	}
	c, err := s.store.ProviderConnection(ctx, connID)
	if err != nil {
		return nil, err
	}
	if account != "" && c.AccountID != account {
		return nil, notFound("provider connection", connID)
	}
	return c, nil
}

// ProviderConnection returns a connection the caller may use.
func (s *Credentials) ProviderConnection(ctx context.Context, connID string) (*keyward.ProviderConnection, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.connection(ctx, id, connID)
}

// ProviderConnections lists the connections the caller may use.
func (s *Credentials) ProviderConnections(ctx context.Context, accountID string, p keyward.Page) (*keyward.ProviderConnectionList, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := scopeToAccount(id, &accountID, "manage provider connections"); err != nil {
		return nil, err
	}
	items, next, err := s.store.ProviderConnections(ctx, accountID, p)
	if err != nil {
		return nil, err
	}
	return &keyward.ProviderConnectionList{Items: items, Next: next}, nil
}

// TestProviderConnection checks the provider is reachable and accepts the
// connection's credentials.
func (s *Credentials) TestProviderConnection(ctx context.Context, connID string) error {
	id, err := caller(ctx)
	if err != nil {
		return err
	}
	c, err := s.connection(ctx, id, connID)
	if err != nil {
		return err
	}
	p, err := s.provider(c)
	if err != nil {
		return err
	}
	return upstream(p.Check(ctx))
}

// upstream maps a provider's refusal of the connection's own credentials
// (EUNAUTHORIZED, EFORBIDDEN) to EUPSTREAM: the caller's key was not
// refused, the stored connection was. Other errors pass unchanged.
func upstream(err error) error {
	if code := keyward.ErrorCode(err); code == keyward.EUNAUTHORIZED || code == keyward.EFORBIDDEN {
		return keyward.WrapError(keyward.EUPSTREAM, err, "%s: update the connection's credentials", keyward.ErrorMessage(err))
	}
	return err
}

// DeleteProviderConnection deletes a connection; ECONFLICT while
// credentials created through it still work (revoke them first).
func (s *Credentials) DeleteProviderConnection(ctx context.Context, connID string) error {
	id, err := changer(ctx)
	if err != nil {
		return err
	}
	if err := requireRoot(id, "remove provider connections"); err != nil {
		return err
	}
	c, err := s.store.ProviderConnection(ctx, connID)
	if err != nil {
		return err
	}
	ch, err := s.audit(ctx, id, "provider.remove", "provider_connection", c.ID, c.AccountID, map[string]any{"kind": c.Kind, "name": c.Name})
	if err != nil {
		return err
	}
	if _, err := s.store.DeleteProviderConnection(ctx, ch, connID); err != nil {
		return err
	}
	s.forget(connID)
	return nil
}

// CreateCredential creates a token at the connection's provider and records
// it, without its secret, which is returned this once. If the record
// cannot be written, the token is revoked at the provider again; if that
// fails too, it is recorded as orphaned (or, failing even that, left for
// reconcile to find) and the error says so.
func (s *Credentials) CreateCredential(ctx context.Context, n keyward.NewCredential) (*keyward.CreatedCredential, error) {
	id, err := changer(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.connection(ctx, id, n.ProviderID)
	if err != nil {
		return nil, err
	}
	now := s.utc()
	if err := validateNewCredential(n, now); err != nil {
		return nil, err
	}
	return s.createCredential(ctx, id, c, n, nil, now)
}

// rotation is what a credential created by a rotation replaces.
type rotation struct {
	from  string
	grace time.Duration
}

// validateNewCredential checks what a caller asks of a credential.
func validateNewCredential(n keyward.NewCredential, now time.Time) error {
	if err := validateName("name", n.Name, true); err != nil {
		return err
	}
	if err := validateName("user", n.User, false); err != nil {
		return err
	}
	if len(n.Scopes) > maxScopes {
		return keyward.Errorf(keyward.EINVALID, "%d scopes: at most %d", len(n.Scopes), maxScopes)
	}
	for _, sc := range n.Scopes {
		if err := validateName("scope", sc, true); err != nil {
			return err
		}
	}
	if n.ExpiresAt != nil && !n.ExpiresAt.After(now) {
		return keyward.Errorf(keyward.EINVALID, "expires_at %s is not in the future", n.ExpiresAt.Format(time.RFC3339))
	}
	return nil
}

// createCredential creates and records a credential through c; for a
// rotation, the record of the credential it replaces is updated in the
// same transaction.
func (s *Credentials) createCredential(ctx context.Context, id *keyward.Identity, c *keyward.ProviderConnection, n keyward.NewCredential, rot *rotation, now time.Time) (*keyward.CreatedCredential, error) {
	p, err := s.provider(c)
	if err != nil {
		return nil, err
	}
	created, err := p.Create(ctx, provider.NewToken{User: n.User, Name: n.Name, Scopes: n.Scopes, ExpiresAt: n.ExpiresAt})
	if err != nil {
		return nil, upstream(err)
	}
	cred := &keyward.ManagedCredential{
		ID: apikey.NewID("crd"), ProviderID: c.ID, Kind: c.Kind, AccountID: c.AccountID,
		ExternalID: created.ExternalID, ExternalUser: cmp.Or(created.User, n.User), Name: created.Name,
		Scopes: append([]string{}, n.Scopes...), Hint: created.Hint, ExpiresAt: n.ExpiresAt,
		Status: keyward.CredentialActive, CreatedBy: id.KeyID, CreatedAt: now, UpdatedAt: now,
	}
	if rot == nil {
		err = s.recordCredential(ctx, id, cred)
	} else {
		cred.RotatedFrom = rot.from
		err = s.recordRotation(ctx, id, cred, rot.grace, now)
	}
	if err == nil {
		return &keyward.CreatedCredential{Credential: cred, Secret: created.Secret.Reveal()}, nil
	}
	// No half-state: the token must not outlive its failed record, also
	// when the caller has gone away meanwhile (its ctx cancelled).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	if rerr := p.Revoke(ctx, cred.ExternalUser, cred.ExternalID); rerr == nil || keyward.ErrorCode(rerr) == keyward.ENOTFOUND {
		return nil, err
	}
	s.log.ErrorContext(ctx, "a token created at a provider could not be recorded nor revoked: recording it as orphaned",
		"connection", c.ID, "external_id", cred.ExternalID, "err", err)
	cred.Status, cred.RotatedFrom = keyward.CredentialOrphaned, ""
	ch, oerr := s.audit(ctx, id, "credential.orphaned", "credential", cred.ID, cred.AccountID, credentialDetails(cred))
	if oerr == nil {
		oerr = s.store.CreateCredential(ctx, ch, cred)
	}
	if oerr != nil {
		s.log.ErrorContext(ctx, "recording an orphaned token failed: keyward credentials reconcile lists it", "connection", c.ID,
			"external_id", cred.ExternalID, "err", oerr)
	}
	return nil, keyward.WrapError(keyward.ErrorCode(err), err, "%s; the token created at %s (id %s) could not be revoked again: it is orphaned, see keyward credentials reconcile",
		keyward.ErrorMessage(err), c.Kind, cred.ExternalID)
}

// undoTimeout bounds the revocation and orphan record that undo a
// credential whose record failed.
const undoTimeout = 30 * time.Second

// recordCredential stores a new credential with its audit entry and event.
func (s *Credentials) recordCredential(ctx context.Context, id *keyward.Identity, cred *keyward.ManagedCredential) error {
	ch, err := s.audit(ctx, id, "credential.create", "credential", cred.ID, cred.AccountID, credentialDetails(cred))
	if err != nil {
		return err
	}
	return s.store.CreateCredential(ctx, ch, cred)
}

// credentialDetails are the audit details (and event data) of a
// credential: what it is, never its token.
func credentialDetails(c *keyward.ManagedCredential) map[string]any {
	return map[string]any{
		"provider_id": c.ProviderID, "kind": c.Kind, "external_id": c.ExternalID, "external_user": c.ExternalUser,
		"name": c.Name, "scopes": c.Scopes, "expires_at": c.ExpiresAt, "status": c.Status,
	}
}

// credential returns the credential with id if the caller may manage it.
func (s *Credentials) credential(ctx context.Context, id *keyward.Identity, credID string) (*keyward.ManagedCredential, error) {
	account := ""
	if err := scopeToAccount(id, &account, "manage credentials"); err != nil {
		return nil, err
	}
	c, err := s.store.Credential(ctx, credID)
	if err != nil {
		return nil, err
	}
	if account != "" && c.AccountID != account {
		return nil, notFound("credential", credID)
	}
	return c, nil
}

// Credential returns a credential the caller may manage.
func (s *Credentials) Credential(ctx context.Context, credID string) (*keyward.ManagedCredential, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	return s.credential(ctx, id, credID)
}

// Credentials lists the credentials the caller may manage.
func (s *Credentials) Credentials(ctx context.Context, f keyward.CredentialFilter, p keyward.Page) (*keyward.CredentialList, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := scopeToAccount(id, &f.AccountID, "manage credentials"); err != nil {
		return nil, err
	}
	items, next, err := s.store.Credentials(ctx, f, p)
	if err != nil {
		return nil, err
	}
	return &keyward.CredentialList{Items: items, Next: next}, nil
}

// RevokeCredential revokes a credential at its provider and records it. A
// token the provider no longer has counts as revoked. Revoking a revoked
// or expired credential again does nothing.
func (s *Credentials) RevokeCredential(ctx context.Context, credID string) (*keyward.ManagedCredential, error) {
	id, err := changer(ctx)
	if err != nil {
		return nil, err
	}
	cred, err := s.credential(ctx, id, credID)
	if err != nil {
		return nil, err
	}
	return s.retire(ctx, id, cred, keyward.CredentialRevoked, "credential.revoke")
}

// retire revokes cred at its provider and records status with the audit
// action (credential.revoke, credential.expire) and its event.
func (s *Credentials) retire(ctx context.Context, id *keyward.Identity, cred *keyward.ManagedCredential, status keyward.CredentialStatus, action string) (*keyward.ManagedCredential, error) {
	if cred.Status == keyward.CredentialRevoked || cred.Status == keyward.CredentialExpired {
		return cred, nil
	}
	conn, err := s.store.ProviderConnection(ctx, cred.ProviderID)
	if err != nil {
		return nil, err
	}
	p, err := s.provider(conn)
	if err != nil {
		return nil, err
	}
	gone := false
	if err := p.Revoke(ctx, cred.ExternalUser, cred.ExternalID); keyward.ErrorCode(err) == keyward.ENOTFOUND {
		gone = true
	} else if err != nil {
		return nil, upstream(err)
	}
	now := s.utc()
	details := credentialDetails(cred)
	details["status"], details["already_gone_at_provider"] = status, gone
	ch, err := s.audit(ctx, id, action, "credential", cred.ID, cred.AccountID, details)
	if err != nil {
		return nil, err
	}
	out, err := s.store.UpdateCredential(ctx, ch, cred.ID, func(c *keyward.ManagedCredential) error {
		if c.Status == keyward.CredentialRevoked || c.Status == keyward.CredentialExpired {
			return errRetired // another call got there first
		}
		c.Status, c.RevokedAt, c.UpdatedAt = status, &now, now
		return nil
	})
	if errors.Is(err, errRetired) {
		return s.store.Credential(ctx, cred.ID)
	}
	return out, err
}

// errRetired aborts recording a retirement another call recorded first.
var errRetired = errors.New("already retired")

// RotateCredential creates a replacement of an active credential, with
// the same user, scopes and expiry and a name marking the rotation, and
// returns it with its token. The old one keeps working until grace ends,
// when the lifecycle job revokes it (at once for a zero grace).
func (s *Credentials) RotateCredential(ctx context.Context, credID string, grace time.Duration) (*keyward.CreatedCredential, error) {
	id, err := changer(ctx)
	if err != nil {
		return nil, err
	}
	old, err := s.credential(ctx, id, credID)
	if err != nil {
		return nil, err
	}
	if old.Status != keyward.CredentialActive {
		return nil, keyward.Errorf(keyward.ECONFLICT, "credential %s is %s: only an active credential can be rotated", old.ID, old.Status)
	}
	if grace < 0 || grace > 30*24*time.Hour {
		return nil, keyward.Errorf(keyward.EINVALID, "grace %s is out of range: use 0 to 720h", grace)
	}
	conn, err := s.store.ProviderConnection(ctx, old.ProviderID)
	if err != nil {
		return nil, err
	}
	now := s.utc()
	n := keyward.NewCredential{ProviderID: conn.ID, User: old.ExternalUser, Name: rotatedName(old.Name, now),
		Scopes: old.Scopes, ExpiresAt: old.ExpiresAt}
	if n.ExpiresAt != nil && !n.ExpiresAt.After(now) {
		return nil, keyward.Errorf(keyward.ECONFLICT, "credential %s has expired: create a new one", old.ID)
	}
	created, err := s.createCredential(ctx, id, conn, n, &rotation{from: old.ID, grace: grace}, now)
	if err != nil {
		return nil, err
	}
	if grace == 0 {
		// The old token stops now; the job would revoke it within its
		// interval, but a rotation without grace means at once.
		old, err = s.store.Credential(ctx, old.ID)
		if err == nil {
			_, err = s.retire(ctx, id, old, keyward.CredentialRevoked, "credential.revoke")
		}
		if err != nil {
			s.log.WarnContext(ctx, "revoking a rotated credential at once failed: the lifecycle job will", "credential", old.ID, "err", err)
		}
	}
	return created, nil
}

// rotatedName is the name of a rotation's replacement: providers require
// unique names, so the base name (without an earlier rotation's suffix)
// gets the time of the rotation to the millisecond, and is shortened so the
// whole fits the shortest limit of a provider (n8n: 50 characters).
func rotatedName(name string, now time.Time) string {
	const layout, maxName = "20060102150405.000", 50
	suffix := "-rot" + strings.Replace(now.UTC().Format(layout), ".", "", 1)
	if i := strings.LastIndex(name, "-rot"); i > 0 && len(name)-i == len(suffix) {
		name = name[:i]
	}
	if r := []rune(name); len(r) > maxName-len(suffix) {
		name = string(r[:maxName-len(suffix)])
	}
	return name + suffix
}

// recordRotation stores the replacement and marks the old credential
// rotated, in one transaction with the audit entry and event.
func (s *Credentials) recordRotation(ctx context.Context, id *keyward.Identity, next *keyward.ManagedCredential, grace time.Duration, now time.Time) error {
	details := credentialDetails(next)
	details["new_credential_id"], details["grace"] = next.ID, grace.String()
	ch, err := s.audit(ctx, id, "credential.rotate", "credential", next.RotatedFrom, next.AccountID, details)
	if err != nil {
		return err
	}
	until := now.Add(grace)
	_, _, err = s.store.RotateCredential(ctx, ch, next.RotatedFrom, func(old *keyward.ManagedCredential) (*keyward.ManagedCredential, error) {
		if old.Status != keyward.CredentialActive {
			return nil, keyward.Errorf(keyward.ECONFLICT, "credential %s is %s: only an active credential can be rotated", old.ID, old.Status)
		}
		old.Status, old.ReplacedBy, old.GraceUntil, old.UpdatedAt = keyward.CredentialRotated, next.ID, &until, now
		return next, nil
	})
	return err
}

// VerifyCredential checks a token at a connection's provider.
func (s *Credentials) VerifyCredential(ctx context.Context, connID, token string) (*keyward.CredentialVerification, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.connection(ctx, id, connID)
	if err != nil {
		return nil, err
	}
	if token == "" {
		return nil, keyward.Errorf(keyward.EINVALID, "token is required")
	}
	p, err := s.provider(c)
	if err != nil {
		return nil, err
	}
	who, err := p.Verify(ctx, keyward.Secret(token))
	switch keyward.ErrorCode(err) {
	case "":
		return &keyward.CredentialVerification{Valid: true, User: who.User}, nil
	case keyward.EUNAUTHORIZED, keyward.EFORBIDDEN: // a verdict on the token
		return &keyward.CredentialVerification{Problem: keyward.ErrorMessage(err)}, nil
	}
	return nil, upstream(err)
}

// Reconcile compares the tokens at a connection's provider with keyward's
// records: tokens keyward does not manage (created behind its back, or
// orphaned), and records whose token vanished. It changes nothing unless
// asked to revoke the unmanaged tokens or mark the vanished records; each
// such change is audited as it is made.
//
// Records of every connection to the same system (same kind and base URL,
// in any account) count as managed: two accounts sharing a Gitea admin must
// not see, or revoke, each other's tokens as unmanaged. The provider is
// listed before the records are read, so a credential created meanwhile is
// known by then.
func (s *Credentials) Reconcile(ctx context.Context, connID string, r keyward.ReconcileRequest) (*keyward.ReconcileReport, error) {
	id, err := changer(ctx)
	if err != nil {
		return nil, err
	}
	c, err := s.connection(ctx, id, connID)
	if err != nil {
		return nil, err
	}
	for _, u := range r.Users {
		if err := validateName("user", u, true); err != nil {
			return nil, err
		}
	}
	p, err := s.provider(c)
	if err != nil {
		return nil, err
	}
	own, err := s.allCredentials(ctx, keyward.CredentialFilter{ProviderID: c.ID})
	if err != nil {
		return nil, err
	}
	users := append([]string{""}, r.Users...)
	for _, rec := range own {
		users = append(users, rec.ExternalUser)
	}
	slices.Sort(users)
	users = slices.Compact(users)
	var listed []keyward.ExternalToken
	present := map[string]bool{}
	for _, u := range users {
		if c.Kind == provider.KindN8n && u != "" {
			continue // n8n keys are all the owner's
		}
		tokens, err := p.List(ctx, u)
		if keyward.ErrorCode(err) == keyward.ENOTFOUND && u != "" {
			continue // the user is gone at the provider, with its tokens
		}
		if err != nil {
			return nil, upstream(err)
		}
		for _, t := range tokens {
			if !present[t.ExternalID] {
				present[t.ExternalID] = true
				listed = append(listed, t)
			}
		}
	}
	managed, err := s.managedAt(ctx, c)
	if err != nil {
		return nil, err
	}
	report := &keyward.ReconcileReport{Unmanaged: []keyward.ExternalToken{}, Vanished: []*keyward.ManagedCredential{}}
	for _, t := range listed {
		if !managed[t.ExternalID] {
			report.Unmanaged = append(report.Unmanaged, t)
		}
	}
	for _, rec := range own {
		live := rec.Status == keyward.CredentialActive || rec.Status == keyward.CredentialRotated
		if live && !present[rec.ExternalID] {
			report.Vanished = append(report.Vanished, rec)
		}
	}
	if r.RevokeUnmanaged {
		for _, t := range report.Unmanaged {
			if err := s.revokeUnmanaged(ctx, id, c, p, t); err != nil {
				return report, err
			}
			report.Revoked = append(report.Revoked, t.ExternalID)
		}
		if err := s.settleOrphans(ctx, id, own); err != nil {
			return report, err
		}
	}
	if r.MarkVanished {
		for _, rec := range report.Vanished {
			if err := s.markVanished(ctx, id, rec); err != nil {
				return report, err
			}
			report.Marked = append(report.Marked, rec.ID)
		}
	}
	return report, nil
}

// allCredentials reads every credential matching f.
func (s *Credentials) allCredentials(ctx context.Context, f keyward.CredentialFilter) ([]*keyward.ManagedCredential, error) {
	var out []*keyward.ManagedCredential
	for page := (keyward.Page{Limit: keyward.MaxPageLimit}); ; {
		items, next, err := s.store.Credentials(ctx, f, page)
		if err != nil {
			return nil, err
		}
		out = append(out, items...)
		if page.After = next; next == "" {
			return out, nil
		}
	}
}

// managedAt returns the external ids keyward manages (orphans excepted) at
// the system c reaches, through c or any other connection to it.
func (s *Credentials) managedAt(ctx context.Context, c *keyward.ProviderConnection) (map[string]bool, error) {
	managed := map[string]bool{}
	for page := (keyward.Page{Limit: keyward.MaxPageLimit}); ; {
		conns, next, err := s.store.ProviderConnections(ctx, "", page)
		if err != nil {
			return nil, err
		}
		for _, other := range conns {
			if other.Kind != c.Kind || !strings.EqualFold(other.BaseURL, c.BaseURL) {
				continue
			}
			recs, err := s.allCredentials(ctx, keyward.CredentialFilter{ProviderID: other.ID})
			if err != nil {
				return nil, err
			}
			for _, rec := range recs {
				if rec.Status != keyward.CredentialOrphaned {
					managed[rec.ExternalID] = true
				}
			}
		}
		if page.After = next; next == "" {
			return managed, nil
		}
	}
}

// revokeUnmanaged revokes a token keyward does not manage, with its audit
// entry.
func (s *Credentials) revokeUnmanaged(ctx context.Context, id *keyward.Identity, c *keyward.ProviderConnection, p provider.Provider, t keyward.ExternalToken) error {
	if err := p.Revoke(ctx, t.User, t.ExternalID); err != nil && keyward.ErrorCode(err) != keyward.ENOTFOUND {
		return upstream(err)
	}
	e, err := s.auditEntry(ctx, id, "provider.revoke_unmanaged", "provider_connection", c.ID, c.AccountID, keyward.AuditSuccess,
		map[string]any{"external_id": t.ExternalID, "external_user": t.User, "name": t.Name})
	if err != nil {
		return err
	}
	return s.store.AppendAudit(ctx, e)
}

// settleOrphans marks the orphaned records as revoked once their tokens,
// unmanaged by definition, have been revoked.
func (s *Credentials) settleOrphans(ctx context.Context, id *keyward.Identity, records []*keyward.ManagedCredential) error {
	for _, rec := range records {
		if rec.Status != keyward.CredentialOrphaned {
			continue
		}
		now := s.utc()
		ch, err := s.audit(ctx, id, "credential.revoke", "credential", rec.ID, rec.AccountID, credentialDetails(rec))
		if err != nil {
			return err
		}
		if _, err := s.store.UpdateCredential(ctx, ch, rec.ID, func(c *keyward.ManagedCredential) error {
			c.Status, c.RevokedAt, c.UpdatedAt = keyward.CredentialRevoked, &now, now
			return nil
		}); err != nil {
			return err
		}
	}
	return nil
}

// markVanished records that rec's token is gone at the provider.
func (s *Credentials) markVanished(ctx context.Context, id *keyward.Identity, rec *keyward.ManagedCredential) error {
	now := s.utc()
	ch, err := s.audit(ctx, id, "credential.vanished", "credential", rec.ID, rec.AccountID, credentialDetails(rec))
	if err != nil {
		return err
	}
	_, err = s.store.UpdateCredential(ctx, ch, rec.ID, func(c *keyward.ManagedCredential) error {
		c.Status, c.UpdatedAt = keyward.CredentialVanished, now
		return nil
	})
	return err
}

// RetireDueCredential revokes at its provider a credential that expired
// (credential.expired) or whose rotation grace ended (credential.revoked),
// for the lifecycle job, as keyward itself. ECONFLICT if it changed since
// it was listed.
func (s *Credentials) RetireDueCredential(ctx context.Context, cred *keyward.ManagedCredential, now time.Time) error {
	cur, err := s.store.Credential(ctx, cred.ID)
	if err != nil {
		return err
	}
	switch {
	case cur.Status == keyward.CredentialActive && cur.ExpiresAt != nil && !cur.ExpiresAt.After(now):
		_, err = s.retire(ctx, systemIdentity, cur, keyward.CredentialExpired, "credential.expire")
	case cur.Status == keyward.CredentialRotated && cur.GraceUntil != nil && !cur.GraceUntil.After(now):
		_, err = s.retire(ctx, systemIdentity, cur, keyward.CredentialRevoked, "credential.revoke")
	default:
		return keyward.Errorf(keyward.ECONFLICT, "credential %s changed since it was listed", cred.ID)
	}
	return err
}
