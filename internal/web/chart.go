package web

import (
	"fmt"
	"html"
	"html/template"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
)

// chartSpec says how a series report is drawn: X the column of the time axis (a month
// or a date), Y the value, Series the column naming each line.
type chartSpec struct {
	X, Y, Series, YLabel string
}

// chartSpecs are the series reports: their result is drawn as a line chart under the
// preview. Keyed by report name; a report not here has no chart.
var chartSpecs = map[string]chartSpec{
	"mean-time-to-failure": {X: "month", Y: "mttf_hours", Series: "workcenter_code", YLabel: "mean time to failure (hours)"},
	"mean-time-to-repair":  {X: "month", Y: "mttr_hours", Series: "workcenter_code", YLabel: "mean time to repair (hours)"},
}

// maxChartRows bounds the rows a chart reads; maxLines the lines it draws (the lines
// with the most points; the caption says how many were left out).
const (
	maxChartRows = 20000
	maxLines     = 8
)

type point struct {
	x string
	y float64
}

type chartData struct {
	spec          chartSpec
	xi, yi, si    int
	lines         map[string][]point
	order         []string
	skipped, rows int
}

func newChartData(spec chartSpec, cols []string) *chartData {
	cd := &chartData{spec: spec, xi: -1, yi: -1, si: -1, lines: map[string][]point{}}
	for i, c := range cols {
		switch c {
		case spec.X:
			cd.xi = i
		case spec.Y:
			cd.yi = i
		case spec.Series:
			cd.si = i
		}
	}
	if cd.xi < 0 || cd.yi < 0 {
		return nil // the result lacks the columns: no chart rather than a wrong one
	}
	return cd
}

func (cd *chartData) add(vals []any) {
	cd.rows++
	x := cell(vals[cd.xi])
	if t, ok := vals[cd.xi].(time.Time); ok {
		x = t.Format("2006-01")
	}
	y, err := strconv.ParseFloat(strings.TrimSpace(cell(vals[cd.yi])), 64)
	if err != nil || math.IsNaN(y) || math.IsInf(y, 0) {
		cd.skipped++
		return
	}
	name := "all"
	if cd.si >= 0 {
		name = cell(vals[cd.si])
	}
	if _, ok := cd.lines[name]; !ok {
		cd.order = append(cd.order, name)
	}
	cd.lines[name] = append(cd.lines[name], point{x, y})
}

// Colours of the lines: distinguishable, and readable on white.
var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"}

// svg draws the chart: an x axis of the distinct X values in order, a y axis from 0
// to the largest value, a polyline per series and a legend. Every text is escaped.
func (cd *chartData) svg(title string) template.HTML {
	if cd == nil || len(cd.lines) == 0 {
		return ""
	}
	names := slices.Clone(cd.order)
	slices.SortStableFunc(names, func(a, b string) int { return len(cd.lines[b]) - len(cd.lines[a]) })
	left := 0
	if len(names) > maxLines {
		left = len(names) - maxLines
		names = names[:maxLines]
	}
	slices.Sort(names)
	xsSet := map[string]bool{}
	maxY := 0.0
	for _, n := range names {
		for _, p := range cd.lines[n] {
			xsSet[p.x] = true
			maxY = math.Max(maxY, p.y)
		}
	}
	xs := make([]string, 0, len(xsSet))
	for x := range xsSet {
		xs = append(xs, x)
	}
	slices.Sort(xs)
	xpos := map[string]int{}
	for i, x := range xs {
		xpos[x] = i
	}
	const w, h, ml, mr, mt, mb = 720.0, 360.0, 60.0, 130.0, 20.0, 50.0
	pw, ph := w-ml-mr, h-mt-mb
	top := niceCeil(maxY)
	px := func(i int) float64 {
		if len(xs) == 1 {
			return ml + pw/2
		}
		return ml + pw*float64(i)/float64(len(xs)-1)
	}
	py := func(y float64) float64 { return mt + ph - ph*y/top }
	var b strings.Builder
	e := html.EscapeString
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %g %g" role="img" aria-labelledby="chart-title" class="chart" id="chart">`, w, h)
	fmt.Fprintf(&b, `<title id="chart-title">%s: %s by %s, one line per %s</title>`, e(title), e(cd.spec.YLabel), e(cd.spec.X), e(cd.spec.Series))
	fmt.Fprintf(&b, `<rect x="%g" y="%g" width="%g" height="%g" fill="#fff" stroke="#999"/>`, ml, mt, pw, ph)
	for i := 0; i <= 4; i++ {
		y := top * float64(i) / 4
		fmt.Fprintf(&b, `<line x1="%g" y1="%.1f" x2="%g" y2="%.1f" stroke="#ddd"/>`, ml, py(y), ml+pw, py(y))
		fmt.Fprintf(&b, `<text x="%g" y="%.1f" text-anchor="end" font-size="11" dominant-baseline="middle">%s</text>`, ml-6, py(y), e(strconv.FormatFloat(y, 'f', -1, 64)))
	}
	step := max(1, (len(xs)+7)/8)
	for i, x := range xs {
		if i%step != 0 && i != len(xs)-1 {
			continue
		}
		fmt.Fprintf(&b, `<text x="%.1f" y="%g" text-anchor="middle" font-size="11">%s</text>`, px(i), mt+ph+16, e(x))
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" text-anchor="middle" font-size="12">%s</text>`, ml+pw/2, h-8, e(cd.spec.X))
	fmt.Fprintf(&b, `<text x="14" y="%g" text-anchor="middle" font-size="12" transform="rotate(-90 14 %g)">%s</text>`, mt+ph/2, mt+ph/2, e(cd.spec.YLabel))
	for k, n := range names {
		colour := palette[k%len(palette)]
		pts := slices.Clone(cd.lines[n])
		slices.SortStableFunc(pts, func(a, b point) int { return xpos[a.x] - xpos[b.x] })
		var coords []string
		for _, p := range pts {
			coords = append(coords, fmt.Sprintf("%.1f,%.1f", px(xpos[p.x]), py(p.y)))
		}
		fmt.Fprintf(&b, `<polyline class="series" data-series="%s" fill="none" stroke="%s" stroke-width="2" points="%s"/>`, e(n), colour, strings.Join(coords, " "))
		for _, c := range coords {
			xy := strings.Split(c, ",")
			fmt.Fprintf(&b, `<circle cx="%s" cy="%s" r="2.5" fill="%s"/>`, xy[0], xy[1], colour)
		}
		ly := mt + 14 + float64(k)*18
		fmt.Fprintf(&b, `<line x1="%g" y1="%g" x2="%g" y2="%g" stroke="%s" stroke-width="3"/>`, ml+pw+10, ly, ml+pw+28, ly, colour)
		fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" dominant-baseline="middle">%s</text>`, ml+pw+32, ly, e(n))
	}
	if left > 0 {
		fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11">+%d more</text>`, ml+pw+10, mt+14+float64(len(names))*18, left)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // every text above went through html.EscapeString
}

// niceCeil rounds up to 1, 2 or 5 times a power of ten (at least 1), for the y axis.
func niceCeil(v float64) float64 {
	if v <= 0 {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= v {
			return m * p
		}
	}
	return 10 * p
}
