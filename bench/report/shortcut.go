package report

import (
	"fmt"
	"math"
	"sort"
	"strings"

	mstats "github.com/aclements/go-moremath/stats"
	"golang.org/x/perf/benchmath"

	"github.com/ipcbench/ipcbench/internal/units"
)

// Transport names the localhost-shortcut comparison pairs.
const (
	tcpLocalhost = "tcp-localhost"
	tcpPublic    = "tcp-public"
)

// ShortcutLine answers, for one setting, whether TCP to this host's own
// non-loopback address (tcp-public) behaves differently from TCP to
// 127.0.0.1 (tcp-localhost). On Linux both are delivered through the
// loopback device, so "~" is the expected answer; a real difference is
// worth a look.
//
// The values compared are the setting's ranking metric (see Rank). Ratio
// says how many times worse tcp-public is than tcp-localhost (public/localhost
// for latency, localhost/public for throughput), so 1 means the same and
// values below 1 mean tcp-public did better. Ratio and its interval are the
// Hodges–Lehmann estimate on log values — the median of all pairwise ratios
// between the two sets of repeats — with the distribution-free interval that
// goes with the Mann–Whitney U test; P is that test's p-value (benchmath,
// as benchstat).
type ShortcutLine struct {
	Workload  string
	Size      int
	Conns     int
	Rate      int
	Placement string
	Variant   string
	// Metric is what is compared ("p50 round trip", "MB/s", ...);
	// LowerIsBetter says which way it goes.
	Metric        string
	LowerIsBetter bool
	// Localhost and Public are the medians of the per-repeat values, with
	// the number of OK repeats on each side.
	Localhost, Public   float64
	LocalhostN, PublicN int
	// Ratio with its confidence interval (see the type's doc). RatioLo and
	// RatioHi are 0 and +Inf when there are too few repeats for a bounded
	// interval; Confidence is the interval's actual level (>= 95% when
	// bounded).
	Ratio, RatioLo, RatioHi float64
	Confidence              float64
	// P is the Mann–Whitney U p-value; Significant is P <= Alpha.
	P           float64
	Significant bool
	// Missing, when not empty, says why the two were not compared (a side
	// was skipped or failed); the numeric fields are then zero.
	Missing string
}

// LocalhostShortcut pairs tcp-localhost and tcp-public cases that share a
// workload, size, connection count, rate, placement and variant, and tests
// whether they differ. Pairs where only one side was planned are left out;
// pairs where a side has no OK repeat are listed with Missing set. Lines
// come in ranking order.
func LocalhostShortcut(s []Summary) []ShortcutLine {
	var out []ShortcutLine
	for _, rk := range Rank(s) {
		// Pair within the ranking by variant, in row order of first
		// appearance of the variant.
		type pair struct{ local, public *Summary }
		var variants []string
		pairs := map[string]*pair{}
		for i := range rk.Rows {
			sum := &rk.Rows[i].Summary
			if sum.Case.Transport != tcpLocalhost && sum.Case.Transport != tcpPublic {
				continue
			}
			p, ok := pairs[sum.Case.Variant]
			if !ok {
				p = &pair{}
				pairs[sum.Case.Variant] = p
				variants = append(variants, sum.Case.Variant)
			}
			if sum.Case.Transport == tcpLocalhost {
				p.local = sum
			} else {
				p.public = sum
			}
		}
		sort.Strings(variants)
		hasLatency := false
		for i := range rk.Rows {
			hasLatency = hasLatency || rk.Rows[i].Summary.HasLatency()
		}
		m := rankMetric(rk.Workload, hasLatency)
		for _, v := range variants {
			p := pairs[v]
			if p.local == nil || p.public == nil {
				continue
			}
			out = append(out, shortcut(rk, v, m, p.local, p.public))
		}
	}
	return out
}

func shortcut(rk Ranking, variant string, m metric, local, public *Summary) ShortcutLine {
	l := ShortcutLine{Workload: rk.Workload, Size: rk.Size, Conns: rk.Conns, Rate: rk.Rate,
		Placement: rk.Placement, Variant: variant, Metric: m.name, LowerIsBetter: m.lowerBetter}
	lv, pv := m.values(local), m.values(public)
	var missing []string
	for _, side := range []struct {
		s    *Summary
		vals []float64
	}{{local, lv}, {public, pv}} {
		if len(side.vals) > 0 {
			continue
		}
		why := "no OK repeat"
		switch {
		case side.s.Skipped > 0 && side.s.Failed == 0:
			why = "skipped"
		case side.s.Failed > 0:
			why = "failed"
		}
		if side.s.Reason != "" {
			why += " (" + side.s.Reason + ")"
		}
		missing = append(missing, side.s.Case.TransportLabel()+" "+why)
	}
	if len(missing) > 0 {
		l.Missing = strings.Join(missing, ", ")
		return l
	}
	l.Localhost, _, _ = m.center(local)
	l.Public, _, _ = m.center(public)
	l.LocalhostN, l.PublicN = len(lv), len(pv)
	cmp := benchmath.AssumeNothing.Compare(newSample(lv), newSample(pv))
	l.P = cmp.P
	l.Significant = cmp.P <= cmp.Alpha
	worse, better := pv, lv // ratio = worse/better: public relative to localhost
	if !m.lowerBetter {
		worse, better = lv, pv
	}
	l.Ratio, l.RatioLo, l.RatioHi, l.Confidence = ratioCI(worse, better, Confidence)
	return l
}

// ratioCI returns the Hodges–Lehmann estimate of the ratio x/y (the median
// of all pairwise ratios x[i]/y[j]) and the distribution-free confidence
// interval that inverts the Mann–Whitney U test: the k-th smallest and
// k-th largest pairwise ratio, with k the largest rank whose two-sided tail
// probability stays within 1-confidence. It returns (0, +Inf) bounds and a
// confidence of 1 when the samples are too small for a bounded interval,
// and NaN everything when a value is not positive.
func ratioCI(x, y []float64, confidence float64) (est, lo, hi, conf float64) {
	n1, n2 := len(x), len(y)
	d := make([]float64, 0, n1*n2)
	for _, a := range x {
		for _, b := range y {
			if a <= 0 || b <= 0 || !finite(a) || !finite(b) {
				nan := math.NaN()
				return nan, nan, nan, nan
			}
			d = append(d, math.Log(a)-math.Log(b))
		}
	}
	if len(d) == 0 {
		nan := math.NaN()
		return nan, nan, nan, nan
	}
	sort.Float64s(d)
	est = math.Exp(median(d))
	u := mstats.UDist{N1: n1, N2: n2}
	tail := (1 - confidence) / 2
	k := 0 // number of pairwise differences cut from each end
	for k+1 <= len(d)/2 && u.CDF(float64(k)) <= tail {
		k++
	}
	if k == 0 {
		return est, 0, math.Inf(1), 1
	}
	return est, math.Exp(d[k-1]), math.Exp(d[len(d)-k]), 1 - 2*u.CDF(float64(k-1))
}

// String renders the line for a report, for example
//
//	localhost shortcut: pingpong 64B: tcp-localhost 18.2µs vs tcp-public 18.4µs p50 round trip: ~ (no significant difference: ×1.01, 95% CI 0.97–1.05; p=0.690 n=5+5)
//	localhost shortcut: stream 64KiB: tcp-localhost 2100 MB/s vs tcp-public 1600 MB/s: tcp-public 1.31× slower (95% CI 1.22–1.40; p=0.008 n=5+5)
func (l ShortcutLine) String() string {
	var b strings.Builder
	b.WriteString("localhost shortcut: ")
	b.WriteString(settingLabel(l.Workload, l.Size, l.Conns, l.Rate, l.Placement))
	if l.Variant != "" {
		b.WriteString(" [" + l.Variant + "]")
	}
	b.WriteString(": ")
	if l.Missing != "" {
		b.WriteString("not compared: " + l.Missing)
		return b.String()
	}
	l.writeComparison(&b, tcpLocalhost, l.Localhost, l.LocalhostN, tcpPublic, l.Public, l.PublicN, tcpPublic)
	return b.String()
}

// pairString renders a variant pair's line (netpoller, peer source):
// "prefix: setting: P p vs L l metric: verdict" with P the Public side
// (the one the ratio is about, named who in the verdict) and L the
// Localhost side, or why the two were not compared.
func (l ShortcutLine) pairString(prefix, publicName, localName, who string) string {
	var b strings.Builder
	b.WriteString(prefix + ": " + settingLabel(l.Workload, l.Size, l.Conns, l.Rate, l.Placement) + ": ")
	if l.Missing != "" {
		b.WriteString("not compared: " + l.Missing)
		return b.String()
	}
	l.writeComparison(&b, publicName, l.Public, l.PublicN, localName, l.Localhost, l.LocalhostN, who)
	return b.String()
}

// writeComparison writes "A a vs B b metric: verdict": "~ (...)" when the
// difference is not significant, else "<who> r× slower|faster (CI; test)",
// with l.Ratio read as how many times worse who is than the other side.
func (l ShortcutLine) writeComparison(b *strings.Builder, aName string, a float64, aN int, bName string, bv float64, bN int, who string) {
	m := metricByName(l.Metric)
	unit := ""
	if !m.isTime {
		unit = " " + l.Metric
	}
	fmt.Fprintf(b, "%s %s%s vs %s %s%s", aName, formatMetric(m, a), unit, bName, formatMetric(m, bv), unit)
	if m.isTime {
		b.WriteString(" " + l.Metric)
	}
	b.WriteString(": ")
	ci := l.ciString()
	test := fmt.Sprintf("p=%.3f n=%d+%d", l.P, aN, bN)
	if !l.Significant {
		fmt.Fprintf(b, "~ (no significant difference: ×%.2f%s; %s)", l.Ratio, ci, test)
		return
	}
	dir, r := "slower", l.Ratio
	if r < 1 {
		dir, r = "faster", 1/r
	}
	fmt.Fprintf(b, "%s %.2f× %s (%s; %s)", who, r, dir, strings.TrimPrefix(ci, ", "), test)
}

// ciString renders the ratio interval as ", 95% CI 0.97–1.05", or a note
// when it is unbounded.
func (l ShortcutLine) ciString() string {
	if math.IsNaN(l.RatioLo) || math.IsInf(l.RatioHi, 0) {
		return ", no bounded 95% CI with so few repeats"
	}
	return fmt.Sprintf(", 95%% CI %.2f–%.2f", l.RatioLo, l.RatioHi)
}

// settingLabel names a ranking's setting: "pingpong 64B", "fanin 64B ×4
// conns", "rate 64B at 10000 msg/s", with " (cross-core)" when the
// placement is not unpinned.
func settingLabel(workload string, size, conns, rate int, placement string) string {
	s := workload + " " + units.FormatSize(size)
	if conns > 1 {
		s += fmt.Sprintf(" ×%d conns", conns)
	}
	if rate > 0 {
		s += fmt.Sprintf(" at %d msg/s", rate)
	}
	if placement != "" && placement != "unpinned" {
		s += " (" + placement + ")"
	}
	return s
}

// metricByName returns the metric with the given name (p50 round trip when
// unknown).
func metricByName(name string) metric {
	for _, m := range []metric{metricP50, metricP99, metricMBps, metricRate, metricCPU} {
		if m.name == name {
			return m
		}
	}
	return metricP50
}
