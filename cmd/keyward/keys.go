package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

func (a *app) keysCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "keys",
		Aliases: []string{"key"},
		Short:   "Manage API keys: create, list, update, disable, revoke, rotate, delete",
	}
	a.addClientFlags(cmd)
	cmd.AddCommand(
		a.keysCreateCommand(),
		a.keysListCommand(),
		a.keysGetCommand(),
		a.keysUpdateCommand(),
		a.keyActionCommand("disable", "Disable a key (it stops verifying until enabled)"),
		a.keyActionCommand("enable", "Enable a disabled key"),
		a.keyActionCommand("revoke", "Revoke a key: it stops working at once, for good"),
		a.keysRotateCommand(),
		a.keysDeleteCommand(),
		a.keysImportCommand(),
	)
	return cmd
}

func (a *app) keysCreateCommand() *cobra.Command {
	var (
		c       keyward.KeyCreate
		role    string
		meta    string
		expires string
		out     emitFlags
		meter   meteringFlags
		secret  secretMetaFlags
	)
	cmd := &cobra.Command{
		Use:   "create [--account ACCOUNT_ID] [--user USER_ID] [--role ROLE] [flags]",
		Short: "Create a key; its secret is printed this once",
		Long: `Create a key. The raw key is printed once; keyward keeps only its hash.

  root key:           keyward keys create --role root --name ops
  account admin key:  keyward keys create --account acc_... --role account_admin --name ci
  user key:           keyward keys create --account acc_... --user usr_... --name laptop
  test key:           keyward keys create --account acc_... --user usr_... --environment test

--role (the key's tier) defaults to user when --user is given and is
required otherwise. --named-role attaches a named role of the account
(keyward roles): the key holds its permissions too.
--environment (default live) picks the key's prefix, such as kw_test_user_
for test; it must be one of the server's key_prefixes environments.

--emit prints a ready client configuration with the new key instead of its
fields, for the URL given by --emit-url (default: the keyward URL):

  keyward keys create --account acc_... --user usr_... --name claude \
      --emit mcp --emit-url https://memory.example.com/mcp
  {"mcpServers": {"claude": {"type": "http", "url": "https://memory.example.com/mcp",
                             "headers": {"Authorization": "Bearer kw_user_..."}}}}

  --emit env    KEYWARD_URL=... and KEYWARD_API_KEY=... lines (a .env file)
  --emit curl   a curl command sending the key (default URL: /v1/whoami)`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := out.check(cmd, a); err != nil {
				return err
			}
			switch {
			case role != "":
				c.Role = keyward.Role(role)
			case c.UserID != "":
				c.Role = keyward.RoleUser
			default:
				return usageErrorf("--role is required without --user: use root, account_admin or user")
			}
			if !c.Role.Valid() {
				return usageErrorf("--role %q: use root, account_admin or user", role)
			}
			if err := meter.apply(cmd, &c); err != nil {
				return err
			}
			var err error
			if c.Meta, err = parseMeta(meta); err != nil {
				return err
			}
			if c.SecretMeta, err = secret.read(); err != nil {
				return err
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
			k, err := cl.CreateKey(cmd.Context(), c)
			if err != nil {
				return err
			}
			return out.show(a, k)
		},
	}
	out.add(cmd)
	meter.add(cmd)
	f := cmd.Flags()
	f.StringVar(&c.AccountID, "account", "", "account id (required unless --role root)")
	f.StringVar(&c.UserID, "user", "", "user id (for --role user)")
	f.StringVar(&role, "role", "", "root, account_admin or user")
	f.StringVar(&c.Environment, "environment", "", "the key's environment, e.g. live or test (default live)")
	f.StringVar(&c.Name, "name", "", "a label for people, e.g. ci or alice-laptop")
	f.StringSliceVar(&c.Permissions, "permission", nil, "permission granted to the key, e.g. memories:read (repeatable)")
	f.StringSliceVar(&c.Roles, "named-role", nil, "named role of the account the key holds, e.g. reader (repeatable; see keyward roles)")
	f.StringVar(&meta, "meta", "", `JSON object returned to verifiers, e.g. '{"plan":"pro"}'`)
	secret.add(cmd, false)
	f.StringVar(&expires, "expires", "", "expiry: an RFC 3339 time (2027-01-01T00:00:00Z) or a duration from now (30d, 720h, 1d12h)")
	f.StringSliceVar(&c.IPAllow, "ip-allow", nil, "network the key may be used from, e.g. 10.0.0.0/8 or 2001:db8::1 (repeatable; default anywhere)")
	return cmd
}

func (a *app) showCreatedKey(k *keyward.CreatedKey) error {
	return a.show(k, func(w io.Writer) error { return printCreatedKey(w, k, time.Now()) })
}

func (a *app) keysListCommand() *cobra.Command {
	var (
		f    keyward.KeyFilter
		role string
		page keyward.Page
	)
	cmd := &cobra.Command{
		Use:   "list [--account ACCOUNT_ID] [--user USER_ID] [--role ROLE] [--environment ENV]",
		Short: "List the keys you may see (never their secrets)",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.Role = keyward.Role(role)
			if role != "" && !f.Role.Valid() {
				return usageErrorf("--role %q: use root, account_admin or user", role)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			l, err := c.Keys(cmd.Context(), f, page)
			if err != nil {
				return err
			}
			now := time.Now()
			return a.show(l, func(w io.Writer) error {
				t := newTable(w, keyHeader...)
				for _, k := range l.Items {
					keyRow(t, k, now)
				}
				err := t.flush()
				printNext(w, l.Next)
				return err
			})
		},
	}
	cmd.Flags().StringVar(&f.AccountID, "account", "", "only keys of this account")
	cmd.Flags().StringVar(&f.UserID, "user", "", "only keys of this user")
	cmd.Flags().StringVar(&role, "role", "", "only keys of this role")
	cmd.Flags().StringVar(&f.Environment, "environment", "", "only keys of this environment, e.g. test")
	pageFlags(cmd, &page)
	return cmd
}

func (a *app) keysGetCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "get KEY_ID",
		Short: "Show a key (never its secret)",
		Args:  exactArgs("KEY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			k, err := c.Key(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.showKey(k)
		},
	}
}

func (a *app) showKey(k *keyward.Key) error {
	return a.show(k, func(w io.Writer) error { return printKey(w, k, time.Now()) })
}

func (a *app) keysUpdateCommand() *cobra.Command {
	var (
		name, meta, expires string
		perms, ipAllow      []string
		namedRoles          []string
		clearPerms, noExp   bool
		clearIPAllow        bool
		clearNamedRoles     bool
		limits              limitFlags
		secret              secretMetaFlags
	)
	cmd := &cobra.Command{
		Use:   "update KEY_ID [--name NAME] [--permission P]... [--named-role NAME]... [--ip-allow CIDR]... [--meta JSON] [--expires WHEN | --no-expiry]",
		Short: "Change a key's name, permissions, metadata or expiry",
		Long: `Change the fields given by flags; others stay as they are.
--permission replaces the whole list; --clear-permissions empties it.
--named-role replaces the key's named roles; --clear-named-roles detaches them.
--ip-allow replaces the key's allow list; --clear-ip-allow removes it.`,
		Args: exactArgs("KEY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var u keyward.KeyUpdate
			f := cmd.Flags()
			if f.Changed("name") {
				u.Name = &name
			}
			switch {
			case clearPerms && f.Changed("permission"):
				return usageErrorf("give --permission or --clear-permissions, not both")
			case clearPerms:
				u.Permissions = &[]string{}
			case f.Changed("permission"):
				u.Permissions = &perms
			}
			switch {
			case clearNamedRoles && f.Changed("named-role"):
				return usageErrorf("give --named-role or --clear-named-roles, not both")
			case clearNamedRoles:
				u.Roles = &[]string{}
			case f.Changed("named-role"):
				u.Roles = &namedRoles
			}
			switch {
			case clearIPAllow && f.Changed("ip-allow"):
				return usageErrorf("give --ip-allow or --clear-ip-allow, not both")
			case clearIPAllow:
				u.IPAllow = &[]string{}
			case f.Changed("ip-allow"):
				u.IPAllow = &ipAllow
			}
			var err error
			if u.RateLimits, err = limits.update(cmd); err != nil {
				return err
			}
			if f.Changed("meta") {
				m, err := parseMeta(meta)
				if err != nil {
					return err
				}
				if m == nil {
					m = json.RawMessage("{}")
				}
				u.Meta = &m
			}
			if u.SecretMeta, u.ClearSecretMeta, err = secret.update(); err != nil {
				return err
			}
			switch {
			case noExp && expires != "":
				return usageErrorf("give --expires or --no-expiry, not both")
			case noExp:
				u.ClearExpiry = true
			case expires != "":
				t, err := parseExpiry(expires, time.Now())
				if err != nil {
					return err
				}
				u.ExpiresAt = &t
			}
			if u.Name == nil && u.Permissions == nil && u.Roles == nil && u.Meta == nil && u.ExpiresAt == nil && !u.ClearExpiry && u.IPAllow == nil && u.RateLimits == nil &&
				u.SecretMeta == nil && !u.ClearSecretMeta {
				return usageErrorf("nothing to update: give --name, --permission, --clear-permissions, --named-role, --clear-named-roles, --ip-allow, --clear-ip-allow, --rate-limit, --clear-rate-limits, --meta, --secret-meta, --secret-meta-file, --clear-secret-meta, --expires or --no-expiry")
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			k, err := c.UpdateKey(cmd.Context(), args[0], u)
			if err != nil {
				return err
			}
			return a.showKey(k)
		},
	}
	f := cmd.Flags()
	f.StringVar(&name, "name", "", "new name")
	f.StringSliceVar(&perms, "permission", nil, "permission (repeatable); replaces the list")
	f.BoolVar(&clearPerms, "clear-permissions", false, "remove every permission")
	f.StringSliceVar(&namedRoles, "named-role", nil, "named role of the account (repeatable); replaces the key's roles")
	f.BoolVar(&clearNamedRoles, "clear-named-roles", false, "detach every named role")
	f.StringVar(&meta, "meta", "", "new metadata, a JSON object (replaces the old)")
	secret.add(cmd, true)
	f.StringVar(&expires, "expires", "", "new expiry: RFC 3339 time or a duration from now (30d, 720h)")
	f.BoolVar(&noExp, "no-expiry", false, "remove the expiry")
	f.StringSliceVar(&ipAllow, "ip-allow", nil, "network the key may be used from (repeatable); replaces the list")
	f.BoolVar(&clearIPAllow, "clear-ip-allow", false, "let the key be used from anywhere")
	limits.add(cmd, "named rate limit NAME=LIMIT/WINDOW (repeatable; replaces the key's limits; root only)", "remove the key's own limits (the account's defaults apply)")
	return cmd
}

// keyActionCommand is disable, enable or revoke: a key id in, the key out.
// revoke --cascade also revokes the key's descendants and lists them.
func (a *app) keyActionCommand(verb, short string) *cobra.Command {
	var cascade bool
	cmd := &cobra.Command{
		Use:   verb + " KEY_ID",
		Short: short,
		Args:  exactArgs("KEY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if cascade {
				r, err := c.RevokeKeyCascade(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				return a.show(r, func(w io.Writer) error {
					if err := printKey(w, &r.Key, time.Now()); err != nil {
						return err
					}
					return fields(w, "cascaded", strings.Join(r.Cascaded, " "))
				})
			}
			var action func(context.Context, string) (*keyward.Key, error)
			switch verb {
			case "disable":
				action = c.DisableKey
			case "enable":
				action = c.EnableKey
			default:
				action = c.RevokeKey
			}
			k, err := action(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return a.showKey(k)
		},
	}
	if verb == "revoke" {
		cmd.Flags().BoolVar(&cascade, "cascade", false, "also revoke the keys it created, the keys those created, and so on (not for root keys)")
	}
	return cmd
}

func (a *app) keysRotateCommand() *cobra.Command {
	var (
		grace string
		out   emitFlags
	)
	cmd := &cobra.Command{
		Use:   "rotate KEY_ID [--grace DURATION] [--emit mcp|env|curl [--emit-url URL]]",
		Short: "Replace a key with a new one; the old one works for the grace period",
		Long: `Issue a replacement for a key, with the same role, owner, permissions and
metadata. The new key is printed once. The old key keeps working for --grace
(e.g. 24h or 7d; default 0: it stops at once).

--emit prints a ready client configuration with the new key instead (see
"keyward keys create --help").`,
		Args: exactArgs("KEY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.check(cmd, a); err != nil {
				return err
			}
			var r keyward.KeyRotate
			if grace != "" {
				d, err := parseDays(grace)
				if err != nil || d < 0 {
					return usageErrorf("--grace %q: use a duration such as 1h, 24h or 7d", grace)
				}
				r.Grace = keyward.Duration(d)
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			k, err := c.RotateKey(cmd.Context(), args[0], r)
			if err != nil {
				return err
			}
			return out.show(a, k)
		},
	}
	out.add(cmd)
	cmd.Flags().StringVar(&grace, "grace", "", "how long the old key keeps working, e.g. 24h or 7d (default 0)")
	return cmd
}

func (a *app) keysDeleteCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "delete KEY_ID",
		Short: "Delete a key (revoke keeps a record; delete does not)",
		Args:  exactArgs("KEY_ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			if err := c.DeleteKey(cmd.Context(), args[0]); err != nil {
				return err
			}
			return a.done("deleted", args[0])
		},
	}
}

// parseMeta checks that s is a JSON object; "" means no metadata.
func parseMeta(s string) (json.RawMessage, error) {
	if s == "" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(s), &m); err != nil || m == nil {
		return nil, usageErrorf(`--meta must be a JSON object, e.g. '{"plan":"pro"}'`)
	}
	return json.RawMessage(s), nil
}

// parseExpiry reads an RFC 3339 time or a positive duration from now.
func parseExpiry(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	d, err := parseDays(s)
	if err != nil || d <= 0 {
		return time.Time{}, usageErrorf("--expires %q: use an RFC 3339 time (2027-01-01T00:00:00Z) or a positive duration (30d, 720h, 1d12h)", s)
	}
	return now.Add(d).UTC().Truncate(time.Second), nil
}

// parseDays is time.ParseDuration that also reads a leading number of
// days: "30d", "1d12h".
func parseDays(s string) (time.Duration, error) {
	var days time.Duration
	if i := strings.IndexByte(s, 'd'); i > 0 {
		n, err := strconv.Atoi(s[:i])
		if err != nil || n < 0 || n > 100000 {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		days = time.Duration(n) * 24 * time.Hour
		s = s[i+1:]
		if s == "" {
			return days, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, err
	}
	return days + d, nil
}
