package main

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward"
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
// an SVG line chart and writes it to path.
func writeChart(path string, r *keyward.UsageReport) error {
	type point struct{ valid, denied int64 }
	byStart := map[time.Time]*point{}
	var starts []time.Time
	for _, row := range r.Items {
		p := byStart[row.Start]
		if p == nil {
			p = &point{}
			byStart[row.Start] = p
			starts = append(starts, row.Start)
		}
		if row.Code.Valid() {
			p.valid += row.Count
		} else {
			p.denied += row.Count
		}
	}
	slices.SortFunc(starts, time.Time.Compare)
	var top int64 = 1
	for _, p := range byStart {
		top = max(top, p.valid, p.denied)
	}
	const width, height, left, bottom, pad = 800, 400, 70, 50, 20
	plotW, plotH := float64(width-left-pad), float64(height-bottom-pad)
	x := func(i int) float64 {
		if len(starts) < 2 {
			return float64(left) + plotW/2
		}
		return float64(left) + plotW*float64(i)/float64(len(starts)-1)
	}
	y := func(v int64) float64 { return float64(pad) + plotH*(1-float64(v)/float64(top)) }
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`+"\n", width, height, width, height)
	fmt.Fprintf(&b, `<title>keyward verifications per %s</title>`+"\n", r.Granularity)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, height-bottom, width-pad, height-bottom)
	fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="black"/>`+"\n", left, pad, left, height-bottom)
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">%d</text>`+"\n", left-5, y(top)+4, top)
	fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end">0</text>`+"\n", left-5, y(0)+4)
	for _, s := range []struct {
		name, color string
		value       func(*point) int64
	}{
		{"valid", "#2a7", func(p *point) int64 { return p.valid }},
		{"denied", "#d33", func(p *point) int64 { return p.denied }},
	} {
		pts := make([]string, len(starts))
		for i, st := range starts {
			pts[i] = fmt.Sprintf("%.1f,%.1f", x(i), y(s.value(byStart[st])))
		}
		fmt.Fprintf(&b, `<polyline class="%s" fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", s.name, s.color, strings.Join(pts, " "))
	}
	if len(starts) > 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", left, height-bottom+20, starts[0].UTC().Format(time.RFC3339))
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end">%s</text>`+"\n", width-pad, height-bottom+20, starts[len(starts)-1].UTC().Format(time.RFC3339))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" fill="#2a7">valid</text><text x="%d" y="%d" fill="#d33">denied</text>`+"\n", left+10, pad+12, left+60, pad+12)
	b.WriteString("</svg>\n")
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return usageErrorf("--chart: %v", err)
	}
	return nil
}
