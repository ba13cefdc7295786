package bench

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// selfStopRunner returns a runner of one pingpong case over unix, 64 B,
// of d measured.
func selfStopRunner(t *testing.T, d time.Duration) *Runner {
	t.Helper()
	o := unixOptions(t, "pingpong")
	o.Duration = d
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestSelfStopRunsCaseAgain: a case during which this process is stopped
// (SIGSTOP, from a child that continues it 200 ms later, as a shell's fg
// does after Ctrl-Z) is run again, and only the run after it recorded.
func TestSelfStopRunsCaseAgain(t *testing.T) {
	r := selfStopRunner(t, 300*time.Millisecond)
	starts := 0
	r.onMeasure = func(start bool) {
		if !start {
			return
		}
		starts++
		if starts == 1 {
			// Run, not Start: the stop and the continue both come before
			// the case goes on, however late the shell starts.
			stopper := exec.Command("sh", "-c", "kill -STOP $PPID; sleep 0.2; kill -CONT $PPID")
			if err := stopper.Run(); err != nil {
				t.Errorf("the stopper: %v", err)
			}
		}
	}
	recs, err := r.Run(context.Background(), Header{}, io.Discard)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	if len(recs.Results) != 1 || recs.Results[0].Status != StatusOK {
		t.Fatalf("records %+v; want one, OK", recs.Results)
	}
	if starts != 2 {
		t.Errorf("the measured interval began %d times; want 2 (the stopped case, then its run again)", starts)
	}
}

// TestSelfStopGivesUp: a case that sees a stop every time it runs is run
// three times in all, then recorded as failed, saying why.
func TestSelfStopGivesUp(t *testing.T) {
	// 300 ms: the SIGCONT, sent as the interval begins, reaches the
	// watch long before the case's last look.
	r := selfStopRunner(t, 300*time.Millisecond)
	starts := 0
	r.onMeasure = func(start bool) {
		if start {
			starts++
			syscall.Kill(os.Getpid(), syscall.SIGCONT) // what a stop ends with
		}
	}
	recs, err := r.Run(context.Background(), Header{}, io.Discard)
	if !errors.Is(err, ErrCasesFailed) {
		t.Errorf("Run: %v; want ErrCasesFailed", err)
	}
	if starts != 1+selfStopRetries {
		t.Errorf("the case ran %d times; want %d", starts, 1+selfStopRetries)
	}
	if len(recs.Results) != 1 || recs.Results[0].Status != StatusFailed || !strings.HasSuffix(recs.Results[0].Reason, ": "+ErrSelfStopped.Error()) {
		t.Fatalf("records %+v; want one, failed with %q", recs.Results, ErrSelfStopped)
	}
}

// TestSelfStopTimeout: a case that times out after a stop of this
// process blames the stop, not the peer, and its error wraps
// ErrSelfStopped, so that RunCase runs it again.
func TestSelfStopTimeout(t *testing.T) {
	o := countOptions(t, "pingpong", MaxCount, 0)
	// From the case's start, the peer's start included: the stop must
	// come (as measuring begins) before the timeout.
	o.CaseTimeout = o.Warmup + stallStart
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	var pid int
	r.onPeerStart = func(p int) { pid = p }
	r.onMeasure = func(start bool) {
		if start {
			syscall.Kill(pid, syscall.SIGSTOP) // the case cannot end but on its timeout
			syscall.Kill(os.Getpid(), syscall.SIGCONT)
		}
	}
	res, err := r.runCase(context.Background(), r.Plan()[0], 0) // once
	if !errors.Is(err, ErrSelfStopped) || res.Status != StatusFailed ||
		!strings.Contains(res.Reason, "timeout: case did not finish within "+o.CaseTimeout.String()+" (this process was stopped (SIGSTOP or Ctrl-Z) and continued during the case)") {
		t.Fatalf("status %s, reason %q, err %v; want a timeout that names the stop", res.Status, res.Reason, err)
	}
	if alive(pid) {
		syscall.Kill(pid, syscall.SIGKILL)
		t.Fatalf("the stopped peer %d is still there after the case returned", pid)
	}
}

// TestSelfStopOtherFailure: a case that fails otherwise (its peer dies)
// after a stop of this process says the stop too, and its error wraps
// ErrSelfStopped (the failure may have come of the stop: RunCase runs it
// again) as well as the failure's own.
func TestSelfStopOtherFailure(t *testing.T) {
	r := selfStopRunner(t, 5*time.Second)
	var pid int
	r.onPeerStart = func(p int) { pid = p }
	r.onMeasure = func(start bool) {
		if start {
			syscall.Kill(os.Getpid(), syscall.SIGCONT)
			// The signal reaches the watch through a goroutine of the
			// runtime's; the peer's death, by way of its exit and this
			// side's read, comes later still, but give it a margin.
			time.Sleep(100 * time.Millisecond)
			syscall.Kill(pid, syscall.SIGKILL)
		}
	}
	res, err := r.runCase(context.Background(), r.Plan()[0], 0) // once
	// Not the case's timeout (": timeout: "); an interrupted read's words
	// ("case stopped: timeout or peer exit") may say the word.
	if !errors.Is(err, ErrSelfStopped) || res.Status != StatusFailed || strings.Contains(res.Reason, ": timeout: ") ||
		!strings.HasSuffix(res.Reason, " (this process was stopped (SIGSTOP or Ctrl-Z) and continued during the case)") {
		t.Fatalf("status %s, reason %q, err %v; want the peer's death and the stop", res.Status, res.Reason, err)
	}
}

// TestSelfStopInterrupted: a run interrupted during a case, by a signal
// that came with a SIGCONT (GNU timeout and systemd send one after their
// SIGINT or SIGTERM), records the case as interrupted, not as stopped:
// the interrupt takes precedence, and the SIGCONT is no stop.
func TestSelfStopInterrupted(t *testing.T) {
	r := selfStopRunner(t, 5*time.Second)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.onMeasure = func(start bool) {
		if start {
			cancel() // the interrupt
			syscall.Kill(os.Getpid(), syscall.SIGCONT)
		}
	}
	recs, err := r.Run(ctx, Header{}, io.Discard)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrSelfStopped) {
		t.Errorf("Run: %v; want the interrupt, and no ErrSelfStopped", err)
	}
	if len(recs.Results) != 1 || recs.Results[0].Status != StatusFailed || !strings.HasPrefix(recs.Results[0].Reason, InterruptedReason) ||
		strings.Contains(recs.Results[0].Reason, "stopped (SIGSTOP") {
		t.Fatalf("records %+v; want one, failed as interrupted, without the stop's words", recs.Results)
	}
}

// TestFailInterruptNotStop: a case's reason names a stop of this process
// (a SIGCONT its watch has) only while the run was not interrupted.
func TestFailInterruptNotStop(t *testing.T) {
	const stopWords = " (this process was stopped (SIGSTOP or Ctrl-Z) and continued during the case)"
	live, cancel := context.WithCancel(context.Background())
	defer cancel()
	ended, end := context.WithCancel(context.Background())
	end()
	for _, c := range []struct {
		name   string
		parent context.Context
		want   bool
	}{{"run going on", live, true}, {"run interrupted", ended, false}} {
		s := &selfStop{ch: make(chan os.Signal, 1)}
		s.ch <- syscall.SIGCONT // what a stop, or timeout's continue, ends with
		cr := &caseRun{name: "unix", res: Result{Transport: "unix"}, opts: &Options{CaseTimeout: time.Second}, selfStop: s, parent: c.parent}
		got := cr.fail(context.Canceled, false).Reason
		if strings.HasSuffix(got, stopWords) != c.want {
			t.Errorf("%s: reason %q; want the stop's words: %v", c.name, got, c.want)
		}
	}
}

// TestRetryStopped: a measurement during which this process was stopped
// and continued runs again, at most twice more; the error of a try
// without a stop is returned as it is, and one that saw a stop every time
// says so, with its own error if it had one.
func TestRetryStopped(t *testing.T) {
	errMeasure := errors.New("the measurement failed")
	cases := []struct {
		name     string
		stops    int   // the first stops tries see a stop
		err      error // what every try returns
		wantRuns int
		want     []error // errors.Is targets; nil: no error
	}{
		{"no stop", 0, nil, 1, nil},
		{"no stop, failed", 0, errMeasure, 1, []error{errMeasure}},
		{"one stop", 1, nil, 2, nil},
		{"two stops", 2, nil, 3, nil},
		{"stopped every time", 3, nil, 3, []error{ErrSelfStopped}},
		{"stopped and failed every time", 3, errMeasure, 3, []error{ErrSelfStopped, errMeasure}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			runs := 0
			err := retryStopped(context.Background(), func(s *selfStop) error {
				runs++
				if runs <= c.stops {
					// What a stop ends with; wait until the watch has it,
					// as a real measurement lasts long enough to.
					syscall.Kill(os.Getpid(), syscall.SIGCONT)
					for !s.stopped() {
						time.Sleep(time.Millisecond)
					}
				}
				return c.err
			})
			if runs != c.wantRuns {
				t.Errorf("measured %d times; want %d", runs, c.wantRuns)
			}
			if c.want == nil && err != nil {
				t.Errorf("err = %v; want nil", err)
			}
			for _, w := range c.want {
				if !errors.Is(err, w) {
					t.Errorf("err = %v; want one that is %v", err, w)
				}
			}
		})
	}
}

// TestRetryStoppedContextEnded: after a stop, a measurement whose context
// has ended is not run again.
func TestRetryStoppedContextEnded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	runs := 0
	err := retryStopped(ctx, func(s *selfStop) error {
		runs++
		cancel()
		syscall.Kill(os.Getpid(), syscall.SIGCONT)
		for !s.stopped() {
			time.Sleep(time.Millisecond)
		}
		return ctx.Err()
	})
	if runs != 1 || !errors.Is(err, ErrSelfStopped) || !errors.Is(err, context.Canceled) {
		t.Errorf("measured %d times, err = %v; want once, an error that is ErrSelfStopped and context.Canceled", runs, err)
	}
}

// TestPeerStopped: a case during which the peer was stopped (SIGSTOP) and
// continued, which it outlived, took the stop into its timings: it fails
// with ErrPeerStopped, and RunCase runs it again.
func TestPeerStopped(t *testing.T) {
	o := testOptions(t)
	o.Transports = o.Transports[:1]
	o.Workloads = []string{"pingpong"}
	o.Sizes = []int{64}
	o.Duration = 600 * time.Millisecond
	o.CaseTimeout = time.Minute
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	pid, stops := 0, 0
	r.onPeerStart = func(p int) { mu.Lock(); pid = p; mu.Unlock() }
	stopFirst := func(start bool) {
		mu.Lock()
		defer mu.Unlock()
		if start && stops == 0 {
			stops++
			p := pid
			syscall.Kill(p, syscall.SIGSTOP)
			time.AfterFunc(300*time.Millisecond, func() { syscall.Kill(p, syscall.SIGCONT) })
		}
	}
	r.onMeasure = stopFirst
	res, err := r.runCase(context.Background(), r.Plan()[0], 0) // once
	if !errors.Is(err, ErrPeerStopped) || res.Status != StatusFailed || !strings.Contains(res.Reason, "peer process was stopped") {
		t.Errorf("status %s, reason %q, err %v; want a failure naming the peer's stop", res.Status, res.Reason, err)
	}
	mu.Lock()
	stops = 0
	mu.Unlock()
	res, err = r.RunCase(context.Background(), r.Plan()[0], 0) // stopped once, then again
	if err != nil || res.Status != StatusOK {
		t.Errorf("RunCase: status %s, reason %q, err %v; want the case run again, OK", res.Status, res.Reason, err)
	}
	r.onPeerStart, r.onMeasure = nil, nil
}
