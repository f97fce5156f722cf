package httpapi

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

// addRoleRoutes adds the routes of an account's named roles
// (docs/api.md#named-roles).
func (s *Server) addRoleRoutes() {
	s.handle("POST /v1/accounts/{id}/roles", serveJSON(s, http.StatusCreated, s.createRole))
	s.handle("GET /v1/accounts/{id}/roles", serveJSON(s, http.StatusOK, s.listRoles))
	s.handle("GET /v1/accounts/{id}/roles/{name}", serveJSON(s, http.StatusOK, s.getRole))
	s.handle("PATCH /v1/accounts/{id}/roles/{name}", serveJSON(s, http.StatusOK, s.updateRole))
	s.handle("DELETE /v1/accounts/{id}/roles/{name}", serveJSON(s, http.StatusNoContent, s.deleteRole))
}

func (s *Server) createRole(ctx context.Context, r *http.Request, in keyward.RoleCreate) (*keyward.NamedRole, error) {
	return s.svc.Roles.CreateRole(ctx, r.PathValue("id"), in)
}

func (s *Server) listRoles(ctx context.Context, r *http.Request, _ noBody) (*keyward.RoleList, error) {
	q, err := query(r, "after", "limit")
	if err != nil {
		return nil, err
	}
	p, err := pageOf(q)
	if err != nil {
		return nil, err
	}
	l, err := s.svc.Roles.Roles(ctx, r.PathValue("id"), p)
	if l != nil && l.Items == nil {
		l.Items = []*keyward.NamedRole{}
	}
	return l, err
}

func (s *Server) getRole(ctx context.Context, r *http.Request, _ noBody) (*keyward.NamedRole, error) {
	return s.svc.Roles.Role(ctx, r.PathValue("id"), r.PathValue("name"))
}

func (s *Server) updateRole(ctx context.Context, r *http.Request, in keyward.RoleUpdate) (*keyward.NamedRole, error) {
	return s.svc.Roles.UpdateRole(ctx, r.PathValue("id"), r.PathValue("name"), in)
}

func (s *Server) deleteRole(ctx context.Context, r *http.Request, _ noBody) (*struct{}, error) {
	return nil, s.svc.Roles.DeleteRole(ctx, r.PathValue("id"), r.PathValue("name"))
}
