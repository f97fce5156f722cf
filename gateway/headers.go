package gateway

import (
	"net/http"
	"slices"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// credentialHeaders carry a key (apikey.FromHeaders reads them).
var credentialHeaders = []string{apikey.HeaderAuthorization, apikey.HeaderAPIKey}

// headerSet matches header names the way the most lenient upstream would:
// case-insensitively and with "_" and "." equal to "-" (CGI, WSGI, Rack
// and PHP turn "-" into "_", and PHP "." too, so X_Keyward_User and
// X-Keyward.User would reach them as X-Keyward-User).
type headerSet []string // folded names

func newHeaderSet(names ...string) headerSet {
	var s headerSet
	for _, n := range names {
		f := foldName(n)
		if !slices.Contains(s, f) {
			s = append(s, f)
		}
	}
	return s
}

// has reports whether name is in the set.
func (s headerSet) has(name string) bool {
	for _, f := range s {
		if len(f) == len(name) && equalFolded(f, name) {
			return true
		}
	}
	return false
}

// remove deletes every header of h in the set.
func (s headerSet) remove(h http.Header) {
	for k := range h {
		if s.has(k) {
			delete(h, k)
		}
	}
}

// foldName lower-cases name and turns "_" and "." into "-".
func foldName(name string) string {
	b := []byte(name)
	for i, c := range b {
		switch {
		case c >= 'A' && c <= 'Z':
			b[i] = c + 'a' - 'A'
		case c == '_' || c == '.':
			b[i] = '-'
		}
	}
	return string(b)
}

// equalFolded reports whether name folds to folded (same length).
func equalFolded(folded, name string) bool {
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		case c == '_' || c == '.':
			c = '-'
		}
		if c != folded[i] {
			return false
		}
	}
	return true
}

// identityHeaders writes an identity as headers.
type identityHeaders struct {
	names HeaderNames
	// strip holds every identity header name, configured and default,
	// and the agent headers clients send (X-Keyward-Agent and aliases).
	strip headerSet
	// canonical forms of the configured names, set directly in maps.
	keyID, account, user, role, agent, permissions string
}

func newIdentityHeaders(n HeaderNames, agentAliases []string) *identityHeaders {
	d := DefaultHeaderNames()
	strip := []string{n.KeyID, n.Account, n.User, n.Role, n.Agent, n.Permissions,
		d.KeyID, d.Account, d.User, d.Role, d.Agent, d.Permissions, keyward.HeaderAgent}
	return &identityHeaders{
		names:       n,
		strip:       newHeaderSet(append(strip, agentAliases...)...),
		keyID:       http.CanonicalHeaderKey(n.KeyID),
		account:     http.CanonicalHeaderKey(n.Account),
		user:        http.CanonicalHeaderKey(n.User),
		role:        http.CanonicalHeaderKey(n.Role),
		agent:       http.CanonicalHeaderKey(n.Agent),
		permissions: http.CanonicalHeaderKey(n.Permissions),
	}
}

// set writes id into h. With all, every header is written, empty when it
// does not apply (forward-auth: a proxy copying the headers then
// overwrites whatever the client sent); otherwise empty ones are left out.
// id may be nil (an exempt path).
func (ih *identityHeaders) set(h http.Header, id *keyward.Identity, all bool) {
	var keyID, account, user, role, agent, perms string
	if id != nil {
		keyID, account, user, role, agent = id.KeyID, id.AccountID, id.UserID, string(id.Role), id.Agent
		perms = strings.Join(id.Permissions, " ")
	}
	for _, kv := range [...][2]string{
		{ih.keyID, keyID}, {ih.account, account}, {ih.user, user},
		{ih.role, role}, {ih.agent, agent}, {ih.permissions, perms},
	} {
		if kv[1] != "" || all {
			h[kv[0]] = []string{kv[1]}
		}
	}
}

// copy copies the identity headers from src to dst.
func (ih *identityHeaders) copy(dst, src http.Header) {
	for _, k := range [...]string{ih.keyID, ih.account, ih.user, ih.role, ih.agent, ih.permissions} {
		if v, ok := src[k]; ok {
			dst[k] = v
		}
	}
}

// canonicalPath reports whether p, an absolute path, has no "." or ".."
// segment and no empty segment except a trailing one: routing on a path an
// upstream would normalise differently could send a request past its
// permissions (/public/../admin).
func canonicalPath(p string) bool {
	if p == "" || p[0] != '/' {
		return false
	}
	for i := 1; i <= len(p); {
		j := strings.IndexByte(p[i:], '/')
		if j < 0 {
			j = len(p) - i
		}
		seg := p[i : i+j]
		switch {
		case seg == "." || seg == "..":
			return false
		case seg == "" && i+j < len(p): // "//"
			return false
		}
		i += j + 1
	}
	return true
}
