package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/keyward/keyward"
)

// printJSON writes v as indented JSON, for scripts (-o json).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// table writes aligned columns for people.
type table struct{ tw *tabwriter.Writer }

func newTable(w io.Writer, header ...string) *table {
	t := &table{tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)}
	if len(header) > 0 {
		t.row(header...)
	}
	return t
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		if c == "" {
			cells[i] = "-"
		}
		// A tab or newline in a value would break the columns.
		cells[i] = strings.NewReplacer("\t", " ", "\n", " ", "\r", " ").Replace(cells[i])
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error { return t.tw.Flush() }

// fields writes name/value pairs, one per line, for a single object.
func fields(w io.Writer, kv ...string) error {
	t := newTable(w)
	for i := 0; i+1 < len(kv); i += 2 {
		t.row(kv[i]+":", kv[i+1])
	}
	return t.flush()
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

func formatTimePtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return formatTime(*t)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// keyStatus is a key's state at now, for tables: active, disabled,
// revoked, expired, or rotating (a rotated key in its grace window).
func keyStatus(k *keyward.Key, now time.Time) string {
	switch d := k.Status(now); {
	case d != keyward.DecisionValid:
		return strings.ToLower(string(d))
	case k.GraceUntil != nil && k.RevokedAt != nil:
		return "rotating"
	}
	return "active"
}

func accountRow(t *table, acc *keyward.Account) {
	t.row(acc.ID, acc.Name, acc.KeyPrefix, yesNo(acc.Disabled), formatTime(acc.CreatedAt))
}

var accountHeader = []string{"ID", "NAME", "KEY PREFIX", "DISABLED", "CREATED"}

// secretMetaState says whether secret metadata is set, never what it is.
func secretMetaState(set bool) string {
	if set {
		return "set (returned only to trusted verifiers)"
	}
	return ""
}

func printAccount(w io.Writer, acc *keyward.Account) error {
	return fields(w,
		"id", acc.ID,
		"name", acc.Name,
		"key prefix", acc.KeyPrefix,
		"rate limits", formatRateLimits(acc.RateLimits),
		"secret meta", secretMetaState(acc.HasSecretMeta),
		"disabled", yesNo(acc.Disabled),
		"users may mint keys", yesNo(!acc.Policy.NoUserMinting),
		"admins may mint admin keys", yesNo(!acc.Policy.NoAdminMinting),
		"created", formatTime(acc.CreatedAt),
		"updated", formatTime(acc.UpdatedAt),
	)
}

var userHeader = []string{"ID", "ACCOUNT", "NAME", "EXTERNAL ID", "CREATED"}

func userRow(t *table, u *keyward.User) {
	t.row(u.ID, u.AccountID, u.Name, u.ExternalID, formatTime(u.CreatedAt))
}

func printUser(w io.Writer, u *keyward.User) error {
	return fields(w,
		"id", u.ID,
		"account", u.AccountID,
		"name", u.Name,
		"external id", u.ExternalID,
		"meta", string(u.Meta),
		"secret meta", secretMetaState(u.HasSecretMeta),
		"created", formatTime(u.CreatedAt),
		"updated", formatTime(u.UpdatedAt),
	)
}

var keyHeader = []string{"ID", "START", "ROLE", "NAME", "ACCOUNT", "USER", "STATUS", "EXPIRES", "LAST USED"}

func keyRow(t *table, k *keyward.Key, now time.Time) {
	t.row(k.ID, k.Start, string(k.Role), k.Name, k.AccountID, k.UserID, keyStatus(k, now),
		formatTimePtr(k.ExpiresAt), formatTimePtr(k.LastUsedAt))
}

func printKey(w io.Writer, k *keyward.Key, now time.Time) error {
	meta := ""
	if len(k.Meta) > 0 {
		meta = string(k.Meta)
	}
	return fields(w,
		"id", k.ID,
		"start", k.Start,
		"role", string(k.Role),
		"environment", k.Environment,
		"name", k.Name,
		"account", k.AccountID,
		"user", k.UserID,
		"permissions", strings.Join(k.Permissions, ","),
		"named roles", strings.Join(k.Roles, ","),
		"ip allow", prefixList(k.IPAllow),
		"rate limits", formatRateLimits(k.RateLimits),
		"credits", formatCredits(k.Credits),
		"meta", meta,
		"secret meta", secretMetaState(k.HasSecretMeta),
		"status", keyStatus(k, now),
		"expires", formatTimePtr(k.ExpiresAt),
		"revoked", formatTimePtr(k.RevokedAt),
		"grace until", formatTimePtr(k.GraceUntil),
		"rotated from", k.RotatedFrom,
		"created", formatTime(k.CreatedAt),
		"created by", k.CreatedBy,
		"last used", formatTimePtr(k.LastUsedAt),
	)
}

// printCreatedKey shows a new key and its secret, which is shown only now.
func printCreatedKey(w io.Writer, k *keyward.CreatedKey, now time.Time) error {
	if err := printKey(w, &k.Key, now); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "\nkey: %s\nStore this key now: keyward keeps only its hash and will not show it again.\n", k.Secret)
	return err
}

func printIdentity(w io.Writer, id *keyward.Identity) error {
	return fields(w,
		"key id", id.KeyID,
		"role", string(id.Role),
		"account", id.AccountID,
		"user", id.UserID,
		"agent", id.Agent,
		"permissions", strings.Join(id.Permissions, ","),
		"named roles", strings.Join(id.Roles, ","),
		"expires", formatTimePtr(id.ExpiresAt),
	)
}

func printVerifyResult(w io.Writer, r *keyward.VerifyResult) error {
	kv := []string{"valid", yesNo(r.Valid), "code", string(r.Code), "key id", r.KeyID, "environment", r.Environment}
	if r.Identity != nil {
		kv = append(kv,
			"role", string(r.Identity.Role),
			"account", r.Identity.AccountID,
			"user", r.Identity.UserID,
			"agent", r.Identity.Agent,
			"named roles", strings.Join(r.Identity.Roles, ","))
	}
	meta := ""
	if len(r.Meta) > 0 {
		meta = string(r.Meta)
	}
	kv = append(kv,
		"permissions", strings.Join(r.Permissions, ","),
		"meta", meta,
		"expires", formatTimePtr(r.ExpiresAt))
	if r.Code == keyward.DecisionInsufficientPermissions {
		kv = append(kv, "missing", strings.Join(r.MissingPermissions, ","), "missing role", string(r.MissingRole))
	}
	if r.LimitLevel != "" {
		kv = append(kv, "refused by", string(r.LimitLevel)+" limits")
	}
	return fields(w, kv...)
}

// prefixList joins networks with commas.
func prefixList(ps []netip.Prefix) string {
	ss := make([]string, len(ps))
	for i, p := range ps {
		ss[i] = p.String()
	}
	return strings.Join(ss, ",")
}

// printNext tells people how to get the next page of a list.
func printNext(w io.Writer, next string) {
	if next != "" {
		fmt.Fprintf(w, "\nmore: run again with --after %s\n", next)
	}
}

// show writes v as JSON with -o json, or with people (a table) otherwise.
func (a *app) show(v any, people func(w io.Writer) error) error {
	if a.output == "csv" {
		return usageErrorf("--output csv is only for keyward report: use table or json")
	}
	if a.output == "json" {
		return printJSON(a.stdout, v)
	}
	return people(a.stdout)
}

// done reports a change that returns no object.
func (a *app) done(what, id string) error {
	return a.show(map[string]string{"id": id, "status": what}, func(w io.Writer) error {
		_, err := io.WriteString(w, what+" "+id+"\n")
		return err
	})
}
