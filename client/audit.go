package client

import (
	"context"
	"net/http"

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

// VerifyAudit checks the audit log's hash chain on the server (root only).
func (c *Client) VerifyAudit(ctx context.Context) (*keyward.AuditVerification, error) {
	return send[keyward.AuditVerification](ctx, c, http.MethodGet, "/v1/audit/verify", nil, nil)
}
