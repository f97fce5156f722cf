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
	cmd.AddCommand(a.usersCreateCommand(), a.usersListCommand(), a.usersGetCommand(), a.usersDeleteCommand())
	return cmd
}

// accountFlag adds the required --account of the users commands.
func accountFlag(cmd *cobra.Command, account *string) {
	cmd.Flags().StringVar(account, "account", "", "account id (required)")
	cmd.MarkFlagRequired("account")
}

func (a *app) usersCreateCommand() *cobra.Command {
	var (
		account string
		create  keyward.UserCreate
	)
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
	accountFlag(createCmd, &account)
	createCmd.Flags().StringVar(&create.Name, "name", "", "user name (required)")
	createCmd.Flags().StringVar(&create.ExternalID, "external-id", "", "your own id for this user, unique in the account")
	createCmd.MarkFlagRequired("name")
	return createCmd
}

func (a *app) usersListCommand() *cobra.Command {
	var (
		account string
		page    keyward.Page
	)
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
	accountFlag(listCmd, &account)
	pageFlags(listCmd, &page)
	return listCmd
}

func (a *app) usersGetCommand() *cobra.Command {
	var account string
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
	accountFlag(getCmd, &account)
	return getCmd
}

func (a *app) usersDeleteCommand() *cobra.Command {
	var account string
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
	accountFlag(deleteCmd, &account)
	return deleteCmd
}
