package main

import (
	"io"
	"strings"

	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

func (a *app) rolesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "roles",
		Short: "Manage the named roles of an account (named sets of permissions attached to keys)",
		Long: `A named role is a named set of permissions of an account, such as
reader = memories:read, search:*. A key holds its own permissions and those
of its roles (keyward keys create --named-role reader); a change of a role
reaches every key holding it at once. Nobody puts in a role a permission
they do not hold.`,
	}
	a.addClientFlags(cmd)
	cmd.AddCommand(a.rolesCreateCommand(), a.rolesListCommand(), a.rolesGetCommand(), a.rolesUpdateCommand(), a.rolesDeleteCommand())
	return cmd
}

func (a *app) rolesCreateCommand() *cobra.Command {
	var (
		account string
		create  keyward.RoleCreate
	)
	cmd := &cobra.Command{
		Use:   "create --account ACCOUNT_ID --name NAME --permission P...",
		Short: "Create a named role in an account",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.CreateRole(cmd.Context(), account, create)
			if err != nil {
				return err
			}
			return a.show(r, func(w io.Writer) error { return printRole(w, r) })
		},
	}
	accountFlag(cmd, &account)
	cmd.Flags().StringVar(&create.Name, "name", "", "role name, e.g. reader (required)")
	cmd.Flags().StringSliceVar(&create.Permissions, "permission", nil, "permission the role grants, e.g. memories:read or search:* (repeatable)")
	cmd.MarkFlagRequired("name")
	return cmd
}

func (a *app) rolesListCommand() *cobra.Command {
	var (
		account string
		page    keyward.Page
	)
	cmd := &cobra.Command{
		Use:   "list --account ACCOUNT_ID",
		Short: "List the named roles of an account",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			l, err := c.Roles(cmd.Context(), account, page)
			if err != nil {
				return err
			}
			return a.show(l, func(w io.Writer) error {
				t := newTable(w, "NAME", "PERMISSIONS", "UPDATED")
				for _, r := range l.Items {
					t.row(r.Name, strings.Join(r.Permissions, ","), formatTime(r.UpdatedAt))
				}
				err := t.flush()
				printNext(w, l.Next)
				return err
			})
		},
	}
	accountFlag(cmd, &account)
	pageFlags(cmd, &page)
	return cmd
}

func (a *app) rolesGetCommand() *cobra.Command {
	var account string
	cmd := &cobra.Command{
		Use:   "get --account ACCOUNT_ID NAME",
		Short: "Show a named role",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.Role(cmd.Context(), account, args[0])
			if err != nil {
				return err
			}
			return a.show(r, func(w io.Writer) error { return printRole(w, r) })
		},
	}
	accountFlag(cmd, &account)
	return cmd
}

func (a *app) rolesUpdateCommand() *cobra.Command {
	var (
		account    string
		perms      []string
		clearPerms bool
	)
	cmd := &cobra.Command{
		Use:   "update --account ACCOUNT_ID NAME (--permission P... | --clear-permissions)",
		Short: "Replace a named role's permissions; every key holding it changes at once",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u keyward.RoleUpdate
			switch changed := cmd.Flags().Changed("permission"); {
			case clearPerms && changed:
				return usageErrorf("give --permission or --clear-permissions, not both")
			case clearPerms:
				u.Permissions = &[]string{}
			case changed:
				u.Permissions = &perms
			default:
				return usageErrorf("nothing to update: give --permission (repeatable) or --clear-permissions")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.UpdateRole(cmd.Context(), account, args[0], u)
			if err != nil {
				return err
			}
			return a.show(r, func(w io.Writer) error { return printRole(w, r) })
		},
	}
	accountFlag(cmd, &account)
	cmd.Flags().StringSliceVar(&perms, "permission", nil, "permission (repeatable); replaces the list")
	cmd.Flags().BoolVar(&clearPerms, "clear-permissions", false, "remove every permission")
	return cmd
}

func (a *app) rolesDeleteCommand() *cobra.Command {
	var account string
	cmd := &cobra.Command{
		Use:   "delete --account ACCOUNT_ID NAME",
		Short: "Delete a named role, detaching it from every key",
		Args:  exactArgs("NAME"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteRole(cmd.Context(), account, args[0]); err != nil {
				return err
			}
			return a.done("deleted", args[0])
		},
	}
	accountFlag(cmd, &account)
	return cmd
}

func printRole(w io.Writer, r *keyward.NamedRole) error {
	return fields(w,
		"name", r.Name,
		"account", r.AccountID,
		"permissions", strings.Join(r.Permissions, ","),
		"created", formatTime(r.CreatedAt),
		"updated", formatTime(r.UpdatedAt),
	)
}
