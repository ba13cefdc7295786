package report

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/internal/units"
)

// ErrUnknownFormat is wrapped by Render's error for a format not in
// Formats().
var ErrUnknownFormat = errors.New("unknown report format")

// ErrNoRuns is returned (wrapped) by Render and Compare when a run is
// missing.
var ErrNoRuns = errors.New("no runs to report")

// ErrNothingCompared is returned by Compare, after it has written what it
// found, when no case has an OK repeat in both runs: two runs of different
// settings, or of cases that all failed on one side.
var ErrNothingCompared = errors.New("no case has OK repeats in both runs")

// Formats returns the names Render accepts, the default first:
//
//   - "table": aligned plain text for a terminal;
//   - "markdown": the same content as GitHub tables, with the environment
//     as a table;
//   - "csv": one row per case with a header row, raw numbers in
//     machine-friendly units (ns, msg/s, MB/s), empty cells for values a
//     case does not have;
//   - "json": summaries, rankings and localhost-shortcut lines per run;
//   - "benchfmt": the Go benchmark format (see the benchfmt section of
//     the package doc), readable by benchstat.
func Formats() []string {
	return []string{"table", "markdown", "csv", "json", "benchfmt"}
}

// Render writes a report of runs in format ("" means "table"). Each run is
// reported on its own — transports are ranked within one run, never across
// runs, since numbers from different sittings drift — one after the other
// (csv and json hold every run in one document). It returns an error
// wrapping ErrUnknownFormat for an unknown format, ErrNoRuns when runs is
// empty or holds nil, and write errors as they come.
func Render(w io.Writer, format string, runs ...*bench.Records) error {
	if len(runs) == 0 {
		return fmt.Errorf("report: render: %w", ErrNoRuns)
	}
	for i, r := range runs {
		if r == nil {
			return fmt.Errorf("report: render: run %d is nil: %w", i, ErrNoRuns)
		}
	}
	if !slices.Contains(Formats(), format) && format != "" {
		return fmt.Errorf("report: %w %q (known: %s)", ErrUnknownFormat, format, strings.Join(Formats(), ", "))
	}
	as := make([]*analysis, len(runs))
	for i, r := range runs {
		as[i] = analyze(r)
	}
	return render(w, format, as)
}

// render writes analysed runs in format.
func render(w io.Writer, format string, as []*analysis) error {
	var err error
	switch format {
	case "", "table":
		err = renderText(w, as)
	case "markdown":
		err = renderMarkdown(w, as)
	case "csv":
		err = renderCSV(w, as)
	case "json":
		err = renderJSON(w, as)
	case "benchfmt":
		err = renderBenchfmt(w, as)
	default:
		return fmt.Errorf("report: %w %q (known: %s)", ErrUnknownFormat, format, strings.Join(Formats(), ", "))
	}
	if err != nil {
		return fmt.Errorf("report: render %s: %w", format, err)
	}
	return nil
}

// analysis is everything derived from one run.
type analysis struct {
	run       *bench.Records
	summaries []Summary
	rankings  []Ranking
	shortcut  []ShortcutLine
	poller    []PollerLine
	sources   []SourceLine
	latency   []repeatLatency // per result, indexed like run.Results
}

func analyze(r *bench.Records) *analysis {
	s, lat := summarizeResults(r.Results)
	return &analysis{run: r, summaries: s, rankings: Rank(s), shortcut: LocalhostShortcut(s), poller: NetpollerCost(s), sources: PeerSourceCost(s), latency: lat}
}

// legend explains the columns of the table and markdown formats.
const legend = "Latency is round-trip time, measured in the bench process with the monotonic clock. " +
	"p50 is the median of the repeats' p50s with its 95% confidence interval (±, computed as benchstat does; " +
	"±∞ means too few repeats for a bounded interval, 6 are needed); p90, p99, p99.9, max and mean cover every " +
	"round trip of the OK repeats together (a repeat that timed only one round trip in 16, sample_every, counts each of them 16 times; " +
	"in rate rankings, p99 is the median of the repeats' p99s with its interval). " +
	"msg/s and MB/s (10^6 payload bytes per second, one direction) are medians of the repeats. " +
	"CPU/msg is the median of the repeats' user+system CPU time of both processes per message. " +
	"CPUs: where the two processes ran in the OK repeats: same-cpu×n counts repeats in which both mostly ran on one CPU, " +
	"cross-cpu×n repeats in which they mostly ran on different CPUs (sampled during the measured interval). " +
	"vs best: how many times worse than the best row; ~ means not significantly different from it " +
	"(Mann-Whitney U test on the repeats, α=0.05). bimodal: the repeats fell into two groups more than 2× apart " +
	"(a group may be one repeat); the groups are listed under the table, beside the median, which describes only the larger group, or neither."

// rankingTitle is the heading of a ranking block.
func rankingTitle(rk *Ranking) string {
	s := rk.Workload + " " + units.FormatSize(rk.Size)
	if rk.Conns == 1 {
		s += ", 1 conn"
	} else {
		s += fmt.Sprintf(", %d conns", rk.Conns)
	}
	if rk.Rate > 0 {
		s += fmt.Sprintf(", target %d msg/s", rk.Rate)
	}
	pl := rk.Placement
	if pl == "" {
		pl = "unknown"
	}
	return s + ", placement " + pl
}

// rankingSubtitle says what a ranking block is ordered by.
func rankingSubtitle(rk *Ranking) string {
	dir := "higher is better"
	if rk.LowerIsBetter {
		dir = "lower is better"
	}
	return "ranked by " + rk.Metric + " (" + dir + ")"
}

// rankingGrid lays out one ranking block, and returns the notes to print
// under it (bimodal cases, problems met while summarising).
func rankingGrid(rk *Ranking) (*grid, []string) {
	latency, achieved := false, false
	for i := range rk.Rows {
		latency = latency || rk.Rows[i].Summary.HasLatency()
		achieved = achieved || rk.Rows[i].Summary.Achieved > 0
	}
	g := &grid{}
	col := func(name, group string, right bool) { g.cols = append(g.cols, gridCol{name, group, right}) }
	col("#", "", true)
	col("transport", "", false)
	col("ok", "", true)
	const rt = "round trip"
	if latency {
		col("p50", rt, true)
		col("±", rt, false)
		col("p90", rt, true)
		col("p99", rt, true)
		if rk.Metric == MetricP99 {
			col("±", rt, false)
		}
		col("p99.9", rt, true)
		col("max", rt, true)
		col("mean", rt, true)
	}
	col("msg/s", "", true)
	if rk.Metric == MetricRate {
		col("±", "", false)
	}
	col("MB/s", "", true)
	if rk.Metric == MetricMBps {
		col("±", "", false)
	}
	if achieved {
		col("achieved msg/s", "", true)
	}
	col("CPU/msg", "", true)
	col("vs best", "", true)
	col("CPUs", "", false)
	col("notes", "", false)

	var notes []string
	var few []fewRow // ranked rows with fewer than MinRepeats OK repeats behind their statistics
	rank := 0
	for i := range rk.Rows {
		row := &rk.Rows[i]
		s := &row.Summary
		if n := s.Samples(); row.Ranked && n < MinRepeats {
			few = append(few, fewRow{s.Case.TransportLabel(), n})
		}
		var cells []string
		num := "-"
		if row.Ranked {
			rank++
			num = strconv.Itoa(rank)
		}
		cells = append(cells, num, s.Case.TransportLabel(), fmt.Sprintf("%d/%d", s.OK, s.Repeats))
		ns := func(v float64, ok bool) string {
			if !ok {
				return "-"
			}
			return FormatNS(v)
		}
		if latency {
			has := s.HasLatency()
			cells = append(cells, ns(s.P50Median, has), ciCell(s.P50Median, s.P50Lo, s.P50Hi, has), ns(float64(s.P90), has))
			if rk.Metric == MetricP99 {
				cells = append(cells, ns(s.P99Median, has), ciCell(s.P99Median, s.P99Lo, s.P99Hi, has))
			} else {
				cells = append(cells, ns(float64(s.P99), has))
			}
			cells = append(cells, ns(float64(s.P999), has), ns(float64(s.Max), has), ns(s.Mean, has))
		}
		hasRate := len(s.RepeatMsgRate) > 0
		cells = append(cells, rateCell(FormatRate, s.MsgRate, hasRate))
		if rk.Metric == MetricRate {
			cells = append(cells, ciCell(s.MsgRate, s.MsgRateLo, s.MsgRateHi, hasRate))
		}
		cells = append(cells, rateCell(FormatMBps, s.MBps, hasRate && s.MBps > 0))
		if rk.Metric == MetricMBps {
			cells = append(cells, ciCell(s.MBps, s.MBpsLo, s.MBpsHi, hasRate))
		}
		if achieved {
			cells = append(cells, rateCell(FormatRate, s.Achieved, s.Achieved > 0))
		}
		cells = append(cells, ns(s.CPUPerMsgNS, len(s.RepeatCPUPerMsg) > 0))
		vs := "-"
		switch {
		case !row.Ranked:
		case row.Noise:
			vs = "~"
		default:
			vs = FormatRatio(row.Ratio)
		}
		cells = append(cells, vs, compactCPUs(s.Placement), rowNote(s))
		g.add(cells...)

		if s.Bimodal {
			notes = append(notes, modesNote(s))
		}
		if len(s.LinePhases) == 2 {
			notes = append(notes, linePhasesNote(s))
		}
		for _, n := range s.Notes {
			notes = append(notes, s.Case.TransportLabel()+": "+n)
		}
	}
	if len(few) > 0 {
		notes = append(notes, fewRepeatsNote(few))
	}
	return g, notes
}

// fewRow is a ranked row with fewer than MinRepeats OK repeats behind its
// statistics: its transport label and that count.
type fewRow struct {
	label string
	n     int
}

// fewRepeatsNote is the note under a ranking whose rows few have too few
// repeats: "pipe, unix: only 2 OK repeats, ..." when they have as many,
// else each with its own count ("pipe (5), unix (1): fewer than 6 OK
// repeats: ...").
func fewRepeatsNote(few []fewRow) string {
	same := true
	labels := make([]string, len(few))
	for i, f := range few {
		labels[i] = f.label
		same = same && f.n == few[0].n
	}
	if same {
		return strings.Join(labels, ", ") + ": " + fewRepeatsWarning(few[0].n)
	}
	fewest := few[0].n
	for i, f := range few {
		labels[i] = fmt.Sprintf("%s (%d)", f.label, f.n)
		fewest = min(fewest, f.n)
	}
	return fmt.Sprintf("%s: fewer than %d OK repeats: %s", strings.Join(labels, ", "), MinRepeats, fewRepeatsMeaning(fewest))
}

func ciCell(c, lo, hi float64, ok bool) string {
	if !ok {
		return ""
	}
	return FormatCI(c, lo, hi)
}

func rateCell(f func(float64) string, v float64, ok bool) string {
	if !ok {
		return "-"
	}
	return f(v)
}

// compactCPUs shortens Summary.Placement for a table cell:
// "bench 0,1 / peer 1" becomes "0,1/1".
func compactCPUs(p string) string {
	if p == "" {
		return "-"
	}
	return strings.NewReplacer("bench ", "", " / peer ", "/").Replace(p)
}

// rowNote is the notes cell of a ranking row: status problems and the
// bimodal flag.
func rowNote(s *Summary) string {
	var parts []string
	switch {
	case s.OK == 0 && s.Skipped > 0 && s.Failed == 0:
		parts = append(parts, "skipped: "+s.Reason)
	case s.OK == 0:
		parts = append(parts, "failed: "+s.Reason)
	case s.Failed > 0 || s.Skipped > 0:
		parts = append(parts, fmt.Sprintf("%d of %d repeats not ok: %s", s.Failed+s.Skipped, s.Repeats, s.Reason))
	}
	if s.Bimodal {
		parts = append(parts, "bimodal (see below)")
	}
	return oneLine(strings.Join(parts, "; "))
}

// modesNote describes the groups of a bimodal case.
func modesNote(s *Summary) string {
	m := metricRate
	if s.HasLatency() {
		m = metricP50
	}
	var groups []string
	for _, md := range s.Modes {
		word := "repeats"
		if md.Repeats == 1 {
			word = "repeat"
		}
		g := fmt.Sprintf("%d %s at %s", md.Repeats, word, formatMetric(m, md.Median))
		if !m.isTime {
			g += " " + m.name
		}
		var where []string
		if md.Placement != "" {
			where = append(where, md.Placement)
		}
		if md.LineRTT > 0 {
			where = append(where, "cache line round trip "+FormatNS(md.LineRTT))
		}
		if len(where) > 0 {
			g += " (" + strings.Join(where, "; ") + ")"
		}
		groups = append(groups, g)
	}
	median, total := "The median above describes neither", 0
	for _, md := range s.Modes {
		total += md.Repeats
	}
	for _, md := range s.Modes {
		if 2*md.Repeats > total {
			median = fmt.Sprintf("The median above describes the larger group (%d repeats) alone", md.Repeats)
		}
	}
	return fmt.Sprintf("%s is bimodal: its repeats' %s fall into two groups: %s. "+
		"%s; pin the processes (-placement) or run longer.",
		s.Case.TransportLabel(), s.ModeMetric(), strings.Join(groups, " and "), median)
}

// linePhasesNote describes the two groups of a case whose repeats saw
// the machine move a cache line between CPUs at two speeds.
func linePhasesNote(s *Summary) string {
	m := metricByName(s.PhaseMetric)
	var groups []string
	for _, ph := range s.LinePhases {
		word := "repeats"
		if ph.Repeats == 1 {
			word = "repeat"
		}
		span := FormatNS(ph.LineLo)
		if ph.LineHi != ph.LineLo {
			span += "–" + FormatNS(ph.LineHi)
		}
		groups = append(groups, fmt.Sprintf("at %s, %d %s gave %s %s", span, ph.Repeats, word, formatMetric(m, ph.Median), m.name))
	}
	mixed := ""
	switch s.LineMixed {
	case 0:
	case 1:
		mixed = "; 1 repeat whose speed changed while it ran left out"
	default:
		mixed = fmt.Sprintf("; %d repeats whose speed changed while they ran left out", s.LineMixed)
	}
	return fmt.Sprintf("%s: the cache line round trip between the CPUs (line_rtt_ns) took two speeds during its repeats: %s (medians%s). "+
		"Compare transports within one speed.", s.Case.TransportLabel(), strings.Join(groups, "; "), mixed)
}

// transportOptions merges the options in effect per transport label, in
// order of first appearance.
func transportOptions(s []Summary) (labels []string, opts map[string]string) {
	merged := map[string]map[string][]string{}
	for i := range s {
		l := s[i].Case.TransportLabel()
		m, ok := merged[l]
		if !ok {
			m = map[string][]string{}
			merged[l] = m
			labels = append(labels, l)
		}
		for k, v := range s[i].Options {
			for _, x := range strings.Split(v, "|") {
				m[k] = appendDistinct(m[k], x)
			}
		}
	}
	opts = map[string]string{}
	for l, m := range merged {
		keys := sortedKeys(m)
		parts := make([]string, len(keys))
		for i, k := range keys {
			parts[i] = k + "=" + strings.Join(m[k], "|")
		}
		opts[l] = strings.Join(parts, ", ")
	}
	return labels, opts
}

// envLineFields is how many environment fields the table format puts on
// its "environment:" line; the rest get a line each.
const envLineFields = 8

// envField is one line of the environment description.
type envField struct{ name, value string }

// machineKeys are the header machine facts shown by name, in order; others
// are listed together under "machine".
var machineKeys = []string{"kernel", "cpu_model", "cores", "gomaxprocs", "go_version", "goos", "goarch", "clock_read_ns"}

// environment describes the run's environment for people.
func environment(h *bench.Header) []envField {
	m := h.Machine
	get := func(k string) string {
		if v := strings.TrimSpace(m[k]); v != "" {
			return oneLine(v)
		}
		return "unknown"
	}
	goLine := get("go_version")
	if m["goos"] != "" || m["goarch"] != "" {
		goLine += " " + get("goos") + "/" + get("goarch")
	}
	network := h.Network
	if network == "" {
		network = "unknown"
	}
	if h.NetworkNote != "" {
		network += " (" + oneLine(h.NetworkNote) + ")"
	}
	clock := "unknown"
	if ns, err := strconv.ParseFloat(m["clock_read_ns"], 64); err == nil {
		clock = FormatNS(ns)
	}
	placement := h.Options["placements"]
	if placement == "" {
		placement = h.Options["placement"]
	}
	if placement == "" {
		placement = "unknown"
	}
	f := []envField{
		{"kernel", get("kernel")},
		{"CPU", get("cpu_model")},
		{"cores", get("cores")},
		{"GOMAXPROCS", get("gomaxprocs")},
		{"Go", goLine},
		{"network", network},
		{"placement", placement},
		{"clock-read cost", clock},
	}
	if h.Peer != "" {
		// A peer this run connected to: where, and what it runs on.
		peer := oneLine(h.Peer)
		var about []string
		for _, v := range []string{h.PeerTool, h.PeerMachine["hostname"], h.PeerMachine["kernel"], h.PeerMachine["cpu_model"]} {
			if v = strings.TrimSpace(v); v != "" {
				about = append(about, oneLine(v))
			}
		}
		if len(about) > 0 {
			peer += " (" + strings.Join(about, "; ") + ")"
		}
		f = append(f, envField{"peer", peer})
	}
	var opts []string
	for _, k := range sortedKeys(h.Options) {
		if k == "placements" || k == "placement" || unusedBy(k, h) {
			continue
		}
		opts = append(opts, k+"="+oneLine(h.Options[k]))
	}
	if len(opts) > 0 {
		f = append(f, envField{"options", strings.Join(opts, "; ")})
	}
	var other []string
	for _, k := range sortedKeys(m) {
		known := false
		for _, mk := range machineKeys {
			known = known || k == mk
		}
		if !known && strings.TrimSpace(m[k]) != "" {
			other = append(other, k+"="+oneLine(m[k]))
		}
	}
	if len(other) > 0 {
		f = append(f, envField{"machine", strings.Join(other, "; ")})
	}
	if h.Tool != "" {
		f = append(f, envField{"tool", oneLine(h.Tool)})
	}
	if !h.Time.IsZero() {
		f = append(f, envField{"time", h.Time.UTC().Format(time.RFC3339)})
	}
	if len(h.Command) > 0 {
		f = append(f, envField{"command", oneLine(strings.Join(h.Command, " "))})
	}
	return f
}

// renderText writes the "table" format.
func renderText(w io.Writer, as []*analysis) error {
	var b strings.Builder
	for i, a := range as {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "raw records: %s\n", a.run.Source)
		if len(a.rankings) == 0 {
			b.WriteString("\nno results\n")
		}
		for j := range a.rankings {
			rk := &a.rankings[j]
			fmt.Fprintf(&b, "\n%s — %s\n", rankingTitle(rk), rankingSubtitle(rk))
			g, notes := rankingGrid(rk)
			if err := g.text(&b, "  "); err != nil {
				return err
			}
			for _, n := range notes {
				b.WriteString("  ! " + n + "\n")
			}
		}
		if len(a.shortcut) > 0 {
			b.WriteString("\n")
			for _, l := range a.shortcut {
				b.WriteString(l.String() + "\n")
			}
			b.WriteString("(tcp-public dials an address of this host; Linux delivers that through the loopback device too, so ~ is expected.)\n")
		}
		if len(a.poller) > 0 {
			b.WriteString("\n")
			for _, l := range a.poller {
				b.WriteString(l.String() + "\n")
			}
			b.WriteString("(io=raw: system calls in the calling thread instead of Go's netpoller; the ratio is what the poller costs here.)\n")
		}
		if len(a.sources) > 0 {
			b.WriteString("\n")
			for _, l := range a.sources {
				b.WriteString(l.String() + "\n")
			}
			b.WriteString("(" + sourcesNote + ")\n")
		}
		labels, opts := transportOptions(a.summaries)
		if len(labels) > 0 {
			b.WriteString("\ntransport options in effect:\n")
			for _, l := range labels {
				o := opts[l]
				if o == "" {
					o = "(none reported)"
				}
				fmt.Fprintf(&b, "  %s: %s\n", l, o)
			}
		}
		b.WriteString("\nenvironment:")
		for j, f := range environment(&a.run.Header) {
			switch {
			case j < envLineFields && j > 0:
				fmt.Fprintf(&b, "; %s %s", f.name, f.value)
			case j < envLineFields:
				fmt.Fprintf(&b, " %s %s", f.name, f.value)
			default:
				fmt.Fprintf(&b, "\n%s: %s", f.name, f.value)
			}
		}
		b.WriteString("\n\n" + wrap(legend, 100) + "\n")
		if ans := newAnswer(a); ans != nil { // last, so that it stays on screen after a run
			if err := ans.text(&b); err != nil {
				return err
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// renderMarkdown writes the "markdown" format.
func renderMarkdown(w io.Writer, as []*analysis) error {
	var b strings.Builder
	for i, a := range as {
		if i > 0 {
			b.WriteString("\n")
		}
		fmt.Fprintf(&b, "# ipcbench results: %s\n", mdEscape(a.run.Source))
		if len(a.rankings) == 0 {
			b.WriteString("\nNo results.\n")
		}
		if ans := newAnswer(a); ans != nil { // first: a page is read from the top
			if err := ans.markdown(&b); err != nil {
				return err
			}
		}
		for j := range a.rankings {
			rk := &a.rankings[j]
			fmt.Fprintf(&b, "\n## %s\n\n%s.\n\n", rankingTitle(rk), capitalize(rankingSubtitle(rk)))
			g, notes := rankingGrid(rk)
			if err := g.markdown(&b); err != nil {
				return err
			}
			if len(notes) > 0 {
				b.WriteString("\n")
				for _, n := range notes {
					b.WriteString("- **Note:** " + mdEscape(n) + "\n")
				}
			}
		}
		if len(a.shortcut) > 0 {
			b.WriteString("\n## Localhost shortcut\n\n")
			for _, l := range a.shortcut {
				b.WriteString("- " + mdEscape(strings.TrimPrefix(l.String(), "localhost shortcut: ")) + "\n")
			}
			b.WriteString("\ntcp-public dials an address of this host; Linux delivers that through the loopback device too, so ~ is expected.\n")
		}
		if len(a.poller) > 0 {
			b.WriteString("\n## What Go's netpoller costs\n\n")
			for _, l := range a.poller {
				b.WriteString("- " + mdEscape(strings.TrimPrefix(l.String(), "netpoller cost: ")) + "\n")
			}
			b.WriteString("\nio=raw moves bytes with system calls in the calling thread instead of Go's netpoller; the ratio is what the poller costs on this machine.\n")
		}
		if len(a.sources) > 0 {
			b.WriteString("\n## What the peer's source costs\n\n")
			for _, l := range a.sources {
				b.WriteString("- " + mdEscape(strings.TrimPrefix(l.String(), "peer source: ")) + "\n")
			}
			b.WriteString("\n" + sourcesNote + "\n")
		}
		labels, opts := transportOptions(a.summaries)
		if len(labels) > 0 {
			b.WriteString("\n## Transport options in effect\n\n")
			g := &grid{cols: []gridCol{{name: "transport"}, {name: "options"}}}
			for _, l := range labels {
				g.add(l, opts[l])
			}
			if err := g.markdown(&b); err != nil {
				return err
			}
		}
		b.WriteString("\n## Environment\n\n")
		g := &grid{cols: []gridCol{{name: "what"}, {name: "value"}}}
		for _, f := range environment(&a.run.Header) {
			g.add(f.name, f.value)
		}
		if err := g.markdown(&b); err != nil {
			return err
		}
		b.WriteString("\n" + legend + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// wrap breaks text into lines of at most width runes at spaces.
func wrap(text string, width int) string {
	var lines []string
	line := ""
	for _, word := range strings.Fields(text) {
		if line != "" && len([]rune(line))+1+len([]rune(word)) > width {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += word
	}
	if line != "" {
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

// sortedKeys returns the keys of m in increasing order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
