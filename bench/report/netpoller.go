package report

import (
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
	for _, p := range variantPairs(s, func(opt string) bool { return opt == rawOption }) {
		out = append(out, PollerLine{Netpoll: p.baseLabel, Raw: p.twin.Case.TransportLabel(), Line: shortcut(p.rk, p.twin.Case.Variant, p.m, p.twin, p.base)})
	}
	return out
}

// variantPair is, in one ranking, a row whose variant has an option (the
// twin) and the row of the same transport and other options without it
// (the base), with the ranking's metric.
type variantPair struct {
	rk         Ranking
	m          metric
	twin, base *Summary
	baseLabel  string
}

// variantPairs pairs, in each ranking, every row whose variant has an
// option that is accepts (the twin) with its base row, the same transport
// and variant without the options is accepts; a twin without a base row in
// the ranking is left out. Pairs come in ranking order, twins sorted by
// label.
func variantPairs(s []Summary, is func(opt string) bool) []variantPair {
	var out []variantPair
	for _, rk := range Rank(s) {
		byLabel := map[string]*Summary{}
		var twins []string
		for i := range rk.Rows {
			sum := &rk.Rows[i].Summary
			byLabel[sum.Case.TransportLabel()] = sum
			if slices.ContainsFunc(strings.Split(sum.Case.Variant, ","), is) {
				twins = append(twins, sum.Case.TransportLabel())
			}
		}
		slices.Sort(twins)
		hasLatency := false
		for i := range rk.Rows {
			hasLatency = hasLatency || rk.Rows[i].Summary.HasLatency()
		}
		m := rankMetric(rk.Workload, hasLatency)
		for _, tl := range twins {
			twin := byLabel[tl]
			opts := slices.DeleteFunc(strings.Split(twin.Case.Variant, ","), is)
			bl := twin.Case.Transport
			if len(opts) > 0 {
				bl += "[" + strings.Join(opts, ",") + "]"
			}
			base, ok := byLabel[bl]
			if !ok {
				continue
			}
			out = append(out, variantPair{rk: rk, m: m, twin: twin, base: base, baseLabel: bl})
		}
	}
	return out
}

// String renders the line, for example
//
//	netpoller cost: pingpong 64B: unix 36.8µs vs unix[io=raw] 30.1µs p50 round trip: netpoll 1.22× slower (95% CI 1.10–1.31; p=0.002 n=6+6)
func (p PollerLine) String() string {
	return p.Line.pairString("netpoller cost", p.Netpoll, p.Raw, "netpoll")
}
