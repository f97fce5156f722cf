package console

import (
	"html/template"
	"net/http"
	"slices"
	"time"

	"github.com/keyward/keyward"
	"github.com/keyward/keyward/usage"
)

// usagePeriod is a period the usage page offers, read at a granularity
// that gives a readable chart.
type usagePeriod struct {
	Name        string
	Length      time.Duration
	Granularity keyward.UsageGranularity
}

var usagePeriods = []usagePeriod{
	{"1h", time.Hour, keyward.UsageMinute},
	{"24h", 24 * time.Hour, keyward.UsageHour},
	{"7d", 7 * 24 * time.Hour, keyward.UsageHour},
	{"30d", 30 * 24 * time.Hour, keyward.UsageDay},
}

// codeCount is a decision and how many verifications ended with it.
type codeCount struct {
	Code  keyward.Decision
	Count int64
}

// usagePage charts the verifications of a key, a user, an account or
// everything the caller may see (root: all; an account admin: its account's keys;
// a user key: none, 403) over a chosen period, drawn server-side as SVG
// (usage.Chart), with the totals by outcome.
func (c *Console) usagePage(w http.ResponseWriter, r *http.Request, cl *caller) {
	q := r.URL.Query()
	p, err := periodOf(q.Get("period"))
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	f := keyward.UsageFilter{KeyID: q.Get("key"), AccountID: q.Get("account"), UserID: q.Get("user"), Granularity: p.Granularity, Since: p.since(c.now())}
	rep, err := c.audit.Usage(r.Context(), f)
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
	c.render(w, r, http.StatusOK, "usage", cl, usageData(f, p, rep))
}

// periodOf returns the usage period named name (default 24h).
func periodOf(name string) (usagePeriod, error) {
	if name == "" {
		name = "24h"
	}
	i := slices.IndexFunc(usagePeriods, func(p usagePeriod) bool { return p.Name == name })
	if i < 0 {
		return usagePeriod{}, keyward.Errorf(keyward.EINVALID, "period must be 1h, 24h, 7d or 30d")
	}
	return usagePeriods[i], nil
}

// since is the start of the period ending now, on its granularity.
func (p usagePeriod) since(now time.Time) time.Time {
	return p.Granularity.Truncate(now.Add(-p.Length))
}

// usageData is what a usage page shows of rep: the chart and the totals
// by outcome, valid first, then by count.
func usageData(f keyward.UsageFilter, p usagePeriod, rep *keyward.UsageReport) map[string]any {
	byCode := map[keyward.Decision]int64{}
	for _, row := range rep.Items {
		byCode[row.Code] += row.Count
	}
	totals := make([]codeCount, 0, len(byCode))
	for code, n := range byCode {
		totals = append(totals, codeCount{code, n})
	}
	slices.SortFunc(totals, func(a, b codeCount) int {
		if a.Code.Valid() != b.Code.Valid() {
			if a.Code.Valid() {
				return -1
			}
			return 1
		}
		return int(b.Count - a.Count)
	})
	return map[string]any{
		"Filter": f, "Period": p.Name, "Periods": usagePeriods, "Totals": totals,
		// The chart holds only numbers, times and the granularity.
		"Chart": template.HTML(usage.Chart(rep)),
	}
}
