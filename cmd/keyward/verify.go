package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/keyward/keyward"
	"github.com/spf13/cobra"
)

func (a *app) verifyCommand() *cobra.Command {
	var r keyward.VerifyRequest
	cmd := &cobra.Command{
		Use:   "verify KEY|- [--permission P]... [--query Q] [--require-role ROLE] [--environment ENV]",
		Short: "Ask the server whether a key is valid (exit 9 if not)",
		Long: `Verify a key as a service would on each request. Give the key as an argument,
or "-" to read it from stdin (keeps it out of your shell history and ps).
Needs a root key or a key with the keys:verify permission in --api-key.
--query takes a permission query, e.g. 'memories:read AND (search:run OR admin:*)'
(docs/permissions.md); the answer names the permissions the key lacks.
Exits 0 when the key is valid and 9 when it is not.`,
		Args: exactArgs("KEY"),
		RunE: func(cmd *cobra.Command, args []string) error {
			key := args[0]
			if key == "-" {
				var err error
				if key, err = a.readSecretLine(); err != nil {
					return err
				}
			}
			r.Key = key
			c, err := a.client()
			if err != nil {
				return err
			}
			if r.Agent == "" {
				r.Agent = c.Agent
			}
			res, err := c.VerifyKey(cmd.Context(), r)
			if err != nil {
				return err
			}
			if err := a.show(res, func(w io.Writer) error { return printVerifyResult(w, res) }); err != nil {
				return err
			}
			if !res.Valid {
				return &exitError{code: ExitKeyInvalid, err: fmt.Errorf("key is not valid: %s", res.Code)}
			}
			return nil
		},
	}
	cmd.Flags().StringSliceVar(&r.Permissions, "permission", nil, "permission the key must hold (repeatable)")
	cmd.Flags().StringVar(&r.Query, "query", "", "permission query the key must satisfy, e.g. 'a:read AND (b:run OR c:*)'")
	cmd.Flags().StringVar((*string)(&r.RequireRole), "require-role", "", "least role of the key (root, account_admin or user), or a named role it must hold")
	cmd.Flags().StringVar(&r.Environment, "environment", "", "environment the key must be in, e.g. live (WRONG_ENVIRONMENT otherwise)")
	a.addClientFlags(cmd)
	return cmd
}

// readSecretLine reads one line from stdin.
func (a *app) readSecretLine() (string, error) {
	in := a.m.Stdin
	if in == nil {
		in = os.Stdin
	}
	line, err := bufio.NewReader(io.LimitReader(in, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		return "", fmt.Errorf("reading the key from stdin: %w", err)
	}
	line = strings.TrimSpace(line)
	if line == "" {
		return "", usageErrorf("no key on stdin")
	}
	return line, nil
}

func (a *app) whoamiCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "whoami",
		Short: "Show the identity of your API key",
		Args:  exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := a.client()
			if err != nil {
				return err
			}
			id, err := c.WhoAmI(cmd.Context())
			if err != nil {
				return err
			}
			return a.show(id, func(w io.Writer) error { return printIdentity(w, id) })
		},
	}
	a.addClientFlags(cmd)
	return cmd
}
