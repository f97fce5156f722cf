package keywardtest

import (
	"crypto/sha256"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
)

// testPortal: a portal session is created with its link's hash, started
// once before the link expires (of concurrent starts exactly one wins),
// read by its cookie's hash, its last use recorded, and ended; ended sessions are deleted when a
// new one is created, and deleting the user deletes its sessions. The
// branding of an account is set, replaced and read, colours #rrggbb only.
func testPortal(t *testing.T, open func(*testing.T) keyward.Store) {
	f := newFixture(t, open)
	a := f.account("shop")
	u := f.user(a.ID, "alice")
	now := Now()
	session := func(link string, created time.Time) *keyward.PortalSession {
		t.Helper()
		p := &keyward.PortalSession{ID: apikey.NewID("psn"), AccountID: a.ID, UserID: u.ID, ExternalID: "cust-1", Permissions: []string{"notes:read"},
			Environments: []string{"live", "test"}, ReturnURL: "https://shop.example/", SessionTTL: keyward.Duration(time.Hour), CreatedBy: "key_x",
			CreatedAt: created, LinkExpiresAt: created.Add(5 * time.Minute)}
		must(t, f.s.CreatePortalSession(f.ctx, keyward.Change{}, p, sha256.Sum256([]byte(link))))
		return p
	}
	p := session("link-1", now)
	bad := *p
	bad.ID = apikey.NewID("psn")
	wantCode(t, f.s.CreatePortalSession(f.ctx, keyward.Change{}, &bad, sha256.Sum256([]byte("link-1"))), keyward.ECONFLICT)
	bad.UserID = apikey.NewID("usr")
	wantCode(t, f.s.CreatePortalSession(f.ctx, keyward.Change{}, &bad, sha256.Sum256([]byte("link-x"))), keyward.ENOTFOUND)

	noChange := func(*keyward.PortalSession) (keyward.Change, error) { return keyward.Change{}, nil }
	// Of concurrent starts, exactly one wins; the others are not found.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []*keyward.PortalSession
	for i := range 4 {
		wg.Go(func() {
			got, err := f.s.StartPortalSession(f.ctx, noChange, sha256.Sum256([]byte("link-1")), sha256.Sum256([]byte{byte(i)}), now.Add(time.Minute))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won = append(won, got)
			} else if keyward.ErrorCode(err) != keyward.ENOTFOUND {
				t.Errorf("a losing start: %v", err)
			}
		})
	}
	wg.Wait()
	if len(won) != 1 || won[0].ID != p.ID || won[0].StartedAt == nil || !won[0].ExpiresAt.Equal(now.Add(time.Minute+time.Hour)) ||
		!slices.Equal(won[0].Environments, p.Environments) || !slices.Equal(won[0].Permissions, p.Permissions) {
		t.Fatalf("starts won: %+v", won)
	}
	var cookie [32]byte
	for i := range 4 {
		if got, err := f.s.PortalSessionByHash(f.ctx, sha256.Sum256([]byte{byte(i)})); err == nil {
			if got.ID != p.ID || got.ReturnURL != p.ReturnURL || time.Duration(got.SessionTTL) != time.Hour {
				t.Fatalf("PortalSessionByHash = %+v", got)
			}
			cookie = sha256.Sum256([]byte{byte(i)})
		}
	}
	// An expired link does not start; an unknown one neither.
	session("link-2", now)
	_, err := f.s.StartPortalSession(f.ctx, noChange, sha256.Sum256([]byte("link-2")), sha256.Sum256([]byte("c2")), now.Add(5*time.Minute))
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = f.s.StartPortalSession(f.ctx, noChange, sha256.Sum256([]byte("nosuch")), sha256.Sum256([]byte("c3")), now)
	wantCode(t, err, keyward.ENOTFOUND)
	// The change of a start is written with it.
	session("link-3", now)
	audited := f.audited("portal_session.start")
	if _, err := f.s.StartPortalSession(f.ctx, func(*keyward.PortalSession) (keyward.Change, error) { return audited, nil },
		sha256.Sum256([]byte("link-3")), sha256.Sum256([]byte("c4")), now); err != nil {
		t.Fatal(err)
	}
	f.wantAuditChain(1)

	// The last use: the start's, then each touch's; no live session, no touch.
	used, err := f.s.PortalSessionByHash(f.ctx, cookie)
	if err != nil || used.LastSeenAt == nil || !used.LastSeenAt.Equal(now.Add(time.Minute)) {
		t.Fatalf("started session = %+v, %v; want last seen at its start", used, err)
	}
	must(t, f.s.TouchPortalSession(f.ctx, cookie, now.Add(90*time.Second)))
	if used, err = f.s.PortalSessionByHash(f.ctx, cookie); err != nil || !used.LastSeenAt.Equal(now.Add(90*time.Second)) {
		t.Fatalf("touched session = %+v, %v", used, err)
	}
	wantCode(t, f.s.TouchPortalSession(f.ctx, sha256.Sum256([]byte("nosuch")), now), keyward.ENOTFOUND)

	// Ending a session: read as ended; ending it again is not found.
	must(t, f.s.EndPortalSession(f.ctx, cookie, now.Add(2*time.Minute)))
	got, err := f.s.PortalSessionByHash(f.ctx, cookie)
	if err != nil || !got.ExpiresAt.Equal(now.Add(2*time.Minute)) {
		t.Fatalf("ended session = %+v, %v", got, err)
	}
	wantCode(t, f.s.EndPortalSession(f.ctx, cookie, now.Add(3*time.Minute)), keyward.ENOTFOUND)
	wantCode(t, f.s.TouchPortalSession(f.ctx, cookie, now.Add(3*time.Minute)), keyward.ENOTFOUND)
	// A new session deletes those that ended before it; the live one stays.
	session("link-4", now.Add(2*time.Hour))
	_, err = f.s.PortalSessionByHash(f.ctx, cookie)
	wantCode(t, err, keyward.ENOTFOUND)
	_, err = f.s.StartPortalSession(f.ctx, noChange, sha256.Sum256([]byte("link-2")), sha256.Sum256([]byte("c5")), now)
	wantCode(t, err, keyward.ENOTFOUND) // its link expired: deleted
	if _, err := f.s.PortalSessionByHash(f.ctx, sha256.Sum256([]byte("c4"))); err == nil {
		t.Fatal("a session that ended an hour ago was kept")
	}
	// Deleting the user deletes its sessions.
	session("link-5", now.Add(2*time.Hour))
	if _, err := f.s.StartPortalSession(f.ctx, noChange, sha256.Sum256([]byte("link-5")), sha256.Sum256([]byte("c6")), now.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.DeleteUser(f.ctx, keyward.Change{}, u.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.s.PortalSessionByHash(f.ctx, sha256.Sum256([]byte("c6")))
	wantCode(t, err, keyward.ENOTFOUND)

	// Branding.
	_, err = f.s.PortalBranding(f.ctx, a.ID)
	wantCode(t, err, keyward.ENOTFOUND)
	b := &keyward.PortalBranding{AccountID: a.ID, Title: "Shop", AccentColor: "#1f6feb", UpdatedAt: now}
	must(t, f.s.SetPortalBranding(f.ctx, keyward.Change{}, b))
	b2 := &keyward.PortalBranding{AccountID: a.ID, Title: "Shop 2", TextColor: "#111111", UpdatedAt: now.Add(time.Minute)}
	must(t, f.s.SetPortalBranding(f.ctx, keyward.Change{}, b2))
	got2, err := f.s.PortalBranding(f.ctx, a.ID)
	if err != nil || *got2 != *b2 {
		t.Fatalf("PortalBranding = %+v, %v; want %+v", got2, err, b2)
	}
	wantCode(t, f.s.SetPortalBranding(f.ctx, keyward.Change{}, &keyward.PortalBranding{AccountID: a.ID, AccentColor: "red", UpdatedAt: now}), keyward.EINVALID)
	wantCode(t, f.s.SetPortalBranding(f.ctx, keyward.Change{}, &keyward.PortalBranding{AccountID: apikey.NewID("acc"), UpdatedAt: now}), keyward.ENOTFOUND)
}
