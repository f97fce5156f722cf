package httpapi

import (
	"context"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verify"
)

// The /v1 operations. Each takes the caller's context, the request (for
// path values and the query) and the decoded body, and leaves every
// authorisation decision to the service.

func (s *Server) createAccount(ctx context.Context, _ *http.Request, in keyward.AccountCreate) (*keyward.Account, error) {
	return s.svc.Tenancy.CreateAccount(ctx, in)
}

func (s *Server) listAccounts(ctx context.Context, r *http.Request, _ noBody) (*keyward.AccountList, error) {
	q, err := query(r, "after", "limit")
	if err != nil {
		return nil, err
	}
	p, err := pageOf(q)
	if err != nil {
		return nil, err
	}
	l, err := s.svc.Tenancy.Accounts(ctx, p)
	if l != nil && l.Items == nil {
		l.Items = []*keyward.Account{}
	}
	return l, err
}

func (s *Server) getAccount(ctx context.Context, r *http.Request, _ noBody) (*keyward.Account, error) {
	return s.svc.Tenancy.Account(ctx, r.PathValue("id"))
}

func (s *Server) updateAccount(ctx context.Context, r *http.Request, in keyward.AccountUpdate) (*keyward.Account, error) {
	return s.svc.Tenancy.UpdateAccount(ctx, r.PathValue("id"), in)
}

func (s *Server) deleteAccount(ctx context.Context, r *http.Request, _ noBody) (*struct{}, error) {
	return nil, s.svc.Tenancy.DeleteAccount(ctx, r.PathValue("id"))
}

func (s *Server) createUser(ctx context.Context, r *http.Request, in keyward.UserCreate) (*keyward.User, error) {
	return s.svc.Tenancy.CreateUser(ctx, r.PathValue("id"), in)
}

func (s *Server) listUsers(ctx context.Context, r *http.Request, _ noBody) (*keyward.UserList, error) {
	q, err := query(r, "after", "limit")
	if err != nil {
		return nil, err
	}
	p, err := pageOf(q)
	if err != nil {
		return nil, err
	}
	l, err := s.svc.Tenancy.Users(ctx, r.PathValue("id"), p)
	if l != nil && l.Items == nil {
		l.Items = []*keyward.User{}
	}
	return l, err
}

func (s *Server) getUser(ctx context.Context, r *http.Request, _ noBody) (*keyward.User, error) {
	return s.svc.Tenancy.User(ctx, r.PathValue("id"), r.PathValue("uid"))
}

func (s *Server) lookupUser(ctx context.Context, r *http.Request, _ noBody) (*keyward.User, error) {
	q, err := query(r, "external_id")
	if err != nil {
		return nil, err
	}
	return s.svc.Tenancy.UserByExternalID(ctx, r.PathValue("id"), q.Get("external_id"))
}

func (s *Server) updateUser(ctx context.Context, r *http.Request, in keyward.UserUpdate) (*keyward.User, error) {
	return s.svc.Tenancy.UpdateUser(ctx, r.PathValue("id"), r.PathValue("uid"), in)
}

func (s *Server) deleteUser(ctx context.Context, r *http.Request, _ noBody) (*struct{}, error) {
	return nil, s.svc.Tenancy.DeleteUser(ctx, r.PathValue("id"), r.PathValue("uid"))
}

func (s *Server) createKey(ctx context.Context, _ *http.Request, in keyward.KeyCreate) (*keyward.CreatedKey, error) {
	return s.svc.Keys.CreateKey(ctx, in)
}

func (s *Server) listKeys(ctx context.Context, r *http.Request, _ noBody) (*keyward.KeyList, error) {
	q, err := query(r, "account_id", "user_id", "role", "environment", "after", "limit")
	if err != nil {
		return nil, err
	}
	p, err := pageOf(q)
	if err != nil {
		return nil, err
	}
	f := keyward.KeyFilter{AccountID: q.Get("account_id"), UserID: q.Get("user_id"), Role: keyward.Role(q.Get("role")), Environment: q.Get("environment")}
	if f.Role != "" && !f.Role.Valid() {
		return nil, keyward.Errorf(keyward.EINVALID, "role must be root, account_admin or user")
	}
	l, err := s.svc.Keys.Keys(ctx, f, p)
	if l != nil && l.Items == nil {
		l.Items = []*keyward.Key{}
	}
	return l, err
}

func (s *Server) getKey(ctx context.Context, r *http.Request, _ noBody) (*keyward.Key, error) {
	return s.svc.Keys.Key(ctx, r.PathValue("id"))
}

func (s *Server) updateKey(ctx context.Context, r *http.Request, in keyward.KeyUpdate) (*keyward.Key, error) {
	return s.svc.Keys.UpdateKey(ctx, r.PathValue("id"), in)
}

func (s *Server) deleteKey(ctx context.Context, r *http.Request, _ noBody) (*struct{}, error) {
	return nil, s.svc.Keys.DeleteKey(ctx, r.PathValue("id"))
}

// revokeKey revokes a key; with ?cascade=true its descendants too.
func (s *Server) revokeKey(ctx context.Context, r *http.Request, _ noBody) (*keyward.KeyRevocation, error) {
	q, err := query(r, "cascade")
	if err != nil {
		return nil, err
	}
	switch q.Get("cascade") {
	case "", "false":
		k, err := s.svc.Keys.RevokeKey(ctx, r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		return &keyward.KeyRevocation{Key: *k}, nil
	case "true":
		return s.svc.Keys.RevokeKeyCascade(ctx, r.PathValue("id"))
	}
	return nil, keyward.Errorf(keyward.EINVALID, "cascade must be true or false")
}

func (s *Server) rotateKey(ctx context.Context, r *http.Request, in keyward.KeyRotate) (*keyward.CreatedKey, error) {
	return s.svc.Keys.RotateKey(ctx, r.PathValue("id"), in)
}

// setKeyDisabled is POST /v1/keys/{id}/disable and /enable: PATCH with
// only "disabled".
func (s *Server) setKeyDisabled(disabled bool) handlerFunc[noBody, *keyward.Key] {
	return func(ctx context.Context, r *http.Request, _ noBody) (*keyward.Key, error) {
		return s.svc.Keys.UpdateKey(ctx, r.PathValue("id"), keyward.KeyUpdate{Disabled: &disabled})
	}
}

// verifyKey answers 200 for every outcome of the key being verified, its
// code saying why it is not valid (UNAVAILABLE when its state cannot be
// known, the store being down and the key not cached; RATE_LIMITED and
// USAGE_EXCEEDED with the limits' state and the credits left in the body,
// never as headers); errors are about the caller (401, 403, or 503 when
// the caller's own key cannot be checked) or the request (400: a cost
// outside 0 to keyward.MaxVerificationCost). The agent of the verified key
// is the body's "agent", else the X-Keyward-Agent header.
func (s *Server) verifyKey(ctx context.Context, r *http.Request, in keyward.VerifyRequest) (*keyward.VerifyResult, error) {
	if err := verify.CheckCost(in.Cost); err != nil {
		return nil, err
	}
	if in.Agent == "" {
		in.Agent = keyward.IdentityFrom(ctx).Agent
	}
	return s.svc.Keys.VerifyKey(ctx, in)
}

func (s *Server) whoami(ctx context.Context, _ *http.Request, _ noBody) (*keyward.Identity, error) {
	return s.svc.Keys.WhoAmI(ctx)
}

// query returns r's query after checking that it holds only the allowed
// parameters, each at most once: a misspelt filter must not silently list
// everything.
func query(r *http.Request, allowed ...string) (url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return nil, keyward.Errorf(keyward.EINVALID, "malformed query string")
	}
	for name, vs := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || a == name
		}
		if !ok {
			return nil, keyward.Errorf(keyward.EINVALID, "unknown query parameter %q", name)
		}
		if len(vs) > 1 {
			return nil, keyward.Errorf(keyward.EINVALID, "query parameter %q given more than once", name)
		}
	}
	return q, nil
}

// pageOf reads the cursor ("after") and the page size ("limit"); a limit
// above keyward.MaxPageLimit is capped, as keyward.Page says.
func pageOf(q url.Values) (keyward.Page, error) {
	p := keyward.Page{After: q.Get("after")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return p, keyward.Errorf(keyward.EINVALID, "limit must be a positive integer (at most %d are returned)", keyward.MaxPageLimit)
		}
		p.Limit = min(n, keyward.MaxPageLimit)
	}
	return p, nil
}

// timeParams reads the RFC 3339 times of the named query parameters into
// their destinations; an absent parameter leaves its destination zero.
func timeParams(q url.Values, dst map[string]*time.Time) error {
	for name, t := range dst {
		v := q.Get(name)
		if v == "" {
			continue
		}
		var err error
		if *t, err = time.Parse(time.RFC3339, v); err != nil {
			return keyward.Errorf(keyward.EINVALID, "%s %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", name, v)
		}
	}
	return nil
}
