package report

import (
	"encoding/csv"
	"io"
	"strconv"
	"strings"
)

// csvColumns is the header row of the "csv" format. Latencies are round
// trips in ns, rates in msg/s, throughput in MB/s (10^6 bytes/s), CPU in ns
// per message. A cell is empty when the case has no such value (no
// latency for stream, no OK repeat, an unbounded interval).
var csvColumns = []string{
	"source", "workload", "transport", "variant", "size_bytes", "conns", "target_rate_msg_per_s", "placement",
	"repeats", "ok", "failed", "skipped", "reason",
	"rank", "ranked_by", "vs_best", "same_as_best",
	"round_trip_p50_ns", "round_trip_p50_ci_lo_ns", "round_trip_p50_ci_hi_ns",
	"round_trip_p99_median_ns", "round_trip_p99_ci_lo_ns", "round_trip_p99_ci_hi_ns",
	"round_trip_all_p50_ns", "round_trip_all_p90_ns", "round_trip_all_p99_ns", "round_trip_all_p99_9_ns",
	"round_trip_all_max_ns", "round_trip_all_mean_ns",
	"msg_per_s", "msg_per_s_ci_lo", "msg_per_s_ci_hi",
	"mb_per_s", "mb_per_s_ci_lo", "mb_per_s_ci_hi",
	"achieved_msg_per_s",
	"cpu_ns_per_msg", "bench_cpu_ns_per_msg", "peer_cpu_ns_per_msg",
	"bimodal", "cpus_seen", "options", "cache_line_round_trip_ns",
}

// renderCSV writes the "csv" format: one row per case of every run.
// round_trip_p50_ns is the median of the repeats' p50s (with its 95%
// interval); round_trip_all_* are quantiles of every round trip of the OK
// repeats together (a sampled repeat's weighted by its sample_every); the
// cpu_ns_per_msg columns (both processes, bench, peer) are each the median
// of the repeats' CPU time per message; cache_line_round_trip_ns is the median of the
// repeats' cache line round trip between CPUs (see Summary.LineRTT), empty
// where none was recorded.
func renderCSV(w io.Writer, as []*analysis) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(csvColumns); err != nil {
		return err
	}
	for _, a := range as {
		for _, rk := range a.rankings {
			rank := 0
			for _, row := range rk.Rows {
				s := &row.Summary
				c := s.Case
				rankCell, vs, same := "", "", ""
				if row.Ranked {
					rank++
					rankCell = strconv.Itoa(rank)
					vs = num(row.Ratio, true)
					same = strconv.FormatBool(row.Noise || rank == 1)
				}
				lat := s.HasLatency()
				rates := len(s.RepeatMsgRate) > 0
				rec := []string{
					a.run.Source, c.Workload, c.Transport, c.Variant, strconv.Itoa(c.Size), strconv.Itoa(c.Conns),
					intOrEmpty(c.Rate), c.Placement,
					strconv.Itoa(s.Repeats), strconv.Itoa(s.OK), strconv.Itoa(s.Failed), strconv.Itoa(s.Skipped), oneLine(s.Reason),
					rankCell, rk.Metric, vs, same,
					num(s.P50Median, lat), num(s.P50Lo, lat), num(s.P50Hi, lat),
					num(s.P99Median, lat), num(s.P99Lo, lat), num(s.P99Hi, lat),
					num(float64(s.P50), lat), num(float64(s.P90), lat), num(float64(s.P99), lat), num(float64(s.P999), lat),
					num(float64(s.Max), lat), num(s.Mean, lat),
					num(s.MsgRate, rates), num(s.MsgRateLo, rates), num(s.MsgRateHi, rates),
					num(s.MBps, rates), num(s.MBpsLo, rates), num(s.MBpsHi, rates),
					num(s.Achieved, s.Achieved > 0),
					num(s.CPUPerMsgNS, len(s.RepeatCPUPerMsg) > 0), num(s.BenchCPUPerMsgNS, len(s.RepeatCPUPerMsg) > 0),
					num(s.PeerCPUPerMsgNS, len(s.RepeatCPUPerMsg) > 0),
					strconv.FormatBool(s.Bimodal), s.Placement, optionsString(s.Options),
					num(s.LineRTT, s.LineRTT > 0),
				}
				if err := cw.Write(rec); err != nil {
					return err
				}
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// num formats v for machines: shortest exact decimal, empty when !ok or v
// is not finite.
func num(v float64, ok bool) string {
	if !ok || !finite(v) {
		return ""
	}
	return strconv.FormatFloat(v, 'f', -1, 64)
}

func intOrEmpty(v int) string {
	if v == 0 {
		return ""
	}
	return strconv.Itoa(v)
}

// optionsString renders options as "k=v k=v" in key order.
func optionsString(m map[string]string) string {
	keys := sortedKeys(m)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + "=" + oneLine(m[k])
	}
	return strings.Join(parts, " ")
}
