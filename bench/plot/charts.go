package plot

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"

	"github.com/ipcbench/ipcbench/bench/report"
	"github.com/ipcbench/ipcbench/internal/hist"
	"github.com/ipcbench/ipcbench/internal/units"
)

func sizeX(s *report.Summary) float64     { return float64(s.Case.Size) }
func sizeLabel(s *report.Summary) string  { return units.FormatSize(s.Case.Size) }
func connsX(s *report.Summary) float64    { return float64(s.Case.Conns) }
func connsLabel(s *report.Summary) string { return strconv.Itoa(s.Case.Conns) + " conns" }
func p50Val(s *report.Summary) (float64, float64, float64, []float64) {
	return s.P50Median, s.P50Lo, s.P50Hi, s.RepeatP50
}
func mbpsVal(s *report.Summary) (float64, float64, float64, []float64) {
	return s.MBps, s.MBpsLo, s.MBpsHi, s.RepeatMBps
}
func rateVal(s *report.Summary) (float64, float64, float64, []float64) {
	return s.MsgRate, s.MsgRateLo, s.MsgRateHi, s.RepeatMsgRate
}

// extent returns the smallest and largest values the series draw (points
// and the bars that will be shown).
func extent(ss []*series, useCI bool) (xmin, xmax, ymin, ymax float64) {
	xmin, ymin = math.Inf(1), math.Inf(1)
	xmax, ymax = math.Inf(-1), math.Inf(-1)
	for _, se := range ss {
		for i := range se.x {
			lo, hi := se.lo[i], se.hi[i]
			if !useCI {
				lo, hi = se.repLo[i], se.repHi[i]
			}
			xmin, xmax = math.Min(xmin, se.x[i]), math.Max(xmax, se.x[i])
			ymin = math.Min(ymin, math.Min(lo, se.y[i]))
			ymax = math.Max(ymax, math.Max(hi, se.y[i]))
		}
	}
	return
}

// sizesIn returns the distinct x values of the series as ints.
func sizesIn(ss []*series) []int {
	seen := map[int]bool{}
	var out []int
	for _, se := range ss {
		for _, x := range se.x {
			if v := int(x); !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	sort.Ints(out)
	return out
}

// latencyVsSize draws the pingpong p50 round trip against message size,
// log-log. It returns a nil plot when there is nothing to draw.
func latencyVsSize(sums []report.Summary, styles map[string]int, placement, where string) (*plot.Plot, plot.Legend, error) {
	ss, bounded := collect(sums, styles, "pingpong", placement, sizeX, sizeLabel, p50Val)
	if len(ss) == 0 {
		return nil, plot.Legend{}, nil
	}
	p := newPlot("pingpong: round trip (median of the repeats' p50) vs message size\n" + where + "\n" + barsNote(bounded))
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Label.Text = "message size (log scale)"
	p.Y.Label.Text = "p50 round trip (log scale)"
	p.X.Tick.Marker = sizeTicks(sizesIn(ss))
	p.Y.Tick.Marker = plot.TickerFunc(nsTicks)
	p.Add(plotter.NewGrid())
	leg := newLegend()
	if err := addSeries(p, &leg, ss, true, bounded, bimodalNote); err != nil {
		return nil, leg, fmt.Errorf("plot: pingpong latency: %w", err)
	}
	xmin, xmax, ymin, ymax := extent(ss, bounded)
	p.X.Min, p.X.Max = xmin/1.5, xmax*1.5
	p.Y.Min, p.Y.Max = ymin/1.3, ymax*1.3
	return p, leg, nil
}

// throughputVsSize draws stream MB/s against message size, log-log: stream
// throughput spans decades between 64 B and 1 MiB messages, and on a linear
// axis every small-message point sits on zero.
func throughputVsSize(sums []report.Summary, styles map[string]int, placement, where string) (*plot.Plot, plot.Legend, error) {
	ss, bounded := collect(sums, styles, "stream", placement, sizeX, sizeLabel, mbpsVal)
	if len(ss) == 0 {
		return nil, plot.Legend{}, nil
	}
	p := newPlot("stream: throughput in MB/s (10⁶ payload bytes/s; median of the repeats) vs message size\n" + where + "\n" + barsNote(bounded))
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.X.Label.Text = "message size (log scale)"
	p.Y.Label.Text = "throughput, MB/s (log scale)"
	p.X.Tick.Marker = sizeTicks(sizesIn(ss))
	p.Y.Tick.Marker = plot.TickerFunc(func(min, max float64) []plot.Tick { return logTicks(min, max, tickMBps) })
	p.Add(plotter.NewGrid())
	leg := newLegend()
	if err := addSeries(p, &leg, ss, true, bounded, bimodalNote); err != nil {
		return nil, leg, fmt.Errorf("plot: stream throughput: %w", err)
	}
	xmin, xmax, ymin, ymax := extent(ss, bounded)
	p.X.Min, p.X.Max = xmin/1.5, xmax*1.5
	p.Y.Min, p.Y.Max = ymin/1.3, ymax*1.3
	return p, leg, nil
}

// rateVsConns draws the fanin message rate against the connection count
// at one fanin message size of the placement (a run measures fanin at one
// size; records joined from several runs may hold more, a chart each).
func rateVsConns(sums []report.Summary, styles map[string]int, placement string, size int, where string) (*plot.Plot, plot.Legend, error) {
	var atSize []report.Summary
	for _, s := range sums {
		if s.Case.Size == size {
			atSize = append(atSize, s)
		}
	}
	ss, bounded := collect(atSize, styles, "fanin", placement, connsX, connsLabel, rateVal)
	if len(ss) == 0 {
		return nil, plot.Legend{}, nil
	}
	p := newPlot(fmt.Sprintf("fanin %s: message rate (median of the repeats) vs connections\n%s\n%s",
		units.FormatSize(size), where, barsNote(bounded)))
	p.X.Label.Text = "concurrent connections"
	p.Y.Label.Text = "messages per second, all connections together"
	conns := sizesIn(ss)
	p.X.Tick.Marker = plot.TickerFunc(func(min, max float64) []plot.Tick {
		var t []plot.Tick
		for _, c := range conns {
			t = append(t, plot.Tick{Value: float64(c), Label: strconv.Itoa(c)})
		}
		return t
	})
	p.Y.Tick.Marker = plot.TickerFunc(rateTicks)
	p.Add(plotter.NewGrid())
	leg := newLegend()
	if err := addSeries(p, &leg, ss, true, bounded, bimodalNote); err != nil {
		return nil, leg, fmt.Errorf("plot: fanin rate: %w", err)
	}
	xmin, xmax, _, ymax := extent(ss, bounded)
	pad := math.Max(1, (xmax-xmin)*0.1)
	p.X.Min, p.X.Max = math.Max(0, xmin-pad), xmax+pad
	p.Y.Min, p.Y.Max = 0, ymax*1.1
	return p, leg, nil
}

// latencyCDF draws the distribution of every round trip of the OK
// pingpong repeats at one size, per transport (Summary.Latency, a sampled
// repeat's weighted by its sample_every): log x (latency), y the
// percentile on a scale stretched towards the tail, y = -log10(1-q), so
// that 90%, 99% and 99.9% are evenly spaced.
func latencyCDF(sums []report.Summary, styles map[string]int, placement string, size int, where string) (*plot.Plot, plot.Legend, error) {
	type dist struct {
		label   string
		style   int
		h       *hist.Histogram
		timed   int64 // round trips timed; fewer than h's count when sampled
		bimodal bool
	}
	var ds []*dist
	for i := range sums {
		s := &sums[i]
		c := s.Case
		if c.Workload != "pingpong" || c.Placement != placement || c.Size != size || s.Latency == nil {
			continue
		}
		ds = append(ds, &dist{label: c.TransportLabel(), style: styles[c.TransportLabel()], h: s.Latency, timed: s.Timed, bimodal: s.Bimodal})
	}
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].style < ds[j].style })
	p := newPlot(fmt.Sprintf("pingpong %s: distribution of the round trips of all OK repeats (a sampled repeat's timed ones stand for all)\n%s\ny axis stretched towards the tail: 90%%, 99%%, 99.9%% are evenly spaced",
		units.FormatSize(size), where))
	p.X.Scale = plot.LogScale{}
	p.X.Label.Text = "round trip (log scale)"
	p.Y.Label.Text = "percentile of round trips at or below"
	p.X.Tick.Marker = plot.TickerFunc(nsTicks)
	p.Add(plotter.NewGrid())
	leg := newLegend()
	xmin, xmax, ymax := math.Inf(1), math.Inf(-1), 0.0
	drawn := 0
	for _, d := range ds {
		n := d.h.Count()
		if n == 0 {
			continue
		}
		top := math.Log10(float64(n)) // where q = 1 - 1/n sits
		var pts plotter.XYs
		for _, pt := range d.h.CDF() {
			y := top
			if pt.Quantile < 1 {
				y = math.Min(top, -math.Log10(1-pt.Quantile))
			}
			x := math.Max(1, float64(pt.Value))
			pts = append(pts, plotter.XY{X: x, Y: y})
			xmin, xmax, ymax = math.Min(xmin, x), math.Max(xmax, x), math.Max(ymax, y)
		}
		if len(pts) == 0 {
			continue
		}
		line, err := plotter.NewLine(pts)
		if err != nil {
			return nil, leg, fmt.Errorf("plot: pingpong distribution: %w", err)
		}
		line.Color, line.Dashes = seriesStyle(d.style)
		line.Width = vg.Points(1.5)
		p.Add(line)
		label := fmt.Sprintf("%s (%d round trips)", d.label, n)
		if d.timed < n {
			label = fmt.Sprintf("%s (%d round trips, %d of them timed)", d.label, n, d.timed)
		}
		if d.bimodal {
			label += " (bimodal)"
		}
		leg.Add(label, line)
		drawn++
	}
	if drawn == 0 {
		return nil, plot.Legend{}, nil
	}
	p.X.Min, p.X.Max = xmin/1.2, xmax*1.2
	p.Y.Min, p.Y.Max = 0, math.Max(ymax*1.05, 1)
	p.Y.Tick.Marker = plot.TickerFunc(percentileTicks)
	return p, leg, nil
}

// sizeTicks labels the measured sizes on a log axis, with minor ticks at
// the other powers of two.
func sizeTicks(sizes []int) plot.Ticker {
	return plot.TickerFunc(func(min, max float64) []plot.Tick {
		label := map[int]bool{}
		for _, s := range sizes {
			label[s] = true
		}
		var ts []plot.Tick
		for v := 1; float64(v) <= max && v > 0; v *= 2 {
			if float64(v) < min {
				continue
			}
			t := plot.Tick{Value: float64(v)}
			if label[v] {
				t.Label = units.FormatSize(v)
				delete(label, v)
			}
			ts = append(ts, t)
		}
		for _, s := range sizes { // sizes that are not powers of two
			if label[s] {
				ts = append(ts, plot.Tick{Value: float64(s), Label: units.FormatSize(s)})
			}
		}
		sort.SliceStable(ts, func(i, j int) bool { return ts[i].Value < ts[j].Value })
		return ts
	})
}

// nsTicks marks a log axis of nanoseconds (see logTicks).
func nsTicks(min, max float64) []plot.Tick { return logTicks(min, max, tickNS) }

// logTicks marks a log axis at 1, 2, 5 × powers of ten (labelled with
// label; only the powers of ten when the range spans more than three
// decades), with minor ticks between.
func logTicks(min, max float64, label func(float64) string) []plot.Tick {
	if min <= 0 || max <= min {
		return nil
	}
	lo, hi := int(math.Floor(math.Log10(min))), int(math.Ceil(math.Log10(max)))
	few := math.Log10(max)-math.Log10(min) <= 3
	var ts []plot.Tick
	for d := lo; d <= hi; d++ {
		base := math.Pow(10, float64(d))
		for m := 1; m <= 9; m++ {
			v := float64(m) * base
			if v < min || v > max {
				continue
			}
			t := plot.Tick{Value: v}
			if m == 1 || few && (m == 2 || m == 5) {
				t.Label = label(v)
			}
			ts = append(ts, t)
		}
	}
	return ts
}

// tickNS formats a round tick value: "2µs", "10ms", "500ns".
func tickNS(v float64) string {
	s := report.FormatNS(v)
	i := strings.IndexFunc(s, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	if i < 0 {
		return s
	}
	num, unit := s[:i], s[i:]
	if strings.Contains(num, ".") {
		num = strings.TrimRight(strings.TrimRight(num, "0"), ".")
	}
	return num + unit
}

// tickMBps formats a round MB/s tick value: "0.5", "20", "3000".
func tickMBps(v float64) string {
	s := report.FormatMBps(v)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// rateTicks labels a linear msg/s axis with SI prefixes ("200k").
func rateTicks(min, max float64) []plot.Tick {
	ts := plot.DefaultTicks{}.Ticks(min, max)
	for i := range ts {
		if ts[i].Label != "" {
			ts[i].Label = report.FormatRate(ts[i].Value)
		}
	}
	return ts
}

// percentileTicks labels the tail-stretched percentile axis.
func percentileTicks(min, max float64) []plot.Tick {
	ts := []plot.Tick{{Value: 0, Label: "0%"}, {Value: math.Log10(2), Label: "50%"}}
	label := "90"
	for d := 1.0; d <= max; d++ {
		ts = append(ts, plot.Tick{Value: d, Label: label + "%"})
		if d == 1 {
			label = "99"
		} else if d == 2 {
			label = "99.9"
		} else {
			label += "9"
		}
	}
	return ts
}
