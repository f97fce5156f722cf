package main

import (
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

// parseRateLimits reads --rate-limit values: NAME=LIMIT/WINDOW, such as
// per-minute=100/1m or daily=10000/1d.
func parseRateLimits(vs []string) ([]keyward.RateLimit, error) {
	out := make([]keyward.RateLimit, 0, len(vs))
	for _, v := range vs {
		name, spec, ok := strings.Cut(v, "=")
		limit, window, ok2 := strings.Cut(spec, "/")
		n, err := strconv.ParseInt(limit, 10, 64)
		var w time.Duration
		if err == nil {
			w, err = parseDays(window)
		}
		if !ok || !ok2 || err != nil {
			return nil, usageErrorf("--rate-limit %q: use NAME=LIMIT/WINDOW, e.g. per-minute=100/1m or daily=10000/1d", v)
		}
		out = append(out, keyward.RateLimit{Name: name, Limit: n, Window: keyward.Duration(w)})
	}
	if err := keyward.ValidateRateLimits(out); err != nil {
		return nil, usageErrorf("--rate-limit: %s", keyward.ErrorMessage(err))
	}
	return out, nil
}

// parseRefill reads --refill: AMOUNT/INTERVAL, such as 1000/1d, or
// AMOUNT/monthly:DAY, such as 1000/monthly:15.
func parseRefill(v string) (*keyward.CreditRefill, error) {
	amount, interval, ok := strings.Cut(v, "/")
	n, err := strconv.ParseInt(amount, 10, 64)
	r := &keyward.CreditRefill{Amount: n}
	if day, monthly := strings.CutPrefix(interval, "monthly:"); err == nil && monthly {
		r.Day, err = strconv.Atoi(day)
	} else if err == nil {
		var iv time.Duration
		iv, err = parseDays(interval)
		r.Interval = keyward.Duration(iv)
	}
	if !ok || err != nil {
		return nil, usageErrorf("--refill %q: use AMOUNT/INTERVAL, e.g. 1000/1d (raise the credits to 1000 every day), or AMOUNT/monthly:DAY, e.g. 1000/monthly:1 (on the 1st of every month)", v)
	}
	return r, nil
}

// limitFlags are the --rate-limit and --clear-rate-limits flags of an
// update.
type limitFlags struct {
	limits []string
	clear  bool
}

func (l *limitFlags) add(cmd *cobra.Command, limitUsage, clearUsage string) {
	cmd.Flags().StringArrayVar(&l.limits, "rate-limit", nil, limitUsage)
	cmd.Flags().BoolVar(&l.clear, "clear-rate-limits", false, clearUsage)
}

// update returns the new limits the flags ask for: nil for no change, an
// empty list to remove them.
func (l *limitFlags) update(cmd *cobra.Command) (*[]keyward.RateLimit, error) {
	given := cmd.Flags().Changed("rate-limit")
	switch {
	case l.clear && given:
		return nil, usageErrorf("give --rate-limit or --clear-rate-limits, not both")
	case l.clear:
		return &[]keyward.RateLimit{}, nil
	case given:
		ls, err := parseRateLimits(l.limits)
		if err != nil {
			return nil, err
		}
		return &ls, nil
	}
	return nil, nil
}

// meteringFlags are the --rate-limit, --credits and --refill flags of keys
// create.
type meteringFlags struct {
	limits  []string
	credits int64
	refill  string
}

func (m *meteringFlags) add(cmd *cobra.Command) { m.addFor(cmd, "the key") }

// addFor adds the flags, saying whose credits they set.
func (m *meteringFlags) addFor(cmd *cobra.Command, whose string) {
	f := cmd.Flags()
	f.StringArrayVar(&m.limits, "rate-limit", nil, "named rate limit NAME=LIMIT/WINDOW, e.g. per-minute=100/1m (repeatable; root only)")
	f.Int64Var(&m.credits, "credits", 0, "give "+whose+" a quota of this many credits; each verification spends its cost (root only)")
	f.StringVar(&m.refill, "refill", "", "with --credits: raise the credits to AMOUNT every INTERVAL, e.g. 1000/1d, or monthly on a day, e.g. 1000/monthly:1")
}

// apply sets the rate limits and credits of c from the flags.
func (m *meteringFlags) apply(cmd *cobra.Command, c *keyward.KeyCreate) error {
	var err error
	if len(m.limits) > 0 {
		if c.RateLimits, err = parseRateLimits(m.limits); err != nil {
			return err
		}
	}
	if !cmd.Flags().Changed("credits") {
		if m.refill != "" {
			return usageErrorf("--refill needs --credits")
		}
		return nil
	}
	c.Credits = &keyward.Credits{Remaining: m.credits}
	if m.refill != "" {
		if c.Credits.Refill, err = parseRefill(m.refill); err != nil {
			return err
		}
	}
	if err := c.Credits.Validate(); err != nil {
		return usageErrorf("--credits: %s", keyward.ErrorMessage(err))
	}
	return nil
}

// formatRateLimits shows limits as the flags take them.
func formatRateLimits(ls []keyward.RateLimit) string {
	parts := make([]string, len(ls))
	for i, l := range ls {
		parts[i] = l.Name + "=" + strconv.FormatInt(l.Limit, 10) + "/" + time.Duration(l.Window).String()
	}
	return strings.Join(parts, ", ")
}

// formatRefill shows a refill: "500 every 24h0m0s", or "500 monthly on
// day 15".
func formatRefill(r *keyward.CreditRefill) string {
	if r.Day != 0 {
		return strconv.FormatInt(r.Amount, 10) + " monthly on day " + strconv.Itoa(r.Day)
	}
	return strconv.FormatInt(r.Amount, 10) + " every " + time.Duration(r.Interval).String()
}

// formatCredits shows credits on one line: "480 (refill 500 every 24h0m0s)".
func formatCredits(c *keyward.Credits) string {
	if c == nil {
		return ""
	}
	s := strconv.FormatInt(c.Remaining, 10)
	if c.Refill != nil {
		s += " (refill to " + formatRefill(c.Refill) + ")"
	}
	return s
}

func (a *app) creditsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "credits",
		Short: "Read, set and top up the credits (quota) of keys",
		Long: `A key with credits spends the cost of each verification (default 1) and
answers USAGE_EXCEEDED (HTTP 429 in the gateway) when too few remain. An
optional refill raises the credits back to an amount every interval.
Setting and topping up take a root key. See docs/abuse-protection.md.`,
	}
	a.addClientFlags(cmd)
	cmd.AddCommand(a.creditsGetCommand(), a.creditsSetCommand(), a.creditsTopUpCommand(), a.creditsRemoveCommand())
	return cmd
}

func (a *app) creditsSetCommand() *cobra.Command {
	var refill string
	set := &cobra.Command{
		Use:   "set KEY_ID REMAINING [--refill AMOUNT/INTERVAL]",
		Short: "Replace a key's credits",
		Args:  exactArgs("KEY_ID", "REMAINING"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil {
				return usageErrorf("REMAINING %q: give a whole number of credits", args[1])
			}
			c := &keyward.Credits{Remaining: n}
			if refill != "" {
				if c.Refill, err = parseRefill(refill); err != nil {
					return err
				}
			}
			if err := c.Validate(); err != nil {
				return usageErrorf("%s", keyward.ErrorMessage(err))
			}
			return a.credits(cmd, func(cl keyward.CreditService) (*keyward.Credits, error) {
				return cl.SetCredits(cmd.Context(), args[0], c)
			})
		},
	}
	set.Flags().StringVar(&refill, "refill", "", "raise the credits to AMOUNT every INTERVAL, e.g. 1000/1d, or monthly on a day, e.g. 1000/monthly:1")
	return set
}

func (a *app) creditsTopUpCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "top-up KEY_ID AMOUNT",
		Short: "Add credits to a key",
		Args:  exactArgs("KEY_ID", "AMOUNT"),
		RunE: func(cmd *cobra.Command, args []string) error {
			n, err := strconv.ParseInt(args[1], 10, 64)
			if err != nil || n < 1 {
				return usageErrorf("AMOUNT %q: give a positive whole number of credits", args[1])
			}
			return a.credits(cmd, func(cl keyward.CreditService) (*keyward.Credits, error) {
				return cl.TopUpCredits(cmd.Context(), args[0], n)
			})
		},
	}
}

func (a *app) creditsGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get KEY_ID",
		Short: "Show a key's live credits",
		Args:  exactArgs("KEY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.credits(cmd, func(cl keyward.CreditService) (*keyward.Credits, error) {
				return cl.Credits(cmd.Context(), args[0])
			})
		},
	}
}

func (a *app) creditsRemoveCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "remove KEY_ID",
		Short: "Remove a key's credits: it verifies without a quota",
		Args:  exactArgs("KEY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			cl, err := a.client()
			if err != nil {
				return err
			}
			if _, err := cl.SetCredits(cmd.Context(), args[0], nil); err != nil {
				return err
			}
			return a.done("credits removed from", args[0])
		},
	}
}

// credits runs one credit call and shows its result.
func (a *app) credits(cmd *cobra.Command, call func(keyward.CreditService) (*keyward.Credits, error)) error {
	cl, err := a.client()
	if err != nil {
		return err
	}
	c, err := call(cl)
	if err != nil {
		return err
	}
	return a.show(c, func(w io.Writer) error {
		refill := ""
		if c.Refill != nil {
			refill = formatRefill(c.Refill)
		}
		return fields(w,
			"remaining", strconv.FormatInt(c.Remaining, 10),
			"refill", refill,
			"period began", formatTime(c.RefilledAt),
		)
	})
}

func (a *app) anomaliesCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "anomalies",
		Aliases: []string{"anomaly"},
		Short:   "List what the anomaly rules found (brute force, leaks, spikes)",
	}
	a.addClientFlags(cmd)
	cmd.AddCommand(a.anomaliesListCommand())
	return cmd
}

func (a *app) anomaliesListCommand() *cobra.Command {
	var (
		f     keyward.AnomalyFilter
		typ   string
		since string
		page  keyward.Page
	)
	list := &cobra.Command{
		Use:   "list [--account ACCOUNT_ID] [--key KEY_ID] [--type TYPE] [--since WHEN]",
		Short: "List anomalies, newest first",
		Long: `List anomalies, newest first. Types: ip_spread, usage_spike, revoked_key_use,
failure_burst, brute_force. --since takes an RFC 3339 time or a duration back
from now (1h, 7d). See docs/abuse-protection.md.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.Type = keyward.AnomalyType(typ)
			if typ != "" && !f.Type.Valid() {
				return usageErrorf("--type %q: use ip_spread, usage_spike, revoked_key_use, failure_burst or brute_force", typ)
			}
			var err error
			if f.Since, err = parseWhen("since", since, time.Now()); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			l, err := c.Anomalies(cmd.Context(), f, page)
			if err != nil {
				return err
			}
			return a.show(l, func(w io.Writer) error {
				t := newTable(w, "ID", "TIME", "TYPE", "SEVERITY", "ACCOUNT", "KEY", "IP", "ACTION", "DETAILS")
				for _, an := range l.Items {
					t.row(an.ID, formatTime(an.CreatedAt), string(an.Type), string(an.Severity), an.AccountID, an.KeyID, an.IP, string(an.Action), string(an.Details))
				}
				err := t.flush()
				printNext(w, l.Next)
				return err
			})
		},
	}
	fl := list.Flags()
	fl.StringVar(&f.AccountID, "account", "", "only anomalies of this account")
	fl.StringVar(&f.KeyID, "key", "", "only anomalies of this key")
	fl.StringVar(&typ, "type", "", "only anomalies of this type")
	fl.StringVar(&since, "since", "", "only anomalies since this time or duration back (1h, 7d)")
	pageFlags(list, &page)
	return list
}
