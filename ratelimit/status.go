package ratelimit

import (
	"net/http"
	"time"

	"github.com/keyward/keyward"
)

// statusOf returns d in the API's shape (keyward.VerifyResult.RateLimits).
// Durations become milliseconds rounded up, like the headers' seconds, so
// that headers rendered from the status (SetStatusHeaders) equal those
// rendered from d (SetHeaders).
func statusOf(d Decision) keyward.RateLimitStatus {
	return keyward.RateLimitStatus{
		Name:         d.Limit.Name,
		Limit:        d.Limit.Limit,
		Window:       d.Limit.Window,
		Manual:       d.Limit.Manual,
		Allowed:      d.Allowed,
		Level:        d.Level,
		Remaining:    d.Remaining,
		ResetMS:      millis(d.ResetAfter),
		RetryAfterMS: millis(d.RetryAfter),
	}
}

// DecisionOf returns the Decision a status was made from (to the
// millisecond): the inverse of statusOf.
func DecisionOf(s keyward.RateLimitStatus) Decision {
	return Decision{
		Limit:      keyward.RateLimit{Name: s.Name, Limit: s.Limit, Window: s.Window, Manual: s.Manual},
		Allowed:    s.Allowed,
		Level:      s.Level,
		Remaining:  s.Remaining,
		ResetAfter: time.Duration(s.ResetMS) * time.Millisecond,
		RetryAfter: time.Duration(s.RetryAfterMS) * time.Millisecond,
	}
}

// Statuses returns each decision in the API's shape; nil for none.
func Statuses(ds []Decision) []keyward.RateLimitStatus {
	if len(ds) == 0 {
		return nil
	}
	out := make([]keyward.RateLimitStatus, len(ds))
	for i, d := range ds {
		out[i] = statusOf(d)
	}
	return out
}

// SetStatusHeaders is SetHeaders for the statuses of a verification result
// (a remote keyward's answer, or VerifyKey's): the same fields, rendered by
// the same code.
func SetStatusHeaders(h http.Header, ss []keyward.RateLimitStatus) {
	if len(ss) == 0 {
		return
	}
	var buf [4]Decision
	ds := buf[:0]
	for _, s := range ss {
		ds = append(ds, DecisionOf(s))
	}
	SetHeaders(h, ds)
}

// millis rounds d up to whole milliseconds, never below 0.
func millis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
