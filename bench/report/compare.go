package report

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"golang.org/x/perf/benchmath"

	"github.com/ipcbench/ipcbench/bench"
)

// compareMetrics are the metrics Compare reports, in order, with the cases
// they apply to.
var compareMetrics = []struct {
	m       metric
	applies func(*Summary) bool
}{
	{metricP50, func(s *Summary) bool { return s.HasLatency() }},
	{metricP99, func(s *Summary) bool { return s.HasLatency() }},
	{metricRate, func(s *Summary) bool { return true }},
	{metricMBps, func(s *Summary) bool { return rankMetric(s.Case.Workload, s.HasLatency()).name == MetricMBps }},
	{metricCPU, func(s *Summary) bool { return true }},
}

// compareEnvKeys are the machine facts whose difference Compare warns
// about.
var compareEnvKeys = []string{"kernel", "cpu_model", "cores", "gomaxprocs", "go_version", "goos", "goarch"}

// Compare writes, like benchstat, how the cases of run new differ from the
// same cases in run old: per metric (p50 and p99 round trip, msg/s, MB/s for
// streams, CPU/msg) the old and new medians of the repeats with their 95%
// intervals, the change in percent and the Mann–Whitney U p-value, or "~"
// when the change is not significant at α = 0.05. Cases present in only one
// run, or with no OK repeat on one side, are listed as such, and
// differences between the two environments are warned about, since numbers
// from different machines or settings are not comparable. It returns an
// error wrapping ErrNoRuns when a run is nil, ErrNothingCompared (after
// writing the lists, which say why) when no case has an OK repeat in both
// runs, and write errors.
func Compare(w io.Writer, old, new *bench.Records) error {
	if old == nil || new == nil {
		return fmt.Errorf("report: compare: %w", ErrNoRuns)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "old: %s\nnew: %s\n", runLine(old), runLine(new))
	for _, d := range envDiffs(&old.Header, &new.Header) {
		b.WriteString("warning: " + d + "\n")
	}
	b.WriteString("note: numbers from different sittings drift (about 15% on a shared machine); prefer comparing transports within one run.\n")

	oldSums, newSums := Summarize(old.Results), Summarize(new.Results)
	if n := min(fewestRepeats(oldSums), fewestRepeats(newSums)); n < MinRepeats {
		b.WriteString("warning: some cases: " + fewRepeatsWarning(n) + "\n")
	}
	newBy := map[bench.Case]*Summary{}
	for i := range newSums {
		newBy[newSums[i].Case] = &newSums[i]
	}
	oldBy := map[bench.Case]*Summary{}
	for i := range oldSums {
		oldBy[oldSums[i].Case] = &oldSums[i]
	}
	var onlyOld, onlyNew, notCompared []string
	type pair struct{ o, n *Summary }
	var pairs []pair
	for i := range oldSums {
		o := &oldSums[i]
		n, ok := newBy[o.Case]
		switch {
		case !ok:
			onlyOld = append(onlyOld, caseLabel(o.Case))
		case o.OK == 0 || n.OK == 0:
			var why []string
			if o.OK == 0 {
				why = append(why, "old: "+statusWord(o))
			}
			if n.OK == 0 {
				why = append(why, "new: "+statusWord(n))
			}
			notCompared = append(notCompared, caseLabel(o.Case)+" ("+strings.Join(why, "; ")+")")
		default:
			pairs = append(pairs, pair{o, n})
		}
	}
	for i := range newSums {
		if _, ok := oldBy[newSums[i].Case]; !ok {
			onlyNew = append(onlyNew, caseLabel(newSums[i].Case))
		}
	}

	for _, cm := range compareMetrics {
		m := cm.m
		g := &grid{cols: []gridCol{{name: "case"}, {name: "old", right: true}, {name: "±"}, {name: "new", right: true}, {name: "±"}, {name: "delta", right: true}, {name: "test"}}}
		var warnings []string           // in order of first appearance
		rowsOf := map[string][]string{} // each warning's rows
		for _, p := range pairs {
			if !cm.applies(p.o) || !cm.applies(p.n) {
				continue
			}
			ov, nv := m.values(p.o), m.values(p.n)
			if len(ov) == 0 || len(nv) == 0 {
				continue
			}
			oc, olo, ohi := m.center(p.o)
			nc, nlo, nhi := m.center(p.n)
			so, sn := newSample(ov), newSample(nv)
			cmp := benchmath.AssumeNothing.Compare(so, sn)
			label := caseLabel(p.o.Case)
			es := append(benchmath.AssumeNothing.Summary(so, Confidence).Warnings, cmp.Warnings...)
			for _, e := range append(es, benchmath.AssumeNothing.Summary(sn, Confidence).Warnings...) {
				note := e.Error()
				if _, seen := rowsOf[note]; !seen {
					warnings = append(warnings, note)
				}
				rowsOf[note] = appendDistinct(rowsOf[note], label)
			}
			ocell, ncell := formatMetric(m, oc), formatMetric(m, nc)
			if p.o.Bimodal {
				ocell += " (bimodal)"
			}
			if p.n.Bimodal {
				ncell += " (bimodal)"
			}
			g.add(label, ocell, FormatCI(oc, olo, ohi), ncell, FormatCI(nc, nlo, nhi),
				cmp.FormatDelta(oc, nc), "("+cmp.String()+")")
		}
		if len(g.rows) == 0 {
			continue
		}
		dir := "higher is better"
		if m.lowerBetter {
			dir = "lower is better"
		}
		fmt.Fprintf(&b, "\n%s (median of repeats, %s)\n", m.name, dir)
		if err := g.text(&b, "  "); err != nil {
			return err
		}
		for _, wn := range warnings {
			b.WriteString("  note: " + wn + ": " + rowList(rowsOf[wn], len(g.rows)) + "\n")
		}
	}
	list := func(title string, items []string) {
		if len(items) == 0 {
			return
		}
		fmt.Fprintf(&b, "\n%s:\n", title)
		for _, it := range items {
			b.WriteString("  " + it + "\n")
		}
	}
	list("only in old", onlyOld)
	list("only in new", onlyNew)
	list("not compared (no OK repeat on one side)", notCompared)
	_, err := io.WriteString(w, b.String())
	if err != nil {
		return fmt.Errorf("report: compare: %w", err)
	}
	if len(pairs) == 0 {
		return ErrNothingCompared
	}
	return nil
}

// caseLabel names a case in one line: "pingpong 64B unix", "fanin 64B ×4
// conns tcp-localhost[nodelay=false]".
func caseLabel(c bench.Case) string {
	return settingLabel(c.Workload, c.Size, c.Conns, c.Rate, c.Placement) + " " + c.TransportLabel()
}

// statusWord says why a summary has no OK repeat.
func statusWord(s *Summary) string {
	w := "failed"
	if s.Skipped > 0 && s.Failed == 0 {
		w = "skipped"
	}
	if s.Reason != "" {
		w += ": " + oneLine(s.Reason)
	}
	return w
}

// runLine describes a run in one line for Compare.
func runLine(r *bench.Records) string {
	s := r.Source
	var parts []string
	if !r.Header.Time.IsZero() {
		parts = append(parts, r.Header.Time.UTC().Format("2006-01-02 15:04 MST"))
	}
	if r.Header.Tool != "" {
		parts = append(parts, oneLine(r.Header.Tool))
	}
	if len(parts) > 0 {
		s += " (" + strings.Join(parts, ", ") + ")"
	}
	return s
}

// envDiffs lists the differences between two environments that make their
// numbers hard to compare.
func envDiffs(a, b *bench.Header) []string {
	var out []string
	for _, k := range compareEnvKeys {
		if a.Machine[k] != b.Machine[k] {
			out = append(out, fmt.Sprintf("%s differs: %q vs %q", k, a.Machine[k], b.Machine[k]))
		}
	}
	if a.Network != b.Network {
		out = append(out, fmt.Sprintf("network differs: %q vs %q", a.Network, b.Network))
	}
	keys := map[string]bool{}
	for k := range a.Options {
		keys[k] = true
	}
	for k := range b.Options {
		keys[k] = true
	}
	for _, k := range sortedKeys(keys) {
		if a.Options[k] != b.Options[k] && !unusedOption(k, a, b) {
			out = append(out, optionDiff(k, a.Options, b.Options))
		}
	}
	return out
}

// optionDiff says how option k differs between two runs' options, a and
// b: both values, or which run alone has it, not a value "" the other
// never recorded.
func optionDiff(k string, a, b map[string]string) string {
	av, aok := a[k]
	bv, bok := b[k]
	switch {
	case !aok:
		return fmt.Sprintf("option %s: only the second run has it (%q)", k, bv)
	case !bok:
		return fmt.Sprintf("option %s: only the first run has it (%q)", k, av)
	}
	return fmt.Sprintf("option %s differs: %q vs %q", k, av, bv)
}

// workloadOptions are the header options that only one workload uses;
// runs record them only when they ran it, and older runs always did.
var workloadOptions = map[string]string{"rate": "rate", "fanin_conns": "fanin"}

// unusedOption reports whether option k is one that only a workload
// neither run ran uses (an older run recorded -rate without the rate
// workload): its difference says nothing about the numbers.
func unusedOption(k string, a, b *bench.Header) bool {
	return unusedBy(k, a) && unusedBy(k, b)
}

// unusedBy reports whether option k is one that only a workload the run
// of h did not run uses, which reports leave out.
func unusedBy(k string, h *bench.Header) bool {
	w, ok := workloadOptions[k]
	return ok && !slices.Contains(strings.Split(h.Options["workloads"], ","), w)
}

// rowList names the rows a compare note applies to: "every row" when it
// applies to all n, else the first three and how many more.
func rowList(rows []string, n int) string {
	const shown = 3
	switch {
	case len(rows) == n && n > 1:
		return "every row"
	case len(rows) > shown:
		return fmt.Sprintf("%s and %d more", strings.Join(rows[:shown], ", "), len(rows)-shown)
	}
	return strings.Join(rows, ", ")
}
