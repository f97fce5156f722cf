package httpapi

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

func (s *Server) createIPRule(ctx context.Context, _ *http.Request, in keyward.IPRuleCreate) (*keyward.IPRule, error) {
	return s.svc.Abuse.CreateIPRule(ctx, in)
}

// listIPRules is GET /v1/ip-rules[?account_id=..|?scope=global].
func (s *Server) listIPRules(ctx context.Context, r *http.Request, _ noBody) (*keyward.IPRuleList, error) {
	q, err := query(r, "account_id", "scope", "after", "limit")
	if err != nil {
		return nil, err
	}
	p, err := pageOf(q)
	if err != nil {
		return nil, err
	}
	f := keyward.IPRuleFilter{AccountID: q.Get("account_id")}
	switch q.Get("scope") {
	case "":
	case "global":
		f.Global = true
	default:
		return nil, keyward.Errorf(keyward.EINVALID, "scope %q: the only scope is global (use account_id for an account's rules)", q.Get("scope"))
	}
	l, err := s.svc.Abuse.IPRules(ctx, f, p)
	if l != nil && l.Items == nil {
		l.Items = []*keyward.IPRule{}
	}
	return l, err
}

func (s *Server) deleteIPRule(ctx context.Context, r *http.Request, _ noBody) (*struct{}, error) {
	return nil, s.svc.Abuse.DeleteIPRule(ctx, r.PathValue("id"))
}
