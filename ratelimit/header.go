package ratelimit

import (
	"net/http"
	"strconv"
	"time"
)

// Header names of draft-ietf-httpapi-ratelimit-headers and RFC 9110.
const (
	HeaderPolicy     = "RateLimit-Policy"
	HeaderRateLimit  = "RateLimit"
	HeaderRetryAfter = "Retry-After"
)

// SetHeaders sets the RateLimit-Policy and RateLimit fields for ds and, if
// one of them denies, Retry-After. It sets nothing for an empty ds.
func SetHeaders(h http.Header, ds []Decision) {
	if len(ds) == 0 {
		return
	}
	h.Set(HeaderPolicy, string(AppendPolicy(nil, ds)))
	h.Set(HeaderRateLimit, string(AppendRateLimit(nil, ds)))
	if s, ok := RetryAfter(ds); ok {
		h.Set(HeaderRetryAfter, s)
	}
}

// AppendPolicy appends the RateLimit-Policy field value for ds to dst: a
// structured-field List with one Item per limit, the limit's name as a
// String with q (the limit) and w (the window in seconds, rounded up):
//
//	"per-minute";q=100;w=60, "per-day";q=10000;w=86400
func AppendPolicy(dst []byte, ds []Decision) []byte {
	for i, d := range ds {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = appendString(dst, d.Limit.Name)
		dst = append(dst, ";q="...)
		dst = strconv.AppendInt(dst, sfInt(d.Limit.Limit), 10)
		dst = append(dst, ";w="...)
		dst = strconv.AppendInt(dst, sfInt(seconds(time.Duration(d.Limit.Window))), 10)
	}
	return dst
}

// AppendRateLimit appends the RateLimit field value for ds to dst: one Item
// per limit, the name with r (Remaining) and t (ResetAfter in seconds,
// rounded up):
//
//	"per-minute";r=42;t=17, "per-day";r=9000;t=8640
func AppendRateLimit(dst []byte, ds []Decision) []byte {
	for i, d := range ds {
		if i > 0 {
			dst = append(dst, ", "...)
		}
		dst = appendString(dst, d.Limit.Name)
		dst = append(dst, ";r="...)
		dst = strconv.AppendInt(dst, sfInt(d.Remaining), 10)
		dst = append(dst, ";t="...)
		dst = strconv.AppendInt(dst, sfInt(seconds(d.ResetAfter)), 10)
	}
	return dst
}

// RetryAfter returns the Retry-After value for ds, the longest RetryAfter of
// the limits that deny in whole seconds, rounded up and at least 1; false if
// none denies.
func RetryAfter(ds []Decision) (string, bool) {
	var wait time.Duration
	denied := false
	for _, d := range ds {
		if !d.Allowed {
			denied = true
			wait = max(wait, d.RetryAfter)
		}
	}
	if !denied {
		return "", false
	}
	return strconv.FormatInt(max(seconds(wait), 1), 10), true
}

// seconds rounds d up to whole seconds, never below 0. The fields are
// integers, and rounding down would invite a retry that is still too early.
func seconds(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Second - 1) / time.Second)
}

// sfInt clamps v to what a structured-field Integer holds (15 digits) and
// to the non-negative values the fields allow.
func sfInt(v int64) int64 { return min(max(v, 0), 999_999_999_999_999) }

// appendString appends s as a structured-field String (RFC 9651 section
// 3.3.3): quoted, with '"' and '\' escaped. Bytes a String cannot hold
// (controls and non-ASCII; a validated name has none) become '?', so the
// field stays well formed whatever the name.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c < 0x20 || c > 0x7e:
			dst = append(dst, '?')
		default:
			dst = append(dst, c)
		}
	}
	return append(dst, '"')
}
