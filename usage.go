package keyward

import (
	"context"
	"fmt"
	"time"
)

// UsageGranularity is the length of the period a UsageRow counts.
type UsageGranularity string

// The granularities of usage rows. Counts are written per minute and rolled
// up to hours and days (Store.RollUpUsage).
const (
	UsageMinute UsageGranularity = "minute"
	UsageHour   UsageGranularity = "hour"
	UsageDay    UsageGranularity = "day"
)

// UsageGranularities lists the granularities from finest to coarsest.
var UsageGranularities = []UsageGranularity{UsageMinute, UsageHour, UsageDay}

// MaxUsageRows bounds the rows one Store.Usage call returns.
const MaxUsageRows = 100_000

// Valid reports whether g is one of the known granularities.
func (g UsageGranularity) Valid() bool {
	return g == UsageMinute || g == UsageHour || g == UsageDay
}

// Validate returns EINVALID unless g is one of the known granularities.
func (g UsageGranularity) Validate() error {
	if !g.Valid() {
		return Errorf(EINVALID, "usage granularity %q is not one of minute, hour, day", g)
	}
	return nil
}

// Duration returns the length of a period of g: a minute, an hour or 24
// hours (usage days are UTC days). It is 0 for an unknown granularity.
func (g UsageGranularity) Duration() time.Duration {
	switch g {
	case UsageMinute:
		return time.Minute
	case UsageHour:
		return time.Hour
	case UsageDay:
		return 24 * time.Hour
	}
	return 0
}

// Truncate returns the start (in UTC) of the period of g that holds t. An
// unknown granularity returns t in UTC unchanged.
func (g UsageGranularity) Truncate(t time.Time) time.Time {
	t = t.UTC()
	if d := g.Duration(); d > 0 {
		return t.Truncate(d) // UTC has no offset: whole minutes, hours and days
	}
	return t
}

// UsageRow counts the verifications of one outcome (Code) of one key in one
// period. Failures without a key (MALFORMED, NOT_FOUND) have KeyID and
// AccountID "".
type UsageRow struct {
	// Start is the beginning of the period, in UTC.
	Start       time.Time        `json:"start"`
	Granularity UsageGranularity `json:"granularity"`
	KeyID       string           `json:"key_id"`
	AccountID   string           `json:"account_id"`
	Code        Decision         `json:"code"`
	Count       int64            `json:"count"`
}

// ValidateAdd returns EINVALID unless r can be given to Store.AddUsage: a
// minute row (or one without a granularity) with a start, a code and a
// positive count.
func (r UsageRow) ValidateAdd() error {
	switch {
	case r.Granularity != "" && r.Granularity != UsageMinute:
		return Errorf(EINVALID, "usage rows are added per minute, not per %q", r.Granularity)
	case r.Start.IsZero():
		return Errorf(EINVALID, "usage row without a start")
	case r.Code == "":
		return Errorf(EINVALID, "usage row without a code")
	case r.Count <= 0:
		return Errorf(EINVALID, "usage row count %d is not positive", r.Count)
	}
	return nil
}

// UsageFilter selects the rows of one granularity of Store.Usage. Empty
// fields match everything.
type UsageFilter struct {
	KeyID     string `json:"key_id,omitempty"`
	AccountID string `json:"account_id,omitempty"`
	// UserID selects the rows of the user's keys (those that exist: the
	// usage of a deleted key has no user).
	UserID string `json:"user_id,omitempty"`
	// Since is the earliest start included; zero means no bound.
	Since time.Time `json:"since,omitzero"`
	// Until is the first start excluded; zero means no bound.
	Until time.Time `json:"until,omitzero"`
	// Granularity is the granularity of the rows listed; it is required.
	Granularity UsageGranularity `json:"granularity"`
}

// Validate returns EINVALID for an unknown granularity or a range that
// ends before it starts.
func (f UsageFilter) Validate() error {
	if err := f.Granularity.Validate(); err != nil {
		return err
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return Errorf(EINVALID, "usage range ends (%s) before it starts (%s)",
			f.Until.UTC().Format(time.RFC3339), f.Since.UTC().Format(time.RFC3339))
	}
	return nil
}

// ErrTooManyUsageRows returns the EINVALID error of a Store.Usage call that
// matches more than MaxUsageRows rows.
func ErrTooManyUsageRows(f UsageFilter) error {
	return Errorf(EINVALID, "more than %d %s usage rows match: narrow the time range or choose a coarser granularity",
		MaxUsageRows, f.Granularity)
}

// String describes r for logs and test failures.
func (r UsageRow) String() string {
	return fmt.Sprintf("%s %s key=%q account=%q %s=%d", r.Granularity, r.Start.UTC().Format(time.RFC3339),
		r.KeyID, r.AccountID, r.Code, r.Count)
}

// UsageReport is one granularity's usage rows, ordered by start, key and
// code.
type UsageReport struct {
	Granularity UsageGranularity `json:"granularity"`
	Items       []UsageRow       `json:"items"`
}

// UsageService reports usage for a caller (the identity in ctx): root any
// key or account, an account admin its own account's keys, a user nothing
// (EFORBIDDEN). Implemented by admin.Audit and client.Client.
type UsageService interface {
	Usage(ctx context.Context, f UsageFilter) (*UsageReport, error)
}
