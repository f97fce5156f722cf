package main

import (
	"fmt"
	"io"
	"time"

	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

func (a *app) portalCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "portal",
		Short: "Hand customers single-use links to the end-user key portal, and brand it",
		Long: `The end-user portal (/portal, docs/portal.md) lets one of your service's
customers (a user of an account, found by its external id) list, create,
rotate and revoke their own keys within the permissions and environments
you grant. "keyward portal link" prints a short-lived, single-use link to
send the customer's browser to.`,
	}
	a.addClientFlags(cmd)
	cmd.AddCommand(a.portalLinkCommand(), a.portalBrandingCommand())
	return cmd
}

func (a *app) portalLinkCommand() *cobra.Command {
	var (
		in                  keyward.PortalSessionCreate
		linkTTL, sessionTTL time.Duration
	)
	cmd := &cobra.Command{
		Use:   "link --external-id ID --return-url URL [--account ACCOUNT_ID] [--permission P...] [--environment E...]",
		Short: "Create a portal session for a user and print its single-use link",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			in.LinkTTL, in.SessionTTL = keyward.Duration(linkTTL), keyward.Duration(sessionTTL)
			l, err := c.CreatePortalSession(cmd.Context(), in)
			if err != nil {
				return err
			}
			return a.show(l, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "%s\nusable once until %s by %s (%s) of account %s; session %s, lasting %s once used\n",
					l.URL, formatTime(l.LinkExpiresAt), l.ExternalID, l.UserID, l.AccountID, l.ID, time.Duration(l.SessionTTL))
				return err
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&in.AccountID, "account", "", "account id of the user (root must give it; an account admin's is its own)")
	f.StringVar(&in.ExternalID, "external-id", "", "the user's external id in the account (required)")
	f.StringVar(&in.ReturnURL, "return-url", "", "where the portal's Back leads: an absolute http(s) URL of your service (required)")
	f.StringSliceVar(&in.Permissions, "permission", nil, "permission the customer's new keys may hold; you must hold it (repeatable)")
	f.StringSliceVar(&in.Environments, "environment", nil, "environment of the keys the customer sees and creates (repeatable; default live)")
	f.DurationVar(&linkTTL, "link-ttl", 0, "how long the link may be used, once (default 5m, at most 1h)")
	f.DurationVar(&sessionTTL, "session-ttl", 0, "how long the session lasts once the link is used (default 1h, at most 12h)")
	cmd.MarkFlagRequired("external-id")
	cmd.MarkFlagRequired("return-url")
	return cmd
}

func (a *app) portalBrandingCommand() *cobra.Command {
	var (
		b   keyward.PortalBranding
		set bool
	)
	cmd := &cobra.Command{
		Use:   "branding --account ACCOUNT_ID [--set --title T --accent-color #rrggbb --background-color #rrggbb --text-color #rrggbb]",
		Short: "Show an account's portal branding, or replace it with --set",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			var out *keyward.PortalBranding
			if set {
				out, err = c.SetPortalBranding(cmd.Context(), b)
			} else {
				out, err = c.PortalBranding(cmd.Context(), b.AccountID)
			}
			if err != nil {
				return err
			}
			return a.show(out, func(w io.Writer) error {
				t := newTable(w, "TITLE", "ACCENT", "BACKGROUND", "TEXT")
				t.row(out.Title, out.AccentColor, out.BackgroundColor, out.TextColor)
				return t.flush()
			})
		},
	}
	f := cmd.Flags()
	accountFlag(cmd, &b.AccountID)
	f.BoolVar(&set, "set", false, "replace the branding with the flags given (an absent flag resets that part to the default)")
	f.StringVar(&b.Title, "title", "", "the portal's title, your service's name (default \"API keys\")")
	f.StringVar(&b.AccentColor, "accent-color", "", "accent colour, #rrggbb")
	f.StringVar(&b.BackgroundColor, "background-color", "", "background colour, #rrggbb")
	f.StringVar(&b.TextColor, "text-color", "", "text colour, #rrggbb")
	return cmd
}
