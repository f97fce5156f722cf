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

// usagePage charts the verifications of a key, an account or everything
// the caller may see (root: all; an account admin: its account's keys;
// a user key: none, 403) over a chosen period, drawn server-side as SVG
// (usage.Chart), with the totals by outcome.
func (c *Console) usagePage(w http.ResponseWriter, r *http.Request, cl *caller) {
	q := r.URL.Query()
	period := q.Get("period")
	if period == "" {
		period = "24h"
	}
	i := slices.IndexFunc(usagePeriods, func(p usagePeriod) bool { return p.Name == period })
	if i < 0 {
		c.fail(w, r, cl, keyward.Errorf(keyward.EINVALID, "period must be 1h, 24h, 7d or 30d"))
		return
	}
	p := usagePeriods[i]
	f := keyward.UsageFilter{KeyID: q.Get("key"), AccountID: q.Get("account"), Granularity: p.Granularity, Since: p.Granularity.Truncate(c.now().Add(-p.Length))}
	rep, err := c.audit.Usage(r.Context(), f)
	if err != nil {
		c.fail(w, r, cl, err)
		return
	}
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
	c.render(w, r, http.StatusOK, "usage", cl, map[string]any{
		"Filter": f, "Period": p.Name, "Periods": usagePeriods, "Totals": totals,
		// The chart holds only numbers, times and the granularity.
		"Chart": template.HTML(usage.Chart(rep)),
	})
}
