package choose

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ipcbench/ipcbench/bench"
	"github.com/ipcbench/ipcbench/bench/report"
	"github.com/ipcbench/ipcbench/transports"
	"github.com/ipcbench/ipcbench/transports/all"
	"github.com/ipcbench/ipcbench/transports/peer"
)

// TestMain makes the test binary its own peer, as a program that imports
// this package does in its main: the zero Options.Peer re-executes it.
// With forgetfulEnv set it is instead a program that forgot to
// (forgetfulMain).
func TestMain(m *testing.M) {
	if os.Getenv(forgetfulEnv) != "" {
		os.Exit(forgetfulMain())
	}
	peer.RunIfPeer(all.Lookup)
	goleak.VerifyTestMain(m)
}

// The test binary as a program that calls Measure without calling
// peer.RunIfPeer first (TestForgottenRunIfPeer).
const (
	// forgetfulEnv names the directory where each such process leaves a
	// file named after its depth and pid.
	forgetfulEnv = "CHOOSE_TEST_FORGETFUL"
	// forgetfulDepthEnv is how many such processes are above this one.
	forgetfulDepthEnv = "CHOOSE_TEST_FORGETFUL_DEPTH"
	// forgetfulMaxDepth caps the depth in the test itself: a process this
	// deep exits at once with forgetfulCapped, so that a missing guard
	// makes a bounded tree, not a runaway one.
	forgetfulMaxDepth = 2
	forgetfulCapped   = "forgetful program: depth cap reached"
	// forgetfulFailed starts what a copy started as a peer says on stderr
	// before it exits with status 7: Measure's error.
	forgetfulFailed = "forgetful program: measure failed: "
)

// forgetfulMain is the main of a program that forgot peer.RunIfPeer: it
// measures, and prints Measure's error on stdout as JSON (the top level)
// or on stderr, exiting 7 (a copy started as the peer).
func forgetfulMain() int {
	depth, _ := strconv.Atoi(os.Getenv(forgetfulDepthEnv))
	mark := filepath.Join(os.Getenv(forgetfulEnv), fmt.Sprintf("depth%d-pid%d", depth, os.Getpid()))
	if err := os.WriteFile(mark, nil, 0o600); err != nil {
		fmt.Fprintln(os.Stderr, "forgetful program:", err)
		return 1
	}
	if depth >= forgetfulMaxDepth {
		fmt.Fprintln(os.Stderr, forgetfulCapped)
		return 99
	}
	os.Setenv(forgetfulDepthEnv, strconv.Itoa(depth+1)) // inherited by the copies it starts
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_, err := Measure(ctx, Question{Size: 64}, Options{Transports: []string{"unix"}, Repeats: 1, Duration: 10 * time.Millisecond, Warmup: 5 * time.Millisecond})
	if peer.IsPeer() {
		fmt.Fprintf(os.Stderr, "%s%v\n", forgetfulFailed, err)
		return 7
	}
	json.NewEncoder(os.Stdout).Encode(forgetfulReport{Err: fmt.Sprint(err), PeerStart: errors.Is(err, bench.ErrPeerStart), StartFromPeer: errors.Is(err, peer.ErrStartFromPeer)})
	return 0
}

// forgetfulReport is what the top level of forgetfulMain prints.
type forgetfulReport struct {
	Err                      string
	PeerStart, StartFromPeer bool
}

// TestMeasure runs a small calibration between two processes and checks
// the answer: a winner spec that resolves, every candidate with a value,
// an interval and CPU per message, and the raw records written.
func TestMeasure(t *testing.T) {
	var raw bytes.Buffer
	q := Question{Workload: Pingpong, Size: 4096}
	o := Options{Transports: []string{"unix", "pipe", "shm-ring"}, Duration: 30 * time.Millisecond, Warmup: 5 * time.Millisecond, Repeats: 6, Records: &raw}
	c, err := New(q, o)
	if err != nil {
		t.Fatal(err)
	}
	if _, total, _ := c.Progress(); total != 18 {
		t.Errorf("planned %d case runs, want 3 transports × 6 repeats", total)
	}
	a, err := c.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := all.Resolve(a.Winner); err != nil {
		t.Errorf("winner %q does not resolve: %v", a.Winner, err)
	}
	if len(a.Candidates)+len(a.NotRanked) != 3 || len(a.Candidates) == 0 || a.Candidates[0].Spec != a.Winner {
		t.Fatalf("answer %+v", a)
	}
	if a.Metric != report.MetricP50 || !a.LowerIsBetter || a.Repeats != 6 {
		t.Errorf("metric %q lower %v repeats %d", a.Metric, a.LowerIsBetter, a.Repeats)
	}
	for i, cd := range a.Candidates {
		if cd.Value <= 0 || !(cd.Lo <= cd.Value && cd.Value <= cd.Hi) || cd.CPUPerMsg <= 0 || cd.MsgRate <= 0 {
			t.Errorf("candidate %d %+v", i, cd)
		}
		if i > 0 && cd.Value < a.Candidates[i-1].Value {
			t.Errorf("candidates not best first: %+v", a.Candidates)
		}
	}
	run, err := bench.ReadRecords(&raw, "calibration")
	if err != nil || len(run.Results) != 18 {
		t.Fatalf("raw records: %v (%d results)", err, len(run.Results))
	}
	var text bytes.Buffer
	if err := a.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(text.String(), "\n"); len(lines) < 2 || strings.TrimSpace(lines[1]) != a.Winner || !strings.Contains(text.String(), "CPU/MSG") {
		t.Errorf("text answer:\n%s", text.String())
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	var back map[string]any
	if err := json.Unmarshal(b, &back); err != nil || back["winner"] != a.Winner {
		t.Errorf("json %s: %v", b, err)
	}
}

// TestMeasureStreamAndHTTP: the other workloads are answered by their own
// metric.
func TestMeasureStreamAndHTTP(t *testing.T) {
	for _, tt := range []struct {
		q      Question
		metric string
	}{
		{Question{Workload: Stream, Size: 64 << 10}, report.MetricMBps},
		{Question{Workload: HTTP, Size: 1024}, report.MetricP50},
		{Question{Workload: Pingpong, Size: 64, Conns: 3}, report.MetricRate},
	} {
		// 100 ms: an HTTP round trip over shm-ring can stall for tens of
		// ms on a busy machine, and a repeat that completes no request
		// fails.
		a, err := Measure(context.Background(), tt.q, Options{Transports: []string{"unix,shm-ring"}, Duration: 100 * time.Millisecond, Warmup: 5 * time.Millisecond, Repeats: 2})
		if err != nil {
			t.Fatalf("%+v: %v", tt.q, err)
		}
		if a.Metric != tt.metric || len(a.Candidates) != 2 {
			t.Errorf("%+v: metric %q, %d candidates", tt.q, a.Metric, len(a.Candidates))
		}
		var text bytes.Buffer
		a.WriteText(&text)
		if !strings.Contains(text.String(), "warning: only ") || a.Repeats > 2 {
			t.Errorf("%+v: %d repeats, no warning about too few:\n%s", tt.q, a.Repeats, text.String())
		}
	}
}

// TestBadQuestions are refused before anything runs, each with
// ErrBadQuestion.
func TestBadQuestions(t *testing.T) {
	for _, tt := range []struct {
		q     Question
		o     Options
		field string // the QuestionError's Field
		want  string
	}{
		{Question{Workload: "fanin", Size: 64}, Options{}, "Workload", `workload "fanin"`},
		{Question{Size: 0}, Options{}, "Size", "size 0"},
		{Question{Size: bench.MaxMessageSize + 1}, Options{}, "Size", "size 67108865 out of range 1..64MiB"},
		{Question{Size: 64, Conns: -1}, Options{}, "Conns", "conns -1 out of range 1..1024"},
		{Question{Size: 64, Conns: bench.MaxFaninConns + 1}, Options{}, "Conns", "conns 1025 out of range 1..1024"},
		{Question{Workload: Stream, Size: 64, Conns: 2}, Options{}, "Conns", "only pingpong"},
		{Question{Size: 64, Placement: "nowhere"}, Options{}, "Placement", `placement "nowhere"`},
		{Question{Size: 64, Placement: "0/999"}, Options{}, "Placement", "CPU 999"},
		{Question{Size: 64}, Options{Transports: []string{"carrier-pigeon"}}, "Transports", "unknown transport"},
		{Question{Size: 64}, Options{Transports: []string{"unix[x=1]"}}, "Transports", "unknown option x"},
		{Question{Size: 64}, Options{Transports: []string{"shm-ring[zerocopy=off]"}}, "Transports", "measurement-only"},
		{Question{Size: 64}, Options{Repeats: -1}, "Repeats", "repeats -1"},
		{Question{Size: 64}, Options{Budget: -time.Second}, "Budget", "budget -1s must not be negative"},
		{Question{Size: 64}, Options{Warmup: -time.Second}, "Warmup", "warm-up -1s must not be negative"},
		{Question{Size: 64}, Options{Transports: []string{"unix,unix[io=netpoll]"}}, "Transports", "transport unix given twice"},
		{Question{Size: 64}, Options{Peer: "/nonexistent/peer"}, "Peer", "peer /nonexistent/peer"},
		{Question{Size: 64}, Options{Budget: time.Millisecond}, "Budget", "budget 1ms is less than the 4.2s that 42 case runs (6 repeats of 7 transports) take at the least, each 40ms measured after 60ms of warm-up; give more, or fewer transports"},
		{Question{Size: 64}, Options{Transports: []string{"unix"}, Repeats: 2, Warmup: time.Second, Budget: 2 * time.Second}, "Budget", "less than the 2.08s that 2 case runs (2 repeats of 1 transport) take at the least, each 40ms measured after 1s of warm-up; give more, or fewer repeats"},
		{Question{Size: 64}, Options{Transports: []string{"unix", "pipe"}, Repeats: 2, Budget: time.Millisecond}, "Budget", "give more, or fewer transports or repeats"},
	} {
		_, err := New(tt.q, tt.o)
		if !errors.Is(err, ErrBadQuestion) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New(%+v, %+v) = %v, want ErrBadQuestion mentioning %q", tt.q, tt.o, err, tt.want)
		}
		var qe *QuestionError
		if !errors.As(err, &qe) || qe.Field != tt.field {
			t.Errorf("New(%+v, %+v) = %#v, want a *QuestionError for %s", tt.q, tt.o, err, tt.field)
		}
		if strings.Contains(err.Error(), bench.ErrBadOptions.Error()) {
			t.Errorf("New(%+v, %+v) = %q: says %q after %q", tt.q, tt.o, err, bench.ErrBadOptions, ErrBadQuestion)
		}
	}
}

// TestQuestionLimits: the largest Size and Conns that Question's doc
// allows are accepted.
func TestQuestionLimits(t *testing.T) {
	c, err := New(Question{Size: bench.MaxMessageSize, Conns: bench.MaxFaninConns}, Options{Transports: []string{"unix"}})
	if err != nil {
		t.Fatal(err)
	}
	if q := c.Question(); q.Size != 64<<20 || q.Conns != 1024 {
		t.Errorf("question %+v", q)
	}
}

// TestWriteTextDurations: the calibration line gives its durations to
// three significant digits, not to the nanosecond.
func TestWriteTextDurations(t *testing.T) {
	a := &Answer{
		Question:   Question{Workload: Pingpong, Size: 64, Conns: 1, Placement: "unpinned"},
		Source:     CalibrationSource,
		Metric:     report.MetricP50,
		Winner:     "unix",
		Candidates: []Candidate{{Spec: "unix", Value: 9000, Lo: 8000, Hi: 10000, Ratio: 1}},
		Repeats:    6,
		Elapsed:    12345678901,
		Duration:   97777777,
		Warmup:     60 * time.Millisecond,
	}
	var text bytes.Buffer
	if err := a.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if want := "calibration: 12.3s wall, 6 repeats of 97.8ms (+60ms warm-up) per transport\n"; !strings.HasSuffix(text.String(), want) {
		t.Errorf("text answer ends:\n%s\nwant:\n%s", text.String(), want)
	}
	for d, want := range map[time.Duration]time.Duration{
		0: 0, 999: 999, 1234: 1230, 999600: time.Millisecond, 40 * time.Millisecond: 40 * time.Millisecond, 125_500 * time.Millisecond: 126 * time.Second,
	} {
		if got := round3(d); got != want {
			t.Errorf("round3(%v) = %v, want %v", d, got, want)
		}
	}
}

// TestTiesWithoutCandidates: an Answer without candidates (the zero
// Answer, or one decoded from JSON without them) has no ties; Ties
// panicked.
func TestTiesWithoutCandidates(t *testing.T) {
	if ties := (&Answer{}).Ties(); ties != nil {
		t.Errorf("ties %+v", ties)
	}
}

// TestFitDuration: the default plan of every transport fits the budget,
// and the interval stays within its bounds.
func TestFitDuration(t *testing.T) {
	n := len(all.Names()) * DefaultRepeats
	d := FitDuration(0, n, DefaultWarmup)
	if est := time.Duration(n) * (d + DefaultWarmup + caseOverhead); est > DefaultBudget || d < MinDuration || d > MaxDuration {
		t.Errorf("FitDuration(0, %d) = %v: estimated %v for a budget of %v", n, d, est, DefaultBudget)
	}
	if d := FitDuration(time.Second, 1000, DefaultWarmup); d != MinDuration {
		t.Errorf("a tiny budget gives %v, want MinDuration", d)
	}
	if d := FitDuration(time.Hour, 2, DefaultWarmup); d != MaxDuration {
		t.Errorf("a huge budget gives %v, want MaxDuration", d)
	}
	c, err := New(Question{Size: 64}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if o := c.Options(); o.Duration != d && o.Duration != FitDuration(0, n, DefaultWarmup) || o.Repeats != DefaultRepeats || len(o.Transports) != len(all.Names()) {
		t.Errorf("default plan: %v × %d repeats over %d transports", o.Duration, o.Repeats, len(o.Transports))
	}
}

// TestFromRun answers from a fixed set of records (a subset of an earlier
// reference run, with the measurement-only zerocopy=off variant and fanin
// at 4 connections only): the nearest
// measured size answers when the asked one is missing, and the
// measurement-only variant is never the winner.
// TestFromRunNoRecords: records without a source name and without results
// are named and described in words, not by empty strings.
func TestFromRunNoRecords(t *testing.T) {
	_, err := FromRun(&bench.Records{}, Question{Size: 64})
	if !errors.Is(err, ErrNoAnswer) || !strings.Contains(err.Error(), "the run has no pingpong unpinned results (it has no results at all)") {
		t.Errorf("FromRun of empty records: %v", err)
	}
}

func TestFromRun(t *testing.T) {
	run, err := bench.ReadRecordsFile("testdata/records.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	a, err := FromRun(run, Question{Workload: Stream, Size: 64 << 10})
	if err != nil {
		t.Fatal(err)
	}
	if a.SizeNote != "" || a.Question.Size != 64<<10 || a.Metric != report.MetricMBps {
		t.Errorf("exact size: note %q size %d metric %q", a.SizeNote, a.Question.Size, a.Metric)
	}
	excluded := false
	for _, c := range a.Candidates {
		if strings.Contains(c.Spec, "zerocopy=off") {
			t.Errorf("measurement-only variant ranked: %+v", c)
		}
	}
	for _, n := range a.NotRanked {
		excluded = excluded || n.Spec == "shm-ring[zerocopy=off]" && strings.Contains(n.Reason, "measurement-only")
	}
	if !excluded {
		t.Errorf("zerocopy=off not listed as measurement-only: %+v", a.NotRanked)
	}

	a, err = FromRun(run, Question{Workload: Pingpong, Size: 4096, Placement: "cross-core"})
	if err != nil {
		t.Fatal(err)
	}
	if a.Question.Size != 64<<10 || !strings.Contains(a.SizeNote, "4KiB was not measured") || !strings.Contains(a.SizeNote, "64KiB") {
		t.Errorf("nearest size: size %d note %q", a.Question.Size, a.SizeNote)
	}
	if _, err := all.Resolve(a.Winner); err != nil {
		t.Errorf("winner %q: %v", a.Winner, err)
	}

	a, err = FromRun(run, Question{Workload: Pingpong, Size: 64, Conns: 4})
	if err != nil {
		t.Fatal(err)
	}
	var text bytes.Buffer
	if err := a.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if a.Metric != report.MetricRate || strings.Count(text.String(), "MSG/S") != 1 || !strings.Contains(text.String(), "4 connections") {
		t.Errorf("fanin answer (msg/s once):\n%s", text.String())
	}

	if _, err := FromRun(run, Question{Workload: Pingpong, Size: 64, Conns: 16}); !errors.Is(err, ErrNoAnswer) || !strings.Contains(err.Error(), "no fanin unpinned ×16 results (it has: ") || !strings.Contains(err.Error(), "fanin unpinned ×4") {
		t.Errorf("fanin ×16 from a file with ×4: %v", err)
	}
	if _, err := FromRun(run, Question{Workload: HTTP, Size: 64}); !errors.Is(err, ErrNoAnswer) {
		t.Errorf("http from a file without it: %v", err)
	}

	// Only the transports asked for, variants told apart; "all" is every one.
	spec := func(s string) transports.Spec {
		sp, err := transports.ParseSpec(s)
		if err != nil {
			t.Fatal(err)
		}
		return sp
	}
	a, err = FromRun(run, Question{Workload: Pingpong, Size: 64}, spec("pipe"), spec("unix[io=raw]"))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range a.Candidates {
		got = append(got, c.Spec)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"pipe", "unix[io=raw]"}) || (a.Winner != "pipe" && a.Winner != "unix[io=raw]") {
		t.Errorf("only pipe and unix[io=raw]: candidates %v, winner %q", got, a.Winner)
	}
	everyone, err := FromRun(run, Question{Workload: Pingpong, Size: 64})
	if err != nil {
		t.Fatal(err)
	}
	withAll, err := FromRun(run, Question{Workload: Pingpong, Size: 64}, spec("all"))
	if err != nil || len(withAll.Candidates) != len(everyone.Candidates) || len(everyone.Candidates) <= 2 {
		t.Errorf("-t all: %d candidates (%v), without -t %d", len(withAll.Candidates), err, len(everyone.Candidates))
	}
	// The default variant spelled out selects the default variant's results.
	a, err = FromRun(run, Question{Workload: Pingpong, Size: 64}, spec("pipe[io=netpoll]"))
	if err != nil || len(a.Candidates) != 1 || a.Candidates[0].Spec != "pipe" {
		t.Errorf("only pipe[io=netpoll]: %v, %+v", err, a)
	}
	// Specs are checked as a calibration checks them.
	for _, only := range [][]string{{"bogus"}, {"unix[io=fast]"}, {"unix", "unix"}, {"all", "unix"}, {"unix", "unix[io=netpoll]"}, {"all[io=raw]"}, {"unix[model=fork]"}, {"shm-ring[zerocopy=off]"}} {
		var specs []transports.Spec
		for _, o := range only {
			specs = append(specs, spec(o))
		}
		_, err := FromRun(run, Question{Workload: Pingpong, Size: 64}, specs...)
		var qe *QuestionError
		if !errors.Is(err, ErrBadQuestion) || !errors.As(err, &qe) || qe.Field != "Transports" {
			t.Errorf("only %v: err = %#v, want ErrBadQuestion, a *QuestionError for Transports", only, err)
		}
	}
	// Records of nothing but a measurement-only variant answer nothing,
	// and say why.
	var onlyOff bench.Records
	for _, r := range run.Results {
		if strings.Contains(r.Case().TransportLabel(), "zerocopy=off") {
			onlyOff.Results = append(onlyOff.Results, r)
		}
	}
	if _, err := FromRun(&onlyOff, Question{Workload: Stream, Size: 64 << 10}); len(onlyOff.Results) == 0 || !errors.Is(err, ErrNoAnswer) || !strings.Contains(err.Error(), "shm-ring[zerocopy=off]: measurement-only variant") {
		t.Errorf("records of zerocopy=off alone (%d): %v", len(onlyOff.Results), err)
	}
	_, err = FromRun(run, Question{Workload: Pingpong, Size: 64}, spec("unix"), spec("tcp-localhost"))
	if !errors.Is(err, ErrNoAnswer) || !strings.Contains(err.Error(), "of tcp-localhost (its transports there: pipe, ") {
		t.Errorf("a transport the file lacks: %v", err)
	}
}

// TestRecordsWriteFails: a calibration whose records cannot be written
// stops with the writer's error, as Run's doc says, even though its
// transports could be ranked.
func TestRecordsWriteFails(t *testing.T) {
	errFull := errors.New("disk full")
	_, err := Measure(context.Background(), Question{Size: 64}, Options{Transports: []string{"unix"}, Repeats: 1, Duration: 10 * time.Millisecond, Warmup: 5 * time.Millisecond, Records: failingWriter{errFull}})
	if !errors.Is(err, errFull) {
		t.Fatalf("Measure with records that cannot be written = %v, want the writer's error", err)
	}
}

// failingWriter fails every Write with err.
type failingWriter struct{ err error }

func (w failingWriter) Write([]byte) (int, error) { return 0, w.err }

// TestPeerNotAPeer: a calibration whose peer runs but is not a peer (a
// program that does not call peer.RunIfPeer) fails with
// bench.ErrPeerStart, not with an answer.
func TestPeerNotAPeer(t *testing.T) {
	if _, err := exec.LookPath("true"); err != nil {
		t.Skip("no true(1) in PATH")
	}
	_, err := Measure(context.Background(), Question{Size: 64}, Options{Transports: []string{"unix"}, Peer: "true", Repeats: 1, Duration: 10 * time.Millisecond})
	if !errors.Is(err, bench.ErrPeerStart) {
		t.Fatalf("Measure with true(1) as the peer = %v, want ErrPeerStart", err)
	}
}

// TestPeerStartFailureSaysWhy: a calibration whose peer exits before the
// handshake (here a script that complains and exits 7, as the copy of a
// program that did not call peer.RunIfPeer may) fails with
// bench.ErrPeerStart and says why: the peer's exit status and the end of
// its stderr. It points at raw records only when Options.Records keeps
// them.
func TestPeerStartFailureSaysWhy(t *testing.T) {
	script := filepath.Join(t.TempDir(), "peer.sh")
	const complaint = "peer.sh: cannot read its configuration"
	if err := os.WriteFile(script, []byte("#!/bin/sh\necho '"+complaint+"' >&2\nexit 7\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, records := range []bool{false, true} {
		o := Options{Transports: []string{"unix"}, Peer: script, Repeats: 1, Duration: 10 * time.Millisecond, Warmup: 5 * time.Millisecond}
		var raw bytes.Buffer
		if records {
			o.Records = &raw
		}
		a, err := Measure(context.Background(), Question{Size: 64}, o)
		if a != nil || !errors.Is(err, bench.ErrPeerStart) || errors.Is(err, peer.ErrStartFromPeer) {
			t.Fatalf("Measure with records %v = %+v, %v; want no answer and ErrPeerStart alone", records, a, err)
		}
		msg := err.Error()
		for _, want := range []string{"exited before the handshake: exit status 7", "peer stderr: " + complaint} {
			if !strings.Contains(msg, want) {
				t.Errorf("Measure with records %v = %q; want it to say %q", records, msg, want)
			}
		}
		if got := strings.Contains(msg, "see the raw records"); got != records {
			t.Errorf("Measure with records %v = %q; want it to point at raw records: %v", records, msg, records)
		}
		if n := strings.Count(msg, bench.ErrPeerStart.Error()); n != 1 {
			t.Errorf("Measure = %q; says %q %d times", msg, bench.ErrPeerStart, n)
		}
		t.Logf("records %v: %v", records, err)
	}
}

// TestForgottenRunIfPeer runs the test binary as a program that calls
// Measure without calling peer.RunIfPeer first (forgetfulMain): the copy
// started as its peer must start no copy of its own (its Measure fails at
// once with peer.ErrStartFromPeer), and the program's Measure must fail
// with bench.ErrPeerStart, quoting the copy's exit status and what it
// said. The depth cap of forgetfulMain bounds the tree if the guard is
// missing.
func TestForgottenRunIfPeer(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), forgetfulEnv+"="+dir, forgetfulDepthEnv+"=0")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the program: %v; stderr: %s", err, stderr.String())
	}
	var rep forgetfulReport
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatalf("the program printed %q: %v; stderr: %s", out, err, stderr.String())
	}
	t.Logf("the program's Measure: %s", rep.Err)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	perDepth := map[int]int{}
	for _, e := range ents {
		var depth, pid int
		if _, err := fmt.Sscanf(e.Name(), "depth%d-pid%d", &depth, &pid); err != nil {
			t.Fatalf("mark %q: %v", e.Name(), err)
		}
		perDepth[depth]++
	}
	// The program, and the copy of its one case's two peer starts.
	if perDepth[0] != 1 || perDepth[1] != 2 || len(perDepth) != 2 {
		t.Errorf("processes per depth %v; want the program and its two copies, which start none", perDepth)
	}
	if !rep.PeerStart || rep.StartFromPeer {
		t.Errorf("the program's Measure = %s; want bench.ErrPeerStart, and not peer.ErrStartFromPeer (it is no peer)", rep.Err)
	}
	for _, want := range []string{"exit status 7", forgetfulFailed + "calibration: " + bench.ErrPeerStart.Error() + ": " + peer.ErrStartFromPeer.Error(), "call peer.RunIfPeer first in main (or TestMain)"} {
		if !strings.Contains(rep.Err, want) {
			t.Errorf("the program's Measure = %s; want it to say %q", rep.Err, want)
		}
	}
	if strings.Contains(rep.Err, forgetfulCapped) || strings.Contains(rep.Err, "see the raw records") {
		t.Errorf("the program's Measure = %s; want no depth cap reached and no pointer to raw records it did not keep", rep.Err)
	}
}

// TestBadPeer: New refuses a peer that cannot be executed, with
// ErrBadQuestion naming it and why, before anything runs.
func TestBadPeer(t *testing.T) {
	dir := t.TempDir()
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ peer, want string }{
		{"/nonexistent/peer", "peer /nonexistent/peer: no such file or directory"},
		{dir, "peer " + dir + ": not a regular file"},
		{plain, "peer " + plain + ": not executable by this user"},
		{"ipcbench-no-such-peer", "peer ipcbench-no-such-peer: executable file not found in $PATH"},
	} {
		_, err := New(Question{Size: 64}, Options{Transports: []string{"unix"}, Peer: tt.peer})
		if !errors.Is(err, ErrBadQuestion) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("New with peer %q = %v, want ErrBadQuestion saying %q", tt.peer, err, tt.want)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(Question{Size: 64}, Options{Transports: []string{"unix"}, Peer: exe}); err != nil {
		t.Errorf("New with this executable as the peer: %v", err)
	}
}

// TestBudgetAdviceOneTransport: a budget too short for one transport at
// the default repeats advises only a larger budget: there is nothing
// fewer the caller chose to give.
func TestBudgetAdviceOneTransport(t *testing.T) {
	_, err := New(Question{Size: 64}, Options{Transports: []string{"unix"}, Budget: time.Millisecond})
	if err == nil || !strings.HasSuffix(err.Error(), "of warm-up; give more") {
		t.Fatalf("New = %v; want advice to give more, and nothing else", err)
	}
}

// TestAnswerMeasuredNothing: a candidate that measured nothing (a ratio
// of +Inf to the winner, no CPU figure) is written as JSON, with the ratio
// null, and as text, with "∞×" and "-" as reports write them; the JSON
// failed with "unsupported value: +Inf", the text said "+Inf×" and "0ns".
func TestAnswerMeasuredNothing(t *testing.T) {
	a := &Answer{
		Question: Question{Workload: Stream, Size: 64, Conns: 1, Placement: "unpinned"},
		Source:   CalibrationSource,
		Metric:   report.MetricMBps,
		Winner:   "pipe",
		Candidates: []Candidate{
			{Spec: "pipe", Value: 900, Lo: 800, Hi: 1000, Ratio: 1, CPUPerMsg: 2000, CPULo: 1900, CPUHi: 2100},
			{Spec: "unix", Ratio: math.Inf(1)},
		},
		Repeats: 6,
	}
	b, err := json.Marshal(a)
	if err != nil {
		t.Fatalf("JSON: %v", err)
	}
	var back struct {
		Candidates []struct {
			Ratio *float64 `json:"ratio"`
		} `json:"candidates"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(back.Candidates) != 2 || back.Candidates[0].Ratio == nil || *back.Candidates[0].Ratio != 1 || back.Candidates[1].Ratio != nil {
		t.Errorf("ratios in %s, want 1 and null", b)
	}
	var text bytes.Buffer
	if err := a.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	line := ""
	for l := range strings.Lines(text.String()) {
		if strings.HasPrefix(strings.TrimSpace(l), "unix") {
			line = l
		}
	}
	if f := strings.Fields(line); len(f) < 2 || !slices.Contains(f, "∞×") || f[len(f)-1] != "-" {
		t.Errorf("unix's row %q, want ∞× in it and - at its end:\n%s", line, text.String())
	}
}

// TestFewRepeatsWarningCount: the warning of an answer from fewer than
// report.MinRepeats repeats states their count, with what the U test can
// tell at it (report.FewRepeatsTie), not 3 against 3 whatever it is.
func TestFewRepeatsWarningCount(t *testing.T) {
	for _, c := range []struct {
		repeats int
		want    string // "": no warning
	}{
		{1, "warning: only 1 OK repeat per transport, fewer than 6: intervals are unbounded and ~ may mean too few repeats to tell rather than the same (1 repeat against 1 never differs at α=0.05)\n"},
		{2, "warning: only 2 OK repeats per transport, fewer than 6: intervals are unbounded and ~ may mean too few repeats to tell rather than the same (2 repeats against 2 never differ at α=0.05)\n"},
		{4, "warning: only 4 OK repeats per transport, fewer than 6: intervals are unbounded and " + report.FewRepeatsTie(4) + "\n"},
		{6, ""},
	} {
		a := &Answer{Question: Question{Workload: Pingpong, Size: 64, Placement: "unpinned"}, Source: CalibrationSource, Metric: report.MetricP50, LowerIsBetter: true,
			Winner: "unix", Candidates: []Candidate{{Spec: "unix", Value: 1000, Lo: 900, Hi: 1100, Ratio: 1}}, Repeats: c.repeats}
		var b strings.Builder
		if err := a.WriteText(&b); err != nil {
			t.Fatal(err)
		}
		if c.want == "" && strings.Contains(b.String(), "warning: only") || c.want != "" && !strings.Contains(b.String(), c.want) {
			t.Errorf("%d repeats:\n%s\nwant the warning %q", c.repeats, b.String(), c.want)
		}
	}
}
