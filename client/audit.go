package client

import (
	"context"
	"net/http"
	"time"

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
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339))
	}
	return send[keyward.AuditList](ctx, c, http.MethodGet, "/v1/audit", q, nil)
}

// VerifyAudit checks the audit log's hash chain on the server (root only).
func (c *Client) VerifyAudit(ctx context.Context) (*keyward.AuditVerification, error) {
	return send[keyward.AuditVerification](ctx, c, http.MethodGet, "/v1/audit/verify", nil, nil)
}
