package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/keyward/keyward/apikey"
	"github.com/keyward/keyward/internal/config"
	"github.com/spf13/cobra"
)

// Formats of config scan-patterns.
const (
	scanFormatTable    = "table"
	scanFormatRegex    = "regex"
	scanFormatGitleaks = "gitleaks"
)

func (a *app) configScanPatternsCommand() *cobra.Command {
	format := scanFormatTable
	cmd := &cobra.Command{
		Use:   "scan-patterns [--format table|regex|gitleaks]",
		Short: "Print secret-scanning regexes for the configured key prefixes",
		Long: `Print one regular expression per tier (root, account_admin, user) and
environment (live, test and any under key_prefixes.environments) that matches
exactly the keys keyward makes with the configured key_prefixes: the prefix,
an underscore, 43 base62 characters of randomness and the 6 of the CRC32
checksum, between word boundaries. Register them with a secret scanner:

  --format table     id, environment, role and regex (default)
  --format regex     the regexes alone, one per line (GitHub secret scanning
                     custom patterns, trufflehog custom detectors, grep -E
                     with \b support)
  --format gitleaks  a gitleaks configuration: [[rules]] extending the
                     default rules (gitleaks detect --config FILE)
  -o json            id, environment, role, prefix and regex of each

Keys with an account's own key_prefix, and keys made under prefixes
configured before, are not covered: add their patterns separately. The
patterns cannot check the checksum; keyward's own checks (keyward leaks
report) do. Exits 3 if the configuration is invalid.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			switch format {
			case scanFormatTable, scanFormatRegex, scanFormatGitleaks:
			default:
				return usageErrorf("--format %q: use table, regex or gitleaks", format)
			}
			cfg, err := config.Load(a.getenv, cmd.Flags())
			if err != nil {
				return err
			}
			patterns, err := cfg.KeyPrefixes.Patterns() // valid: Load validated them
			if err != nil {
				return err
			}
			return a.show(patterns, func(w io.Writer) error { return printScanPatterns(w, format, patterns) })
		},
	}
	cmd.Flags().StringVar(&format, "format", format, "table, regex or gitleaks")
	return cmd
}

// printScanPatterns writes patterns in format.
func printScanPatterns(w io.Writer, format string, patterns []apikey.Pattern) error {
	switch format {
	case scanFormatRegex:
		for _, p := range patterns {
			if _, err := fmt.Fprintln(w, p.Regex); err != nil {
				return err
			}
		}
		return nil
	case scanFormatGitleaks:
		var b strings.Builder
		b.WriteString("# keyward API keys, printed by keyward config scan-patterns --format gitleaks.\n[extend]\nuseDefault = true\n")
		for _, p := range patterns {
			// A TOML literal string: a regex holds no ''' (QuoteMeta'd
			// prefixes are [a-z0-9_]).
			fmt.Fprintf(&b, "\n[[rules]]\nid = %q\ndescription = %q\nregex = '''%s'''\nkeywords = [%q]\n",
				p.ID, "keyward "+p.Environment+" "+string(p.Role)+" API key", p.Regex, p.Prefix+"_")
		}
		_, err := io.WriteString(w, b.String())
		return err
	}
	t := newTable(w, "ID", "ENVIRONMENT", "ROLE", "REGEX")
	for _, p := range patterns {
		t.row(p.ID, p.Environment, string(p.Role), p.Regex)
	}
	return t.flush()
}
