package unkeyv2

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/verify"
)

// keyData is a key as Unkey's v2 API answers it. Times are Unix
// milliseconds; optional fields are left out, never null.
type keyData struct {
	KeyID       string          `json:"keyId"`
	Start       string          `json:"start"`
	Enabled     bool            `json:"enabled"`
	Name        string          `json:"name,omitempty"`
	Meta        json.RawMessage `json:"meta,omitempty"`
	CreatedAt   int64           `json:"createdAt"`
	UpdatedAt   int64           `json:"updatedAt,omitempty"`
	LastUsedAt  int64           `json:"lastUsedAt,omitempty"`
	Expires     int64           `json:"expires,omitempty"`
	Permissions []string        `json:"permissions,omitempty"`
	Roles       []string        `json:"roles,omitempty"`
	Credits     *creditsData    `json:"credits,omitempty"`
	Identity    *identityData   `json:"identity,omitempty"`
	Ratelimits  []ratelimitData `json:"ratelimits,omitempty"`
}

// creditsData is a key's credits; a refill is answered only when it is
// Unkey's daily (an interval of 24 hours) or monthly one (docs/unkey.md).
type creditsData struct {
	// Remaining is null for a key without credits (unlimited).
	Remaining *int64      `json:"remaining"`
	Refill    *refillData `json:"refill,omitempty"`
}

type refillData struct {
	Interval  string `json:"interval"`
	Amount    int64  `json:"amount"`
	RefillDay int    `json:"refillDay,omitempty"`
}

// identityData is a key's identity: its user with an external id, with the
// user's own meta and shared rate limits.
type identityData struct {
	ID         string          `json:"id"`
	ExternalID string          `json:"externalId"`
	Meta       json.RawMessage `json:"meta,omitempty"`
	Ratelimits []ratelimitData `json:"ratelimits,omitempty"`
}

// identityDataOf returns the identity of the user with id, externalID,
// meta and shared rate limits ls; nil without an external id (a user made
// for a key alone is no identity).
func identityDataOf(id, externalID string, meta json.RawMessage, ls []keyward.RateLimit) *identityData {
	if externalID == "" {
		return nil
	}
	return &identityData{ID: id, ExternalID: externalID, Meta: meta, Ratelimits: ratelimitsData(ls)}
}

// ratelimitsData returns ls as Unkey answers a key's or an identity's
// limits.
func ratelimitsData(ls []keyward.RateLimit) []ratelimitData {
	var out []ratelimitData
	for _, l := range ls {
		out = append(out, ratelimitData{ID: l.Name, Name: l.Name, Limit: l.Limit, Duration: time.Duration(l.Window).Milliseconds(), AutoApply: !l.Manual})
	}
	return out
}

// ratelimitData is a key's rate limit: autoApply unless it is manual
// (keyward.RateLimit.Manual); its id is its name, unique among the key's
// limits.
type ratelimitData struct {
	ID        string `json:"id"`
	Name      string `json:"name"`
	Limit     int64  `json:"limit"`
	Duration  int64  `json:"duration"`
	AutoApply bool   `json:"autoApply"`
}

// daily is the refill interval of Unkey's "daily".
const daily = 24 * time.Hour

// keyDataOf returns k as Unkey answers a key, with credits c (k's own, or
// live ones).
func keyDataOf(k *keyward.Key, c *keyward.Credits) *keyData {
	d := &keyData{
		KeyID:       k.ID,
		Start:       k.Start,
		Enabled:     !k.Disabled,
		Name:        k.Name,
		Meta:        k.Meta,
		CreatedAt:   k.CreatedAt.UnixMilli(),
		UpdatedAt:   k.UpdatedAt.UnixMilli(),
		Permissions: k.Permissions,
		Roles:       k.Roles,
	}
	if k.LastUsedAt != nil {
		d.LastUsedAt = k.LastUsedAt.UnixMilli()
	}
	if k.ExpiresAt != nil {
		d.Expires = k.ExpiresAt.UnixMilli()
	}
	if c != nil {
		d.Credits = creditsDataOf(c)
	}
	var shared []keyward.RateLimit
	if k.UserMeter != nil {
		shared = k.UserMeter.RateLimits
	}
	d.Identity = identityDataOf(k.UserID, k.UserExternalID, k.UserMeta, shared)
	d.Ratelimits = ratelimitsData(k.RateLimits)
	return d
}

// creditsDataOf returns credits c as Unkey answers them.
func creditsDataOf(c *keyward.Credits) *creditsData {
	d := &creditsData{Remaining: &c.Remaining}
	switch r := c.Refill; {
	case r == nil:
	case r.Day != 0:
		d.Refill = &refillData{Interval: "monthly", Amount: r.Amount, RefillDay: r.Day}
	case time.Duration(r.Interval) == daily:
		d.Refill = &refillData{Interval: "daily", Amount: r.Amount}
	}
	return d
}

// creditsRequest is the credits of a createKey or updateKey. Remaining
// null means unlimited: no credits.
type creditsRequest struct {
	Remaining *int64         `json:"remaining"`
	Refill    *refillRequest `json:"refill"`
}

type refillRequest struct {
	Interval  string `json:"interval"`
	Amount    int64  `json:"amount"`
	RefillDay *int   `json:"refillDay"`
}

// credits returns c as keyward's credits, nil for unlimited, or a refusal
// naming the field at field.
func (c *creditsRequest) credits(field string) (*keyward.Credits, error) {
	if c.Remaining == nil {
		if c.Refill != nil {
			return nil, badField(field+".refill", "needs credits.remaining: a key without credits has nothing to refill")
		}
		return nil, nil
	}
	out := &keyward.Credits{Remaining: *c.Remaining}
	if r := c.Refill; r != nil {
		switch r.Interval {
		case "daily":
			if r.RefillDay != nil {
				return nil, badField(field+".refill.refillDay", "applies to monthly refills: leave it out of a daily one")
			}
			out.Refill = &keyward.CreditRefill{Amount: r.Amount, Interval: keyward.Duration(daily)}
		case "monthly":
			if r.RefillDay == nil {
				return nil, badField(field+".refill.refillDay", "is required with interval monthly: the day of the month, 1 to 31 (the month's last day when it has fewer)")
			}
			if *r.RefillDay < 1 || *r.RefillDay > keyward.MaxRefillDay {
				return nil, badField(field+".refill.refillDay", "must be a day of the month, 1 to %d (the month's last day when it has fewer)", keyward.MaxRefillDay)
			}
			out.Refill = &keyward.CreditRefill{Amount: r.Amount, Day: *r.RefillDay}
		default:
			return nil, badField(field+".refill.interval", "must be daily or monthly")
		}
	}
	if err := out.Validate(); err != nil {
		return nil, fieldErr("body."+field, keyward.Errorf(keyward.EINVALID, "%s: %s", field, keyward.ErrorMessage(err)))
	}
	return out, nil
}

// ratelimitRequest is a rate limit of a createKey or updateKey.
type ratelimitRequest struct {
	Name      string `json:"name"`
	Limit     int64  `json:"limit"`
	Duration  int64  `json:"duration"`
	AutoApply *bool  `json:"autoApply"`
}

// rateLimits returns rs as keyward's rate limits, or a refusal naming the
// field at fault.
func rateLimits(rs []ratelimitRequest) ([]keyward.RateLimit, error) {
	out := make([]keyward.RateLimit, len(rs))
	for i, r := range rs {
		field := fmt.Sprintf("ratelimits[%d]", i)
		if r.AutoApply == nil {
			return nil, badField(field+".autoApply", "is required: true counts the limit against every verification, false only against those naming it in ratelimits")
		}
		if r.Duration <= 0 {
			return nil, badField(field+".duration", "must be a positive number of milliseconds")
		}
		out[i] = keyward.RateLimit{Name: r.Name, Limit: r.Limit, Window: keyward.Duration(time.Duration(r.Duration) * time.Millisecond), Manual: !*r.AutoApply}
		if err := out[i].Validate(); err != nil {
			return nil, fieldErr("body."+field, keyward.Errorf(keyward.EINVALID, "%s: %s", field, keyward.ErrorMessage(err)))
		}
	}
	return out, nil
}

// expiry returns ms, Unix milliseconds, as a time.
func expiry(ms int64) *time.Time {
	t := time.UnixMilli(ms).UTC()
	return &t
}

type createKeyRequest struct {
	APIID       string             `json:"apiId"`
	Prefix      string             `json:"prefix"`
	Name        string             `json:"name"`
	ByteLength  *int               `json:"byteLength"`
	ExternalID  string             `json:"externalId"`
	Meta        json.RawMessage    `json:"meta"`
	Roles       []string           `json:"roles"`
	Permissions []string           `json:"permissions"`
	Expires     *int64             `json:"expires"`
	Credits     *creditsRequest    `json:"credits"`
	Ratelimits  []ratelimitRequest `json:"ratelimits"`
	Enabled     *bool              `json:"enabled"`
	Recoverable bool               `json:"recoverable"`
}

type createKeyData struct {
	KeyID string `json:"keyId"`
	Key   string `json:"key"`
}

// Bounds of byteLength: Unkey's least, and the randomness every keyward
// key carries (apikey.RandomLen base62 characters: 256 bits).
const (
	minByteLength = 16
	maxByteLength = 32
)

// createKey creates a user key in the account apiId names. The key belongs
// to the account's user with externalId (created if missing), or, without
// one, to a user made for it alone, so no two keys without an identity
// share a user (docs/unkey.md).
func (s *Server) createKey(ctx context.Context, _ *http.Request, in *createKeyRequest) (*createKeyData, error) {
	c, err := s.keyCreate(ctx, in)
	if err != nil {
		return nil, err
	}
	userID, created, err := s.userFor(ctx, in.APIID, in.ExternalID, in.Name)
	if err != nil {
		return nil, err
	}
	c.UserID = userID
	k, err := s.cfg.Keys.CreateKey(ctx, *c)
	if err == nil && in.Enabled != nil && !*in.Enabled {
		disabled := true
		if _, err = s.cfg.Keys.UpdateKey(ctx, k.ID, keyward.KeyUpdate{Disabled: &disabled}); err != nil {
			s.undo(ctx, "deleting a key that could not be disabled", s.cfg.Keys.DeleteKey(ctx, k.ID))
		}
	}
	if err != nil {
		if created {
			s.undo(ctx, "deleting the user made for a key that was refused", s.cfg.Tenancy.DeleteUser(ctx, in.APIID, userID))
		}
		return nil, err
	}
	return &createKeyData{KeyID: k.ID, Key: k.Secret}, nil
}

// undo logs the failure of a step that undoes a refused call's changes.
func (s *Server) undo(ctx context.Context, what string, err error) {
	if err != nil {
		s.log.ErrorContext(ctx, what, "err", err)
	}
}

// keyCreate checks in and returns the keyward key it asks for, without
// its user.
func (s *Server) keyCreate(ctx context.Context, in *createKeyRequest) (*keyward.KeyCreate, error) {
	if in.APIID == "" {
		return nil, badField("apiId", "is required")
	}
	if in.Recoverable {
		return nil, badField("recoverable", "keyward stores only a hash of each key and cannot recover it; send false or leave it out")
	}
	if b := in.ByteLength; b != nil && (*b < minByteLength || *b > maxByteLength) {
		return nil, badField("byteLength", "must be between %d and %d: every keyward key carries %d bytes of randomness", minByteLength, maxByteLength, maxByteLength)
	}
	c := &keyward.KeyCreate{AccountID: in.APIID, Role: keyward.RoleUser, Name: in.Name, Meta: in.Meta, Roles: in.Roles, Permissions: in.Permissions}
	if in.Expires != nil {
		c.ExpiresAt = expiry(*in.Expires)
	}
	var err error
	if in.Credits != nil {
		if c.Credits, err = in.Credits.credits("credits"); err != nil {
			return nil, err
		}
	}
	if c.RateLimits, err = rateLimits(in.Ratelimits); err != nil {
		return nil, err
	}
	// Reading the account checks that the caller may use it.
	a, err := s.cfg.Tenancy.Account(ctx, in.APIID)
	if err != nil {
		return nil, err
	}
	if in.Prefix != "" {
		if c.Environment, err = s.environmentOf(in.Prefix, a.KeyPrefix); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// environmentOf returns the environment whose user keys in an account with
// accountPrefix have prefix p, or a refusal naming the prefixes there are.
func (s *Server) environmentOf(p, accountPrefix string) (string, error) {
	p = strings.TrimSuffix(p, "_")
	var have []string
	for _, env := range s.cfg.Prefixes.EnvironmentNames() {
		got, err := s.cfg.Prefixes.Prefix(keyward.RoleUser, env, accountPrefix)
		if err != nil {
			continue
		}
		if got == p {
			return env, nil
		}
		have = append(have, got)
	}
	return "", badField("prefix", "keyward gives the keys of this API one prefix per environment (%s); set the account's key_prefix to change them", strings.Join(have, ", "))
}

// userFor returns the id of the account's user with externalID, creating
// it if missing, or of a new user without an external id when externalID
// is empty; created says the user was made here.
func (s *Server) userFor(ctx context.Context, accountID, externalID, keyName string) (id string, created bool, err error) {
	if externalID != "" {
		u, err := s.cfg.Tenancy.UserByExternalID(ctx, accountID, externalID)
		if err == nil {
			return u.ID, false, nil
		}
		if keyward.ErrorCode(err) != keyward.ENOTFOUND {
			return "", false, err
		}
	}
	name := externalID
	if name == "" {
		name = keyName
	}
	if name == "" {
		name = "key"
	}
	u, err := s.cfg.Tenancy.CreateUser(ctx, accountID, keyward.UserCreate{Name: name, ExternalID: externalID})
	if keyward.ErrorCode(err) == keyward.ECONFLICT && externalID != "" {
		// Another call made the identity meanwhile: use it.
		u, err = s.cfg.Tenancy.UserByExternalID(ctx, accountID, externalID)
		if err != nil {
			return "", false, err
		}
		return u.ID, false, nil
	}
	if err != nil {
		return "", false, err
	}
	return u.ID, true, nil
}

type getKeyRequest struct {
	KeyID   string `json:"keyId"`
	Decrypt bool   `json:"decrypt"`
}

func (s *Server) getKey(ctx context.Context, _ *http.Request, in *getKeyRequest) (*keyData, error) {
	if in.KeyID == "" {
		return nil, badField("keyId", "is required")
	}
	if in.Decrypt {
		return nil, errDecrypt
	}
	return s.keyData(ctx, in.KeyID)
}

// keyData reads the key id with its live credits.
func (s *Server) keyData(ctx context.Context, id string) (*keyData, error) {
	k, err := s.cfg.Keys.Key(ctx, id)
	if err != nil {
		return nil, err
	}
	c := k.Credits
	if c != nil {
		if c, err = s.cfg.Keys.Credits(ctx, id); err != nil {
			return nil, err
		}
	}
	return keyDataOf(k, c), nil
}

type deleteKeyRequest struct {
	KeyID     string `json:"keyId"`
	Permanent bool   `json:"permanent"`
}

// deleteKey deletes the key; keyward's deletion is always permanent, which
// also does what a soft deletion does (the key stops verifying and is no
// longer listed).
func (s *Server) deleteKey(ctx context.Context, _ *http.Request, in *deleteKeyRequest) (empty, error) {
	if in.KeyID == "" {
		return empty{}, badField("keyId", "is required")
	}
	return empty{}, s.cfg.Keys.DeleteKey(ctx, in.KeyID)
}

// nullable is a field of an update that may be absent (leave it), null
// (clear it) or a value.
type nullable[T any] struct {
	Set   bool
	Null  bool
	Value T
}

// UnmarshalJSON implements json.Unmarshaler; encoding/json calls it for
// null too.
func (n *nullable[T]) UnmarshalJSON(b []byte) error {
	n.Set = true
	if bytes.Equal(b, []byte("null")) {
		n.Null = true
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	return dec.Decode(&n.Value)
}

type updateKeyRequest struct {
	KeyID       string                    `json:"keyId"`
	Name        nullable[string]          `json:"name"`
	ExternalID  nullable[string]          `json:"externalId"`
	Meta        nullable[json.RawMessage] `json:"meta"`
	Expires     nullable[int64]           `json:"expires"`
	Credits     nullable[creditsRequest]  `json:"credits"`
	Ratelimits  *[]ratelimitRequest       `json:"ratelimits"`
	Enabled     *bool                     `json:"enabled"`
	Roles       *[]string                 `json:"roles"`
	Permissions *[]string                 `json:"permissions"`
}

// updateKey changes the fields given. Everything is checked before
// anything is written, so a refused update changes nothing.
func (s *Server) updateKey(ctx context.Context, _ *http.Request, in *updateKeyRequest) (empty, error) {
	if in.KeyID == "" {
		return empty{}, badField("keyId", "is required")
	}
	var u keyward.KeyUpdate
	changes := false
	if in.Name.Set {
		u.Name, changes = &in.Name.Value, true
	}
	if in.Meta.Set {
		m := in.Meta.Value
		if in.Meta.Null {
			m = json.RawMessage("null")
		}
		u.Meta, changes = &m, true
	}
	if in.Expires.Set {
		if in.Expires.Null {
			u.ClearExpiry = true
		} else {
			u.ExpiresAt = expiry(in.Expires.Value)
		}
		changes = true
	}
	if in.Ratelimits != nil {
		rl, err := rateLimits(*in.Ratelimits)
		if err != nil {
			return empty{}, err
		}
		u.RateLimits, changes = &rl, true
	}
	if in.Enabled != nil {
		disabled := !*in.Enabled
		u.Disabled, changes = &disabled, true
	}
	if in.Roles != nil {
		u.Roles, changes = in.Roles, true
	}
	if in.Permissions != nil {
		u.Permissions, changes = in.Permissions, true
	}
	var credits *keyward.Credits
	if in.Credits.Set {
		if !in.Credits.Null {
			if in.Credits.Value.Remaining == nil && in.Credits.Value.Refill != nil {
				return empty{}, badField("credits.remaining", "is required with a refill: keyward replaces a key's credits whole")
			}
			c, err := in.Credits.Value.credits("credits")
			if err != nil {
				return empty{}, err
			}
			credits = c
		}
		// Changing credits takes a root key: refuse before changing
		// anything else.
		if id := keyward.IdentityFrom(ctx); id == nil || id.Role != keyward.RoleRoot {
			return empty{}, keyward.Errorf(keyward.EFORBIDDEN, "changing a key's credits needs a root key")
		}
	}
	k, err := s.cfg.Keys.Key(ctx, in.KeyID)
	if err != nil {
		return empty{}, err
	}
	if in.ExternalID.Set && in.ExternalID.Value != k.UserExternalID {
		return empty{}, badField("externalId", "a keyward key stays with the identity it was created for; create a key for the other identity instead")
	}
	if changes {
		if _, err := s.cfg.Keys.UpdateKey(ctx, in.KeyID, u); err != nil {
			return empty{}, err
		}
	}
	if in.Credits.Set {
		if _, err := s.cfg.Keys.SetCredits(ctx, in.KeyID, credits); err != nil {
			return empty{}, err
		}
	}
	return empty{}, nil
}

type whoamiRequest struct {
	Key string `json:"key"`
}

// whoami answers the key a raw key is, as getKey does. Finding it spends
// none of its limits or credits; a key the caller may not read is not
// found, as in getKey.
func (s *Server) whoami(ctx context.Context, r *http.Request, in *whoamiRequest) (*keyData, error) {
	if in.Key == "" {
		return nil, badField("key", "is required")
	}
	res := s.cfg.Engine.Verify(ctx, verify.Request{Key: in.Key, IP: s.clientIP(r), Unmetered: true})
	if res.Decision == keyward.DecisionUnavailable {
		return nil, keyward.Errorf(keyward.EUNAVAILABLE, "the key cannot be looked up now: try again")
	}
	id := res.KeyID()
	if id == "" {
		return nil, errKeyNotFound
	}
	d, err := s.keyData(ctx, id)
	if keyward.ErrorCode(err) == keyward.ENOTFOUND {
		return nil, errKeyNotFound
	}
	return d, err
}

var errKeyNotFound = keyward.Errorf(keyward.ENOTFOUND, "key not found")
