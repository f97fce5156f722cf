package keyward

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"strconv"
	"time"
)

// AuditActor is who did something recorded in the audit log.
type AuditActor struct {
	KeyID     string `json:"key_id,omitempty"`
	AccountID string `json:"account_id,omitempty"`
	UserID    string `json:"user_id,omitempty"`
	Role      Role   `json:"role,omitempty"`
	Agent     string `json:"agent,omitempty"`
	IP        string `json:"ip,omitempty"`
	UserAgent string `json:"user_agent,omitempty"`
	RequestID string `json:"request_id,omitempty"`
	// System names keyward itself acting (abuse detection, a job), with
	// no key.
	System string `json:"system,omitempty"`
}

// AuditOutcome says how an audited action ended.
type AuditOutcome string

// Outcomes of audited actions.
const (
	AuditSuccess AuditOutcome = "success"
	AuditDenied  AuditOutcome = "denied"
)

// AuditEntry is one row of the audit log: an admin mutation or a security
// event, appended in the same transaction as the change it records. Entries
// form a hash chain: Hash is SHA-256 over PrevHash and the entry's fields
// (see ChainHash), so editing, deleting or reordering a row breaks the chain
// from that row on.
type AuditEntry struct {
	// Seq numbers the entries from 1, without gaps; set by the store.
	Seq  int64     `json:"seq"`
	Time time.Time `json:"time"`
	// Actor is who acted.
	Actor AuditActor `json:"actor"`
	// Action is what was done: key.create, key.revoke, ip.blocked, ...
	Action string `json:"action"`
	// TargetType and TargetID name what was acted on (key, account, user,
	// ip_rule, anomaly).
	TargetType string `json:"target_type,omitempty"`
	TargetID   string `json:"target_id,omitempty"`
	// AccountID is the account the target belongs to, for scoping reads;
	// empty for global targets.
	AccountID string       `json:"account_id,omitempty"`
	Outcome   AuditOutcome `json:"outcome"`
	// Details is a JSON object with what changed, in clear: callers set it
	// on append, readers get it once decrypted. It is never stored in
	// clear: the store holds Sealed.
	Details json.RawMessage `json:"details,omitempty"`
	// Sealed is Details encrypted (AES-256-GCM); the hash covers it. With
	// a WrappedKey (envelope encryption) it is sealed under a data key of
	// its own, which is WrappedKey opened with master key KeyVersion;
	// without one (entries written before envelopes) it is sealed directly
	// under master key KeyVersion. Both use DetailsAD as additional data.
	Sealed []byte `json:"-"`
	// WrappedKey is the entry's data key sealed under master key
	// KeyVersion. The hash covers neither, so a rekey can re-wrap the
	// data key under a new master key without breaking the chain; an
	// altered WrappedKey can only make the details unreadable, never
	// change them (Sealed is authenticated under the data key).
	WrappedKey []byte `json:"-"`
	KeyVersion int    `json:"-"`
	PrevHash   []byte `json:"-"`
	Hash       []byte `json:"hash"`
}

// DetailsAD is the additional data of the entry's sealed details and
// wrapped data key: they open only as the details of that action on that
// target.
func (e *AuditEntry) DetailsAD() []byte {
	return []byte(e.Action + "\x00" + e.TargetType + "\x00" + e.TargetID)
}

// envelopeMark stands in the hash of an enveloped entry (one with a
// WrappedKey) where an entry sealed directly has its KeyVersion. Its length
// differs from the 8 bytes of a version, so no entry of one kind hashes
// like an entry of the other.
const envelopeMark = "envelope-v1"

// ChainHash returns the hash of e after prev: SHA-256 over prev and each
// field that the store keeps, length-prefixed so no two entries share an
// encoding. Details (clear text) is not covered; Sealed is. For an entry
// sealed directly under a master key, KeyVersion is covered too; for an
// enveloped one (with a WrappedKey) neither the wrapped key nor its
// KeyVersion is, so re-wrapping leaves the hash as it was.
func (e *AuditEntry) ChainHash(prev []byte) []byte {
	h := sha256.New()
	var n [8]byte
	field := func(b []byte) {
		binary.BigEndian.PutUint64(n[:], uint64(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	actor, _ := json.Marshal(e.Actor) // a struct of strings: never fails
	binary.BigEndian.PutUint64(n[:], uint64(e.Seq))
	field(prev)
	field(n[:])
	field([]byte(e.Time.UTC().Format(time.RFC3339Nano)))
	field(actor)
	for _, s := range []string{e.Action, e.TargetType, e.TargetID, e.AccountID, string(e.Outcome)} {
		field([]byte(s))
	}
	if len(e.WrappedKey) > 0 {
		field([]byte(envelopeMark))
	} else {
		binary.BigEndian.PutUint64(n[:], uint64(e.KeyVersion))
		field(n[:])
	}
	field(e.Sealed)
	return h.Sum(nil)
}

// Validate returns EINVALID unless e has the fields a store requires: an
// Action, an Outcome and a Time.
func (e *AuditEntry) Validate() error {
	switch {
	case e == nil:
		return Errorf(EINVALID, "append audit entry: no entry")
	case e.Action == "":
		return Errorf(EINVALID, "append audit entry: action is required")
	case e.Outcome == "":
		return Errorf(EINVALID, "append audit entry %s: outcome is required", e.Action)
	case e.Time.IsZero():
		return Errorf(EINVALID, "append audit entry %s: time is required", e.Action)
	}
	return nil
}

// SealedBytes returns Sealed, or an empty slice for nil: stores keep
// "no details" as empty bytes, not NULL.
func (e *AuditEntry) SealedBytes() []byte {
	if e.Sealed == nil {
		return []byte{}
	}
	return e.Sealed
}

// WrappedKeyBytes returns WrappedKey, or an empty slice for nil, as stores
// keep it.
func (e *AuditEntry) WrappedKeyBytes() []byte {
	if e.WrappedKey == nil {
		return []byte{}
	}
	return e.WrappedKey
}

// ParseAuditCursor parses the cursor of an audit page: "" (the start) or
// the Seq of the last entry of the previous page. EINVALID otherwise.
func ParseAuditCursor(after string) (int64, error) {
	if after == "" {
		return 0, nil
	}
	seq, err := strconv.ParseInt(after, 10, 64)
	if err != nil || seq < 0 {
		return 0, Errorf(EINVALID, "audit cursor %q is not a sequence number", after)
	}
	return seq, nil
}

// AuditFilter narrows an audit query. Empty fields match everything.
type AuditFilter struct {
	ActorKeyID string
	Action     string
	TargetID   string
	AccountID  string
	// Since and Until bound Time: Since <= Time < Until.
	Since, Until time.Time
}

// AuditList is one page of the audit log, oldest first; Next is the
// cursor (a sequence number) of the following page.
type AuditList struct {
	Items []*AuditEntry `json:"items"`
	Next  string        `json:"next,omitempty"`
}

// AuditVerification is the result of checking the audit log's hash chain.
type AuditVerification struct {
	// OK says the chain is intact.
	OK bool `json:"ok"`
	// Entries is how many entries were checked.
	Entries int64 `json:"entries"`
	// FirstBad is the sequence number of the first entry that does not
	// fit the chain (edited, or following a deleted or reordered one);
	// 0 when OK.
	FirstBad int64 `json:"first_bad,omitempty"`
	// Problem says what is wrong with FirstBad.
	Problem string `json:"problem,omitempty"`
}

type auditKey struct{}

// NewContextWithAudit returns ctx carrying e: a store's write method called
// with it appends e to the audit log in the same transaction as its change
// (Seq, PrevHash and Hash are set then, and Time truncated to the
// microseconds stores keep, in UTC). The entry must be sealed already; an
// invalid one (Validate) fails the write with EINVALID, changing nothing.
func NewContextWithAudit(ctx context.Context, e *AuditEntry) context.Context {
	return context.WithValue(ctx, auditKey{}, e)
}

// AuditFrom returns the audit entry ctx carries, or nil.
func AuditFrom(ctx context.Context) *AuditEntry {
	e, _ := ctx.Value(auditKey{}).(*AuditEntry)
	return e
}

// AuditChain checks entries read in order, page by page: feed each page to
// Check. The zero value starts at the first entry.
type AuditChain struct {
	prev    []byte
	next    int64 // the Seq the next entry must have; 0 means 1
	checked int64
	bad     *AuditVerification
}

// Check verifies a page of entries following those checked before, and
// reports whether the chain is still intact.
func (c *AuditChain) Check(entries []*AuditEntry) bool {
	if c.bad != nil {
		return false
	}
	if c.next == 0 {
		c.next = 1
	}
	for _, e := range entries {
		c.checked++
		switch {
		case e.Seq != c.next:
			c.bad = &AuditVerification{FirstBad: e.Seq, Problem: "expected sequence " + itoa(c.next) + ": an entry before it was deleted or the rows were reordered"}
		case string(e.PrevHash) != string(c.prev):
			c.bad = &AuditVerification{FirstBad: e.Seq, Problem: "its previous hash does not match the entry before it: an entry before it was deleted, edited or reordered"}
		case string(e.ChainHash(c.prev)) != string(e.Hash):
			c.bad = &AuditVerification{FirstBad: e.Seq, Problem: "its hash does not match its contents: the entry was edited"}
		}
		if c.bad != nil {
			return false
		}
		c.prev, c.next = e.Hash, e.Seq+1
	}
	return true
}

// Result returns the verification of everything checked.
func (c *AuditChain) Result() AuditVerification {
	if c.bad != nil {
		r := *c.bad
		r.Entries = c.checked
		return r
	}
	return AuditVerification{OK: true, Entries: c.checked}
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// RequestInfo describes the HTTP request an action came in with, for the
// actor of its audit entry.
type RequestInfo struct {
	IP        string
	UserAgent string
	RequestID string
}

type requestInfoKey struct{}

// NewContextWithRequestInfo returns ctx carrying ri.
func NewContextWithRequestInfo(ctx context.Context, ri RequestInfo) context.Context {
	return context.WithValue(ctx, requestInfoKey{}, ri)
}

// RequestInfoFrom returns the request information ctx carries (zero if
// none).
func RequestInfoFrom(ctx context.Context) RequestInfo {
	ri, _ := ctx.Value(requestInfoKey{}).(RequestInfo)
	return ri
}

// AuditService reads and checks the audit log for a caller (the identity in
// ctx): root reads everything, an account admin its account's entries, a
// user nothing (EFORBIDDEN); only root verifies the chain. Implemented by
// admin.Service and client.Client.
type AuditService interface {
	AuditEntries(ctx context.Context, f AuditFilter, p Page) (*AuditList, error)
	VerifyAudit(ctx context.Context) (*AuditVerification, error)
}
