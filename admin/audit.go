package admin

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// Audit reads and checks the audit log, keeps its chain keyed and
// checkpointed, and reports usage.
type Audit struct {
	recorder
	store auditStore
}

var (
	_ keyward.AuditService = (*Audit)(nil)
	_ keyward.UsageService = (*Audit)(nil)
)

// auditStore is what Audit reads and writes.
type auditStore interface {
	AppendAudit(ctx context.Context, e *keyward.AuditEntry) error
	LastAuditEntry(ctx context.Context) (*keyward.AuditEntry, error)
	AuditEntries(ctx context.Context, f keyward.AuditFilter, p keyward.Page) ([]*keyward.AuditEntry, string, error)
	AppendEvents(ctx context.Context, events []*keyward.Event) error
	Usage(ctx context.Context, f keyward.UsageFilter) ([]keyward.UsageRow, error)
}

// auditPageSize is the page of entries VerifyAudit reads at a time.
const auditPageSize = keyward.MaxPageLimit

// AuditDenied records a refused admin action (EFORBIDDEN) of the caller in
// ctx: route names what was tried.
func (s *Audit) AuditDenied(ctx context.Context, route string, cause error) {
	id := keyward.IdentityFrom(ctx)
	e, err := s.auditEntry(ctx, id, "auth.denied", "route", route, "", keyward.AuditDenied,
		map[string]string{"route": route, "reason": keyward.ErrorMessage(cause)})
	if err == nil {
		if id != nil {
			e.AccountID = id.AccountID
		}
		err = s.store.AppendAudit(ctx, e)
	}
	if err != nil {
		s.log.ErrorContext(ctx, "recording a refused action in the audit log", "route", route, "err", err)
	}
}

// AuditEntries lists audit entries with their details opened: all for
// root, its own account's for an account admin (entries about its
// account's objects and those it made), with actors of other accounts
// redacted (keyward.AuditActor.RedactedFor); a user may not.
func (s *Audit) AuditEntries(ctx context.Context, f keyward.AuditFilter, p keyward.Page) (*keyward.AuditList, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := scopeToAccount(id, &f.AccountID, "read the audit log"); err != nil {
		return nil, err
	}
	if p.After != "" {
		if _, err := strconv.ParseInt(p.After, 10, 64); err != nil {
			return nil, keyward.Errorf(keyward.EINVALID, "after %q: give the next of the previous page (a sequence number)", p.After)
		}
	}
	items, next, err := s.store.AuditEntries(ctx, f, p)
	if err != nil {
		return nil, err
	}
	for _, e := range items {
		if !isRoot(id) {
			e.Actor = e.Actor.RedactedFor(id.AccountID)
		}
		if len(e.Sealed) == 0 {
			continue
		}
		if s.sealer == nil {
			return nil, keyward.Errorf(keyward.EINTERNAL, "admin: audit details are sealed but no master key is configured")
		}
		if len(e.WrappedKey) > 0 {
			e.Details, err = s.sealer.OpenEnvelope(e.KeyVersion, e.WrappedKey, e.Sealed, e.DetailsAD())
		} else { // sealed directly under a master key, before envelopes
			e.Details, err = s.sealer.Open(e.KeyVersion, e.Sealed, e.DetailsAD())
		}
		if err != nil {
			return nil, keyward.WrapError(keyward.EINTERNAL, err, "admin: opening the details of audit entry %d", e.Seq)
		}
	}
	return &keyward.AuditList{Items: items, Next: next}, nil
}

// VerifyAudit checks the whole audit log's chain, keyed entries with the
// master keys; with expect, a checkpoint taken earlier, it also reports a
// log that no longer reaches it (a deleted tail). Root only.
func (s *Audit) VerifyAudit(ctx context.Context, expect *keyward.AuditCheckpoint) (*keyward.AuditVerification, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireRoot(id, "verify the audit log"); err != nil {
		return nil, err
	}
	chain := keyward.AuditChain{Expect: expect}
	if s.sealer != nil {
		chain.Keys = s.sealer.AuditChainKey
	}
	p := keyward.Page{Limit: auditPageSize}
	for {
		items, next, err := s.store.AuditEntries(ctx, keyward.AuditFilter{}, p)
		if err != nil {
			return nil, err
		}
		if !chain.Check(items) || next == "" {
			break
		}
		p.After = next
	}
	r := chain.Result()
	if !r.OK {
		s.log.ErrorContext(ctx, "the audit log's chain is broken", "first_bad", r.FirstBad, "problem", r.Problem)
	}
	return &r, nil
}

// AuditHead returns a checkpoint of the audit chain's newest entry, its
// MAC under the current chain key: kept outside the database, it lets
// VerifyAudit report a deleted tail later. Root only. The newest entry
// must be keyed and its own MAC must fit (ECONFLICT otherwise: the log was
// tampered with, see VerifyAudit); an empty log is ENOTFOUND.
func (s *Audit) AuditHead(ctx context.Context) (*keyward.AuditCheckpoint, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := requireRoot(id, "read the audit log's head"); err != nil {
		return nil, err
	}
	return s.checkpoint(ctx)
}

// PublishAuditCheckpoint writes a signed checkpoint of the audit log's
// newest entry, taken at now, to the outbox as the audit.checkpoint event
// (global: only global endpoints receive it). It returns false, publishing
// nothing, when the log is empty. The lifecycle job runs it on a schedule,
// so that a copy of the head lives outside the database.
func (s *Audit) PublishAuditCheckpoint(ctx context.Context, now time.Time) (bool, error) {
	cp, err := s.checkpoint(ctx)
	if keyward.ErrorCode(err) == keyward.ENOTFOUND {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	cp.Time = now
	data, err := json.Marshal(cp)
	if err != nil {
		return false, keyward.WrapError(keyward.EINTERNAL, err, "admin: event data of the audit checkpoint")
	}
	ev := &keyward.Event{ID: apikey.NewID("msg"), Type: keyward.EventAuditCheckpoint, Time: now, Data: data}
	return true, s.store.AppendEvents(ctx, []*keyward.Event{ev})
}

// checkpoint returns the signed checkpoint of the newest audit entry.
func (s *Audit) checkpoint(ctx context.Context) (*keyward.AuditCheckpoint, error) {
	if s.sealer == nil {
		return nil, keyward.Errorf(keyward.EINTERNAL, "admin: audit checkpoints need master keys: configure master_keys")
	}
	e, err := s.store.LastAuditEntry(ctx)
	if err != nil {
		return nil, err
	}
	if e == nil {
		return nil, keyward.Errorf(keyward.ENOTFOUND, "the audit log is empty: there is no head to checkpoint")
	}
	if e.ChainVersion == 0 {
		return nil, keyward.Errorf(keyward.ECONFLICT, "the newest audit entry (%d) is not keyed: run keyward audit verify", e.Seq)
	}
	key, err := s.sealer.AuditChainKey(e.ChainVersion)
	if err != nil {
		return nil, err
	}
	if !hmac.Equal(e.ChainHash(e.PrevHash, key), e.Hash) {
		return nil, keyward.Errorf(keyward.ECONFLICT, "the newest audit entry (%d) does not fit its MAC: it was tampered with; run keyward audit verify", e.Seq)
	}
	ck := s.sealer.CurrentAuditChainKey()
	return &keyward.AuditCheckpoint{Seq: e.Seq, Hash: hex.EncodeToString(e.Hash), KeyVersion: ck.Version,
		MAC: hex.EncodeToString(keyward.CheckpointMAC(ck.Key, e.Seq, e.Hash)), Time: s.utc()}, nil
}

// KeyAuditChain makes sure the audit chain is keyed: when its newest entry
// is hashed with plain SHA-256 (written before the chain was keyed), it
// appends audit.chain_keyed, chained with the current chain key (an empty
// log needs none: every entry appended to it is keyed). From then on a keyed verification refuses plain entries, so
// the entries before cannot be rewritten without the master keys. It
// returns the Seq of the plain head it keyed from, 0 when the chain was
// keyed already. serve calls it at start.
func (s *Audit) KeyAuditChain(ctx context.Context) (plainUntil int64, err error) {
	if s.sealer == nil {
		return 0, keyward.Errorf(keyward.EINTERNAL, "admin: keying the audit chain needs master keys: configure master_keys")
	}
	last, err := s.store.LastAuditEntry(ctx)
	if err != nil || last == nil || last.ChainVersion != 0 {
		return 0, err
	}
	e, err := s.auditEntry(ctx, systemIdentity, "audit.chain_keyed", "audit_log", "", "", keyward.AuditSuccess,
		map[string]any{"plain_until": last.Seq, "chain_version": s.sealer.CurrentAuditChainKey().Version})
	if err != nil {
		return 0, err
	}
	return last.Seq, s.store.AppendAudit(ctx, e)
}

// Usage reports verification outcomes per key, code and period: all for
// root, its own account's keys for an account admin; a user may not.
// Failures without a key (MALFORMED, NOT_FOUND) have no account: only root
// sees them.
func (s *Audit) Usage(ctx context.Context, f keyward.UsageFilter) (*keyward.UsageReport, error) {
	id, err := caller(ctx)
	if err != nil {
		return nil, err
	}
	if err := scopeToAccount(id, &f.AccountID, "read usage"); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	rows, err := s.store.Usage(ctx, f)
	if err != nil {
		return nil, err
	}
	return usageReport(f.Granularity, rows), nil
}

// usageReport is the report of rows, an empty list rather than none.
func usageReport(g keyward.UsageGranularity, rows []keyward.UsageRow) *keyward.UsageReport {
	if rows == nil {
		rows = []keyward.UsageRow{}
	}
	return &keyward.UsageReport{Granularity: g, Items: rows}
}
