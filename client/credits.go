package client

import (
	"context"
	"net/http"
	"net/url"
	"time"

	"github.com/keyward/keyward"
)

var (
	_ keyward.CreditService  = (*Client)(nil)
	_ keyward.AnomalyService = (*Client)(nil)
)

// Credits returns the live credits of a key.
func (c *Client) Credits(ctx context.Context, keyID string) (*keyward.Credits, error) {
	return send[keyward.Credits](ctx, c, http.MethodGet, path("/v1/keys", keyID, "credits"), nil, nil)
}

// SetCredits replaces a key's credits; nil removes them (root only).
func (c *Client) SetCredits(ctx context.Context, keyID string, cr *keyward.Credits) (*keyward.Credits, error) {
	p := path("/v1/keys", keyID, "credits")
	if cr == nil {
		return nil, c.do(ctx, http.MethodDelete, p, nil, nil, nil)
	}
	return send[keyward.Credits](ctx, c, http.MethodPut, p, nil, cr)
}

// TopUpCredits adds n credits to a key (root only).
func (c *Client) TopUpCredits(ctx context.Context, keyID string, n int64) (*keyward.Credits, error) {
	body := struct {
		Amount int64 `json:"amount"`
	}{n}
	return send[keyward.Credits](ctx, c, http.MethodPost, path("/v1/keys", keyID, "credits", "top-up"), nil, body)
}

// Anomalies returns one page of the anomalies matching f, newest first.
func (c *Client) Anomalies(ctx context.Context, f keyward.AnomalyFilter, p keyward.Page) (*keyward.AnomalyList, error) {
	q := pageQuery(p)
	setIf(q, "account_id", f.AccountID)
	setIf(q, "key_id", f.KeyID)
	setIf(q, "type", string(f.Type))
	setTime(q, "since", f.Since)
	return send[keyward.AnomalyList](ctx, c, http.MethodGet, "/v1/anomalies", q, nil)
}

func setIf(q url.Values, name, v string) {
	if v != "" {
		q.Set(name, v)
	}
}

// setTime sets q's parameter name to t in RFC 3339, unless t is zero.
func setTime(q url.Values, name string, t time.Time) {
	if !t.IsZero() {
		q.Set(name, t.UTC().Format(time.RFC3339))
	}
}
