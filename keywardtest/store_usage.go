package keywardtest

import (
	"slices"
	"testing"
	"time"

	"github.com/keyward/keyward"
)

// usageDay is the UTC day the usage tests count in.
var usageDay = time.Date(2026, 3, 14, 0, 0, 0, 0, time.UTC)

// minuteRow is a row for AddUsage at usageDay plus at.
func minuteRow(at time.Duration, keyID, accountID string, code keyward.Decision, n int64) keyward.UsageRow {
	return keyward.UsageRow{Start: usageDay.Add(at), Granularity: keyward.UsageMinute,
		KeyID: keyID, AccountID: accountID, Code: code, Count: n}
}

// usage lists the rows of f, failing the test on an error.
func (f *fixture) usage(uf keyward.UsageFilter) []keyward.UsageRow {
	f.t.Helper()
	rows, err := f.s.Usage(f.ctx, uf)
	must(f.t, err)
	return rows
}

// wantUsage fails unless the rows of uf are want, in order.
func (f *fixture) wantUsage(uf keyward.UsageFilter, want ...keyward.UsageRow) {
	f.t.Helper()
	got := f.usage(uf)
	if !slices.EqualFunc(got, want, func(a, b keyward.UsageRow) bool { return a.Start.Equal(b.Start) && a == b }) {
		f.t.Fatalf("Usage(%+v) =\n%v\nwant\n%v", uf, got, want)
	}
}

// usageTotal sums the counts of granularity g.
func (f *fixture) usageTotal(g keyward.UsageGranularity) int64 {
	f.t.Helper()
	var n int64
	for _, r := range f.usage(keyward.UsageFilter{Granularity: g}) {
		n += r.Count
	}
	return n
}

func testUsage(t *testing.T, open func(*testing.T) keyward.Store) {
	minute := keyward.UsageFilter{Granularity: keyward.UsageMinute}
	hour := keyward.UsageFilter{Granularity: keyward.UsageHour}
	day := keyward.UsageFilter{Granularity: keyward.UsageDay}
	valid, notFound := keyward.DecisionValid, keyward.DecisionNotFound

	t.Run("AddUsage adds to minute rows", func(t *testing.T) {
		f := newFixture(t, open)
		must(t, f.s.AddUsage(f.ctx, nil))
		must(t, f.s.AddUsage(f.ctx, []keyward.UsageRow{
			minuteRow(10*time.Minute+5*time.Second, "key_a", "acc_1", valid, 3),
			minuteRow(10*time.Minute+50*time.Second, "key_a", "acc_1", valid, 4), // same minute row
			minuteRow(10*time.Minute, "", "", notFound, 1),
			{Start: usageDay.Add(9 * time.Minute), KeyID: "key_b", AccountID: "acc_1", Code: valid, Count: 2},
		}))
		must(t, f.s.AddUsage(f.ctx, []keyward.UsageRow{minuteRow(10*time.Minute, "key_a", "acc_1", valid, 10)}))
		f.wantUsage(minute,
			minuteRow(9*time.Minute, "key_b", "acc_1", valid, 2),
			minuteRow(10*time.Minute, "", "", notFound, 1),
			minuteRow(10*time.Minute, "key_a", "acc_1", valid, 17),
		)
	})

	t.Run("a user's rows are those of its keys", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		ann, bob := f.user(a.ID, "ann"), f.user(a.ID, "bob")
		k1, k2, kb := f.userKey(a.ID, ann.ID), f.userKey(a.ID, ann.ID), f.userKey(a.ID, bob.ID)
		rows := []keyward.UsageRow{minuteRow(time.Minute, k1.ID, a.ID, valid, 1), minuteRow(time.Minute, k2.ID, a.ID, valid, 2), minuteRow(time.Minute, kb.ID, a.ID, valid, 4)}
		must(t, f.s.AddUsage(f.ctx, rows))
		ofAnn := []keyward.UsageRow{rows[0], rows[1]}
		if k1.ID > k2.ID {
			ofAnn = []keyward.UsageRow{rows[1], rows[0]}
		}
		f.wantUsage(keyward.UsageFilter{Granularity: keyward.UsageMinute, UserID: ann.ID}, ofAnn...)
		f.wantUsage(keyward.UsageFilter{Granularity: keyward.UsageMinute, UserID: bob.ID, AccountID: a.ID}, rows[2])
		f.wantUsage(keyward.UsageFilter{Granularity: keyward.UsageMinute, UserID: bob.ID, AccountID: "acc_other"})
	})

	t.Run("AddUsage refuses invalid rows and adds none", func(t *testing.T) {
		f := newFixture(t, open)
		good := minuteRow(0, "key_a", "acc_1", valid, 1)
		for _, bad := range []keyward.UsageRow{
			{Start: usageDay, Granularity: keyward.UsageHour, Code: valid, Count: 1},
			{Start: usageDay, Code: valid},
			{Start: usageDay, Code: valid, Count: -1},
			{Start: usageDay, Count: 1},
			{Code: valid, Count: 1},
		} {
			wantCode(t, f.s.AddUsage(f.ctx, []keyward.UsageRow{good, bad}), keyward.EINVALID)
		}
		f.wantUsage(minute)
	})

	t.Run("Usage filters", func(t *testing.T) {
		f := newFixture(t, open)
		rows := []keyward.UsageRow{
			minuteRow(1*time.Minute, "key_a", "acc_1", valid, 1),
			minuteRow(1*time.Minute, "key_a", "acc_1", keyward.DecisionRateLimited, 2),
			minuteRow(2*time.Minute, "key_b", "acc_1", valid, 3),
			minuteRow(3*time.Minute, "key_c", "acc_2", valid, 4),
			minuteRow(3*time.Minute, "", "", keyward.DecisionMalformed, 5),
		}
		must(t, f.s.AddUsage(f.ctx, rows))
		f.wantUsage(minute, rows[1], rows[0], rows[2], rows[4], rows[3]) // by start, key, code
		f.wantUsage(keyward.UsageFilter{Granularity: keyward.UsageMinute, KeyID: "key_a"}, rows[1], rows[0])
		f.wantUsage(keyward.UsageFilter{Granularity: keyward.UsageMinute, AccountID: "acc_1"}, rows[1], rows[0], rows[2])
		f.wantUsage(keyward.UsageFilter{Granularity: keyward.UsageMinute, AccountID: "acc_1", KeyID: "key_c"})
		f.wantUsage(keyward.UsageFilter{Granularity: keyward.UsageMinute,
			Since: usageDay.Add(2 * time.Minute), Until: usageDay.Add(3 * time.Minute)}, rows[2])
		f.wantUsage(keyward.UsageFilter{Granularity: keyward.UsageMinute, Since: usageDay.Add(2 * time.Minute)},
			rows[2], rows[4], rows[3])
		f.wantUsage(keyward.UsageFilter{Granularity: keyward.UsageMinute, Until: usageDay.Add(2 * time.Minute)},
			rows[1], rows[0])
		f.wantUsage(hour)
		for _, bad := range []keyward.UsageFilter{
			{},
			{Granularity: "week"},
			{Granularity: keyward.UsageHour, Since: usageDay, Until: usageDay.Add(-time.Hour)},
		} {
			_, err := f.s.Usage(f.ctx, bad)
			wantCode(t, err, keyward.EINVALID)
		}
	})

	t.Run("RollUpUsage sums complete hours and days once", func(t *testing.T) {
		f := newFixture(t, open)
		must(t, f.s.AddUsage(f.ctx, []keyward.UsageRow{
			minuteRow(10*time.Hour+1*time.Minute, "key_a", "acc_1", valid, 1),
			minuteRow(10*time.Hour+59*time.Minute, "key_a", "acc_1", valid, 2),
			minuteRow(10*time.Hour+30*time.Minute, "", "", notFound, 7),
			minuteRow(23*time.Hour+59*time.Minute, "key_a", "acc_1", valid, 4),
			minuteRow(24*time.Hour+5*time.Minute, "key_a", "acc_1", valid, 8),   // next day, complete hour
			minuteRow(25*time.Hour+10*time.Minute, "key_a", "acc_1", valid, 16), // incomplete hour
		}))
		before := usageDay.Add(25*time.Hour + 30*time.Minute)
		wantHours := []keyward.UsageRow{
			{Start: usageDay.Add(10 * time.Hour), Granularity: keyward.UsageHour, Code: notFound, Count: 7},
			{Start: usageDay.Add(10 * time.Hour), Granularity: keyward.UsageHour, KeyID: "key_a", AccountID: "acc_1", Code: valid, Count: 3},
			{Start: usageDay.Add(23 * time.Hour), Granularity: keyward.UsageHour, KeyID: "key_a", AccountID: "acc_1", Code: valid, Count: 4},
			{Start: usageDay.Add(24 * time.Hour), Granularity: keyward.UsageHour, KeyID: "key_a", AccountID: "acc_1", Code: valid, Count: 8},
		}
		wantDays := []keyward.UsageRow{
			{Start: usageDay, Granularity: keyward.UsageDay, Code: notFound, Count: 7},
			{Start: usageDay, Granularity: keyward.UsageDay, KeyID: "key_a", AccountID: "acc_1", Code: valid, Count: 7},
		}
		for range 2 { // the second roll-up changes nothing
			must(t, f.s.RollUpUsage(f.ctx, before))
			f.wantUsage(hour, wantHours...)
			f.wantUsage(day, wantDays...)
			if got := f.usageTotal(keyward.UsageMinute); got != 38 {
				t.Fatalf("minute total after roll-up = %d, want 38: minute rows are kept", got)
			}
		}

		// A late flush into a rolled-up minute is added by the next roll-up.
		must(t, f.s.AddUsage(f.ctx, []keyward.UsageRow{minuteRow(10*time.Hour+1*time.Minute, "key_a", "acc_1", valid, 100)}))
		must(t, f.s.RollUpUsage(f.ctx, before))
		wantHours[1].Count += 100
		wantDays[1].Count += 100
		f.wantUsage(hour, wantHours...)
		f.wantUsage(day, wantDays...)

		// Once the next day is complete, its hours roll up too.
		must(t, f.s.RollUpUsage(f.ctx, usageDay.Add(48*time.Hour)))
		must(t, f.s.RollUpUsage(f.ctx, usageDay.Add(48*time.Hour)))
		if m, h, d := f.usageTotal(keyward.UsageMinute), f.usageTotal(keyward.UsageHour), f.usageTotal(keyward.UsageDay); m != 138 || h != 138 || d != 138 {
			t.Fatalf("totals minute %d, hour %d, day %d: want 138 each", m, h, d)
		}
	})

	t.Run("DeleteUsageBefore deletes older rows of one granularity", func(t *testing.T) {
		f := newFixture(t, open)
		must(t, f.s.AddUsage(f.ctx, []keyward.UsageRow{
			minuteRow(1*time.Hour, "key_a", "acc_1", valid, 1),
			minuteRow(2*time.Hour, "key_a", "acc_1", valid, 2),
			minuteRow(3*time.Hour, "key_a", "acc_1", valid, 4),
		}))
		must(t, f.s.RollUpUsage(f.ctx, usageDay.Add(24*time.Hour)))
		n, err := f.s.DeleteUsageBefore(f.ctx, keyward.UsageMinute, usageDay.Add(2*time.Hour))
		must(t, err)
		if n != 1 {
			t.Fatalf("DeleteUsageBefore deleted %d minute rows, want 1", n)
		}
		f.wantUsage(minute, minuteRow(2*time.Hour, "key_a", "acc_1", valid, 2), minuteRow(3*time.Hour, "key_a", "acc_1", valid, 4))
		if got := f.usageTotal(keyward.UsageHour); got != 7 {
			t.Fatalf("hour total after deleting minutes = %d, want 7", got)
		}
		n, err = f.s.DeleteUsageBefore(f.ctx, keyward.UsageHour, usageDay.Add(24*time.Hour))
		must(t, err)
		if n != 3 {
			t.Fatalf("DeleteUsageBefore deleted %d hour rows, want 3", n)
		}
		if got := f.usageTotal(keyward.UsageDay); got != 7 {
			t.Fatalf("day total after deleting hours = %d, want 7", got)
		}
		_, err = f.s.DeleteUsageBefore(f.ctx, "week", usageDay)
		wantCode(t, err, keyward.EINVALID)
	})
}
