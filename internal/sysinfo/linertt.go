package sysinfo

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// ErrProbeTimeout is returned by LineRoundTrip when the exchange did not
// finish within its limit: one of the two CPUs did not run the probe's
// thread for that long (the CPU is busy with other work, or the machine's
// hypervisor did not run it).
var ErrProbeTimeout = errors.New("the probe did not finish in time")

// lineRTTBatches is how many batches LineRoundTrip splits its round trips
// into; it returns the fastest batch, so that batches in which one of the
// threads was interrupted, or had not yet got the whole of its CPU, do not
// move the figure.
const lineRTTBatches = 9

// lineRTTGrace is how much longer than its limit LineRoundTrip waits for
// its threads to give up before it returns without them: a thread that
// its CPU never runs cannot look at the clock.
const lineRTTGrace = 100 * time.Millisecond

// LineRoundTrip measures how long a cache line takes to travel from CPU a
// to CPU b and back: two threads, one pinned to each CPU, take turns to
// write a counter on one cache line and wait to see the other's answer on
// another, rounds times in all. It returns the mean time per round trip of
// the fastest of several batches: what a line's round trip between the
// two CPUs costs at that moment, without the pauses of either thread.
// Each write is a sequentially consistent store (an XCHG on amd64), as the
// project's shared-memory transports make them.
//
// Shared memory between two processes pays this on every message (the
// data, the indices and the flags each cross between the CPUs), so its
// throughput follows it; on a virtual machine it is not a constant: the
// hypervisor places the virtual CPUs on physical cores as it pleases,
// presumably, and on the machine the project was developed on it went
// between about 170 and 1210 ns within seconds, while a pipe's throughput
// moved by 10–15 %. Recorded
// with every result (Result.LineRTTNS), it tells a slow repeat of a
// shared-memory transport that the machine was slow from one that the
// transport was.
//
// Both threads spin, each on its CPU, for the whole exchange (rounds of
// about a microsecond or less: 4000 take a few milliseconds). The two
// goroutines need a P each: with GOMAXPROCS below 2 it fails at once. Each
// thread gets its CPU mask back and is unlocked before its goroutine
// reports (one whose mask could not be restored stays locked, and ends
// with its goroutine), so no thread is pinned once it returns. It fails
// when a == b, when a CPU cannot be pinned (not allowed to this process,
// not online), and with ErrProbeTimeout when the exchange took longer
// than limit. It returns at the latest a tenth of a second after limit,
// even when a CPU never ran its thread: that goroutine gives up, and puts
// its thread's mask back, when it first runs; a caller that pinned the
// process in between would find that one thread's mask put back to what
// it was before.
func LineRoundTrip(a, b, rounds int, limit time.Duration) (time.Duration, error) {
	if a == b {
		return 0, fmt.Errorf("line round trip between CPU %d and itself: %w", a, ErrBadCPUList)
	}
	for _, c := range []int{a, b} {
		if c < 0 || c > MaxCPU {
			return 0, fmt.Errorf("line round trip: %w: CPU %d outside 0..%d", ErrBadCPUList, c, MaxCPU)
		}
	}
	if n := runtime.GOMAXPROCS(0); n < 2 {
		return 0, fmt.Errorf("line round trip: needs GOMAXPROCS 2 or more for its two spinning threads, have %d", n)
	}
	perBatch := max(1, rounds/lineRTTBatches)
	// ping is written by a's thread and read by b's; pong the other way.
	// Each is alone on its cache line (and the next, for the adjacent-line
	// prefetcher), so the two never share a line. Heap-allocated: a
	// goroutine that the caller stopped waiting for may still use it.
	lines := new(struct {
		_     [128]byte
		ping  atomic.Uint64
		_     [128 - 8]byte
		pong  atomic.Uint64
		_     [128 - 8]byte
		stop  atomic.Bool
		ready atomic.Int32 // threads pinned
	})
	deadline := time.Now().Add(limit)
	late := func() bool { return lines.stop.Load() || time.Now().After(deadline) }
	// pin locks the goroutine to its thread, pins the thread to cpu and
	// waits for the other thread to have pinned its own; the returned
	// function gives the thread its mask back and unlocks it.
	pin := func(cpu int) (func(), error) {
		runtime.LockOSThread()
		var prev unix.CPUSet
		if err := unix.SchedGetaffinity(0, &prev); err != nil {
			runtime.UnlockOSThread()
			lines.stop.Store(true)
			return func() {}, fmt.Errorf("line round trip: reading a thread's CPUs: %w", err)
		}
		unpin := func() {
			// A thread whose mask cannot be put back stays locked, and
			// ends with its goroutine.
			if unix.SchedSetaffinity(0, &prev) == nil {
				runtime.UnlockOSThread()
			}
		}
		var set unix.CPUSet
		set.Set(cpu)
		if err := unix.SchedSetaffinity(0, &set); err != nil {
			lines.stop.Store(true)
			return unpin, fmt.Errorf("line round trip: pin a thread to CPU %d: %w", cpu, err)
		}
		lines.ready.Add(1)
		for n := 0; lines.ready.Load() < 2; n++ {
			if n&1023 == 1023 && late() {
				lines.stop.Store(true)
				return unpin, nil // the caller reports the timeout, or the other's error
			}
		}
		return unpin, nil
	}
	// wait spins until *w holds want, giving up when the other thread
	// failed or the limit passed (looked at every 1024 turns, as a clock
	// read costs more than a line on a fast machine).
	wait := func(w *atomic.Uint64, want uint64) bool {
		for n := 0; w.Load() != want; n++ {
			if n&1023 == 1023 && late() {
				lines.stop.Store(true)
				return false
			}
		}
		return true
	}
	// Each goroutine gives its thread its mask back before it reports, so
	// that no thread is still pinned once LineRoundTrip has returned.
	answerErr := make(chan error, 1)
	go func() {
		unpin, err := pin(b)
		defer func() { unpin(); answerErr <- err }()
		if err != nil {
			return
		}
		for i := uint64(1); i <= uint64(perBatch*lineRTTBatches); i++ {
			if !wait(&lines.ping, i) {
				break
			}
			lines.pong.Store(i)
		}
	}()
	timeout := fmt.Errorf("line round trip between CPUs %d and %d: %w (%v)", a, b, ErrProbeTimeout, limit)
	batches := make([]time.Duration, 0, lineRTTBatches)
	askErr := make(chan error, 1)
	go func() {
		unpin, err := pin(a)
		defer func() { unpin(); askErr <- err }()
		if err != nil {
			return
		}
		i := uint64(0)
		for range lineRTTBatches {
			start := time.Now()
			for range perBatch {
				i++
				lines.ping.Store(i)
				if !wait(&lines.pong, i) {
					err = timeout
					return
				}
			}
			batches = append(batches, time.Since(start)/time.Duration(perBatch))
			if late() { // a slow exchange, whose waits each end before they look at the clock
				lines.stop.Store(true)
				err = timeout
				return
			}
		}
	}()
	// Both goroutines look at the clock while they spin; one whose CPU
	// never runs it cannot, and is not waited for past the grace.
	giveUp := time.NewTimer(time.Until(deadline) + lineRTTGrace)
	defer giveUp.Stop()
	var err, berr error
	for got := 0; got < 2; got++ {
		select {
		case e := <-askErr:
			err = e
		case e := <-answerErr:
			berr = e
		case <-giveUp.C:
			lines.stop.Store(true)
			return 0, timeout
		}
	}
	if berr != nil {
		err = berr // b's thread could not be pinned: a's wait gave up because of it
	}
	if err != nil {
		return 0, err
	}
	if !lines.stop.Load() && len(batches) == lineRTTBatches {
		return slices.Min(batches), nil
	}
	return 0, timeout
}
