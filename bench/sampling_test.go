package bench

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/hist"
)

// TestDecideSamplingOnce checks that the first proposal decides the case's
// sampling interval and later ones get it back.
func TestDecideSamplingOnce(t *testing.T) {
	for _, first := range []uint64{1, sampleEvery} {
		var cr caseRun
		if got := cr.decideSampling(first); got != first {
			t.Errorf("first proposal %d decided %d", first, got)
		}
		for _, later := range []uint64{1, sampleEvery} {
			if got := cr.decideSampling(later); got != first {
				t.Errorf("after %d was decided, proposal %d got %d", first, later, got)
			}
		}
	}
}

// TestEchoLoopAdoptsCaseSampling runs one echo loop whose own warm-up
// (round trips slowed to 50 µs) calls for timing every exchange, in a case
// where another connection has already decided to time one in 16: the loop
// must time one in 16 too, so that the record's histogram (and its
// sample_every) describes every connection alike.
func TestEchoLoopAdoptsCaseSampling(t *testing.T) {
	const size, measured = 64, 10 * sampleEvery
	a, b := net.Pipe()
	defer a.Close()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a slow echo server
		defer wg.Done()
		defer b.Close()
		r, w := frame.NewReader(b, frame.Config{}), frame.NewWriter(b, frame.Config{})
		buf := make([]byte, size)
		for {
			msg, err := r.ReadMsg(buf)
			if err != nil {
				return
			}
			time.Sleep(50 * time.Microsecond)
			if w.WriteMsg(msg) != nil {
				return
			}
		}
	}()
	cr := &caseRun{spec: CaseSpec{Size: size}, limit: measured}
	cr.sampled.Store(sampleEvery) // another connection started measuring first
	go func() {
		time.Sleep(20 * time.Millisecond) // the warm-up
		cr.measure.Store(true)
	}()
	h := hist.New()
	msgs, errs, err := echoLoop(cr, a, 0, h)
	a.Close()
	wg.Wait()
	if err != nil || errs != 0 || msgs != measured {
		t.Fatalf("echoLoop: %d messages, %d bad, %v; want %d, 0, nil", msgs, errs, err, measured)
	}
	if got, want := h.Count(), int64(measured/sampleEvery); got != want {
		t.Errorf("the loop timed %d of %d exchanges, want %d: one in %d, as the case decided", got, measured, want, sampleEvery)
	}
	if got := cr.sampled.Load(); got != sampleEvery {
		t.Errorf("case sampling changed to %d", got)
	}
}
