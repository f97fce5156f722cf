package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/keyward/keyward"
)

// usage is GET /v1/usage?granularity=minute|hour|day[&key_id=..&account_id=..&user_id=..&since=..&until=..].
func (s *Server) usage(ctx context.Context, r *http.Request, _ noBody) (*keyward.UsageReport, error) {
	q, err := query(r, "granularity", "key_id", "account_id", "user_id", "since", "until")
	if err != nil {
		return nil, err
	}
	f := keyward.UsageFilter{KeyID: q.Get("key_id"), AccountID: q.Get("account_id"), UserID: q.Get("user_id"), Granularity: keyward.UsageGranularity(q.Get("granularity"))}
	if f.Granularity == "" {
		f.Granularity = keyward.UsageDay
	}
	if err := timeParams(q, map[string]*time.Time{"since": &f.Since, "until": &f.Until}); err != nil {
		return nil, err
	}
	return s.svc.Audit.Usage(ctx, f)
}
