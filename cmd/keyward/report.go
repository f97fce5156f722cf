package main

import (
	"encoding/csv"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/usage"
	"github.com/spf13/cobra"
)

func (a *app) reportCommand() *cobra.Command {
	var (
		f            keyward.UsageFilter
		gran         string
		since, until string
		chart        string
	)
	cmd := &cobra.Command{
		Use:   "report [--granularity day|hour|minute] [--account ACCOUNT_ID] [--key KEY_ID] [--since WHEN] [--until WHEN] [--chart FILE.svg]",
		Short: "Show verifications per key and period, valid and denied by code",
		Long: `Show how often each key was verified, per day (or hour, or minute), split into
valid and denied with the codes of the denials. -o json prints the rows, -o csv
one row per period, key and code. --chart FILE.svg also draws valid and denied
verifications over time. Root sees every key, an account admin its account's.
See docs/usage-reports.md.`,
		Args: exactArgs(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.Granularity = keyward.UsageGranularity(gran)
			if !f.Granularity.Valid() {
				return usageErrorf("--granularity %q: use minute, hour or day", gran)
			}
			now := time.Now()
			var err error
			if f.Since, err = parseWhen("since", since, now); err != nil {
				return err
			}
			if f.Until, err = parseWhen("until", until, now); err != nil {
				return err
			}
			c, err := a.client()
			if err != nil {
				return err
			}
			r, err := c.Usage(cmd.Context(), f)
			if err != nil {
				return err
			}
			if chart != "" {
				if err := writeChart(chart, r); err != nil {
					return err
				}
			}
			if a.output == "csv" {
				return writeUsageCSV(a.stdout, r)
			}
			return a.show(r, func(w io.Writer) error { return printUsage(w, r) })
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&gran, "granularity", "day", "period of each row: minute, hour or day")
	fl.StringVar(&f.AccountID, "account", "", "only keys of this account")
	fl.StringVar(&f.KeyID, "key", "", "only this key")
	fl.StringVar(&since, "since", "7d", "from this RFC 3339 time, or a duration back from now")
	fl.StringVar(&until, "until", "", "before this RFC 3339 time, or a duration back from now")
	fl.StringVar(&chart, "chart", "", "also write an SVG chart of valid and denied verifications over time to this file")
	return cmd
}

// usageLine is one period of one key in a report table.
type usageLine struct {
	start         time.Time
	key, account  string
	valid, denied int64
	deniedByCode  map[keyward.Decision]int64
}

// usageLines groups r's rows by period and key, in order.
func usageLines(r *keyward.UsageReport) []*usageLine {
	var lines []*usageLine
	index := map[string]*usageLine{}
	for _, row := range r.Items {
		id := row.Start.UTC().Format(time.RFC3339) + "\x00" + row.KeyID
		l := index[id]
		if l == nil {
			l = &usageLine{start: row.Start, key: row.KeyID, account: row.AccountID, deniedByCode: map[keyward.Decision]int64{}}
			index[id] = l
			lines = append(lines, l)
		}
		if row.Code.Valid() {
			l.valid += row.Count
		} else {
			l.denied += row.Count
			l.deniedByCode[row.Code] += row.Count
		}
	}
	return lines
}

func printUsage(w io.Writer, r *keyward.UsageReport) error {
	t := newTable(w, "START", "KEY", "ACCOUNT", "VALID", "DENIED", "DENIED BY CODE")
	for _, l := range usageLines(r) {
		codes := make([]string, 0, len(l.deniedByCode))
		for code, n := range l.deniedByCode {
			codes = append(codes, string(code)+"="+strconv.FormatInt(n, 10))
		}
		slices.Sort(codes)
		key := l.key
		if key == "" {
			key = "(no key)"
		}
		t.row(formatTime(l.start), key, l.account, strconv.FormatInt(l.valid, 10), strconv.FormatInt(l.denied, 10), strings.Join(codes, " "))
	}
	return t.flush()
}

func writeUsageCSV(w io.Writer, r *keyward.UsageReport) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"start", "granularity", "key_id", "account_id", "code", "count"})
	for _, row := range r.Items {
		cw.Write([]string{row.Start.UTC().Format(time.RFC3339), string(r.Granularity), row.KeyID, row.AccountID, string(row.Code), strconv.FormatInt(row.Count, 10)})
	}
	cw.Flush()
	return cw.Error()
}

// writeChart draws the valid and denied verifications of r per period as
// an SVG line chart (usage.Chart) and writes it to path.
func writeChart(path string, r *keyward.UsageReport) error {
	if err := os.WriteFile(path, []byte(usage.Chart(r)), 0o644); err != nil {
		return usageErrorf("--chart: %v", err)
	}
	return nil
}
