package middleware_test

import (
	"net/http"
	"reflect"
	"sync"
	"testing"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/middleware"
)

// TestQueryAndRole: WithQuery and WithRole are checked by the verifier,
// which says what is missing to an ErrorWriter; RequireQuery checks a
// route's query with the identity, a held wildcard covering its terms; a
// root key passes every query; keys that satisfy them are let through.
func TestQueryAndRole(t *testing.T) {
	e := newEnv(t)
	var mu sync.Mutex
	var denials []*middleware.Denial
	write := func(w http.ResponseWriter, r *http.Request, d *middleware.Denial) {
		mu.Lock()
		denials = append(denials, d)
		mu.Unlock()
		middleware.WriteProblem(w, r, d)
	}
	mux := http.NewServeMux()
	mux.Handle("/notes", whoami())
	mux.Handle("/search", middleware.RequireQuery("search:run OR admin:*")(whoami()))
	ts := e.protect(e.engine, mux, middleware.WithQuery("notes:read AND (notes:write OR admin:*)"), middleware.WithErrorWriter(write))

	reader := e.userKey("notes:read")
	writer := e.userKey("notes:*")
	admin := e.userKey("notes:read", "admin:*")
	get(t, ts, "/notes", "X-API-Key", writer.Secret).seen(t)
	get(t, ts, "/notes", "X-API-Key", admin.Secret).seen(t)
	get(t, ts, "/search", "X-API-Key", admin.Secret).seen(t)
	get(t, ts, "/search", "X-API-Key", writer.Secret).problem(t, 403, keyward.EFORBIDDEN)
	get(t, ts, "/notes", "X-API-Key", reader.Secret).problem(t, 403, keyward.EFORBIDDEN)
	mu.Lock()
	if n := len(denials); n != 2 || denials[0].MissingPermissions != nil || !reflect.DeepEqual(denials[1].MissingPermissions, []string{"notes:write", "admin:*"}) {
		t.Errorf("denials = %+v", denials)
	}
	mu.Unlock()

	roles := e.protect(e.engine, whoami(), middleware.WithRole(keyward.RoleAccountAdmin))
	get(t, roles, "/", "X-API-Key", writer.Secret).problem(t, 403, keyward.EFORBIDDEN)
	acctAdmin := e.key(keyward.KeyCreate{AccountID: e.acct.ID, Role: keyward.RoleAccountAdmin})
	get(t, roles, "/", "X-API-Key", acctAdmin.Secret).seen(t)
	get(t, roles, "/", "X-API-Key", e.root.Reveal()).seen(t)

	// WithRole may name a named role: only its holders pass, root too is
	// refused (it holds no named role).
	if _, err := e.svc.Roles.CreateRole(e.rootCtx(), e.acct.ID, keyward.RoleCreate{Name: "reader", Permissions: []string{"notes:read"}}); err != nil {
		t.Fatal(err)
	}
	named := e.protect(e.engine, whoami(), middleware.WithRole("reader"))
	holder := e.key(keyward.KeyCreate{AccountID: e.acct.ID, Role: keyward.RoleAccountAdmin, Roles: []string{"reader"}})
	get(t, named, "/", "X-API-Key", holder.Secret).seen(t)
	get(t, named, "/", "X-API-Key", acctAdmin.Secret).problem(t, 403, keyward.EFORBIDDEN)
	get(t, named, "/", "X-API-Key", e.root.Reveal()).problem(t, 403, keyward.EFORBIDDEN)
}

func TestQueryOptionsPanicOnWiringBugs(t *testing.T) {
	for name, f := range map[string]func(){
		"bad query":        func() { middleware.New(&recordingVerifier{}, middleware.WithQuery("a AND")) },
		"bad role":         func() { middleware.New(&recordingVerifier{}, middleware.WithRole("Owner!")) },
		"bad route query":  func() { middleware.RequireQuery("(a OR b") },
		"wildcard segment": func() { middleware.RequireQuery("a*") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: no panic", name)
				}
			}()
			f()
		}()
	}
}
