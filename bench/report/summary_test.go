package report

import (
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/internal/hist"
)

// res is a compact description of one synthetic result for unit tests.
type res struct {
	workload, transport, variant string
	size                         int
	rep                          int
	status, reason               string
	rtNS                         []int64 // round-trip values to record; none means no latency
	msgs, bytes                  int64
	durNS                        int64
	cpuNS                        int64 // split evenly over bench user/sys and peer user/sys
	benchCPUs, peerCPUs          string
	opts                         map[string]string
	achieved                     float64
	sampleEvery                  int
}

func (r res) result(tb testing.TB) bench.Result {
	tb.Helper()
	out := bench.Result{Type: bench.KindResult, Workload: r.workload, Transport: r.transport, Variant: r.variant,
		Size: r.size, Conns: 1, Placement: "unpinned", Repeat: r.rep, Status: r.status, Reason: r.reason,
		Messages: r.msgs, Bytes: r.bytes, DurationNS: r.durNS, BenchCPUs: r.benchCPUs, PeerCPUs: r.peerCPUs,
		Options: r.opts, Achieved: r.achieved, SampleEvery: r.sampleEvery,
		BenchUserNS: r.cpuNS / 4, BenchSysNS: r.cpuNS / 4, PeerUserNS: r.cpuNS / 4, PeerSysNS: r.cpuNS / 4}
	if out.Status == "" {
		out.Status = bench.StatusOK
	}
	if out.Workload == "" {
		out.Workload = "pingpong"
	}
	if out.Size == 0 {
		out.Size = 64
	}
	if out.DurationNS == 0 && out.Status == bench.StatusOK {
		out.DurationNS = 1e9
	}
	if len(r.rtNS) > 0 {
		h := hist.New()
		for _, v := range r.rtNS {
			h.Record(v)
		}
		enc, err := h.Encode()
		if err != nil {
			tb.Fatal(err)
		}
		out.LatencyKind, out.Hist = bench.LatencyRoundTrip, enc
	}
	return out
}

// repeatsOf makes one OK pingpong result per p50 value (each histogram
// holds only that value), with msgs messages each.
func repeatsOf(tb testing.TB, transport string, p50s ...int64) []bench.Result {
	tb.Helper()
	var out []bench.Result
	for i, v := range p50s {
		out = append(out, res{transport: transport, rep: i, rtNS: []int64{v, v, v}, msgs: 1000, bytes: 64000}.result(tb))
	}
	return out
}

func near(a, b float64) bool { return math.Abs(a-b) <= 0.002*math.Max(math.Abs(a), math.Abs(b)) }

// TestSummarizeWeighsSampledRepeats merges a repeat that timed one round
// trip in 16 with one that timed them all: each timed round trip of the
// first stands for 16, so its 10 values at 1 µs count as 160 against the
// second's 40 at 5 µs.
func TestSummarizeWeighsSampledRepeats(t *testing.T) {
	fill := func(v int64, n int) []int64 {
		out := make([]int64, n)
		for i := range out {
			out[i] = v
		}
		return out
	}
	rs := []bench.Result{
		res{rep: 0, rtNS: fill(1000, 10), msgs: 160, sampleEvery: 16}.result(t),
		res{rep: 1, rtNS: fill(5000, 40), msgs: 40}.result(t),
	}
	s := Summarize(rs)[0]
	// 200 round trips: 160 at 1 µs, 40 at 5 µs. Unweighted, the 10 sampled
	// values against 40 would give p50 5 µs and mean 4.2 µs.
	if s.Latency.Count() != 200 {
		t.Errorf("merged histogram holds %d round trips, want 200", s.Latency.Count())
	}
	if !near(float64(s.P50), 1000) || !near(float64(s.P90), 5000) || !near(s.Mean, 1800) {
		t.Errorf("merged p50 %d p90 %d mean %v; want 1000, 5000, 1800", s.P50, s.P90, s.Mean)
	}
	// The per-repeat figures are each repeat's own.
	if len(s.RepeatP50) != 2 || !near(s.RepeatP50[0], 1000) || !near(s.RepeatP50[1], 5000) {
		t.Errorf("per-repeat p50s %v", s.RepeatP50)
	}
}

func TestSummarizeGroupsInRunOrder(t *testing.T) {
	var rs []bench.Result
	for rep := 0; rep < 2; rep++ { // interleaved repeats
		for _, tr := range []string{"unix", "pipe", "tcp-localhost"} {
			rs = append(rs, res{transport: tr, rep: rep, rtNS: []int64{1000}, msgs: 1}.result(t))
		}
	}
	s := Summarize(rs)
	var got []string
	for _, x := range s {
		got = append(got, x.Case.Transport)
		if x.Repeats != 2 || x.OK != 2 {
			t.Errorf("%s: %d repeats, %d ok", x.Case.Transport, x.Repeats, x.OK)
		}
	}
	if strings.Join(got, ",") != "unix,pipe,tcp-localhost" {
		t.Errorf("order %v, want run order", got)
	}
	if len(Summarize(nil)) != 0 {
		t.Error("summaries of nothing")
	}
}

func TestSummarizeStatistics(t *testing.T) {
	rs := []bench.Result{
		res{rep: 0, rtNS: []int64{1000, 2000, 3000, 4000}, msgs: 100, bytes: 6400, durNS: 1e9, cpuNS: 400_000,
			benchCPUs: "0", peerCPUs: "1", opts: map[string]string{"sndbuf": "4096"}}.result(t),
		res{rep: 1, rtNS: []int64{5000, 6000, 7000, 8000}, msgs: 300, bytes: 19200, durNS: 2e9, cpuNS: 800_000,
			benchCPUs: "0,1", peerCPUs: "1", opts: map[string]string{"sndbuf": "8192"}}.result(t),
		res{rep: 2, status: bench.StatusFailed, reason: "peer died"}.result(t),
		res{rep: 3, status: bench.StatusFailed, reason: "peer died"}.result(t),
		res{rep: 4, status: bench.StatusSkipped, reason: "not here"}.result(t),
	}
	s := Summarize(rs)[0]
	if s.Repeats != 5 || s.OK != 2 || s.Failed != 2 || s.Skipped != 1 {
		t.Errorf("counts %d/%d/%d/%d", s.Repeats, s.OK, s.Failed, s.Skipped)
	}
	if s.Reason != "peer died; not here" {
		t.Errorf("reason %q", s.Reason)
	}
	// Merged histogram: 1000..8000, p50 is 4000, max 8000, mean 4500.
	if !near(float64(s.P50), 4000) || !near(float64(s.Max), 8000) || !near(s.Mean, 4500) {
		t.Errorf("merged p50 %d max %d mean %v", s.P50, s.Max, s.Mean)
	}
	// Per-repeat p50s are 2000 and 6000: median 4000.
	if !near(s.P50Median, 4000) || len(s.RepeatP50) != 2 {
		t.Errorf("p50 median %v of %v", s.P50Median, s.RepeatP50)
	}
	if !math.IsInf(s.P50Lo, -1) || !math.IsInf(s.P50Hi, 1) {
		t.Errorf("two repeats give a bounded interval [%v, %v]", s.P50Lo, s.P50Hi)
	}
	// Rates: 100 msg/s and 150 msg/s.
	if !near(s.MsgRate, 125) || !near(s.MBps, 125*64/1e6) {
		t.Errorf("msg/s %v MB/s %v", s.MsgRate, s.MBps)
	}
	// CPU: 4000 ns/msg (0.4 ms over 100 messages) and 2667 ns/msg (0.8 ms
	// over 300): the median of the two is 3333, not the pooled 1.2 ms over
	// 400 messages (3000), and it is the figure compare and choose use.
	if !near(s.CPUPerMsgNS, 10000.0/3) || !near(s.BenchCPUPerMsgNS, 5000.0/3) || !near(s.PeerCPUPerMsgNS, 5000.0/3) {
		t.Errorf("CPU/msg %v (%v + %v), want the median of the repeats 3333 (1667 + 1667)",
			s.CPUPerMsgNS, s.BenchCPUPerMsgNS, s.PeerCPUPerMsgNS)
	}
	if c, _, _ := s.CPUPerMsg(); c != s.CPUPerMsgNS {
		t.Errorf("CPUPerMsg() = %v, CPUPerMsgNS = %v: one figure, two values", c, s.CPUPerMsgNS)
	}
	if s.Options["sndbuf"] != "4096|8192" {
		t.Errorf("options %v", s.Options)
	}
	if s.Placement != "bench 0 / peer 1; bench 0,1 / peer 1" {
		t.Errorf("placement %q", s.Placement)
	}
	// The two repeats' p50s are 3× apart: they disagree by mode.
	if !s.Bimodal || len(s.Modes) != 2 || s.Modes[0].Placement != "bench 0 / peer 1" {
		t.Errorf("bimodal %v, modes %+v", s.Bimodal, s.Modes)
	}
}

func TestSummarizeConfidenceInterval(t *testing.T) {
	tests := []struct {
		name    string
		p50s    []int64
		bounded bool
	}{
		{"5 repeats: unbounded, as benchstat", []int64{1000, 1010, 1020, 1030, 1040}, false},
		{"6 repeats: bounded", []int64{1000, 1010, 1020, 1030, 1040, 1050}, true},
		{"10 repeats: bounded", []int64{1000, 1010, 1020, 1030, 1040, 1050, 1060, 1070, 1080, 1090}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(repeatsOf(t, "unix", tt.p50s...))[0]
			bounded := finite(s.P50Lo) && finite(s.P50Hi)
			if bounded != tt.bounded {
				t.Fatalf("interval [%v, %v], bounded %v, want %v", s.P50Lo, s.P50Hi, bounded, tt.bounded)
			}
			if bounded && !(s.P50Lo <= s.P50Median && s.P50Median <= s.P50Hi) {
				t.Errorf("median %v outside its interval [%v, %v]", s.P50Median, s.P50Lo, s.P50Hi)
			}
			if bounded && (s.P50Lo < 990 || s.P50Hi > 1100) {
				t.Errorf("interval [%v, %v] is wider than the data", s.P50Lo, s.P50Hi)
			}
		})
	}
}

func TestBimodal(t *testing.T) {
	tests := []struct {
		name    string
		p50s    []int64
		bimodal bool
		modes   [2]int // repeats in the lower and upper group
	}{
		{"steady", []int64{10000, 10500, 9800, 10200, 10100}, false, [2]int{}},
		{"1.9x spread is not bimodal", []int64{10000, 19000, 10000, 19000, 10000}, false, [2]int{}},
		{"same-CPU and cross-CPU modes", []int64{5000, 20000, 5100, 21000, 20500}, true, [2]int{2, 3}},
		{"one repeat in the other mode", []int64{20000, 20100, 5000, 20500, 19900}, true, [2]int{1, 4}},
		{"single repeat", []int64{5000}, false, [2]int{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(repeatsOf(t, "unix", tt.p50s...))[0]
			if s.Bimodal != tt.bimodal {
				t.Fatalf("bimodal %v, want %v (p50s %v)", s.Bimodal, tt.bimodal, s.RepeatP50)
			}
			if !tt.bimodal {
				if s.Modes != nil {
					t.Errorf("modes %v for a unimodal case", s.Modes)
				}
				return
			}
			if len(s.Modes) != 2 || s.Modes[0].Repeats != tt.modes[0] || s.Modes[1].Repeats != tt.modes[1] {
				t.Fatalf("modes %+v, want %v repeats", s.Modes, tt.modes)
			}
			if s.Modes[0].Median*BimodalRatio >= s.Modes[1].Median {
				t.Errorf("mode medians %v and %v are not 2× apart", s.Modes[0].Median, s.Modes[1].Median)
			}
		})
	}
}

func TestBimodalThroughput(t *testing.T) {
	var rs []bench.Result
	for i, msgs := range []int64{1000, 1050, 3000, 3100, 990} {
		rs = append(rs, res{workload: "stream", rep: i, msgs: msgs, bytes: msgs * 64}.result(t))
	}
	s := Summarize(rs)[0]
	if !s.Bimodal || s.ModeMetric() != "msg/s" || s.Modes[0].Repeats != 3 {
		t.Errorf("stream with rates 1000 vs 3000: bimodal %v on %s, modes %+v", s.Bimodal, s.ModeMetric(), s.Modes)
	}
}

func TestSummarizeBadHistogram(t *testing.T) {
	r := res{rep: 0, rtNS: []int64{1000}, msgs: 10}.result(t)
	r.Hist = "not a histogram"
	good := res{rep: 1, rtNS: []int64{2000}, msgs: 10}.result(t)
	s := Summarize([]bench.Result{r, good})[0]
	if s.OK != 2 || len(s.RepeatP50) != 1 || len(s.Notes) != 1 || !strings.Contains(s.Notes[0], "repeat 0") {
		t.Errorf("ok %d, p50s %v, notes %q", s.OK, s.RepeatP50, s.Notes)
	}
	if len(s.RepeatMsgRate) != 2 {
		t.Errorf("rates of both repeats should count: %v", s.RepeatMsgRate)
	}
}

func TestUnionCPUs(t *testing.T) {
	tests := []struct {
		in   []string
		want string
	}{
		{nil, ""},
		{[]string{"1", "0"}, "0,1"},
		{[]string{"0,1", "1"}, "0,1"},
		{[]string{"2-4", "0"}, "0,2,3,4"},
		{[]string{"x", "1", " "}, "1,x"},
		{[]string{"3-1"}, "3-1"},
	}
	for _, tt := range tests {
		if got := unionCPUs(tt.in); got != tt.want {
			t.Errorf("unionCPUs(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDescribeCPUsCounted(t *testing.T) {
	rs := []repeatCPUs{
		{bench: "0:28,1:7", peer: "0:11,1:9"}, // same
		{bench: "1:30", peer: "0:16,1:3"},     // cross
		{bench: "0:30,1:2", peer: "0:20"},     // same
		{bench: "0:5,1:5", peer: "1:3"},       // tie: no dominant CPU
	}
	if got, want := describeCPUs(rs), "same-cpu×2; cross-cpu×1; bench 0,1 / peer 1"; got != want {
		t.Errorf("describeCPUs = %q, want %q", got, want)
	}
	// Run-time weights (ms): a parked thread no longer pulls a repeat
	// onto a second CPU, and a CPU that got under half a millisecond (0)
	// still names where a process ran.
	ms := []repeatCPUs{
		{bench: "1:912,0:2", peer: "1:655"},  // same
		{bench: "0:930", peer: "1:610,0:41"}, // cross
		{bench: "0:0", peer: "0:1"},          // same
	}
	if got, want := describeCPUs(ms), "same-cpu×2; cross-cpu×1"; got != want {
		t.Errorf("describeCPUs(ms) = %q, want %q", got, want)
	}
	for in, want := range map[string]int{"0:3,1:9": 1, "2:1": 2, "3:0": 3} {
		if got, ok := dominantCPU(in); !ok || got != want {
			t.Errorf("dominantCPU(%q) = %d, %v", in, got, ok)
		}
	}
	for _, in := range []string{"", "0,1", "0:x", "0:2,1:2", "0:0,1:0"} {
		if _, ok := dominantCPU(in); ok {
			t.Errorf("dominantCPU(%q) found one", in)
		}
	}
}

func TestSummarizePeerCPUUnknown(t *testing.T) {
	rs := repeatsOf(t, "unix", 1000, 1100, 1200)
	for i := range rs {
		rs[i].BenchUserNS, rs[i].PeerCPUUnknown = 5000, true
	}
	s := Summarize(rs)
	if len(s) != 1 || len(s[0].RepeatCPUPerMsg) != 0 || !slices.Contains(s[0].Notes, "peer CPU unknown (a foreign echo server): CPU/msg left out") {
		t.Fatalf("summary CPU/msg %v, notes %q; want CPU/msg left out with a note", s[0].RepeatCPUPerMsg, s[0].Notes)
	}
	// benchfmt leaves it out too, rather than give the bench process's
	// CPU time alone as both processes'.
	var buf strings.Builder
	if err := renderBenchfmt(&buf, []*analysis{analyze(&bench.Records{Results: rs})}); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.HasPrefix(line, "Benchmark") && strings.Contains(line, "cpu-ns/op") {
			t.Errorf("benchfmt gives CPU/msg with the peer's unknown: %s", line)
		}
	}
}

// TestSummarizeLineRTT: a case's cache line round trip is the median over
// the repeats that recorded one (each the mean of its two probes, or the
// one it has), each group of a bimodal case has its own, and the note
// under the case gives it with the group's placement.
func TestSummarizeLineRTT(t *testing.T) {
	rs := repeatsOf(t, "shm-ring", 700, 710, 1800, 1820, 1790)
	// Fast repeats on a fast machine, slow ones on a slow one; one
	// repeat's end probe missing, one repeat with none.
	lines := [][2]int64{{150, 170}, {160, 0}, {700, 900}, {820, 780}, {0, 0}}
	for i, l := range lines {
		rs[i].LineRTTNS, rs[i].LineRTTEndNS = l[0], l[1]
	}
	sums := Summarize(rs)
	if len(sums) != 1 {
		t.Fatalf("%d summaries, want 1", len(sums))
	}
	s := &sums[0]
	if want := []float64{160, 160, 800, 800, 0}; !slices.Equal(s.RepeatLineRTT, want) {
		t.Errorf("RepeatLineRTT %v, want %v", s.RepeatLineRTT, want)
	}
	if s.LineRTT != 480 { // the median of 160, 160, 800, 800
		t.Errorf("LineRTT %v, want 480", s.LineRTT)
	}
	if !s.Bimodal || len(s.Modes) != 2 {
		t.Fatalf("not bimodal: %+v", s.Modes)
	}
	if s.Modes[0].LineRTT != 160 || s.Modes[1].LineRTT != 800 {
		t.Errorf("the groups' line round trips %v and %v, want 160 and 800", s.Modes[0].LineRTT, s.Modes[1].LineRTT)
	}
	note := modesNote(s)
	for _, want := range []string{"2 repeats at 705ns (cache line round trip 160ns)", "3 repeats at 1.80µs (cache line round trip 800ns)"} {
		if !strings.Contains(note, want) {
			t.Errorf("note %q lacks %q", note, want)
		}
	}
	// Records without a probe (older ones, a remote peer) give none.
	old := Summarize(repeatsOf(t, "shm-ring", 700, 710))
	if old[0].LineRTT != 0 || strings.Contains(modesNote(&old[0]), "cache line") {
		t.Errorf("records without a probe: LineRTT %v", old[0].LineRTT)
	}
}

// TestSummarizeLinePhases: a case whose repeats saw the cache line round
// trip at two speeds more than 2× apart is split by it, each group with
// the median of the metric the workload is ranked by, and the note under
// the case says so; one speed, or no probe, gives no split.
func TestSummarizeLinePhases(t *testing.T) {
	var rs []bench.Result
	// fanin, ranked by msg/s: fast lines with 900k..1M msg/s, slow ones
	// with 400k..500k; a repeat without a probe takes no part.
	for i, x := range []struct {
		line, rate int64
	}{{180, 900_000}, {900, 450_000}, {190, 1_000_000}, {850, 400_000}, {0, 10}, {880, 500_000}} {
		r := res{workload: "fanin", transport: "shm-ring", size: 1024, rep: i, rtNS: []int64{20_000}, msgs: x.rate, bytes: x.rate * 1024}.result(t)
		r.LineRTTNS, r.LineRTTEndNS = x.line, x.line
		rs = append(rs, r)
	}
	s := Summarize(rs)[0]
	if s.PhaseMetric != MetricRate || len(s.LinePhases) != 2 {
		t.Fatalf("phases %+v by %q, want two by msg/s", s.LinePhases, s.PhaseMetric)
	}
	want := []LinePhase{{Repeats: 2, LineLo: 180, LineHi: 190, Median: 950_000}, {Repeats: 3, LineLo: 850, LineHi: 900, Median: 450_000}}
	if !slices.Equal(s.LinePhases, want) {
		t.Errorf("phases %+v, want %+v", s.LinePhases, want)
	}
	note := linePhasesNote(&s)
	for _, w := range []string{"shm-ring: ", "at 180ns–190ns, 2 repeats gave 950k msg/s", "at 850ns–900ns, 3 repeats gave 450k msg/s"} {
		if !strings.Contains(note, w) {
			t.Errorf("note %q lacks %q", note, w)
		}
	}
	// One speed: lines within 2× of each other.
	for i := range rs {
		rs[i].LineRTTNS, rs[i].LineRTTEndNS = 500+int64(i)*50, 500+int64(i)*50
	}
	if s := Summarize(rs)[0]; s.LinePhases != nil {
		t.Errorf("one speed: phases %+v", s.LinePhases)
	}
	// pingpong is ranked by its p50 round trip.
	pp := repeatsOf(t, "unix", 5000, 9000, 5200)
	for i, l := range []int64{200, 900, 210} {
		pp[i].LineRTTNS = l
	}
	if s := Summarize(pp)[0]; s.PhaseMetric != MetricP50 || len(s.LinePhases) != 2 || !near(s.LinePhases[1].Median, 9000) {
		t.Errorf("pingpong: phases %+v by %q", s.LinePhases, s.PhaseMetric)
	}
}

// TestLinePhasesLeaveOutMixedRepeats: a repeat whose probes before and
// after it were more than 2× apart saw the speed change while it ran; it
// is in neither group, and the note counts it.
func TestLinePhasesLeaveOutMixedRepeats(t *testing.T) {
	var rs []bench.Result
	for i, x := range []struct {
		before, after, rate int64
	}{{180, 190, 900_000}, {900, 880, 450_000}, {200, 210, 1_000_000}, {850, 870, 400_000}, {574, 178, 700_000}} {
		r := res{workload: "fanin", transport: "shm-ring", size: 1024, rep: i, rtNS: []int64{20_000}, msgs: x.rate, bytes: x.rate * 1024}.result(t)
		r.LineRTTNS, r.LineRTTEndNS = x.before, x.after
		rs = append(rs, r)
	}
	s := Summarize(rs)[0]
	if s.LineMixed != 1 || len(s.LinePhases) != 2 || s.LinePhases[0].Repeats != 2 || s.LinePhases[0].LineHi != 205 {
		t.Fatalf("mixed %d, phases %+v", s.LineMixed, s.LinePhases)
	}
	if note := linePhasesNote(&s); !strings.Contains(note, "(medians; 1 repeat whose speed changed while it ran left out)") {
		t.Errorf("note %q does not count the mixed repeat", note)
	}
}
