package main

import (
	"encoding/json"
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
	cmd.AddCommand(a.usersCreateCommand(), a.usersListCommand(), a.usersGetCommand(), a.usersLookupCommand(),
		a.usersUpdateCommand(), a.usersDeleteCommand())
	return cmd
}

// accountFlag adds the required --account of the users commands.
func accountFlag(cmd *cobra.Command, account *string) {
	cmd.Flags().StringVar(account, "account", "", "account id (required)")
	cmd.MarkFlagRequired("account")
}

func (a *app) usersCreateCommand() *cobra.Command {
	var (
		account, meta string
		secret        secretMetaFlags
		create        keyward.UserCreate
	)
	createCmd := &cobra.Command{
		Use:   "create --account ACCOUNT_ID --name NAME [--external-id ID] [--meta JSON] [--secret-meta-file FILE]",
		Short: "Create a user in an account",
		Long: `Create a user. Its --meta and secret metadata are inherited by its keys at
verify, each key's own fields winning (see docs/identities.md).`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if create.Meta, err = parseMeta(meta); err != nil {
				return err
			}
			if create.SecretMeta, err = secret.read(); err != nil {
				return err
			}
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
	createCmd.Flags().StringVar(&meta, "meta", "", `JSON object the user's keys inherit, e.g. '{"plan":"pro"}' (root only)`)
	secret.add(createCmd, false)
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

func (a *app) usersLookupCommand() *cobra.Command {
	var account, external string
	lookupCmd := &cobra.Command{
		Use:   "lookup --account ACCOUNT_ID --external-id ID",
		Short: "Find a user by its external id",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			u, err := c.UserByExternalID(cmd.Context(), account, external)
			if err != nil {
				return err
			}
			return a.show(u, func(w io.Writer) error { return printUser(w, u) })
		},
	}
	accountFlag(lookupCmd, &account)
	lookupCmd.Flags().StringVar(&external, "external-id", "", "the external id to look up (required)")
	lookupCmd.MarkFlagRequired("external-id")
	return lookupCmd
}

func (a *app) usersUpdateCommand() *cobra.Command {
	var (
		account, name, external, meta string
		secret                        secretMetaFlags
	)
	updateCmd := &cobra.Command{
		Use:   "update --account ACCOUNT_ID USER_ID [--name NAME] [--external-id ID] [--meta JSON] [--secret-meta-file FILE | --clear-secret-meta]",
		Short: "Change a user's name, external id, meta or secret metadata",
		Long: `Change the fields given by flags; others stay as they are. The user's keys
inherit its meta and secret metadata at verify, each key's own fields winning;
a change reaches every instance's verification at once. --external-id ""
removes the external id, --meta '{}' the meta. Only root sets --meta.`,
		Args: exactArgs("USER_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u keyward.UserUpdate
			f := cmd.Flags()
			if f.Changed("name") {
				u.Name = &name
			}
			if f.Changed("external-id") {
				u.ExternalID = &external
			}
			if f.Changed("meta") {
				m, err := parseMeta(meta)
				if err != nil {
					return err
				}
				if m == nil {
					m = json.RawMessage("{}")
				}
				u.Meta = &m
			}
			var err error
			if u.SecretMeta, u.ClearSecretMeta, err = secret.update(); err != nil {
				return err
			}
			if u == (keyward.UserUpdate{}) {
				return usageErrorf("nothing to update: give --name, --external-id, --meta, --secret-meta, --secret-meta-file or --clear-secret-meta")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			user, err := c.UpdateUser(cmd.Context(), account, args[0], u)
			if err != nil {
				return err
			}
			return a.show(user, func(w io.Writer) error { return printUser(w, user) })
		},
	}
	accountFlag(updateCmd, &account)
	f := updateCmd.Flags()
	f.StringVar(&name, "name", "", "new name")
	f.StringVar(&external, "external-id", "", `new external id, unique in the account ("" removes it)`)
	f.StringVar(&meta, "meta", "", `new meta the user's keys inherit, a JSON object (replaces the old; '{}' removes it)`)
	secret.add(updateCmd, true)
	return updateCmd
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
