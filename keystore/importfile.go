package keystore

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/keyward/keyward"
)

// MaxImportFileSize bounds a file read by ParseImport.
const MaxImportFileSize = 64 << 20

// maxImportLine bounds one line of a JSON-lines import file.
const maxImportLine = 1 << 20

// importFields are the fields of a JSON-lines entry.
var importFields = []string{"sha256", "name", "role", "account", "user", "permissions", "meta", "expires_at", "environment"}

const seeImportDocs = "see docs/importing-keys.md"

// ParseImport reads a file of keys to import into keyward's store (keyward
// keys import, docs/importing-keys.md); name names it in errors. Two forms
// are accepted, told apart by the first line that is neither blank nor a #
// comment:
//
//   - JSON lines, when that line is a JSON object with a sha256 field: one
//     object per line, {"sha256": "<64 hex>", "name": "ci", "role": "user",
//     "account": "acme", "user": "alice", "permissions": ["memories:read"],
//     "meta": {...}, "expires_at": "2027-01-01T00:00:00Z"}; blank lines
//     and lines beginning with # are skipped;
//   - a keystore file (see Parse), the file services of the simple mode
//     already have: each entry's id becomes the key's name, and the
//     subject of an entry of role user its user; entries of role user
//     without a subject are refused.
//
// It returns the entries in file order, each with its Line, and checks what
// it can without the store: the digests (64 hex characters, each once), the
// roles, the fields. The first problem found is returned as an EINVALID
// error naming its line, on one line, never quoting a digest or a value
// that could be a token.
func ParseImport(r io.Reader, name string) ([]keyward.KeyImportEntry, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxImportFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(b) > MaxImportFileSize {
		return nil, keyward.Errorf(keyward.EINVALID, "%s: is larger than %d MiB: split it", name, MaxImportFileSize>>20)
	}
	first := firstLine(b)
	if first == nil {
		return nil, keyward.Errorf(keyward.EINVALID, "%s: holds no keys (%s)", name, seeImportDocs)
	}
	var entries []keyward.KeyImportEntry
	if isJSONLines(first) {
		entries, err = parseJSONLines(b)
	} else {
		entries, err = parseKeystoreImport(b, name)
	}
	if err != nil {
		return nil, keyward.Errorf(keyward.EINVALID, "%s: %s", name, err)
	}
	if len(entries) == 0 {
		return nil, keyward.Errorf(keyward.EINVALID, "%s: holds no keys (%s)", name, seeImportDocs)
	}
	seen := make(map[keyward.KeyDigest]int, len(entries))
	for _, e := range entries {
		d, err := keyward.ParseDigest(e.SHA256)
		if err != nil {
			return nil, keyward.Errorf(keyward.EINVALID, "%s line %d: %s", name, e.Line, keyward.ErrorMessage(err))
		}
		if prev, dup := seen[d]; dup {
			return nil, keyward.Errorf(keyward.EINVALID, "%s line %d: the same sha256 as line %d: one raw key, one entry", name, e.Line, prev)
		}
		seen[d] = e.Line
		switch {
		case e.Role == "" && e.User == "":
			return nil, keyward.Errorf(keyward.EINVALID, "%s line %d: role is required: root, account_admin or user", name, e.Line)
		case e.Role != "" && !e.Role.Valid():
			return nil, keyward.Errorf(keyward.EINVALID, "%s line %d: role%s is not one of root, account_admin, user", name, e.Line, quoteValue(string(e.Role)))
		}
	}
	return entries, nil
}

// firstLine returns the first line of b that is neither blank nor a #
// comment, trimmed; nil if there is none.
func firstLine(b []byte) []byte {
	for line := range bytes.Lines(b) {
		if line = bytes.TrimSpace(line); len(line) > 0 && line[0] != '#' {
			return line
		}
	}
	return nil
}

// isJSONLines reports whether the first line is a JSON object with a sha256
// field.
func isJSONLines(first []byte) bool {
	var m map[string]json.RawMessage
	if json.Unmarshal(first, &m) != nil {
		return false
	}
	_, ok := m["sha256"]
	return ok
}

// parseJSONLines reads one entry per line.
func parseJSONLines(b []byte) ([]keyward.KeyImportEntry, error) {
	var out []keyward.KeyImportEntry
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, maxImportLine)
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		e, err := parseImportLine(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %s", n, err)
		}
		e.Line = n
		out = append(out, e)
	}
	if errors.Is(sc.Err(), bufio.ErrTooLong) {
		return nil, fmt.Errorf("line %d: is longer than %d bytes", n+1, maxImportLine)
	}
	return out, sc.Err()
}

// parseImportLine reads one JSON-lines entry. Its errors name fields, never
// values.
func parseImportLine(line []byte) (keyward.KeyImportEntry, error) {
	var e keyward.KeyImportEntry
	var m map[string]json.RawMessage
	if err := json.Unmarshal(line, &m); err != nil {
		return e, errors.New("is not a JSON object: write one object per line, e.g. {\"sha256\": \"...\", \"role\": \"user\", \"account\": \"acme\", \"user\": \"alice\"}")
	}
	for f := range m {
		if !slices.Contains(importFields, f) {
			return e, fmt.Errorf("unknown field%s: use %s", quoteField(f), strings.Join(importFields, ", "))
		}
	}
	for _, f := range importFields {
		v, ok := m[f]
		if !ok || string(v) == "null" {
			continue
		}
		var dst any
		switch f {
		case "sha256":
			dst = &e.SHA256
		case "name":
			dst = &e.Name
		case "role":
			dst = &e.Role
		case "account":
			dst = &e.Account
		case "user":
			dst = &e.User
		case "permissions":
			dst = &e.Permissions
		case "meta":
			if v[0] != '{' {
				return e, errors.New("meta must be a JSON object")
			}
			e.Meta = slices.Clone(v)
			continue
		case "expires_at":
			dst = &e.ExpiresAt
		case "environment":
			dst = &e.Environment
		}
		if err := json.Unmarshal(v, dst); err != nil {
			return e, fmt.Errorf("%s has the wrong type: %s", f, importFieldHelp(f))
		}
	}
	if _, ok := m["sha256"]; !ok {
		return e, errors.New("sha256 is missing: give the SHA-256 hex digest of the raw key")
	}
	return e, nil
}

func importFieldHelp(f string) string {
	switch f {
	case "permissions":
		return "a list of strings"
	case "expires_at":
		return "an RFC 3339 time, e.g. 2027-01-01T00:00:00Z"
	}
	return "a string"
}

// quoteField quotes a field name back when it looks like one.
func quoteField(f string) string {
	if f == "" || len(f) > 24 || strings.ContainsFunc(f, func(r rune) bool { return (r < 'a' || r > 'z') && r != '_' }) {
		return ""
	}
	return fmt.Sprintf(" %q", f)
}

// parseKeystoreImport reads a keystore file (Parse) as import entries.
func parseKeystoreImport(b []byte, name string) ([]keyward.KeyImportEntry, error) {
	ks, err := Parse(bytes.NewReader(b), name)
	if err != nil {
		var fe *FileError
		if errors.As(err, &fe) {
			// Neither JSON lines nor a keystore file: say what both are.
			return nil, fmt.Errorf("is neither JSON lines with sha256 fields nor a keystore file (%s): %s", seeImportDocs, strings.Join(fe.Problems, "; "))
		}
		return nil, err
	}
	es := make([]*entry, 0, len(ks.entries))
	for _, e := range ks.entries {
		es = append(es, e)
	}
	slices.SortFunc(es, func(a, b *entry) int { return a.line - b.line })
	out := make([]keyward.KeyImportEntry, len(es))
	for i, e := range es {
		if e.key.Role == keyward.RoleUser && e.key.UserID == "" {
			return nil, fmt.Errorf("line %d: key %q has role user, and a keyward user key belongs to a user: give the entry subject: USER (the user's id or external id in its account), or write the file as JSON lines with user (%s)", e.line, e.key.ID, seeImportDocs)
		}
		var user string
		if e.key.Role == keyward.RoleUser {
			user = e.key.UserID // a subject of another role is the keystore's alone
		}
		out[i] = keyward.KeyImportEntry{
			SHA256:      hex.EncodeToString(e.digest[:]),
			Name:        e.key.ID,
			Role:        e.key.Role,
			Account:     e.key.AccountID,
			User:        user,
			Permissions: e.key.Permissions,
			Meta:        e.key.Meta,
			Line:        e.line,
		}
	}
	return out, nil
}
