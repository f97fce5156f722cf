package ratelimit_test

import (
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/ratelimit"
)

// TestStatusHeaders: the headers rendered from the API's statuses equal
// those rendered from the decisions they came from, durations rounding up
// at every step (a retry is never invited early).
func TestStatusHeaders(t *testing.T) {
	minute := keyward.RateLimit{Name: "per-minute", Limit: 100, Window: keyward.Duration(time.Minute)}
	day := keyward.RateLimit{Name: "day", Limit: 10000, Window: keyward.Duration(24 * time.Hour)}
	for _, tc := range []struct {
		name string
		ds   []ratelimit.Decision
		want []keyward.RateLimitStatus
	}{
		{"none", nil, nil},
		{"allowed, reset rounded up to the millisecond",
			[]ratelimit.Decision{{Limit: minute, Allowed: true, Remaining: 42, ResetAfter: 16*time.Second + time.Microsecond}},
			[]keyward.RateLimitStatus{{Name: "per-minute", Limit: 100, Window: minute.Window, Allowed: true, Remaining: 42, ResetMS: 16001}}},
		{"one denies",
			[]ratelimit.Decision{
				{Limit: minute, Allowed: true, Remaining: 42, ResetAfter: 17 * time.Second},
				{Limit: day, ResetAfter: 24 * time.Hour, RetryAfter: 8640*time.Second + 1},
			},
			[]keyward.RateLimitStatus{
				{Name: "per-minute", Limit: 100, Window: minute.Window, Allowed: true, Remaining: 42, ResetMS: 17000},
				{Name: "day", Limit: 10000, Window: day.Window, ResetMS: 86_400_000, RetryAfterMS: 8_640_001},
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := ratelimit.Statuses(tc.ds)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("Statuses = %+v\nwant %+v", got, tc.want)
			}
			fromDecisions, fromStatuses := http.Header{}, http.Header{}
			ratelimit.SetHeaders(fromDecisions, tc.ds)
			ratelimit.SetStatusHeaders(fromStatuses, got)
			if !reflect.DeepEqual(fromDecisions, fromStatuses) {
				t.Errorf("headers from statuses %v, from decisions %v", fromStatuses, fromDecisions)
			}
			if len(tc.ds) > 0 && fromStatuses.Get(ratelimit.HeaderRateLimit) == "" {
				t.Errorf("no RateLimit header: %v", fromStatuses)
			}
			for i, s := range got {
				d := ratelimit.DecisionOf(s)
				if d.Limit != tc.ds[i].Limit || d.Allowed != tc.ds[i].Allowed || d.Remaining != tc.ds[i].Remaining ||
					d.ResetAfter < tc.ds[i].ResetAfter || d.ResetAfter-tc.ds[i].ResetAfter >= time.Millisecond {
					t.Errorf("DecisionOf(%+v) = %+v, want %+v to the millisecond, rounded up", s, d, tc.ds[i])
				}
			}
		})
	}
}
