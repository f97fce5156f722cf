package unkeyv2

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/keyward/keyward"
)

// Unkey's identities and roles belong to a workspace; keyward's users and
// named roles belong to an account, an Unkey API. identities.* and
// permissions.* act in the account named by the APIHeader, else in the
// calling key's (an account admin key's own), else, for a root key (which
// belongs to no account), in the deployment's only account. A root key of
// a deployment with several accounts must name one (docs/unkey.md).

// APIHeader names the API (account) identities.* and permissions.* act
// in; Unkey's requests for them name none.
const APIHeader = "X-Keyward-Api-Id"

// workspace returns the account the identities.* or permissions.* call r
// acts in.
func (s *Server) workspace(ctx context.Context, r *http.Request) (string, error) {
	if v := r.Header.Values(APIHeader); len(v) > 0 {
		if len(v) > 1 || v[0] == "" {
			return "", fieldErr("header."+APIHeader, keyward.Errorf(keyward.EINVALID, "%s must be one apiId", APIHeader))
		}
		return v[0], nil
	}
	if id := keyward.IdentityFrom(ctx); id != nil && id.AccountID != "" {
		return id.AccountID, nil
	}
	list, err := s.cfg.Tenancy.Accounts(ctx, keyward.Page{Limit: 2})
	if err != nil {
		return "", err
	}
	switch len(list.Items) {
	case 1:
		return list.Items[0].ID, nil
	case 0:
		return "", fieldErr("header."+APIHeader, keyward.Errorf(keyward.EINVALID, "keyward has no API yet, and identities and roles belong to one: create it with apis.createApi first"))
	}
	return "", fieldErr("header."+APIHeader, keyward.Errorf(keyward.EINVALID, "identities and roles belong to one API in keyward, and a root key spans several: name the apiId in the %s header, or call with an account admin key of the API (docs/unkey.md)", APIHeader))
}

type createIdentityRequest struct {
	ExternalID string             `json:"externalId"`
	Meta       json.RawMessage    `json:"meta"`
	Ratelimits []ratelimitRequest `json:"ratelimits"`
}

type createIdentityData struct {
	IdentityID string `json:"identityId"`
}

// createIdentity creates a user with the external id, its meta and, given
// rate limits, its shared limits (root only, checked before anything is
// created).
func (s *Server) createIdentity(ctx context.Context, r *http.Request, in *createIdentityRequest) (*createIdentityData, error) {
	if in.ExternalID == "" {
		return nil, badField("externalId", "is required")
	}
	limits, err := identityLimits(ctx, in.Ratelimits)
	if err != nil {
		return nil, err
	}
	account, err := s.workspace(ctx, r)
	if err != nil {
		return nil, err
	}
	u, err := s.cfg.Tenancy.CreateUser(ctx, account, keyward.UserCreate{Name: in.ExternalID, ExternalID: in.ExternalID, Meta: in.Meta})
	if err != nil {
		return nil, err
	}
	if len(limits) > 0 {
		if _, err := s.cfg.Keys.SetMeter(ctx, account, u.ID, keyward.MeterSet{RateLimits: limits}); err != nil {
			s.undo(ctx, "deleting an identity whose limits were refused", s.cfg.Tenancy.DeleteUser(ctx, account, u.ID))
			return nil, err
		}
	}
	return &createIdentityData{IdentityID: u.ID}, nil
}

// identityLimits returns the shared rate limits rs asks for, refusing them
// before anything changes unless the caller is root (only root sets shared
// limits).
func identityLimits(ctx context.Context, rs []ratelimitRequest) ([]keyward.RateLimit, error) {
	limits, err := rateLimits(rs)
	if err != nil || len(rs) == 0 {
		return limits, err
	}
	if id := keyward.IdentityFrom(ctx); id == nil || id.Role != keyward.RoleRoot {
		return nil, keyward.Errorf(keyward.EFORBIDDEN, "setting an identity's rate limits needs a root key")
	}
	return limits, nil
}

type identityRequest struct {
	Identity string `json:"identity"`
}

// identity returns the account's user that ref names: its external id, or
// its id when it has an external id (a user without one is no identity).
func (s *Server) identity(ctx context.Context, r *http.Request, ref string) (string, *keyward.User, error) {
	if ref == "" {
		return "", nil, badField("identity", "is required: the identity's externalId or id")
	}
	account, err := s.workspace(ctx, r)
	if err != nil {
		return "", nil, err
	}
	u, err := s.cfg.Tenancy.UserByExternalID(ctx, account, ref)
	if keyward.ErrorCode(err) == keyward.ENOTFOUND && strings.HasPrefix(ref, "usr_") {
		u, err = s.cfg.Tenancy.User(ctx, account, ref)
		if err == nil && u.ExternalID == "" {
			err = errIdentityNotFound
		}
	}
	if keyward.ErrorCode(err) == keyward.ENOTFOUND {
		err = errIdentityNotFound
	}
	return account, u, err
}

var errIdentityNotFound = keyward.Errorf(keyward.ENOTFOUND, "identity not found")

// identityAnswer returns u as Unkey answers an identity, with its shared
// rate limits.
func (s *Server) identityAnswer(ctx context.Context, account string, u *keyward.User) (*identityData, error) {
	m, err := s.cfg.Keys.Meter(ctx, account, u.ID)
	switch {
	case keyward.ErrorCode(err) == keyward.ENOTFOUND:
		m = &keyward.Meter{}
	case err != nil:
		return nil, err
	}
	return identityDataOf(u.ID, u.ExternalID, u.Meta, m.RateLimits), nil
}

func (s *Server) getIdentity(ctx context.Context, r *http.Request, in *identityRequest) (*identityData, error) {
	account, u, err := s.identity(ctx, r, in.Identity)
	if err != nil {
		return nil, err
	}
	return s.identityAnswer(ctx, account, u)
}

// listIdentities lists the account's users with an external id. A page
// may hold fewer than limit identities while more follow: users made for
// a key alone are in the pages, not in the answer.
func (s *Server) listIdentities(ctx context.Context, r *http.Request, body []byte) (any, *pagination, error) {
	account, page, err := s.listedPage(ctx, r, body)
	if err != nil {
		return nil, nil, err
	}
	list, err := s.cfg.Tenancy.Users(ctx, account, page)
	if err != nil {
		return nil, nil, err
	}
	out := []*identityData{}
	for _, u := range list.Items {
		if u.ExternalID == "" {
			continue
		}
		d, err := s.identityAnswer(ctx, account, u)
		if err != nil {
			return nil, nil, err
		}
		out = append(out, d)
	}
	return out, &pagination{Cursor: list.Next, HasMore: list.Next != ""}, nil
}

// listedPage reads the body of a list operation of identities or roles:
// the account it lists in (workspace) and the page it asks for.
func (s *Server) listedPage(ctx context.Context, r *http.Request, body []byte) (string, keyward.Page, error) {
	var in pageRequest
	if err := decode(body, &in); err != nil {
		return "", keyward.Page{}, err
	}
	page, err := in.page()
	if err != nil {
		return "", keyward.Page{}, err
	}
	account, err := s.workspace(ctx, r)
	return account, page, err
}

// pageRequest is the body of the list operations of identities and
// roles.
type pageRequest struct {
	Limit  *int   `json:"limit"`
	Cursor string `json:"cursor"`
	Search string `json:"search"`
}

// page returns the page the request asks for; search is refused,
// keyward's lists have no search.
func (r *pageRequest) page() (keyward.Page, error) {
	if r.Search != "" {
		return keyward.Page{}, badField("search", "keyward's lists have no search: leave it out and filter the pages")
	}
	page := keyward.Page{After: r.Cursor, Limit: maxListLimit}
	if r.Limit != nil {
		if *r.Limit < 1 || *r.Limit > maxListLimit {
			return keyward.Page{}, badField("limit", "must be between 1 and %d", maxListLimit)
		}
		page.Limit = *r.Limit
	}
	return page, nil
}

type updateIdentityRequest struct {
	Identity string `json:"identity"`
	// Meta replaces the meta; null or {} removes it.
	Meta       nullable[json.RawMessage] `json:"meta"`
	Ratelimits *[]ratelimitRequest       `json:"ratelimits"`
}

// updateIdentity replaces the meta and the shared rate limits given
// (ratelimits [] removes them); the identity's shared credits, set with
// keyward's /v1 API, are kept. Everything is checked before anything is
// written.
func (s *Server) updateIdentity(ctx context.Context, r *http.Request, in *updateIdentityRequest) (*identityData, error) {
	var limits []keyward.RateLimit
	if in.Ratelimits != nil {
		var err error
		if limits, err = identityLimits(ctx, *in.Ratelimits); err != nil {
			return nil, err
		}
		if len(limits) == 0 && keyward.IdentityFrom(ctx).Role != keyward.RoleRoot {
			return nil, keyward.Errorf(keyward.EFORBIDDEN, "removing an identity's rate limits needs a root key")
		}
	}
	account, u, err := s.identity(ctx, r, in.Identity)
	if err != nil {
		return nil, err
	}
	if in.Meta.Set {
		m := in.Meta.Value
		if in.Meta.Null {
			m = json.RawMessage("null")
		}
		if u, err = s.cfg.Tenancy.UpdateUser(ctx, account, u.ID, keyward.UserUpdate{Meta: &m}); err != nil {
			return nil, err
		}
	}
	if in.Ratelimits != nil {
		if err := s.setIdentityLimits(ctx, account, u.ID, limits); err != nil {
			return nil, err
		}
	}
	return s.identityAnswer(ctx, account, u)
}

// setIdentityLimits replaces the shared rate limits of the user, keeping
// its shared credits; with neither left, its shared limits are removed (a
// user without any is left as it is).
func (s *Server) setIdentityLimits(ctx context.Context, account, userID string, limits []keyward.RateLimit) error {
	m, err := s.cfg.Keys.Meter(ctx, account, userID)
	switch {
	case keyward.ErrorCode(err) == keyward.ENOTFOUND:
		m = &keyward.Meter{}
	case err != nil:
		return err
	}
	if len(limits) == 0 && m.Credits == nil {
		if m.ID == "" {
			return nil
		}
		return s.cfg.Keys.DeleteMeter(ctx, account, userID)
	}
	_, err = s.cfg.Keys.SetMeter(ctx, account, userID, keyward.MeterSet{RateLimits: limits, Credits: m.Credits})
	return err
}

// deleteIdentity ends the identity, not its keys, as in Unkey: the user
// loses its external id, its meta and its shared limits and credits (root
// only, when it has some), and its keys keep working without an identity.
func (s *Server) deleteIdentity(ctx context.Context, r *http.Request, in *identityRequest) (empty, error) {
	account, u, err := s.identity(ctx, r, in.Identity)
	if err != nil {
		return empty{}, err
	}
	switch _, err := s.cfg.Keys.Meter(ctx, account, u.ID); {
	case err == nil:
		if err := s.cfg.Keys.DeleteMeter(ctx, account, u.ID); err != nil {
			return empty{}, err
		}
	case keyward.ErrorCode(err) != keyward.ENOTFOUND:
		return empty{}, err
	}
	none := ""
	up := keyward.UserUpdate{ExternalID: &none}
	if u.Meta != nil {
		// Only root changes meta: an account admin's deletion of an
		// identity with meta is refused, changing nothing.
		null := json.RawMessage("null")
		up.Meta = &null
	}
	_, err = s.cfg.Tenancy.UpdateUser(ctx, account, u.ID, up)
	return empty{}, err
}
