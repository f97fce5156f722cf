package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/keyward/keyward"
)

// listAudit is GET /v1/audit[?actor_key_id=..&action=..&target_id=..&account_id=..&since=..&until=..].
func (s *Server) listAudit(ctx context.Context, r *http.Request, _ noBody) (*keyward.AuditList, error) {
	q, err := query(r, "actor_key_id", "action", "target_id", "account_id", "since", "until", "after", "limit")
	if err != nil {
		return nil, err
	}
	p, err := pageOf(q)
	if err != nil {
		return nil, err
	}
	f := keyward.AuditFilter{ActorKeyID: q.Get("actor_key_id"), Action: q.Get("action"), TargetID: q.Get("target_id"), AccountID: q.Get("account_id")}
	if err := timeParams(q, map[string]*time.Time{"since": &f.Since, "until": &f.Until}); err != nil {
		return nil, err
	}
	l, err := s.svc.Audit.AuditEntries(ctx, f, p)
	if l != nil && l.Items == nil {
		l.Items = []*keyward.AuditEntry{}
	}
	return l, err
}

// verifyAudit is GET /v1/audit/verify[?expect=SEQ:HASH].
func (s *Server) verifyAudit(ctx context.Context, r *http.Request, _ noBody) (*keyward.AuditVerification, error) {
	q, err := query(r, "expect")
	if err != nil {
		return nil, err
	}
	var expect *keyward.AuditCheckpoint
	if v := q.Get("expect"); v != "" {
		if expect, err = keyward.ParseAuditCheckpoint(v); err != nil {
			return nil, err
		}
	}
	return s.svc.Audit.VerifyAudit(ctx, expect)
}

// auditHead is GET /v1/audit/head.
func (s *Server) auditHead(ctx context.Context, _ *http.Request, _ noBody) (*keyward.AuditCheckpoint, error) {
	return s.svc.Audit.AuditHead(ctx)
}
