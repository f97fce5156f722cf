package main

import (
	"io"
	"strconv"
	"strings"

	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

func (a *app) webhooksCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "webhooks",
		Aliases: []string{"webhook"},
		Short:   "Manage webhook endpoints and read their delivery logs",
		Long: `Webhook endpoints receive keyward's events (key.created, key.revoked,
ip.blocked, ...) as signed POST requests (Standard Webhooks). See docs/webhooks.md.`,
	}
	a.addClientFlags(cmd)
	cmd.AddCommand(a.webhooksCreateCommand(), a.webhooksListCommand(), a.webhooksGetCommand(),
		a.webhooksUpdateCommand(), a.webhooksRotateSecretCommand(), a.webhooksDeleteCommand(),
		a.webhooksDeliveriesCommand())
	return cmd
}

func (a *app) webhooksCreateCommand() *cobra.Command {
	var n keyward.NewWebhookEndpoint
	cmd := &cobra.Command{
		Use:   "create --url URL [--event TYPE]... [--account ACCOUNT_ID] [--description TEXT]",
		Short: "Register an endpoint; its signing secret is printed this once",
		Long: `Register an endpoint that receives events as signed POST requests. Without
--event it receives every event type; without --account (root keys only) the
events of every account. The signing secret (whsec_...) is printed once: give
it to the receiver, which verifies each request with it.

  keyward webhooks create --url https://hooks.example.com/keyward --event key.revoked --event key.leaked

Event types: ` + strings.Join(keyward.EventTypes, ", ") + `.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkEventTypes(n.Events); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			created, err := c.CreateWebhookEndpoint(cmd.Context(), n)
			if err != nil {
				return err
			}
			return a.showCreatedWebhook(created)
		},
	}
	f := cmd.Flags()
	f.StringVar(&n.URL, "url", "", "the https URL that receives the events (required)")
	f.StringSliceVar(&n.Events, "event", nil, "event type to receive (repeatable; default all)")
	f.StringVar(&n.AccountID, "account", "", "receive this account's events (default: every account's, root only)")
	f.StringVar(&n.Description, "description", "", "a note for people reading the list")
	cmd.MarkFlagRequired("url")
	return cmd
}

// checkEventTypes returns a usage error for an unknown event type.
func checkEventTypes(events []string) error {
	for _, ev := range events {
		if !keyward.KnownEventType(ev) {
			return usageErrorf("--event %q: use one of %s", ev, strings.Join(keyward.EventTypes, ", "))
		}
	}
	return nil
}

func (a *app) showCreatedWebhook(c *keyward.CreatedWebhookEndpoint) error {
	return a.show(c, func(w io.Writer) error {
		if err := printWebhook(w, c.Endpoint); err != nil {
			return err
		}
		_, err := io.WriteString(w, "\nsigning secret (shown once, give it to the receiver):\n"+c.Secret+"\n")
		return err
	})
}

func printWebhook(w io.Writer, e *keyward.WebhookEndpoint) error {
	status := "enabled"
	if e.Disabled {
		status = "disabled: " + e.DisabledReason
	}
	return fields(w,
		"id", e.ID,
		"scope", scopeOf(e.AccountID),
		"url", e.URL,
		"events", eventsOf(e.Events),
		"status", status,
		"description", e.Description,
		"created", formatTime(e.CreatedAt),
		"created by", e.CreatedBy,
	)
}

func scopeOf(account string) string {
	if account == "" {
		return "global"
	}
	return account
}

func eventsOf(events []string) string {
	if len(events) == 0 {
		return "all"
	}
	return strings.Join(events, ",")
}

func (a *app) webhooksListCommand() *cobra.Command {
	var (
		f    keyward.WebhookEndpointFilter
		page keyward.Page
	)
	cmd := &cobra.Command{
		Use:   "list [--account ACCOUNT_ID]",
		Short: "List the webhook endpoints you may manage",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			l, err := c.WebhookEndpoints(cmd.Context(), f, page)
			if err != nil {
				return err
			}
			return a.show(l, func(w io.Writer) error {
				t := newTable(w, "ID", "SCOPE", "URL", "EVENTS", "DISABLED")
				for _, e := range l.Items {
					t.row(e.ID, scopeOf(e.AccountID), e.URL, eventsOf(e.Events), strconv.FormatBool(e.Disabled))
				}
				err := t.flush()
				printNext(w, l.Next)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&f.AccountID, "account", "", "only endpoints of this account")
	pageFlags(cmd, &page)
	return cmd
}

func (a *app) webhooksGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get ENDPOINT_ID",
		Short: "Show a webhook endpoint",
		Args:  exactArgs("ENDPOINT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			e, err := c.WebhookEndpoint(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.show(e, func(w io.Writer) error { return printWebhook(w, e) })
		},
	}
}

func (a *app) webhooksUpdateCommand() *cobra.Command {
	var (
		url, description           string
		events                     []string
		allEvents, enable, disable bool
	)
	cmd := &cobra.Command{
		Use:   "update ENDPOINT_ID [--url URL] [--event TYPE]... [--all-events] [--description TEXT] [--enable|--disable]",
		Short: "Change a webhook endpoint; --enable resumes an endpoint disabled by 410 Gone",
		Args:  exactArgs("ENDPOINT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u keyward.WebhookEndpointUpdate
			flags := cmd.Flags()
			if flags.Changed("url") {
				u.URL = &url
			}
			if flags.Changed("description") {
				u.Description = &description
			}
			switch {
			case allEvents && len(events) > 0:
				return usageErrorf("give --event or --all-events, not both")
			case allEvents:
				u.Events = &[]string{}
			case len(events) > 0:
				if err := checkEventTypes(events); err != nil {
					return err
				}
				u.Events = &events
			}
			switch {
			case enable && disable:
				return usageErrorf("give --enable or --disable, not both")
			case enable, disable:
				u.Disabled = &disable
			}
			if u == (keyward.WebhookEndpointUpdate{}) {
				return usageErrorf("nothing to change: give --url, --event, --all-events, --description, --enable or --disable")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			e, err := c.UpdateWebhookEndpoint(cmd.Context(), args[0], u)
			if err != nil {
				return err
			}
			return a.show(e, func(w io.Writer) error { return printWebhook(w, e) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&url, "url", "", "new URL")
	f.StringSliceVar(&events, "event", nil, "event type to receive, replacing the list (repeatable)")
	f.BoolVar(&allEvents, "all-events", false, "receive every event type")
	f.StringVar(&description, "description", "", "new description")
	f.BoolVar(&enable, "enable", false, "resume deliveries")
	f.BoolVar(&disable, "disable", false, "pause deliveries (they wait until enabled)")
	return cmd
}

func (a *app) webhooksRotateSecretCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-secret ENDPOINT_ID",
		Short: "Give an endpoint a new signing secret, printed this once",
		Args:  exactArgs("ENDPOINT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			created, err := c.RotateWebhookSecret(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.showCreatedWebhook(created)
		},
	}
}

func (a *app) webhooksDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ENDPOINT_ID",
		Short: "Delete a webhook endpoint with its delivery log",
		Args:  exactArgs("ENDPOINT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteWebhookEndpoint(cmd.Context(), args[0]); err != nil {
				return err
			}
			return a.done("deleted", args[0])
		},
	}
}

func (a *app) webhooksDeliveriesCommand() *cobra.Command {
	var page keyward.Page
	cmd := &cobra.Command{
		Use:   "deliveries ENDPOINT_ID",
		Short: "Show an endpoint's delivery log, newest event first",
		Args:  exactArgs("ENDPOINT_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			l, err := c.WebhookDeliveries(cmd.Context(), args[0], page)
			if err != nil {
				return err
			}
			return a.show(l, func(w io.Writer) error {
				t := newTable(w, "EVENT", "TYPE", "STATE", "ATTEMPTS", "LAST STATUS", "NEXT ATTEMPT", "LAST ERROR")
				for _, d := range l.Items {
					next := ""
					if d.State == keyward.DeliveryPending {
						next = formatTime(d.NextAttemptAt)
					}
					t.row(d.EventID, d.EventType, string(d.State), strconv.Itoa(d.Attempts), strconv.Itoa(d.LastStatus), next, d.LastError)
				}
				err := t.flush()
				printNext(w, l.Next)
				return err
			})
		},
	}
	pageFlags(cmd, &page)
	return cmd
}
