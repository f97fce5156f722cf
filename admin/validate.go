package admin

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/permission"
)

// Input limits.
const (
	maxNameLen     = 200
	maxPermissions = 100
	maxMetaLen     = 16 << 10
)

func validateName(field, v string, required bool) error {
	switch {
	case required && strings.TrimSpace(v) == "":
		return keyward.Errorf(keyward.EINVALID, "%s is required", field)
	case utf8.RuneCountInString(v) > maxNameLen:
		return keyward.Errorf(keyward.EINVALID, "%s is longer than %d characters", field, maxNameLen)
	case !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl):
		return keyward.Errorf(keyward.EINVALID, "%s must be printable text", field)
	case apikey.Redact(v) != v:
		// A raw key is never stored: a key pasted into the wrong field
		// would be kept, and shown, in clear.
		return keyward.Errorf(keyward.EINVALID, "%s holds what looks like an API key: a raw key is never stored; remove it, and treat the key as exposed", field)
	}
	return nil
}

// validateAccountPrefix checks an account's user-key prefix: the key
// format's prefix rule, and no overlap with the deployment's other tiers
// and environments (apikey.Prefixes.CheckAccountPrefix).
func validateAccountPrefix(prefixes apikey.Prefixes, p string) error {
	if p == "" {
		return nil
	}
	if !apikey.ValidPrefix(p) {
		return keyward.Errorf(keyward.EINVALID, "key_prefix %q must match [a-z][a-z0-9_]{0,18}[a-z0-9]", p)
	}
	return prefixes.CheckAccountPrefix(p)
}

// normalizePermissions validates perms (permission.Check: a wildcard is a
// whole segment) and returns them sorted without duplicates, never nil.
func normalizePermissions(perms []string) ([]string, error) {
	if len(perms) > maxPermissions {
		return nil, keyward.Errorf(keyward.EINVALID, "a key holds at most %d permissions", maxPermissions)
	}
	out := make([]string, 0, len(perms))
	for _, p := range perms {
		if err := permission.Check(p); err != nil {
			return nil, keyward.Errorf(keyward.EINVALID, "%v", err)
		}
		out = append(out, p)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// normalizeMeta checks that meta is a JSON object of bounded size and
// returns it compacted; empty input gives nil.
func normalizeMeta(meta json.RawMessage) (json.RawMessage, error) {
	if len(bytes.TrimSpace(meta)) == 0 || bytes.Equal(bytes.TrimSpace(meta), []byte("null")) {
		return nil, nil
	}
	if len(meta) > maxMetaLen {
		return nil, keyward.Errorf(keyward.EINVALID, "meta is larger than %d bytes", maxMetaLen)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(meta, &obj); err != nil {
		return nil, keyward.Errorf(keyward.EINVALID, "meta must be a JSON object")
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, meta); err != nil {
		return nil, keyward.Errorf(keyward.EINVALID, "meta must be a JSON object")
	}
	return buf.Bytes(), nil
}

// maxAgentLen bounds an agent name.
const maxAgentLen = 200

// validateAgent checks an agent name: it is echoed in identities, logs and
// headers, so it must be short printable text.
func validateAgent(a string) error {
	if !printable(a, maxAgentLen) {
		return keyward.Errorf(keyward.EINVALID, "agent must be printable text of at most %d bytes", maxAgentLen)
	}
	return nil
}

// futureExpiry returns t in UTC at the microsecond precision every store
// keeps, refusing a time that is not after now; nil stays nil.
func futureExpiry(t *time.Time, now time.Time) (*time.Time, error) {
	if t == nil {
		return nil, nil
	}
	u := t.UTC().Truncate(time.Microsecond)
	if !u.After(now) {
		return nil, keyward.Errorf(keyward.EINVALID, "expires_at %s is not in the future", u.Format(time.RFC3339))
	}
	return &u, nil
}

// printable reports whether v is valid UTF-8 of at most max bytes without
// control characters.
func printable(v string, max int) bool {
	return len(v) <= max && utf8.ValidString(v) && !strings.ContainsFunc(v, unicode.IsControl)
}

// nilIfEmpty returns s, or nil when it is empty: stores and JSON keep an
// empty list as none.
func nilIfEmpty[T any](s []T) []T {
	if len(s) == 0 {
		return nil
	}
	return s
}
