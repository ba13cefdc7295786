package report

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/internal/units"
)

// MinRepeats is the fewest OK repeats per case for which a report's
// statistics mean what they say: with fewer, the 95% confidence interval of
// a median is unbounded (±∞), as benchstat's is, and the Mann–Whitney U
// test can call only large, consistent differences significant (3 repeats
// against 3 never: the smallest p they can give is 0.1; 4 against 4 only
// when every repeat of one beats every repeat of the other), so "~" may
// say "too few repeats to tell" rather than "the same".
const MinRepeats = 6

// answerMaxTied is how many transports an answer cell names; more tied ones
// are counted ("+3 more").
const answerMaxTied = 3

// answerSetting is one row of the answer: a workload at one size,
// connection count and rate, across placements.
type answerSetting struct {
	workload          string
	size, conns, rate int
	byPlacement       map[string]*Ranking
}

func (s *answerSetting) label() string {
	return settingLabel(s.workload, s.size, s.conns, s.rate, "")
}

// answer is the answer to "which transport is fastest here?" for one
// analysed run, in a few lines meant to be read first: the fastest
// transport of every setting with those not significantly different from
// it, a column per placement; the localhost-shortcut and netpoller
// verdicts; and where placement or the number of connections changed which
// transport is fastest.
type answer struct {
	title    string
	warning  string // set when some case has fewer than MinRepeats OK repeats
	grid     *grid
	verdicts []string
}

// newAnswer builds the answer of a; nil for a run with no rankings.
func newAnswer(a *analysis) *answer {
	if len(a.rankings) == 0 {
		return nil
	}
	var placements []string
	var settings []*answerSetting
	index := map[string]*answerSetting{}
	for i := range a.rankings {
		rk := &a.rankings[i]
		if !slices.Contains(placements, rk.Placement) {
			placements = append(placements, rk.Placement)
		}
		key := fmt.Sprint(rk.Workload, "/", rk.Size, "/", rk.Conns, "/", rk.Rate)
		s, ok := index[key]
		if !ok {
			s = &answerSetting{workload: rk.Workload, size: rk.Size, conns: rk.Conns, rate: rk.Rate, byPlacement: map[string]*Ranking{}}
			index[key] = s
			settings = append(settings, s)
		}
		s.byPlacement[rk.Placement] = rk
	}

	ans := &answer{title: "the fastest transport per setting, ~ the others not significantly different from it (α=0.05)", grid: &grid{}}
	if len(placements) == 1 {
		ans.title += ", placement " + placementName(placements[0])
	}
	if n := fewestRepeats(a.summaries); n < MinRepeats {
		ans.warning = "some cases: " + fewRepeatsWarning(n)
	}
	g := ans.grid
	g.cols = append(g.cols, gridCol{name: "setting"})
	for _, p := range placements {
		group := ""
		if len(placements) > 1 {
			group = placementName(p)
		}
		g.cols = append(g.cols, gridCol{name: "fastest", group: group}, gridCol{name: "median", group: group, right: true})
	}
	for _, s := range settings {
		cells := []string{s.label()}
		for _, p := range placements {
			name, value := answerCell(s.byPlacement[p])
			cells = append(cells, name, value)
		}
		g.add(cells...)
	}
	for _, l := range []string{shortcutVerdict(a.shortcut), pollerVerdict(a.poller)} {
		if l != "" {
			ans.verdicts = append(ans.verdicts, l)
		}
	}
	if len(placements) > 1 {
		ans.verdicts = append(ans.verdicts, placementVerdict(settings, placements))
	}
	if l := connsVerdict(a.rankings); l != "" {
		ans.verdicts = append(ans.verdicts, l)
	}
	if l := lineVerdict(a.run.Results); l != "" {
		ans.verdicts = append(ans.verdicts, l)
	}
	return ans
}

// lineVerdict says in one line how fast the machine moved a cache line
// between CPUs while the run's OK repeats were measured (line_rtt_ns): per
// pair of CPUs probed, the range, or the two speeds when they split more
// than BimodalRatio apart (a repeat whose own two probes were that far
// apart counts for neither). Pairs are kept apart: two pairs of CPUs can
// be as far apart as two speeds. It returns "" when no repeat recorded
// one.
func lineVerdict(results []bench.Result) string {
	type pair struct {
		lines []float64
		mixed int
	}
	var order []string
	pairs := map[string]*pair{}
	for i := range results {
		r := &results[i]
		if r.Status != bench.StatusOK || r.LineRTTCPUs == "" {
			continue
		}
		p := pairs[r.LineRTTCPUs]
		if p == nil {
			p = &pair{}
			pairs[r.LineRTTCPUs] = p
			order = append(order, r.LineRTTCPUs)
		}
		if lineMixed(r) {
			p.mixed++
		} else if l := lineRTT(r); l > 0 {
			p.lines = append(p.lines, l)
		}
	}
	var parts []string
	split := false
	for _, cpus := range order {
		p := pairs[cpus]
		if len(p.lines) == 0 {
			continue
		}
		who := ""
		if len(order) > 1 {
			who = "between CPUs " + cpus + ", "
		}
		v, two := lineSpeeds(p.lines, p.mixed)
		parts = append(parts, who+v)
		split = split || two
	}
	if len(parts) == 0 {
		return ""
	}
	l := "cache line round trip between CPUs: " + parts[0]
	if len(order) > 1 {
		l = "cache line round trip: " + strings.Join(parts, "; ")
	}
	if split {
		return l + "; shared memory follows it: see the notes under the rankings"
	}
	return l + " (line_rtt_ns)"
}

// lineSpeeds describes one pair of CPUs' line round trips (ns, at least
// one): "850ns–1.00µs throughout", or the two speeds with how many repeats
// saw each, and whether they split.
func lineSpeeds(lines []float64, mixed int) (string, bool) {
	sort.Float64s(lines)
	span := func(v []float64) string {
		if v[0] == v[len(v)-1] {
			return FormatNS(v[0])
		}
		return FormatNS(v[0]) + "–" + FormatNS(v[len(v)-1])
	}
	split := splitAbove(len(lines), func(i int) float64 { return lines[i] })
	if split < 0 {
		return span(lines) + " throughout", false
	}
	repeats := "repeats"
	if split == 1 {
		repeats = "repeat"
	}
	l := fmt.Sprintf("two speeds, %s (%d %s) and %s (%d)", span(lines[:split]), split, repeats, span(lines[split:]), len(lines)-split)
	if mixed > 0 {
		l += fmt.Sprintf(", %d changing within a repeat", mixed)
	}
	return l, true
}

// text writes the answer for a terminal, headed "ANSWER:", in at most
// 15 lines for a run shaped like the default suite.
func (ans *answer) text(b *strings.Builder) error {
	b.WriteString("\nANSWER: " + ans.title + "\n")
	if ans.warning != "" {
		b.WriteString("! " + ans.warning + "\n")
	}
	if err := ans.grid.text(b, "  "); err != nil {
		return err
	}
	for _, v := range ans.verdicts {
		b.WriteString(v + "\n")
	}
	return nil
}

// markdown writes the answer as a section of a Markdown report.
func (ans *answer) markdown(b *strings.Builder) error {
	b.WriteString("\n## The answer\n\n" + capitalize(mdEscape(ans.title)) + ".\n\n")
	if ans.warning != "" {
		b.WriteString("**Note:** " + mdEscape(ans.warning) + "\n\n")
	}
	if err := ans.grid.markdown(b); err != nil {
		return err
	}
	b.WriteString("\n")
	for _, v := range ans.verdicts {
		b.WriteString("- " + mdEscape(v) + "\n")
	}
	return nil
}

func placementName(p string) string {
	if p == "" {
		return "unknown"
	}
	return p
}

// fewestRepeats returns the smallest number of OK repeats behind a
// case's statistics (Summary.Samples) among the cases that have any
// (MinRepeats when there are none).
func fewestRepeats(s []Summary) int {
	n := MinRepeats
	for i := range s {
		if k := s[i].Samples(); k > 0 {
			n = min(n, k)
		}
	}
	return n
}

// fewRepeatsWarning says, in one line, what n repeats (fewer than
// MinRepeats) do to the statistics.
func fewRepeatsWarning(n int) string {
	word := "repeats"
	if n == 1 {
		word = "repeat"
	}
	return fmt.Sprintf("only %d OK %s, fewer than %d: %s", n, word, MinRepeats, fewRepeatsMeaning(n))
}

// fewRepeatsMeaning is what as few as n repeats (fewer than MinRepeats)
// do to the statistics, and what to do about it.
func fewRepeatsMeaning(n int) string {
	return fmt.Sprintf("intervals are unbounded (±∞), and %s; run -repeats %d or more before trusting them", FewRepeatsTie(n), MinRepeats)
}

// FewRepeatsTie says what "~" (not significantly different at Alpha)
// means between cases of as few as n OK repeats, fewer than MinRepeats:
// perhaps too few repeats to tell, with, where it applies, what the
// Mann–Whitney U test can tell n repeats against n apart by (see
// MinRepeats): never at 3 or fewer, at 4 only when every repeat of one
// beats every repeat of the other, at 5 only when at most two of the 25
// pairs go the other way.
func FewRepeatsTie(n int) string {
	const tie = "~ may mean too few repeats to tell rather than the same"
	switch {
	case n == 1:
		return fmt.Sprintf("%s (1 repeat against 1 never differs at α=%v)", tie, Alpha)
	case n <= 3:
		return fmt.Sprintf("%s (%d repeats against %d never differ at α=%v)", tie, n, n, Alpha)
	case n == 4:
		return fmt.Sprintf("%s (4 repeats against 4 differ at α=%v only when every repeat of one beats every repeat of the other)", tie, Alpha)
	case n == 5:
		return fmt.Sprintf("%s (5 repeats against 5 differ at α=%v only when at most 2 of their 25 pairs go the other way)", tie, Alpha)
	}
	return tie
}

// tiedRows returns the best row of rk and the rows not significantly
// different from it, best first; nil when no row is ranked.
func tiedRows(rk *Ranking) []*RankRow {
	var out []*RankRow
	for i := range rk.Rows {
		r := &rk.Rows[i]
		if r.Ranked && (i == 0 || r.Noise) {
			out = append(out, r)
		}
	}
	return out
}

// answerCell names the fastest transport of rk, then the other transports
// tied with it (variants of a transport already named are not repeated),
// and the best value with its unit.
func answerCell(rk *Ranking) (name, value string) {
	if rk == nil {
		return "-", ""
	}
	tied := tiedRows(rk)
	if len(tied) == 0 {
		return "none ran", ""
	}
	best := &tied[0].Summary
	names := []string{best.Case.TransportLabel()}
	seen := map[string]bool{best.Case.Transport: true}
	more := 0
	for _, r := range tied[1:] {
		t := r.Summary.Case.Transport
		if seen[t] {
			continue
		}
		seen[t] = true
		if len(names) < answerMaxTied {
			names = append(names, t)
		} else {
			more++
		}
	}
	name = strings.Join(names, " ~ ")
	if more > 0 {
		name += fmt.Sprintf(" +%d more", more)
	}
	m := metricByName(rk.Metric)
	value = formatMetric(m, tied[0].Value)
	switch {
	case !m.isTime:
		value += " " + m.name
	case m.name == MetricP99:
		value += " p99"
	}
	return name, value
}

// tiedTransports returns the transports (without variant) of tiedRows(rk),
// best first, each once.
func tiedTransports(rk *Ranking) []string {
	var out []string
	for _, r := range tiedRows(rk) {
		if t := r.Summary.Case.Transport; !slices.Contains(out, t) {
			out = append(out, t)
		}
	}
	return out
}

// sameFastest reports whether two rankings agree on the fastest transport
// (variants of one transport count as the same): the best of each is the
// best of, or tied with the best of, the other. A best transport that the
// other ranking did not rank does not count against it.
func sameFastest(x, y *Ranking) bool {
	tx, ty := tiedTransports(x), tiedTransports(y)
	if len(tx) == 0 || len(ty) == 0 {
		return true
	}
	ranked := func(rk *Ranking, t string) bool {
		return slices.ContainsFunc(rk.Rows, func(r RankRow) bool { return r.Ranked && r.Summary.Case.Transport == t })
	}
	return (slices.Contains(ty, tx[0]) || !ranked(y, tx[0])) && (slices.Contains(tx, ty[0]) || !ranked(x, ty[0]))
}

// shortcutVerdict sums up the localhost-shortcut lines in one line.
func shortcutVerdict(lines []ShortcutLine) string {
	var n, same int
	var localFaster, publicFaster []string
	for _, l := range lines {
		if l.Missing != "" {
			continue
		}
		n++
		where := settingLabel(l.Workload, l.Size, l.Conns, l.Rate, l.Placement)
		switch {
		case !l.Significant:
			same++
		case l.Ratio > 1:
			localFaster = append(localFaster, fmt.Sprintf("%s ×%.2f", where, l.Ratio))
		default:
			publicFaster = append(publicFaster, fmt.Sprintf("%s ×%.2f", where, 1/l.Ratio))
		}
	}
	if n == 0 {
		return ""
	}
	verdict := "none, tcp-localhost is never significantly faster than tcp-public"
	if len(localFaster) > 0 {
		verdict = fmt.Sprintf("tcp-localhost faster in %d of %d (%s)", len(localFaster), n, listSome(localFaster, 2))
	}
	s := fmt.Sprintf("localhost shortcut: %s: ~ in %d of %d", verdict, same, n)
	if len(publicFaster) > 0 {
		s += fmt.Sprintf(", tcp-public faster in %d (%s)", len(publicFaster), listSome(publicFaster, 2))
	}
	return s
}

// pollerVerdict sums up the netpoller lines in one line, or returns "" when
// no io=raw variant was paired.
func pollerVerdict(lines []PollerLine) string {
	var n, same int
	type side struct {
		lo, hi    float64
		workloads []string
		count     int
	}
	var costs, wins side
	add := func(s *side, r float64, w string) {
		if s.count == 0 || r < s.lo {
			s.lo = r
		}
		s.hi = max(s.hi, r)
		s.count++
		if !slices.Contains(s.workloads, w) {
			s.workloads = append(s.workloads, w)
		}
	}
	for _, p := range lines {
		l := p.Line
		if l.Missing != "" {
			continue
		}
		n++
		switch {
		case !l.Significant:
			same++
		case l.Ratio > 1:
			add(&costs, l.Ratio, l.Workload)
		default:
			add(&wins, 1/l.Ratio, l.Workload)
		}
	}
	if n == 0 {
		return ""
	}
	var parts []string
	for _, s := range []struct {
		verb string
		side side
	}{{"costs", costs}, {"wins", wins}} {
		if s.side.count == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s in %d of %d (%s)", s.verb, ratioRange(s.side.lo, s.side.hi), s.side.count, n, strings.Join(s.side.workloads, ", ")))
	}
	if same > 0 {
		parts = append(parts, fmt.Sprintf("~ in %d of %d", same, n))
	}
	return "Go's netpoller against io=raw: " + strings.Join(parts, "; ")
}

// ratioRange renders "1.38×" or "1.05–1.65×".
func ratioRange(lo, hi float64) string {
	if fmt.Sprintf("%.2f", lo) == fmt.Sprintf("%.2f", hi) {
		return fmt.Sprintf("%.2f×", lo)
	}
	return fmt.Sprintf("%.2f–%.2f×", lo, hi)
}

// placementVerdict says in which settings the placements disagree on the
// fastest transport.
func placementVerdict(settings []*answerSetting, placements []string) string {
	var changed []string
	n := 0
	for _, s := range settings {
		var rks []*Ranking
		for _, p := range placements {
			if rk := s.byPlacement[p]; rk != nil {
				rks = append(rks, rk)
			}
		}
		if len(rks) < 2 {
			continue
		}
		n++
		for i := 1; i < len(rks); i++ {
			if !sameFastest(rks[0], rks[i]) {
				changed = append(changed, s.label())
				break
			}
		}
	}
	if len(changed) == 0 {
		return "placement: the fastest transport is the same (or tied) at every placement in " + inAll(n, "setting")
	}
	return fmt.Sprintf("placement changes the fastest transport in %s: %s (see the columns)", someOf(len(changed), n, "setting"), listSome(changed, 4))
}

// inAll words "all n nouns", or "the 1 noun".
func inAll(n int, noun string) string {
	if n == 1 {
		return "the 1 " + noun
	}
	return fmt.Sprintf("all %d %ss", n, noun)
}

// someOf words "k of n nouns", or "the 1 noun" when both are 1.
func someOf(k, n int, noun string) string {
	if n == 1 {
		return inAll(n, noun)
	}
	return fmt.Sprintf("%d of %d %ss", k, n, noun)
}

// connsVerdict says where the number of connections changed the fastest
// transport: pingpong is the one-connection point of fanin at the same size
// and placement. It returns "" when no size and placement was measured at
// two connection counts.
func connsVerdict(rks []Ranking) string {
	type key struct {
		size      int
		placement string
	}
	var keys []key
	levels := map[key][]*Ranking{}
	for i := range rks {
		rk := &rks[i]
		if rk.Workload != "fanin" && rk.Workload != "pingpong" {
			continue
		}
		k := key{rk.Size, rk.Placement}
		if _, ok := levels[k]; !ok {
			keys = append(keys, k)
		}
		// fanin's own one-connection ranking replaces pingpong's.
		levels[k] = slices.DeleteFunc(levels[k], func(x *Ranking) bool { return x.Conns == rk.Conns && rk.Workload == "fanin" })
		if !slices.ContainsFunc(levels[k], func(x *Ranking) bool { return x.Conns == rk.Conns }) {
			levels[k] = append(levels[k], rk)
		}
	}
	var changed []string
	n := 0
	for _, k := range keys {
		l := levels[k]
		if len(l) < 2 {
			continue
		}
		slices.SortFunc(l, func(x, y *Ranking) int { return x.Conns - y.Conns })
		for i := 1; i < len(l); i++ {
			n++
			if sameFastest(l[i-1], l[i]) {
				continue
			}
			where := units.FormatSize(k.size)
			if k.placement != "unpinned" {
				where += " " + placementName(k.placement)
			}
			changed = append(changed, fmt.Sprintf("%s %s at %d → %s at %d", where, tiedTransports(l[i-1])[0], l[i-1].Conns, tiedTransports(l[i])[0], l[i].Conns))
		}
	}
	if n == 0 {
		return ""
	}
	if len(changed) == 0 {
		return "connections: the fastest transport is the same (or tied) with more connections in " + inAll(n, "comparison") + " (pingpong is 1 connection)"
	}
	return fmt.Sprintf("connections change the fastest transport in %s (pingpong is 1 connection): %s", someOf(len(changed), n, "comparison"), listSome(changed, 2))
}

// listSome joins up to n items and counts the rest.
func listSome(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}
