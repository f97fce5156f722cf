package lifecycle_test

import (
	"context"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/admin"
	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/credits"
	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/lifecycle"
)

var (
	_ lifecycle.Actions  = admin.Jobs{}
	_ lifecycle.Refiller = (*credits.StoreLedger)(nil)
)

// clock is a settable clock shared by the admin service and the runner.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// observer records the keys deleted, as caches hear of them.
type observer struct {
	mu      sync.Mutex
	changed []string
	deleted []keyward.KeyHash
}

func (o *observer) KeyChanged(k *keyward.Key) {
	o.mu.Lock()
	o.changed = append(o.changed, k.ID)
	o.mu.Unlock()
}

func (o *observer) KeysDeleted(hs []keyward.KeyHash) {
	o.mu.Lock()
	o.deleted = append(o.deleted, hs...)
	o.mu.Unlock()
}
func (o *observer) AccountChanged(string) {}

// instance is one keyward instance's lifecycle machinery on a store.
type instance struct {
	store  keyward.Store
	admin  admin.Services
	runner *lifecycle.Runner
	obs    *observer
}

func newInstance(t *testing.T, s keyward.Store, c *clock, cfg lifecycle.Config) *instance {
	t.Helper()
	in := &instance{store: s, obs: &observer{}}
	quiet := slog.New(slog.DiscardHandler)
	in.admin = admin.New(admin.Config{Store: s, Hasher: keywardtest.NewHasher(t), Observer: in.obs, Sealer: keywardtest.NewKeyring(t), Now: c.Now, Logger: quiet})
	cfg.Store, cfg.Actions, cfg.Now, cfg.Logger = s, in.admin.Jobs(), c.Now, quiet
	if cfg.Credits == nil {
		cfg.Credits = credits.NewStoreLedger(s)
	}
	r, err := lifecycle.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	in.runner = r
	return in
}

func (in *instance) runOnce(t *testing.T) []lifecycle.Result {
	t.Helper()
	res, err := in.runner.RunOnce(t.Context())
	if err != nil {
		t.Fatalf("RunOnce: %v", err)
	}
	return res
}

// event is a row of the outbox.
type event struct {
	Type string
	Data map[string]any
}

// events reads the outbox with query (type, data).
func events(t *testing.T, db *sql.DB, query string) []event {
	t.Helper()
	rows, err := db.QueryContext(t.Context(), query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []event
	for rows.Next() {
		var (
			e    event
			data string
		)
		if err := rows.Scan(&e.Type, &data); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(data), &e.Data); err != nil {
			t.Fatal(err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// byKey counts the events of each type per key.
func byKey(es []event) map[string]map[string]int {
	m := map[string]map[string]int{}
	for _, e := range es {
		id, _ := e.Data["key_id"].(string)
		if m[e.Type] == nil {
			m[e.Type] = map[string]int{}
		}
		m[e.Type][id]++
	}
	return m
}

const day = 24 * time.Hour

// TestSimulatedDays runs every job once an hour for two days on SQLite, with
// an injected clock, and checks what each did and that each thing happened
// once.
func TestSimulatedDays(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	c := &clock{t: t0}
	in := newInstance(t, s, c, lifecycle.Config{Settings: lifecycle.Settings{KeyRetention: 12 * time.Hour, IPRuleRetention: time.Hour}, BatchSize: 2})
	h := keywardtest.NewHasher(t)
	ctx := t.Context()

	acct := keywardtest.NewAccount(t, s, "acme")
	other := keywardtest.NewAccount(t, s, "other")
	u := keywardtest.NewUser(t, s, acct.ID, "alice")
	mk := func(k keyward.Key) *keyward.Key {
		if k.Role == "" {
			k.Role, k.AccountID, k.UserID = keyward.RoleUser, acct.ID, u.ID
		}
		if k.CreatedAt.IsZero() {
			k.CreatedAt = t0
		}
		k.UpdatedAt = k.CreatedAt
		return &keywardtest.NewKey(t, s, h, k).Key
	}
	root := keywardtest.NewRootKey(t, s, h)
	expiring := mk(keyward.Key{Name: "expiring", ExpiresAt: ptr(t0.Add(6 * time.Hour))})
	revoked := mk(keyward.Key{Name: "revoked", RevokedAt: ptr(t0.Add(time.Hour))})
	due := mk(keyward.Key{Name: "due"})                                                                 // account policy: due at 24h, expires 2h later
	mk(keyward.Key{Name: "young", CreatedAt: t0.Add(12 * time.Hour)})                                   // due at 36h
	otherKey := mk(keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: other.ID, Name: "no policy"}) // never due
	refilled := mk(keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: other.ID, Name: "credits", Credits: &keyward.Credits{Remaining: 0, RefilledAt: t0, Refill: &keyward.CreditRefill{Amount: 5, Interval: keyward.Duration(3 * time.Hour)}}})
	rule := &keyward.IPRule{ID: apikey.NewID("ipr"), Action: keyward.IPBlock, CIDR: netip.MustParsePrefix("192.0.2.0/24"), ExpiresAt: ptr(t0.Add(90 * time.Minute)), CreatedAt: t0}
	if err := s.CreateIPRule(ctx, keyward.Change{}, rule); err != nil {
		t.Fatal(err)
	}
	rootCtx := keyward.NewContextWithIdentity(ctx, &keyward.Identity{KeyID: root.ID, Role: keyward.RoleRoot})
	if _, err := in.admin.Keys.SetRotationPolicy(rootCtx, keyward.RotationScope{AccountID: acct.ID},
		keyward.RotationPolicySet{MaxAge: keyward.Duration(day), ExpireAfter: keyward.Duration(2 * time.Hour)}); err != nil {
		t.Fatal(err)
	}

	totals := map[string]int{}
	for hour := 0; hour <= 48; hour++ {
		for _, r := range in.runOnce(t) {
			if !r.Ran {
				t.Fatalf("hour %d: job %s did not run (its lock was held)", hour, r.Job)
			}
			for a, n := range r.Changes {
				totals[a] += n
			}
		}
		switch hour {
		case 2:
			// The IP rule expired at 1h30 and is kept an hour: gone at 2h30.
			if _, err := s.IPRule(ctx, rule.ID); err != nil {
				t.Fatalf("hour 2: IP rule %s deleted before its retention ended: %v", rule.ID, err)
			}
		case 3:
			if _, err := s.IPRule(ctx, rule.ID); keyward.ErrorCode(err) != keyward.ENOTFOUND {
				t.Fatalf("hour 3: IP rule %s not deleted after its retention: %v", rule.ID, err)
			}
			k, err := s.Key(ctx, refilled.ID)
			if err != nil || k.Credits.Remaining != 5 || !k.Credits.RefilledAt.Equal(t0.Add(3*time.Hour)) {
				t.Fatalf("hour 3: stored credits = %+v, %v; want 5 refilled at 3h", k.Credits, err)
			}
		case 13:
			// Revoked at 1h, kept 12h.
			if _, err := s.Key(ctx, revoked.ID); keyward.ErrorCode(err) != keyward.ENOTFOUND {
				t.Fatalf("hour 13: revoked key not deleted after its retention: %v", err)
			}
			if len(in.obs.deleted) != 1 || in.obs.deleted[0] != revoked.Hash {
				t.Fatalf("hour 13: caches were told of deletions %x, want the revoked key's hash", in.obs.deleted)
			}
		case 24:
			k, err := s.Key(ctx, due.ID)
			if err != nil || k.ExpiresAt == nil || !k.ExpiresAt.Equal(t0.Add(26*time.Hour)) {
				t.Fatalf("hour 24: key due for rotation has expiry %v (%v), want 26h (the notice period after the notice)", k.ExpiresAt, err)
			}
		}
		c.Add(time.Hour)
	}

	db, err := sql.Open("sqlite", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := byKey(events(t, db, "SELECT type, data FROM webhook_events ORDER BY id"))
	wantEvents := map[string]map[string]int{
		// due expired at 26h by its policy, young at 38h: announced once each.
		keyward.EventKeyExpired:     {expiring.ID: 1},
		keyward.EventKeyRotationDue: {due.ID: 1},
	}
	young := ""
	for id := range got[keyward.EventKeyRotationDue] {
		if id != due.ID {
			young = id
		}
	}
	if young == "" {
		t.Fatalf("no key.rotation_due for the young key (due at 36h): events %v", got)
	}
	wantEvents[keyward.EventKeyRotationDue][young] = 1
	wantEvents[keyward.EventKeyExpired][due.ID] = 1
	wantEvents[keyward.EventKeyExpired][young] = 1
	for typ, want := range wantEvents {
		if len(got[typ]) != len(want) {
			t.Errorf("%s events for keys %v, want %v", typ, got[typ], want)
		}
		for id, n := range want {
			if got[typ][id] != n {
				t.Errorf("%s events for key %s: %d, want %d", typ, id, got[typ][id], n)
			}
		}
	}
	if got[keyward.EventKeyRotationDue][otherKey.ID] != 0 {
		t.Error("a key without a rotation policy was announced due")
	}
	// Expired at 6h, kept 12h: deleted at 18h; due expired at 26h and
	// deleted at 38h, young expired at 38h and deleted at 50h (not yet).
	if _, err := s.Key(ctx, expiring.ID); keyward.ErrorCode(err) != keyward.ENOTFOUND {
		t.Errorf("expired key not deleted after its retention: %v", err)
	}
	if _, err := s.Key(ctx, young); err != nil {
		t.Errorf("key expired at 38h deleted before its retention: %v", err)
	}
	if _, err := s.Key(ctx, root.ID); err != nil {
		t.Errorf("root key: %v", err)
	}
	want := map[string]int{"key_expired": 3, "key_rotation_due": 2, "key_expiry_scheduled": 2, "key_deleted": 3, "ip_rule_deleted": 1}
	for a, n := range want {
		if totals[a] != n {
			t.Errorf("changes %s = %d, want %d (all: %v)", a, totals[a], n, totals)
		}
	}
	if totals["credits_refilled"] < 16 {
		t.Errorf("credits refilled %d times in 48h every 3h, want at least 16", totals["credits_refilled"])
	}

	// The audit log holds the jobs' changes, by keyward itself.
	entries, _, err := s.AuditEntries(ctx, keyward.AuditFilter{TargetID: due.ID}, keyward.Page{})
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range entries {
		if e.Actor.System != admin.SystemActor {
			t.Errorf("audit entry %s of %s: actor %+v, want the system", e.Action, due.ID, e.Actor)
		}
		actions = append(actions, e.Action)
	}
	if want := []string{"key.rotation_due", "key.expire_scheduled", "key.expired", "key.delete"}; !equal(actions, want) {
		t.Errorf("audit entries of %s = %v, want %v", due.ID, actions, want)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func ptr[T any](v T) *T { return &v }

// TestScheduleExpiryKeepsEarlierExpiry: a key that expires before the
// notice period ends keeps its expiry, and an admin may extend the key after
// its expiry was scheduled without the job setting it back.
func TestScheduleExpiryKeepsEarlierExpiry(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	t0 := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	c := &clock{t: t0.Add(day)}
	in := newInstance(t, s, c, lifecycle.Config{})
	h := keywardtest.NewHasher(t)
	acct := keywardtest.NewAccount(t, s, "acme")
	early := &keywardtest.NewKey(t, s, h, keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: acct.ID, CreatedAt: t0, ExpiresAt: ptr(t0.Add(day + time.Hour))}).Key
	late := &keywardtest.NewKey(t, s, h, keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: acct.ID, CreatedAt: t0}).Key
	if err := s.SetRotationPolicy(t.Context(), keyward.Change{}, &keyward.RotationPolicy{AccountID: acct.ID, MaxAge: keyward.Duration(day), ExpireAfter: keyward.Duration(7 * day), UpdatedAt: t0}); err != nil {
		t.Fatal(err)
	}
	in.runOnce(t)
	if k, _ := s.Key(t.Context(), early.ID); !k.ExpiresAt.Equal(*early.ExpiresAt) {
		t.Fatalf("key expiring before the notice period ends: expiry moved to %v", k.ExpiresAt)
	}
	k, _ := s.Key(t.Context(), late.ID)
	if want := t0.Add(8 * day); !k.ExpiresAt.Equal(want) {
		t.Fatalf("expiry = %v, want %v", k.ExpiresAt, want)
	}
	// An admin extends it: the job leaves it.
	if _, err := s.UpdateKey(t.Context(), keyward.Change{}, late.ID, func(k *keyward.Key) error { k.ExpiresAt = ptr(t0.Add(30 * day)); return nil }); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Hour)
	in.runOnce(t)
	if k, _ := s.Key(t.Context(), late.ID); !k.ExpiresAt.Equal(t0.Add(30 * day)) {
		t.Fatalf("extended expiry set back to %v", k.ExpiresAt)
	}
}

// TestLockHeldSkipsRun: a run finds the job's lock held and does nothing.
func TestLockHeldSkipsRun(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	c := &clock{t: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	in := newInstance(t, s, c, lifecycle.Config{})
	acct := keywardtest.NewAccount(t, s, "acme")
	k := &keywardtest.NewKey(t, s, keywardtest.NewHasher(t), keyward.Key{Role: keyward.RoleAccountAdmin, AccountID: acct.ID, ExpiresAt: ptr(c.Now().Add(-time.Hour))}).Key
	release, ok, err := s.TryLock(t.Context(), "lifecycle."+lifecycle.JobExpiry)
	if err != nil || !ok {
		t.Fatalf("TryLock = %v, %v", ok, err)
	}
	res, err := in.runner.RunJob(t.Context(), lifecycle.JobExpiry)
	if err != nil || res.Ran {
		t.Fatalf("RunJob with the lock held = %+v, %v; want a skipped run", res, err)
	}
	if ns, _ := s.KeyNotices(t.Context(), k.ID); len(ns) != 0 {
		t.Fatalf("a skipped run announced: %+v", ns)
	}
	release()
	if res, err := in.runner.RunJob(t.Context(), lifecycle.JobExpiry); err != nil || !res.Ran || res.Changes["key_expired"] != 1 {
		t.Fatalf("RunJob after the release = %+v, %v; want the key announced", res, err)
	}
	if _, err := in.runner.RunJob(context.Background(), "nightly"); keyward.ErrorCode(err) != keyward.EINVALID {
		t.Fatalf("RunJob(unknown) = %v, want EINVALID", err)
	}
}

// TestCheckpointJob: the checkpoint job publishes the audit log's head as
// a global audit.checkpoint event, signed with the chain key, which a
// verification against it accepts; an empty log publishes nothing.
func TestCheckpointJob(t *testing.T) {
	s := keywardtest.NewSQLiteStore(t)
	c := &clock{t: time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)}
	in := newInstance(t, s, c, lifecycle.Config{})
	db, err := sql.Open("sqlite", s.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	checkpoints := func() []event {
		return events(t, db, "SELECT type, data FROM webhook_events WHERE type = 'audit.checkpoint' AND account_id = '' ORDER BY id")
	}
	if res, err := in.runner.RunJob(t.Context(), lifecycle.JobCheckpoint); err != nil || !res.Ran || len(res.Changes) != 0 || len(checkpoints()) != 0 {
		t.Fatalf("checkpoint of an empty log = %+v, %v, events %v; want nothing published", res, err, checkpoints())
	}

	_, rootKey, err := in.admin.Keys.Bootstrap(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	root := keyward.NewContextWithIdentity(t.Context(), keyward.IdentityOf(rootKey, ""))
	if _, err := in.admin.Tenancy.CreateAccount(root, keyward.AccountCreate{Name: "acme"}); err != nil {
		t.Fatal(err)
	}
	res, err := in.runner.RunJob(t.Context(), lifecycle.JobCheckpoint)
	if err != nil || res.Changes["audit_checkpoint_published"] != 1 {
		t.Fatalf("checkpoint job = %+v, %v; want one published", res, err)
	}
	got := checkpoints()
	if len(got) != 1 {
		t.Fatalf("audit.checkpoint events: %v, want one global event", got)
	}
	b, _ := json.Marshal(got[0].Data)
	var cp keyward.AuditCheckpoint
	if err := json.Unmarshal(b, &cp); err != nil {
		t.Fatal(err)
	}
	log := keywardtest.AuditLog(t, s)
	head := log[len(log)-1]
	key, err := keywardtest.NewKeyring(t).AuditChainKey(cp.KeyVersion)
	if err != nil {
		t.Fatal(err)
	}
	if cp.Seq != head.Seq || cp.Hash != hex.EncodeToString(head.Hash) || !cp.Time.Equal(c.Now()) ||
		cp.MAC != hex.EncodeToString(keyward.CheckpointMAC(key, cp.Seq, head.Hash)) {
		t.Fatalf("checkpoint %+v, want entry %d's hash signed with the chain key at %v", cp, head.Seq, c.Now())
	}
	if v, err := in.admin.Audit.VerifyAudit(root, &keyward.AuditCheckpoint{Seq: cp.Seq, Hash: cp.Hash}); err != nil || !v.OK {
		t.Fatalf("verify against the published checkpoint = %+v, %v", v, err)
	}
}
