package unkeyv2

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

// An Unkey API is a keyward account: its apiId is the account's id, and
// its keys are the account's (docs/unkey.md).

type createAPIRequest struct {
	Name string `json:"name"`
}

type createAPIData struct {
	APIID string `json:"apiId"`
}

func (s *Server) createAPI(ctx context.Context, _ *http.Request, in *createAPIRequest) (*createAPIData, error) {
	if in.Name == "" {
		return nil, badField("name", "is required")
	}
	a, err := s.cfg.Tenancy.CreateAccount(ctx, keyward.AccountCreate{Name: in.Name})
	if err != nil {
		return nil, err
	}
	return &createAPIData{APIID: a.ID}, nil
}

type apiRequest struct {
	APIID string `json:"apiId"`
}

type apiData struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

func (s *Server) getAPI(ctx context.Context, _ *http.Request, in *apiRequest) (*apiData, error) {
	if in.APIID == "" {
		return nil, badField("apiId", "is required")
	}
	a, err := s.cfg.Tenancy.Account(ctx, in.APIID)
	if err != nil {
		return nil, err
	}
	return &apiData{ID: a.ID, Name: a.Name}, nil
}

func (s *Server) deleteAPI(ctx context.Context, _ *http.Request, in *apiRequest) (empty, error) {
	if in.APIID == "" {
		return empty{}, badField("apiId", "is required")
	}
	return empty{}, s.cfg.Tenancy.DeleteAccount(ctx, in.APIID)
}

type listKeysRequest struct {
	APIID               string `json:"apiId"`
	Limit               *int   `json:"limit"`
	Cursor              string `json:"cursor"`
	ExternalID          string `json:"externalId"`
	Decrypt             bool   `json:"decrypt"`
	RevalidateKeysCache bool   `json:"revalidateKeysCache"`
}

// maxListLimit is the largest page Unkey's listKeys answers.
const maxListLimit = 100

// listKeys lists an account's user keys, or those of its user with an
// external id. revalidateKeysCache is accepted: keyward's caches never answer a
// key's state from before a change.
func (s *Server) listKeys(ctx context.Context, _ *http.Request, body []byte) (any, *pagination, error) {
	var in listKeysRequest
	if err := decode(body, &in); err != nil {
		return nil, nil, err
	}
	if in.APIID == "" {
		return nil, nil, badField("apiId", "is required")
	}
	if in.Decrypt {
		return nil, nil, errDecrypt
	}
	page := keyward.Page{After: in.Cursor, Limit: maxListLimit}
	if in.Limit != nil {
		if *in.Limit < 1 || *in.Limit > maxListLimit {
			return nil, nil, badField("limit", "must be between 1 and %d", maxListLimit)
		}
		page.Limit = *in.Limit
	}
	// The API's keys are the account's user keys: its admin keys (a
	// verifier's, say) are keyward's own, not the API's.
	filter := keyward.KeyFilter{AccountID: in.APIID, Role: keyward.RoleUser}
	if in.ExternalID != "" {
		u, err := s.cfg.Tenancy.UserByExternalID(ctx, in.APIID, in.ExternalID)
		if keyward.ErrorCode(err) == keyward.ENOTFOUND {
			// No such identity: no keys, if the account is the caller's
			// to read (else its own not found).
			if _, err := s.cfg.Tenancy.Account(ctx, in.APIID); err != nil {
				return nil, nil, err
			}
			return []*keyData{}, &pagination{}, nil
		}
		if err != nil {
			return nil, nil, err
		}
		filter.UserID = u.ID
	}
	list, err := s.cfg.Keys.Keys(ctx, filter, page)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*keyData, len(list.Items))
	for i, k := range list.Items {
		out[i] = keyDataOf(k, k.Credits)
	}
	return out, &pagination{Cursor: list.Next, HasMore: list.Next != ""}, nil
}

// errDecrypt refuses decrypt: keyward keeps no key it could reveal.
var errDecrypt = badField("decrypt", "keyward stores only a hash of each key and cannot reveal it; send false or leave it out")
