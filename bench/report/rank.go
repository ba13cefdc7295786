package report

import (
	"math"
	"sort"

	"golang.org/x/perf/benchmath"
)

// Metric names used by rankings, comparisons and shortcut lines.
const (
	MetricP50  = "p50 round trip"
	MetricP99  = "p99 round trip"
	MetricMBps = "MB/s"
	MetricRate = "msg/s"
	MetricCPU  = "CPU/msg"
)

// metric is one per-repeat quantity of a Summary with its median and
// interval.
type metric struct {
	name        string
	lowerBetter bool
	isTime      bool // a duration in ns (latency or CPU time)
	values      func(*Summary) []float64
	center      func(*Summary) (c, lo, hi float64)
}

var (
	metricP50 = metric{MetricP50, true, true,
		func(s *Summary) []float64 { return s.RepeatP50 },
		func(s *Summary) (float64, float64, float64) { return s.P50Median, s.P50Lo, s.P50Hi }}
	metricP99 = metric{MetricP99, true, true,
		func(s *Summary) []float64 { return s.RepeatP99 },
		func(s *Summary) (float64, float64, float64) { return s.P99Median, s.P99Lo, s.P99Hi }}
	metricMBps = metric{MetricMBps, false, false,
		func(s *Summary) []float64 { return s.RepeatMBps },
		func(s *Summary) (float64, float64, float64) { return s.MBps, s.MBpsLo, s.MBpsHi }}
	metricRate = metric{MetricRate, false, false,
		func(s *Summary) []float64 { return s.RepeatMsgRate },
		func(s *Summary) (float64, float64, float64) { return s.MsgRate, s.MsgRateLo, s.MsgRateHi }}
	metricCPU = metric{MetricCPU, true, true,
		func(s *Summary) []float64 { return s.RepeatCPUPerMsg },
		func(s *Summary) (float64, float64, float64) { return medianCI(s.RepeatCPUPerMsg) }}
)

// rankMetric returns the metric a workload is ranked by: pingpong and
// connect by p50 round trip, stream by MB/s, fanin by msg/s, rate by p99
// round trip. Other workloads rank by p50 round trip when they record
// latency, else by msg/s.
func rankMetric(workload string, hasLatency bool) metric {
	switch workload {
	case "pingpong", "connect":
		return metricP50
	case "stream":
		return metricMBps
	case "fanin":
		return metricRate
	case "rate":
		return metricP99
	}
	if hasLatency {
		return metricP50
	}
	return metricRate
}

// Ranking orders the transports measured in one setting: one workload at
// one message size, connection count, target rate and placement.
type Ranking struct {
	Workload  string
	Size      int
	Conns     int
	Rate      int // target rate of the rate workload, else 0
	Placement string
	// Metric is what the rows are ordered by: "p50 round trip" or "p99
	// round trip" (lower is better), "MB/s" or "msg/s" (higher is better).
	Metric string
	// LowerIsBetter says which way Metric is ordered.
	LowerIsBetter bool
	// Rows holds the cases with OK repeats, best first, then the cases
	// with none (all failed or skipped) in run order with their Reason.
	Rows []RankRow
}

// RankRow is one case in a Ranking.
type RankRow struct {
	Summary Summary
	// Ranked is false for a case with no OK repeat; it then carries no
	// value and is listed after every ranked row.
	Ranked bool
	// Value is the case's median of Metric; Lo and Hi its 95% interval.
	Value, Lo, Hi float64
	// Ratio compares the row with the best one: for latency value/best,
	// for throughput best/value, so 1 is the best and 1.5 means "1.5×
	// slower". +Inf when the value is zero for throughput.
	Ratio float64
	// Noise is set when the row is indistinguishable from the best row:
	// a Mann-Whitney U test on the per-repeat values does not reject "same
	// distribution" at Alpha. Reports show it as "~". False for the best
	// row itself.
	Noise bool
	// P is the p-value of that test (1 for the best row).
	P float64
}

type rankKey struct {
	workload        string
	size, conns, rt int
	placement       string
}

// Rank builds one Ranking per workload, size, connection count, target rate
// and placement found in s. Rankings come in the order their workloads and
// placements first appear in s, and by increasing size, conns and rate
// within them. Within a ranking, rows with equal values keep their order
// in s.
func Rank(s []Summary) []Ranking {
	var keys []rankKey
	groups := map[rankKey][]Summary{}
	wOrder, pOrder := map[string]int{}, map[string]int{}
	for _, x := range s {
		c := x.Case
		k := rankKey{c.Workload, c.Size, c.Conns, c.Rate, c.Placement}
		if _, ok := groups[k]; !ok {
			keys = append(keys, k)
		}
		groups[k] = append(groups[k], x)
		if _, ok := wOrder[c.Workload]; !ok {
			wOrder[c.Workload] = len(wOrder)
		}
		if _, ok := pOrder[c.Placement]; !ok {
			pOrder[c.Placement] = len(pOrder)
		}
	}
	sort.SliceStable(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		switch {
		case pOrder[a.placement] != pOrder[b.placement]:
			return pOrder[a.placement] < pOrder[b.placement]
		case wOrder[a.workload] != wOrder[b.workload]:
			return wOrder[a.workload] < wOrder[b.workload]
		case a.size != b.size:
			return a.size < b.size
		case a.conns != b.conns:
			return a.conns < b.conns
		}
		return a.rt < b.rt
	})
	out := make([]Ranking, 0, len(keys))
	for _, k := range keys {
		out = append(out, rank(k, groups[k]))
	}
	return out
}

func rank(k rankKey, group []Summary) Ranking {
	hasLatency := false
	for i := range group {
		hasLatency = hasLatency || group[i].HasLatency()
	}
	m := rankMetric(k.workload, hasLatency)
	rk := Ranking{Workload: k.workload, Size: k.size, Conns: k.conns, Rate: k.rt, Placement: k.placement,
		Metric: m.name, LowerIsBetter: m.lowerBetter}
	var ranked, unranked []RankRow
	for i := range group {
		row := RankRow{Summary: group[i]}
		if len(m.values(&group[i])) == 0 {
			unranked = append(unranked, row)
			continue
		}
		row.Ranked = true
		row.Value, row.Lo, row.Hi = m.center(&group[i])
		ranked = append(ranked, row)
	}
	sort.SliceStable(ranked, func(i, j int) bool {
		if m.lowerBetter {
			return ranked[i].Value < ranked[j].Value
		}
		return ranked[i].Value > ranked[j].Value
	})
	if len(ranked) > 0 {
		best := &ranked[0]
		bestSample := newSample(m.values(&best.Summary))
		best.Ratio, best.P = 1, 1
		for i := 1; i < len(ranked); i++ {
			r := &ranked[i]
			r.Ratio = ratio(best.Value, r.Value, m.lowerBetter)
			cmp := benchmath.AssumeNothing.Compare(bestSample, newSample(m.values(&r.Summary)))
			r.P = cmp.P
			r.Noise = cmp.P > cmp.Alpha
		}
	}
	rk.Rows = append(ranked, unranked...)
	return rk
}

// ratio returns how many times worse v is than best: v/best when lower is
// better, best/v otherwise. A zero denominator gives +Inf (or 1 when both
// are zero).
func ratio(best, v float64, lowerBetter bool) float64 {
	num, den := v, best
	if !lowerBetter {
		num, den = best, v
	}
	if den == 0 {
		if num == 0 {
			return 1
		}
		return math.Inf(1)
	}
	return num / den
}
