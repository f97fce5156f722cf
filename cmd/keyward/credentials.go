package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/client"
	"github.com/spf13/cobra"
)

// The commands of provider connections (keyward providers) and of the
// credentials managed through them (keyward credentials). See
// docs/providers.md.

func (a *app) providersCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "providers",
		Aliases: []string{"provider"},
		Short:   "Manage connections to systems whose tokens keyward manages (Gitea, n8n)",
		Long: `A provider connection is how keyward reaches a Gitea or an n8n for an account:
its URL and the credentials of a Gitea admin or of the n8n owner, which keyward
keeps encrypted with its master keys. "keyward credentials" creates tokens
through it. See docs/providers.md.`,
	}
	a.addClientFlags(cmd)
	cmd.AddCommand(a.providersCreateCommand(), a.providersListCommand(), a.providersGetCommand(),
		a.providersUpdateCommand(), a.providersTestCommand(), a.providersDeleteCommand())
	return cmd
}

func (a *app) providersCreateCommand() *cobra.Command {
	var (
		n             keyward.NewProviderConnection
		passwordFile  string
		passwordStdin bool
		timeout       string
	)
	cmd := &cobra.Command{
		Use:     "create --kind gitea|n8n --name NAME --url URL --username USER (--password-file FILE | --password-stdin) [--account ACCOUNT_ID] [--timeout 10s]",
		Aliases: []string{"add"}, // its former name, kept for existing scripts
		Short:   "Create a provider connection; keyward checks it works first",
		Long: `Create a connection to a Gitea (the user name and password of a Gitea admin:
Gitea manages tokens only with basic auth) or an n8n (the owner's email and
password). keyward checks that the system is reachable and accepts the
credentials, then keeps the password encrypted; it is never shown again.

The password is read from a file or from stdin, never from a flag: a command
line is visible to every user of the machine.

  keyward providers create --kind gitea --name gitea --url https://git.example.com \
    --username keyward-admin --password-file /run/secrets/gitea-admin`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n.Kind != "gitea" && n.Kind != "n8n" {
				return usageErrorf("--kind %q: use gitea or n8n", n.Kind)
			}
			if timeout != "" {
				d, err := parseTimeout(timeout)
				if err != nil {
					return err
				}
				n.Timeout = d
			}
			pw, err := a.readPassword(passwordFile, passwordStdin)
			if err != nil {
				return err
			}
			if pw == nil {
				return usageErrorf("give the password with --password-file FILE or --password-stdin (never as a flag: command lines are visible to every user)")
			}
			n.Password = *pw
			c, err := a.client()
			if err != nil {
				return err
			}
			conn, err := c.CreateProviderConnection(cmd.Context(), n)
			if err != nil {
				return err
			}
			return a.show(conn, func(w io.Writer) error { return printProvider(w, conn) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&n.Kind, "kind", "", "gitea or n8n (required)")
	f.StringVar(&n.Name, "name", "", "a name for the connection, unique in the account (required)")
	f.StringVar(&n.BaseURL, "url", "", "the system's base URL, e.g. https://git.example.com (required)")
	f.StringVar(&n.Username, "username", "", "a Gitea admin's user name, or the n8n owner's email (required)")
	f.StringVar(&passwordFile, "password-file", "", "read the password from this file (its first line)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin (its first line)")
	f.StringVar(&n.AccountID, "account", "", "the account the connection belongs to (required)")
	f.StringVar(&timeout, "timeout", "", "bound of each request to the system (default 10s)")
	for _, name := range []string{"kind", "name", "url", "username", "account"} {
		cmd.MarkFlagRequired(name)
	}
	return cmd
}

// parseTimeout parses a connection's --timeout.
func parseTimeout(s string) (keyward.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, usageErrorf("--timeout %q: use a duration such as 10s", s)
	}
	return keyward.Duration(d), nil
}

// readPassword reads a password from file or stdin, whichever was given;
// nil when neither.
func (a *app) readPassword(file string, stdin bool) (*string, error) {
	var (
		pw  string
		err error
	)
	switch {
	case file != "" && stdin:
		return nil, usageErrorf("give --password-file or --password-stdin, not both")
	case file != "":
		pw, err = readPasswordFile(file)
	case stdin:
		pw, err = a.readPasswordStdin()
	default:
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &pw, nil
}

func (a *app) providersUpdateCommand() *cobra.Command {
	var (
		url, username, passwordFile, timeout string
		passwordStdin                        bool
	)
	cmd := &cobra.Command{
		Use:   "update PROVIDER [--url URL] [--username USER] [--password-file FILE | --password-stdin] [--timeout 10s]",
		Short: "Change a provider connection (root); keyward checks the result works first",
		Long: `Change a connection's URL, user, password or timeout, for example after the
Gitea admin's or n8n owner's password changed. keyward checks that the system
accepts the result before it stores it.`,
		Args: exactArgs("PROVIDER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u keyward.ProviderConnectionUpdate
			f := cmd.Flags()
			if f.Changed("url") {
				u.BaseURL = &url
			}
			if f.Changed("username") {
				u.Username = &username
			}
			if timeout != "" {
				d, err := parseTimeout(timeout)
				if err != nil {
					return err
				}
				u.Timeout = &d
			}
			pw, err := a.readPassword(passwordFile, passwordStdin)
			if err != nil {
				return err
			}
			u.Password = pw
			if u == (keyward.ProviderConnectionUpdate{}) {
				return usageErrorf("nothing to change: give --url, --username, --password-file, --password-stdin or --timeout")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			conn, err := resolveProvider(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			out, err := c.UpdateProviderConnection(cmd.Context(), conn.ID, u)
			if err != nil {
				return err
			}
			return a.show(out, func(w io.Writer) error { return printProvider(w, out) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&url, "url", "", "new base URL")
	f.StringVar(&username, "username", "", "new Gitea admin user name or n8n owner email")
	f.StringVar(&passwordFile, "password-file", "", "read the new password from this file (its first line)")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the new password from stdin (its first line)")
	f.StringVar(&timeout, "timeout", "", "new bound of each request to the system")
	return cmd
}

// maxPasswordBytes bounds a password read from a file or stdin.
const maxPasswordBytes = 4096

// readPasswordFile returns the first line of file, without its line end.
func readPasswordFile(file string) (string, error) {
	f, err := os.Open(file)
	if err != nil {
		return "", usageErrorf("--password-file: %v", err)
	}
	defer f.Close()
	pw, err := firstLine(f)
	if err != nil {
		return "", usageErrorf("--password-file %s: %v", file, err)
	}
	return pw, nil
}

// readPasswordStdin returns the first line of stdin, without its line end.
func (a *app) readPasswordStdin() (string, error) {
	in := a.m.Stdin
	if in == nil {
		in = os.Stdin
	}
	pw, err := firstLine(in)
	if err != nil {
		return "", usageErrorf("--password-stdin: %v", err)
	}
	return pw, nil
}

// firstLine reads the first line of r, keeping everything but the line end
// (a password may begin or end with spaces).
func firstLine(r io.Reader) (string, error) {
	line, err := bufio.NewReader(io.LimitReader(r, maxPasswordBytes)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", err
	}
	line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
	if line == "" {
		return "", fmt.Errorf("no password: the first line is empty")
	}
	return line, nil
}

func printProvider(w io.Writer, c *keyward.ProviderConnection) error {
	timeout := "10s (default)"
	if c.Timeout != 0 {
		timeout = time.Duration(c.Timeout).String()
	}
	return fields(w,
		"id", c.ID,
		"kind", c.Kind,
		"name", c.Name,
		"account", c.AccountID,
		"url", c.BaseURL,
		"username", c.Username,
		"password", "set (kept encrypted, never shown)",
		"timeout", timeout,
		"created", formatTime(c.CreatedAt),
		"created by", c.CreatedBy,
	)
}

func (a *app) providersListCommand() *cobra.Command {
	var (
		account string
		page    keyward.Page
	)
	cmd := &cobra.Command{
		Use:   "list [--account ACCOUNT_ID]",
		Short: "List the provider connections you may use",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			l, err := c.ProviderConnections(cmd.Context(), account, page)
			if err != nil {
				return err
			}
			return a.show(l, func(w io.Writer) error {
				t := newTable(w, "ID", "KIND", "NAME", "ACCOUNT", "URL", "USERNAME", "CREATED")
				for _, p := range l.Items {
					t.row(p.ID, p.Kind, p.Name, p.AccountID, p.BaseURL, p.Username, formatTime(p.CreatedAt))
				}
				err := t.flush()
				printNext(w, l.Next)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&account, "account", "", "only connections of this account")
	pageFlags(cmd, &page)
	return cmd
}

// providerCommand is a command on one connection, named by its PROVIDER
// argument (see resolveProvider): run gets the client and the connection.
func (a *app) providerCommand(use, short, long string, run func(cmd *cobra.Command, c *client.Client, conn *keyward.ProviderConnection) error) *cobra.Command {
	return &cobra.Command{
		Use:   use + " PROVIDER",
		Short: short,
		Long:  long,
		Args:  exactArgs("PROVIDER"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			conn, err := resolveProvider(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}
			return run(cmd, c, conn)
		},
	}
}

func (a *app) providersGetCommand() *cobra.Command {
	return a.providerCommand("get", "Show a provider connection (by id, or by a name or kind that is unambiguous)", "",
		func(_ *cobra.Command, _ *client.Client, conn *keyward.ProviderConnection) error {
			return a.show(conn, func(w io.Writer) error { return printProvider(w, conn) })
		})
}

func (a *app) providersTestCommand() *cobra.Command {
	return a.providerCommand("test", "Check that the system is reachable and accepts the connection's credentials",
		`Ask the system behind a connection whether it is reachable and accepts the
connection's credentials. On failure the message says what is wrong (not
reachable, no answer in time, not the expected system, credentials refused, not
an admin) and the exit code is 8 when the system failed.`,
		func(cmd *cobra.Command, c *client.Client, conn *keyward.ProviderConnection) error {
			if err := c.TestProviderConnection(cmd.Context(), conn.ID); err != nil {
				return err
			}
			return a.show(map[string]any{"id": conn.ID, "ok": true}, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "ok: %s at %s accepts the credentials of %s\n", conn.Kind, conn.BaseURL, conn.Username)
				return err
			})
		})
}

func (a *app) providersDeleteCommand() *cobra.Command {
	cmd := a.providerCommand("delete", "Delete a provider connection (revoke its credentials first)",
		`Delete a connection and its stored password. While credentials created
through it are active, rotated or orphaned, the deletion is refused (exit 7):
revoke them first. Tokens at the system are not touched.`,
		func(cmd *cobra.Command, c *client.Client, conn *keyward.ProviderConnection) error {
			if err := c.DeleteProviderConnection(cmd.Context(), conn.ID); err != nil {
				return err
			}
			return a.done("deleted", conn.ID)
		})
	cmd.Aliases = []string{"remove"} // its former name, kept for existing scripts
	return cmd
}

// resolveProvider finds the connection ref names: its id (prv_...), or
// else the one connection the caller may use with that name, or else of
// that kind (gitea, n8n). Several matches are a usage error listing them.
func resolveProvider(ctx context.Context, c *client.Client, ref string) (*keyward.ProviderConnection, error) {
	if ref == "" {
		return nil, usageErrorf("no provider: give a connection id, or its name or kind")
	}
	if strings.HasPrefix(ref, "prv_") {
		return c.ProviderConnection(ctx, ref)
	}
	var all []*keyward.ProviderConnection
	for p := (keyward.Page{Limit: keyward.MaxPageLimit}); ; {
		l, err := c.ProviderConnections(ctx, "", p)
		if err != nil {
			return nil, err
		}
		all = append(all, l.Items...)
		if p.After = l.Next; l.Next == "" {
			break
		}
	}
	for _, match := range []func(*keyward.ProviderConnection) bool{
		func(p *keyward.ProviderConnection) bool { return p.Name == ref },
		func(p *keyward.ProviderConnection) bool { return p.Kind == ref },
	} {
		var found []*keyward.ProviderConnection
		for _, p := range all {
			if match(p) {
				found = append(found, p)
			}
		}
		switch len(found) {
		case 0:
			continue
		case 1:
			return found[0], nil
		}
		var ids []string
		for _, p := range found {
			ids = append(ids, fmt.Sprintf("%s (%s %q of %s)", p.ID, p.Kind, p.Name, p.AccountID))
		}
		return nil, usageErrorf("provider %q is ambiguous: give one of the connection ids %s", ref, strings.Join(ids, ", "))
	}
	return nil, keyward.Errorf(keyward.ENOTFOUND, "no provider connection with the id, name or kind %q: see keyward providers list", ref)
}

func (a *app) credentialsCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "credentials",
		Aliases: []string{"credential"},
		Short:   "Manage tokens of other systems (Gitea, n8n) under keyward's lifecycle",
		Long: `A managed credential is a token of a Gitea or an n8n that keyward created
through a provider connection (see "keyward providers"): shown once, recorded
without its secret, revoked at its expiry, rotated with a grace period, and
reconciled with what the system really holds. See docs/providers.md.

--provider takes a connection id, or a connection name or kind (gitea, n8n)
that is unambiguous among the connections your key may use.`,
	}
	a.addClientFlags(cmd)
	cmd.AddCommand(a.credentialsCreateCommand(), a.credentialsListCommand(), a.credentialsGetCommand(),
		a.credentialsRevokeCommand(), a.credentialsRotateCommand(), a.credentialsVerifyCommand(),
		a.credentialsReconcileCommand())
	return cmd
}

func (a *app) credentialsCreateCommand() *cobra.Command {
	var (
		prov, expires string
		n             keyward.NewCredential
	)
	cmd := &cobra.Command{
		Use:   "create --provider PROVIDER [--user USER] [--name NAME] [--scopes SCOPE,...] [--expires 30d]",
		Short: "Create a token at a provider; it is printed this once",
		Long: `Create a token at the system behind a connection and record it, without its
secret. The token is printed once: keyward does not keep it.

--user is the Gitea user the token is for (default: the connection's admin);
n8n keys always belong to the owner. --scopes are the system's own (Gitea
requires at least one, e.g. read:repository). --expires (30d, 720h or an
RFC 3339 time) is when keyward's lifecycle job revokes it. --name must be
unique among the user's tokens; the default is keyward-<time>.

  keyward credentials create --provider gitea --user alice --scopes read:repository --expires 30d`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			now := time.Now()
			if expires != "" {
				t, err := parseExpiry(expires, now)
				if err != nil {
					return err
				}
				n.ExpiresAt = &t
			}
			if n.Name == "" {
				n.Name = "keyward-" + now.UTC().Format("20060102150405")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			conn, err := resolveProvider(cmd.Context(), c, prov)
			if err != nil {
				return err
			}
			n.ProviderID = conn.ID
			created, err := c.CreateCredential(cmd.Context(), n)
			if err != nil {
				return err
			}
			return a.showCreatedCredential(created)
		},
	}
	f := cmd.Flags()
	f.StringVar(&prov, "provider", "", "connection id, or an unambiguous connection name or kind (required)")
	f.StringVar(&n.User, "user", "", "the user at the provider the token is for (Gitea; default: the connection's admin)")
	f.StringVar(&n.Name, "name", "", "the token's name at the provider (default keyward-<time>)")
	f.StringSliceVar(&n.Scopes, "scopes", nil, "the provider's scopes, comma-separated (Gitea: read:repository,write:issue,...)")
	f.StringVar(&expires, "expires", "", "when keyward revokes it: a duration (30d, 720h) or an RFC 3339 time")
	cmd.MarkFlagRequired("provider")
	return cmd
}

func (a *app) showCreatedCredential(c *keyward.CreatedCredential) error {
	return a.show(c, func(w io.Writer) error {
		if err := printCredential(w, c.Credential); err != nil {
			return err
		}
		_, err := fmt.Fprintf(w, "\ntoken: %s\nStore this token now: keyward does not keep it and will not show it again.\n", c.Secret)
		return err
	})
}

func printCredential(w io.Writer, c *keyward.ManagedCredential) error {
	return fields(w,
		"id", c.ID,
		"provider", c.Kind+" "+c.ProviderID,
		"account", c.AccountID,
		"external id", c.ExternalID,
		"user", c.ExternalUser,
		"name", c.Name,
		"scopes", strings.Join(c.Scopes, ","),
		"hint", c.Hint,
		"status", string(c.Status),
		"expires", formatTimePtr(c.ExpiresAt),
		"rotated from", c.RotatedFrom,
		"replaced by", c.ReplacedBy,
		"grace until", formatTimePtr(c.GraceUntil),
		"revoked", formatTimePtr(c.RevokedAt),
		"created", formatTime(c.CreatedAt),
		"created by", c.CreatedBy,
	)
}

// credentialStatuses are the values of --status.
var credentialStatuses = []keyward.CredentialStatus{
	keyward.CredentialActive, keyward.CredentialRotated, keyward.CredentialRevoked,
	keyward.CredentialExpired, keyward.CredentialOrphaned, keyward.CredentialVanished,
}

func (a *app) credentialsListCommand() *cobra.Command {
	var (
		prov, status string
		f            keyward.CredentialFilter
		page         keyward.Page
	)
	cmd := &cobra.Command{
		Use:   "list [--provider PROVIDER] [--status STATUS] [--account ACCOUNT_ID]",
		Short: "List the managed credentials you may see (never their tokens)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if status != "" {
				f.Status = keyward.CredentialStatus(status)
				known := false
				var names []string
				for _, s := range credentialStatuses {
					known = known || s == f.Status
					names = append(names, string(s))
				}
				if !known {
					return usageErrorf("--status %q: use one of %s", status, strings.Join(names, ", "))
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			if prov != "" {
				conn, err := resolveProvider(cmd.Context(), c, prov)
				if err != nil {
					return err
				}
				f.ProviderID = conn.ID
			}
			l, err := c.Credentials(cmd.Context(), f, page)
			if err != nil {
				return err
			}
			return a.show(l, func(w io.Writer) error {
				t := newTable(w, "ID", "KIND", "PROVIDER", "USER", "NAME", "SCOPES", "STATUS", "EXPIRES")
				for _, cr := range l.Items {
					t.row(cr.ID, cr.Kind, cr.ProviderID, cr.ExternalUser, cr.Name, strings.Join(cr.Scopes, ","), string(cr.Status), formatTimePtr(cr.ExpiresAt))
				}
				err := t.flush()
				printNext(w, l.Next)
				return err
			})
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&prov, "provider", "", "only credentials of this connection (id, or an unambiguous name or kind)")
	fl.StringVar(&status, "status", "", "only credentials in this status: active, rotated, revoked, expired, orphaned or vanished")
	fl.StringVar(&f.AccountID, "account", "", "only credentials of this account")
	pageFlags(cmd, &page)
	return cmd
}

func (a *app) credentialsGetCommand() *cobra.Command {
	return a.credentialCommand("get", "Show a managed credential (never its token)", (*client.Client).Credential)
}

func (a *app) credentialsRevokeCommand() *cobra.Command {
	return a.credentialCommand("revoke", "Revoke a credential at its provider", (*client.Client).RevokeCredential)
}

// credentialCommand is a command that calls do with one credential id and
// shows the credential it returns.
func (a *app) credentialCommand(name, short string, do func(*client.Client, context.Context, string) (*keyward.ManagedCredential, error)) *cobra.Command {
	return &cobra.Command{
		Use:   name + " CREDENTIAL_ID",
		Short: short,
		Args:  exactArgs("CREDENTIAL_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			cr, err := do(c, cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.show(cr, func(w io.Writer) error { return printCredential(w, cr) })
		},
	}
}

func (a *app) credentialsRotateCommand() *cobra.Command {
	var grace string
	cmd := &cobra.Command{
		Use:   "rotate CREDENTIAL_ID [--grace 24h]",
		Short: "Replace a credential; the new token is printed once, the old works for the grace period",
		Long: `Create a replacement with the same user, scopes and expiry; its token is
printed once. The old token keeps working for --grace (e.g. 24h or 7d, at most
30d), then keyward's lifecycle job revokes it; without --grace it is revoked at
once.`,
		Args: exactArgs("CREDENTIAL_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var d time.Duration
			if grace != "" {
				var err error
				if d, err = parseDays(grace); err != nil || d < 0 {
					return usageErrorf("--grace %q: use a duration such as 1h, 24h or 7d", grace)
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			created, err := c.RotateCredential(cmd.Context(), args[0], d)
			if err != nil {
				return err
			}
			return a.showCreatedCredential(created)
		},
	}
	cmd.Flags().StringVar(&grace, "grace", "", "how long the old token keeps working, e.g. 24h or 7d (default 0)")
	return cmd
}

func (a *app) credentialsVerifyCommand() *cobra.Command {
	var prov string
	cmd := &cobra.Command{
		Use:   "verify TOKEN|- --provider PROVIDER",
		Short: "Ask the provider whether a token is valid (exit 9 if not)",
		Long: `Check a token at the system behind a connection. Give the token as an
argument, or "-" to read it from stdin (keeps it out of your shell history and
ps). Exits 0 when the system accepts it and 9 when it does not.`,
		Args: exactArgs("TOKEN"),
		RunE: func(cmd *cobra.Command, args []string) error {
			token := args[0]
			if token == "-" {
				var err error
				if token, err = a.readSecretLine(); err != nil {
					return err
				}
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			conn, err := resolveProvider(cmd.Context(), c, prov)
			if err != nil {
				return err
			}
			v, err := c.VerifyCredential(cmd.Context(), conn.ID, token)
			if err != nil {
				return err
			}
			if err := a.show(v, func(w io.Writer) error {
				return fields(w, "valid", yesNo(v.Valid), "provider", conn.Kind+" "+conn.ID, "user", v.User, "problem", v.Problem)
			}); err != nil {
				return err
			}
			if !v.Valid {
				return &exitError{code: ExitKeyInvalid, err: fmt.Errorf("token is not valid at %s %s: %s", conn.Kind, conn.ID, v.Problem)}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&prov, "provider", "", "connection id, or an unambiguous connection name or kind (required)")
	cmd.MarkFlagRequired("provider")
	return cmd
}

func (a *app) credentialsReconcileCommand() *cobra.Command {
	var (
		prov string
		r    keyward.ReconcileRequest
	)
	cmd := &cobra.Command{
		Use:   "reconcile --provider PROVIDER [--user USER]... [--revoke-unmanaged] [--mark-vanished]",
		Short: "Compare the tokens at a provider with keyward's records",
		Long: `List the tokens at the system that keyward does not manage (created behind its
back, or orphaned by a failure) and the records whose token vanished at the
system. Nothing changes unless asked: --revoke-unmanaged revokes the unmanaged
tokens, --mark-vanished marks the vanished records.

Gitea lists tokens per user: the connection's admin and the users of keyward's
records are compared, and any --user besides.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			conn, err := resolveProvider(cmd.Context(), c, prov)
			if err != nil {
				return err
			}
			rep, err := c.Reconcile(cmd.Context(), conn.ID, r)
			if err != nil {
				return err
			}
			return a.show(rep, func(w io.Writer) error { return printReconcile(w, conn, rep) })
		},
	}
	f := cmd.Flags()
	f.StringVar(&prov, "provider", "", "connection id, or an unambiguous connection name or kind (required)")
	f.StringArrayVar(&r.Users, "user", nil, "also compare this user's tokens (Gitea; repeatable)")
	f.BoolVar(&r.RevokeUnmanaged, "revoke-unmanaged", false, "revoke the tokens keyward does not manage")
	f.BoolVar(&r.MarkVanished, "mark-vanished", false, "mark the records whose token is gone as vanished")
	cmd.MarkFlagRequired("provider")
	return cmd
}

func printReconcile(w io.Writer, conn *keyward.ProviderConnection, rep *keyward.ReconcileReport) error {
	fmt.Fprintf(w, "%s %s (%s)\n\n", conn.Kind, conn.ID, conn.BaseURL)
	if len(rep.Unmanaged) == 0 {
		fmt.Fprintln(w, "unmanaged tokens: none")
	} else {
		fmt.Fprintln(w, "unmanaged tokens (at the provider, not managed by keyward):")
		t := newTable(w, "EXTERNAL ID", "USER", "NAME", "SCOPES", "HINT", "EXPIRES", "CREATED")
		for _, tok := range rep.Unmanaged {
			t.row(tok.ExternalID, tok.User, tok.Name, strings.Join(tok.Scopes, ","), tok.Hint, formatTimePtr(tok.ExpiresAt), formatTime(tok.CreatedAt))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	fmt.Fprintln(w)
	if len(rep.Vanished) == 0 {
		fmt.Fprintln(w, "vanished records: none")
	} else {
		fmt.Fprintln(w, "vanished records (managed by keyward, gone at the provider):")
		t := newTable(w, "ID", "EXTERNAL ID", "USER", "NAME", "STATUS")
		for _, cr := range rep.Vanished {
			t.row(cr.ID, cr.ExternalID, cr.ExternalUser, cr.Name, string(cr.Status))
		}
		if err := t.flush(); err != nil {
			return err
		}
	}
	if len(rep.Revoked) > 0 {
		fmt.Fprintf(w, "\nrevoked at the provider: %s\n", strings.Join(rep.Revoked, ", "))
	}
	if len(rep.Marked) > 0 {
		fmt.Fprintf(w, "\nmarked vanished: %s\n", strings.Join(rep.Marked, ", "))
	}
	return nil
}
