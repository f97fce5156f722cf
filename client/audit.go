package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/keyward/keyward"
)

var _ keyward.AuditService = (*Client)(nil)

// AuditEntries returns one page of the audit log matching f, oldest first.
func (c *Client) AuditEntries(ctx context.Context, f keyward.AuditFilter, p keyward.Page) (*keyward.AuditList, error) {
	q := pageQuery(p)
	setIf(q, "actor_key_id", f.ActorKeyID)
	setIf(q, "action", f.Action)
	setIf(q, "target_id", f.TargetID)
	setIf(q, "account_id", f.AccountID)
	setTime(q, "since", f.Since)
	setTime(q, "until", f.Until)
	return send[keyward.AuditList](ctx, c, http.MethodGet, "/v1/audit", q, nil)
}

// VerifyAudit checks the audit log's chain on the server (root only), and
// with expect that the log still reaches that checkpoint.
func (c *Client) VerifyAudit(ctx context.Context, expect *keyward.AuditCheckpoint) (*keyward.AuditVerification, error) {
	q := url.Values{}
	if expect != nil {
		q.Set("expect", expect.String())
	}
	return send[keyward.AuditVerification](ctx, c, http.MethodGet, "/v1/audit/verify", q, nil)
}

// AuditHead returns a signed checkpoint of the audit chain's newest entry
// (root only).
func (c *Client) AuditHead(ctx context.Context) (*keyward.AuditCheckpoint, error) {
	return send[keyward.AuditCheckpoint](ctx, c, http.MethodGet, "/v1/audit/head", nil, nil)
}
