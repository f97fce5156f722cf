package keywardtest

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/keyring"
)

// NewAuditEntry returns an audit entry of action, acted by key keyID of
// account accountID on target key targetID, sealed with made-up bytes.
// It is ready for Store.AppendAudit or a keyward.Change.
func NewAuditEntry(action, keyID, accountID, targetID string) *keyward.AuditEntry {
	return &keyward.AuditEntry{
		Time:       Now(),
		Actor:      keyward.AuditActor{KeyID: keyID, AccountID: accountID, Role: keyward.RoleAccountAdmin, IP: "192.0.2.7"},
		Action:     action,
		TargetType: "key",
		TargetID:   targetID,
		AccountID:  accountID,
		Outcome:    keyward.AuditSuccess,
		Sealed:     []byte("sealed:" + action),
		KeyVersion: 1,
	}
}

// AppendAuditEntries appends n entries to s with AppendAudit and returns
// them as the store completed them (Seq, PrevHash, Hash set).
func AppendAuditEntries(t testing.TB, s keyward.Store, n int) []*keyward.AuditEntry {
	t.Helper()
	entries := make([]*keyward.AuditEntry, n)
	for i := range entries {
		entries[i] = NewAuditEntry(fmt.Sprintf("test.action%d", i+1), apikey.NewID("key"), apikey.NewID("acc"), apikey.NewID("key"))
		if err := s.AppendAudit(t.Context(), entries[i]); err != nil {
			t.Fatalf("append audit entry %d: %v", i+1, err)
		}
	}
	return entries
}

// AuditLog reads the whole audit log of s, oldest first, page by page.
func AuditLog(t testing.TB, s keyward.Store) []*keyward.AuditEntry {
	t.Helper()
	var all []*keyward.AuditEntry
	p := keyward.Page{Limit: keyward.MaxPageLimit}
	for {
		page, next, err := s.AuditEntries(t.Context(), keyward.AuditFilter{}, p)
		if err != nil {
			t.Fatalf("list audit entries after %q: %v", p.After, err)
		}
		all = append(all, page...)
		if next == "" {
			return all
		}
		p.After = next
	}
}

// VerifyAudit checks the hash chain of the whole audit log of s.
func VerifyAudit(t testing.TB, s keyward.Store) keyward.AuditVerification {
	t.Helper()
	var c keyward.AuditChain
	c.Check(AuditLog(t, s))
	return c.Result()
}

// wantAuditChain fails unless the audit log of f's store is intact and
// holds n entries.
func (f *fixture) wantAuditChain(n int) {
	f.t.Helper()
	if v := VerifyAudit(f.t, f.s); !v.OK || v.Entries != int64(n) {
		f.t.Fatalf("audit chain = %+v, want intact with %d entries", v, n)
	}
}

// audited returns a change recording a new entry of action.
func (f *fixture) audited(action string) keyward.Change {
	return keyward.Change{Audit: NewAuditEntry(action, apikey.NewID("key"), "", "")}
}

// wantAuditEntry fails unless got is want as the store completed it.
func wantAuditEntry(t testing.TB, got, want *keyward.AuditEntry) {
	t.Helper()
	if got.Seq != want.Seq || !got.Time.Equal(want.Time) || got.Actor != want.Actor || got.Action != want.Action ||
		got.TargetType != want.TargetType || got.TargetID != want.TargetID || got.AccountID != want.AccountID ||
		got.Outcome != want.Outcome || !bytes.Equal(got.Sealed, want.Sealed) || got.KeyVersion != want.KeyVersion ||
		!bytes.Equal(got.PrevHash, want.PrevHash) || !bytes.Equal(got.Hash, want.Hash) {
		t.Fatalf("audit entry differs:\n got %+v\nwant %+v", got, want)
	}
	if got.Details != nil {
		t.Fatalf("audit entry %d has Details %s; stores return Sealed only", got.Seq, got.Details)
	}
	isUTC(t, "Time", got.Time)
}

func testAudit(t *testing.T, open func(*testing.T) keyward.Store) {
	t.Run("every mutation appends the entry of its change", func(t *testing.T) {
		f := newFixture(t, open)
		var (
			a    = &keyward.Account{ID: apikey.NewID("acc"), Name: "acme", CreatedAt: fixedTime, UpdatedAt: fixedTime}
			u    = &keyward.User{ID: apikey.NewID("usr"), AccountID: a.ID, Name: "alice", CreatedAt: fixedTime}
			root = minimalKey()
			k    *keyward.Key
			rule = ipRule("", keyward.IPBlock, "192.0.2.0/24")
			next *keyward.Key
		)
		mutations := []struct {
			action string
			do     func(ch keyward.Change) error
		}{
			{"account.create", func(ch keyward.Change) error { return f.s.CreateAccount(f.ctx, ch, a) }},
			{"account.update", func(ch keyward.Change) error {
				_, err := f.s.UpdateAccount(f.ctx, ch, a.ID, func(a *keyward.Account) error { a.Name = "acme2"; return nil })
				return err
			}},
			{"user.create", func(ch keyward.Change) error { return f.s.CreateUser(f.ctx, ch, u) }},
			{"key.bootstrap", func(ch keyward.Change) error { return f.s.BootstrapRootKey(f.ctx, ch, root) }},
			{"key.create", func(ch keyward.Change) error {
				k = fullKey(a.ID, u.ID)
				return f.s.CreateKey(f.ctx, ch, k)
			}},
			{"key.create_batch", func(ch keyward.Change) error {
				return f.s.CreateKeys(f.ctx, ch, batchKeys(a.ID, u.ID, 3))
			}},
			{"key.update", func(ch keyward.Change) error {
				_, err := f.s.UpdateKey(f.ctx, ch, k.ID, func(k *keyward.Key) error { k.Name = "renamed"; return nil })
				return err
			}},
			{"key.rotate", func(ch keyward.Change) error {
				_, _, err := f.s.RotateKey(f.ctx, ch, k.ID, rotation(fixedTime.Add(time.Hour), &next))
				return err
			}},
			{"ip.block", func(ch keyward.Change) error { return f.s.CreateIPRule(f.ctx, ch, rule) }},
			{"ip.unblock", func(ch keyward.Change) error {
				_, err := f.s.DeleteIPRule(f.ctx, ch, rule.ID)
				return err
			}},
			{"anomaly.detected", func(ch keyward.Change) error {
				return f.s.CreateAnomaly(f.ctx, ch, anomaly(keyward.AnomalyIPSpread, a.ID, k.ID, fixedTime))
			}},
			{"key.delete", func(ch keyward.Change) error { _, err := f.s.DeleteKey(f.ctx, ch, next.ID); return err }},
			{"user.delete", func(ch keyward.Change) error { _, err := f.s.DeleteUser(f.ctx, ch, u.ID); return err }},
			{"account.delete", func(ch keyward.Change) error { _, err := f.s.DeleteAccount(f.ctx, ch, a.ID); return err }},
		}
		for i, m := range mutations {
			ch := f.audited(m.action)
			if err := m.do(ch); err != nil {
				t.Fatalf("%s: %v", m.action, err)
			}
			e := ch.Audit
			if e.Seq != int64(i+1) || len(e.Hash) == 0 {
				t.Fatalf("%s: the store set Seq %d and Hash %x, want Seq %d and a hash", m.action, e.Seq, e.Hash, i+1)
			}
			log := AuditLog(t, f.s)
			if len(log) != i+1 {
				t.Fatalf("%s: audit log has %d entries, want %d", m.action, len(log), i+1)
			}
			wantAuditEntry(t, log[i], e)
		}
		f.wantAuditChain(len(mutations))
	})

	t.Run("a failing mutation appends nothing", func(t *testing.T) {
		f := newFixture(t, open)
		a := f.account("acme")
		k := f.adminKey(a.ID)
		failures := []struct {
			name string
			code string // "" for errAbort
			do   func(ch keyward.Change) error
		}{
			{"UpdateKey whose fn fails", "", func(ch keyward.Change) error {
				_, err := f.s.UpdateKey(f.ctx, ch, k.ID, func(*keyward.Key) error { return errAbort })
				return err
			}},
			{"CreateKey with a taken id", keyward.ECONFLICT, func(ch keyward.Change) error {
				dup := minimalKey()
				dup.ID = k.ID
				return f.s.CreateKey(f.ctx, ch, dup)
			}},
			{"UpdateAccount of a missing account", keyward.ENOTFOUND, func(ch keyward.Change) error {
				_, err := f.s.UpdateAccount(f.ctx, ch, apikey.NewID("acc"), func(*keyward.Account) error { return nil })
				return err
			}},
			{"DeleteKey of a missing key", keyward.ENOTFOUND, func(ch keyward.Change) error {
				_, err := f.s.DeleteKey(f.ctx, ch, apikey.NewID("key"))
				return err
			}},
			{"RotateKey whose fn fails", "", func(ch keyward.Change) error {
				_, _, err := f.s.RotateKey(f.ctx, ch, k.ID, func(*keyward.Key) (*keyward.Key, error) { return nil, errAbort })
				return err
			}},
		}
		for _, c := range failures {
			err := c.do(f.audited("test.fail"))
			if c.code == "" && !errors.Is(err, errAbort) {
				t.Fatalf("%s: error = %v, want fn's error", c.name, err)
			}
			if c.code != "" {
				wantCode(t, err, c.code)
			}
		}
		if log := AuditLog(t, f.s); len(log) != 0 {
			t.Fatalf("failed mutations appended %d audit entries, want none", len(log))
		}
	})

	t.Run("an invalid entry fails the mutation it records", func(t *testing.T) {
		f := newFixture(t, open)
		bad := NewAuditEntry("", "", "", "")
		a := &keyward.Account{ID: apikey.NewID("acc"), Name: "acme", CreatedAt: fixedTime, UpdatedAt: fixedTime}
		wantCode(t, f.s.CreateAccount(f.ctx, keyward.Change{Audit: bad}, a), keyward.EINVALID)
		_, err := f.s.Account(f.ctx, a.ID)
		wantCode(t, err, keyward.ENOTFOUND)
		if log := AuditLog(t, f.s); len(log) != 0 {
			t.Fatalf("audit log has %d entries, want none", len(log))
		}
	})

	t.Run("bookkeeping appends nothing", func(t *testing.T) {
		f := newFixture(t, open)
		k := creditKey(10, 0, 0)
		must(t, f.s.CreateKey(f.ctx, keyward.Change{}, k))
		ctx := f.ctx
		must(t, f.s.TouchKeys(ctx, []keyward.KeyUse{{ID: k.ID, At: fixedTime}}))
		_, _, err := f.s.SpendCredits(ctx, k.ID, 1, fixedTime)
		must(t, err)
		must(t, f.s.WriteCredits(ctx, []keyward.CreditWrite{{KeyID: k.ID, Remaining: 5, RefilledAt: fixedTime, Version: 100}}))
		if log := AuditLog(t, f.s); len(log) != 0 {
			t.Fatalf("TouchKeys, SpendCredits and WriteCredits appended %d audit entries, want none", len(log))
		}
	})

	t.Run("AppendAudit chains entries from seq 1", func(t *testing.T) {
		f := newFixture(t, open)
		entries := AppendAuditEntries(t, f.s, 3)
		var prev []byte
		for i, e := range entries {
			if e.Seq != int64(i+1) || !bytes.Equal(e.PrevHash, prev) || !bytes.Equal(e.Hash, e.ChainHash(prev, nil)) {
				t.Fatalf("entry %d: Seq %d, PrevHash %x, Hash %x; want Seq %d after hash %x", i+1, e.Seq, e.PrevHash, e.Hash, i+1, prev)
			}
			prev = e.Hash
		}
		if entries[0].PrevHash != nil {
			t.Fatalf("first entry has PrevHash %x, want nil", entries[0].PrevHash)
		}
		f.wantAuditChain(3)
	})

	t.Run("AppendAudit requires action, outcome and time", func(t *testing.T) {
		f := newFixture(t, open)
		for name, edit := range map[string]func(*keyward.AuditEntry){
			"action":  func(e *keyward.AuditEntry) { e.Action = "" },
			"outcome": func(e *keyward.AuditEntry) { e.Outcome = "" },
			"time":    func(e *keyward.AuditEntry) { e.Time = time.Time{} },
		} {
			e := NewAuditEntry("key.create", "", "", "")
			edit(e)
			if err := f.s.AppendAudit(f.ctx, e); keyward.ErrorCode(err) != keyward.EINVALID {
				t.Fatalf("AppendAudit without %s = %v, want an invalid error", name, err)
			}
		}
		if log := AuditLog(t, f.s); len(log) != 0 {
			t.Fatalf("audit log has %d entries, want none", len(log))
		}
	})

	t.Run("every field round-trips", func(t *testing.T) {
		f := newFixture(t, open)
		e := &keyward.AuditEntry{
			Time: fixedTime.Add(123 * time.Nanosecond).In(time.FixedZone("X", 3600)), // kept to the microsecond
			Actor: keyward.AuditActor{KeyID: apikey.NewID("key"), AccountID: apikey.NewID("acc"), UserID: apikey.NewID("usr"),
				Role: keyward.RoleUser, Agent: "keyward-cli/1.0", IP: "2001:db8::1", UserAgent: "curl/8.0",
				RequestID: "req-42", System: "abuse"},
			Action: "key.revoke", TargetType: "key", TargetID: apikey.NewID("key"), AccountID: apikey.NewID("acc"),
			Outcome: keyward.AuditDenied, Sealed: []byte{0, 1, 2, 0xff, 0xfe}, KeyVersion: 7,
		}
		must(t, f.s.AppendAudit(f.ctx, e))
		if !e.Time.Equal(fixedTime) {
			t.Fatalf("AppendAudit left Time %v, want it truncated to the stored %v", e.Time, fixedTime)
		}
		bare := &keyward.AuditEntry{Time: fixedTime, Action: "ip.blocked", Outcome: keyward.AuditSuccess}
		must(t, f.s.AppendAudit(f.ctx, bare))
		log := AuditLog(t, f.s)
		if len(log) != 2 {
			t.Fatalf("audit log has %d entries, want 2", len(log))
		}
		wantAuditEntry(t, log[0], e)
		wantAuditEntry(t, log[1], bare)
		if len(log[1].Sealed) != 0 {
			t.Fatalf("entry without details has Sealed %x, want empty", log[1].Sealed)
		}
		f.wantAuditChain(2)
	})

	t.Run("concurrent mutations get seq 1..50 without gaps", func(t *testing.T) {
		f := newFixture(t, open)
		const n = 50
		var wg sync.WaitGroup
		errs := make(chan error, n)
		for i := range n {
			wg.Go(func() {
				if i%2 == 0 {
					errs <- f.s.AppendAudit(f.ctx, NewAuditEntry("test.event", "", "", ""))
					return
				}
				a := &keyward.Account{ID: apikey.NewID("acc"), Name: fmt.Sprintf("acme %d", i), CreatedAt: fixedTime, UpdatedAt: fixedTime}
				errs <- f.s.CreateAccount(f.ctx, f.audited("account.create"), a)
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			must(t, err)
		}
		log := AuditLog(t, f.s)
		for i, e := range log {
			if e.Seq != int64(i+1) {
				t.Fatalf("entry %d has seq %d: seqs must run 1..%d without gaps", i, e.Seq, n)
			}
		}
		f.wantAuditChain(n)
	})

	t.Run("filters and pagination", func(t *testing.T) {
		f := newFixture(t, open)
		actor, acc, target := apikey.NewID("key"), apikey.NewID("acc"), apikey.NewID("key")
		t0 := fixedTime
		add := func(action, actorKey, account, targetID string, at time.Time) int64 {
			e := NewAuditEntry(action, actorKey, account, targetID)
			e.Time = at
			must(t, f.s.AppendAudit(f.ctx, e))
			return e.Seq
		}
		s1 := add("key.create", actor, acc, target, t0)
		s2 := add("key.update", actor, acc, target, t0.Add(time.Minute))
		s3 := add("key.create", apikey.NewID("key"), acc, apikey.NewID("key"), t0.Add(2*time.Minute))
		s4 := add("key.revoke", apikey.NewID("key"), apikey.NewID("acc"), target, t0.Add(3*time.Minute))
		s5 := add("key.create", actor, "", apikey.NewID("key"), t0.Add(4*time.Minute))
		for _, c := range []struct {
			name string
			f    keyward.AuditFilter
			want []int64
		}{
			{"none", keyward.AuditFilter{}, []int64{s1, s2, s3, s4, s5}},
			{"actor", keyward.AuditFilter{ActorKeyID: actor}, []int64{s1, s2, s5}},
			{"action", keyward.AuditFilter{Action: "key.create"}, []int64{s1, s3, s5}},
			{"target", keyward.AuditFilter{TargetID: target}, []int64{s1, s2, s4}},
			{"account", keyward.AuditFilter{AccountID: acc}, []int64{s1, s2, s3}},
			{"since", keyward.AuditFilter{Since: t0.Add(3 * time.Minute)}, []int64{s4, s5}},
			{"until", keyward.AuditFilter{Until: t0.Add(time.Minute)}, []int64{s1}},
			{"since and until", keyward.AuditFilter{Since: t0.Add(time.Minute), Until: t0.Add(3 * time.Minute)}, []int64{s2, s3}},
			{"actor and action", keyward.AuditFilter{ActorKeyID: actor, Action: "key.create"}, []int64{s1, s5}},
			{"no match", keyward.AuditFilter{Action: "key.nothing"}, nil},
		} {
			for _, limit := range []int{1, 2, 10} {
				ids := pageWalk(t, limit, func(p keyward.Page) ([]*keyward.AuditEntry, string, error) {
					return f.s.AuditEntries(f.ctx, c.f, p)
				}, func(e *keyward.AuditEntry) string { return strconv.FormatInt(e.Seq, 10) })
				var want []string
				for _, s := range c.want {
					want = append(want, strconv.FormatInt(s, 10))
				}
				if fmt.Sprint(ids) != fmt.Sprint(want) {
					t.Fatalf("filter %s, limit %d: seqs %v, want %v", c.name, limit, ids, want)
				}
			}
		}
		page, next, err := f.s.AuditEntries(f.ctx, keyward.AuditFilter{}, keyward.Page{After: strconv.FormatInt(s3, 10)})
		must(t, err)
		if len(page) != 2 || page[0].Seq != s4 || next != "" {
			t.Fatalf("page after %d = %d entries, next %q; want %d and %d", s3, len(page), next, s4, s5)
		}
		for _, bad := range []string{"abc", "-1", "1.5"} {
			_, _, err := f.s.AuditEntries(f.ctx, keyward.AuditFilter{}, keyward.Page{After: bad})
			if keyward.ErrorCode(err) != keyward.EINVALID {
				t.Fatalf("AuditEntries after %q = %v, want an invalid error", bad, err)
			}
		}
	})
}

// TestAuditTamper checks that keyward.AuditChain names the first bad entry
// of an audit log tampered with directly in the database. For each case,
// open returns a new, empty store and exec, which runs a statement on the
// store's database behind its back (the table is audit_log), with
// arguments numbered $1, $2, ... The cases run in parallel.
func TestAuditTamper(t *testing.T, open func(t *testing.T) (s keyward.Store, exec func(query string, args ...any) error)) {
	t.Run("keyed", func(t *testing.T) {
		t.Parallel()
		testKeyedAuditTamper(t, open)
	})
	for _, c := range []struct {
		name     string
		tamper   []string
		firstBad int64
	}{
		{"edited action", []string{"UPDATE audit_log SET action = 'key.nothing' WHERE seq = 3"}, 3},
		{"edited sealed details", []string{"UPDATE audit_log SET sealed = hash WHERE seq = 5"}, 5},
		{"deleted row", []string{"DELETE FROM audit_log WHERE seq = 3"}, 4},
		// Moving the rows' sequence numbers swaps their contents.
		{"swapped rows", []string{
			"UPDATE audit_log SET seq = -2 WHERE seq = 2",
			"UPDATE audit_log SET seq = 2 WHERE seq = 3",
			"UPDATE audit_log SET seq = 3 WHERE seq = -2",
		}, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, exec := open(t)
			AppendAuditEntries(t, s, 5)
			if v := VerifyAudit(t, s); !v.OK || v.Entries != 5 {
				t.Fatalf("before tampering: %+v, want an intact chain of 5", v)
			}
			for _, q := range c.tamper {
				if err := exec(q); err != nil {
					t.Fatalf("tamper %q: %v", q, err)
				}
			}
			v := VerifyAudit(t, s)
			if v.OK || v.FirstBad != c.firstBad || v.Problem == "" {
				t.Fatalf("after tampering: %+v, want first bad entry %d with a problem", v, c.firstBad)
			}
		})
	}
}

// appendKeyed appends n entries chained with the chain key of kr.
func appendKeyed(t testing.TB, s keyward.Store, kr *keyring.Keyring, n int) {
	t.Helper()
	for i := range n {
		e := NewAuditEntry(fmt.Sprintf("keyed.action%d", i+1), apikey.NewID("key"), apikey.NewID("acc"), apikey.NewID("key"))
		e.ChainKey = kr.CurrentAuditChainKey()
		if err := s.AppendAudit(t.Context(), e); err != nil {
			t.Fatalf("append keyed audit entry %d: %v", i+1, err)
		}
	}
}

// verifyKeyed checks the chain of s with the chain keys of kr, against
// expect (nil: none).
func verifyKeyed(t testing.TB, s keyward.Store, kr *keyring.Keyring, expect *keyward.AuditCheckpoint) keyward.AuditVerification {
	t.Helper()
	c := keyward.AuditChain{Keys: kr.AuditChainKey, Expect: expect}
	c.Check(AuditLog(t, s))
	return c.Result()
}

// rechain rewrites the entries of s from seq from on, as someone with write
// access to the database and without the master keys would after editing
// one: each hash recomputed after the one before, with chain version
// version under key (0 and nil: plain SHA-256).
func rechain(t testing.TB, s keyward.Store, exec func(string, ...any) error, from int64, version int, key []byte) {
	t.Helper()
	var prev []byte
	for _, e := range AuditLog(t, s) {
		if e.Seq >= from {
			e.ChainVersion = version
			e.PrevHash, e.Hash = prev, e.ChainHash(prev, key)
			if err := exec("UPDATE audit_log SET prev_hash = $1, hash = $2, chain_version = $3 WHERE seq = $4", e.PrevHash, e.Hash, version, e.Seq); err != nil {
				t.Fatalf("rewrite entry %d: %v", e.Seq, err)
			}
		}
		prev = e.Hash
	}
}

// testKeyedAuditTamper checks what a keyed chain shows of tampering by
// someone with write access to the database and no master key.
func testKeyedAuditTamper(t *testing.T, open func(t *testing.T) (keyward.Store, func(string, ...any) error)) {
	kr := NewKeyring(t)
	_, _, other := NewKeyrings(t) // a master key the attacker may have made up

	t.Run("untouched chain verifies, with and without its checkpoint", func(t *testing.T) {
		s, _ := open(t)
		appendKeyed(t, s, kr, 5)
		log := AuditLog(t, s)
		head := &keyward.AuditCheckpoint{Seq: 5, Hash: hex.EncodeToString(log[4].Hash)}
		for _, x := range []*keyward.AuditCheckpoint{nil, head, {Seq: 2, Hash: hex.EncodeToString(log[1].Hash)}} {
			if v := verifyKeyed(t, s, kr, x); !v.OK || v.Entries != 5 {
				t.Fatalf("verify against %v: %+v, want intact with 5 entries", x, v)
			}
		}
		if log[0].ChainVersion != 1 {
			t.Fatalf("chain version %d, want 1 (master key version 1)", log[0].ChainVersion)
		}
		// Without the master keys a keyed entry cannot be checked.
		if v := VerifyAudit(t, s); v.OK || v.FirstBad != 1 {
			t.Fatalf("verify without keys: %+v, want the first keyed entry unverifiable", v)
		}
	})

	t.Run("deleted newest entries are reported against a checkpoint", func(t *testing.T) {
		s, exec := open(t)
		appendKeyed(t, s, kr, 5)
		head := &keyward.AuditCheckpoint{Seq: 5, Hash: hex.EncodeToString(AuditLog(t, s)[4].Hash)}
		if err := exec("DELETE FROM audit_log WHERE seq > $1", 3); err != nil {
			t.Fatal(err)
		}
		// What is left is a valid chain: only the checkpoint shows the loss.
		if v := verifyKeyed(t, s, kr, nil); !v.OK || v.Entries != 3 {
			t.Fatalf("verify without a checkpoint: %+v, want the 3 left intact", v)
		}
		v := verifyKeyed(t, s, kr, head)
		if v.OK || !v.Truncated || v.FirstBad != 4 || !strings.Contains(v.Problem, "ends at entry 3") {
			t.Fatalf("verify against the checkpoint: %+v, want a truncated tail from entry 4", v)
		}
		// A tail deleted and re-appended (by whoever holds the keys, or
		// replayed) no longer matches the checkpoint's hash.
		appendKeyed(t, s, kr, 2)
		if v := verifyKeyed(t, s, kr, head); v.OK || v.FirstBad != 5 {
			t.Fatalf("verify of a replaced tail against the checkpoint: %+v, want entry 5 to differ", v)
		}
	})

	t.Run("an edited entry with plain SHA-256 hashes recomputed fails", func(t *testing.T) {
		s, exec := open(t)
		appendKeyed(t, s, kr, 5)
		if err := exec("UPDATE audit_log SET action = $1 WHERE seq = $2", "key.nothing", 3); err != nil {
			t.Fatal(err)
		}
		rechain(t, s, exec, 3, 0, nil)
		if v := verifyKeyed(t, s, kr, nil); v.OK || v.FirstBad != 3 {
			t.Fatalf("after rewriting entries 3-5 with plain hashes: %+v, want entry 3 bad", v)
		}
		// The whole log rewritten with plain hashes: no entry is keyed.
		rechain(t, s, exec, 1, 0, nil)
		if v := verifyKeyed(t, s, kr, nil); v.OK || !strings.Contains(v.Problem, "no entry is keyed") {
			t.Fatalf("after rewriting the whole log with plain hashes: %+v, want it refused as unkeyed", v)
		}
	})

	t.Run("an edited entry cannot be re-keyed without the master key", func(t *testing.T) {
		s, exec := open(t)
		appendKeyed(t, s, kr, 5)
		if err := exec("UPDATE audit_log SET target_id = $1 WHERE seq = $2", "key_innocent", 3); err != nil {
			t.Fatal(err)
		}
		if v := verifyKeyed(t, s, kr, nil); v.OK || v.FirstBad != 3 {
			t.Fatalf("after editing entry 3: %+v, want it bad", v)
		}
		guess := other.CurrentAuditChainKey()
		rechain(t, s, exec, 3, 1, guess.Key) // claims version 1 with another key
		if v := verifyKeyed(t, s, kr, nil); v.OK || v.FirstBad != 3 || !strings.Contains(v.Problem, "edited") {
			t.Fatalf("after re-keying entries 3-5 with another key: %+v, want entry 3 bad", v)
		}
	})

	t.Run("a retired master key cannot rewrite entries chained under a newer one", func(t *testing.T) {
		s, exec := open(t)
		v1, both, _ := NewKeyrings(t)
		appendKeyed(t, s, v1, 2)
		appendKeyed(t, s, both, 2) // version 2 added: entries 3 and 4 chain under it
		if v := verifyKeyed(t, s, both, nil); !v.OK || v.Entries != 4 {
			t.Fatalf("a log chained under versions 1 then 2: %+v, want intact", v)
		}
		// Whoever holds the retired version 1 rewrites entry 4 under it.
		if err := exec("UPDATE audit_log SET action = $1 WHERE seq = $2", "key.nothing", 4); err != nil {
			t.Fatal(err)
		}
		old, _ := v1.AuditChainKey(1)
		rechain(t, s, exec, 4, 1, old)
		if v := verifyKeyed(t, s, both, nil); v.OK || v.FirstBad != 4 || !strings.Contains(v.Problem, "retired master key") {
			t.Fatalf("entry 4 rewritten under the retired version: %+v, want it bad", v)
		}
	})

	t.Run("an upgraded log: plain entries, then keyed ones", func(t *testing.T) {
		s, exec := open(t)
		AppendAuditEntries(t, s, 3) // written before the chain was keyed
		appendKeyed(t, s, kr, 2)
		if v := verifyKeyed(t, s, kr, nil); !v.OK || v.Entries != 5 {
			t.Fatalf("upgraded log: %+v, want intact with 5 entries", v)
		}
		// A plain entry after a keyed one is refused.
		AppendAuditEntries(t, s, 1)
		if v := verifyKeyed(t, s, kr, nil); v.OK || v.FirstBad != 6 {
			t.Fatalf("a plain entry after keyed ones: %+v, want entry 6 bad", v)
		}
		if err := exec("DELETE FROM audit_log WHERE seq = $1", 6); err != nil {
			t.Fatal(err)
		}
		// An old entry edited and the plain hashes recomputed up to the
		// first keyed one: that one no longer follows.
		if err := exec("UPDATE audit_log SET action = $1 WHERE seq = $2", "key.nothing", 2); err != nil {
			t.Fatal(err)
		}
		var prev []byte
		for _, e := range AuditLog(t, s)[:3] {
			e.PrevHash, e.Hash = prev, e.ChainHash(prev, nil)
			if err := exec("UPDATE audit_log SET prev_hash = $1, hash = $2 WHERE seq = $3", e.PrevHash, e.Hash, e.Seq); err != nil {
				t.Fatal(err)
			}
			prev = e.Hash
		}
		if v := verifyKeyed(t, s, kr, nil); v.OK || v.FirstBad != 4 {
			t.Fatalf("an old entry edited, plain hashes recomputed: %+v, want the first keyed entry (4) bad", v)
		}
	})
}
