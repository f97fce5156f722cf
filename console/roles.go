package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/keyward/keyward"
)

// rolesPerPage sizes the list of an account's named roles.
const rolesPerPage = 50

// rolesPage lists an account's named roles with a form to create one and,
// per role, forms to replace its permissions or delete it. Root, or an
// admin of the account (the service decides: 404 for another account's,
// 403 for a user key).
func (c *Console) rolesPage(w http.ResponseWriter, r *http.Request, cl *caller) {
	a, err := c.tenancy.Account(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	l, err := c.roles.Roles(r.Context(), a.ID, keyward.Page{After: r.URL.Query().Get("after"), Limit: rolesPerPage})
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	next := ""
	if l.Next != "" {
		next = Path + "/accounts/" + url.PathEscape(a.ID) + "/roles?after=" + url.QueryEscape(l.Next)
	}
	c.render(w, r, http.StatusOK, "roles", cl, map[string]any{"Account": a, "Roles": l.Items, "Next": next})
}

func (c *Console) rolesURL(accountID string) string {
	return Path + "/accounts/" + url.PathEscape(accountID) + "/roles"
}

func (c *Console) createRole(w http.ResponseWriter, r *http.Request, cl *caller) {
	accountID := r.PathValue("id")
	_, err := c.roles.CreateRole(r.Context(), accountID, keyward.RoleCreate{
		Name:        strings.TrimSpace(r.PostFormValue("name")),
		Permissions: fields(r.PostFormValue("permissions")),
	})
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	http.Redirect(w, r, c.rolesURL(accountID), http.StatusSeeOther)
}

// updateRole replaces a role's permissions: every key holding it changes
// at once, on every instance (docs/permissions.md).
func (c *Console) updateRole(w http.ResponseWriter, r *http.Request, cl *caller) {
	accountID := r.PathValue("id")
	perms := fields(r.PostFormValue("permissions"))
	if _, err := c.roles.UpdateRole(r.Context(), accountID, r.PathValue("name"), keyward.RoleUpdate{Permissions: &perms}); err != nil {
		c.fail(w, r, cl, err)
		return
	}
	http.Redirect(w, r, c.rolesURL(accountID), http.StatusSeeOther)
}

func (c *Console) deleteRole(w http.ResponseWriter, r *http.Request, cl *caller) {
	accountID := r.PathValue("id")
	if err := c.roles.DeleteRole(r.Context(), accountID, r.PathValue("name")); err != nil {
		c.fail(w, r, cl, err)
		return
	}
	http.Redirect(w, r, c.rolesURL(accountID), http.StatusSeeOther)
}
