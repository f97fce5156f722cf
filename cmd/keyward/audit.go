package main

import (
	"encoding/json"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

func (a *app) auditCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Read, verify and export the audit log",
		Long: `The audit log records every admin change and security event, appended in the
same transaction as the change, in a hash chain that shows any edited, deleted
or reordered entry. Root reads everything; an account admin its account's
entries. See docs/audit.md.`,
	}
	a.addClientFlags(cmd)
	cmd.AddCommand(a.auditListCommand(), a.auditVerifyCommand(), a.auditExportCommand())
	return cmd
}

// auditFilterFlags are the filters of audit list and export.
type auditFilterFlags struct {
	f            keyward.AuditFilter
	since, until string
}

func (af *auditFilterFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&af.f.ActorKeyID, "actor", "", "only actions of this key id")
	fl.StringVar(&af.f.Action, "action", "", "only this action, e.g. key.revoke")
	fl.StringVar(&af.f.TargetID, "target", "", "only actions on this object id")
	fl.StringVar(&af.f.AccountID, "account", "", "only entries of this account")
	fl.StringVar(&af.since, "since", "", "from this RFC 3339 time, or a duration back from now (24h, 7d)")
	fl.StringVar(&af.until, "until", "", "before this RFC 3339 time, or a duration back from now")
}

// filter returns the filter the flags give, now being the current time.
func (af *auditFilterFlags) filter(now time.Time) (keyward.AuditFilter, error) {
	f := af.f
	var err error
	if f.Since, err = parseWhen("since", af.since, now); err != nil {
		return f, err
	}
	f.Until, err = parseWhen("until", af.until, now)
	return f, err
}

// parseWhen reads the value v of a --since or --until flag: an RFC 3339
// time or a duration back from now (24h, 7d); "" is the zero time.
func parseWhen(flag, v string, now time.Time) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := parseDays(v)
	if err != nil || d <= 0 {
		return time.Time{}, usageErrorf("--%s %q: use an RFC 3339 time or a duration back from now (24h, 7d)", flag, v)
	}
	return now.Add(-d), nil
}

func (a *app) auditListCommand() *cobra.Command {
	var (
		af   auditFilterFlags
		page keyward.Page
	)
	cmd := &cobra.Command{
		Use:   "list [--actor KEY_ID] [--action ACTION] [--target ID] [--account ACCOUNT_ID] [--since WHEN] [--until WHEN]",
		Short: "List audit entries, oldest first",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := af.filter(time.Now())
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			l, err := c.AuditEntries(cmd.Context(), f, page)
			if err != nil {
				return err
			}
			return a.show(l, func(w io.Writer) error {
				t := newTable(w, "SEQ", "TIME", "ACTOR", "ACTION", "TARGET", "OUTCOME", "IP", "DETAILS")
				for _, e := range l.Items {
					actor := e.Actor.KeyID
					if actor == "" {
						actor = e.Actor.System
					}
					t.row(strconv.FormatInt(e.Seq, 10), formatTime(e.Time), actor, e.Action, e.TargetID, string(e.Outcome), e.Actor.IP, string(e.Details))
				}
				err := t.flush()
				printNext(w, l.Next)
				return err
			})
		},
	}
	af.add(cmd)
	pageFlags(cmd, &page)
	return cmd
}

func (a *app) auditVerifyCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "verify",
		Short: "Check the audit log's hash chain (root key); exit 1 when it is broken",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			v, err := c.VerifyAudit(cmd.Context())
			if err != nil {
				return err
			}
			if err := a.show(v, func(w io.Writer) error {
				if v.OK {
					return fields(w, "ok", "yes", "entries", strconv.FormatInt(v.Entries, 10))
				}
				return fields(w, "ok", "NO", "entries checked", strconv.FormatInt(v.Entries, 10), "first bad entry", strconv.FormatInt(v.FirstBad, 10), "problem", v.Problem)
			}); err != nil {
				return err
			}
			if !v.OK {
				return &exitError{code: ExitError, err: errAuditBroken{v.FirstBad}}
			}
			return nil
		},
	}
}

// errAuditBroken is the error of a broken chain; its message names the
// first bad entry.
type errAuditBroken struct{ seq int64 }

func (e errAuditBroken) Error() string {
	return "the audit log's hash chain is broken at entry " + strconv.FormatInt(e.seq, 10) + ": it was edited, or follows a deleted or reordered entry"
}

func (a *app) auditExportCommand() *cobra.Command {
	var (
		af  auditFilterFlags
		out string
	)
	cmd := &cobra.Command{
		Use:   "export [--file FILE] [filters]",
		Short: "Write the audit log as JSON lines, one entry per line, oldest first",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f, err := af.filter(time.Now())
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			w := a.stdout
			if out != "" && out != "-" {
				file, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
				if err != nil {
					return usageErrorf("--file: %v", err)
				}
				defer file.Close()
				w = file
			}
			enc := json.NewEncoder(w)
			p := keyward.Page{Limit: keyward.MaxPageLimit}
			for {
				l, err := c.AuditEntries(cmd.Context(), f, p)
				if err != nil {
					return err
				}
				for _, e := range l.Items {
					if err := enc.Encode(e); err != nil {
						return err
					}
				}
				if l.Next == "" {
					return nil
				}
				p.After = l.Next
			}
		},
	}
	af.add(cmd)
	cmd.Flags().StringVar(&out, "file", "", "file to write (mode 0600; default standard output)")
	return cmd
}
