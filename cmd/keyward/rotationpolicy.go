package main

import (
	"io"
	"strconv"
	"time"

	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

func (a *app) rotationPolicyCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "rotation-policy",
		Aliases: []string{"rotation-policies"},
		Short:   "Manage the rotation policies of accounts and keys",
		Long: `A rotation policy asks that keys be rotated before they are --max-age old. It
belongs to an account (every key of the account) or to one key (instead of its
account's). The rotation job of keyward serve announces each key past its max
age once (key.rotation_due); with --expire-after, the key also expires that long
after the announcement. Root manages any policy, an account_admin those of its
account and its account's keys. See docs/lifecycle.md.`,
	}
	a.addClientFlags(cmd)
	cmd.AddCommand(a.rotationPolicySetCommand(), a.rotationPolicyGetCommand(), a.rotationPolicyRemoveCommand())
	return cmd
}

// rotationScopeFlags are the --account and --key flags naming a policy.
type rotationScopeFlags struct{ s keyward.RotationScope }

func (f *rotationScopeFlags) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.s.AccountID, "account", "", "the policy of this account")
	cmd.Flags().StringVar(&f.s.KeyID, "key", "", "the policy of this key")
}

func (f *rotationScopeFlags) scope() (keyward.RotationScope, error) {
	if (f.s.AccountID == "") == (f.s.KeyID == "") {
		return f.s, usageErrorf("name the policy with --account ACCOUNT_ID or --key KEY_ID (exactly one)")
	}
	return f.s, nil
}

func (a *app) rotationPolicySetCommand() *cobra.Command {
	var (
		sf                  rotationScopeFlags
		maxAge, expireAfter string
	)
	cmd := &cobra.Command{
		Use:   "set --account ACCOUNT_ID|--key KEY_ID --max-age AGE [--expire-after NOTICE]",
		Short: "Create or replace the rotation policy of an account or a key",
		Long: `Create or replace the rotation policy of an account or a key. Durations take
days: 90d, 2160h, 1d12h.

  keyward rotation-policy set --account acc_... --max-age 90d
  keyward rotation-policy set --key key_... --max-age 30d --expire-after 7d

--max-age is 1h to 10 years. --expire-after (at most 366d) makes a key announced
due for rotation expire that long after the announcement; without it keys are
only announced.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := sf.scope()
			if err != nil {
				return err
			}
			var set keyward.RotationPolicySet
			d, err := parseDays(maxAge)
			if err != nil || d <= 0 {
				return usageErrorf("--max-age %q: use a positive duration such as 90d, 2160h or 1d12h", maxAge)
			}
			set.MaxAge = keyward.Duration(d)
			if expireAfter != "" {
				d, err := parseDays(expireAfter)
				if err != nil || d < 0 {
					return usageErrorf("--expire-after %q: use a duration such as 14d or 336h (0: never expire)", expireAfter)
				}
				set.ExpireAfter = keyward.Duration(d)
			}
			p := &keyward.RotationPolicy{AccountID: s.AccountID, KeyID: s.KeyID, MaxAge: set.MaxAge, ExpireAfter: set.ExpireAfter}
			if err := p.Validate(); err != nil {
				return usageErrorf("%s", keyward.ErrorMessage(err))
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			p, err = c.SetRotationPolicy(cmd.Context(), s, set)
			if err != nil {
				return err
			}
			return a.showRotationPolicy(p)
		},
	}
	sf.add(cmd)
	cmd.Flags().StringVar(&maxAge, "max-age", "", "keys older than this are due for rotation, e.g. 90d (required)")
	cmd.Flags().StringVar(&expireAfter, "expire-after", "", "a key announced due expires this long after, e.g. 14d (default: never)")
	cmd.MarkFlagRequired("max-age")
	return cmd
}

func (a *app) rotationPolicyGetCommand() *cobra.Command {
	var sf rotationScopeFlags
	cmd := &cobra.Command{
		Use:   "get --account ACCOUNT_ID|--key KEY_ID",
		Short: "Show the rotation policy of an account or a key (exit 6 if none)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := sf.scope()
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			p, err := c.RotationPolicy(cmd.Context(), s)
			if err != nil {
				return err
			}
			return a.showRotationPolicy(p)
		},
	}
	sf.add(cmd)
	return cmd
}

func (a *app) rotationPolicyRemoveCommand() *cobra.Command {
	var sf rotationScopeFlags
	cmd := &cobra.Command{
		Use:     "remove --account ACCOUNT_ID|--key KEY_ID",
		Aliases: []string{"delete"},
		Short:   "Remove the rotation policy of an account or a key",
		Long: `Remove the rotation policy of an account or a key: no more keys are announced
for it. Expiries it already scheduled stay (extend a key with keys update).`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := sf.scope()
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteRotationPolicy(cmd.Context(), s); err != nil {
				return err
			}
			v := map[string]string{"account_id": s.AccountID, "key_id": s.KeyID, "status": "removed"}
			return a.show(v, func(w io.Writer) error {
				_, err := io.WriteString(w, "removed the rotation policy of "+s.String()+"\n")
				return err
			})
		},
	}
	sf.add(cmd)
	return cmd
}

func (a *app) showRotationPolicy(p *keyward.RotationPolicy) error {
	return a.show(p, func(w io.Writer) error {
		expire := "never"
		if p.ExpireAfter != 0 {
			expire = formatDays(time.Duration(p.ExpireAfter)) + " after the announcement"
		}
		return fields(w,
			"policy of", p.Scope().String(),
			"max age", formatDays(time.Duration(p.MaxAge)),
			"expire", expire,
			"updated", formatTime(p.UpdatedAt),
			"updated by", p.UpdatedBy,
		)
	})
}

// formatDays shows a duration of whole days as "90d", others as Go does.
func formatDays(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}
