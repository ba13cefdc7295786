package floor

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/montanaflynn/stats"

	"github.com/ipcbench/ipcbench/bench"
)

// Row is one pair of a floor file, summarised: the median of each side's
// repeats and their ratio ipcbench/C.
type Row struct {
	Workload, Variant, Placement, C, Target, Unit string
	Size, Conns                                   int
	IPCBench, CValue                              float64 // medians
	IPCBenchN, CN                                 int     // repeats
	Ratio                                         float64 // IPCBench / CValue
	// Verdict is "meets" or "misses" the target, or "" for a row without
	// one.
	Verdict string
}

// Rows groups f's records by pair, in the order pairs first appear, and
// summarises each. A pair missing one side (an interrupted run) is left
// out.
func Rows(f *File) []Row {
	type key struct {
		workload, variant, placement, c, target, unit string
		size, conns                                   int
	}
	idx := map[key]int{}
	var keys []key
	var vals [][2][]float64 // [pair][c, ipcbench]
	for _, r := range f.Records {
		k := key{r.Workload, r.Variant, r.Placement, r.C, r.Target, r.Unit, r.Size, r.Conns}
		i, ok := idx[k]
		if !ok {
			i = len(keys)
			idx[k] = i
			keys = append(keys, k)
			vals = append(vals, [2][]float64{})
		}
		side := 0
		if r.Side == SideIPCBench {
			side = 1
		}
		vals[i][side] = append(vals[i][side], r.Value)
	}
	var rows []Row
	for i, k := range keys {
		c, g := vals[i][0], vals[i][1]
		if len(c) == 0 || len(g) == 0 {
			continue
		}
		cm, _ := stats.Median(c)
		gm, _ := stats.Median(g)
		row := Row{Workload: k.workload, Variant: k.variant, Placement: k.placement, C: k.c, Target: k.target, Unit: k.unit,
			Size: k.size, Conns: k.conns, IPCBench: gm, CValue: cm, IPCBenchN: len(g), CN: len(c), Ratio: gm / cm}
		row.Verdict = verdict(row.Ratio, row.Target)
		rows = append(rows, row)
	}
	return rows
}

// verdict says whether ratio meets a target such as "≤ 1.2×" or "≥ 0.9×";
// "" when the target is not one.
func verdict(ratio float64, target string) string {
	var cmp string
	switch {
	case strings.HasPrefix(target, "≤"):
		cmp = "≤"
	case strings.HasPrefix(target, "≥"):
		cmp = "≥"
	default:
		return ""
	}
	t, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimPrefix(target, cmp), "×")), 64)
	if err != nil {
		return ""
	}
	if (cmp == "≤" && ratio <= t) || (cmp == "≥" && ratio >= t) {
		return "meets"
	}
	return "misses"
}

// formatValue shows a value in its unit.
func formatValue(v float64, unit string) string {
	switch unit {
	case UnitNS:
		return fmt.Sprintf("%.1f µs", v/1000)
	case UnitMBps:
		return fmt.Sprintf("%.0f MB/s", v)
	case UnitMsgs:
		return fmt.Sprintf("%.1fk msg/s", v/1000)
	}
	return fmt.Sprintf("%g %s", v, unit)
}

// Table renders f as Markdown: the environment from its header, then one
// row per pair with the medians, the ratio ipcbench/C and the target. It
// reads nothing but f, so the same file always gives the same table.
func Table(w io.Writer, f *File) error {
	h := &f.Header
	m := func(k string) string {
		if v := h.Machine[k]; v != "" {
			return v
		}
		return "?"
	}
	o := func(k string) string {
		if v := h.Options[k]; v != "" {
			return v
		}
		return "?"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "# ipcbench against the C floor\n\n")
	runs := "Medians of " + o("repeats") + " interleaved runs per side"
	if o("repeats") == "1" {
		runs = "One run per side"
	}
	fmt.Fprintf(&b, "%s. pingpong: p50 round trip of %s round trips; "+
		"stream: MB/s (10^6 B/s), %s per run; fanin: round trips per second over all connections, %s round trips per run. ",
		runs, o("pingpong_n"), o("stream_bytes"), o("fanin_n"))
	fmt.Fprintf(&b, "Ratio = ipcbench / C: for round trips lower is better, for throughput higher is better.\n\n")
	fmt.Fprintf(&b, "Machine: %s, %s CPUs (%s), kernel %s, %s; C compiler: %s. Started %s; %s.\n\n",
		m("hostname"), m("cores"), m("cpu_model"), m("kernel"), m("go_version"), o("c_compiler"),
		h.Time.UTC().Format("2006-01-02 15:04 UTC"), h.Tool)
	fmt.Fprintf(&b, "| workload | size | conns | ipcbench variant | placement | C floor | ipcbench | C | ratio | target | |\n")
	fmt.Fprintf(&b, "|---|---:|---:|---|---|---|---:|---:|---:|---|---|\n")
	for _, r := range Rows(f) {
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %s | %.2f× | %s | %s |\n", r.Workload, bench.FormatSize(r.Size), r.Conns,
			r.Variant, r.Placement, r.C, formatValue(r.IPCBench, r.Unit), formatValue(r.CValue, r.Unit), r.Ratio, r.Target, r.Verdict)
	}
	fmt.Fprintf(&b, "\nC floor: the mode of the C program and its arguments (pingpong: blocking descriptors, one write and one read per hop, "+
		"or shared memory; stream -v: length-prefixed frames sent with writev; fanin: a one-process epoll echo server).\n")
	if len(h.Command) > 0 {
		fmt.Fprintf(&b, "Measured by `%s`; rendered from its raw records by `ipcbench floor -report FILE` (`make results`).\n", strings.Join(h.Command, " "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}
