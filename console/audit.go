package console

import (
	"net/http"

	"github.com/keyward/keyward"
)

// auditPerPage sizes a page of the audit log.
const auditPerPage = 50

// auditPage lists the audit log entries the caller may read (root: all;
// an account admin: its account's, other accounts' actors redacted; a
// user key: none, 403), oldest first, filtered by action, actor, target
// and, for root, account.
func (c *Console) auditPage(w http.ResponseWriter, r *http.Request, cl *caller) {
	q := r.URL.Query()
	f := keyward.AuditFilter{Action: q.Get("action"), ActorKeyID: q.Get("actor"), TargetID: q.Get("target"), AccountID: q.Get("account")}
	l, err := c.audit.AuditEntries(r.Context(), f, keyward.Page{After: q.Get("after"), Limit: auditPerPage})
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	c.render(w, r, http.StatusOK, "audit", cl, map[string]any{"Entries": l.Items, "Next": nextURL(Path+"/audit", q, l.Next), "Filter": f})
}

// auditVerifyPage checks the whole hash chain of the audit log (root
// only, as GET /v1/audit/verify) and shows the result.
func (c *Console) auditVerifyPage(w http.ResponseWriter, r *http.Request, cl *caller) {
	v, err := c.audit.VerifyAudit(r.Context(), nil)
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	c.render(w, r, http.StatusOK, "auditverify", cl, map[string]any{"Result": v})
}
