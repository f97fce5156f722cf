package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/keyward/keyward"
)

// webhooksPerPage sizes the lists of endpoints and of deliveries.
const webhooksPerPage = 50

// webhooksPage lists the webhook endpoints the caller may manage (root:
// all, or an account's; an account admin: its account's) with a form to
// register one.
func (c *Console) webhooksPage(w http.ResponseWriter, r *http.Request, cl *caller) {
	q := r.URL.Query()
	f := keyward.WebhookEndpointFilter{AccountID: q.Get("account")}
	if cl.ident.Role == keyward.RoleAccountAdmin && f.AccountID == "" {
		f.AccountID = cl.ident.AccountID
	}
	l, err := c.hooks.WebhookEndpoints(r.Context(), f, keyward.Page{After: q.Get("after"), Limit: webhooksPerPage})
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	c.render(w, r, http.StatusOK, "webhooks", cl, map[string]any{"Endpoints": l.Items, "Next": nextURL(Path+"/webhooks", q, l.Next), "Filter": f, "Events": keyward.EventTypes})
}

// createWebhook registers an endpoint and shows its signing secret once.
func (c *Console) createWebhook(w http.ResponseWriter, r *http.Request, cl *caller) {
	in := keyward.NewWebhookEndpoint{
		AccountID:   strings.TrimSpace(r.PostFormValue("account_id")),
		URL:         strings.TrimSpace(r.PostFormValue("url")),
		Description: strings.TrimSpace(r.PostFormValue("description")),
		Events:      r.PostForm["events"],
	}
	if cl.ident.Role != keyward.RoleRoot && in.AccountID == "" {
		in.AccountID = cl.ident.AccountID
	}
	e, err := c.hooks.CreateWebhookEndpoint(r.Context(), in)
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	c.render(w, r, http.StatusCreated, "whsecret", cl, map[string]any{"Endpoint": e.Endpoint, "Secret": e.Secret})
}

// webhookPage shows an endpoint, its actions and its delivery log.
func (c *Console) webhookPage(w http.ResponseWriter, r *http.Request, cl *caller) {
	e, err := c.hooks.WebhookEndpoint(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	q := r.URL.Query()
	l, err := c.hooks.WebhookDeliveries(r.Context(), e.ID, keyward.Page{After: q.Get("after"), Limit: webhooksPerPage})
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	c.render(w, r, http.StatusOK, "webhook", cl, map[string]any{"Endpoint": e, "Deliveries": l.Items, "Next": nextURL(Path+"/webhooks/"+url.PathEscape(e.ID), q, l.Next)})
}

// webhookAction runs an action of the endpoint page: disable, enable,
// rotate-secret (the new secret is shown once) or delete.
func (c *Console) webhookAction(w http.ResponseWriter, r *http.Request, cl *caller) {
	id, ctx := r.PathValue("id"), r.Context()
	var err error
	switch action := r.PathValue("action"); action {
	case "disable", "enable":
		disabled := action == "disable"
		_, err = c.hooks.UpdateWebhookEndpoint(ctx, id, keyward.WebhookEndpointUpdate{Disabled: &disabled})
	case "rotate-secret":
		var e *keyward.CreatedWebhookEndpoint
		if e, err = c.hooks.RotateWebhookSecret(ctx, id); err == nil {
			c.render(w, r, http.StatusOK, "whsecret", cl, map[string]any{"Endpoint": e.Endpoint, "Secret": e.Secret, "Rotated": true})
			return
		}
	case "delete":
		if err = c.hooks.DeleteWebhookEndpoint(ctx, id); err == nil {
			http.Redirect(w, r, Path+"/webhooks", http.StatusSeeOther)
			return
		}
	default:
		err = keyward.Errorf(keyward.ENOTFOUND, "no such webhook action: use disable, enable, rotate-secret or delete")
	}
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	http.Redirect(w, r, Path+"/webhooks/"+url.PathEscape(id), http.StatusSeeOther)
}

// retryDelivery sends a delivery of the endpoint's log again, through the
// Webhooks service: the webhook sender attempts it at its next run.
func (c *Console) retryDelivery(w http.ResponseWriter, r *http.Request, cl *caller) {
	id := r.PathValue("id")
	if _, err := c.hooks.RetryWebhookDelivery(r.Context(), id, r.PathValue("event")); err != nil {
		c.fail(w, r, cl, err)
		return
	}
	http.Redirect(w, r, Path+"/webhooks/"+url.PathEscape(id), http.StatusSeeOther)
}
