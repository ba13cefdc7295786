package sysinfo

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
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
// hypervisor moves the virtual CPUs between physical cores, and on the
// machine the project was developed on it went between 150 and 850 ns
// within seconds, while a pipe's system calls hardly changed. Recorded
// with every result (Result.LineRTTNS), it tells a slow repeat of a
// shared-memory transport that the machine was slow from one that the
// transport was.
//
// Both threads spin: it costs each CPU the whole exchange, about 2000
// round trips, a few milliseconds at most. It fails when a == b, when a
// CPU cannot be pinned (not allowed to this process, not online), and with
// ErrProbeTimeout when the exchange took longer than limit.
func LineRoundTrip(a, b, rounds int, limit time.Duration) (time.Duration, error) {
	if a == b {
		return 0, fmt.Errorf("line round trip between CPU %d and itself: %w", a, ErrBadCPUList)
	}
	for _, c := range []int{a, b} {
		if c < 0 || c > MaxCPU {
			return 0, fmt.Errorf("line round trip: %w: CPU %d outside 0..%d", ErrBadCPUList, c, MaxCPU)
		}
	}
	perBatch := max(1, rounds/lineRTTBatches)
	// ping is written by a's thread and read by b's; pong the other way.
	// Each is alone on its cache line (and the next, for the adjacent-line
	// prefetcher), so the two never share a line.
	var lines struct {
		_    [128]byte
		ping atomic.Uint64
		_    [128 - 8]byte
		pong atomic.Uint64
		_    [128 - 8]byte
		stop atomic.Bool
	}
	deadline := time.Now().Add(limit)
	// pinned reports, on each thread, whether the pin worked; both wait for
	// the other's before the exchange starts.
	var ready sync.WaitGroup
	ready.Add(2)
	pin := func(cpu int) error {
		runtime.LockOSThread() // never unlocked: the thread ends with its goroutine, its mask with it
		var set unix.CPUSet
		set.Set(cpu)
		err := unix.SchedSetaffinity(0, &set)
		if err != nil {
			err = fmt.Errorf("line round trip: pin a thread to CPU %d: %w", cpu, err)
			lines.stop.Store(true)
		}
		ready.Done()
		ready.Wait()
		return err
	}
	// wait spins until *w holds want, giving up when the other thread
	// failed or the limit passed (looked at every 1024 turns, as a clock
	// read costs more than a line on a fast machine).
	wait := func(w *atomic.Uint64, want uint64) bool {
		for n := 0; w.Load() != want; n++ {
			if n&1023 == 1023 && (lines.stop.Load() || time.Now().After(deadline)) {
				lines.stop.Store(true)
				return false
			}
		}
		return true
	}
	answerErr := make(chan error, 1)
	go func() {
		if err := pin(b); err != nil {
			answerErr <- err
			return
		}
		for i := uint64(1); i <= uint64(perBatch*lineRTTBatches); i++ {
			if !wait(&lines.ping, i) {
				break
			}
			lines.pong.Store(i)
		}
		answerErr <- nil
	}()
	batches := make([]time.Duration, 0, lineRTTBatches)
	askErr := make(chan error, 1)
	go func() { // its own goroutine: its thread is pinned, and ends with it
		if err := pin(a); err != nil {
			askErr <- err
			return
		}
		i := uint64(0)
		for range lineRTTBatches {
			start := time.Now()
			for range perBatch {
				i++
				lines.ping.Store(i)
				if !wait(&lines.pong, i) {
					askErr <- fmt.Errorf("line round trip between CPUs %d and %d: %w (%v)", a, b, ErrProbeTimeout, limit)
					return
				}
			}
			batches = append(batches, time.Since(start)/time.Duration(perBatch))
		}
		askErr <- nil
	}()
	err := <-askErr
	if berr := <-answerErr; berr != nil {
		err = berr // b's thread could not be pinned: a's wait gave up because of it
	}
	if err != nil {
		return 0, err
	}
	return slices.Min(batches), nil
}
