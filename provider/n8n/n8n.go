// Package n8n is the provider of n8n API keys, through n8n's internal REST
// API (tested against n8n 2.8).
//
// n8n manages API keys only with a user's session, never with an API key:
// the connection is the owner's email and password, and the provider logs
// in (POST /rest/login) when it first needs to, keeps the session cookie
// (n8n-auth, valid seven days) and logs in again only when n8n refuses it.
// n8n allows five logins per minute per email, so a Provider must be kept
// and reused, not made anew for each call. The keys belong to the user who
// logs in: NewToken.User and the user of List and Revoke are ignored.
//
// Scopes are n8n's, e.g. workflow:read, workflow:list; Create checks them
// against the list n8n gives for the owner's role (GET
// /rest/api-keys/scopes), because n8n without a license for API key scopes
// does not: it silently grants every scope of the role instead, and the
// created Token's Scopes say so. n8n takes an expiry in whole seconds
// (Create rounds NewToken.ExpiresAt up to one), strictly in the future,
// and refuses the key from then on.
//
// Verify asks GET /api/v1/workflows?limit=1 of n8n's public API with the
// key (X-N8N-API-KEY): 401 for a deleted, expired or unknown key.
package n8n

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/provider"
)

// cookieName is the name of n8n's session cookie.
const cookieName = "n8n-auth"

// Provider manages the API keys of one n8n owner through the owner's
// session. It is safe for concurrent use, and logs in once for all
// callers.
type Provider struct {
	http     *provider.HTTP
	email    string
	password keyward.Secret

	// mu guards the session and serialises logins, so that concurrent
	// callers do not spend n8n's five logins a minute.
	mu      sync.Mutex
	cookie  string // the n8n-auth cookie's value; "" before the first login
	ownerID string // the n8n id of the user logged in
	// refused and refusedAt remember a login n8n refused, which is
	// answered again for refusedFor without asking n8n: every attempt
	// spends one of the owner's five logins a minute.
	refused   error
	refusedAt time.Time
}

// refusedFor is how long a refused login is answered from memory.
const refusedFor = time.Minute

var _ provider.Provider = (*Provider)(nil)

// New returns the provider of the n8n that c reaches, with c.Username the
// owner's email. It checks only the connection's form (EINVALID for a base
// URL that is not absolute http(s), a missing email or password); it does
// not log in: Check, or the first call that needs a session, does.
func New(c provider.Connection) (*Provider, error) {
	h, err := provider.NewHTTP(provider.KindN8n, c)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(c.Username) == "" {
		return nil, keyward.Errorf(keyward.EINVALID, "n8n connection to %s: give the email of the n8n owner", h.Base)
	}
	if c.Password.Reveal() == "" {
		return nil, keyward.Errorf(keyward.EINVALID, "n8n connection to %s: give the password of n8n user %s (n8n manages API keys only in a signed-in session)", h.Base, c.Username)
	}
	return &Provider{http: h, email: strings.TrimSpace(c.Username), password: c.Password}, nil
}

// Kind returns provider.KindN8n.
func (p *Provider) Kind() string { return provider.KindN8n }

// Check asks GET /healthz (reachable), GET /rest/settings (n8n, with an
// owner set up), then logs in if there is no session yet and lists the
// keys with it: EUNAUTHORIZED when n8n refuses the login, EFORBIDDEN when
// the user may not manage API keys, EUPSTREAM for n8n's login limit or a
// disabled public API.
func (p *Provider) Check(ctx context.Context) error {
	r, err := p.http.Do(ctx, http.MethodGet, "/healthz", nil, nil)
	if err != nil {
		return err
	}
	if r.Status != http.StatusOK {
		return keyward.Errorf(keyward.EUPSTREAM, "%s does not look like n8n: GET /healthz answered %d (%s); give the URL n8n is served at, e.g. https://n8n.example.com", p.http.Base, r.Status, provider.Message(r))
	}
	r, err = p.http.Do(ctx, http.MethodGet, "/rest/settings", nil, nil)
	if err != nil {
		return err
	}
	// Without a session n8n answers its public settings only:
	// {"data": {"settingsMode": "public", "userManagement": {...}, ...}}.
	var s struct {
		Data *struct {
			UserManagement *struct {
				ShowSetupOnFirstLoad bool `json:"showSetupOnFirstLoad"`
			} `json:"userManagement"`
		} `json:"data"`
	}
	if r.Status != http.StatusOK || json.Unmarshal(r.Body, &s) != nil || s.Data == nil || s.Data.UserManagement == nil {
		return keyward.Errorf(keyward.EUPSTREAM, "%s does not look like n8n: GET /rest/settings answered %d without n8n's settings; give the URL n8n is served at, e.g. https://n8n.example.com", p.http.Base, r.Status)
	}
	if s.Data.UserManagement.ShowSetupOnFirstLoad {
		return keyward.Errorf(keyward.EUPSTREAM, "n8n at %s has no owner yet: set up its owner account (open n8n in a browser) and give the connection the owner's email and password", p.http.Base)
	}
	r, err = p.session(ctx, http.MethodGet, "/rest/api-keys", nil)
	if err != nil {
		return err
	}
	if r.Status != http.StatusOK {
		return p.http.Unexpected(r, "GET /rest/api-keys")
	}
	return nil
}

// apiDisabled is the error of an n8n whose public API is turned off.
func (p *Provider) apiDisabled() error {
	return keyward.Errorf(keyward.EUPSTREAM, "n8n at %s has its public API disabled (N8N_PUBLIC_API_DISABLED): it has no API keys to manage", p.http.Base)
}

// login logs in with the connection's credentials and stores the session;
// a login n8n refused is answered again from memory for refusedFor.
// The caller holds p.mu.
func (p *Provider) login(ctx context.Context) error {
	if p.refused != nil && time.Since(p.refusedAt) < refusedFor {
		return p.refused
	}
	err := p.tryLogin(ctx)
	if code := keyward.ErrorCode(err); code == keyward.EUNAUTHORIZED {
		p.refused, p.refusedAt = err, time.Now()
	} else {
		p.refused = nil
	}
	return err
}

// tryLogin logs in with POST /rest/login and keeps the session.
func (p *Provider) tryLogin(ctx context.Context) error {
	body := struct {
		Email    string `json:"emailOrLdapLoginId"`
		Password string `json:"password"`
	}{p.email, p.password.Reveal()}
	r, err := p.http.Do(ctx, http.MethodPost, "/rest/login", body, nil)
	if err != nil {
		return err
	}
	switch r.Status {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return keyward.Errorf(keyward.EUNAUTHORIZED, "n8n at %s refused the login of %s (%s): check the owner's email and password", p.http.Base, p.email, provider.Message(r))
	case http.StatusTooManyRequests:
		return keyward.Errorf(keyward.EUPSTREAM, "n8n at %s refuses to log %s in for now: it allows 5 logins per minute per email; wait a minute and try again", p.http.Base, p.email)
	case http.StatusBadRequest:
		return keyward.Errorf(keyward.EUNAUTHORIZED, "n8n at %s refused the login of %s (%s): the connection's user name must be the owner's email", p.http.Base, p.email, provider.Message(r))
	case http.StatusNotFound:
		return keyward.Errorf(keyward.EUPSTREAM, "%s does not look like n8n: POST /rest/login answered 404; give the URL n8n is served at", p.http.Base)
	default:
		return p.http.Unexpected(r, "POST /rest/login")
	}
	cookie := sessionCookie(r)
	if cookie == "" {
		return keyward.Errorf(keyward.EUPSTREAM, "n8n at %s accepted the login of %s but set no %s cookie", p.http.Base, p.email, cookieName)
	}
	var u struct {
		Data struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	_ = json.Unmarshal(r.Body, &u) // the id only names the owner in Verify
	p.cookie, p.ownerID = cookie, u.Data.ID
	return nil
}

// sessionCookie returns the n8n-auth cookie r sets, or "".
func sessionCookie(r *provider.Response) string {
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == cookieName && c.Value != "" {
			return c.Value
		}
	}
	return ""
}

// currentCookie returns the session cookie, logging in first when there
// is none; fresh says it did.
func (p *Provider) currentCookie(ctx context.Context) (cookie string, fresh bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cookie == "" {
		if err := p.login(ctx); err != nil {
			return "", false, err
		}
		fresh = true
	}
	return p.cookie, fresh, nil
}

// renew logs in again after n8n refused stale, unless another caller has
// done so meanwhile, and returns the new cookie.
func (p *Provider) renew(ctx context.Context, stale string) (string, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cookie == stale {
		p.cookie = ""
		if err := p.login(ctx); err != nil {
			return "", err
		}
	}
	return p.cookie, nil
}

// session sends a request with the owner's session, logging in when there
// is none, or once more when n8n answers 401 to a session it had
// accepted before. It maps the answers
// every session request may get (401 after a fresh login, 403, 404 for a
// disabled public API) to errors and returns any other.
func (p *Provider) session(ctx context.Context, method, path string, body any) (*provider.Response, error) {
	cookie, fresh, err := p.currentCookie(ctx)
	if err != nil {
		return nil, err
	}
	r, err := p.sendSession(ctx, method, path, body, cookie)
	if err != nil {
		return nil, err
	}
	if r.Status == http.StatusUnauthorized && !fresh {
		// Expired, or invalidated (a password change, a logout).
		if cookie, err = p.renew(ctx, cookie); err != nil {
			return nil, err
		}
		if r, err = p.sendSession(ctx, method, path, body, cookie); err != nil {
			return nil, err
		}
	}
	switch r.Status {
	case http.StatusUnauthorized:
		return nil, keyward.Errorf(keyward.EUNAUTHORIZED, "n8n at %s refused the session of %s right after logging in (%s)", p.http.Base, p.email, provider.Message(r))
	case http.StatusForbidden:
		return nil, keyward.Errorf(keyward.EFORBIDDEN, "n8n user %s at %s may not manage API keys (%s): give the connection the owner's credentials", p.email, p.http.Base, provider.Message(r))
	case http.StatusNotFound:
		if strings.HasPrefix(path, "/rest/api-keys") && len(r.Body) == 0 {
			// n8n answers an empty 404 to every /rest/api-keys
			// request when its public API is disabled.
			return nil, p.apiDisabled()
		}
	}
	return r, nil
}

// sendSession sends one request with cookie, and keeps the cookie n8n
// sends back when it refreshes a session about to expire.
func (p *Provider) sendSession(ctx context.Context, method, path string, body any, cookie string) (*provider.Response, error) {
	r, err := p.http.Do(ctx, method, path, body, func(req *http.Request) {
		req.AddCookie(&http.Cookie{Name: cookieName, Value: cookie})
	})
	if err != nil {
		return nil, err
	}
	if fresh := sessionCookie(r); fresh != "" && r.Status < 400 {
		p.mu.Lock()
		if p.cookie == cookie {
			p.cookie = fresh
		}
		p.mu.Unlock()
	}
	return r, nil
}

// apiKey is an n8n API key as /rest/api-keys lists it, or as its creation
// answers (with rawApiKey).
type apiKey struct {
	ID        string   `json:"id"`
	Label     string   `json:"label"`
	APIKey    string   `json:"apiKey"` // redacted: ******abcd
	RawAPIKey string   `json:"rawApiKey"`
	Scopes    []string `json:"scopes"`
	// ExpiresAt is in seconds since the epoch, or null.
	ExpiresAt *float64 `json:"expiresAt"`
	CreatedAt string   `json:"createdAt"`
}

func (k *apiKey) token(owner string) provider.Token {
	t := provider.Token{
		ExternalID: k.ID,
		Name:       k.Label,
		User:       owner,
		Scopes:     k.Scopes,
		Hint:       hint(k.APIKey),
	}
	if k.ExpiresAt != nil && *k.ExpiresAt > 0 {
		e := time.Unix(int64(*k.ExpiresAt), 0).UTC()
		t.ExpiresAt = &e
	}
	if c, err := time.Parse(time.RFC3339Nano, k.CreatedAt); err == nil {
		t.CreatedAt = c.UTC()
	} else if c, err := time.Parse("2006-01-02 15:04:05.000", k.CreatedAt); err == nil {
		t.CreatedAt = c.UTC()
	}
	return t
}

// hint returns what Token.Hint shows of a key as n8n lists it: its last
// four characters, as n8n does (******abcd), and never more, should a
// version list more.
func hint(key string) string {
	key = strings.TrimLeft(key, "*")
	return key[max(0, len(key)-4):]
}

// decodeKeys decodes the list of keys in body, in either of the shapes
// n8n versions answer: {"data": [...]} or {"data": {"items": [...]}}.
func decodeKeys(body []byte) ([]apiKey, bool) {
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &env); err != nil || len(env.Data) == 0 {
		return nil, false
	}
	var keys []apiKey
	if err := json.Unmarshal(env.Data, &keys); err == nil {
		return keys, true
	}
	var page struct {
		Items *[]apiKey `json:"items"`
	}
	if err := json.Unmarshal(env.Data, &page); err == nil && page.Items != nil {
		return *page.Items, true
	}
	return nil, false
}

// keys lists the owner's keys as n8n has them.
func (p *Provider) keys(ctx context.Context) ([]apiKey, error) {
	r, err := p.session(ctx, http.MethodGet, "/rest/api-keys", nil)
	if err != nil {
		return nil, err
	}
	if r.Status != http.StatusOK {
		return nil, p.http.Unexpected(r, "GET /rest/api-keys")
	}
	keys, ok := decodeKeys(r.Body)
	if !ok {
		return nil, keyward.Errorf(keyward.EUPSTREAM, "n8n at %s answered GET /rest/api-keys with a body that is not a list of API keys: is this URL really n8n?", p.http.Base)
	}
	return keys, nil
}

// List lists the owner's API keys with GET /rest/api-keys; user is
// ignored (n8n keys belong to the owner). n8n shows each key's last four
// characters, as Hint.
func (p *Provider) List(ctx context.Context, user string) ([]provider.Token, error) {
	keys, err := p.keys(ctx)
	if err != nil {
		return nil, err
	}
	tokens := make([]provider.Token, 0, len(keys))
	for i := range keys {
		tokens = append(tokens, keys[i].token(p.email))
	}
	return tokens, nil
}

// labelled returns the key labelled name among keys, or nil.
func labelled(keys []apiKey, name string) *apiKey {
	for i := range keys {
		if keys[i].Label == name {
			return &keys[i]
		}
	}
	return nil
}

// conflict is the ECONFLICT error of a label the owner already has.
func (p *Provider) conflict(k *apiKey) error {
	return keyward.Errorf(keyward.ECONFLICT, "n8n user %s at %s already has an API key labelled %q (key %s): choose another name or revoke it first", p.email, p.http.Base, k.Label, k.ID)
}

// Scopes returns the scopes n8n allows the owner's keys
// (GET /rest/api-keys/scopes), e.g. workflow:read.
func (p *Provider) Scopes(ctx context.Context) ([]string, error) {
	r, err := p.session(ctx, http.MethodGet, "/rest/api-keys/scopes", nil)
	if err != nil {
		return nil, err
	}
	if r.Status != http.StatusOK {
		return nil, p.http.Unexpected(r, "GET /rest/api-keys/scopes")
	}
	var s struct {
		Data []string `json:"data"`
	}
	if err := p.http.Decode(r, &s); err != nil {
		return nil, err
	}
	return s.Data, nil
}

// Create creates an API key of the owner with POST /rest/api-keys
// (t.User is ignored). It lists the keys first, since n8n answers a label
// the owner already has with a 500: ECONFLICT then. EINVALID for a scope
// n8n does not allow the owner, a label or an expiry n8n refuses (empty,
// over 50 characters, not in the future).
func (p *Provider) Create(ctx context.Context, t provider.NewToken) (*provider.Created, error) {
	keys, err := p.keys(ctx)
	if err != nil {
		return nil, err
	}
	if k := labelled(keys, t.Name); k != nil {
		return nil, p.conflict(k)
	}
	valid, err := p.Scopes(ctx)
	if err != nil {
		return nil, err
	}
	var unknown []string
	for _, s := range t.Scopes {
		if !slices.Contains(valid, s) {
			unknown = append(unknown, s)
		}
	}
	if len(unknown) > 0 {
		return nil, keyward.Errorf(keyward.EINVALID, "n8n at %s does not allow scope(s) %s for the keys of %s; valid: %s", p.http.Base, strings.Join(unknown, ", "), p.email, strings.Join(valid, ", "))
	}
	scopes := t.Scopes
	if scopes == nil {
		scopes = []string{} // n8n says "at least 1" rather than "required"
	}
	var expires *int64
	if t.ExpiresAt != nil {
		// n8n takes whole seconds: round up, never to before the
		// requested expiry's second.
		s := t.ExpiresAt.Unix()
		if t.ExpiresAt.Nanosecond() > 0 {
			s++
		}
		expires = &s
	}
	body := struct {
		Label     string   `json:"label"`
		Scopes    []string `json:"scopes"`
		ExpiresAt *int64   `json:"expiresAt"`
	}{t.Name, scopes, expires}
	r, err := p.session(ctx, http.MethodPost, "/rest/api-keys", body)
	if err != nil {
		return nil, err
	}
	switch r.Status {
	case http.StatusOK, http.StatusCreated:
	case http.StatusBadRequest:
		return nil, keyward.Errorf(keyward.EINVALID, "n8n at %s refused API key %q: %s (scopes are n8n's, e.g. %s; an expiry must be in the future)", p.http.Base, t.Name, provider.Message(r), strings.Join(valid[:min(len(valid), 3)], ", "))
	case http.StatusInternalServerError:
		// A key of that label created meanwhile: n8n's unique index
		// answers 500.
		if keys, err := p.keys(ctx); err == nil {
			if k := labelled(keys, t.Name); k != nil {
				return nil, p.conflict(k)
			}
		}
		return nil, p.http.Unexpected(r, "POST /rest/api-keys")
	default:
		return nil, p.http.Unexpected(r, "POST /rest/api-keys")
	}
	var created struct {
		Data apiKey `json:"data"`
	}
	if err := p.http.Decode(r, &created); err != nil {
		return nil, err
	}
	k := created.Data
	if k.RawAPIKey == "" && k.APIKey != "" && !strings.Contains(k.APIKey, "*") {
		// Older n8n versions answered the raw key as apiKey.
		k.RawAPIKey = k.APIKey
	}
	if k.ID == "" || k.RawAPIKey == "" {
		return nil, keyward.Errorf(keyward.EUPSTREAM, "n8n at %s answered the creation of API key %q without its id or value", p.http.Base, t.Name)
	}
	tok := k.token(p.email)
	tok.Hint = hint(k.RawAPIKey)
	if tok.ExpiresAt == nil && expires != nil {
		e := time.Unix(*expires, 0).UTC()
		tok.ExpiresAt = &e
	}
	return &provider.Created{Token: tok, Secret: keyward.Secret(k.RawAPIKey)}, nil
}

// Revoke deletes the owner's API key externalID with
// DELETE /rest/api-keys/{id} (user is ignored). n8n answers 200 to the
// deletion of a key it does not have, so the keys are listed first:
// ENOTFOUND when externalID is not among them.
func (p *Provider) Revoke(ctx context.Context, user, externalID string) error {
	keys, err := p.keys(ctx)
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(keys, func(k apiKey) bool { return k.ID == externalID }) {
		return keyward.Errorf(keyward.ENOTFOUND, "n8n user %s has no API key %q at %s (revoked already?)", p.email, externalID, p.http.Base)
	}
	r, err := p.session(ctx, http.MethodDelete, "/rest/api-keys/"+url.PathEscape(externalID), nil)
	if err != nil {
		return err
	}
	switch r.Status {
	case http.StatusOK, http.StatusNoContent:
		return nil
	case http.StatusNotFound:
		return keyward.Errorf(keyward.ENOTFOUND, "n8n user %s has no API key %q at %s (revoked already?)", p.email, externalID, p.http.Base)
	}
	return p.http.Unexpected(r, "DELETE /rest/api-keys/{id}")
}

// Verify asks GET /api/v1/workflows?limit=1 of n8n's public API with the
// key: EUNAUTHORIZED when n8n refuses it (deleted, expired, or never an
// n8n key). A key without the workflow:list scope is accepted (n8n
// answers 403). The Identity is the owner's email when the key is the
// owner's (as far as this provider has logged in to know), else the n8n
// id of its user.
func (p *Provider) Verify(ctx context.Context, secret keyward.Secret) (*provider.Identity, error) {
	if secret.Reveal() == "" {
		return nil, keyward.Errorf(keyward.EINVALID, "n8n: no API key to verify")
	}
	r, err := p.http.Do(ctx, http.MethodGet, "/api/v1/workflows?limit=1", nil, func(req *http.Request) {
		req.Header.Set("X-N8N-API-KEY", secret.Reveal())
	})
	if err != nil {
		return nil, err
	}
	switch r.Status {
	case http.StatusOK, http.StatusForbidden:
		return &provider.Identity{User: p.subject(secret)}, nil
	case http.StatusUnauthorized:
		return nil, keyward.Errorf(keyward.EUNAUTHORIZED, "n8n at %s refused the API key (%s): it is deleted, expired, or was never an n8n key", p.http.Base, provider.Message(r))
	case http.StatusNotFound:
		return nil, p.apiDisabled()
	}
	return nil, p.http.Unexpected(r, "GET /api/v1/workflows")
}

// subject returns who an n8n accepted key acts as: the owner's email when
// its JWT subject is the owner's id, else that id ("" for a legacy key
// that is not a JWT).
func (p *Provider) subject(secret keyward.Secret) string {
	parts := strings.Split(secret.Reveal(), ".")
	if len(parts) != 3 {
		return ""
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(b, &claims) != nil {
		return ""
	}
	p.mu.Lock()
	owner := p.ownerID
	p.mu.Unlock()
	if claims.Sub != "" && claims.Sub == owner {
		return p.email
	}
	return claims.Sub
}
