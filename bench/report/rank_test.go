package report

import (
	"bytes"
	"math"
	"strings"
	"testing"

	"github.com/ipcbench/ipcbench/bench"
)

// spread returns n values around v, ±1% apart, so repeats are not tied.
func spread(v int64, n int) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = v + v*int64(i-n/2)/100
	}
	return out
}

func TestRankPingPong(t *testing.T) {
	var rs []bench.Result
	rs = append(rs, repeatsOf(t, "tcp-localhost", spread(20000, 5)...)...)
	rs = append(rs, repeatsOf(t, "shm-lock", spread(3000, 5)...)...)
	rs = append(rs, repeatsOf(t, "unix", spread(10000, 5)...)...)
	rs = append(rs, repeatsOf(t, "pipe", spread(10050, 5)...)...) // within unix's noise
	for i := 0; i < 5; i++ {
		rs = append(rs, res{transport: "tcp-public", rep: i, status: bench.StatusSkipped, reason: "no address"}.result(t))
	}
	rks := Rank(Summarize(rs))
	if len(rks) != 1 {
		t.Fatalf("%d rankings, want 1", len(rks))
	}
	rk := rks[0]
	if rk.Metric != MetricP50 || !rk.LowerIsBetter || rk.Workload != "pingpong" || rk.Size != 64 {
		t.Errorf("ranking %+v", rk)
	}
	var order []string
	for _, row := range rk.Rows {
		order = append(order, row.Summary.Case.Transport)
	}
	if got := strings.Join(order, ","); got != "shm-lock,unix,pipe,tcp-localhost,tcp-public" {
		t.Fatalf("order %s", got)
	}
	best := rk.Rows[0]
	if !best.Ranked || best.Ratio != 1 || best.Noise || !near(best.Value, 3000) {
		t.Errorf("best row %+v", best)
	}
	if r := rk.Rows[1]; !near(r.Ratio, 10000.0/3000) || r.Noise || r.P > Alpha {
		t.Errorf("unix: ratio %v noise %v p %v", r.Ratio, r.Noise, r.P)
	}
	if last := rk.Rows[4]; last.Ranked || last.Summary.Reason != "no address" {
		t.Errorf("skipped row %+v", last)
	}
}

// TestRankNoise checks that "~" follows the U test: overlapping repeats are
// noise, separated ones are not.
func TestRankNoise(t *testing.T) {
	tests := []struct {
		name  string
		a, b  []int64
		noise bool
	}{
		{"interleaved repeats", []int64{1000, 1020, 1040, 1060, 1080}, []int64{1010, 1030, 1050, 1070, 1090}, true},
		{"separated repeats", []int64{1000, 1001, 1002, 1003, 1004}, []int64{1010, 1011, 1012, 1013, 1014}, false},
		{"too few repeats to tell", []int64{1000, 1001}, []int64{2000, 2001}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := append(repeatsOf(t, "a", tt.a...), repeatsOf(t, "b", tt.b...)...)
			rk := Rank(Summarize(rs))[0]
			if got := rk.Rows[1].Noise; got != tt.noise {
				t.Errorf("noise %v, want %v (p=%v)", got, tt.noise, rk.Rows[1].P)
			}
		})
	}
}

func TestRankMetrics(t *testing.T) {
	tests := []struct {
		workload    string
		latency     bool
		metric      string
		lowerBetter bool
	}{
		{"pingpong", true, MetricP50, true},
		{"connect", true, MetricP50, true},
		{"stream", false, MetricMBps, false},
		{"fanin", false, MetricRate, false},
		{"rate", true, MetricP99, true},
		{"future-latency", true, MetricP50, true},
		{"future-throughput", false, MetricRate, false},
	}
	for _, tt := range tests {
		t.Run(tt.workload, func(t *testing.T) {
			var rs []bench.Result
			for i, msgs := range []int64{1000, 2000} {
				r := res{workload: tt.workload, transport: "t" + string(rune('a'+i)), msgs: msgs, bytes: msgs * 64}
				if tt.latency {
					r.rtNS = []int64{1e9 / msgs}
				}
				rs = append(rs, r.result(t))
			}
			rk := Rank(Summarize(rs))[0]
			if rk.Metric != tt.metric || rk.LowerIsBetter != tt.lowerBetter {
				t.Fatalf("metric %q lower %v, want %q %v", rk.Metric, rk.LowerIsBetter, tt.metric, tt.lowerBetter)
			}
			// The faster transport (tb: more messages, shorter round trips) ranks first.
			if rk.Rows[0].Summary.Case.Transport != "tb" {
				t.Errorf("best %s, want tb", rk.Rows[0].Summary.Case.Transport)
			}
			if !near(rk.Rows[1].Ratio, 2) {
				t.Errorf("ratio %v, want 2", rk.Rows[1].Ratio)
			}
		})
	}
}

func TestRankGroupsAndOrder(t *testing.T) {
	var rs []bench.Result
	add := func(workload string, size, conns int, placement string) {
		r := res{workload: workload, transport: "unix", size: size, rtNS: []int64{1000}, msgs: 10}.result(t)
		r.Conns, r.Placement = conns, placement
		rs = append(rs, r)
	}
	add("stream", 1024, 1, "unpinned")
	add("pingpong", 1024, 1, "unpinned")
	add("pingpong", 64, 1, "unpinned")
	add("stream", 64, 1, "unpinned")
	add("pingpong", 64, 1, "cross-core")
	add("fanin", 64, 8, "unpinned")
	add("fanin", 64, 2, "unpinned")
	var got []string
	for _, rk := range Rank(Summarize(rs)) {
		got = append(got, rankingTitle(&rk))
	}
	want := []string{
		"stream 64B, 1 conn, placement unpinned",
		"stream 1KiB, 1 conn, placement unpinned",
		"pingpong 64B, 1 conn, placement unpinned",
		"pingpong 1KiB, 1 conn, placement unpinned",
		"fanin 64B, 2 conns, placement unpinned",
		"fanin 64B, 8 conns, placement unpinned",
		"pingpong 64B, 1 conn, placement cross-core",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("rankings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestRatio(t *testing.T) {
	tests := []struct {
		best, v     float64
		lowerBetter bool
		want        float64
	}{
		{10, 15, true, 1.5},
		{100, 50, false, 2},
		{0, 0, true, 1},
		{100, 0, false, math.Inf(1)},
	}
	for _, tt := range tests {
		if got := ratio(tt.best, tt.v, tt.lowerBetter); got != tt.want {
			t.Errorf("ratio(%v, %v, %v) = %v, want %v", tt.best, tt.v, tt.lowerBetter, got, tt.want)
		}
	}
}

func TestLocalhostShortcut(t *testing.T) {
	var rs []bench.Result
	rs = append(rs, repeatsOf(t, "tcp-localhost", 18000, 18100, 18200, 18300, 18400)...)
	rs = append(rs, repeatsOf(t, "tcp-public", 18050, 18150, 18250, 18350, 18450)...)
	rs = append(rs, repeatsOf(t, "unix", spread(5000, 5)...)...)
	lines := LocalhostShortcut(Summarize(rs))
	if len(lines) != 1 {
		t.Fatalf("%d lines, want 1", len(lines))
	}
	l := lines[0]
	if l.Significant || l.Missing != "" || l.LocalhostN != 5 || l.PublicN != 5 {
		t.Errorf("line %+v", l)
	}
	if !(l.RatioLo <= 1 && 1 <= l.RatioHi) || math.Abs(l.Ratio-1) > 0.01 {
		t.Errorf("ratio %v [%v, %v] should be about 1", l.Ratio, l.RatioLo, l.RatioHi)
	}
	s := l.String()
	for _, want := range []string{"localhost shortcut: pingpong 64B", "tcp-localhost 18.2µs", "tcp-public 18.3µs", "round trip", ": ~ (no significant difference", "p=", "n=5+5"} {
		if !strings.Contains(s, want) {
			t.Errorf("%q does not contain %q", s, want)
		}
	}
}

func TestLocalhostShortcutSignificant(t *testing.T) {
	tests := []struct {
		name      string
		localhost []int64
		public    []int64
		want      string
	}{
		{"public slower", spread(20000, 6), spread(30000, 6), "tcp-public 1.50× slower"},
		{"public faster", spread(30000, 6), spread(20000, 6), "tcp-public 1.50× faster"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := append(repeatsOf(t, "tcp-localhost", tt.localhost...), repeatsOf(t, "tcp-public", tt.public...)...)
			l := LocalhostShortcut(Summarize(rs))[0]
			if !l.Significant || l.P > Alpha {
				t.Fatalf("not significant: %+v", l)
			}
			if !strings.Contains(l.String(), tt.want) || !strings.Contains(l.String(), "95% CI") {
				t.Errorf("%q does not say %q with an interval", l.String(), tt.want)
			}
		})
	}
}

func TestLocalhostShortcutMissing(t *testing.T) {
	rs := repeatsOf(t, "tcp-localhost", 1000, 1000)
	for i := 0; i < 2; i++ {
		rs = append(rs, res{transport: "tcp-public", rep: i, status: bench.StatusSkipped, reason: "no address"}.result(t))
	}
	rs = append(rs, repeatsOf(t, "unix", 1000)...)
	lines := LocalhostShortcut(Summarize(rs))
	if len(lines) != 1 {
		t.Fatalf("%d lines", len(lines))
	}
	if got := lines[0].String(); !strings.Contains(got, "not compared: tcp-public skipped (no address)") {
		t.Errorf("line %q", got)
	}
	// Only one of the pair planned: no line at all.
	if l := LocalhostShortcut(Summarize(repeatsOf(t, "tcp-localhost", 1000))); len(l) != 0 {
		t.Errorf("lines %v without tcp-public", l)
	}
}

func TestRatioCI(t *testing.T) {
	tests := []struct {
		name    string
		x, y    []float64
		est     float64
		bounded bool
		minConf float64
	}{
		{"exact double", []float64{20, 22, 24, 26, 28}, []float64{10, 11, 12, 13, 14}, 2, true, 0.95},
		{"2+2 is too few", []float64{2, 3}, []float64{1, 1.5}, 2, false, 1},
		{"6+6 same", []float64{10, 11, 12, 13, 14, 15}, []float64{10, 11, 12, 13, 14, 15}, 1, true, 0.95},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			est, lo, hi, conf := ratioCI(tt.x, tt.y, Confidence)
			if !near(est, tt.est) {
				t.Errorf("estimate %v, want %v", est, tt.est)
			}
			if bounded := finite(hi) && lo > 0; bounded != tt.bounded {
				t.Errorf("interval [%v, %v] bounded %v, want %v", lo, hi, bounded, tt.bounded)
			}
			if conf < tt.minConf {
				t.Errorf("confidence %v < %v", conf, tt.minConf)
			}
			if !(lo <= est && est <= hi) {
				t.Errorf("estimate %v outside [%v, %v]", est, lo, hi)
			}
		})
	}
	if est, _, _, _ := ratioCI([]float64{0, 1}, []float64{1, 2}, Confidence); !math.IsNaN(est) {
		t.Errorf("a zero value gives estimate %v, want NaN", est)
	}
}

func TestFormat(t *testing.T) {
	tests := []struct {
		f    func(float64) string
		in   float64
		want string
	}{
		{FormatNS, 21, "21ns"},
		{FormatNS, 850.5, "851ns"},
		{FormatNS, 9.25, "9.25ns"},
		{FormatNS, 999.7, "1.00µs"},
		{FormatNS, 18234, "18.2µs"},
		{FormatNS, 123456, "123µs"},
		{FormatNS, 1234567, "1.23ms"},
		{FormatNS, 2.5e9, "2.50s"},
		{FormatNS, math.Inf(1), "-"},
		{FormatNS, -1, "-"},
		{FormatRate, 950, "950"},
		{FormatRate, 45600, "45.6k"},
		{FormatRate, 999999, "1.00M"},
		{FormatRate, 1.234e6, "1.23M"},
		{FormatMBps, 0.5123, "0.512"},
		{FormatMBps, 9.996, "10.0"},
		{FormatMBps, 2345.4, "2345"},
		{FormatMBps, 0, "0"},
	}
	for _, tt := range tests {
		if got := tt.f(tt.in); got != tt.want {
			t.Errorf("format(%v) = %q, want %q", tt.in, got, tt.want)
		}
	}
	ci := []struct {
		c, lo, hi float64
		want      string
	}{
		{100, 97, 103, "±3%"},
		{100, math.Inf(-1), math.Inf(1), "±∞"},
		{0, 0, 0, ""},
	}
	for _, tt := range ci {
		if got := FormatCI(tt.c, tt.lo, tt.hi); got != tt.want {
			t.Errorf("FormatCI(%v, %v, %v) = %q, want %q", tt.c, tt.lo, tt.hi, got, tt.want)
		}
	}
}

func TestFormats(t *testing.T) {
	f := Formats()
	if f[0] != "table" {
		t.Errorf("default format %q", f[0])
	}
	run := &bench.Records{Source: "x"}
	for _, name := range f {
		if err := Render(&bytes.Buffer{}, name, run); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestFewRepeatsNote: the note under a ranking names each row with too
// few repeats with its own count when the counts differ, and counts the
// repeats behind the statistics: an OK repeat whose latency cannot be used
// (no histogram) leaves a row of 6 OK repeats with 5, which is too few.
func TestFewRepeatsNote(t *testing.T) {
	noteOf := func(rs []bench.Result) string {
		t.Helper()
		rks := Rank(Summarize(rs))
		if len(rks) != 1 {
			t.Fatalf("%d rankings, want 1", len(rks))
		}
		_, notes := rankingGrid(&rks[0])
		return strings.Join(notes, "\n")
	}
	var rs []bench.Result
	rs = append(rs, repeatsOf(t, "pipe", 1000, 1001)...)
	rs = append(rs, repeatsOf(t, "unix", 3000)...)
	if got, want := noteOf(rs), "pipe (2), unix (1): fewer than 6 OK repeats: "; !strings.HasPrefix(got, want) {
		t.Errorf("note %q, want it to start %q", got, want)
	}
	rs = append(repeatsOf(t, "pipe", 1000, 1001), repeatsOf(t, "unix", 3000, 3001)...)
	if got, want := noteOf(rs), "pipe, unix: only 2 OK repeats, fewer than 6: "; !strings.HasPrefix(got, want) {
		t.Errorf("note %q, want it to start %q", got, want)
	}
	rs = repeatsOf(t, "pipe", 1000, 1001, 1002, 1003, 1004, 1005)
	rs[2].Hist = ""
	if got, want := noteOf(rs), "pipe: only 5 OK repeats, fewer than 6: "; !strings.HasPrefix(got, want) {
		t.Errorf("an OK repeat without latency: note %q, want it to start %q", got, want)
	}
}

// TestModesNoteMedian: the note under a bimodal case says what the median
// in the table describes: the larger group alone, or, with groups of equal
// size, neither (it said "neither" of a median inside a group of 4 of 6).
func TestModesNoteMedian(t *testing.T) {
	for _, tt := range []struct {
		sizes [2]int
		want  string
	}{
		{[2]int{2, 4}, "The median above describes the larger group (4 repeats) alone;"},
		{[2]int{5, 1}, "The median above describes the larger group (5 repeats) alone;"},
		{[2]int{3, 3}, "The median above describes neither;"},
	} {
		s := &Summary{Case: bench.Case{Workload: "pingpong", Transport: "unix"}, RepeatP50: []float64{1}}
		s.Modes = []Mode{{Repeats: tt.sizes[0], Median: 5000}, {Repeats: tt.sizes[1], Median: 12000}}
		if got := modesNote(s); !strings.Contains(got, tt.want) {
			t.Errorf("groups of %v: %q, want %q in it", tt.sizes, got, tt.want)
		}
	}
}
