package sqlite

import (
	"context"
	"fmt"
)

// LimitPages caps the database at its current size plus extra pages, on
// the writer connection (PRAGMA max_page_count), so that writes beyond it
// fail with SQLITE_FULL as on a full disk; a large extra lifts the cap.
func (s *Store) LimitPages(ctx context.Context, extra int) error {
	var pages int
	if err := s.Writer().QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages); err != nil {
		return err
	}
	_, err := s.Writer().ExecContext(ctx, fmt.Sprintf("PRAGMA max_page_count = %d", pages+extra))
	return err
}
