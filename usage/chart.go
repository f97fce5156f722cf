package usage

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward"
)

// Chart draws the valid and denied verifications of r per period as an
// SVG line chart, 800 by 400: what keyward report --chart writes and the
// console's usage page shows. It holds only numbers, times and the
// granularity, never a key id or another caller-given string.
func Chart(r *keyward.UsageReport) string {
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
	return b.String()
}
