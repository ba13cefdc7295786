package bench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ipcbench/ipcbench/internal/sysinfo"
)

// The time of a case, as the workload loops see it: a warm-up, then the
// measured interval, which ends after Options.Duration or, in count mode,
// once every loop has measured its messages. The loops record while
// caseRun.measure is set and end when caseRun.stop is.

// clock runs the warm-up, then the measured interval. In duration mode it
// sets stop when the interval is over; in count mode it returns as the
// interval begins and the loops stop themselves after cr.limit messages.
// It returns early when stop is set (by a failing loop or the watchdog) or
// ctx is done. Every workload runs it beside its loops.
func (cr *caseRun) clock(ctx context.Context) error {
	if err := cr.warmUp(ctx); err != nil {
		return err
	}
	if err := cr.beginMeasure(ctx); err != nil {
		return err
	}
	if cr.limit > 0 {
		return nil
	}
	sleepCtx(ctx, cr.opts.Duration, &cr.stop)
	cr.tEnd = time.Now()
	cr.stop.Store(true)
	return nil
}

// warmUp lets the loops run unmeasured for Options.Warmup. It fails when
// the case is stopped or ctx ends first.
func (cr *caseRun) warmUp(ctx context.Context) error {
	if sleepCtx(ctx, cr.opts.Warmup, &cr.stop) {
		return nil
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return errors.New("stopped during the warm-up")
}

// beginMeasure marks the end of the warm-up: CPU times of both processes
// are read and the loops start recording.
func (cr *caseRun) beginMeasure(ctx context.Context) error {
	t, err := cr.cpuTimes(ctx)
	if err != nil {
		return err
	}
	cr.cpuStart = t
	cr.sampler.start()
	if cr.onMeasure != nil {
		cr.onMeasure(true)
	}
	cr.tStart = time.Now()
	cr.measure.Store(true)
	return nil
}

// measured marks the end of the measured interval as now, unless the
// clock already did.
func (cr *caseRun) measured() {
	if cr.tEnd.IsZero() {
		cr.tEnd = time.Now()
	}
	if cr.onMeasure != nil {
		cr.onMeasure(false)
	}
}

// endMeasure reads CPU times at the end of the measured interval.
func (cr *caseRun) endMeasure(ctx context.Context) error {
	t, err := cr.cpuTimes(ctx)
	if err != nil {
		return err
	}
	cr.cpuEnd = t
	return nil
}

// cpuTimes reads the CPU time so far of the bench process and the peer.
func (cr *caseRun) cpuTimes(ctx context.Context) ([2]sysinfo.CPUTime, error) {
	c0, err := sysinfo.SelfCPUTime()
	if err != nil {
		return [2]sysinfo.CPUTime{}, err
	}
	if cr.client == nil { // a foreign echo server: its CPU time is unknown
		return [2]sysinfo.CPUTime{c0, {}}, nil
	}
	c1, err := cr.client.CPU(ctx)
	if err != nil {
		return [2]sysinfo.CPUTime{}, fmt.Errorf("reading peer CPU time: %w", err)
	}
	return [2]sysinfo.CPUTime{c0, c1}, nil
}

// decideSampling returns the case's sampling interval: the first loop to
// call it decides, with every, the interval its own warm-up calls for,
// and every later call gets that same interval back, whatever it
// proposes. A record's histogram thus holds one exchange in the same
// number on every connection, as Result.SampleEvery says.
func (cr *caseRun) decideSampling(every uint64) uint64 {
	if cr.sampled.CompareAndSwap(0, int64(every)) {
		return every
	}
	return uint64(cr.sampled.Load())
}

// sleepCtx sleeps for d unless ctx ends or stop is set first; it reports
// whether the full time passed.
func sleepCtx(ctx context.Context, d time.Duration, stop *atomic.Bool) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-t.C:
			return true
		case <-tick.C:
			if stop.Load() {
				return false
			}
		}
	}
}
