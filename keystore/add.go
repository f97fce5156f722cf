package keystore

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/keyward/keyward"
	"go.yaml.in/yaml/v3"
)

// tokenBytes is the randomness of a generated token: 256 bits.
const tokenBytes = 32

// NewEntry is a key to add to a keystore file with Add.
type NewEntry struct {
	// ID names the new key; it must not be used in the file yet.
	ID string
	// Subject is whom the token speaks for, shared by the tokens of one
	// identity (optional).
	Subject string
	// Role is root, account_admin or user.
	Role keyward.Role
	// Account is required for account_admin, refused for root.
	Account string
	// Permissions of the key; root holds every permission.
	Permissions []string
}

// TokenPrefix starts every token GenerateToken makes, so that secret
// scanners can find them and nobody takes one for a digest.
const TokenPrefix = "kst_"

// GenerateToken returns a new random token: TokenPrefix and 256 bits as 43
// base64url characters, which CheckToken accepts.
func GenerateToken() (keyward.Secret, error) {
	b := make([]byte, tokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("keystore: generating a token: %w", err)
	}
	return keyward.Secret(TokenPrefix + base64.RawURLEncoding.EncodeToString(b)), nil
}

// Add generates a token for e and appends its entry (the token's digest,
// never the token) to the keystore file at path, creating the file when it
// does not exist. It returns the token, which exists nowhere else: show it
// once. The file's text, comments included, is kept; the entry goes at its
// end in the file's indentation. The file is replaced atomically (same
// mode), and only when the result parses (see Parse) with the new key in
// it: a file that is invalid already, an id in use, a bad role, account,
// subject or permission, or keys written in flow style or JSON (which
// cannot be appended to as text) change nothing and return an error.
// Concurrent Adds to one file, from any number of processes, each hold
// an exclusive lock on the lock file beside it (see lockFile) from
// reading the file to replacing it, so none loses another's entry.
// Processes that read the file pick the key up when restarted.
func Add(path string, e NewEntry) (keyward.Secret, error) {
	unlock, err := lockFile(path)
	if err != nil {
		return "", fmt.Errorf("keystore: %w", err)
	}
	defer unlock()
	return add(path, e)
}

// add is Add under the lock.
func add(path string, e NewEntry) (keyward.Secret, error) {
	old, err := os.ReadFile(path)
	exists := err == nil
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return "", fmt.Errorf("keystore: %w", err)
	}
	indent := 2
	switch {
	case !exists || len(bytes.TrimSpace(old)) == 0:
		old = []byte("keys:\n")
	case nullKeys(old):
		// "keys:" and nothing under it yet: the entry goes right below.
	default:
		ks, err := Parse(bytes.NewReader(old), path)
		if err != nil {
			return "", err
		}
		if slices.Contains(ks.IDs(), e.ID) {
			return "", keyward.Errorf(keyward.EINVALID, "keystore %s: id %q is already used: give the new key its own id (tokens of one identity share a subject, not an id)", path, e.ID)
		}
		if indent, err = blockIndent(old, path); err != nil {
			return "", err
		}
	}
	token, err := GenerateToken()
	if err != nil {
		return "", err
	}
	entry, err := entryYAML(Digest(token.Reveal()), e, indent)
	if err != nil {
		return "", err
	}
	out := slices.Clip(old)
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out, '\n')
	}
	out = append(out, entry...)
	ks, err := Parse(bytes.NewReader(out), path)
	var fe *FileError
	switch {
	case errors.As(err, &fe):
		// The file parsed before: the new entry is at fault.
		return "", keyward.Errorf(keyward.EINVALID, "the new key is refused, %s is unchanged: %s", path, strings.Join(fe.Problems, "; "))
	case err != nil:
		return "", err
	}
	if res, _ := ks.VerifyKey(context.Background(), keyward.VerifyRequest{Key: token.Reveal()}); res.KeyID != e.ID {
		return "", fmt.Errorf("keystore %s: the new entry did not parse back as key %q: add it by hand", path, e.ID)
	}
	mode := fs.FileMode(0o644) // digests are not secrets
	if fi, err := os.Stat(path); err == nil {
		mode = fi.Mode().Perm()
	}
	if err := writeFileAtomic(path, out, mode); err != nil {
		return "", fmt.Errorf("keystore: %w", err)
	}
	return token, nil
}

// nullKeys reports whether b is a keystore file whose only field is keys:
// with nothing under it, the file one starts a keystore with.
func nullKeys(b []byte) bool {
	var doc yaml.Node
	if yaml.Unmarshal(b, &doc) != nil || len(doc.Content) != 1 {
		return false
	}
	root := doc.Content[0]
	return root.Kind == yaml.MappingNode && len(root.Content) == 2 && root.Content[0].Value == "keys" && isNull(root.Content[1])
}

// blockIndent returns the indentation of the entries under keys: in the
// keystore file b, which Parse accepted; an error if keys is written in
// flow style ({...}, JSON), where an entry cannot be appended as text.
func blockIndent(b []byte, path string) (int, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil || len(doc.Content) != 1 {
		return 0, fmt.Errorf("keystore %s: cannot be read back: add the key by hand", path)
	}
	root := doc.Content[0]
	if root.Style&yaml.FlowStyle == 0 && len(root.Content) == 2 {
		keys := root.Content[1]
		if keys.Style&yaml.FlowStyle == 0 && len(keys.Content) > 0 && keys.Content[0].Column > 1 {
			return keys.Content[0].Column - 1, nil
		}
	}
	return 0, keyward.Errorf(keyward.EINVALID, "keystore %s: writes keys in flow style ({...}) or JSON, which keyward keystore add cannot append to: write the file in block style (keyward keystore check lists it; see docs/simple-modes.md), or add the entry by hand", path)
}

// entryYAML renders e under digest as block YAML, indented for a keys:
// mapping whose entries are indented by indent spaces.
func entryYAML(digest string, e NewEntry, indent int) ([]byte, error) {
	str := func(v string) *yaml.Node { return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: v} }
	fields := &yaml.Node{Kind: yaml.MappingNode}
	add := func(k string, v *yaml.Node) { fields.Content = append(fields.Content, str(k), v) }
	add("id", str(e.ID))
	if e.Subject != "" {
		add("subject", str(e.Subject))
	}
	add("role", str(string(e.Role)))
	if e.Account != "" {
		add("account", str(e.Account))
	}
	if len(e.Permissions) > 0 {
		perms := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
		for _, p := range e.Permissions {
			perms.Content = append(perms.Content, str(p))
		}
		add("permissions", perms)
	}
	doc := &yaml.Node{Kind: yaml.MappingNode, Content: []*yaml.Node{str(digest), fields}}
	var b bytes.Buffer
	enc := yaml.NewEncoder(&b)
	enc.SetIndent(indent)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("keystore: writing the entry of %q: %w", e.ID, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("keystore: writing the entry of %q: %w", e.ID, err)
	}
	pad := strings.Repeat(" ", indent)
	var out strings.Builder
	for _, line := range strings.SplitAfter(b.String(), "\n") {
		if line != "" {
			out.WriteString(pad + line)
		}
	}
	return []byte(out.String()), nil
}

// writeFileAtomic replaces path with b: written to a temporary file in
// the same directory, synced, then renamed over path.
func writeFileAtomic(path string, b []byte, mode fs.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing to remove
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
