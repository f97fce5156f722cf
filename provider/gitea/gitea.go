// Package gitea is the provider of Gitea access tokens, through Gitea's
// API v1 (tested against Gitea 1.26).
//
// The connection is a Gitea admin's user name and password. Gitea manages
// tokens (POST, GET and DELETE /api/v1/users/{user}/tokens) only with basic
// auth, never with a token, even one with write:user; an admin's basic auth
// may manage every user's tokens, any other user's only its own, which is
// why Check insists on an admin.
//
// Gitea tokens do not expire: NewToken.ExpiresAt is not sent to Gitea, and
// keyward's expiry job revokes the token when it is due. Gitea shows a
// token once, when it is created; afterwards it lists only its last eight
// characters, which become Token.Hint.
//
// Verify asks GET /api/v1/user with the token. Gitea answers who the token
// acts as only when its scopes include read:user (or write:user, or all); a
// token without them is still accepted, and Verify then returns an Identity
// whose User is empty.
package gitea

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/provider"
)

// pageSize is how many tokens List asks for per page; Gitea may answer
// fewer (its [api] MAX_RESPONSE_ITEMS, 50 by default).
const pageSize = 50

// Provider manages the access tokens of one Gitea through an admin's basic
// auth. It is safe for concurrent use.
type Provider struct {
	http     *provider.HTTP
	user     string
	password keyward.Secret
}

var _ provider.Provider = (*Provider)(nil)

// New returns the provider of the Gitea that c reaches. It checks only the
// connection's form (EINVALID for a base URL that is not absolute http(s),
// or a missing user name or password); Check asks Gitea.
func New(c provider.Connection) (*Provider, error) {
	h, err := provider.NewHTTP(provider.KindGitea, c)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(c.Username) == "" {
		return nil, keyward.Errorf(keyward.EINVALID, "gitea connection to %s: give the user name of a Gitea admin", h.Base)
	}
	if c.Password.Reveal() == "" {
		return nil, keyward.Errorf(keyward.EINVALID, "gitea connection to %s: give the password of Gitea user %s (Gitea manages tokens only with basic auth, not with a token)", h.Base, c.Username)
	}
	return &Provider{http: h, user: c.Username, password: c.Password}, nil
}

// Kind returns provider.KindGitea.
func (p *Provider) Kind() string { return provider.KindGitea }

// apiError is the body of Gitea's errors.
type apiError struct {
	Message string `json:"message"`
}

// giteaError reports whether r's body is an error as Gitea writes them.
func giteaError(r *provider.Response) bool {
	var e apiError
	return json.Unmarshal(r.Body, &e) == nil && e.Message != ""
}

// apiUser is the part of Gitea's user that keyward reads.
type apiUser struct {
	Login   string `json:"login"`
	IsAdmin bool   `json:"is_admin"`
}

// apiToken is Gitea's access token.
type apiToken struct {
	ID             int64     `json:"id"`
	Name           string    `json:"name"`
	SHA1           string    `json:"sha1"`
	TokenLastEight string    `json:"token_last_eight"`
	Scopes         []string  `json:"scopes"`
	Created        time.Time `json:"created_at"`
}

func (t *apiToken) token(user string) provider.Token {
	tok := provider.Token{
		ExternalID: strconv.FormatInt(t.ID, 10),
		Name:       t.Name,
		User:       user,
		Scopes:     t.Scopes,
		Hint:       t.TokenLastEight,
	}
	// Gitea leaves created_at out of the answer to a create (zero, or
	// its Unix epoch).
	if t.Created.Unix() > 0 {
		tok.CreatedAt = t.Created.UTC()
	}
	return tok
}

// basic returns the setup of a request with the connection's basic auth.
func (p *Provider) basic(r *http.Request) {
	r.SetBasicAuth(p.user, p.password.Reveal())
}

// Check asks GET /api/v1/version (reachable, and Gitea; with the
// credentials when Gitea requires signing in), then GET /api/v1/user with
// the connection's credentials: EUPSTREAM or EUPSTREAMTIMEOUT when Gitea
// cannot be reached or is not Gitea, EUNAUTHORIZED when Gitea refuses the
// credentials, EFORBIDDEN when it does not let the user sign in or the
// user is not an admin.
func (p *Provider) Check(ctx context.Context) error {
	r, err := p.http.Do(ctx, http.MethodGet, "/api/v1/version", nil, nil)
	if err != nil {
		return err
	}
	if r.Status == http.StatusForbidden || r.Status == http.StatusUnauthorized {
		// A Gitea with REQUIRE_SIGNIN_VIEW answers nothing to strangers.
		if r, err = p.http.Do(ctx, http.MethodGet, "/api/v1/version", nil, p.basic); err != nil {
			return err
		}
		if r.Status == http.StatusUnauthorized && giteaError(r) {
			return p.refused(r)
		}
	}
	if r.Status != http.StatusOK {
		return keyward.Errorf(keyward.EUPSTREAM, "%s does not look like Gitea: GET /api/v1/version answered %d (%s); give the URL Gitea is served at, e.g. https://git.example.com", p.http.Base, r.Status, provider.Message(r))
	}
	var v struct {
		Version string `json:"version"`
	}
	if err := json.Unmarshal(r.Body, &v); err != nil || v.Version == "" {
		return keyward.Errorf(keyward.EUPSTREAM, "%s does not look like Gitea: GET /api/v1/version did not answer Gitea's {\"version\": ...}; give the URL Gitea is served at", p.http.Base)
	}

	r, err = p.http.Do(ctx, http.MethodGet, "/api/v1/user", nil, p.basic)
	if err != nil {
		return err
	}
	switch r.Status {
	case http.StatusOK:
	case http.StatusUnauthorized:
		return p.refused(r)
	case http.StatusForbidden:
		return keyward.Errorf(keyward.EFORBIDDEN, "gitea at %s does not let %s sign in: %s", p.http.Base, p.user, provider.Message(r))
	default:
		return p.http.Unexpected(r, "GET /api/v1/user")
	}
	var u apiUser
	if err := p.http.Decode(r, &u); err != nil {
		return err
	}
	if !u.IsAdmin {
		return keyward.Errorf(keyward.EFORBIDDEN, "gitea user %s at %s is not an admin: it can manage only its own tokens; give the connection the credentials of a Gitea admin", u.Login, p.http.Base)
	}
	return nil
}

// refused is the EUNAUTHORIZED error of a 401 to the connection's basic
// auth.
func (p *Provider) refused(r *provider.Response) error {
	return keyward.Errorf(keyward.EUNAUTHORIZED, "gitea at %s refused the credentials of %s (%s): check the user name and password", p.http.Base, p.user, provider.Message(r))
}

// owner returns the Gitea user whose tokens a call is about: user, or the
// connection's own when user is empty.
func (p *Provider) owner(user string) string {
	if user == "" {
		return p.user
	}
	return user
}

// tokensPath is the path of user's tokens.
func tokensPath(user string) string {
	return "/api/v1/users/" + url.PathEscape(user) + "/tokens"
}

// failed maps an answer about user's tokens that is not a success: 401,
// 403 and 404 (an unknown user) to keyward errors, anything else to
// EUPSTREAM.
func (p *Provider) failed(r *provider.Response, user, what string) error {
	switch r.Status {
	case http.StatusUnauthorized:
		return p.refused(r)
	case http.StatusForbidden:
		return keyward.Errorf(keyward.EFORBIDDEN, "gitea at %s does not let %s manage the tokens of %s (%s): the connection needs a Gitea admin", p.http.Base, p.user, user, provider.Message(r))
	case http.StatusNotFound:
		return p.userNotFound(user)
	case http.StatusTemporaryRedirect, http.StatusPermanentRedirect, http.StatusFound, http.StatusMovedPermanently:
		// Gitea redirects the old name of a renamed user.
		return keyward.Errorf(keyward.ENOTFOUND, "gitea user %s at %s has been renamed (gitea redirects to %s): use its new name", user, p.http.Base, r.Header.Get("Location"))
	}
	return p.http.Unexpected(r, what)
}

func (p *Provider) userNotFound(user string) error {
	return keyward.Errorf(keyward.ENOTFOUND, "gitea user %s not found at %s", user, p.http.Base)
}

// Create creates a token for t.User (the connection's own user when
// empty) with POST /api/v1/users/{user}/tokens. t.ExpiresAt is not sent:
// Gitea tokens do not expire. ECONFLICT when the user already has a token
// of that name, EINVALID for scopes or a name Gitea refuses, ENOTFOUND for
// an unknown user.
func (p *Provider) Create(ctx context.Context, t provider.NewToken) (*provider.Created, error) {
	user := p.owner(t.User)
	body := struct {
		Name   string   `json:"name"`
		Scopes []string `json:"scopes"`
	}{t.Name, t.Scopes}
	r, err := p.http.Do(ctx, http.MethodPost, tokensPath(user), body, p.basic)
	if err != nil {
		return nil, err
	}
	switch {
	case r.Status/100 == 2: // 201; any success carries the token
	case r.Status == http.StatusBadRequest || r.Status == http.StatusUnprocessableEntity:
		return nil, p.refusedToken(ctx, r, user, t.Name)
	default:
		return nil, p.failed(r, user, "POST "+tokensPath(user))
	}
	var at apiToken
	if err := p.http.Decode(r, &at); err != nil {
		return nil, err
	}
	if at.ID == 0 || at.SHA1 == "" {
		return nil, keyward.Errorf(keyward.EUPSTREAM, "gitea at %s answered the creation of token %q for %s without its id or value", p.http.Base, t.Name, user)
	}
	return &provider.Created{Token: at.token(user), Secret: keyward.Secret(at.SHA1)}, nil
}

// refusedToken maps Gitea's 400 or 422 to a create. Gitea answers 400 both
// for a name the user already has and for bad scopes, told apart only by
// its message: the user's tokens are listed to tell them apart instead.
func (p *Provider) refusedToken(ctx context.Context, r *provider.Response, user, name string) error {
	msg := provider.Message(r)
	if r.Status == http.StatusBadRequest && name != "" {
		tokens, err := p.List(ctx, user)
		if err == nil {
			for _, t := range tokens {
				if t.Name == name {
					return keyward.Errorf(keyward.ECONFLICT, "gitea user %s already has a token named %q (token %s): choose another name, or revoke that one first", user, name, t.ExternalID)
				}
			}
		}
	}
	if name == "" {
		return keyward.Errorf(keyward.EINVALID, "gitea at %s refused a token without a name: %s", p.http.Base, msg)
	}
	return keyward.Errorf(keyward.EINVALID, "gitea at %s refused token %q for %s: %s (scopes are Gitea's, e.g. read:repository, write:issue, all)", p.http.Base, name, user, msg)
}

// List lists the tokens of user ("" for the connection's own) with
// GET /api/v1/users/{user}/tokens, every page of it. Gitea shows each
// token's last eight characters, as Hint. ENOTFOUND for an unknown user.
func (p *Provider) List(ctx context.Context, user string) ([]provider.Token, error) {
	user = p.owner(user)
	var tokens []provider.Token
	seen := make(map[int64]bool)
	for page := 1; ; page++ {
		path := fmt.Sprintf("%s?page=%d&limit=%d", tokensPath(user), page, pageSize)
		r, err := p.http.Do(ctx, http.MethodGet, path, nil, p.basic)
		if err != nil {
			return nil, err
		}
		if r.Status != http.StatusOK {
			return nil, p.failed(r, user, "GET "+tokensPath(user))
		}
		var batch []apiToken
		if err := p.http.Decode(r, &batch); err != nil {
			return nil, err
		}
		added := 0
		for i := range batch {
			// A token created meanwhile shifts the pages: skip repeats.
			if !seen[batch[i].ID] {
				seen[batch[i].ID] = true
				tokens = append(tokens, batch[i].token(user))
				added++
			}
		}
		// The last page: Gitea's X-Total-Count is reached, or a page
		// brings nothing new (past the end, or a server that ignores
		// the page parameter).
		total, err := strconv.Atoi(r.Header.Get("X-Total-Count"))
		if added == 0 || (err == nil && len(tokens) >= total) {
			return tokens, nil
		}
	}
}

// Revoke deletes token externalID (Gitea's numeric id) of user ("" for
// the connection's own) with DELETE /api/v1/users/{user}/tokens/{id}.
// ENOTFOUND when the user has no such token, or does not exist; EINVALID
// for an id that is not a number (Gitea would take it for a token name).
func (p *Provider) Revoke(ctx context.Context, user, externalID string) error {
	user = p.owner(user)
	id, err := strconv.ParseInt(externalID, 10, 64)
	if err != nil || id <= 0 {
		return keyward.Errorf(keyward.EINVALID, "gitea token id %q: give the numeric id Gitea lists", externalID)
	}
	path := tokensPath(user) + "/" + strconv.FormatInt(id, 10)
	r, err := p.http.Do(ctx, http.MethodDelete, path, nil, p.basic)
	if err != nil {
		return err
	}
	switch r.Status {
	case http.StatusNoContent, http.StatusOK:
		return nil
	case http.StatusNotFound:
		// Unknown user or unknown token: Gitea answers 404 to both.
		if err := p.userExists(ctx, user); err != nil {
			return err
		}
		return keyward.Errorf(keyward.ENOTFOUND, "gitea user %s has no token %d at %s (revoked already?)", user, id, p.http.Base)
	}
	return p.failed(r, user, "DELETE "+tokensPath(user)+"/{id}")
}

// userExists returns nil when Gitea knows user, ENOTFOUND when it does
// not, and the error of the request otherwise.
func (p *Provider) userExists(ctx context.Context, user string) error {
	r, err := p.http.Do(ctx, http.MethodGet, "/api/v1/users/"+url.PathEscape(user), nil, p.basic)
	if err != nil {
		return err
	}
	switch r.Status {
	case http.StatusOK:
		return nil
	case http.StatusNotFound:
		return p.userNotFound(user)
	}
	return p.failed(r, user, "GET /api/v1/users/{user}")
}

// Verify asks GET /api/v1/user with the token and returns the Gitea user
// it acts as: EUNAUTHORIZED when Gitea refuses it (revoked, or never a
// token), EFORBIDDEN when Gitea accepts the token but not its user (a
// user who may not sign in). Gitea tells who a token acts as only when it
// has read:user; for a token without, Identity.User is empty.
func (p *Provider) Verify(ctx context.Context, secret keyward.Secret) (*provider.Identity, error) {
	if secret.Reveal() == "" {
		return nil, keyward.Errorf(keyward.EINVALID, "gitea: no token to verify")
	}
	if strings.ContainsFunc(secret.Reveal(), func(r rune) bool { return r <= ' ' || r >= 0x7f }) {
		// It could not go in a header; say so rather than fail to send.
		return nil, keyward.Errorf(keyward.EINVALID, "gitea: the token to verify has spaces or characters no Gitea token has")
	}
	r, err := p.http.Do(ctx, http.MethodGet, "/api/v1/user", nil, func(r *http.Request) {
		r.Header.Set("Authorization", "token "+secret.Reveal())
	})
	if err != nil {
		return nil, err
	}
	switch r.Status {
	case http.StatusOK:
		var u apiUser
		if err := p.http.Decode(r, &u); err != nil {
			return nil, err
		}
		return &provider.Identity{User: u.Login}, nil
	case http.StatusUnauthorized:
		return nil, keyward.Errorf(keyward.EUNAUTHORIZED, "gitea at %s refused the token (%s): it is revoked, or was never a Gitea token", p.http.Base, provider.Message(r))
	case http.StatusForbidden:
		// The token authenticated, but either lacks read:user (Gitea
		// then names the scopes it requires) or belongs to a user who
		// may not sign in.
		if msg := provider.Message(r); !strings.Contains(msg, "required scope") {
			return nil, keyward.Errorf(keyward.EFORBIDDEN, "gitea at %s accepts the token but not its user: %s", p.http.Base, msg)
		}
		return &provider.Identity{}, nil
	}
	return nil, p.http.Unexpected(r, "GET /api/v1/user")
}
