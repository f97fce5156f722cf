package ratelimit_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/ratelimit"
)

func TestSetHeaders(t *testing.T) {
	minute := keyward.RateLimit{Name: "per-minute", Limit: 100, Window: keyward.Duration(time.Minute)}
	day := keyward.RateLimit{Name: "day", Limit: 10000, Window: keyward.Duration(24 * time.Hour)}
	odd := keyward.RateLimit{Name: `q"\`, Limit: 5, Window: keyward.Duration(1500 * time.Millisecond)}
	for _, tc := range []struct {
		name                     string
		ds                       []ratelimit.Decision
		policy, state, retryWait string
	}{
		{"none", nil, "", "", ""},
		{"allowed",
			[]ratelimit.Decision{{Limit: minute, Allowed: true, Remaining: 42, ResetAfter: 16*time.Second + time.Millisecond}},
			`"per-minute";q=100;w=60`, `"per-minute";r=42;t=17`, ""},
		{"one of two denies",
			[]ratelimit.Decision{
				{Limit: minute, Allowed: true, Remaining: 42, ResetAfter: 17 * time.Second},
				{Limit: day, Remaining: 0, ResetAfter: 24 * time.Hour, RetryAfter: 8640*time.Second + 1},
			},
			`"per-minute";q=100;w=60, "day";q=10000;w=86400`, `"per-minute";r=42;t=17, "day";r=0;t=86400`, "8641"},
		{"retry under a second rounds up to 1",
			[]ratelimit.Decision{{Limit: minute, ResetAfter: time.Minute, RetryAfter: time.Millisecond}},
			`"per-minute";q=100;w=60`, `"per-minute";r=0;t=60`, "1"},
		{"name escaped, window rounded up",
			[]ratelimit.Decision{{Limit: odd, Allowed: true, Remaining: 4, ResetAfter: 300 * time.Millisecond}},
			`"q\"\\";q=5;w=2`, `"q\"\\";r=4;t=1`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			ratelimit.SetHeaders(h, tc.ds)
			for name, want := range map[string]string{"RateLimit-Policy": tc.policy, "RateLimit": tc.state, "Retry-After": tc.retryWait} {
				if got := h.Get(name); got != want {
					t.Errorf("%s: %q, want %q", name, got, want)
				}
			}
		})
	}
}

// FuzzHeaders: whatever the decision, both fields are structured-field
// Lists that give back the name (printable ASCII), the numbers, and the
// durations rounded up to seconds; Retry-After is a positive integer exactly
// when a limit denies.
func FuzzHeaders(f *testing.F) {
	f.Add("per-minute", int64(100), int64(time.Minute), int64(42), int64(17*time.Second), int64(0), true)
	f.Add(`a"b\c`, int64(1), int64(time.Second), int64(-1), int64(-5), int64(time.Millisecond), false)
	f.Add("é\x00\x7f, x", int64(-3), int64(1), int64(1<<62), int64(1), int64(1<<62), false)
	f.Fuzz(func(t *testing.T, name string, limit, window, remaining, reset, retry int64, allowed bool) {
		d := ratelimit.Decision{
			Limit:   keyward.RateLimit{Name: name, Limit: limit, Window: keyward.Duration(window)},
			Allowed: allowed, Remaining: remaining,
			ResetAfter: time.Duration(reset), RetryAfter: time.Duration(retry),
		}
		ds := []ratelimit.Decision{d, d}
		wantName := []byte(name)
		for i, c := range wantName {
			if c < 0x20 || c > 0x7e {
				wantName[i] = '?'
			}
		}
		const maxInt = 999_999_999_999_999 // the largest structured-field Integer
		secs := func(v int64) int64 {
			if v <= 0 {
				return 0
			}
			return min((v-1)/int64(time.Second)+1, maxInt)
		}
		check := func(field string, value []byte, p1, p2 string, v1, v2 int64) {
			items, err := parseList(string(value))
			if err != nil {
				t.Fatalf("%s: %q: %v", field, value, err)
			}
			if len(items) != 2 {
				t.Fatalf("%s: %q: %d items, want 2", field, value, len(items))
			}
			for _, it := range items {
				if it.name != string(wantName) || it.params[p1] != v1 || it.params[p2] != v2 || len(it.params) != 2 {
					t.Fatalf("%s: %q parsed as %+v, want %q;%s=%d;%s=%d", field, value, it, wantName, p1, v1, p2, v2)
				}
			}
		}
		check("RateLimit-Policy", ratelimit.AppendPolicy(nil, ds), "q", "w", min(max(limit, 0), maxInt), secs(window))
		check("RateLimit", ratelimit.AppendRateLimit(nil, ds), "r", "t", min(max(remaining, 0), maxInt), secs(reset))
		s, ok := ratelimit.RetryAfter(ds)
		if ok == allowed {
			t.Fatalf("RetryAfter ok = %v for allowed = %v", ok, allowed)
		}
		if ok {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 1 || n != max((max(retry, 0)+int64(time.Second)-1)/int64(time.Second), 1) {
				t.Fatalf("Retry-After %q for %v", s, time.Duration(retry))
			}
		}
	})
}

type item struct {
	name   string
	params map[string]int64
}

// parseList parses a structured-field List (RFC 9651) of String items with
// Integer parameters, strictly: the subset the headers use.
func parseList(s string) ([]item, error) {
	var items []item
	for {
		var it item
		if !strings.HasPrefix(s, `"`) {
			return nil, fmt.Errorf("item does not start with a String: %q", s)
		}
		s = s[1:]
		var b strings.Builder
		for {
			if s == "" {
				return nil, fmt.Errorf("unterminated String")
			}
			c := s[0]
			s = s[1:]
			if c == '"' {
				break
			}
			if c == '\\' {
				if s == "" || (s[0] != '"' && s[0] != '\\') {
					return nil, fmt.Errorf("bad escape")
				}
				c, s = s[0], s[1:]
			} else if c < 0x20 || c > 0x7e {
				return nil, fmt.Errorf("byte %#x in a String", c)
			}
			b.WriteByte(c)
		}
		it.name = b.String()
		it.params = map[string]int64{}
		for strings.HasPrefix(s, ";") {
			s = s[1:]
			i := 0
			for i < len(s) && ('a' <= s[i] && s[i] <= 'z' || '0' <= s[i] && s[i] <= '9' || s[i] == '_' || s[i] == '-' || s[i] == '.' || s[i] == '*') {
				i++
			}
			if i == 0 || s[0] < 'a' || s[0] > 'z' || i == len(s) || s[i] != '=' {
				return nil, fmt.Errorf("bad parameter key at %q", s)
			}
			key := s[:i]
			s = s[i+1:]
			j := 0
			if j < len(s) && s[j] == '-' {
				j++
			}
			for j < len(s) && '0' <= s[j] && s[j] <= '9' {
				j++
			}
			// An Integer has at most 15 digits.
			digits := strings.TrimPrefix(s[:j], "-")
			if digits == "" || len(digits) > 15 {
				return nil, fmt.Errorf("bad Integer %q", s[:j])
			}
			v, _ := strconv.ParseInt(s[:j], 10, 64)
			if _, dup := it.params[key]; dup {
				return nil, fmt.Errorf("duplicate parameter %s", key)
			}
			it.params[key] = v
			s = s[j:]
		}
		items = append(items, it)
		if s == "" {
			return items, nil
		}
		if !strings.HasPrefix(s, ", ") {
			return nil, fmt.Errorf("bad separator at %q", s)
		}
		s = s[2:]
	}
}

func TestRateLimitValidate(t *testing.T) {
	sec := keyward.Duration(time.Second)
	for _, tc := range []struct {
		limits []keyward.RateLimit
		ok     bool
	}{
		{[]keyward.RateLimit{{Name: "per-second", Limit: 10, Window: sec}, {Name: "day.v2_x", Limit: 1e6, Window: keyward.Duration(24 * time.Hour)}}, true},
		{[]keyward.RateLimit{{Name: "max", Limit: 1e4, Window: sec}}, true},
		{[]keyward.RateLimit{{Name: "", Limit: 10, Window: sec}}, false},
		{[]keyward.RateLimit{{Name: `a"b`, Limit: 10, Window: sec}}, false},
		{[]keyward.RateLimit{{Name: strings.Repeat("a", 65), Limit: 10, Window: sec}}, false},
		{[]keyward.RateLimit{{Name: "a", Limit: 0, Window: sec}}, false},
		{[]keyward.RateLimit{{Name: "a", Limit: 10, Window: keyward.Duration(time.Millisecond)}}, false},
		{[]keyward.RateLimit{{Name: "a", Limit: 10, Window: keyward.Duration(400 * 24 * time.Hour)}}, false},
		{[]keyward.RateLimit{{Name: "a", Limit: 1e4 + 1, Window: sec}}, false},
		{[]keyward.RateLimit{{Name: "a", Limit: 1, Window: sec}, {Name: "a", Limit: 2, Window: sec}}, false},
	} {
		err := keyward.ValidateRateLimits(tc.limits)
		if ok := err == nil; ok != tc.ok {
			t.Errorf("%+v: %v, want ok = %v", tc.limits, err, tc.ok)
		}
		if err != nil && keyward.ErrorCode(err) != keyward.EINVALID {
			t.Errorf("%+v: %v, want EINVALID", tc.limits, err)
		}
	}
}
