// Package plot draws ipcbench results as SVG charts with gonum.org/v1/plot.
//
// Write draws, for every run and every placement in it:
//
//   - pingpong round trip vs message size: the median of the repeats' p50
//     round trips per transport on log-log axes, with error bars for its
//     95% confidence interval (or, with too few repeats for a bounded
//     interval, the range of the repeats; the title says which);
//   - pingpong round-trip distribution at each message size: the latency
//     of every round trip of the OK repeats per transport (a sampled
//     repeat's weighted by its sample_every), log x axis,
//     percentile y axis stretched towards the tail (0%, 50%, 90%, 99%,
//     99.9%, ...), so that the tail is as visible as the median;
//   - stream throughput (MB/s, median of repeats) vs message size per
//     transport, log-log axes;
//   - fanin message rate vs connection count per transport, when fanin
//     was measured.
//
// Every chart's title says what it shows and where it ran (placement and
// network); axes carry units; a legend beside the plot area names the
// transports, marking cases whose repeats were bimodal. The output is
// deterministic: the same runs give byte-identical files.
package plot

import (
	"bytes"
	"errors"
	"fmt"
	"image/color"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/bench/report"
	"github.com/ipcbench/ipcbench/internal/units"
)

// ErrNoData is returned (wrapped) by Write when the runs hold nothing it
// can draw: no OK pingpong, stream or fanin results.
var ErrNoData = errors.New("nothing to plot")

// ErrNoRuns is returned (wrapped) by Write when it is given no run or a
// nil one.
var ErrNoRuns = errors.New("no runs to plot")

// Chart size: the plot area plus a legend column on its right.
const (
	chartWidth  = 9 * vg.Inch
	chartHeight = 5.5 * vg.Inch
	legendGap   = 12 // points between the plot area and the legend
	titleMargin = 12 // points kept free left and right of the title
	// fontSlack is how much wider than Liberation Sans, in which text is
	// measured, a viewer's substitute face may be: the legend column and
	// the title's lines are laid out with this much room.
	fontSlack = 1.25
)

// palette is the Okabe–Ito colour-blind-safe palette (yellow last: it is
// faint on white); series beyond it repeat the colours with dashed lines.
var palette = []color.Color{
	color.RGBA{0x00, 0x72, 0xb2, 0xff}, // blue
	color.RGBA{0xd5, 0x5e, 0x00, 0xff}, // vermillion
	color.RGBA{0x00, 0x9e, 0x73, 0xff}, // bluish green
	color.RGBA{0xcc, 0x79, 0xa7, 0xff}, // reddish purple
	color.RGBA{0xe6, 0x9f, 0x00, 0xff}, // orange
	color.RGBA{0x56, 0xb4, 0xe9, 0xff}, // sky blue
	color.RGBA{0x00, 0x00, 0x00, 0xff}, // black
	color.RGBA{0xf0, 0xe4, 0x42, 0xff}, // yellow
}

// seriesStyle returns the colour and dash pattern of style index i.
func seriesStyle(i int) (color.Color, []vg.Length) {
	return palette[i%len(palette)], plotutil.Dashes(i / len(palette))
}

// chart is one drawn chart: its file name and SVG bytes.
type chart struct {
	name string
	svg  []byte
}

// Write draws the charts of runs (see the package doc) into dir, creating
// it and its missing parents if needed, and returns the paths of the files
// written, in a fixed order. Files are made by bench.CreateOutput, like
// every output the user asks for: bench.OutputFileMode in directories of
// bench.OutputDirMode, never through a symbolic link. File names say what
// each chart shows:
// pingpong-p50-vs-size-<placement>.svg, pingpong-cdf-<size>-<placement>.svg,
// stream-mbps-vs-size-<placement>.svg, fanin-rate-vs-conns-<placement>.svg
// (fanin-rate-vs-conns-<size>-<placement>.svg, one per size, when the
// records hold fanin at more than one message size);
// with more than one run each name starts with "run<N>-<source>-". When a
// file of one of those names exists already, Write writes nothing and
// returns an error wrapping fs.ErrExist, unless replace is set: then
// existing regular files are replaced, each at once by its complete new
// chart (a symbolic link or a directory is still refused). It returns an error wrapping ErrNoRuns when runs is
// empty or holds nil, ErrNoData when no chart can be drawn, and file-system
// errors as they come.
func Write(dir string, replace bool, runs ...*bench.Records) ([]string, error) {
	if len(runs) == 0 {
		return nil, fmt.Errorf("plot: %w", ErrNoRuns)
	}
	for i, r := range runs {
		if r == nil {
			return nil, fmt.Errorf("plot: run %d is nil: %w", i, ErrNoRuns)
		}
	}
	var charts []chart
	for i, r := range runs {
		prefix := ""
		if len(runs) > 1 {
			prefix = fmt.Sprintf("run%d-%s-", i+1, fileSafe(strings.TrimSuffix(filepath.Base(r.Source), filepath.Ext(r.Source))))
		}
		cs, err := drawRun(r, prefix)
		if err != nil {
			return nil, err
		}
		charts = append(charts, cs...)
	}
	if len(charts) == 0 {
		return nil, fmt.Errorf("plot: %w: no OK pingpong, stream or fanin results", ErrNoData)
	}
	if !replace {
		// Refuse before writing anything (Create still refuses each name
		// that appears in between).
		for _, c := range charts {
			p := filepath.Join(dir, c.name)
			if _, err := os.Lstat(p); err == nil {
				return nil, fmt.Errorf("plot: %s: %w", p, fs.ErrExist)
			}
		}
	}
	made, err := bench.MakeOutputDirs(dir)
	if err != nil {
		return nil, fmt.Errorf("plot: %w", err)
	}
	paths := make([]string, 0, len(charts))
	for _, c := range charts {
		p := filepath.Join(dir, c.name)
		if err := writeFile(p, replace, c.svg); err != nil {
			bench.RemoveOutputDirs(made) // only while no chart is in them
			return paths, fmt.Errorf("plot: %w", err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}

// writeFile creates p through bench.CreateOutput and writes b to it.
func writeFile(p string, replace bool, b []byte) error {
	f, err := bench.CreateOutput(p, replace)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Abort()
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return f.Commit()
}

// series is one transport's points in one chart.
type series struct {
	label   string
	style   int // index into the palette, stable per transport label in a run
	x, y    []float64
	lo, hi  []float64 // 95% interval of each point (may be infinite)
	repLo   []float64 // smallest and largest repeat of each point
	repHi   []float64
	bimodal []string // x labels of bimodal points
}

// sortByX orders the points by x.
func (se *series) sortByX() {
	idx := make([]int, len(se.x))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return se.x[idx[a]] < se.x[idx[b]] })
	permute := func(v []float64) []float64 {
		out := make([]float64, len(v))
		for k, i := range idx {
			out[k] = v[i]
		}
		return out
	}
	se.x, se.y, se.lo, se.hi = permute(se.x), permute(se.y), permute(se.lo), permute(se.hi)
	se.repLo, se.repHi = permute(se.repLo), permute(se.repHi)
}

// drawRun draws every chart of one run.
func drawRun(r *bench.Records, prefix string) ([]chart, error) {
	sums := report.Summarize(r.Results)
	styles := map[string]int{}
	var placements []string
	seenPl := map[string]bool{}
	for _, s := range sums {
		if _, ok := styles[s.Case.TransportLabel()]; !ok {
			styles[s.Case.TransportLabel()] = len(styles)
		}
		if !seenPl[s.Case.Placement] {
			seenPl[s.Case.Placement] = true
			placements = append(placements, s.Case.Placement)
		}
	}
	var out []chart
	add := func(name string, p *plot.Plot, leg plot.Legend, err error) error {
		if err != nil {
			return err
		}
		if p == nil {
			return nil
		}
		svg, err := renderSVG(p, leg)
		if err != nil {
			return fmt.Errorf("plot: %s: %w", name, err)
		}
		out = append(out, chart{name: name, svg: svg})
		return nil
	}
	for _, pl := range placements {
		where := whereLine(&r.Header, pl)
		suffix := "-" + fileSafe(pl) + ".svg"
		p, leg, err := latencyVsSize(sums, styles, pl, where)
		if err := add(prefix+"pingpong-p50-vs-size"+suffix, p, leg, err); err != nil {
			return nil, err
		}
		for _, size := range sizesOf(sums, "pingpong", pl) {
			p, leg, err := latencyCDF(sums, styles, pl, size, where)
			if err := add(prefix+"pingpong-cdf-"+units.FormatSize(size)+suffix, p, leg, err); err != nil {
				return nil, err
			}
		}
		p, leg, err = throughputVsSize(sums, styles, pl, where)
		if err := add(prefix+"stream-mbps-vs-size"+suffix, p, leg, err); err != nil {
			return nil, err
		}
		faninSizes := sizesOf(sums, "fanin", pl)
		for _, size := range faninSizes {
			name := prefix + "fanin-rate-vs-conns" + suffix
			if len(faninSizes) > 1 {
				name = prefix + "fanin-rate-vs-conns-" + units.FormatSize(size) + suffix
			}
			p, leg, err := rateVsConns(sums, styles, pl, size, where)
			if err := add(name, p, leg, err); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

// whereLine says where a chart's data was measured.
func whereLine(h *bench.Header, placement string) string {
	s := "placement " + placement
	if h.Network != "" {
		s += " · network " + h.Network
	}
	if cpu := h.Machine["cpu_model"]; cpu != "" {
		s += " · " + cpu
	}
	if n := h.Machine["cores"]; n != "" {
		s += ", " + n + " cores"
	}
	return s
}

// sizesOf returns the message sizes of a workload at a placement with at
// least one OK case, in increasing order.
func sizesOf(sums []report.Summary, workload, placement string) []int {
	seen := map[int]bool{}
	var sizes []int
	for _, s := range sums {
		if s.Case.Workload == workload && s.Case.Placement == placement && s.OK > 0 && !seen[s.Case.Size] {
			seen[s.Case.Size] = true
			sizes = append(sizes, s.Case.Size)
		}
	}
	sort.Ints(sizes)
	return sizes
}

// collect groups the summaries of one workload and placement into series
// per transport label (in style order), with x from xOf and the value,
// interval and per-repeat values from val. Points without values are
// skipped. It reports whether every point has a bounded interval.
func collect(sums []report.Summary, styles map[string]int, workload, placement string,
	xOf func(*report.Summary) float64, xLabel func(*report.Summary) string,
	val func(*report.Summary) (c, lo, hi float64, reps []float64)) ([]*series, bool) {
	byLabel := map[string]*series{}
	var order []*series
	bounded := true
	for i := range sums {
		s := &sums[i]
		if s.Case.Workload != workload || s.Case.Placement != placement {
			continue
		}
		c, lo, hi, reps := val(s)
		if len(reps) == 0 || c <= 0 || xOf(s) <= 0 { // a log scale has no place for 0 (a size 0 from foreign records)
			continue
		}
		label := s.Case.TransportLabel()
		se, ok := byLabel[label]
		if !ok {
			se = &series{label: label, style: styles[label]}
			byLabel[label] = se
			order = append(order, se)
		}
		if !finite(lo) || !finite(hi) {
			bounded = false
		}
		se.x = append(se.x, xOf(s))
		se.y = append(se.y, c)
		se.lo = append(se.lo, lo)
		se.hi = append(se.hi, hi)
		if s.Bimodal {
			se.bimodal = append(se.bimodal, xLabel(s))
		}
		// Keep the repeat range too: used when intervals are unbounded.
		mn, mx := reps[0], reps[0]
		for _, v := range reps {
			mn, mx = math.Min(mn, v), math.Max(mx, v)
		}
		se.repLo = append(se.repLo, mn)
		se.repHi = append(se.repHi, mx)
	}
	for _, se := range order {
		se.sortByX()
	}
	sort.SliceStable(order, func(i, j int) bool { return order[i].style < order[j].style })
	return order, bounded
}

func finite(v float64) bool { return !math.IsInf(v, 0) && !math.IsNaN(v) }

// barsNote says what error bars show.
func barsNote(bounded bool) string {
	if bounded {
		return "bars: 95% confidence interval of the median"
	}
	return "bars: range of the repeats (too few repeats for a 95% interval)"
}

// newPlot returns a plot with ipcbench's fonts and title.
func newPlot(title string) *plot.Plot {
	p := plot.New()
	sans := font.Font{Typeface: "Liberation", Variant: "Sans"}
	p.Title.Text = title
	p.Title.TextStyle.Font = font.From(sans, 12)
	p.Title.Padding = vg.Points(8)
	for _, a := range []*plot.Axis{&p.X, &p.Y} {
		a.Label.TextStyle.Font = font.From(sans, 11)
		a.Tick.Label.Font = font.From(sans, 9)
	}
	p.X.Padding, p.Y.Padding = 0, 0
	return p
}

// newLegend returns a legend in ipcbench's font.
func newLegend() plot.Legend {
	l := plot.NewLegend()
	l.TextStyle.Font = font.From(font.Font{Typeface: "Liberation", Variant: "Sans"}, 10)
	l.Top, l.Left = true, true
	l.Padding = vg.Points(3)
	return l
}

// addSeries draws lines, points and error bars for every series and adds
// legend entries. useCI selects the confidence interval (else the repeat
// range) for the bars.
func addSeries(p *plot.Plot, leg *plot.Legend, ss []*series, bars, useCI bool, legendNote func(*series) string) error {
	for _, se := range ss {
		pts := make(plotter.XYs, len(se.x))
		for i := range se.x {
			pts[i] = plotter.XY{X: se.x[i], Y: se.y[i]}
		}
		col, dashes := seriesStyle(se.style)
		line, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		line.Color, line.Dashes = col, dashes
		line.Width = vg.Points(1.5)
		sc, err := plotter.NewScatter(pts)
		if err != nil {
			return err
		}
		sc.Color = col
		sc.Shape = plotutil.Shape(se.style)
		sc.Radius = vg.Points(3)
		p.Add(line, sc)
		if bars {
			eb := errPoints{XYs: pts, YErrors: make(plotter.YErrors, len(pts))}
			for i := range pts {
				lo, hi := se.lo[i], se.hi[i]
				if !useCI {
					lo, hi = se.repLo[i], se.repHi[i]
				}
				eb.YErrors[i].Low = math.Max(0, se.y[i]-lo)
				eb.YErrors[i].High = math.Max(0, hi-se.y[i])
			}
			bs, err := plotter.NewYErrorBars(eb)
			if err != nil {
				return err
			}
			bs.Color = col
			bs.Width = vg.Points(1)
			p.Add(bs)
		}
		label := se.label
		if note := legendNote(se); note != "" {
			label += " " + note
		}
		leg.Add(label, line, sc)
	}
	return nil
}

// errPoints joins points and their error bars for plotter.NewYErrorBars.
type errPoints struct {
	plotter.XYs
	plotter.YErrors
}

// bimodalNote marks a series with bimodal points in the legend.
func bimodalNote(se *series) string {
	if len(se.bimodal) == 0 {
		return ""
	}
	return "(bimodal at " + strings.Join(se.bimodal, ", ") + ")"
}

// renderSVG draws p with leg in a column on its right and returns the
// SVG. gonum/plot panics on some impossible inputs (a non-positive value
// on a log axis); the callers filter those, and a panic that still happens
// is returned as an error.
func renderSVG(p *plot.Plot, leg plot.Legend) (out []byte, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, fmt.Errorf("drawing failed: %v", r)
		}
	}()
	c := vgsvg.New(chartWidth, chartHeight)
	dc := draw.New(c)
	// The title spans the whole chart; the plot area and the legend share
	// the space below it.
	title, sty := p.Title.Text, p.Title.TextStyle
	p.Title.Text = ""
	top := vg.Points(6)
	if title != "" {
		title = fitLines(title, chartWidth-2*vg.Points(titleMargin), func(l string) vg.Length { return sty.Width(l) * fontSlack })
		dc.FillText(sty, vg.Point{X: chartWidth / 2, Y: chartHeight - top}, title)
		top += sty.Height(title) + p.Title.Padding
	}
	// The legend's width is measured with Liberation Sans; viewers that
	// substitute a wider face need the slack.
	lr := leg.Rectangle(dc)
	lw := (lr.Max.X-lr.Min.X)*fontSlack + vg.Points(legendGap)
	p.Draw(draw.Crop(dc, 0, -lw, 0, -top))
	leg.Draw(draw.Crop(dc, chartWidth-lw+vg.Points(legendGap/2), 0, 0, -top-vg.Points(8)))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, err
	}
	// Viewers without Liberation Sans should still use a sans-serif face
	// of similar metrics rather than their default serif.
	return bytes.ReplaceAll(buf.Bytes(), []byte("font-family:Liberation Sans;"),
		[]byte("font-family:Liberation Sans,Arial,Helvetica,sans-serif;")), nil
}

// fitLines breaks every line of text that is wider than width (as measured
// by width) into lines that fit: first between the " · " separated parts
// of the line, then between words. A single word wider than width stays
// whole.
func fitLines(text string, width vg.Length, measure func(string) vg.Length) string {
	fits := func(l string) bool { return measure(l) <= width }
	var out []string
	for _, line := range strings.Split(text, "\n") {
		for _, l := range pack(strings.Split(line, " · "), " · ", fits) {
			if fits(l) {
				out = append(out, l)
				continue
			}
			out = append(out, pack(strings.Fields(l), " ", fits)...)
		}
	}
	return strings.Join(out, "\n")
}

// pack joins parts with sep into as few lines as fit, in order.
func pack(parts []string, sep string, fits func(string) bool) []string {
	var lines []string
	cur := ""
	for i, p := range parts {
		switch {
		case i == 0:
			cur = p
		case fits(cur + sep + p):
			cur += sep + p
		default:
			lines = append(lines, cur)
			cur = p
		}
	}
	return append(lines, cur)
}

// fileSafe maps s to a file-name-friendly string.
func fileSafe(s string) string {
	if s == "" {
		return "unknown"
	}
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '.', r == '_', r == '=':
			return r
		}
		return '_'
	}, s)
}
