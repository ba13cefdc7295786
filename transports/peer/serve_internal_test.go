package peer

import (
	"testing"
	"time"
)

// TestFailureLog: of a run of failures, the first is logged, then one per
// acceptLogEvery with the count of those in between; a success is logged,
// with the count since the last line, only when failures went unlogged and
// the last line is acceptLogEvery old, so that a listener that fails and
// works by turns is rate-limited too.
func TestFailureLog(t *testing.T) {
	var f failureLog
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	step := acceptBackoff
	check := func(what string, gotOK bool, gotMore int, ok bool, more int) {
		t.Helper()
		if gotOK != ok || gotMore != more {
			t.Fatalf("%s = %v, %d; want %v, %d", what, gotOK, gotMore, ok, more)
		}
	}
	note := func(d time.Duration, ok bool, more int) {
		t.Helper()
		got, n := f.note(at(d))
		check("note at +"+d.String(), got, n, ok, more)
	}
	recovered := func(d time.Duration, ok bool, more int) {
		t.Helper()
		got, n := f.recovered(at(d))
		check("recovered at +"+d.String(), got, n, ok, more)
	}
	recovered(0, false, 0) // nothing failed
	note(0, true, 0)
	n := int(acceptLogEvery/step) - 1
	for i := 1; i <= n; i++ {
		note(time.Duration(i)*step, false, 0)
	}
	note(acceptLogEvery, true, n)
	// Failing and working by turns: quiet until acceptLogEvery passed.
	e := acceptLogEvery
	note(e+step, false, 0)
	recovered(e+2*step, false, 0)
	note(e+3*step, false, 0)
	recovered(e+4*step, false, 0)
	recovered(2*e, true, 2)
	recovered(2*e+step, false, 0) // nothing unsaid
	note(2*e+2*step, false, 0)    // within acceptLogEvery of the last line
	note(3*e+2*step, true, 1)
}
