package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
)

// DefaultURL is the server a zero Client talks to.
const DefaultURL = "http://127.0.0.1:8080"

// maxResponseBytes bounds a response body the client will read.
const maxResponseBytes = 64 << 20

// Client talks to a keyward server. The zero value is usable: it talks to
// DefaultURL without a key. Its fields must not
// change while requests are in flight.
type Client struct {
	// URL is the server's base URL, e.g. https://keyward.example.com; a
	// path is kept as a prefix. Empty means DefaultURL.
	URL string
	// APIKey authenticates every request (Authorization: Bearer).
	APIKey keyward.Secret
	// Agent, if set, is sent as X-Keyward-Agent and appears in the
	// identity of the calls.
	Agent string
	// HTTPClient sends the requests; nil means a client that follows no
	// redirects and gives up after 30 seconds.
	HTTPClient *http.Client
}

var (
	_ keyward.AccountService = (*Client)(nil)
	_ keyward.UserService    = (*Client)(nil)
	_ keyward.KeyService     = (*Client)(nil)
)

// New returns a Client for the server at url authenticating with apiKey.
func New(url string, apiKey keyward.Secret) *Client {
	return &Client{URL: url, APIKey: apiKey}
}

// CreateAccount creates an account (root only).
func (c *Client) CreateAccount(ctx context.Context, in keyward.AccountCreate) (*keyward.Account, error) {
	return send[keyward.Account](ctx, c, http.MethodPost, "/v1/accounts", nil, in)
}

// Account returns an account.
func (c *Client) Account(ctx context.Context, id string) (*keyward.Account, error) {
	return send[keyward.Account](ctx, c, http.MethodGet, path("/v1/accounts", id), nil, nil)
}

// Accounts returns one page of accounts.
func (c *Client) Accounts(ctx context.Context, p keyward.Page) (*keyward.AccountList, error) {
	return send[keyward.AccountList](ctx, c, http.MethodGet, "/v1/accounts", pageQuery(p), nil)
}

// UpdateAccount changes the fields of u that are set.
func (c *Client) UpdateAccount(ctx context.Context, id string, u keyward.AccountUpdate) (*keyward.Account, error) {
	return send[keyward.Account](ctx, c, http.MethodPatch, path("/v1/accounts", id), nil, u)
}

// DeleteAccount deletes an account with its users and keys.
func (c *Client) DeleteAccount(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, path("/v1/accounts", id), nil, nil, nil)
}

// CreateUser creates a user in an account.
func (c *Client) CreateUser(ctx context.Context, accountID string, in keyward.UserCreate) (*keyward.User, error) {
	return send[keyward.User](ctx, c, http.MethodPost, path("/v1/accounts", accountID, "users"), nil, in)
}

// User returns a user of an account.
func (c *Client) User(ctx context.Context, accountID, id string) (*keyward.User, error) {
	return send[keyward.User](ctx, c, http.MethodGet, path("/v1/accounts", accountID, "users", id), nil, nil)
}

// Users returns one page of an account's users.
func (c *Client) Users(ctx context.Context, accountID string, p keyward.Page) (*keyward.UserList, error) {
	return send[keyward.UserList](ctx, c, http.MethodGet, path("/v1/accounts", accountID, "users"), pageQuery(p), nil)
}

// UserByExternalID returns the account's user with that external id
// (ENOTFOUND if none).
func (c *Client) UserByExternalID(ctx context.Context, accountID, externalID string) (*keyward.User, error) {
	return send[keyward.User](ctx, c, http.MethodGet, path("/v1/accounts", accountID, "users", "lookup"), url.Values{"external_id": {externalID}}, nil)
}

// UpdateUser changes the fields of a user that are set.
func (c *Client) UpdateUser(ctx context.Context, accountID, id string, in keyward.UserUpdate) (*keyward.User, error) {
	return send[keyward.User](ctx, c, http.MethodPatch, path("/v1/accounts", accountID, "users", id), nil, in)
}

// DeleteUser deletes a user and its keys.
func (c *Client) DeleteUser(ctx context.Context, accountID, id string) error {
	return c.do(ctx, http.MethodDelete, path("/v1/accounts", accountID, "users", id), nil, nil, nil)
}

// CreateKey issues a key; the result carries its secret, shown this once.
func (c *Client) CreateKey(ctx context.Context, in keyward.KeyCreate) (*keyward.CreatedKey, error) {
	return send[keyward.CreatedKey](ctx, c, http.MethodPost, "/v1/keys", nil, in)
}

// Key returns a key (never its secret).
func (c *Client) Key(ctx context.Context, id string) (*keyward.Key, error) {
	return send[keyward.Key](ctx, c, http.MethodGet, path("/v1/keys", id), nil, nil)
}

// Keys returns one page of the keys matching f.
func (c *Client) Keys(ctx context.Context, f keyward.KeyFilter, p keyward.Page) (*keyward.KeyList, error) {
	q := pageQuery(p)
	if f.AccountID != "" {
		q.Set("account_id", f.AccountID)
	}
	if f.UserID != "" {
		q.Set("user_id", f.UserID)
	}
	if f.Role != "" {
		q.Set("role", string(f.Role))
	}
	if f.Environment != "" {
		q.Set("environment", f.Environment)
	}
	return send[keyward.KeyList](ctx, c, http.MethodGet, "/v1/keys", q, nil)
}

// UpdateKey changes the fields of u that are set.
func (c *Client) UpdateKey(ctx context.Context, id string, u keyward.KeyUpdate) (*keyward.Key, error) {
	return send[keyward.Key](ctx, c, http.MethodPatch, path("/v1/keys", id), nil, u)
}

// DisableKey disables a key (POST /v1/keys/{id}/disable).
func (c *Client) DisableKey(ctx context.Context, id string) (*keyward.Key, error) {
	return send[keyward.Key](ctx, c, http.MethodPost, path("/v1/keys", id, "disable"), nil, nil)
}

// EnableKey enables a disabled key (POST /v1/keys/{id}/enable).
func (c *Client) EnableKey(ctx context.Context, id string) (*keyward.Key, error) {
	return send[keyward.Key](ctx, c, http.MethodPost, path("/v1/keys", id, "enable"), nil, nil)
}

// RevokeKey makes a key stop working at once.
func (c *Client) RevokeKey(ctx context.Context, id string) (*keyward.Key, error) {
	return send[keyward.Key](ctx, c, http.MethodPost, path("/v1/keys", id, "revoke"), nil, nil)
}

// RevokeKeyCascade revokes a key and its descendants, the keys it created
// and so on (POST /v1/keys/{id}/revoke?cascade=true).
func (c *Client) RevokeKeyCascade(ctx context.Context, id string) (*keyward.KeyRevocation, error) {
	return send[keyward.KeyRevocation](ctx, c, http.MethodPost, path("/v1/keys", id, "revoke"), url.Values{"cascade": {"true"}}, nil)
}

// RotateKey issues a replacement for a key; the old one keeps working for
// r.Grace.
func (c *Client) RotateKey(ctx context.Context, id string, r keyward.KeyRotate) (*keyward.CreatedKey, error) {
	return send[keyward.CreatedKey](ctx, c, http.MethodPost, path("/v1/keys", id, "rotate"), nil, r)
}

// DeleteKey deletes a key.
func (c *Client) DeleteKey(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, path("/v1/keys", id), nil, nil, nil)
}

// VerifyKey asks the server whether r.Key is valid for r.Permissions. Any
// outcome for the key is a result (see its Code); an error is about the
// caller's own key or an outage.
func (c *Client) VerifyKey(ctx context.Context, r keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	return send[keyward.VerifyResult](ctx, c, http.MethodPost, "/v1/keys/verify", nil, r)
}

// WhoAmI returns the identity of the client's key.
func (c *Client) WhoAmI(ctx context.Context) (*keyward.Identity, error) {
	return send[keyward.Identity](ctx, c, http.MethodGet, "/v1/whoami", nil, nil)
}

// base returns the server URL without a trailing slash.
func (c *Client) base() string {
	if c.URL == "" {
		return DefaultURL
	}
	return strings.TrimRight(c.URL, "/")
}

// defaultHTTPClient follows no redirects: a redirect would carry the API
// key (Go keeps Authorization on a same-host redirect, even from https to
// http) and re-send bodies that hold keys being verified. It also bounds
// every call.
var defaultHTTPClient = &http.Client{
	Timeout: 30 * time.Second,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

func (c *Client) httpClient() *http.Client {
	if c.HTTPClient != nil {
		return c.HTTPClient
	}
	return defaultHTTPClient
}

// send sends one request and returns the decoded 2xx body, or nil and the
// error.
func send[T any](ctx context.Context, c *Client, method, p string, q url.Values, in any) (*T, error) {
	var out T
	if err := c.do(ctx, method, p, q, in, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// do sends one request and decodes a 2xx JSON body into out (if not nil),
// or turns an error response into a *keyward.Error.
func (c *Client) do(ctx context.Context, method, p string, q url.Values, in, out any) error {
	base := c.base()
	u := base + p
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return keyward.WrapError(keyward.EINVALID, err, "encoding %s %s request", method, p)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return keyward.WrapError(keyward.EINVALID, err, "invalid keyward URL %q", base)
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json, "+keyward.ProblemContentType)
	req.Header.Set("User-Agent", "keyward-client")
	if k := c.APIKey.Reveal(); k != "" {
		req.Header.Set("Authorization", "Bearer "+k)
	}
	if c.Agent != "" {
		req.Header.Set(keyward.HeaderAgent, c.Agent)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		// A *url.Error names the method and URL; it never holds the key.
		return keyward.WrapError(keyward.EUNAVAILABLE, err, "cannot reach keyward at %s", base)
	}
	defer resp.Body.Close()
	r := io.LimitReader(resp.Body, maxResponseBytes)
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		if out == nil || resp.StatusCode == http.StatusNoContent {
			io.Copy(io.Discard, r)
			return nil
		}
		if err := json.NewDecoder(r).Decode(out); err != nil {
			return keyward.WrapError(keyward.EINTERNAL, err, "decoding the response of %s %s from %s", method, p, base)
		}
		return nil
	}
	return responseError(resp, r, base)
}

// responseError turns an error response into a *keyward.Error: the code
// and detail of a problem+json body, or a code derived from the status for
// anything else (a proxy's HTML 502 page, say).
func responseError(resp *http.Response, r io.Reader, base string) error {
	b, _ := io.ReadAll(io.LimitReader(r, 1<<20))
	mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var p keyward.Problem
	if (mt == keyward.ProblemContentType || mt == "application/json") && json.Unmarshal(b, &p) == nil && p.Code != "" {
		msg := p.Detail
		if msg == "" {
			msg = p.Title
		}
		return &keyward.Error{Code: p.Code, Message: msg}
	}
	return &keyward.Error{
		Code:    keyward.CodeOfHTTPStatus(resp.StatusCode),
		Message: fmt.Sprintf("keyward at %s answered %s", base, resp.Status),
		Err:     errors.New(strconv.Quote(firstLine(b))),
	}
}

func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// path joins a route prefix and escaped path segments. An empty segment
// becomes "-", which the server answers as not found, rather than
// collapsing into a different route.
func path(prefix string, segs ...string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, s := range segs {
		if s == "" {
			s = "-"
		}
		b.WriteByte('/')
		b.WriteString(url.PathEscape(s))
	}
	return b.String()
}

func pageQuery(p keyward.Page) url.Values {
	q := url.Values{}
	if p.After != "" {
		q.Set("after", p.After)
	}
	if p.Limit > 0 {
		q.Set("limit", strconv.Itoa(p.Size()))
	}
	return q
}
