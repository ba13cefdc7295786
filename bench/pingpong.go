package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/hist"
)

// pingpongWorkload: one request/echo exchange at a time on one connection,
// closed loop; the round trip is timed in the bench process.
var pingpongWorkload = &workload{
	name: "pingpong",
	doc:  "round-trip latency of one request/echo exchange on one connection, closed loop",
	role: "echo",
	run:  runRequestResponse,
}

// faninWorkload: N connections, each a closed request/echo loop against one
// peer process; aggregate msg/s and the merged latency distribution.
var faninWorkload = &workload{
	name:      "fanin",
	doc:       "N concurrent connections, each request/response against one server process: aggregate msg/s and latency",
	role:      "echo",
	multiConn: true,
	smallOnly: true,
	run:       runRequestResponse,
}

// runRequestResponse drives one closed request/echo loop per connection.
func runRequestResponse(ctx context.Context, cr *caseRun) (measurement, error) {
	return runClosedLoops(ctx, cr, echoLoop)
}

// closedLoop runs one connection's closed request/response loop until
// cr.stop is set, recording the round trips of the measured interval in h;
// it returns the measured exchanges and those whose payload failed its
// check.
type closedLoop func(cr *caseRun, c net.Conn, conn uint32, h *hist.Histogram) (msgs, errs int64, err error)

// runClosedLoops runs loop on every connection of the case while the
// clock runs the warm-up and the measured interval. Each loop owns its
// histogram (merged at the end), so loops share nothing on the measured
// path; one failed connection fails the case.
func runClosedLoops(ctx context.Context, cr *caseRun, loop closedLoop) (measurement, error) {
	n := len(cr.conns)
	type loopResult struct {
		h                 *hist.Histogram
		msgs, bytes, errs int64
		err               error
	}
	results := make([]loopResult, n)
	var wg sync.WaitGroup
	for i, c := range cr.conns {
		wg.Add(1)
		go func(i int, c net.Conn) {
			defer wg.Done()
			r := &results[i]
			r.h = hist.New()
			r.msgs, r.errs, r.err = loop(cr, c, uint32(i), r.h)
			r.bytes = r.msgs * int64(cr.spec.Size)
			if r.err != nil {
				cr.stop.Store(true) // one failed connection fails the case
			}
		}(i, c)
	}
	clockErr := cr.clock(ctx)
	wg.Wait()
	cr.measured()
	if clockErr != nil {
		return measurement{}, clockErr
	}
	for i := range results {
		if err := results[i].err; err != nil {
			return measurement{}, fmt.Errorf("connection %d: %w", i, err)
		}
	}
	if err := cr.endMeasure(ctx); err != nil {
		return measurement{}, err
	}
	m := measurement{hist: hist.New()}
	for i := range results {
		r := &results[i]
		m.hist.Merge(r.h)
		m.messages += r.msgs
		m.bytes += r.bytes
		m.errors += r.errs
	}
	return m, nil
}

// Sub-microsecond round trips are not timed one by one: reading the clock
// costs tens of nanoseconds (docs/methodology.md §9), so when the warm-up's
// mean round trip is below sampleBelow, only every sampleEvery-th exchange
// of the measured interval is timed into the histogram; msg/s still counts
// every exchange over the interval. The decision is made once per case run,
// from the warm-up of the first connection to start measuring; the other
// connections of a fanin case adopt it.
const (
	sampleBelow = 2 * time.Microsecond
	sampleEvery = 16
)

// echoLoop sends a stamped message, reads the echo, checks every byte of it
// and times the exchange, until cr.stop is set. Only exchanges that start
// while cr.measure is set are recorded. Nothing on this path allocates.
func echoLoop(cr *caseRun, c net.Conn, conn uint32, h *hist.Histogram) (msgs, errs int64, err error) {
	size := cr.spec.Size
	w := frame.NewWriter(c, cr.frame)
	r := frame.NewReader(c, cr.frame)
	out := make([]byte, size)
	in := make([]byte, size)
	frame.Fill(out, conn, 0)
	limit := cr.limitOf(conn)
	var warmSum time.Duration
	var warmN int64
	every, decided := uint64(1), false
	for seq := uint64(0); !cr.stop.Load(); seq++ {
		frame.Stamp(out, conn, seq)
		measuring := cr.measure.Load()
		if measuring && !decided {
			decided = true
			if warmN > 0 && warmSum/time.Duration(warmN) < sampleBelow {
				every = sampleEvery
			}
			// The first loop to get here decides for all (fanin).
			every = cr.decideSampling(every)
		}
		timed := !measuring || seq%every == 0
		var t0 time.Time
		if timed {
			t0 = time.Now()
		}
		if err := w.WriteMsg(out); err != nil {
			return msgs, errs, stopErr(cr, "write", err)
		}
		msg, err := r.ReadMsg(in)
		var d time.Duration
		if timed {
			d = time.Since(t0)
		}
		if err != nil {
			return msgs, errs, stopErr(cr, "read", err)
		}
		if len(msg) != size || frame.Check(msg, conn, seq) != nil {
			errs++
		}
		if !measuring {
			warmSum += d
			warmN++
			continue
		}
		if timed {
			h.Record(d.Nanoseconds())
		}
		msgs++
		cr.progressed()
		if msgs == limit {
			break
		}
	}
	return msgs, errs, nil
}

// stopErr wraps a loop's I/O error; an error caused by the watchdog's
// deadline after a stop is reported as the stop's cause.
func stopErr(cr *caseRun, op string, err error) error {
	if cr.stop.Load() && errors.Is(err, errDeadline) {
		return fmt.Errorf("%s interrupted (case stopped: timeout or peer exit): %w", op, err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%s: the other side closed the connection: %w", op, err)
	}
	return fmt.Errorf("%s: %w", op, err)
}
