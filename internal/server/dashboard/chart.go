package dashboard

import (
	"fmt"

	"github.com/reach-sca/reach/internal/server/store"
)

// chart is the overview's timeline as an SVG bar chart, laid out here and
// drawn by the overview template: one bar per day, its height the
// findings first reached that day.
type chart struct {
	W, H   int
	Top    int // y of the top of the plot
	Base   int // y of the baseline
	Left   int // x of the plot's left edge
	Max    int // the largest count, the top of the scale
	Total  int
	Bars   []bar
	Labels []chartLabel
}

type bar struct {
	X, Y, W, H float64
	Title      string // the tooltip: day and count
}

type chartLabel struct {
	X    float64
	Text string
}

const (
	chartW    = 960
	chartH    = 180
	chartTop  = 12
	chartLeft = 40
	chartBase = chartH - 24
)

// timelineChart lays out days (oldest first).
func timelineChart(days []store.DayCount) chart {
	c := chart{W: chartW, H: chartH, Top: chartTop, Base: chartBase, Left: chartLeft}
	for _, d := range days {
		c.Max = max(c.Max, d.Count)
		c.Total += d.Count
	}
	if len(days) == 0 {
		return c
	}
	scale := 1.0
	if c.Max > 0 {
		scale = float64(chartBase-chartTop) / float64(c.Max)
	}
	step := float64(chartW-chartLeft-4) / float64(len(days))
	for i, d := range days {
		x := float64(chartLeft) + float64(i)*step
		h := float64(d.Count) * scale
		if d.Count > 0 && h < 2 {
			h = 2 // a day with findings stays visible
		}
		plural := "s"
		if d.Count == 1 {
			plural = ""
		}
		c.Bars = append(c.Bars, bar{
			X: x + 1, W: max(step-2, 1), Y: float64(chartBase) - h, H: h,
			Title: fmt.Sprintf("%s: %d finding%s first reached", d.Day.Format("2006-01-02"), d.Count, plural),
		})
		if i%15 == 0 || i == len(days)-1 {
			c.Labels = append(c.Labels, chartLabel{X: x + step/2, Text: d.Day.Format("Jan 2")})
		}
	}
	return c
}
