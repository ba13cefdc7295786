package report

import (
	"fmt"
	"slices"
	"strings"
)

// rawOption is the variant option of the io=raw path (see
// transports/internal/rawio): the same transport without Go's netpoller.
const rawOption = "io=raw"

// PollerLine compares, for one setting, a transport through Go's network
// poller with the same transport and options plus io=raw (blocking-style
// system calls in the calling thread): what the poller costs on this
// machine. Line holds the comparison with Localhost the raw side and Public
// the netpoll side, so Line.Ratio is how many times worse the netpoll
// variant is (below 1: better); Netpoll and Raw name the two variants.
type PollerLine struct {
	Netpoll, Raw string
	Line         ShortcutLine
}

// NetpollerCost pairs every "X[...io=raw...]" row with its "X[...]" row in
// each ranking and tests whether they differ, as LocalhostShortcut does.
func NetpollerCost(s []Summary) []PollerLine {
	var out []PollerLine
	for _, rk := range Rank(s) {
		byLabel := map[string]*Summary{}
		var raws []string
		for i := range rk.Rows {
			sum := &rk.Rows[i].Summary
			byLabel[sum.Case.TransportLabel()] = sum
			if slices.Contains(strings.Split(sum.Case.Variant, ","), rawOption) {
				raws = append(raws, sum.Case.TransportLabel())
			}
		}
		slices.Sort(raws)
		hasLatency := false
		for i := range rk.Rows {
			hasLatency = hasLatency || rk.Rows[i].Summary.HasLatency()
		}
		m := rankMetric(rk.Workload, hasLatency)
		for _, rl := range raws {
			raw := byLabel[rl]
			opts := slices.DeleteFunc(strings.Split(raw.Case.Variant, ","), func(o string) bool { return o == rawOption })
			np := raw.Case.Transport
			if len(opts) > 0 {
				np += "[" + strings.Join(opts, ",") + "]"
			}
			netpoll, ok := byLabel[np]
			if !ok {
				continue
			}
			out = append(out, PollerLine{Netpoll: np, Raw: rl, Line: shortcut(rk, raw.Case.Variant, m, raw, netpoll)})
		}
	}
	return out
}

// String renders the line, for example
//
//	netpoller cost: pingpong 64B: unix 36.8µs vs unix[io=raw] 30.1µs p50 round trip: netpoll 1.22× slower (95% CI 1.10–1.31; p=0.002 n=6+6)
func (p PollerLine) String() string {
	l := p.Line
	var b strings.Builder
	b.WriteString("netpoller cost: " + settingLabel(l.Workload, l.Size, l.Conns, l.Rate, l.Placement) + ": ")
	if l.Missing != "" {
		b.WriteString("not compared: " + l.Missing)
		return b.String()
	}
	m := metricByName(l.Metric)
	unit := ""
	if !m.isTime {
		unit = " " + l.Metric
	}
	fmt.Fprintf(&b, "%s %s%s vs %s %s%s", p.Netpoll, formatMetric(m, l.Public), unit, p.Raw, formatMetric(m, l.Localhost), unit)
	if m.isTime {
		b.WriteString(" " + l.Metric)
	}
	b.WriteString(": ")
	ci := l.ciString()
	test := fmt.Sprintf("p=%.3f n=%d+%d", l.P, l.PublicN, l.LocalhostN)
	if !l.Significant {
		fmt.Fprintf(&b, "~ (no significant difference: ×%.2f%s; %s)", l.Ratio, ci, test)
		return b.String()
	}
	dir, r := "slower", l.Ratio
	if r < 1 {
		dir, r = "faster", 1/r
	}
	fmt.Fprintf(&b, "netpoll %.2f× %s (%s; %s)", r, dir, strings.TrimPrefix(ci, ", "), test)
	return b.String()
}
