package admin

import (
	"context"

	"github.com/keyward/keyward"
)

var _ keyward.UsageService = (*Service)(nil)

// Usage reports verification outcomes per key, code and period: all for
// root, its own account's keys for an account admin; a user may not.
// Failures without a key (MALFORMED, NOT_FOUND) have no account: only root
// sees them.
func (s *Service) Usage(ctx context.Context, f keyward.UsageFilter) (*keyward.UsageReport, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := scopeToAccount(id, &f.AccountID, "read usage"); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	rows, err := s.store.Usage(ctx, f)
	if err != nil {
		return nil, err
	}
	if rows == nil {
		rows = []keyward.UsageRow{}
	}
	return &keyward.UsageReport{Granularity: f.Granularity, Items: rows}, nil
}
