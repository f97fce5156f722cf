package keyward

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"strconv"
	"strings"
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
	// Redacted says the actor is of another account than the reader's
	// (a secret scanner reporting a leak, say): only its role is shown.
	// Never stored: set on what a reader other than root is given.
	Redacted bool `json:"redacted,omitempty"`
}

// RedactedFor returns the actor as a reader of account accountID may see
// it: whole when it is of that account, keyward itself or has no account
// (root); otherwise its role alone, marked Redacted.
func (a AuditActor) RedactedFor(accountID string) AuditActor {
	if a.AccountID == "" || a.AccountID == accountID {
		return a
	}
	return AuditActor{Role: a.Role, Redacted: true}
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
// form a chain: Hash is an HMAC-SHA256 (plain SHA-256 for entries written
// before the chain was keyed) over PrevHash and the entry's fields (see
// ChainHash), so editing, deleting or reordering a row breaks the chain
// from that row on, and only a holder of the master keys can make a hash
// that fits.
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
	// ChainVersion says how Hash was made: 0 is plain SHA-256 (entries
	// written before the chain was keyed), V is HMAC-SHA256 under the
	// chain key derived from master key version V. The store sets it from
	// ChainKey on append.
	ChainVersion int `json:"chain_version,omitempty"`
	// ChainKey, set by whoever appends the entry, is the key the store
	// chains it with. It is never stored. Without one the entry is hashed
	// with plain SHA-256, which a keyed verification refuses after the
	// first keyed entry: only tests and tools without master keys append
	// so.
	ChainKey *AuditChainKey `json:"-"`
}

// AuditChainKey keys the audit chain: HMAC-SHA256 under Key, derived from
// master key Version (keyring.Keyring.AuditChainKey). It lives with the
// master keys, outside the database.
type AuditChainKey struct {
	Version int
	Key     []byte
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

// ChainHash returns the hash of e after prev, over prev and each field that
// the store keeps, length-prefixed so no two entries share an encoding:
// HMAC-SHA256 under key (the chain key of master key version
// e.ChainVersion, which it covers too) for a keyed entry, plain SHA-256
// (key unused) for an entry of ChainVersion 0. Details (clear text) is not
// covered; Sealed is. For an entry sealed directly under a master key,
// KeyVersion is covered too; for an enveloped one (with a WrappedKey)
// neither the wrapped key nor its KeyVersion is, so re-wrapping leaves the
// hash as it was.
func (e *AuditEntry) ChainHash(prev, key []byte) []byte {
	var h hash.Hash
	if e.ChainVersion == 0 {
		h = sha256.New()
	} else {
		h = hmac.New(sha256.New, key)
	}
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
	if e.ChainVersion != 0 {
		binary.BigEndian.PutUint64(n[:], uint64(e.ChainVersion))
		field(n[:])
	}
	return h.Sum(nil)
}

// Chain sets e's ChainVersion from its ChainKey (0 without one) and its
// PrevHash and Hash as the entry after prev. Stores call it on append.
func (e *AuditEntry) Chain(prev []byte) {
	var key []byte
	e.ChainVersion = 0
	if e.ChainKey != nil {
		e.ChainVersion, key = e.ChainKey.Version, e.ChainKey.Key
	}
	e.PrevHash = prev
	e.Hash = e.ChainHash(prev, key)
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
	// Truncated says the log ends before the checkpoint it was checked
	// against: its newest entries were deleted.
	Truncated bool `json:"truncated,omitempty"`
}

// AuditChain checks entries read in order, page by page: feed each page to
// Check. The zero value starts at the first entry and checks plain SHA-256
// entries only; set Keys to check keyed ones, and Expect to check against
// a checkpoint taken earlier.
type AuditChain struct {
	// Keys returns the chain key of a master key version
	// (keyring.Keyring.AuditChainKey). With Keys set the chain must be
	// keyed: once an entry is keyed every later one must be, and a chain
	// of entries with none keyed fails (keyward serve keys the chain at
	// start), so rewriting entries with plain SHA-256 hashes is detected;
	// and chain versions never go down along the chain, so a retired
	// master key cannot chain entries after those of a newer one.
	// Without it a keyed entry cannot be checked and fails.
	Keys func(version int) ([]byte, error)
	// Expect is a checkpoint taken earlier (keyward audit head, the
	// audit.checkpoint event): the chain must still hold its entry with
	// its hash. A log that ends before it lost its tail.
	Expect *AuditCheckpoint

	prev    []byte
	next    int64 // the Seq the next entry must have; 0 means 1
	checked int64
	version int // the chain version of the last entry checked
	keyed   bool
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
		if problem := c.problem(e); problem != "" {
			c.bad = &AuditVerification{FirstBad: e.Seq, Problem: problem}
			return false
		}
		c.prev, c.next, c.version = e.Hash, e.Seq+1, e.ChainVersion
		c.keyed = c.keyed || e.ChainVersion != 0
	}
	return true
}

// problem says what is wrong with e as the next entry of the chain; ""
// when nothing is.
func (c *AuditChain) problem(e *AuditEntry) string {
	switch {
	case e.Seq != c.next:
		return "expected sequence " + itoa(c.next) + ": an entry before it was deleted or the rows were reordered"
	case string(e.PrevHash) != string(c.prev):
		return "its previous hash does not match the entry before it: an entry before it was deleted, edited or reordered"
	case e.ChainVersion == 0 && c.keyed:
		return "it is hashed with plain SHA-256 after keyed entries: it was written or rewritten without the chain key"
	case e.ChainVersion < c.version:
		// Master keys only move up: a retired key cannot chain entries
		// after those of a newer one.
		return "it is chained with master key version " + strconv.Itoa(e.ChainVersion) + ", older than the entry before it (" + strconv.Itoa(c.version) + "): it was written or rewritten with a retired master key"
	}
	var key []byte
	if e.ChainVersion != 0 {
		if c.Keys == nil {
			return "it is keyed with master key version " + strconv.Itoa(e.ChainVersion) + ": check it with the master keys (keyward audit verify)"
		}
		var err error
		if key, err = c.Keys(e.ChainVersion); err != nil {
			return "its chain key cannot be derived: " + ErrorMessage(err)
		}
	}
	if !hmac.Equal(e.ChainHash(c.prev, key), e.Hash) {
		return "its hash does not match its contents: the entry was edited"
	}
	if x := c.Expect; x != nil && e.Seq == x.Seq && hex.EncodeToString(e.Hash) != strings.ToLower(x.Hash) {
		return "its hash differs from the checkpoint's: the log was rewritten from here, or the checkpoint is of another log"
	}
	return ""
}

// Result returns the verification of everything checked.
func (c *AuditChain) Result() AuditVerification {
	switch {
	case c.bad != nil:
		r := *c.bad
		r.Entries = c.checked
		return r
	case c.Keys != nil && c.checked > 0 && !c.keyed:
		return AuditVerification{Entries: c.checked, FirstBad: 1, Problem: "no entry is keyed: the log was rewritten with plain SHA-256 hashes (keyward serve appends a keyed entry at start)"}
	case c.Expect != nil && c.next-1 < c.Expect.Seq:
		last := c.next - 1
		if last < 0 {
			last = 0
		}
		return AuditVerification{Entries: c.checked, FirstBad: last + 1, Truncated: true,
			Problem: fmt.Sprintf("the log ends at entry %d, before entry %d of the checkpoint: its newest entries were deleted", last, c.Expect.Seq)}
	}
	return AuditVerification{OK: true, Entries: c.checked}
}

// AuditCheckpoint is the head of the audit chain at a moment: its newest
// entry's Seq and Hash (hex), with MAC (hex), an HMAC-SHA256 over both under
// the chain key of master key KeyVersion, so a holder of the master keys
// can tell a genuine checkpoint. Kept outside the database (published as
// the audit.checkpoint event, printed by keyward audit head), it shows a
// deleted tail: audit verify --expect SEQ:HASH.
type AuditCheckpoint struct {
	Seq        int64     `json:"seq"`
	Hash       string    `json:"hash"`
	KeyVersion int       `json:"key_version,omitempty"`
	MAC        string    `json:"mac,omitempty"`
	Time       time.Time `json:"time,omitzero"`
}

// CheckpointMAC returns the MAC of a checkpoint of entry seq with hash
// under a chain key.
func CheckpointMAC(key []byte, seq int64, hash []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte("keyward audit checkpoint\x00"))
	m.Write(binary.BigEndian.AppendUint64(nil, uint64(seq)))
	m.Write(hash)
	return m.Sum(nil)
}

// String returns c as audit verify --expect takes it: SEQ:HASH.
func (c *AuditCheckpoint) String() string { return itoa(c.Seq) + ":" + c.Hash }

// ParseAuditCheckpoint reads SEQ:HASH (a positive sequence number and a
// hex SHA-256 size hash), as keyward audit head prints it. EINVALID
// otherwise.
func ParseAuditCheckpoint(s string) (*AuditCheckpoint, error) {
	seqText, hashText, ok := strings.Cut(s, ":")
	seq, err := strconv.ParseInt(seqText, 10, 64)
	if !ok || err != nil || seq < 1 {
		return nil, Errorf(EINVALID, "checkpoint %q: write it SEQ:HASH as keyward audit head prints it, e.g. 42:%s", s, strings.Repeat("0f", sha256.Size))
	}
	if b, err := hex.DecodeString(hashText); err != nil || len(b) != sha256.Size {
		return nil, Errorf(EINVALID, "checkpoint %q: the hash is not %d hex digits: copy it from keyward audit head", s, 2*sha256.Size)
	}
	return &AuditCheckpoint{Seq: seq, Hash: strings.ToLower(hashText)}, nil
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
// user nothing (EFORBIDDEN); only root verifies the chain and reads its
// head. Implemented by
// admin.Audit and client.Client.
type AuditService interface {
	AuditEntries(ctx context.Context, f AuditFilter, p Page) (*AuditList, error)
	// VerifyAudit checks the whole chain; with expect (nil: none) it also
	// checks that the log still holds that checkpoint's entry.
	VerifyAudit(ctx context.Context, expect *AuditCheckpoint) (*AuditVerification, error)
	// AuditHead returns a checkpoint of the chain's newest entry.
	AuditHead(ctx context.Context) (*AuditCheckpoint, error)
}
