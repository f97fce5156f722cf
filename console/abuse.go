package console

import (
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/keyward/keyward"
)

// abusePerPage sizes the lists of IP rules and anomalies.
const abusePerPage = 50

// ipRulesPage lists IP rules: for root all of them, or the global ones
// (scope=global), or an account's (account=...); for an account admin
// its account's. The service decides who may read what (403, 404).
func (c *Console) ipRulesPage(w http.ResponseWriter, r *http.Request, cl *caller) {
	q := r.URL.Query()
	f := keyward.IPRuleFilter{AccountID: q.Get("account"), Global: q.Get("scope") == "global"}
	if cl.ident.Role == keyward.RoleAccountAdmin && f.AccountID == "" && !f.Global {
		f.AccountID = cl.ident.AccountID
	}
	l, err := c.abuse.IPRules(r.Context(), f, keyward.Page{After: q.Get("after"), Limit: abusePerPage})
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	c.render(w, r, http.StatusOK, "iprules", cl, map[string]any{"Rules": l.Items, "Next": nextURL(Path+"/ip-rules", q, l.Next), "Filter": f, "Now": c.now()})
}

// createIPRule creates a rule; an empty account is a global rule (root
// only), and an account admin's rules are its account's.
func (c *Console) createIPRule(w http.ResponseWriter, r *http.Request, cl *caller) {
	in := keyward.IPRuleCreate{
		AccountID: strings.TrimSpace(r.PostFormValue("account_id")),
		Action:    keyward.IPAction(r.PostFormValue("action")),
		CIDR:      strings.TrimSpace(r.PostFormValue("cidr")),
		Reason:    strings.TrimSpace(r.PostFormValue("reason")),
	}
	if cl.ident.Role != keyward.RoleRoot && in.AccountID == "" {
		in.AccountID = cl.ident.AccountID
	}
	if v := strings.TrimSpace(r.PostFormValue("expires_in")); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			c.fail(w, r, cl, keyward.Errorf(keyward.EINVALID, "expires in must be a positive duration such as 24h, or empty for a rule that never expires"))
			return
		}
		at := c.now().Add(d).UTC().Truncate(time.Second)
		in.ExpiresAt = &at
	}
	if _, err := c.abuse.CreateIPRule(r.Context(), in); err != nil {
		c.fail(w, r, cl, err)
		return
	}
	http.Redirect(w, r, Path+"/ip-rules", http.StatusSeeOther)
}

func (c *Console) deleteIPRule(w http.ResponseWriter, r *http.Request, cl *caller) {
	if err := c.abuse.DeleteIPRule(r.Context(), r.PathValue("id")); err != nil {
		c.fail(w, r, cl, err)
		return
	}
	http.Redirect(w, r, Path+"/ip-rules", http.StatusSeeOther)
}

// anomaliesPage lists the anomalies abuse detection recorded that the
// caller may read, filtered by type, key and (root) account.
func (c *Console) anomaliesPage(w http.ResponseWriter, r *http.Request, cl *caller) {
	q := r.URL.Query()
	f := keyward.AnomalyFilter{AccountID: q.Get("account"), KeyID: q.Get("key"), Type: keyward.AnomalyType(q.Get("type"))}
	l, err := c.abuse.Anomalies(r.Context(), f, keyward.Page{After: q.Get("after"), Limit: abusePerPage})
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	c.render(w, r, http.StatusOK, "anomalies", cl, map[string]any{"Anomalies": l.Items, "Next": nextURL(Path+"/anomalies", q, l.Next), "Filter": f})
}

// nextURL is the address of the page after cursor next of the list at
// base with query q ("" without one).
func nextURL(base string, q url.Values, next string) string {
	if next == "" {
		return ""
	}
	nq := url.Values{}
	for name, vs := range q {
		if name != "after" && len(vs) > 0 && vs[0] != "" {
			nq.Set(name, vs[0])
		}
	}
	nq.Set("after", next)
	return base + "?" + nq.Encode()
}
