package report

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/perf/benchmath"

	"github.com/ipcbench/ipcbench/bench"
)

// answerCase is one synthetic case of the answer tests: per-repeat values
// are base, base+step, ... (round-trip ns for pingpong, messages per second
// for fanin and stream).
type answerCase struct {
	workload, transport, variant, placement string
	size, conns                             int
	base, step                              int64
}

// answerRun makes a run of cs with n repeats each.
func answerRun(tb testing.TB, n int, cs []answerCase) *bench.Records {
	tb.Helper()
	var rs []bench.Result
	for rep := 0; rep < n; rep++ {
		for _, c := range cs {
			v := c.base + int64(rep)*c.step
			r := res{workload: c.workload, transport: c.transport, variant: c.variant, size: c.size, rep: rep, msgs: v, bytes: v * int64(c.size)}
			if c.workload != "stream" {
				r.rtNS = []int64{v, v, v}
				if c.workload == "pingpong" {
					r.msgs = 1e9 / v
				}
			}
			out := r.result(tb)
			out.Placement, out.Conns = c.placement, max(c.conns, 1)
			rs = append(rs, out)
		}
	}
	return &bench.Records{Source: "answer.jsonl", Header: bench.Header{Type: bench.KindHeader, Version: bench.RecordVersion}, Results: rs}
}

// answerOf renders the answer block of run alone.
func answerOf(tb testing.TB, run *bench.Records) string {
	tb.Helper()
	var b strings.Builder
	if ans := newAnswer(analyze(run)); ans != nil {
		if err := ans.text(&b); err != nil {
			tb.Fatal(err)
		}
	}
	return b.String()
}

// TestAnswerGolden covers every line of the answer: ties across
// transports and variants, two placements, the localhost shortcut, the
// netpoller and a fastest transport that changes with the connections.
func TestAnswerGolden(t *testing.T) {
	var cs []answerCase
	for _, pl := range []string{"unpinned", "same-core"} {
		shm, unix, unixStep := int64(1300), int64(39000), int64(400)
		if pl == "same-core" {
			// A sleeping hand-off on one core: unix ties with shm-ring.
			shm, unix, unixStep = 39000, 38900, 50
		}
		cs = append(cs,
			answerCase{workload: "pingpong", transport: "shm-ring", placement: pl, size: 64, base: shm, step: 20},
			answerCase{workload: "pingpong", transport: "shm-ring", variant: "wait=spin", placement: pl, size: 64, base: shm + 10, step: 20},
			answerCase{workload: "pingpong", transport: "unix", placement: pl, size: 64, base: unix, step: unixStep},
			answerCase{workload: "pingpong", transport: "unix", variant: "io=raw", placement: pl, size: 64, base: 42000, step: 100},
			answerCase{workload: "pingpong", transport: "tcp-localhost", placement: pl, size: 64, base: 50000, step: 100},
			answerCase{workload: "pingpong", transport: "tcp-public", placement: pl, size: 64, base: 50050, step: 100},
			answerCase{workload: "stream", transport: "shm-ring", placement: pl, size: 65536, base: 40000, step: 10},
			answerCase{workload: "stream", transport: "unix", placement: pl, size: 65536, base: 30000, step: 10},
			answerCase{workload: "fanin", transport: "shm-ring", placement: pl, size: 64, conns: 4, base: 90000, step: 100},
			answerCase{workload: "fanin", transport: "unix", placement: pl, size: 64, conns: 4, base: 100000, step: 100},
			answerCase{workload: "fanin", transport: "unix", variant: "io=raw", placement: pl, size: 64, conns: 4, base: 20000, step: 100},
		)
	}
	got := answerOf(t, answerRun(t, 6, cs))
	golden(t, "answer.golden", []byte(got))
	for _, want := range []string{
		"unix ~ shm-ring",                // same-core pingpong: a tie across transports
		"localhost shortcut: none",       // tcp-public ~ tcp-localhost
		"Go's netpoller against io=raw:", // unix vs unix[io=raw]
		"placement changes the fastest transport in 1 of 3 settings: pingpong 64B", // unix is not tied with shm-ring unpinned
		"64B shm-ring at 1 → unix at 4",                                            // one connection vs four
	} {
		if !strings.Contains(got, want) {
			t.Errorf("answer lacks %q:\n%s", want, got)
		}
	}
}

// TestAnswerFitsOneScreen checks the promise of issue "the answer first":
// for a run shaped like the default suite (every transport, pingpong and
// stream at five sizes, fanin at 4 connections, one placement) the answer
// takes at most 15 lines, and the table format prints it last.
func TestAnswerFitsOneScreen(t *testing.T) {
	var cs []answerCase
	trs := []string{"tcp-localhost", "tcp-public", "unix", "pipe", "shm-lock", "shm-ring"}
	for i, tr := range trs {
		for _, size := range []int{64, 1 << 10, 16 << 10, 64 << 10, 1 << 20} {
			cs = append(cs,
				answerCase{workload: "pingpong", transport: tr, placement: "unpinned", size: size, base: int64(10000 + 1000*i), step: 10},
				answerCase{workload: "stream", transport: tr, placement: "unpinned", size: size, base: int64(10000 + 1000*i), step: 10})
		}
		cs = append(cs, answerCase{workload: "fanin", transport: tr, placement: "unpinned", size: 64, conns: 4, base: int64(50000 - 1000*i), step: 10})
	}
	run := answerRun(t, 6, cs)
	ans := answerOf(t, run)
	if !strings.Contains(ans, "with more connections in the 1 comparison (") {
		t.Errorf("the one comparison of connections is not worded as one:\n%s", ans)
	}
	if n := strings.Count(strings.TrimLeft(ans, "\n"), "\n"); n > 15 || n < 13 {
		t.Errorf("the answer takes %d lines, want 13 (title, header, 11 settings) to 15:\n%s", n, ans)
	}
	var table bytes.Buffer
	if err := Render(&table, "table", run); err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(table.String(), ans) {
		t.Errorf("the table format does not end with the answer:\n%s", table.String())
	}
}

// TestFewRepeatsWarned checks that reports made from fewer than MinRepeats
// repeats say that ~ and ± cannot be trusted, and that reports with enough
// repeats do not.
func TestFewRepeatsWarned(t *testing.T) {
	cs := []answerCase{
		{workload: "pingpong", transport: "unix", placement: "unpinned", size: 64, base: 12000, step: 10},
		{workload: "pingpong", transport: "pipe", placement: "unpinned", size: 64, base: 38000, step: 10},
	}
	for _, tt := range []struct {
		repeats int
		warned  bool
	}{{3, true}, {5, true}, {MinRepeats, false}, {10, false}} {
		run := answerRun(t, tt.repeats, cs)
		for _, format := range []string{"table", "markdown"} {
			var b bytes.Buffer
			if err := Render(&b, format, run); err != nil {
				t.Fatal(err)
			}
			out := b.String()
			if got := strings.Contains(out, "fewer than 6"); got != tt.warned {
				t.Errorf("%d repeats, %s: warned %v, want %v:\n%s", tt.repeats, format, got, tt.warned, out)
			}
			if tt.warned && format == "table" && strings.Count(out, "fewer than 6") != 2 {
				t.Errorf("%d repeats: want the warning under the ranking and in the answer:\n%s", tt.repeats, out)
			}
		}
	}
}

// TestOneComparisonChanged: a run whose one comparison of connections
// changes the fastest transport words it as one.
func TestOneComparisonChanged(t *testing.T) {
	ans := answerOf(t, answerRun(t, 6, []answerCase{
		{workload: "pingpong", transport: "shm-ring", placement: "unpinned", size: 64, base: 1000, step: 10},
		{workload: "pingpong", transport: "unix", placement: "unpinned", size: 64, base: 20000, step: 10},
		{workload: "fanin", transport: "shm-ring", placement: "unpinned", size: 64, conns: 4, base: 10000, step: 10},
		{workload: "fanin", transport: "unix", placement: "unpinned", size: 64, conns: 4, base: 90000, step: 10},
	}))
	if !strings.Contains(ans, "connections change the fastest transport in the 1 comparison (") {
		t.Errorf("one changed comparison not worded as one:\n%s", ans)
	}
}

// TestJSONUnboundedIsNull: with too few repeats for bounded intervals, a
// ranked row's ci95 bounds and a compared shortcut line's ratio bounds are
// present and null, as every other interval's of the json format (the
// rows left them out, and the shortcut wrote 0 for the lower one).
func TestJSONUnboundedIsNull(t *testing.T) {
	run := answerRun(t, 2, []answerCase{
		{workload: "pingpong", transport: "tcp-localhost", placement: "unpinned", size: 64, base: 10000, step: 10},
		{workload: "pingpong", transport: "tcp-public", placement: "unpinned", size: 64, base: 20000, step: 10},
	})
	var b bytes.Buffer
	if err := Render(&b, "json", run); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Runs []struct {
			Rankings []struct {
				Rows []map[string]any `json:"rows"`
			} `json:"rankings"`
			Shortcut []map[string]any `json:"localhost_shortcut"`
		} `json:"runs"`
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Runs) != 1 || len(doc.Runs[0].Rankings) != 1 || len(doc.Runs[0].Shortcut) != 1 {
		t.Fatalf("unexpected shape:\n%s", b.String())
	}
	isNull := func(m map[string]any, key string) bool {
		v, ok := m[key]
		return ok && v == nil
	}
	for _, row := range doc.Runs[0].Rankings[0].Rows {
		if !isNull(row, "ci95_lo") || !isNull(row, "ci95_hi") {
			t.Errorf("ranked row %v: want ci95_lo and ci95_hi null", row)
		}
	}
	if l := doc.Runs[0].Shortcut[0]; !isNull(l, "ratio_ci_lo") || !isNull(l, "ratio_ci_hi") {
		t.Errorf("shortcut line %v: want ratio_ci_lo and ratio_ci_hi null", l)
	}
}

// TestFewRepeatsTie: the warning about too few repeats states the count
// it is about, and what it says of the U test at that count holds:
// checked against the test itself (benchmath, as the reports use it),
// on two sets of n repeats that k of their n×n pairs contradict.
func TestFewRepeatsTie(t *testing.T) {
	// differ reports whether n repeats against n, k of whose pairs go
	// the other way, differ at Alpha.
	differ := func(n, k int) bool {
		old, new := make([]float64, n), make([]float64, n)
		for i := range n {
			old[i], new[i] = float64(i), float64(n+i)
		}
		// The largest of old moved up past k of new: k pairs contradict.
		old[n-1] = float64(n+k-1) + 0.5
		cmp := benchmath.AssumeNothing.Compare(newSample(old), newSample(new))
		return cmp.P <= Alpha
	}
	for n := 1; n < MinRepeats; n++ {
		got := FewRepeatsTie(n)
		if !strings.HasPrefix(got, "~ may mean too few repeats to tell rather than the same") {
			t.Errorf("%d repeats: %q", n, got)
		}
		switch n {
		case 1, 2, 3:
			want := fmt.Sprintf("(%d repeats against %d never differ at α=0.05)", n, n)
			if n == 1 {
				want = "(1 repeat against 1 never differs at α=0.05)"
			}
			if !strings.HasSuffix(got, want) {
				t.Errorf("%d repeats: %q; want it to end %q", n, got, want)
			}
			if differ(n, 0) {
				t.Errorf("%d repeats against %d, every pair one way, differ at α=%v, against %q", n, n, Alpha, got)
			}
		case 4:
			if !strings.Contains(got, "(4 repeats against 4 differ at α=0.05 only when every repeat of one beats every repeat of the other)") {
				t.Errorf("4 repeats: %q", got)
			}
			if !differ(4, 0) || differ(4, 1) {
				t.Errorf("4 against 4: differ with 0 pairs the other way %v, with 1 %v; %q says true, false", differ(4, 0), differ(4, 1), got)
			}
		case 5:
			if !strings.Contains(got, "(5 repeats against 5 differ at α=0.05 only when at most 2 of their 25 pairs go the other way)") {
				t.Errorf("5 repeats: %q", got)
			}
			if !differ(5, 2) || differ(5, 3) {
				t.Errorf("5 against 5: differ with 2 pairs the other way %v, with 3 %v; %q says true, false", differ(5, 2), differ(5, 3), got)
			}
		}
	}
	// The warnings of a report and of compare say the count they are
	// about, not 3 whatever it is.
	for n := 1; n < MinRepeats; n++ {
		if got := fewRepeatsWarning(n); n != 3 && strings.Contains(got, "3 repeats against 3") {
			t.Errorf("%d repeats: %q", n, got)
		}
	}
	if got := fewRepeatsNote([]fewRow{{"pipe", 5}, {"unix", 2}}); !strings.Contains(got, "(2 repeats against 2 never differ") {
		t.Errorf("mixed counts: %q; want the fewest's", got)
	}
}

// TestLineVerdict: the answer's line on the machine's cache line round
// trip: none without probes, the range at one speed, both speeds when
// they split, counting the repeats that changed speed while they ran.
func TestLineVerdict(t *testing.T) {
	mk := func(lines ...[2]int64) []bench.Result {
		var rs []bench.Result
		for i, l := range lines {
			r := res{transport: "shm-ring", rep: i, rtNS: []int64{1000}, msgs: 1000}.result(t)
			r.LineRTTNS, r.LineRTTEndNS = l[0], l[1]
			if l[0] > 0 || l[1] > 0 {
				r.LineRTTCPUs = "0,1"
			}
			rs = append(rs, r)
		}
		return rs
	}
	if got := lineVerdict(mk([2]int64{0, 0})); got != "" {
		t.Errorf("no probes: %q", got)
	}
	if got, want := lineVerdict(mk([2]int64{800, 900}, [2]int64{1000, 1000})), "cache line round trip between CPUs: 850ns–1.00µs throughout (line_rtt_ns)"; got != want {
		t.Errorf("one speed: %q, want %q", got, want)
	}
	failed := mk([2]int64{100, 100})[0]
	failed.Status = bench.StatusFailed
	rs := append(mk([2]int64{180, 200}, [2]int64{900, 900}, [2]int64{950, 850}, [2]int64{600, 200}), failed)
	want := "cache line round trip between CPUs: two speeds, 190ns (1 repeat) and 900ns (2), 1 changing within a repeat; shared memory follows it: see the notes under the rankings"
	if got := lineVerdict(rs); got != want {
		t.Errorf("two speeds: %q, want %q", got, want)
	}
	// Two pairs of CPUs, one near and one far: each has its own range,
	// not two speeds of one.
	far := mk([2]int64{900, 900}, [2]int64{950, 950})
	for i := range far {
		far[i].LineRTTCPUs = "0,2"
	}
	pairs := append(mk([2]int64{180, 200}, [2]int64{190, 190}), far...)
	want = "cache line round trip: between CPUs 0,1, 190ns throughout; between CPUs 0,2, 900ns–950ns throughout (line_rtt_ns)"
	if got := lineVerdict(pairs); got != want {
		t.Errorf("two pairs: %q, want %q", got, want)
	}
}
