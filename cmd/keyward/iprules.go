package main

import (
	"io"
	"time"

	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

func (a *app) ipRulesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ip-rules",
		Aliases: []string{"ip-rule"},
		Short:   "Manage IP block and allow rules, global or per account",
	}
	a.addClientFlags(cmd)
	cmd.AddCommand(a.ipRulesCreateCommand(), a.ipRulesListCommand(), a.ipRulesDeleteCommand())
	return cmd
}

func (a *app) ipRulesCreateCommand() *cobra.Command {
	var (
		c               keyward.IPRuleCreate
		action, expires string
	)
	cmd := &cobra.Command{
		Use:   "create --action block|allow --cidr CIDR [--account ACCOUNT_ID] [--reason TEXT] [--expires WHEN]",
		Short: "Create an IP rule",
		Long: `Create a rule that blocks or allows a network (IPv4 or IPv6, CIDR or a single
address). Without --account the rule is global (root keys only).

  keyward ip-rules create --action block --cidr 203.0.113.0/24 --reason scanner --expires 7d
  keyward ip-rules create --action allow --cidr 10.0.0.0/8 --account acc_...

A block refuses requests from the network with IP_BLOCKED (global blocks before
any key lookup). When a scope has allow rules, its keys verify only from their
networks (IP_NOT_ALLOWED elsewhere). See docs/ip-rules.md.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c.Action = keyward.IPAction(action)
			if !c.Action.Valid() {
				return usageErrorf("--action %q: use block or allow", action)
			}
			if _, err := keyward.ParsePrefix(c.CIDR); err != nil {
				return usageErrorf("--cidr: %s", keyward.ErrorMessage(err))
			}
			if expires != "" {
				t, err := parseExpiry(expires, time.Now())
				if err != nil {
					return err
				}
				c.ExpiresAt = &t
			}
			cl, err := a.client()
			if err != nil {
				return err
			}
			r, err := cl.CreateIPRule(cmd.Context(), c)
			if err != nil {
				return err
			}
			return a.show(r, func(w io.Writer) error { return printIPRule(w, r) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&action, "action", "", "block or allow (required)")
	f.StringVar(&c.CIDR, "cidr", "", "network, e.g. 203.0.113.0/24, 2001:db8::/32 or a single address (required)")
	f.StringVar(&c.AccountID, "account", "", "apply to this account's keys (default: global, root only)")
	f.StringVar(&c.Reason, "reason", "", "why, for people reading the list")
	f.StringVar(&expires, "expires", "", "when the rule stops applying: an RFC 3339 time or a duration from now (30d, 12h)")
	cmd.MarkFlagRequired("action")
	cmd.MarkFlagRequired("cidr")
	return cmd
}

var ipRuleHeader = []string{"ID", "SCOPE", "ACTION", "CIDR", "EXPIRES", "REASON"}

func ipRuleRow(t *table, r *keyward.IPRule) {
	scope := r.AccountID
	if scope == "" {
		scope = "global"
	}
	t.row(r.ID, scope, ipRuleAction(r), r.CIDR.String(), formatTimePtr(r.ExpiresAt), r.Reason)
}

// ipRuleAction shows the action of r, marking a block made by brute-force
// blocking, which lets valid keys through, "block (automatic)".
func ipRuleAction(r *keyward.IPRule) string {
	if r.Automatic {
		return string(r.Action) + " (automatic)"
	}
	return string(r.Action)
}

func printIPRule(w io.Writer, r *keyward.IPRule) error {
	scope := r.AccountID
	if scope == "" {
		scope = "global"
	}
	return fields(w,
		"id", r.ID,
		"scope", scope,
		"action", ipRuleAction(r),
		"cidr", r.CIDR.String(),
		"reason", r.Reason,
		"expires", formatTimePtr(r.ExpiresAt),
		"created", formatTime(r.CreatedAt),
		"created by", r.CreatedBy,
	)
}

func (a *app) ipRulesListCommand() *cobra.Command {
	var (
		f    keyward.IPRuleFilter
		page keyward.Page
	)
	cmd := &cobra.Command{
		Use:   "list [--account ACCOUNT_ID | --global]",
		Short: "List the IP rules you may see (expired ones included until deleted)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if f.Global && f.AccountID != "" {
				return usageErrorf("give --account or --global, not both")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			l, err := c.IPRules(cmd.Context(), f, page)
			if err != nil {
				return err
			}
			return a.show(l, func(w io.Writer) error {
				t := newTable(w, ipRuleHeader...)
				for _, r := range l.Items {
					ipRuleRow(t, r)
				}
				err := t.flush()
				printNext(w, l.Next)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&f.AccountID, "account", "", "only rules of this account")
	cmd.Flags().BoolVar(&f.Global, "global", false, "only global rules")
	pageFlags(cmd, &page)
	return cmd
}

func (a *app) ipRulesDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete RULE_ID",
		Short: "Delete an IP rule; it stops applying at once",
		Args:  exactArgs("RULE_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteIPRule(cmd.Context(), args[0]); err != nil {
				return err
			}
			return a.done("deleted", args[0])
		},
	}
}
