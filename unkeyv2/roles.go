package unkeyv2

import (
	"context"
	"net/http"

	"github.com/keyward/keyward"
)

// Unkey's roles are keyward's named roles of the account the call acts in
// (workspace); a role's id is its name, unique in the account and never
// changed. keyward's permissions are the strings keys and roles hold, not
// records: the permissions.* operations on permissions themselves are not
// served (docs/unkey.md).

// roleAnswer is a role as Unkey answers it, with its permissions.
type roleAnswer struct {
	ID          string           `json:"id"`
	Name        string           `json:"name"`
	Permissions []permissionData `json:"permissions"`
}

func roleAnswerOf(r *keyward.NamedRole) *roleAnswer {
	out := &roleAnswer{ID: r.Name, Name: r.Name, Permissions: make([]permissionData, len(r.Permissions))}
	for i, p := range r.Permissions {
		out.Permissions[i] = permissionList.answer(p)
	}
	return out
}

type createRoleRequest struct {
	Name        string   `json:"name"`
	Description string   `json:"description"`
	Permissions []string `json:"permissions"`
}

type createRoleData struct {
	RoleID string `json:"roleId"`
}

func (s *Server) createRole(ctx context.Context, r *http.Request, in *createRoleRequest) (*createRoleData, error) {
	if in.Name == "" {
		return nil, badField("name", "is required")
	}
	if in.Description != "" {
		return nil, errDescription
	}
	account, err := s.workspace(ctx, r)
	if err != nil {
		return nil, err
	}
	perms := in.Permissions
	if perms == nil {
		perms = []string{}
	}
	role, err := s.cfg.Roles.CreateRole(ctx, account, keyward.RoleCreate{Name: in.Name, Permissions: perms})
	if err != nil {
		return nil, err
	}
	return &createRoleData{RoleID: role.Name}, nil
}

// errDescription refuses a description: keyward's roles have none.
var errDescription = badField("description", "keyward's roles have no description: leave it out")

type roleRequest struct {
	Role string `json:"role"`
}

func (s *Server) getRole(ctx context.Context, r *http.Request, in *roleRequest) (*roleAnswer, error) {
	if in.Role == "" {
		return nil, badField("role", "is required: the role's id or name (the same in keyward)")
	}
	account, err := s.workspace(ctx, r)
	if err != nil {
		return nil, err
	}
	role, err := s.cfg.Roles.Role(ctx, account, in.Role)
	if err != nil {
		return nil, err
	}
	return roleAnswerOf(role), nil
}

func (s *Server) listRoles(ctx context.Context, r *http.Request, body []byte) (any, *pagination, error) {
	account, page, err := s.listedPage(ctx, r, body)
	if err != nil {
		return nil, nil, err
	}
	list, err := s.cfg.Roles.Roles(ctx, account, page)
	if err != nil {
		return nil, nil, err
	}
	out := make([]*roleAnswer, len(list.Items))
	for i, role := range list.Items {
		out[i] = roleAnswerOf(role)
	}
	return out, &pagination{Cursor: list.Next, HasMore: list.Next != ""}, nil
}

// deleteRole deletes the role; the keys holding it lose it and its
// permissions.
func (s *Server) deleteRole(ctx context.Context, r *http.Request, in *roleRequest) (empty, error) {
	if in.Role == "" {
		return empty{}, badField("role", "is required: the role's id or name (the same in keyward)")
	}
	account, err := s.workspace(ctx, r)
	if err != nil {
		return empty{}, err
	}
	return empty{}, s.cfg.Roles.DeleteRole(ctx, account, in.Role)
}

type setRolePermissionsRequest struct {
	RoleID      string    `json:"roleId"`
	Permissions *[]string `json:"permissions"`
}

// setRolePermissions replaces the role's permissions and answers them;
// every key holding the role holds the new ones from then on.
func (s *Server) setRolePermissions(ctx context.Context, r *http.Request, in *setRolePermissionsRequest) ([]permissionData, error) {
	if in.RoleID == "" {
		return nil, badField("roleId", "is required")
	}
	if in.Permissions == nil {
		return nil, badField("permissions", "is required ([] removes them all)")
	}
	account, err := s.workspace(ctx, r)
	if err != nil {
		return nil, err
	}
	role, err := s.cfg.Roles.UpdateRole(ctx, account, in.RoleID, keyward.RoleUpdate{Permissions: in.Permissions})
	if err != nil {
		return nil, err
	}
	return roleAnswerOf(role).Permissions, nil
}
