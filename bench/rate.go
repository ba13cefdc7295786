package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/ipcbench/ipcbench/internal/frame"
	"github.com/ipcbench/ipcbench/internal/hist"
)

// rateWorkload: open loop. Requests leave at a fixed rate whatever the
// replies do, and each latency is measured from the request's planned send
// time, not its actual one, so a stall shows up in every request it delayed
// (no coordinated omission). The rate actually achieved is reported beside
// the target.
var rateWorkload = &workload{
	name:      "rate",
	doc:       "open loop: requests at a fixed rate (-rate), latency from each request's planned send time; reports the achieved rate",
	role:      "echo",
	smallOnly: true,
	run:       runRate,
}

// pace waits until t. Go timers are coarse below a millisecond, so the last
// stretch is a yielding spin: the spin's CPU cost shows in the bench
// process's CPU time, which the report prints beside the latency.
func pace(t time.Time, stop *atomic.Bool) {
	for {
		d := time.Until(t)
		if d <= 0 || stop.Load() {
			return
		}
		if d > 2*time.Millisecond {
			time.Sleep(d - time.Millisecond)
			continue
		}
		runtime.Gosched()
	}
}

func runRate(ctx context.Context, cr *caseRun) (measurement, error) {
	c := cr.conns[0]
	size := cr.spec.Size
	period := time.Second / time.Duration(cr.spec.Rate)
	w := frame.NewWriter(c, cr.frame)
	r := frame.NewReader(c, cr.frame)

	base := time.Now()
	warmEnd := base.Add(cr.opts.Warmup)
	end := warmEnd.Add(cr.opts.Duration)
	planned := func(seq uint64) time.Time { return base.Add(time.Duration(seq) * period) }
	// total is the number of requests planned before the end: both loops
	// know it, so the receiver never waits for a request that is not sent.
	total := uint64((end.Sub(base) + period - 1) / period)
	if cr.limit > 0 { // count mode: the warm-up's requests, then exactly limit more
		total = uint64((cr.opts.Warmup+period-1)/period) + uint64(cr.limit)
	}

	sendErr := make(chan error, 1)
	go func() {
		out := make([]byte, size)
		frame.Fill(out, 0, 0)
		var err error
		for seq := uint64(0); seq < total && !cr.stop.Load(); seq++ {
			pace(planned(seq), &cr.stop)
			frame.Stamp(out, 0, seq)
			if err = w.WriteMsg(out); err != nil {
				err = stopErr(cr, "write", err)
				cr.stop.Store(true)
				c.SetReadDeadline(time.Unix(1, 0)) // the receiver waits for replies that will not come
				break
			}
		}
		sendErr <- err
	}()

	h := hist.New()
	in := make([]byte, size)
	var msgs, errs int64
	measuring := false
	var recvErr error
	for seq := uint64(0); seq < total; seq++ {
		msg, err := r.ReadMsg(in)
		now := time.Now()
		if err != nil {
			recvErr = stopErr(cr, "read", err)
			cr.stop.Store(true)
			break
		}
		if len(msg) != size || frame.Check(msg, 0, seq) != nil {
			errs++
		}
		t := planned(seq)
		if !measuring && !t.Before(warmEnd) {
			measuring = true
			if err := cr.beginMeasure(ctx); err != nil {
				cr.stop.Store(true)
				<-sendErr
				return measurement{}, err
			}
			cr.tStart = warmEnd
		}
		if measuring {
			h.Record(now.Sub(t).Nanoseconds())
			msgs++
			cr.progressed()
		}
	}
	if err := <-sendErr; err != nil {
		return measurement{}, err
	}
	if recvErr != nil {
		return measurement{}, recvErr
	}
	if !measuring {
		return measurement{}, fmt.Errorf("no request was planned after the warm-up; raise -rate or -d")
	}
	last := time.Now()
	cr.tEnd = last
	cr.measured()
	if err := cr.endMeasure(ctx); err != nil {
		return measurement{}, err
	}
	achieved := float64(msgs) / last.Sub(warmEnd).Seconds()
	return measurement{hist: h, messages: msgs, bytes: msgs * int64(size), errors: errs, achieved: achieved, end: last}, nil
}
