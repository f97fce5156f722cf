package keyward

import (
	"slices"
	"time"
)

// RateLimit is a named limit on a key: at most Limit units of cost per
// Window, refilled smoothly (one unit every Window/Limit), with a burst of
// the whole Limit. Name identifies the limit among the key's limits and in
// the RateLimit-Policy header.
type RateLimit struct {
	Name   string   `json:"name"`
	Limit  int64    `json:"limit"`
	Window Duration `json:"window"`
	// Manual makes the limit count only against verifications that name
	// it (VerifyRequest.Limits or ManualLimits); a limit that is not
	// manual counts against every verification that names no limits.
	Manual bool `json:"manual,omitempty"`
}

// Counts reports whether a verification naming limits (VerifyRequest.Limits)
// and manual (VerifyRequest.ManualLimits) counts against l: with limits,
// those named in either; without, every limit that is not manual and the
// manual ones named in manual.
func (l RateLimit) Counts(limits, manual []string) bool {
	if len(limits) > 0 {
		return slices.Contains(limits, l.Name) || slices.Contains(manual, l.Name)
	}
	return !l.Manual || slices.Contains(manual, l.Name)
}

// Bounds of a RateLimit, checked by Validate.
const (
	MaxRateLimitName   = 64
	MinRateLimitWindow = time.Second
	MaxRateLimitWindow = 366 * 24 * time.Hour
	// MinRateLimitInterval is the shortest time in which one unit of a
	// limit refills (Window/Limit), so at most 10,000 per second: the
	// Redis engine counts in whole microseconds, and rounding an interval
	// of at least 100µs down to one keeps its error under 1%.
	MinRateLimitInterval = 100 * time.Microsecond
)

// Validate returns EINVALID, naming the field, unless the name is 1 to 64 of
// [A-Za-z0-9_.-], Limit is at least 1, Window is between a second and 366
// days, and Window/Limit is at least MinRateLimitInterval.
func (r RateLimit) Validate() error {
	if r.Name == "" || len(r.Name) > MaxRateLimitName {
		return Errorf(EINVALID, "rate limit name %q: must be 1 to %d characters", r.Name, MaxRateLimitName)
	}
	for i := 0; i < len(r.Name); i++ {
		c := r.Name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '.' || c == '-') {
			return Errorf(EINVALID, "rate limit name %q: use only letters, digits, '_', '.' and '-'", r.Name)
		}
	}
	if r.Limit < 1 {
		return Errorf(EINVALID, "rate limit %q: limit must be at least 1, got %d", r.Name, r.Limit)
	}
	w := time.Duration(r.Window)
	if w < MinRateLimitWindow || w > MaxRateLimitWindow {
		return Errorf(EINVALID, "rate limit %q: window must be between %v and %v, got %v", r.Name, MinRateLimitWindow, MaxRateLimitWindow, w)
	}
	if w/time.Duration(r.Limit) < MinRateLimitInterval {
		return Errorf(EINVALID, "rate limit %q: %d per %v is more than one per %v", r.Name, r.Limit, w, MinRateLimitInterval)
	}
	return nil
}

// ValidateRateLimits validates each limit and that no two share a name.
func ValidateRateLimits(limits []RateLimit) error {
	for i, l := range limits {
		if err := l.Validate(); err != nil {
			return err
		}
		for _, prev := range limits[:i] {
			if prev.Name == l.Name {
				return Errorf(EINVALID, "rate limit %q appears twice", l.Name)
			}
		}
	}
	return nil
}
