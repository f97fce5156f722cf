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
same transaction as the change, in a chain keyed by the master keys that shows
any edited, deleted or reordered entry; a checkpoint of its head kept
elsewhere (audit head, the audit.checkpoint event) also shows deleted newest
entries. Root reads everything; an account admin its account's entries. See
docs/audit.md.`,
	}
	a.addClientFlags(cmd)
	cmd.AddCommand(a.auditListCommand(), a.auditVerifyCommand(), a.auditHeadCommand(), a.auditExportCommand())
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
	var expect string
	cmd := &cobra.Command{
		Use:   "verify [--expect SEQ:HASH]",
		Short: "Check the audit log's chain (root key); exit 1 when it is broken or misses a checkpoint's entry",
		Long: `Check the audit log's chain on the server: every entry must follow the one
before it and carry a MAC under the master keys that fits its contents.
--expect SEQ:HASH, a checkpoint printed earlier by keyward audit head or sent
as the audit.checkpoint webhook event, also checks that the log still holds
entry SEQ with that hash: a log whose newest entries were deleted ends before
it. Exit 1, with one line naming the first bad entry, when the check fails.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var x *keyward.AuditCheckpoint
			if expect != "" {
				var err error
				if x, err = keyward.ParseAuditCheckpoint(expect); err != nil {
					return usageErrorf("--expect: %s", keyward.ErrorMessage(err))
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			v, err := c.VerifyAudit(cmd.Context(), x)
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
				return &exitError{code: ExitError, err: errAuditBroken{v}}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&expect, "expect", "", "a checkpoint SEQ:HASH (keyward audit head) the log must still reach")
	return cmd
}

func (a *app) auditHeadCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "head",
		Short: "Print a signed checkpoint of the audit log's newest entry (root key)",
		Long: `Print the sequence number and hash of the audit log's newest entry, with a MAC
over both under the chain key of the current master key. Keep the SEQ:HASH line
outside the database (a ticket, a log host, a printout): keyward audit verify
--expect SEQ:HASH then reports a log whose newest entries were deleted. The
audit.checkpoint webhook event publishes the same on a schedule.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			h, err := c.AuditHead(cmd.Context())
			if err != nil {
				return err
			}
			return a.show(h, func(w io.Writer) error {
				return fields(w, "checkpoint", h.String(), "seq", strconv.FormatInt(h.Seq, 10), "hash", h.Hash,
					"mac", h.MAC, "master key version", strconv.Itoa(h.KeyVersion), "time", formatTime(h.Time))
			})
		},
	}
}

// errAuditBroken is the error of a failed verification; its message names
// the first bad entry.
type errAuditBroken struct{ v *keyward.AuditVerification }

func (e errAuditBroken) Error() string {
	if e.v.Truncated {
		return "the audit log misses its newest entries: " + e.v.Problem
	}
	return "the audit log's chain is broken at entry " + strconv.FormatInt(e.v.FirstBad, 10) + ": " + e.v.Problem
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
