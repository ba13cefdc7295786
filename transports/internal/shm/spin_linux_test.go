package shm

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/ipcbench/ipcbench/transports"
)

// TestSpinStats walks the adaptive spin's calibration: spinLossLimit
// losses in a row start a run of sleeping waits, each lost probe doubles
// the run up to spinBackoffMax, and one win resets it.
func TestSpinStats(t *testing.T) {
	var s spinStats
	for i := 1; i < spinLossLimit; i++ {
		s.lost()
		if s.skip != 0 {
			t.Fatalf("after %d losses skip = %d, want 0", i, s.skip)
		}
	}
	s.won()
	for range spinLossLimit - 1 {
		s.lost()
	}
	if s.skip != 0 {
		t.Fatalf("a win did not reset the losses: skip %d", s.skip)
	}
	s.lost()
	if s.skip != spinBackoffMin {
		t.Fatalf("after %d losses in a row skip = %d, want %d", spinLossLimit, s.skip, spinBackoffMin)
	}
	want := spinBackoffMin
	for range 20 {
		s.skip = 0 // the sleeping waits went by; the probe loses
		s.lost()
		want = min(2*want, spinBackoffMax)
		if s.skip != want {
			t.Fatalf("after a lost probe skip = %d, want %d", s.skip, want)
		}
	}
	s.won()
	if s != (spinStats{}) {
		t.Fatalf("a win left %+v", s)
	}
}

// TestAdaptiveWaitBacksOff: reads that wait longer than the spin budget
// (a peer that answers slowly, as one sharing the core does) make the
// adaptive wait stop spinning for a run of waits.
func TestAdaptiveWaitBacksOff(t *testing.T) {
	// Both ends are in this process: with one processor the reader would
	// not wait alone (see mayWaitSolo), and the spin is what this tests.
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{Options: map[string]string{OptionSpinNS: "1000"}}), 0)
	buf := make([]byte, 1)
	// slowRead reads one byte that the writer sends 20 ms later, far
	// beyond the 1 µs budget. (On a loaded machine the read may start
	// after the byte arrived and not wait at all; the loops allow that.)
	slowRead := func() {
		t.Helper()
		go func() {
			time.Sleep(20 * time.Millisecond)
			a.Write([]byte{1})
		}()
		if _, err := d.Read(buf); err != nil {
			t.Fatal(err)
		}
	}
	// A read may wait more than once (a sleep cut short by a signal or a
	// wait slice waits again), so the record is checked for what a read
	// may do to it, not for exact counts.
	for i := 0; d.rspin.backoff == 0; i++ {
		if i == 50 {
			t.Fatalf("after %d slow answers the reader's spin record is %+v, want a back-off", i, d.rspin)
		}
		slowRead()
	}
	if d.rspin.backoff < spinBackoffMin {
		t.Fatalf("back-off started at %+v, want a run of at least %d sleeping waits", d.rspin, spinBackoffMin)
	}
	// Sleeping waits use up skips; a probe that runs out doubles the run.
	for i := 0; ; i++ {
		if i == 10 {
			t.Fatalf("%d slow reads used up no skip: %+v", i, d.rspin)
		}
		before := d.rspin
		slowRead()
		after := d.rspin
		switch {
		case after.backoff == before.backoff && after.skip < before.skip:
			return // a sleeping wait used a skip
		case after.backoff == before.backoff && after.skip == before.skip:
			// the byte was there before the read looked: no wait
		case after.backoff == min(2*before.backoff, spinBackoffMax) && after.skip <= after.backoff:
			// the skips ran out and the probe lost
		default:
			t.Fatalf("a slow read took the spin record from %+v to %+v", before, after)
		}
	}
}

// backedOff returns a record in the middle of a run of sleeping waits.
func backedOff() spinStats {
	return spinStats{backoff: spinBackoffMax, skip: spinBackoffMax}
}

// fakeClock is a monotonic clock that the test moves.
type fakeClock struct{ t time.Duration }

func (c *fakeClock) now() time.Duration { return c.t }

// TestSleepAtOnceLooksAgain walks the decision of a wait in a run of
// sleeping waits: it sleeps at once while both sides are on one CPU (or
// the CPU is unknown), spins again as soon as they are on different CPUs,
// and probes once the run has lasted spinBackoffTime.
func TestSleepAtOnceLooksAgain(t *testing.T) {
	clk := &fakeClock{t: time.Second}
	t.Run("not-backing-off", func(t *testing.T) {
		var s spinStats
		if s.sleepAtOnce(1, 1, clk.now) {
			t.Fatal("a record that is not backing off skipped the spin")
		}
	})
	t.Run("same-cpu", func(t *testing.T) {
		s := backedOff()
		for i := range 3 * spinClockEvery {
			if !s.sleepAtOnce(3, 3, clk.now) {
				t.Fatalf("wait %d on the same CPU as the peer spun: %+v", i, s)
			}
		}
		if s.skip != spinBackoffMax-3*spinClockEvery || s.backoff != spinBackoffMax {
			t.Fatalf("after %d sleeping waits the record is %+v", 3*spinClockEvery, s)
		}
	})
	for _, cpus := range [][2]uint32{{0, 2}, {2, 0}, {0, 0}} {
		t.Run(fmt.Sprintf("unknown-%d-%d", cpus[0], cpus[1]), func(t *testing.T) {
			s := backedOff()
			if !s.sleepAtOnce(cpus[0], cpus[1], clk.now) {
				t.Fatalf("own CPU %d, peer's %d (0: unknown) ended the run: %+v", cpus[0], cpus[1], s)
			}
		})
	}
	t.Run("never-together", func(t *testing.T) {
		// The spins ran out with the peer on another CPU all along: the
		// CPUs give no reason to spin again.
		s := backedOff()
		for i := range 3 {
			if !s.sleepAtOnce(1, 2, clk.now) {
				t.Fatalf("wait %d of a back-off that never saw the sides on one CPU spun: %+v", i, s)
			}
		}
	})
	t.Run("different-cpus", func(t *testing.T) {
		s := backedOff()
		s.sleepAtOnce(1, 2, clk.now)
		s.sleepAtOnce(1, 1, clk.now)
		if s.sleepAtOnce(2, 1, clk.now) {
			t.Fatal("a wait on another CPU than the peer's, after both shared one, slept at once")
		}
		if s != (spinStats{}) {
			t.Fatalf("different CPUs left %+v, want a reset record", s)
		}
		// The back-off starts from the beginning: spinLossLimit losses.
		for range spinLossLimit - 1 {
			s.lost()
		}
		if s.sleepAtOnce(1, 1, clk.now) {
			t.Fatalf("fewer than %d losses after the reset started a run: %+v", spinLossLimit, s)
		}
	})
	t.Run("lost-probe-remembers", func(t *testing.T) {
		// Seen together in one run of the back-off, apart after a lost
		// probe: the premise is gone all the same.
		s := backedOff()
		s.sleepAtOnce(1, 1, clk.now)
		s.skip = 0
		s.lost()
		if s.sleepAtOnce(1, 2, clk.now) {
			t.Fatalf("apart after a lost probe, the wait slept at once: %+v", s)
		}
	})
	t.Run("time-limit", func(t *testing.T) {
		s := backedOff()
		waits := 0
		for s.sleepAtOnce(1, 1, clk.now) {
			waits++
			clk.t += spinBackoffTime / 100
			if waits > 200 {
				t.Fatalf("a run lasted %d waits, %v on the clock: %+v", waits, time.Duration(waits)*spinBackoffTime/100, s)
			}
		}
		// The clock is read every spinClockEvery waits: the run ends
		// within that many waits of its limit.
		if low, high := 100, 100+spinClockEvery; waits < low || waits > high {
			t.Fatalf("the run ended after %d waits of %v, want %d to %d", waits, spinBackoffTime/100, low, high)
		}
		if s.skip != 0 || s.backoff != spinBackoffMax {
			t.Fatalf("the time limit left %+v, want a probe (skip 0) keeping the back-off", s)
		}
		// The probe loses: a new run, with its own time limit.
		s.lost()
		if !s.sleepAtOnce(1, 1, clk.now) {
			t.Fatalf("the run after a lost probe did not start: %+v", s)
		}
		if want := clk.t + spinBackoffTime; s.end != want {
			t.Fatalf("the new run ends at %v, want %v", s.end, want)
		}
	})
}

// TestAdaptiveWaitLooksAgain: a reader in a run of sleeping waits records
// its CPU in the mapping, and, having found the writer's recorded CPU equal
// to its own, spins again once it finds it different (the processor is
// stood in for by the test).
func TestAdaptiveWaitLooksAgain(t *testing.T) {
	// Both ends are in this process: with one processor the reader would
	// not wait alone (see mayWaitSolo), and its wait is what this tests.
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	saved := cpuNow
	t.Cleanup(func() { cpuNow = saved })
	cpuNow = func() uint32 { return 5 }
	a, d := connectT(t, listenKindT(t, Ring, transports.Config{Options: map[string]string{OptionSpinNS: "1000"}}), 0)
	buf := make([]byte, 1)
	// slowRead reads, with the reader's spin record set to rec, one byte
	// that the writer sends 20 ms later, and reports whether the read had
	// to wait for it.
	slowRead := func(rec spinStats) bool {
		t.Helper()
		d.rspin = rec
		go func() {
			time.Sleep(20 * time.Millisecond)
			a.Write([]byte{1})
		}()
		if _, err := d.Read(buf); err != nil {
			t.Fatal(err)
		}
		return d.rspin != (spinStats{})
	}
	// The writer on the reader's CPU: the run goes on.
	a.tx.ctl.writerCPU.Store(5)
	for i := 0; ; i++ {
		if slowRead(backedOff()) {
			break
		}
		if i == 50 {
			t.Fatalf("%d slow reads did not wait", i)
		}
	}
	if d.rspin.backoff != spinBackoffMax || d.rspin.skip != spinBackoffMax-1 || !d.rspin.together {
		t.Fatalf("a sleeping wait with both sides on one CPU left %+v, want skip %d, together", d.rspin, spinBackoffMax-1)
	}
	together := d.rspin
	if got := d.tx.ctl.writerCPU.Load(); got != 5 {
		t.Fatalf("the reader recorded CPU %d, want 5", got)
	}
	// The writer on another CPU: the reader spins (its 1 µs budget runs
	// out long before the byte comes) instead of using up a sleeping wait.
	a.tx.ctl.writerCPU.Store(6)
	for i := 0; ; i++ {
		if slowRead(together) {
			break
		}
		if i == 50 {
			t.Fatalf("%d slow reads did not wait", i)
		}
	}
	if d.rspin.backoff != 0 || d.rspin.skip != 0 || d.rspin.losses == 0 {
		t.Fatalf("a wait with the writer on another CPU left %+v, want a reset record with a lost spin", d.rspin)
	}
}

// TestMaySleepSolo: a waiter alone in a process with one processor lets
// the runnable goroutines run before its futex sleep (they would otherwise
// wait for the runtime's monitor), and does not wait alone at all when the
// process has other connections; with any number of processors it parks
// when a waiter registered with the poller. The scheduler may pick the
// yielding goroutine again first (the race detector randomises its
// order), so the first part gets several tries; without the yield no try
// succeeds.
func TestMaySleepSolo(t *testing.T) {
	defer noteProcs()
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	noteProcs()
	if n := openConns.Load(); n != 0 {
		t.Fatalf("%d connections open before the test", n)
	}
	const tries = 100
	ranFirst := false
	for range tries {
		ran := make(chan struct{})
		go func() { close(ran) }()
		if !maySleepSolo() {
			t.Fatal("maySleepSolo said no without connections or registered waiters")
		}
		select {
		case <-ran:
			ranFirst = true
		default:
			<-ran
		}
		if ranFirst {
			break
		}
	}
	if !ranFirst {
		t.Fatalf("in %d tries a runnable goroutine never ran before the sleep", tries)
	}

	if !mayWaitSolo() {
		t.Error("with one processor and no connection open mayWaitSolo said no")
	}
	_, d := pairT(t, transports.Config{})
	if mayWaitSolo() {
		t.Error("with one processor and two connections open mayWaitSolo said yes")
	}

	runtime.GOMAXPROCS(2)
	noteProcs()
	if !mayWaitSolo() {
		t.Error("with two processors mayWaitSolo said no")
	}
	if !maySleepSolo() {
		t.Error("with two processors and no registered waiter maySleepSolo said no")
	}
	w := &d.rwait
	thePoller.add(w)
	may := maySleepSolo()
	thePoller.remove(w)
	if may {
		t.Error("maySleepSolo said yes with a waiter registered")
	}
}

// TestLockParkedWaiterIsPolled: of two shm-lock readers waiting at once,
// the one that parks with the poller carries the spin budget, so that the
// poller polls its ring before it sleeps on the doorbell (a poller that
// slept at once cost a doorbell write per message under fanin), and
// records its CPU for the other process's poller (poller.budget).
func TestLockParkedWaiterIsPolled(t *testing.T) {
	saved := cpuNow
	t.Cleanup(func() { cpuNow = saved })
	cpuNow = func() uint32 { return 7 }
	l := listenKindT(t, Lock, transports.Config{Conns: 2, BufferSize: MinRing})
	var acc, dia [2]*Conn
	for i := range acc {
		acc[i], dia[i] = connectT(t, l, i)
	}
	done := make(chan error, len(dia))
	for _, d := range dia {
		go func() {
			_, err := d.Read(make([]byte, 1))
			done <- err
		}()
	}
	var budget time.Duration
	var parked *Conn
	for i := 0; budget == 0; i++ {
		if i == 500 {
			t.Fatal("after 5 s neither reader is parked with a spin budget")
		}
		time.Sleep(10 * time.Millisecond)
		thePoller.mu.Lock()
		for _, w := range thePoller.list {
			if (w.c == dia[0] || w.c == dia[1]) && w.budget > budget {
				budget, parked = w.budget, w.c
			}
		}
		thePoller.mu.Unlock()
	}
	if budget != DefaultSpin {
		t.Errorf("parked shm-lock reader's spin budget %v, want %v", budget, DefaultSpin)
	}
	if got := parked.tx.ctl.writerCPU.Load(); got != 7 {
		t.Errorf("parked shm-lock reader recorded CPU %d for the other side, want 7", got)
	}
	for _, a := range acc {
		if _, err := a.Write([]byte{1}); err != nil {
			t.Fatal(err)
		}
	}
	for range dia {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
}

// TestPollerBudget: the poller polls for the largest budget of its
// waiters times their number, up to pollerSpinScale and spinIdle, and not
// at all while the other process of its first connection last waited on
// this thread's CPU; wait=spin budgets hold regardless.
func TestPollerBudget(t *testing.T) {
	saved := cpuNow
	t.Cleanup(func() { cpuNow = saved })
	cpuNow = func() uint32 { return 3 }
	l := listenKindT(t, Ring, transports.Config{Conns: 2, BufferSize: MinRing})
	_, d0 := connectT(t, l, 0)
	_, d1 := connectT(t, l, 1)
	p := newPoller()
	w0 := &waiter{c: d0, idx: -1, budget: DefaultSpin}
	w1 := &waiter{c: d1, idx: -1, budget: DefaultSpin / 4}
	p.list = []*waiter{w0}

	d0.rx.ctl.writerCPU.Store(4) // the other side last waited elsewhere
	if got := p.budget(); got != DefaultSpin {
		t.Errorf("one waiter, other side on another CPU: budget %v, want %v", got, DefaultSpin)
	}
	p.list = []*waiter{w0, w1}
	if got, want := p.budget(), 2*DefaultSpin; got != want {
		t.Errorf("two waiters: budget %v, want %v (the largest, twice)", got, want)
	}
	many := []*waiter{w1, w0} // the first waiter's connection is the one looked at
	for range 3 * pollerSpinScale {
		many = append(many, &waiter{c: d1, idx: -1, budget: DefaultSpin / 2})
	}
	p.list = many
	d1.rx.ctl.writerCPU.Store(4)
	if got, want := p.budget(), pollerSpinScale*DefaultSpin; got != want {
		t.Errorf("%d waiters: budget %v, want %v (the largest, %d times)", len(many), got, want, pollerSpinScale)
	}
	w0.budget = spinIdle / 2
	if got := p.budget(); got != spinIdle {
		t.Errorf("%d waiters of %v: budget %v, want at most %v", len(many), w0.budget, got, spinIdle)
	}
	w0.budget = DefaultSpin
	p.list = []*waiter{w0, w1}

	d0.rx.ctl.writerCPU.Store(3) // on this thread's CPU
	if got := p.budget(); got != 0 {
		t.Errorf("other side on this CPU: budget %v, want 0", got)
	}
	cpuNow = func() uint32 { return 0 } // unknown: the calibration decides
	if got, want := p.budget(), 2*DefaultSpin; got != want {
		t.Errorf("CPU unknown: budget %v, want %v", got, want)
	}
	p.st.skip = 1
	if got := p.budget(); got != 0 {
		t.Errorf("calibration backing off: budget %v, want 0", got)
	}
	if got, want := p.budget(), 2*DefaultSpin; got != want {
		t.Errorf("after the back-off: budget %v, want %v", got, want)
	}
	cpuNow = func() uint32 { return 3 }
	w1.budget = spinIdle
	if got := p.budget(); got != spinIdle {
		t.Errorf("wait=spin waiter on a shared CPU: budget %v, want %v", got, spinIdle)
	}
}

// TestSpinSeesDeadlineChange: a reader that polls its ring looks at
// local events while it polls, so a deadline set during the spin ends
// the Read at once, not when the spin budget (here a minute) runs out,
// and the spin does not count as lost.
func TestSpinSeesDeadlineChange(t *testing.T) {
	// Both ends are in this process: with one processor the reader would
	// not wait alone (see mayWaitSolo), and the spin is what this tests.
	if runtime.GOMAXPROCS(0) < 2 {
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	_, d := connectT(t, listenKindT(t, Ring, transports.Config{}), 0)
	d.set.spin = time.Minute
	done := make(chan error, 1)
	go func() {
		_, err := d.Read(make([]byte, 1))
		done <- err
	}()
	time.Sleep(20 * time.Millisecond) // let the reader start its spin
	if err := d.SetReadDeadline(time.Now()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		wantOpErr(t, "Read", err, os.ErrDeadlineExceeded)
	case <-time.After(20 * time.Second):
		t.Fatal("Read kept spinning 20 s after its deadline was set in the past")
	}
	if d.rspin.losses != 0 || d.rspin.backoff != 0 {
		t.Errorf("a spin ended by a deadline counted as lost: %+v", d.rspin)
	}
}

// TestSpinLeavesRestOfDeadline: a reader that polled its ring and then
// sleeps sleeps for what is left of its deadline after the poll, not for
// what was left before it (the sleep ended as late as the poll had been
// long: up to spinIdle, 100 ms, with wait=spin); and a deadline that
// passes while it polls ends the Read without a sleep. The test watches
// the timeout each sleep is given (beforeSleep), so it asserts no time.
func TestSpinLeavesRestOfDeadline(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 { // see TestSpinSeesDeadlineChange
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	_, d := connectT(t, listenKindT(t, Ring, transports.Config{}), 0)
	sleeps := watchSleeps(t, &d.rwait)
	read := func(spin, within time.Duration) []time.Duration {
		t.Helper()
		sleeps()
		d.set.spin = spin
		d.rspin = spinStats{}
		if err := d.SetReadDeadline(time.Now().Add(within)); err != nil {
			t.Fatal(err)
		}
		_, err := d.Read(make([]byte, 1))
		wantOpErr(t, "Read", err, os.ErrDeadlineExceeded)
		return sleeps()
	}

	if got := read(time.Minute, 30*time.Millisecond); len(got) != 0 {
		t.Errorf("deadline passed while polling: the Read then slept for %v", got)
	}

	const budget, within = 20 * time.Millisecond, 300 * time.Millisecond
	got := read(budget, within)
	if len(got) == 0 {
		t.Fatal("the Read never slept after its spin budget ran out")
	}
	if got[0] > within-budget {
		t.Errorf("after polling at least %v, the Read slept for up to %v: more than the %v left of its deadline", budget, got[0], within-budget)
	}
}

// TestNoSleepPastDeadline: a deadline set after a Read looked at it but
// before it sleeps (here from the hook between its end-of-stream loads)
// ends the Read without a sleep, for both kinds, with wait=futex (which
// sleeps at once). Before, shm-ring's lone sleeper had read the futex
// word after the deadline's bump, and slept up to dataWaitSlice (500 ms);
// shm-lock slept with a time left read before the lock was taken.
func TestNoSleepPastDeadline(t *testing.T) {
	if runtime.GOMAXPROCS(0) < 2 { // the reader must wait alone: see mayWaitSolo
		defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(2))
	}
	for name, k := range map[string]Kind{"shm-ring": Ring, "shm-lock": Lock} {
		t.Run(name, func(t *testing.T) {
			_, d := connectT(t, listenKindT(t, k, transports.Config{}), 0)
			d.set.wait = WaitFutex
			var once sync.Once
			between := func(c *Conn) {
				if c == d {
					once.Do(func() { d.SetReadDeadline(time.Now()) })
				}
			}
			sleeps := watchSleeps(t, &d.rwait)
			betweenEndLoads.Store(&between)
			defer betweenEndLoads.Store(nil)
			_, err := d.Read(make([]byte, 1))
			wantOpErr(t, "Read", err, os.ErrDeadlineExceeded)
			if got := sleeps(); len(got) != 0 {
				t.Errorf("the Read slept (for up to %v) after its deadline was set in the past", got)
			}
		})
	}
}

// watchSleeps records the time left that every sleep of w is given (the
// beforeSleep hook), until the test ends; the function it returns gives
// the sleeps recorded since its last call.
func watchSleeps(t *testing.T, w *waiter) func() []time.Duration {
	var mu sync.Mutex
	var sleeps []time.Duration
	hook := func(sw *waiter, left time.Duration) {
		if sw == w {
			mu.Lock()
			sleeps = append(sleeps, left)
			mu.Unlock()
		}
	}
	beforeSleep.Store(&hook)
	t.Cleanup(func() { beforeSleep.Store(nil) })
	return func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		got := sleeps
		sleeps = nil
		return got
	}
}
