package keyward_test

import (
	"testing"
	"time"

	"github.com/keyward/keyward"
)

func utc(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// TestMonthlyRefill checks the calendar of a monthly refill: midnight UTC
// of its day, the month's last day when the month is shorter, once per
// month however late the credits are read.
func TestMonthlyRefill(t *testing.T) {
	for _, c := range []struct {
		day        int
		refilledAt string // when the credits were set or last refilled
		now        string
		refilled   string // the new RefilledAt, empty for no refill
	}{
		{15, "2026-01-14T10:00:00Z", "2026-01-14T23:59:59Z", ""},
		{15, "2026-01-14T10:00:00Z", "2026-01-15T00:00:00Z", "2026-01-15T00:00:00Z"},
		// Set on the day itself: the next refill is next month's.
		{15, "2026-01-15T10:00:00Z", "2026-02-14T23:00:00Z", ""},
		{15, "2026-01-15T10:00:00Z", "2026-02-15T00:00:01Z", "2026-02-15T00:00:00Z"},
		// Read months late: one refill, at the latest day passed.
		{15, "2026-01-15T00:00:00Z", "2026-05-20T08:00:00Z", "2026-05-15T00:00:00Z"},
		// Day 31 in February (28 days in 2026, 29 in 2028), April (30) and across a year.
		{31, "2026-01-31T00:00:00Z", "2026-02-27T23:59:59Z", ""},
		{31, "2026-01-31T00:00:00Z", "2026-02-28T00:00:00Z", "2026-02-28T00:00:00Z"},
		{31, "2028-01-31T00:00:00Z", "2028-02-28T12:00:00Z", ""},
		{31, "2028-01-31T00:00:00Z", "2028-02-29T00:00:00Z", "2028-02-29T00:00:00Z"},
		{31, "2026-02-28T00:00:00Z", "2026-03-30T23:00:00Z", ""},
		{31, "2026-02-28T00:00:00Z", "2026-03-31T00:00:00Z", "2026-03-31T00:00:00Z"},
		{31, "2026-03-31T00:00:00Z", "2026-04-30T00:00:00Z", "2026-04-30T00:00:00Z"},
		{1, "2026-12-20T00:00:00Z", "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z"},
		{1, "2026-12-20T00:00:00Z", "2026-12-31T23:59:59Z", ""},
		// A clock that went backwards refills nothing.
		{1, "2026-03-02T00:00:00Z", "2026-02-27T00:00:00Z", ""},
	} {
		in := keyward.Credits{Remaining: 2, RefilledAt: utc(c.refilledAt), Refill: &keyward.CreditRefill{Amount: 10, Day: c.day}}
		if err := in.Validate(); err != nil {
			t.Fatal(err)
		}
		got := in.At(utc(c.now))
		want, wantAt := int64(2), utc(c.refilledAt)
		if c.refilled != "" {
			want, wantAt = 10, utc(c.refilled)
		}
		if got.Remaining != want || !got.RefilledAt.Equal(wantAt) {
			t.Errorf("day %d, refilled %s, at %s: %d refilled %v, want %d refilled %v", c.day, c.refilledAt, c.now, got.Remaining, got.RefilledAt, want, wantAt)
		}
		// A period refills once: reading again changes nothing.
		if again := got.At(utc(c.now)); again != got {
			t.Errorf("day %d at %s: a second read refilled again: %+v", c.day, c.now, again)
		}
	}
}

func TestRefillValidate(t *testing.T) {
	for _, r := range []keyward.CreditRefill{
		{Amount: 1, Day: 0},
		{Amount: 1, Day: 32},
		{Amount: 1, Day: -1},
		{Amount: 1, Day: 15, Interval: keyward.Duration(24 * time.Hour)},
		{Amount: 0, Day: 15},
	} {
		c := keyward.Credits{Refill: &r}
		if keyward.ErrorCode(c.Validate()) != keyward.EINVALID {
			t.Errorf("%+v: %v, want EINVALID", r, c.Validate())
		}
	}
	for _, r := range []keyward.CreditRefill{{Amount: 1, Day: 1}, {Amount: 1, Day: 31}, {Amount: 1, Interval: keyward.Duration(time.Hour)}} {
		c := keyward.Credits{Refill: &r}
		if err := c.Validate(); err != nil {
			t.Errorf("%+v: %v", r, err)
		}
	}
}
