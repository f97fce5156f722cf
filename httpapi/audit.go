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
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &f.Since}, {"until", &f.Until}} {
		if v := q.Get(t.name); v != "" {
			if *t.dst, err = time.Parse(time.RFC3339, v); err != nil {
				return nil, keyward.Errorf(keyward.EINVALID, "%s %q is not an RFC 3339 time such as 2026-01-02T15:04:05Z", t.name, v)
			}
		}
	}
	l, err := s.svc.AuditEntries(ctx, f, p)
	if l != nil && l.Items == nil {
		l.Items = []*keyward.AuditEntry{}
	}
	return l, err
}

func (s *Server) verifyAudit(ctx context.Context, _ *http.Request, _ noBody) (*keyward.AuditVerification, error) {
	return s.svc.VerifyAudit(ctx)
}
