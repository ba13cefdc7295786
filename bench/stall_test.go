package bench

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/internal/sysinfo"
	"github.com/ipcbench/ipcbench/transports/all"
)

// unixOptions returns testOptions of one case: workload w over unix at
// 64 B.
func unixOptions(t *testing.T, w string) Options {
	t.Helper()
	tr, err := all.Lookup("unix")
	if err != nil {
		t.Fatal(err)
	}
	o := testOptions(t)
	o.Transports = []TransportSpec{{Transport: tr}}
	o.Workloads = []string{w}
	o.Sizes = []int{64}
	return o
}

// countOptions returns options of a count-mode run of count messages
// over unix for workload w (rate: rate msg/s), with no case timeout given.
func countOptions(t *testing.T, w string, count int64, rate int) Options {
	t.Helper()
	o := unixOptions(t, w)
	o.Duration = 0
	o.Count = count
	o.Rate = rate
	return o
}

// stallWindow is the tests' stall window in place of a minute: short
// enough to outlast.
const stallWindow = time.Second

// stallStart is the tests' case timeout less the warm-up, which bounds a
// case until it measures: with a peer to start, more than the window.
const stallStart = 3 * time.Second

// stallRunner returns a count-mode runner for countOptions, with the
// default case timeout (bounded by progress) and a stall window of
// stallWindow instead of a minute, so that a test can outlast it.
func stallRunner(t *testing.T, w string, count int64, rate int) *Runner {
	t.Helper()
	o := countOptions(t, w, count, rate)
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	if r.stallAfter != countStall || r.opts.CaseTimeout != o.Warmup+countStall {
		t.Fatalf("count mode without a case timeout: stall window %v, case timeout %v; want %v and warm-up + %v", r.stallAfter, r.opts.CaseTimeout, countStall, countStall)
	}
	// The window bounds the measuring; before it, the case's start (the
	// peer's included, slow on a loaded machine) has stallStart.
	r.stallAfter = stallWindow
	r.opts.CaseTimeout = r.opts.Warmup + stallStart
	return r
}

// TestCountOutlastsStallWindow: in count mode the default case timeout
// bounds progress, not length. A rate case of 1000 msg/s measuring 4000
// messages takes about 4 s, four times its window and longer than its
// case timeout; it must pass, where a fixed timeout failed it.
func TestCountOutlastsStallWindow(t *testing.T) {
	r := stallRunner(t, "rate", 4000, 1000)
	start := time.Now()
	res, err := r.RunCase(context.Background(), r.Plan()[0], 0)
	took := time.Since(start)
	if err != nil || res.Status != StatusOK {
		t.Fatalf("status %s, reason %q, err %v; want OK", res.Status, res.Reason, err)
	}
	if res.Messages != 4000 {
		t.Errorf("%d messages measured, want 4000", res.Messages)
	}
	if took < r.opts.CaseTimeout {
		t.Errorf("the case took %v, less than its case timeout %v: the test proves nothing", took, r.opts.CaseTimeout)
	}
	t.Logf("a count case of %v with a stall window of %v", took, stallWindow)
}

// TestCountStallTimesOut: a count-mode case whose peer stops (SIGSTOP)
// once measuring began fails on its stall window, saying so, and the
// stopped peer is killed and reaped.
func TestCountStallTimesOut(t *testing.T) {
	for _, w := range []string{"pingpong", "stream", "rate"} {
		t.Run(w, func(t *testing.T) {
			r := stallRunner(t, w, MaxCount, 100)
			var pid int
			r.onPeerStart = func(p int) { pid = p }
			r.onMeasure = func(start bool) {
				if start {
					syscall.Kill(pid, syscall.SIGSTOP)
				}
			}
			start := time.Now()
			res, err := r.RunCase(context.Background(), r.Plan()[0], 0)
			took := time.Since(start)
			if err == nil || res.Status != StatusFailed || !strings.Contains(res.Reason, "timeout: no message measured for "+stallWindow.String()) {
				t.Fatalf("status %s, reason %q, err %v; want a stall timeout", res.Status, res.Reason, err)
			}
			if took > stallWindow+faultBound {
				t.Errorf("the case took %v with a stall window of %v", took, stallWindow)
			}
			if alive(pid) {
				syscall.Kill(pid, syscall.SIGKILL)
				t.Fatalf("the stopped peer %d is still there after the case returned", pid)
			}
		})
	}
}

// TestCountExplicitTimeoutIsFixed: a case timeout the caller gives stays
// a bound on the whole case in count mode too.
func TestCountExplicitTimeoutIsFixed(t *testing.T) {
	o := countOptions(t, "rate", 1000, 100) // 10 s at 100 msg/s
	o.CaseTimeout = o.Warmup + 500*time.Millisecond
	r, err := NewRunner(o)
	if err != nil {
		t.Fatal(err)
	}
	if r.stallAfter != 0 {
		t.Fatalf("stall window %v with a case timeout given", r.stallAfter)
	}
	res, err := r.RunCase(context.Background(), r.Plan()[0], 0)
	if err == nil || res.Status != StatusFailed || !strings.Contains(res.Reason, "timeout: case did not finish within "+o.CaseTimeout.String()) {
		t.Fatalf("status %s, reason %q, err %v; want the given timeout", res.Status, res.Reason, err)
	}
}

// TestCPUSpentNeverNegative: CPU times that went back between two
// readings (a server's, reporting through the protocol) give no figure
// instead of a negative one, which the record reader refuses.
func TestCPUSpentNeverNegative(t *testing.T) {
	at := func(u, s time.Duration) sysinfo.CPUTime { return sysinfo.CPUTime{User: u, System: s} }
	for _, c := range []struct {
		start, end sysinfo.CPUTime
		u, s       int64
		ok         bool
	}{
		{at(1, 2), at(5, 7), 4, 5, true},
		{at(1, 2), at(1, 2), 0, 0, true},
		{at(5, 2), at(1, 7), 0, 0, false},
		{at(1, 9), at(5, 7), 0, 0, false},
	} {
		u, s, ok := cpuSpent(c.start, c.end)
		if u != c.u || s != c.s || ok != c.ok {
			t.Errorf("cpuSpent(%v, %v) = %d, %d, %v; want %d, %d, %v", c.start, c.end, u, s, ok, c.u, c.s, c.ok)
		}
	}
}
