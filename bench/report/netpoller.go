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
	l.writeComparison(&b, p.Netpoll, l.Public, l.PublicN, p.Raw, l.Localhost, l.LocalhostN, "netpoll")
	return b.String()
}
