package console

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/keyward/keyward"
)

// brandingPage shows and edits the end-user portal's branding of an
// account (docs/portal.md#branding): root, or the account's admins.
func (c *Console) brandingPage(w http.ResponseWriter, r *http.Request, cl *caller) {
	b, err := c.branding.PortalBranding(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	c.render(w, r, http.StatusOK, "branding", cl, map[string]any{"Branding": b})
}

// setBranding replaces the branding through the Portal service, which
// accepts colours written #rrggbb only. A colour left at "default" is
// empty.
func (c *Console) setBranding(w http.ResponseWriter, r *http.Request, cl *caller) {
	id := r.PathValue("id")
	color := func(name string) string {
		if r.PostFormValue(name+"_default") != "" {
			return ""
		}
		return strings.TrimSpace(r.PostFormValue(name))
	}
	b := keyward.PortalBranding{AccountID: id, Title: strings.TrimSpace(r.PostFormValue("title")),
		AccentColor: color("accent_color"), BackgroundColor: color("background_color"), TextColor: color("text_color")}
	if _, err := c.branding.SetPortalBranding(r.Context(), b); err != nil {
		c.fail(w, r, cl, err)
		return
	}
	http.Redirect(w, r, Path+"/accounts/"+url.PathEscape(id)+"/portal", http.StatusSeeOther)
}
