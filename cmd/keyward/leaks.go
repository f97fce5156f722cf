package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/apikey"
	"github.com/spf13/cobra"
)

func (a *app) leaksCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "leaks",
		Aliases: []string{"leak"},
		Short:   "Report leaked keys: they are revoked at once",
	}
	a.addClientFlags(cmd)
	cmd.AddCommand(a.leaksReportCommand())
	return cmd
}

// cascadeOff is LeakReport.Cascade of --no-cascade.
var cascadeOff = false

func (a *app) leaksReportCommand() *cobra.Command {
	var (
		source, url string
		noCascade   bool
	)
	cmd := &cobra.Command{
		Use:   "report TOKEN...|- [--source S] [--url U]",
		Short: "Report raw keys found where they should not be; their keys are revoked at once",
		Long: `Report raw keys found in public (a repository, a paste, a log) and revoke their
keys at once. Give the tokens as arguments, or "-" to read them from stdin, one
per line (keeps them out of your shell history and ps):

  grep -ho 'kw_user_[0-9A-Za-z]*' leaked.txt | keyward leaks report - --source github --url https://...

Tokens of any format are looked up as verification looks them up, so keys
imported as SHA-256 digests are found too. With each key found, the keys it
created (and the keys those created, and so on) are revoked as well, unless
--no-cascade; a root key's never are.

Needs a root key or a key with the keys:report_leak permission in --api-key.
Prints, per token, its start (its position for a token not of keyward's
format), revoked or not_found (malformed and unknown tokens are not told
apart) and, for root keys only, the revoked key's id and how many keys were
revoked with it. Exits 0 whatever was found. See docs/api.md, "Leaked keys".`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageErrorf("missing TOKEN (or - to read tokens from stdin)")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			tokens, err := a.leakTokens(args)
			if err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			all := &keyward.LeakResults{Results: make([]keyward.LeakResult, 0, len(tokens))}
			for batch := range slices.Chunk(tokens, keyward.MaxLeakTokens) {
				r := keyward.LeakReport{Tokens: make([]keyward.LeakedToken, len(batch))}
				if noCascade {
					r.Cascade = &cascadeOff
				}
				for i, t := range batch {
					r.Tokens[i] = keyward.LeakedToken{Token: t, Source: source, URL: url}
				}
				res, err := c.ReportLeaks(cmd.Context(), r)
				if err != nil {
					if n := len(all.Results); n > 0 {
						return fmt.Errorf("after %d of %d tokens were reported (reporting them again is safe): %w", n, len(tokens), err)
					}
					return err
				}
				all.Results = append(all.Results, res.Results...)
			}
			return a.show(all, func(w io.Writer) error {
				t := newTable(w, "TOKEN", "STATUS", "KEY ID", "CASCADED")
				for i, r := range all.Results {
					start := apikey.Start(tokens[i])
					if start == "" {
						start = fmt.Sprintf("#%d (other format)", i+1)
					} else {
						start += "..."
					}
					cascaded := ""
					if r.Cascaded > 0 {
						cascaded = strconv.Itoa(r.Cascaded)
					}
					t.row(start, string(r.Status), r.KeyID, cascaded)
				}
				return t.flush()
			})
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "where the tokens were found, e.g. github")
	cmd.Flags().StringVar(&url, "url", "", "the URL where they were found")
	cmd.Flags().BoolVar(&noCascade, "no-cascade", false, "revoke only the reported keys, not the keys they created (default: those too)")
	return cmd
}

// leakTokens returns the tokens of args, "-" standing for the lines of
// stdin. Its errors name a token by position, never by value.
func (a *app) leakTokens(args []string) ([]string, error) {
	var tokens []string
	stdin := false
	for _, arg := range args {
		if arg != "-" {
			tokens = append(tokens, arg)
			continue
		}
		if stdin {
			return nil, usageErrorf("- may be given once")
		}
		stdin = true
		lines, err := a.readTokenLines()
		if err != nil {
			return nil, err
		}
		tokens = append(tokens, lines...)
	}
	if len(tokens) == 0 {
		return nil, usageErrorf("no tokens on stdin: give one per line")
	}
	for i, t := range tokens {
		if len(t) > keyward.MaxLeakTokenLen {
			return nil, usageErrorf("token #%d is longer than %d bytes: no key is that long", i+1, keyward.MaxLeakTokenLen)
		}
	}
	return tokens, nil
}

// readTokenLines reads one token a line from stdin, skipping blank lines.
func (a *app) readTokenLines() ([]string, error) {
	in := a.m.Stdin
	if in == nil {
		in = os.Stdin
	}
	var tokens []string
	line := 0
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 4096), keyward.MaxLeakTokenLen+2)
	for sc.Scan() {
		line++
		if t := strings.TrimSpace(sc.Text()); t != "" {
			tokens = append(tokens, t)
		}
	}
	if err := sc.Err(); err != nil {
		if err == bufio.ErrTooLong {
			return nil, usageErrorf("stdin line %d is longer than %d bytes: no key is that long", line+1, keyward.MaxLeakTokenLen)
		}
		return nil, fmt.Errorf("reading tokens from stdin: %w", err)
	}
	return tokens, nil
}
