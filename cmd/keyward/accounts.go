package main

import (
	"io"

	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

func (a *app) accountsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "accounts",
		Aliases: []string{"account"},
		Short:   "Manage accounts (tenants)",
	}
	a.addClientFlags(cmd)
	cmd.AddCommand(a.accountsCreateCommand(), a.accountsListCommand(), a.accountsGetCommand(), a.accountsUpdateCommand(), a.accountsDeleteCommand())
	return cmd
}

func (a *app) accountsCreateCommand() *cobra.Command {
	var (
		create       keyward.AccountCreate
		createLimits []string
		createSecret secretMetaFlags
		createPolicy policyFlags
	)
	createCmd := &cobra.Command{
		Use:   "create --name NAME [--key-prefix PREFIX] [--rate-limit NAME=LIMIT/WINDOW]...",
		Short: "Create an account (root key only)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if len(createLimits) > 0 {
				ls, err := parseRateLimits(createLimits)
				if err != nil {
					return err
				}
				create.RateLimits = ls
			}
			var err error
			if create.SecretMeta, err = createSecret.read(); err != nil {
				return err
			}
			create.Policy = createPolicy.update(cmd)
			c, err := a.client()
			if err != nil {
				return err
			}
			acc, err := c.CreateAccount(cmd.Context(), create)
			if err != nil {
				return err
			}
			return a.show(acc, func(w io.Writer) error { return printAccount(w, acc) })
		},
	}
	createCmd.Flags().StringVar(&create.Name, "name", "", "account name, unique (required)")
	createCmd.Flags().StringVar(&create.KeyPrefix, "key-prefix", "", "prefix of this account's user keys, e.g. acme_live (default kw_user)")
	createCmd.Flags().StringArrayVar(&createLimits, "rate-limit", nil, "default rate limit of the account's keys that set none, NAME=LIMIT/WINDOW (repeatable)")
	createSecret.add(createCmd, false)
	createPolicy.add(createCmd)
	createCmd.MarkFlagRequired("name")
	return createCmd
}

func (a *app) accountsListCommand() *cobra.Command {
	var page keyward.Page
	listCmd := &cobra.Command{
		Use:   "list",
		Short: "List accounts",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			l, err := c.Accounts(cmd.Context(), page)
			if err != nil {
				return err
			}
			return a.show(l, func(w io.Writer) error {
				t := newTable(w, accountHeader...)
				for _, acc := range l.Items {
					accountRow(t, acc)
				}
				err := t.flush()
				printNext(w, l.Next)
				return err
			})
		},
	}
	pageFlags(listCmd, &page)
	return listCmd
}

func (a *app) accountsGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get ACCOUNT_ID",
		Short: "Show an account",
		Args:  exactArgs("ACCOUNT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			acc, err := c.Account(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.show(acc, func(w io.Writer) error { return printAccount(w, acc) })
		},
	}
}

func (a *app) accountsUpdateCommand() *cobra.Command {
	var (
		name, prefix string
		disabled     bool
		limits       limitFlags
		secret       secretMetaFlags
		policy       policyFlags
	)
	updateCmd := &cobra.Command{
		Use:   "update ACCOUNT_ID [--name NAME] [--key-prefix PREFIX] [--disabled=true|false] [--users-may-mint-keys=true|false] [--admins-may-mint-admin-keys=true|false]",
		Short: "Change an account's name, user-key prefix, disabled state or policy",
		Long: `Change the fields given by flags; others stay as they are.
A disabled account's keys stop verifying until it is enabled again (--disabled=false).`,
		Args: exactArgs("ACCOUNT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u keyward.AccountUpdate
			f := cmd.Flags()
			if f.Changed("name") {
				u.Name = &name
			}
			if f.Changed("key-prefix") {
				u.KeyPrefix = &prefix
			}
			if f.Changed("disabled") {
				u.Disabled = &disabled
			}
			var err error
			if u.RateLimits, err = limits.update(cmd); err != nil {
				return err
			}
			if u.SecretMeta, u.ClearSecretMeta, err = secret.update(); err != nil {
				return err
			}
			u.Policy = policy.update(cmd)
			if u == (keyward.AccountUpdate{}) {
				return usageErrorf("nothing to update: give --name, --key-prefix, --disabled, --rate-limit, --clear-rate-limits, --secret-meta, --secret-meta-file, --clear-secret-meta, --users-may-mint-keys or --admins-may-mint-admin-keys")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			acc, err := c.UpdateAccount(cmd.Context(), args[0], u)
			if err != nil {
				return err
			}
			return a.show(acc, func(w io.Writer) error { return printAccount(w, acc) })
		},
	}
	updateCmd.Flags().StringVar(&name, "name", "", "new name")
	updateCmd.Flags().StringVar(&prefix, "key-prefix", "", "new prefix of user keys (existing keys keep theirs)")
	updateCmd.Flags().BoolVar(&disabled, "disabled", false, "disable (true) or enable (false) the account")
	limits.add(updateCmd, "default rate limit of the account's keys, NAME=LIMIT/WINDOW (repeatable; replaces the defaults)", "remove the account's default rate limits")
	secret.add(updateCmd, true)
	policy.add(updateCmd)
	return updateCmd
}

func (a *app) accountsDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ACCOUNT_ID",
		Short: "Delete an account with all its users and keys",
		Args:  exactArgs("ACCOUNT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteAccount(cmd.Context(), args[0]); err != nil {
				return err
			}
			return a.done("deleted", args[0])
		},
	}
}

// policyFlags are the flags of an account's policy (keyward.AccountPolicy).
type policyFlags struct {
	usersMint, adminsMint bool
}

func (p *policyFlags) add(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&p.usersMint, "users-may-mint-keys", true, "whether the account's user keys may create keys (=false forbids it)")
	cmd.Flags().BoolVar(&p.adminsMint, "admins-may-mint-admin-keys", true, "whether the account's account_admin keys may create account_admin keys (=false forbids it)")
}

// update returns the policy fields given, or nil if none is.
func (p *policyFlags) update(cmd *cobra.Command) *keyward.AccountPolicyUpdate {
	var u keyward.AccountPolicyUpdate
	if cmd.Flags().Changed("users-may-mint-keys") {
		u.UsersMayMintKeys = &p.usersMint
	}
	if cmd.Flags().Changed("admins-may-mint-admin-keys") {
		u.AdminsMayMintAdminKeys = &p.adminsMint
	}
	if u == (keyward.AccountPolicyUpdate{}) {
		return nil
	}
	return &u
}
