package report

import (
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/montanaflynn/stats"
	"golang.org/x/perf/benchmath"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/internal/hist"
)

// Confidence is the confidence level of every interval in a report.
const Confidence = 0.95

// Alpha is the significance level below which two sets of repeats are
// reported as different; above it reports show "~". It is benchstat's.
const Alpha = 0.05

// BimodalRatio is how far apart (as a ratio) two neighbouring per-repeat
// values must be for a case to be flagged as bimodal.
const BimodalRatio = 2.0

// Summary is one case over all its repeats.
//
// Latency fields are round-trip times in ns. P50..Max and Mean are taken
// from the histograms of all OK repeats merged, so they describe every
// measured round trip: the histogram of a repeat that timed one round trip
// in SampleEvery is merged SampleEvery times over (each timed round trip
// stands for that many), so that repeats weigh by the exchanges they made,
// sampled or not. P50Median (and P99Median) are the median of the
// per-repeat values with a 95% confidence interval, the figure to compare
// between cases. Metrics a case does not have (latency for stream, rates for
// a case with no OK repeat) are zero and their Repeat* slices are empty.
// A confidence bound is ±Inf when there are too few repeats for a finite
// interval (benchmath needs 6 for 95%).
type Summary struct {
	Case bench.Case
	// Repeats counts the case's results; OK, Failed and Skipped split them
	// by status.
	Repeats, OK, Failed, Skipped int
	// Reason joins the distinct reasons given by failed or skipped repeats.
	Reason string

	// Round-trip latency, ns, over the merged histogram of the OK repeats.
	P50, P90, P99, P999, Max int64
	Mean                     float64
	// Latency is that merged histogram: every round trip of the OK repeats
	// whose histograms decode, a sampled repeat's weighted by its
	// SampleEvery (for distribution plots); nil when the case recorded no
	// round trip. Readers must not modify it.
	Latency *hist.Histogram
	// Timed counts the round trips the OK repeats' histograms hold, as
	// timed: fewer than Latency's count when a repeat was sampled.
	Timed int64

	// Medians of per-repeat values with their 95% confidence interval.
	P50Median, P50Lo, P50Hi       float64 // round-trip p50, ns
	P99Median, P99Lo, P99Hi       float64 // round-trip p99, ns
	MsgRate, MsgRateLo, MsgRateHi float64 // messages (round trips) per second
	MBps, MBpsLo, MBpsHi          float64 // payload MB/s (10^6 bytes), one direction

	// CPU cost per message in ns: the median over the OK repeats of each
	// repeat's user+sys CPU time divided by its messages, for both
	// processes together (CPUPerMsgNS, the center CPUPerMsg returns), for
	// the bench process and for the peer. Each is a median of its own, so
	// the bench and peer figures need not add up to CPUPerMsgNS.
	CPUPerMsgNS, BenchCPUPerMsgNS, PeerCPUPerMsgNS float64

	// Bimodal is set when the per-repeat values (round-trip p50 where
	// latency is recorded, else message rate) split into two groups more
	// than BimodalRatio apart; Modes then describes the two groups.
	Bimodal bool
	Modes   []Mode

	// Achieved is the median achieved rate (msg/s) of the rate workload.
	Achieved float64
	// Options are the transport options in effect, merged over the OK
	// repeats; a key whose value differed between repeats holds the
	// distinct values joined by "|".
	Options map[string]string
	// Placement says where the two ends actually ran, from the CPUs sampled
	// during the OK repeats: "bench 0,1 / peer 1", or the distinct places
	// joined by "; " when repeats ran in different places. Empty when not
	// recorded.
	// (Case.Placement is the placement that was asked for.)
	Placement string

	// LineRTT is the median over the OK repeats that recorded one of the
	// round trip of a cache line between the CPUs the messages crossed, in
	// ns (each repeat's is the mean of its probes before and after the
	// measured interval: bench.Result.LineRTTNS): how fast the machine
	// moved data between CPUs while the case ran. 0 when none recorded it.
	LineRTT float64
	// LinePhases, when the repeats' cache line round trips split into two
	// groups more than BimodalRatio apart (the machine moved data between
	// CPUs at two speeds while the case was measured), describes the two
	// groups, faster line first, by the workload's ranking metric
	// (PhaseMetric); nil otherwise. LineMixed counts the OK repeats whose
	// own two probes were that far apart: the speed changed while they
	// ran, and they are in neither group.
	LinePhases  []LinePhase
	PhaseMetric string
	LineMixed   int

	// Per-repeat values of the OK repeats, in repeat order: the samples the
	// medians, intervals and significance tests are computed from.
	RepeatP50, RepeatP99      []float64 // round-trip ns
	RepeatMsgRate, RepeatMBps []float64
	RepeatCPUPerMsg           []float64 // ns, both processes
	RepeatBenchCPUPerMsg      []float64 // ns, the bench process
	RepeatPeerCPUPerMsg       []float64 // ns, the peer
	RepeatLineRTT             []float64 // ns, 0 for a repeat that recorded none
	RepeatIndex               []int     // the Repeat field of each OK repeat
	Notes                     []string  // problems met while summarising (a histogram that did not decode)
}

// Mode is one group of repeats of a bimodal case.
type Mode struct {
	// Repeats is the number of repeats in the group.
	Repeats int
	// Median is the median of the group's per-repeat values, in the unit of
	// Summary.ModeMetric (round-trip ns or msg/s).
	Median float64
	// Placement is where the ends ran during these repeats (see
	// Summary.Placement).
	Placement string
	// LineRTT is the median cache line round trip of these repeats (see
	// Summary.LineRTT), 0 when none recorded it.
	LineRTT float64
}

// LinePhase is one group of repeats of a case whose cache line round trips
// took two speeds (Summary.LinePhases).
type LinePhase struct {
	// Repeats is the number of repeats in the group.
	Repeats int
	// LineLo and LineHi are the group's fastest and slowest line round
	// trip, ns.
	LineLo, LineHi float64
	// Median is the median of the group's values of Summary.PhaseMetric.
	Median float64
}

// findLinePhases splits the repeats behind vals (where holds each one's
// line round trip) at the largest ratio between neighbouring line round
// trips, sorted; when that ratio exceeds BimodalRatio it returns the two
// groups, faster line first, with the median of vals in each, else nil.
// Repeats without a line round trip, or whose speed changed while they ran,
// take no part.
func findLinePhases(vals []float64, where []repeatCPUs) []LinePhase {
	var idx []int
	for i := range vals {
		if where[i].line > 0 && !where[i].lineMixed {
			idx = append(idx, i)
		}
	}
	if len(idx) < 2 {
		return nil
	}
	sort.SliceStable(idx, func(a, b int) bool { return where[idx[a]].line < where[idx[b]].line })
	split := splitAbove(len(idx), func(i int) float64 { return where[idx[i]].line })
	if split < 0 {
		return nil
	}
	group := func(ii []int) LinePhase {
		v := make([]float64, len(ii))
		for k, i := range ii {
			v[k] = vals[i]
		}
		return LinePhase{Repeats: len(ii), LineLo: where[ii[0]].line, LineHi: where[ii[len(ii)-1]].line, Median: median(v)}
	}
	return []LinePhase{group(idx[:split]), group(idx[split:])}
}

// HasLatency reports whether the case recorded round-trip latency.
func (s *Summary) HasLatency() bool { return len(s.RepeatP50) > 0 }

// Samples returns the fewest per-repeat values behind any of s's medians
// and intervals: OK, unless an OK repeat's latency could not be used (its
// histogram missing or empty), which leaves its latency medians with
// fewer.
func (s *Summary) Samples() int {
	n := s.OK
	for _, v := range [][]float64{s.RepeatP50, s.RepeatP99, s.RepeatMsgRate, s.RepeatMBps} {
		if len(v) > 0 {
			n = min(n, len(v))
		}
	}
	return n
}

// CPUPerMsg returns the median over the OK repeats of the CPU time per
// message (ns, both processes) with its 95% confidence interval, computed
// as every other median and interval of a Summary is; zeros when no repeat
// was OK.
func (s *Summary) CPUPerMsg() (median, lo, hi float64) { return medianCI(s.RepeatCPUPerMsg) }

// ModeMetric names the per-repeat value bimodality is judged on:
// "p50 round trip" when the case records latency, else "msg/s".
func (s *Summary) ModeMetric() string {
	if s.HasLatency() {
		return "p50 round trip"
	}
	return "msg/s"
}

// Summarize groups results by bench.Case and summarises each group, in the
// order the cases first appear in results (the run order). It never fails:
// problems with individual repeats (a histogram that does not decode, an OK
// repeat with no interval) leave that repeat out of the affected metrics and
// are noted in Summary.Notes.
func Summarize(results []bench.Result) []Summary {
	s, _ := summarizeResults(results)
	return s
}

// repeatLatency holds the round-trip quantiles of one result's histogram,
// kept so that renderers need not decode it again.
type repeatLatency struct {
	ok                       bool // the result has a decodable, non-empty histogram
	p50, p90, p99, p999, max int64
}

// summarizeResults is Summarize that also returns the latency quantiles of
// every result, indexed like results.
func summarizeResults(results []bench.Result) ([]Summary, []repeatLatency) {
	var order []bench.Case
	groups := map[bench.Case][]int{}
	for i := range results {
		c := results[i].Case()
		if _, ok := groups[c]; !ok {
			order = append(order, c)
		}
		groups[c] = append(groups[c], i)
	}
	lat := make([]repeatLatency, len(results))
	out := make([]Summary, 0, len(order))
	for _, c := range order {
		out = append(out, summarize(c, results, groups[c], lat))
	}
	return out, lat
}

// repeatCPUs is where a repeat's ends ran, and the cache line round trip
// between CPUs it recorded (ns, 0 for none).
type repeatCPUs struct {
	bench, peer string
	line        float64
	// lineMixed: the repeat's probes before and after it were more than
	// BimodalRatio apart, so the speed changed while it ran; it belongs
	// to neither speed.
	lineMixed bool
}

// lineRTT returns r's cache line round trip in ns: the mean of its probes
// before and after the measured interval, the one there is, or 0.
func lineRTT(r *bench.Result) float64 {
	switch {
	case r.LineRTTNS > 0 && r.LineRTTEndNS > 0:
		return float64(r.LineRTTNS+r.LineRTTEndNS) / 2
	case r.LineRTTNS > 0:
		return float64(r.LineRTTNS)
	}
	return float64(r.LineRTTEndNS)
}

// lineMixed reports whether r's two line probes were more than
// BimodalRatio apart.
func lineMixed(r *bench.Result) bool {
	lo, hi := min(r.LineRTTNS, r.LineRTTEndNS), max(r.LineRTTNS, r.LineRTTEndNS)
	return lo > 0 && float64(hi)/float64(lo) > BimodalRatio
}

// nonzeroMedian returns the median of the values of vals above 0, or 0.
func nonzeroMedian(vals []float64) float64 {
	var v []float64
	for _, x := range vals {
		if x > 0 {
			v = append(v, x)
		}
	}
	return median(v)
}

// summarize summarises the results at indexes idx, which share Case c, and
// fills lat at those indexes.
func summarize(c bench.Case, results []bench.Result, idx []int, lat []repeatLatency) Summary {
	s := Summary{Case: c, Repeats: len(idx)}
	merged := hist.New()
	var reasons []string
	var achieved []float64
	var cpus []repeatCPUs
	var p50Where, rateWhere []repeatCPUs // where each RepeatP50 and RepeatMsgRate value ran
	opts := map[string][]string{}
	for _, i := range idx {
		r := &results[i]
		switch r.Status {
		case bench.StatusOK:
		case bench.StatusSkipped:
			s.Skipped++
			reasons = appendDistinct(reasons, r.Reason)
			continue
		case bench.StatusFailed:
			s.Failed++
			reasons = appendDistinct(reasons, r.Reason)
			continue
		default:
			s.Failed++
			reasons = appendDistinct(reasons, fmt.Sprintf("unknown status %q", r.Status))
			continue
		}
		s.OK++
		s.RepeatIndex = append(s.RepeatIndex, r.Repeat)
		where := repeatCPUs{r.BenchCPUs, r.PeerCPUs, lineRTT(r), lineMixed(r)}
		if where.lineMixed {
			s.LineMixed++
		}
		cpus = append(cpus, where)
		s.RepeatLineRTT = append(s.RepeatLineRTT, where.line)
		if r.Hist != "" {
			h, err := hist.Decode(r.Hist)
			if err != nil {
				s.Notes = append(s.Notes, fmt.Sprintf("repeat %d: latency histogram left out: %v", r.Repeat, err))
			} else if h.Count() > 0 {
				// A sampled repeat's histogram holds one round trip in
				// SampleEvery: each stands for SampleEvery of them.
				merged.MergeWeighted(h, int64(max(1, r.SampleEvery)))
				s.Timed += h.Count()
				v := h.Quantiles(0.5, 0.9, 0.99, 0.999)
				q := repeatLatency{ok: true, p50: v[0], p90: v[1], p99: v[2], p999: v[3], max: h.Max()}
				lat[i] = q
				s.RepeatP50 = append(s.RepeatP50, float64(q.p50))
				s.RepeatP99 = append(s.RepeatP99, float64(q.p99))
				p50Where = append(p50Where, where)
			}
		}
		if r.DurationNS > 0 {
			sec := float64(r.DurationNS) / 1e9
			s.RepeatMsgRate = append(s.RepeatMsgRate, float64(r.Messages)/sec)
			s.RepeatMBps = append(s.RepeatMBps, float64(r.Bytes)/1e6/sec)
			rateWhere = append(rateWhere, where)
		} else {
			s.Notes = append(s.Notes, fmt.Sprintf("repeat %d: no measured interval, rates left out", r.Repeat))
		}
		b := float64(r.BenchUserNS + r.BenchSysNS)
		p := float64(r.PeerUserNS + r.PeerSysNS)
		if r.PeerCPUUnknown {
			s.Notes = appendDistinct(s.Notes, "peer CPU unknown (a foreign echo server): CPU/msg left out")
		} else if r.Messages > 0 {
			n := float64(r.Messages)
			s.RepeatCPUPerMsg = append(s.RepeatCPUPerMsg, (b+p)/n)
			s.RepeatBenchCPUPerMsg = append(s.RepeatBenchCPUPerMsg, b/n)
			s.RepeatPeerCPUPerMsg = append(s.RepeatPeerCPUPerMsg, p/n)
		}
		if r.Achieved > 0 {
			achieved = append(achieved, r.Achieved)
		}
		for k, v := range r.Options {
			opts[k] = appendDistinct(opts[k], v)
		}
	}
	s.Reason = strings.Join(reasons, "; ")
	if merged.Count() > 0 {
		s.Latency = merged
		v := merged.Quantiles(0.5, 0.9, 0.99, 0.999)
		s.P50, s.P90, s.P99, s.P999 = v[0], v[1], v[2], v[3]
		s.Max = merged.Max()
		s.Mean = merged.Mean()
	}
	s.P50Median, s.P50Lo, s.P50Hi = medianCI(s.RepeatP50)
	s.P99Median, s.P99Lo, s.P99Hi = medianCI(s.RepeatP99)
	s.MsgRate, s.MsgRateLo, s.MsgRateHi = medianCI(s.RepeatMsgRate)
	s.MBps, s.MBpsLo, s.MBpsHi = medianCI(s.RepeatMBps)
	s.CPUPerMsgNS, _, _ = s.CPUPerMsg()
	s.BenchCPUPerMsgNS, _, _ = medianCI(s.RepeatBenchCPUPerMsg)
	s.PeerCPUPerMsgNS, _, _ = medianCI(s.RepeatPeerCPUPerMsg)
	s.Achieved = median(achieved)
	if len(opts) > 0 {
		s.Options = make(map[string]string, len(opts))
		for k, vs := range opts {
			s.Options[k] = strings.Join(vs, "|")
		}
	}
	s.Placement = describeCPUs(cpus)
	s.LineRTT = nonzeroMedian(s.RepeatLineRTT)
	// Bimodality is judged on the round-trip p50s where latency is
	// recorded, else on the message rates (see ModeMetric).
	modeVals, modeWhere := s.RepeatMsgRate, rateWhere
	if s.HasLatency() {
		modeVals, modeWhere = s.RepeatP50, p50Where
	}
	// Line phases are judged by the metric the case is ranked by.
	m := rankMetric(c.Workload, s.HasLatency())
	phaseWhere := rateWhere
	if m.name == MetricP50 || m.name == MetricP99 {
		phaseWhere = p50Where
	}
	if ph := findLinePhases(m.values(&s), phaseWhere); ph != nil {
		s.LinePhases, s.PhaseMetric = ph, m.name
	}
	if modes := findModes(modeVals, modeWhere); modes != nil {
		s.Bimodal = true
		s.Modes = modes
	}
	return s
}

// findModes splits vals at the largest ratio between neighbouring sorted
// values; when that ratio exceeds BimodalRatio it returns the two groups,
// lower values first, else nil.
func findModes(vals []float64, where []repeatCPUs) []Mode {
	if len(vals) < 2 {
		return nil
	}
	idx := make([]int, len(vals))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return vals[idx[a]] < vals[idx[b]] })
	split := splitAbove(len(idx), func(i int) float64 { return vals[idx[i]] })
	if split < 0 {
		return nil
	}
	group := func(ii []int) Mode {
		v := make([]float64, len(ii))
		w := make([]repeatCPUs, len(ii))
		line := make([]float64, len(ii))
		for k, i := range ii {
			v[k], w[k], line[k] = vals[i], where[i], where[i].line
		}
		return Mode{Repeats: len(ii), Median: median(v), Placement: describeCPUs(w), LineRTT: nonzeroMedian(line)}
	}
	return []Mode{group(idx[:split]), group(idx[split:])}
}

// splitAbove looks for the largest ratio between neighbours of n sorted
// values (v(i) the i-th, a value at or below 0 taking no part) and returns
// the index of the upper of the two when that ratio exceeds BimodalRatio,
// else -1: where findModes, findLinePhases and the answer's line speeds
// cut their values into two groups.
func splitAbove(n int, v func(i int) float64) int {
	best, split := 0.0, -1
	for i := 1; i < n; i++ {
		lo, hi := v(i-1), v(i)
		if lo <= 0 {
			continue
		}
		if r := hi / lo; r > best {
			best, split = r, i
		}
	}
	if best <= BimodalRatio {
		return -1
	}
	return split
}

// medianCI returns the median of vals and its 95% confidence interval as
// benchmath (benchstat) computes it; zeros for no values.
func medianCI(vals []float64) (center, lo, hi float64) {
	if len(vals) == 0 {
		return 0, 0, 0
	}
	sum := benchmath.AssumeNothing.Summary(newSample(vals), Confidence)
	return sum.Center, sum.Lo, sum.Hi
}

// newSample returns a benchmath sample of a copy of vals (NewSample sorts
// its argument in place).
func newSample(vals []float64) *benchmath.Sample {
	return benchmath.NewSample(append([]float64(nil), vals...), &benchmath.DefaultThresholds)
}

// median returns the median of vals, or 0 for none.
func median(vals []float64) float64 {
	if len(vals) == 0 {
		return 0
	}
	m, err := stats.Median(vals)
	if err != nil {
		return 0
	}
	return m
}

// describeCPUs returns where the ends ran over a set of repeats: for each
// side the union of the CPU numbers sampled ("bench 0,1 / peer 1"); when
// the repeats ran in different places, the distinct per-repeat places
// joined by "; " ("bench 0 / peer 0; bench 0 / peer 1"). It returns ""
// when nothing was sampled.
func describeCPUs(rs []repeatCPUs) string {
	var each []string
	same, cross := 0, 0
	for _, r := range rs {
		if b, okb := dominantCPU(r.bench); okb {
			if p, okp := dominantCPU(r.peer); okp {
				if b == p {
					same++
				} else {
					cross++
				}
				continue
			}
		}
		b, p := unionCPUs([]string{r.bench}), unionCPUs([]string{r.peer})
		if b == "" && p == "" {
			continue
		}
		if b == "" {
			b = "?"
		}
		if p == "" {
			p = "?"
		}
		each = appendDistinct(each, "bench "+b+" / peer "+p)
	}
	var counted []string
	if same > 0 {
		counted = append(counted, "same-cpu×"+strconv.Itoa(same))
	}
	if cross > 0 {
		counted = append(counted, "cross-cpu×"+strconv.Itoa(cross))
	}
	if same < cross && len(counted) == 2 {
		counted[0], counted[1] = counted[1], counted[0]
	}
	return strings.Join(append(counted, each...), "; ")
}

// dominantCPU reads a CPU list in the runner's "cpu:weight" form
// ("0:28,1:7"; the weight is milliseconds of run time or, in older
// records, a sample count: see bench.Result.CPUsUnit) and returns the CPU
// with the largest weight, where the process mostly ran. Lists without
// weights, or with a tie for the top, have no dominant CPU.
func dominantCPU(list string) (int, bool) {
	best, bestN, tie := -1, -1, false
	for _, f := range strings.Split(list, ",") {
		c, n, ok := strings.Cut(strings.TrimSpace(f), ":")
		if !ok {
			return 0, false
		}
		cpu, err1 := strconv.Atoi(c)
		cnt, err2 := strconv.Atoi(n)
		if err1 != nil || err2 != nil || cpu < 0 || cnt < 0 {
			return 0, false
		}
		switch {
		case cnt > bestN:
			best, bestN, tie = cpu, cnt, false
		case cnt == bestN:
			tie = true
		}
	}
	return best, best >= 0 && !tie
}

// unionCPUs merges CPU lists such as "0,1", "1" and "2-3" into one sorted
// list "0,1,2,3". Entries it cannot parse are kept verbatim after the
// numbers.
func unionCPUs(lists []string) string {
	set := map[int]bool{}
	var odd []string
	for _, l := range lists {
		for _, f := range strings.Split(l, ",") {
			f = strings.TrimSpace(f)
			if cpu, _, counted := strings.Cut(f, ":"); counted {
				f = cpu // the runner's "cpu:weight" form
			}
			if f == "" {
				continue
			}
			a, b, isRange := strings.Cut(f, "-")
			lo, err1 := strconv.Atoi(a)
			hi := lo
			var err2 error
			if isRange {
				hi, err2 = strconv.Atoi(b)
			}
			if err1 != nil || err2 != nil || lo < 0 || hi < lo || hi-lo > 4096 {
				odd = appendDistinct(odd, f)
				continue
			}
			for c := lo; c <= hi; c++ {
				set[c] = true
			}
		}
	}
	nums := make([]int, 0, len(set))
	for c := range set {
		nums = append(nums, c)
	}
	sort.Ints(nums)
	parts := make([]string, 0, len(nums)+len(odd))
	for _, c := range nums {
		parts = append(parts, strconv.Itoa(c))
	}
	return strings.Join(append(parts, odd...), ",")
}

// appendDistinct appends s to list unless it is empty or already there.
func appendDistinct(list []string, s string) []string {
	if s == "" {
		return list
	}
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}

// finite reports whether v is neither infinite nor NaN.
func finite(v float64) bool { return !math.IsInf(v, 0) && !math.IsNaN(v) }
