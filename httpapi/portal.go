package httpapi

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/clientaddr"
)

// addPortalRoutes adds the routes of the end-user portal: sessions and the
// branding of accounts (docs/portal.md).
func (s *Server) addPortalRoutes() {
	s.handle("POST /v1/portal/sessions", serveJSON(s, http.StatusCreated, s.createPortalSession))
	s.handle("GET /v1/accounts/{id}/portal-branding", serveJSON(s, http.StatusOK, s.getPortalBranding))
	s.handle("PUT /v1/accounts/{id}/portal-branding", serveJSON(s, http.StatusOK, s.setPortalBranding))
}

// createPortalSession answers the session with its link made absolute on
// Config.PortalURL or else the address the caller reached keyward at:
// https when TLS ends here or a trusted proxy says so (X-Forwarded-Proto),
// the host of a trusted proxy's X-Forwarded-Host or else the request's.
func (s *Server) createPortalSession(ctx context.Context, r *http.Request, in keyward.PortalSessionCreate) (*keyward.PortalLink, error) {
	l, err := s.svc.Portal.CreatePortalSession(ctx, in)
	if err != nil {
		return nil, err
	}
	if s.portalURL != "" {
		l.URL = s.portalURL + l.URL
		return l, nil
	}
	scheme, host := "http", r.Host
	if clientaddr.HTTPS(r, s.trusted) {
		scheme = "https"
	}
	if h := r.Header.Get("X-Forwarded-Host"); h != "" && clientaddr.PeerTrusted(r.RemoteAddr, s.trusted) {
		host = h
	}
	l.URL = scheme + "://" + host + l.URL
	return l, nil
}

func (s *Server) getPortalBranding(ctx context.Context, r *http.Request, _ noBody) (*keyward.PortalBranding, error) {
	return s.svc.Portal.PortalBranding(ctx, r.PathValue("id"))
}

func (s *Server) setPortalBranding(ctx context.Context, r *http.Request, in keyward.PortalBranding) (*keyward.PortalBranding, error) {
	in.AccountID = r.PathValue("id")
	return s.svc.Portal.SetPortalBranding(ctx, in)
}
