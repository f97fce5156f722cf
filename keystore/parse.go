package keystore

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/yamldoc"
	"github.com/keyward/keyward/permission"
	"go.yaml.in/yaml/v3"
)

// Limits of a keystore file. They match what the admin API accepts for
// keys in the database.
const (
	// MaxFileSize bounds a keystore file: the simple modes are for a few
	// keys; many keys belong in keyward serve's store.
	MaxFileSize    = 4 << 20
	maxIDLen       = 200
	maxPermissions = 100
	maxMetaLen     = 16 << 10
)

const seeDocs = "see docs/simple-modes.md"

// Parse reads a keystore file from r; name names it in errors. The file is
// YAML (or JSON, which is YAML):
//
//	keys:
//	  <sha256 hex digest of the token>:
//	    id: ci                       # required, unique: names the key in logs and headers
//	    subject: alice               # optional: whom the token speaks for, shared by its tokens
//	    role: user                   # required: root, account_admin or user
//	    account: acme                # optional; required for account_admin, refused for root
//	    permissions: [memories:read] # optional; root holds every permission
//	    meta: {plan: pro}            # optional, returned by verify as JSON
//
// The subject is the identity's user id (X-Keyward-User), so several
// tokens of one person or service (old and new, one per device) share it
// while each keeps its own id. Parse fails closed: it returns a *FileError listing every problem, each
// naming its entry, when the file is empty or has no keys (omit the
// keystore setting to turn the keystore off), when a digest is not 64 hex
// characters (uppercase is accepted and normalised to lowercase), when two
// entries have the same digest or the same id, when an id is blank, a role
// unknown, or a field unknown.
func Parse(r io.Reader, name string) (*Keystore, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("keystore %s: %w", name, err)
	}
	p := &parser{}
	ks := p.file(b)
	if len(p.problems) > 0 {
		return nil, &FileError{Name: name, Problems: p.problems}
	}
	return ks, nil
}

// entryFields are the fields of an entry, in the order Marshal writes
// them.
var entryFields = []string{"id", "subject", "role", "account", "permissions", "meta"}

type parser struct {
	problems []string
}

func (p *parser) addf(format string, args ...any) {
	p.problems = append(p.problems, fmt.Sprintf(format, args...))
}

// file parses a whole file; it returns nil when it found a problem.
func (p *parser) file(b []byte) *Keystore {
	const turnOff = "or omit the keystore setting to turn the keystore off"
	if len(b) > MaxFileSize {
		p.addf("is larger than %d MiB: a keystore is for a few keys (keep many in keyward serve's store)", MaxFileSize>>20)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(b))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.addf("is empty: list the keys under keys: (%s), %s", seeDocs, turnOff)
		} else {
			p.addf("is not valid YAML or JSON: %s", yamldoc.Message(err))
		}
		return nil
	}
	var more yaml.Node
	if err := dec.Decode(&more); !errors.Is(err, io.EOF) {
		p.addf("holds more than one YAML document: keep one")
		return nil
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 {
		p.addf("is not a YAML document")
		return nil
	}
	root := doc.Content[0]
	if isNull(root) {
		p.addf("is empty: list the keys under keys: (%s), %s", seeDocs, turnOff)
		return nil
	}
	if root.Kind != yaml.MappingNode {
		p.addf("line %d: must be a mapping with the keys under keys: (%s)", root.Line, seeDocs)
		return nil
	}
	var keys *yaml.Node
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		switch {
		case k.Kind == yaml.ScalarNode && k.Value == "keys" && keys != nil:
			p.addf("line %d: keys appears twice: keep one", k.Line)
		case k.Kind == yaml.ScalarNode && k.Value == "keys":
			keys = v
		case looksLikeDigest(k):
			p.addf("line %d: unknown field: a keystore file holds only keys:, and digests go under it (%s)", k.Line, seeDocs)
		default:
			p.addf("line %d: unknown field%s: a keystore file holds only keys: (%s)", k.Line, quoteName(k), seeDocs)
		}
	}
	switch {
	case keys == nil:
		if len(p.problems) == 0 {
			p.addf("has no keys: list the keys under keys: (%s), %s", seeDocs, turnOff)
		}
		return nil
	case isNull(keys) || keys.Kind == yaml.MappingNode && len(keys.Content) == 0:
		p.addf("line %d: keys is empty: a keystore without keys would refuse every request; add keys, %s", keys.Line, turnOff)
		return nil
	case keys.Kind != yaml.MappingNode:
		p.addf("line %d: keys must be a mapping from SHA-256 hex digests to entries (%s)", keys.Line, seeDocs)
		return nil
	}

	ks := &Keystore{entries: make(map[[sha256.Size]byte]*entry, len(keys.Content)/2)}
	idLines := map[string]int{}
	for i := 0; i+1 < len(keys.Content); i += 2 {
		e, digestOK, idOK := p.entry(keys.Content[i], keys.Content[i+1])
		if idOK {
			if line, dup := idLines[e.key.ID]; dup {
				p.addf("key %q (line %d): id %q is already used by the key on line %d: ids name keys in logs and headers, so each must be unique", e.key.ID, e.line, e.key.ID, line)
			} else {
				idLines[e.key.ID] = e.line
			}
		}
		if digestOK {
			if prev, dup := ks.entries[e.digest]; dup {
				p.addf("%s: has the same digest as the key on line %d (digests are compared in lowercase): one token, one entry", e.label(idOK), prev.line)
				continue
			}
			ks.entries[e.digest] = e
		}
	}
	if len(p.problems) > 0 {
		return nil
	}
	return ks
}

// entry parses one entry; every problem is added, naming the entry.
func (p *parser) entry(kn, vn *yaml.Node) (e *entry, digestOK, idOK bool) {
	e = &entry{line: kn.Line}
	var probs []string
	bad := func(format string, args ...any) { probs = append(probs, fmt.Sprintf(format, args...)) }
	// onLine says where a field is when it is not on the entry's line.
	onLine := func(line int) string {
		if line == e.line {
			return ""
		}
		return fmt.Sprintf(" on line %d", line)
	}

	if d, ok := parseDigest(kn); ok {
		e.digest, digestOK = d, true
	} else {
		bad("the key of an entry must be the SHA-256 hex digest of its token (64 hex characters), never the token itself: compute it with keyward keystore hash (%s)", seeDocs)
	}

	var id, role, account, subject string
	var hasID, hasRole bool
	var perms []string
	var meta json.RawMessage
	switch {
	case isNull(vn):
		bad("has no fields: give it at least id and role")
	case vn.Kind != yaml.MappingNode:
		bad("must be a mapping with id, role and optionally account, permissions, meta")
	default:
		seen := map[string]bool{}
		for i := 0; i+1 < len(vn.Content); i += 2 {
			fk, fv := vn.Content[i], vn.Content[i+1]
			name := fk.Value
			if fk.Kind != yaml.ScalarNode || !slices.Contains(entryFields, name) {
				bad("unknown field%s%s: use %s", quoteName(fk), onLine(fk.Line), strings.Join(entryFields, ", "))
				continue
			}
			if seen[name] {
				bad("%s appears twice%s: keep one", name, onLine(fk.Line))
				continue
			}
			seen[name] = true
			switch name {
			case "id":
				var ok bool
				if id, ok = scalar(fv); !ok {
					bad("id must be text")
				}
				hasID = ok
			case "role":
				var ok bool
				if role, ok = scalar(fv); !ok {
					bad("role must be text: root, account_admin or user")
				}
				hasRole = ok
			case "account":
				var ok bool
				if account, ok = scalar(fv); !ok {
					bad("account must be text")
				} else if err := checkName(account); err != "" {
					bad("account %s", err)
				}
			case "subject":
				var ok bool
				if subject, ok = scalar(fv); !ok {
					bad("subject must be text")
				} else if err := checkName(subject); err != "" {
					bad("subject %s", err)
				}
			case "permissions":
				perms = permissions(fv, bad, onLine)
			case "meta":
				meta = parseMeta(fv, bad)
			}
		}
		if !hasID || strings.TrimSpace(id) == "" {
			bad("id is blank: name every key, e.g. id: ci")
		} else if err := checkName(id); err != "" {
			bad("id %s", err)
		} else {
			idOK = true
		}
		r := keyward.Role(role)
		switch {
		case !hasRole || role == "":
			bad("role is missing: set role: root, account_admin or user")
		case !r.Valid():
			bad("role%s is not one of root, account_admin, user", quoteValue(role))
		case r == keyward.RoleRoot && account != "":
			bad("a root key belongs to no account: remove account, or use role account_admin")
		case r == keyward.RoleAccountAdmin && account == "":
			bad("an account_admin key needs an account: add account: NAME")
		}
	}
	if keyward.Role(role) != keyward.RoleRoot && slices.Contains(perms, permission.Wildcard) {
		bad("permission \"*\" (every permission) is for root keys only: grant the wildcards of services instead, e.g. memories:*")
	}
	e.key = keyward.Key{ID: id, Role: keyward.Role(role), AccountID: account, UserID: subject, Permissions: perms, Meta: meta}
	label := e.label(idOK)
	for _, pr := range probs {
		p.addf("%s: %s", label, pr)
	}
	return e, digestOK, idOK
}

// label names e in messages: by id when it has one, else by line.
func (e *entry) label(idOK bool) string {
	if idOK {
		return fmt.Sprintf("key %q (line %d)", e.key.ID, e.line)
	}
	return fmt.Sprintf("key on line %d", e.line)
}

// permissions parses a list of permissions, sorted without duplicates.
func permissions(n *yaml.Node, bad func(string, ...any), onLine func(int) string) []string {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		bad("permissions must be a list, e.g. permissions: [memories:read, memories:write]")
		return nil
	}
	if len(n.Content) > maxPermissions {
		bad("has %d permissions: a key holds at most %d", len(n.Content), maxPermissions)
		return nil
	}
	out := make([]string, 0, len(n.Content))
	for i, item := range n.Content {
		v, ok := scalar(item)
		if !ok {
			bad("permission %d%s must be text, e.g. memories:read", i+1, onLine(item.Line))
			continue
		}
		if err := permission.Check(v); err != nil || strings.Contains(v, ",") {
			bad("permission %d%s must be 1-%d characters without white space, commas or control characters, with '*' only as a whole segment, e.g. memories:read or memories:*", i+1, onLine(item.Line), permission.MaxLen)
			continue
		}
		out = append(out, v)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// parseMeta returns the meta mapping as compact JSON.
func parseMeta(n *yaml.Node, bad func(string, ...any)) json.RawMessage {
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		bad("meta must be a mapping, e.g. meta: {plan: pro}")
		return nil
	}
	var m map[string]any
	if err := n.Decode(&m); err != nil {
		bad("meta must be a mapping with text keys")
		return nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		bad("meta cannot be written as JSON: use text keys, and strings, numbers, booleans, lists and mappings as values")
		return nil
	}
	if len(b) > maxMetaLen {
		bad("meta is larger than %d bytes as JSON", maxMetaLen)
		return nil
	}
	return b
}

// parseDigest reads a 64-hex-character digest in either case.
func parseDigest(n *yaml.Node) ([sha256.Size]byte, bool) {
	var d [sha256.Size]byte
	if n.Kind != yaml.ScalarNode || len(n.Value) != 2*sha256.Size {
		return d, false
	}
	_, err := hex.Decode(d[:], []byte(n.Value))
	return d, err == nil
}

func looksLikeDigest(n *yaml.Node) bool {
	_, ok := parseDigest(n)
	return ok
}

// scalar returns the text of a scalar node as written (a null is ""); ok
// is false for anything else.
func scalar(n *yaml.Node) (string, bool) {
	if n.Kind != yaml.ScalarNode {
		return "", false
	}
	if isNull(n) {
		return "", true
	}
	return n.Value, true
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// checkName checks an id or account; it returns what is wrong, or "".
func checkName(v string) string {
	switch {
	case utf8.RuneCountInString(v) > maxIDLen:
		return fmt.Sprintf("is longer than %d characters", maxIDLen)
	case !utf8.ValidString(v) || strings.ContainsFunc(v, unicode.IsControl):
		return "must be printable text: no control characters"
	case v != "" && hasSurroundingSpace(v):
		return "begins or ends with white space: remove it"
	}
	return ""
}

// quoteName quotes a field name back in a message when it looks like one
// (a misspelt field), and says nothing otherwise: it could be a token.
func quoteName(n *yaml.Node) string {
	if n.Kind != yaml.ScalarNode || len(n.Value) == 0 || len(n.Value) > 24 || strings.ContainsFunc(n.Value, func(r rune) bool {
		return (r < 'a' || r > 'z') && r != '_'
	}) {
		return ""
	}
	return fmt.Sprintf(" %q", n.Value)
}

// quoteValue quotes a short identifier-like value (a misspelt role).
func quoteValue(v string) string {
	if len(v) == 0 || len(v) > 24 || strings.ContainsFunc(v, func(r rune) bool {
		return !unicode.IsLetter(r) && r != '_' && r != '-'
	}) {
		return ""
	}
	return fmt.Sprintf(" %q", v)
}
