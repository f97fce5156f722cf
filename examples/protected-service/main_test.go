package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/keywardtest"
	"github.com/keyward/keyward/middleware"
	"github.com/keyward/keyward/verify"
)

// TestNotes runs the notes service behind the middleware with the
// verification engine in process and real keys.
func TestNotes(t *testing.T) {
	store := keywardtest.NewSQLiteStore(t)
	hasher := keywardtest.NewHasher(t)
	engine, err := verify.New(verify.Config{Store: store, Hasher: hasher})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { engine.Close(context.Background()) })
	acct := keywardtest.NewAccount(t, store, "acme")
	user := keywardtest.NewUser(t, store, acct.ID, "alice")
	writer := keywardtest.NewUserKey(t, store, hasher, acct.ID, user.ID, "notes:read", "notes:write")
	reader := keywardtest.NewUserKey(t, store, hasher, acct.ID, user.ID, "notes:read")

	ts := httptest.NewServer(middleware.New(engine, middleware.WithExempt("/", "/healthz"))(newNotes().routes()))
	defer ts.Close()
	do := func(method, path, key, body string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest(method, ts.URL+path, strings.NewReader(body))
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}

	if code, _ := do("GET", "/", "", ""); code != 200 {
		t.Errorf("GET / without a key: %d", code)
	}
	if code, _ := do("GET", "/notes", "", ""); code != 401 {
		t.Errorf("GET /notes without a key: %d", code)
	}
	if code, _ := do("POST", "/notes", reader.Secret, `{"text":"hi"}`); code != 403 {
		t.Errorf("POST /notes with a read-only key: %d", code)
	}
	if code, body := do("POST", "/notes", writer.Secret, `{"text":"hi"}`); code != 201 {
		t.Errorf("POST /notes: %d %s", code, body)
	}
	code, body := do("GET", "/notes", reader.Secret, "")
	var got []note
	if err := json.Unmarshal([]byte(body), &got); code != 200 || err != nil || len(got) != 1 || got[0].CreatedBy != writer.ID {
		t.Errorf("GET /notes: %d %s", code, body)
	}
}
