package console

import (
	"bytes"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
)

// pageNames are the templates of the pages; each is parsed with the
// layout.
var pageNames = []string{"signin", "error", "keys", "key", "newkey", "created", "accounts", "account", "user", "roles", "audit", "auditverify", "iprules", "anomalies", "webhooks", "webhook", "whsecret", "usage", "branding"}

var funcs = template.FuncMap{
	"time": func(t any) string {
		switch v := t.(type) {
		case time.Time:
			return v.UTC().Format("2006-01-02 15:04 UTC")
		case *time.Time:
			if v == nil {
				return "never"
			}
			return v.UTC().Format("2006-01-02 15:04 UTC")
		}
		return ""
	},
	"join": strings.Join,
	"dur":  func(d keyward.Duration) string { return time.Duration(d).String() },
	"list": func(v ...string) []string { return v },
}

func parsePages() map[string]*template.Template {
	pages := make(map[string]*template.Template, len(pageNames))
	for _, name := range pageNames {
		pages[name] = template.Must(template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/limits.html", "templates/usage_totals.html", "templates/"+name+".html"))
	}
	return pages
}

// view is what every page's template receives.
type view struct {
	// Signed is the signed-in caller, nil on the sign-in and anonymous
	// error pages.
	Signed *keyward.Identity
	// CSRF is the token every form posts back.
	CSRF string
	// Data is the page's own data.
	Data any
}

// render writes the page name with data, buffered so a failing template
// never sends half a page.
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name string, cl *caller, data any) {
	v := view{Data: data}
	if cl != nil {
		v.Signed, v.CSRF = cl.ident, cl.session.csrf
	}
	execute(w, r, c.log, status, c.pages[name], name, v)
}

// execute writes page t with v, buffered so a failing template never sends
// half a page.
func execute(w http.ResponseWriter, r *http.Request, log *slog.Logger, status int, t *template.Template, name string, v any) {
	var buf bytes.Buffer
	if err := t.Execute(&buf, v); err != nil {
		log.ErrorContext(r.Context(), "rendering a page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// Key list: at most keysPerPage keys per page; with a status or search
// filter the console reads up to keysScanned keys per page to fill it.
const (
	keysPerPage = 50
	keysScanned = 1000
)

// keyStatuses are the values of the status filter: the words statusWord
// gives.
var keyStatuses = []string{"active", "rotated", "disabled", "revoked", "expired"}

// keyRow is a key with its status as a word.
type keyRow struct {
	*keyward.Key
	Status string
}

func statusWord(k *keyward.Key, now time.Time) string {
	switch k.Status(now) {
	case keyward.DecisionDisabled:
		return "disabled"
	case keyward.DecisionRevoked:
		return "revoked"
	case keyward.DecisionExpired:
		return "expired"
	}
	if k.GraceUntil != nil {
		return "rotated"
	}
	return "active"
}

// listKeys lists the caller's keys (the service scopes them), filtered by
// account, user and environment in the store, and by status and a search
// of the name, id and start in the console.
func (c *Console) listKeys(w http.ResponseWriter, r *http.Request, cl *caller) {
	q := r.URL.Query()
	f := keyward.KeyFilter{AccountID: q.Get("account"), UserID: q.Get("user"), Environment: q.Get("environment")}
	status, search := q.Get("status"), strings.ToLower(strings.TrimSpace(q.Get("q")))
	if status != "" && !slices.Contains(keyStatuses, status) {
		c.fail(w, r, cl, keyward.Errorf(keyward.EINVALID, "status must be active, rotated, disabled, revoked or expired"))
		return
	}
	now := c.now()
	var rows []keyRow
	after, next := q.Get("after"), ""
	for scanned := 0; scanned < keysScanned && len(rows) < keysPerPage; {
		l, err := c.keys.Keys(r.Context(), f, keyward.Page{After: after, Limit: 100})
		if err != nil {
			c.fail(w, r, cl, err)
			return
		}
		next = ""
		for i, k := range l.Items {
			scanned++
			after = k.ID
			row := keyRow{Key: k, Status: statusWord(k, now)}
			if (status == "" || row.Status == status) && matches(k, search) {
				rows = append(rows, row)
			}
			if len(rows) == keysPerPage || scanned == keysScanned {
				if i < len(l.Items)-1 || l.Next != "" {
					next = k.ID
				}
				break
			}
		}
		if next != "" || l.Next == "" {
			break
		}
		next = l.Next
	}
	c.render(w, r, http.StatusOK, "keys", cl, map[string]any{
		"Keys": rows, "Next": nextURL(Path+"/keys", q, next), "Filter": f, "Status": status, "Query": q.Get("q"),
		"Statuses": keyStatuses,
	})
}

func matches(k *keyward.Key, search string) bool {
	return search == "" || strings.Contains(strings.ToLower(k.Name), search) || strings.Contains(k.ID, search) || strings.Contains(strings.ToLower(k.Start), search)
}

func (c *Console) keyPage(w http.ResponseWriter, r *http.Request, cl *caller) {
	k, err := c.keys.Key(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	credits, err := c.keys.Credits(r.Context(), k.ID)
	if err != nil && keyward.ErrorCode(err) != keyward.ENOTFOUND {
		c.fail(w, r, cl, err)
		return
	}
	c.render(w, r, http.StatusOK, "key", cl, map[string]any{"Key": keyRow{Key: k, Status: statusWord(k, c.now())}, "Credits": credits})
}

func (c *Console) newKeyPage(w http.ResponseWriter, r *http.Request, cl *caller) {
	c.render(w, r, http.StatusOK, "newkey", cl, map[string]any{"Roles": creatableRoles(cl.ident), "Account": r.URL.Query().Get("account"), "User": r.URL.Query().Get("user")})
}

// creatableRoles are the roles the caller's tier may create keys with;
// the service decides the rest (its account, its policy).
func creatableRoles(id *keyward.Identity) []keyward.Role {
	switch id.Role {
	case keyward.RoleRoot:
		return []keyward.Role{keyward.RoleUser, keyward.RoleAccountAdmin, keyward.RoleRoot}
	case keyward.RoleAccountAdmin:
		return []keyward.Role{keyward.RoleUser, keyward.RoleAccountAdmin}
	}
	return []keyward.Role{keyward.RoleUser}
}

// fields splits a form's list of permissions or roles on commas and
// white space.
func fields(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
}

// createKey creates a key through the service and shows its secret once,
// on a page that is not cached; the secret is never kept nor logged.
func (c *Console) createKey(w http.ResponseWriter, r *http.Request, cl *caller) {
	in := keyward.KeyCreate{
		AccountID:   strings.TrimSpace(r.PostFormValue("account_id")),
		UserID:      strings.TrimSpace(r.PostFormValue("user_id")),
		Role:        keyward.Role(r.PostFormValue("role")),
		Name:        strings.TrimSpace(r.PostFormValue("name")),
		Permissions: fields(r.PostFormValue("permissions")),
		Roles:       fields(r.PostFormValue("roles")),
		Environment: strings.TrimSpace(r.PostFormValue("environment")),
	}
	if in.Role == "" {
		in.Role = keyward.RoleUser
	}
	if cl.ident.Role != keyward.RoleRoot && in.AccountID == "" {
		in.AccountID = cl.ident.AccountID
	}
	if cl.ident.Role == keyward.RoleUser && in.UserID == "" {
		in.UserID = cl.ident.UserID
	}
	if v := strings.TrimSpace(r.PostFormValue("expires_in")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			c.fail(w, r, cl, keyward.Errorf(keyward.EINVALID, "expires in must be a positive duration such as 720h, or empty for no expiry"))
			return
		}
		at := c.now().Add(d).UTC().Truncate(time.Second)
		in.ExpiresAt = &at
	}
	k, err := c.keys.CreateKey(r.Context(), in)
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	c.render(w, r, http.StatusCreated, "created", cl, map[string]any{"Key": k, "Secret": k.Secret, "Rotated": ""})
}

// keyAction runs one action of the key page: disable, enable, revoke,
// rotate or delete.
func (c *Console) keyAction(w http.ResponseWriter, r *http.Request, cl *caller) {
	id, ctx := r.PathValue("id"), r.Context()
	var err error
	switch r.PathValue("action") {
	case "disable", "enable":
		disabled := r.PathValue("action") == "disable"
		_, err = c.keys.UpdateKey(ctx, id, keyward.KeyUpdate{Disabled: &disabled})
	case "revoke":
		_, err = c.keys.RevokeKey(ctx, id)
	case "delete":
		if err = c.keys.DeleteKey(ctx, id); err == nil {
			http.Redirect(w, r, Path+"/keys", http.StatusSeeOther)
			return
		}
	case "rotate":
		var grace time.Duration
		if v := strings.TrimSpace(r.PostFormValue("grace")); v != "" {
			if grace, err = time.ParseDuration(v); err != nil || grace < 0 {
				c.fail(w, r, cl, keyward.Errorf(keyward.EINVALID, "grace must be a duration such as 24h, or empty to end the old key now"))
				return
			}
		}
		var k *keyward.CreatedKey
		if k, err = c.keys.RotateKey(ctx, id, keyward.KeyRotate{Grace: keyward.Duration(grace)}); err == nil {
			c.render(w, r, http.StatusCreated, "created", cl, map[string]any{"Key": k, "Secret": k.Secret, "Rotated": id})
			return
		}
	case "credits":
		var cr *keyward.Credits
		if cr, err = creditsForm(r); err == nil {
			_, err = c.keys.SetCredits(ctx, id, cr)
		}
	case "remove-credits":
		_, err = c.keys.SetCredits(ctx, id, nil)
	case "top-up":
		var n int64
		if n, err = positiveInt(r.PostFormValue("amount"), "the top-up amount"); err == nil {
			_, err = c.keys.TopUpCredits(ctx, id, n)
		}
	default:
		err = keyward.Errorf(keyward.ENOTFOUND, "no such key action: use disable, enable, rotate, revoke, delete, credits, remove-credits or top-up")
	}
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	http.Redirect(w, r, Path+"/keys/"+url.PathEscape(id), http.StatusSeeOther)
}

// accountsPerPage and usersPerPage size the lists of accounts and users.
const (
	accountsPerPage = 50
	usersPerPage    = 50
)

func (c *Console) listAccounts(w http.ResponseWriter, r *http.Request, cl *caller) {
	after := r.URL.Query().Get("after")
	l, err := c.tenancy.Accounts(r.Context(), keyward.Page{After: after, Limit: accountsPerPage})
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	next := ""
	if l.Next != "" {
		next = Path + "/accounts?after=" + url.QueryEscape(l.Next)
	}
	c.render(w, r, http.StatusOK, "accounts", cl, map[string]any{"Accounts": l.Items, "Next": next})
}

func (c *Console) createAccount(w http.ResponseWriter, r *http.Request, cl *caller) {
	a, err := c.tenancy.CreateAccount(r.Context(), keyward.AccountCreate{Name: strings.TrimSpace(r.PostFormValue("name"))})
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	http.Redirect(w, r, Path+"/accounts/"+url.PathEscape(a.ID), http.StatusSeeOther)
}

func (c *Console) accountPage(w http.ResponseWriter, r *http.Request, cl *caller) {
	a, err := c.tenancy.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	after := r.URL.Query().Get("after")
	l, err := c.tenancy.Users(r.Context(), a.ID, keyward.Page{After: after, Limit: usersPerPage})
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	next := ""
	if l.Next != "" {
		next = Path + "/accounts/" + url.PathEscape(a.ID) + "?after=" + url.QueryEscape(l.Next)
	}
	m, err := c.meterOf(r, a.ID, "")
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	c.render(w, r, http.StatusOK, "account", cl, map[string]any{"Account": a, "Users": l.Items, "Next": next, "Meter": m, "LimitsPath": Path + "/accounts/" + a.ID + "/limits"})
}

func (c *Console) createUser(w http.ResponseWriter, r *http.Request, cl *caller) {
	accountID := r.PathValue("id")
	u, err := c.tenancy.CreateUser(r.Context(), accountID, keyward.UserCreate{
		Name:       strings.TrimSpace(r.PostFormValue("name")),
		ExternalID: strings.TrimSpace(r.PostFormValue("external_id")),
	})
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	http.Redirect(w, r, Path+"/accounts/"+url.PathEscape(accountID)+"/users/"+url.PathEscape(u.ID), http.StatusSeeOther)
}

func (c *Console) userPage(w http.ResponseWriter, r *http.Request, cl *caller) {
	u, err := c.tenancy.User(r.Context(), r.PathValue("id"), r.PathValue("uid"))
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	m, err := c.meterOf(r, u.AccountID, u.ID)
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	c.render(w, r, http.StatusOK, "user", cl, map[string]any{"User": u, "Meter": m, "LimitsPath": Path + "/accounts/" + u.AccountID + "/users/" + u.ID + "/limits"})
}
