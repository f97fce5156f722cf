package main

import (
	"io"

	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

func (a *app) usersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "users",
		Aliases: []string{"user"},
		Short:   "Manage the users of an account",
	}
	a.addClientFlags(cmd)
	var account string
	accountFlag := func(c *cobra.Command) {
		c.Flags().StringVar(&account, "account", "", "account id (required)")
		c.MarkFlagRequired("account")
	}

	var create keyward.UserCreate
	createCmd := &cobra.Command{
		Use:   "create --account ACCOUNT_ID --name NAME [--external-id ID]",
		Short: "Create a user in an account",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			u, err := c.CreateUser(cmd.Context(), account, create)
			if err != nil {
				return err
			}
			return a.show(u, func(w io.Writer) error { return printUser(w, u) })
		},
	}
	accountFlag(createCmd)
	createCmd.Flags().StringVar(&create.Name, "name", "", "user name (required)")
	createCmd.Flags().StringVar(&create.ExternalID, "external-id", "", "your own id for this user, unique in the account")
	createCmd.MarkFlagRequired("name")

	var page keyward.Page
	listCmd := &cobra.Command{
		Use:   "list --account ACCOUNT_ID",
		Short: "List the users of an account",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			l, err := c.Users(cmd.Context(), account, page)
			if err != nil {
				return err
			}
			return a.show(l, func(w io.Writer) error {
				t := newTable(w, userHeader...)
				for _, u := range l.Items {
					userRow(t, u)
				}
				err := t.flush()
				printNext(w, l.Next)
				return err
			})
		},
	}
	accountFlag(listCmd)
	pageFlags(listCmd, &page)

	getCmd := &cobra.Command{
		Use:   "get --account ACCOUNT_ID USER_ID",
		Short: "Show a user",
		Args:  exactArgs("USER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			u, err := c.User(cmd.Context(), account, args[0])
			if err != nil {
				return err
			}
			return a.show(u, func(w io.Writer) error { return printUser(w, u) })
		},
	}
	accountFlag(getCmd)

	deleteCmd := &cobra.Command{
		Use:   "delete --account ACCOUNT_ID USER_ID",
		Short: "Delete a user and its keys",
		Args:  exactArgs("USER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteUser(cmd.Context(), account, args[0]); err != nil {
				return err
			}
			return a.done("deleted", args[0])
		},
	}
	accountFlag(deleteCmd)

	cmd.AddCommand(createCmd, listCmd, getCmd, deleteCmd)
	return cmd
}
