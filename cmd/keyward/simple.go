package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/keystore"
	"github.com/spf13/cobra"
)

// The simple modes (docs/simple-modes.md): a static keystore file (setting
// keystore), the legacy admin key (KEYWARD_ADMIN_API_KEY, environment
// only: a secret on a command line is visible to every user of the
// machine) and dev mode (setting dev_mode, flag --dev).

func (a *app) keystoreCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keystore",
		Short: "Work with static keystore files (docs/simple-modes.md)",
	}
	cmd.AddCommand(a.keystoreHashCommand(), a.keystoreCheckCommand(), a.keystoreAddCommand())
	return cmd
}

func (a *app) keystoreHashCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "hash",
		Short: "Print the SHA-256 digest of a token read from stdin, for a keystore file",
		Long: `Read one token from stdin and print its SHA-256 hex digest: the key of its
entry in a keystore file. Only the line ending is removed; a token with other
white space around it, or a control character in it, is refused, because no
request could present it. The token never goes on the command line.

  printf '%s' "$TOKEN" | keyward keystore hash`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			token, err := a.readToken()
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(a.stdout, keystore.Digest(token))
			return err
		},
	}
}

func (a *app) keystoreCheckCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "check FILE",
		Short: "Validate a keystore file and list its key ids (exit 3 if invalid)",
		Args:  exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ks, err := keystore.Load(args[0])
			if err != nil {
				return config.Errorf("keystore", "%v", err)
			}
			_, err = fmt.Fprintf(a.stdout, "%s: %d keys: %s\n", args[0], ks.Len(), strings.Join(ks.IDs(), ", "))
			return err
		},
	}
}

// keystoreAdded is what keystore add prints with -o json.
type keystoreAdded struct {
	ID      string `json:"id"`
	Subject string `json:"subject,omitempty"`
	Role    string `json:"role"`
	File    string `json:"file"`
	SHA256  string `json:"sha256"`
	// Token is shown this once; the file keeps only its digest.
	Token string `json:"token"`
}

func (a *app) keystoreAddCommand() *cobra.Command {
	var e keystore.NewEntry
	var role string
	cmd := &cobra.Command{
		Use:   "add --id ID [--subject SUBJECT] [--role ROLE] [--account ACCOUNT] [--permission P]... FILE",
		Short: "Generate a token, print it once and add its digest to a keystore file",
		Long: `Generate a random token (256 bits), print it once on stdout and append its
SHA-256 digest to the keystore FILE with the given id, subject, role, account
and permissions (the file is created if missing; its comments are kept). The
token is stored nowhere: give it to the client now. Tokens of one identity
share a --subject (the identity's user id, X-Keyward-User) and each has its own
--id, so a token can be replaced without changing who it speaks for: add the
new one, hand it out, then remove the old entry. Processes that read FILE pick
the key up when restarted.

  keyward keystore add --id alice-laptop --subject alice keys.yaml`,
		Args: exactArgs("FILE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if a.output == "csv" {
				return usageErrorf("--output csv is only for keyward report: use table or json")
			}
			if strings.TrimSpace(e.ID) == "" {
				return usageErrorf("--id is required: name the new key, e.g. --id alice-laptop")
			}
			e.Role = keyward.Role(role)
			if !e.Role.Valid() {
				return usageErrorf("--role %q: use root, account_admin or user", role)
			}
			token, err := keystore.Add(args[0], e)
			var fe *keystore.FileError
			switch {
			case errors.As(err, &fe):
				return config.Errorf("keystore", "%v", err)
			case err != nil:
				return err
			}
			if a.output == "json" {
				return printJSON(a.stdout, keystoreAdded{ID: e.ID, Subject: e.Subject, Role: role, File: args[0],
					SHA256: keystore.Digest(token.Reveal()), Token: token.Reveal()})
			}
			if _, err := fmt.Fprintln(a.stdout, token.Reveal()); err != nil {
				return err
			}
			_, err = fmt.Fprintf(a.stderr, "added key %q to %s: the token above is shown once, the file keeps only its digest; restart the processes that read the file\n", e.ID, args[0])
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&e.ID, "id", "", "id of the new key, unique in the file (required)")
	f.StringVar(&e.Subject, "subject", "", "whom the token speaks for, shared by the tokens of one identity")
	f.StringVar(&role, "role", string(keyward.RoleUser), "root, account_admin or user")
	f.StringVar(&e.Account, "account", "", "account of the key (required for account_admin, refused for root)")
	f.StringArrayVar(&e.Permissions, "permission", nil, "permission of the key (repeatable)")
	return cmd
}

// readToken reads one token from stdin without trimming anything but the
// line ending.
func (a *app) readToken() (string, error) {
	in := a.m.Stdin
	if in == nil {
		in = os.Stdin
	}
	b, err := io.ReadAll(io.LimitReader(in, keystore.MaxTokenLength+3))
	if err != nil {
		return "", fmt.Errorf("reading the token from stdin: %w", err)
	}
	line, rest, _ := bytes.Cut(b, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	switch {
	case len(rest) > 0:
		return "", usageErrorf("stdin holds more than one line: give one token")
	case len(line) == 0:
		return "", usageErrorf("no token on stdin: printf '%%s' \"$TOKEN\" | keyward keystore hash")
	}
	if err := keystore.CheckToken(string(line)); err != nil {
		return "", usageErrorf("%s: no request could present it, so its digest would never match", keyward.ErrorMessage(err))
	}
	return string(line), nil
}
