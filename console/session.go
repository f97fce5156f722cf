package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"sync"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// Session timeouts and bounds; Config overrides the timeouts.
const (
	// DefaultIdleTimeout ends a session this long after its last request.
	DefaultIdleTimeout = 30 * time.Minute
	// DefaultMaxAge ends a session this long after its sign-in, however
	// active it is.
	DefaultMaxAge = 12 * time.Hour
	// DefaultMaxSessions bounds the sessions held in memory; signing in
	// beyond it ends the least recently used one.
	DefaultMaxSessions = 10000
)

// session is one signed-in browser. The key it signed in with is kept in
// memory only, so every request is verified again (a revoked or disabled
// key ends its sessions at their next request); it is never logged
// (keyward.Secret redacts itself).
type session struct {
	key      keyward.Secret
	csrf     string
	created  time.Time
	lastSeen time.Time
}

// sessions holds the sessions by the SHA-256 of their id: the id itself,
// the bearer credential of the cookie, is never kept.
type sessions struct {
	mu     sync.Mutex
	byID   map[[32]byte]*session
	idle   time.Duration
	maxAge time.Duration
	max    int
	now    func() time.Time
}

func newSessions(idle, maxAge time.Duration, max int, now func() time.Time) *sessions {
	return &sessions{byID: make(map[[32]byte]*session), idle: idle, maxAge: maxAge, max: max, now: now}
}

// create starts a session for key and returns its id.
func (s *sessions) create(key keyward.Secret) (string, *session) {
	id := apikey.NewToken()
	now := s.now()
	ss := &session{key: key, csrf: apikey.NewToken(), created: now, lastSeen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byID) >= s.max {
		s.evictLocked(now)
	}
	s.byID[sha256.Sum256([]byte(id))] = ss
	return id, ss
}

// evictLocked drops the expired sessions and, if the store is still
// full, the least recently used one.
func (s *sessions) evictLocked(now time.Time) {
	var oldest [32]byte
	var oldestSeen time.Time
	for h, ss := range s.byID {
		if s.expired(ss, now) {
			delete(s.byID, h)
			continue
		}
		if oldestSeen.IsZero() || ss.lastSeen.Before(oldestSeen) {
			oldest, oldestSeen = h, ss.lastSeen
		}
	}
	if len(s.byID) >= s.max {
		delete(s.byID, oldest)
	}
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.lastSeen) >= s.idle || now.Sub(ss.created) >= s.maxAge
}

// get returns the live session of id and marks it used; an expired one is
// ended and not returned.
func (s *sessions) get(id string) *session {
	if id == "" {
		return nil
	}
	h := sha256.Sum256([]byte(id))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss := s.byID[h]
	if ss == nil {
		return nil
	}
	if s.expired(ss, now) {
		delete(s.byID, h)
		return nil
	}
	ss.lastSeen = now
	return ss
}

// end ends the session of id, if any.
func (s *sessions) end(id string) {
	h := sha256.Sum256([]byte(id))
	s.mu.Lock()
	delete(s.byID, h)
	s.mu.Unlock()
}

// tokensEqual compares two CSRF tokens in constant time; an empty token
// never matches.
func tokensEqual(a, b string) bool {
	return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}
