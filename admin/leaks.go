package admin

import (
	"context"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/permission"
	"github.com/keyward/keyward/verify"
)

// ReportLeaks revokes at once every key whose raw token is reported found
// somewhere public, and answers per token, in order: revoked, or not_found
// for a token that is malformed or no key's (the two are not told apart). A
// token is found exactly as verification finds it (verify.FindKey), so keys
// imported as SHA-256 digests are found whatever their format. A key already
// revoked is revoked again, idempotently; each report of a key writes its
// own key.leaked audit entry, with the source and URL but never the token.
//
// Unless r.Cascade is false, the descendants of each key found (the keys it
// created, and so on: see RevokeKeyCascade) are revoked with it in the same
// transaction, each with a key.revoke entry; a root key's never are, as its
// descendants are every account's keys.
//
// The caller must be root or hold keyward.PermissionReportLeak, and may
// then report any key: a secret scanner finds keys of every account. Only
// root learns the revoked key's id; other callers get the status alone, so
// a scanner learns nothing about a key beyond what holding its token
// already told it (that it was live), and cannot map tokens to keys or
// accounts.
//
// Tokens are handled one by one; a store failure ends the report with its
// error, after the keys of earlier tokens were revoked. Reporting again is
// safe.
func (s *Abuse) ReportLeaks(ctx context.Context, r keyward.LeakReport) (*keyward.LeakResults, error) {
	id, unlock, err := s.writer(ctx)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !isRoot(id) && !permission.Holds(id.Permissions, keyward.PermissionReportLeak) {
		return nil, keyward.Errorf(keyward.EFORBIDDEN, "reporting leaked keys needs a root key or a key with the %s permission", keyward.PermissionReportLeak)
	}
	if err := validateLeakReport(r); err != nil {
		return nil, err
	}
	cascade := r.Cascade == nil || *r.Cascade
	res := &keyward.LeakResults{Results: make([]keyward.LeakResult, 0, len(r.Tokens))}
	for _, t := range r.Tokens {
		// Where a key was found may quote it: never logged nor kept.
		t.Source, t.URL = apikey.Redact(t.Source), apikey.Redact(t.URL)
		k, cascaded, err := s.revokeLeakedToken(ctx, id, t, cascade)
		if err != nil {
			return nil, err
		}
		if k == nil {
			res.Results = append(res.Results, keyward.LeakResult{Status: keyward.LeakNotFound})
			continue
		}
		out := keyward.LeakResult{Status: keyward.LeakRevoked}
		if isRoot(id) {
			out.KeyID, out.Cascaded = k.ID, cascaded
		}
		res.Results = append(res.Results, out)
	}
	return res, nil
}

// revokeLeakedToken revokes the key of t's token with its key.leaked audit
// entry and event and, with cascade, its descendants (each with its
// key.revoke entry and event; never a root key's), in one transaction. It
// returns the key and how many descendants it revoked; nil if the token is
// no key's.
func (s *Abuse) revokeLeakedToken(ctx context.Context, id *keyward.Identity, t keyward.LeakedToken, cascade bool) (*keyward.Key, int, error) {
	k, err := s.keyByToken(ctx, t.Token)
	if k == nil || err != nil {
		return nil, 0, err
	}
	details := map[string]string{"source": t.Source, "url": t.URL}
	var changed []*keyward.Key
	if cascade && k.Role != keyward.RoleRoot {
		changed, err = s.keys.revokeTree(ctx, id, k.ID, "leaked", func(k *keyward.Key, _ time.Time) (*keyward.AuditEntry, []*keyward.Event, error) {
			return s.auditChange(ctx, id, "key.leaked", "key", k.ID, k.AccountID, details)
		})
	} else {
		var ch keyward.Change
		if ch, err = s.audit(ctx, id, "key.leaked", "key", k.ID, k.AccountID, details); err != nil {
			return nil, 0, err
		}
		if k, err = s.keys.revokeWith(ctx, ch, k.ID); err == nil {
			changed = []*keyward.Key{k}
		}
	}
	switch keyward.ErrorCode(err) {
	case "":
	case keyward.ENOTFOUND: // deleted since the lookup
		return nil, 0, nil
	default:
		return nil, 0, err
	}
	cascaded := len(changed) - 1
	s.log.WarnContext(ctx, "key revoked: reported leaked", "key_id", changed[0].ID, "account_id", changed[0].AccountID, "descendants", cascaded, "source", t.Source, "url", t.URL, "by", id.KeyID)
	return changed[0], cascaded, nil
}

// keyByToken returns the key whose raw token is raw, found as verification
// finds it (verify.FindKey): by its peppered hashes, then by its SHA-256
// digest as an imported key; nil if raw is no key's.
func (s *Abuse) keyByToken(ctx context.Context, raw string) (*keyward.Key, error) {
	k, err := verify.FindKey(ctx, s.store, s.hasher, raw)
	if keyward.ErrorCode(err) == keyward.ENOTFOUND {
		return nil, nil
	}
	return k, err
}

// validateLeakReport checks the bounds of r. Its errors name a token by
// its position, never by its value.
func validateLeakReport(r keyward.LeakReport) error {
	if len(r.Tokens) == 0 || len(r.Tokens) > keyward.MaxLeakTokens {
		return keyward.Errorf(keyward.EINVALID, "tokens must hold 1 to %d tokens; split a longer list into several reports", keyward.MaxLeakTokens)
	}
	for i, t := range r.Tokens {
		if t.Token == "" || len(t.Token) > keyward.MaxLeakTokenLen {
			return keyward.Errorf(keyward.EINVALID, "tokens[%d].token must be 1 to %d bytes", i, keyward.MaxLeakTokenLen)
		}
		if !printable(t.Source, keyward.MaxLeakSourceLen) {
			return keyward.Errorf(keyward.EINVALID, "tokens[%d].source must be printable text of at most %d bytes", i, keyward.MaxLeakSourceLen)
		}
		if !printable(t.URL, keyward.MaxLeakURLLen) {
			return keyward.Errorf(keyward.EINVALID, "tokens[%d].url must be printable text of at most %d bytes", i, keyward.MaxLeakURLLen)
		}
	}
	return nil
}
