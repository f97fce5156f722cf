package main

import (
	"io"
	"strconv"

	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

// The shared limits of accounts and users: rate limits and credits that all
// the keys of the user (or of the account) count against together
// (docs/abuse-protection.md#shared-limits).

// ownerFlags are the --account and --user flags naming whose shared limits
// a command acts on.
type ownerFlags struct {
	account, user string
}

func (o *ownerFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&o.account, "account", "", "account id (required)")
	cmd.Flags().StringVar(&o.user, "user", "", "user id: the user's shared limits instead of the whole account's")
}

// check returns a usage error unless --account is given.
func (o *ownerFlags) check() error {
	if o.account == "" {
		return usageErrorf("--account is required (with --user for a user's shared limits)")
	}
	return nil
}

func (a *app) limitsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "limits",
		Short: "Read, set and remove the rate limits and credits shared by a user's or an account's keys",
		Long: `Shared limits bind all the keys of a user (--user) or of an account
together, next to each key's own: a user limited to 100 per minute makes
100 per minute across all its keys. A verification counts against every
level, all or nothing, and a refusal names the level (limit_level: key,
user or account). Setting and removing take a root key; an account's
admins read them, a user its own. See docs/abuse-protection.md.`,
	}
	a.addClientFlags(cmd)
	cmd.AddCommand(a.limitsGetCommand(), a.limitsSetCommand(), a.limitsRemoveCommand())
	return cmd
}

func (a *app) limitsGetCommand() *cobra.Command {
	var o ownerFlags
	get := &cobra.Command{
		Use:   "get --account ACCOUNT_ID [--user USER_ID]",
		Short: "Show the shared limits, with live credits",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			m, err := cl.Meter(cmd.Context(), o.account, o.user)
			if err != nil {
				return err
			}
			return a.showMeter(m)
		},
	}
	o.add(get)
	return get
}

func (a *app) limitsSetCommand() *cobra.Command {
	var (
		o ownerFlags
		m meteringFlags
	)
	set := &cobra.Command{
		Use:   "set --account ACCOUNT_ID [--user USER_ID] [--rate-limit NAME=LIMIT/WINDOW]... [--credits N [--refill AMOUNT/INTERVAL]]",
		Short: "Replace the shared limits (root only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			var c keyward.KeyCreate
			if err := m.apply(cmd, &c); err != nil {
				return err
			}
			if len(c.RateLimits) == 0 && c.Credits == nil {
				return usageErrorf("give --rate-limit, --credits or both; to remove shared limits, run keyward limits remove")
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			out, err := cl.SetMeter(cmd.Context(), o.account, o.user, keyward.MeterSet{RateLimits: c.RateLimits, Credits: c.Credits})
			if err != nil {
				return err
			}
			return a.showMeter(out)
		},
	}
	o.add(set)
	m.addFor(set, "the user's (or account's) keys together")
	return set
}

func (a *app) limitsRemoveCommand() *cobra.Command {
	var o ownerFlags
	remove := &cobra.Command{
		Use:   "remove --account ACCOUNT_ID [--user USER_ID]",
		Short: "Remove the shared limits (root only)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			if err := cl.DeleteMeter(cmd.Context(), o.account, o.user); err != nil {
				return err
			}
			target := o.account
			if o.user != "" {
				target = o.user
			}
			return a.done("shared limits removed from", target)
		},
	}
	o.add(remove)
	return remove
}

// showMeter shows shared limits.
func (a *app) showMeter(m *keyward.Meter) error {
	return a.show(m, func(w io.Writer) error {
		remaining, refill := "", ""
		if c := m.Credits; c != nil {
			remaining = strconv.FormatInt(c.Remaining, 10)
			if c.Refill != nil {
				refill = formatRefill(c.Refill)
			}
		}
		return fields(w,
			"level", string(m.Level),
			"id", m.ID,
			"account", m.AccountID,
			"rate limits", formatRateLimits(m.RateLimits),
			"credits", remaining,
			"refill", refill,
			"updated", formatTime(m.UpdatedAt),
		)
	})
}
