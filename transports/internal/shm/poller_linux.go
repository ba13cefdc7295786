package shm

import (
	"os"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Waiting on many shm-ring connections at once.
//
// A goroutine that waits for its ring (data to read, or space to write)
// first looks once; if it is the only waiter of the process it then polls
// its own ring for the spin budget, which keeps the one-connection round
// trip at the speed of two cache-line transfers. Otherwise, or once the
// budget is spent, it parks: it registers a waiter with the process's one
// poller and blocks on a Go channel, holding no OS thread.
//
// The poller is one goroutine per process, running while any waiter is
// registered. It polls the registered rings, all of them in each round,
// yielding the processor (runtime.Gosched) between rounds so that the
// goroutines it wakes, and everything else of the process, run; a ready
// ring's waiter is unregistered and woken through its channel. While it
// polls, no waiting flag is set in any mapping, so the other process
// publishes its bytes with no system call at all, however many connections
// are busy: the cost of a wake-up is a goroutine switch in the waiting
// process. When its spin budget (one connection's for each registered
// waiter, up to pollerSpinScale; see budget) passes without a ready ring,
// the poller goes to sleep: it announces every registered waiter in its
// mapping (readerWaiting for data, writerWaiting for space), re-checks
// every ring, and sleeps reading its doorbell. A producer (or consumer) that
// finds the flag set clears it and rings the other process's doorbell: an
// eventfd in that process's wake page (wake_linux.go), which its poller
// reads through the runtime's network poller. Nothing is sent on a
// connection's liveness socket after the set-up.
// The lost-wake-up argument is the one in ring_linux.go with "sleep on
// the futex" read as "park until kicked": either the poller's re-check sees
// the producer's new head, or the producer's load of the flag sees the
// announcement and rings. A new registration, and a sleep that lasted
// dataWaitSlice, kick the poller too.
//
// The adaptive wait's calibration (spinStats) applies to the poller's
// spin as to a waiter's own: when the other process shares this one's
// core, spinning only delays it, and the poller sleeps at once for a while.

// poller is the process's shm-ring poller; see above.
var thePoller = newPoller()

// waiter is one direction of one connection waiting for its ring: for data
// in the incoming ring (write false) or for space in the outgoing one
// (write true). Each Conn has two, used under its rmu and wmu.
type waiter struct {
	c     *Conn
	write bool
	// wake receives a token when the waiter should look again: its ring
	// is ready, or a local event (Close, a deadline change, the peer's
	// death) happened. Buffered (1), never closed.
	wake chan struct{}
	// flag and seq are the connection's own waiting flag and futex word
	// for this direction (readerWaiting and dataSeq of the incoming ring,
	// or writerWaiting and spaceSeq of the outgoing one), for the sleep of
	// a waiter alone in its process (Conn.sleepSolo).
	flag, seq *atomic.Uint32
	// idx is the waiter's position in the poller's list, -1 when it is not
	// registered; under the poller's mu.
	idx int
	// budget is the connection's spin budget, for the poller's spin.
	budget time.Duration
	timer  *time.Timer // for deadlines, made once and reused
}

// ready reports whether the waiter's ring is ready, or closed from the
// other side (then the waiter finds out why).
func (w *waiter) ready() bool {
	if w.c.kind == Lock { // used is changed under the lock; a stale look only costs a round
		if w.write {
			t := &w.c.tx
			return t.ctl.used.Load() <= t.mask || t.ctl.readerClosed.Load() != 0
		}
		r := &w.c.rx
		return r.ctl.used.Load() != 0 || r.ctl.writerClosed.Load() != 0
	}
	if w.write {
		t := &w.c.tx
		return t.pos-t.ctl.rpos.Load() <= t.mask || t.ctl.readerClosed.Load() != 0
	}
	r := &w.c.rx
	return r.ctl.wpos.Load() != r.pos || r.ctl.writerClosed.Load() != 0
}

// signal hands w a wake-up token, unless one is waiting already.
func (w *waiter) signal() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// takeWake takes w's wake-up token, if one is waiting, and reports
// whether there was one: a local event (Close, a deadline set or moved)
// since w's owner last looked, which it must look at before it sleeps.
func (w *waiter) takeWake() bool {
	select {
	case <-w.wake:
		return true
	default:
		return false
	}
}

// park blocks until w is woken (its ring is ready, or a local event
// happened) or left passes. The caller checks everything again after.
// Nothing else wakes it: a deadline, however far, needs the timer (the
// poller signals only ready rings).
func (w *waiter) park(left time.Duration) {
	noteSleep(w, left)
	thePoller.add(w)
	if left == noTimeLimit {
		<-w.wake
	} else {
		if w.timer == nil {
			w.timer = time.NewTimer(left)
		} else {
			w.timer.Reset(left)
		}
		select {
		case <-w.wake:
		case <-w.timer.C:
		}
		w.timer.Stop()
	}
	thePoller.remove(w)
}

// poller is the state of the process's poller goroutine.
type poller struct {
	mu       sync.Mutex
	list     []*waiter
	running  bool // the goroutine exists
	sleeping bool // it is parked on kick (or about to be)
	st       spinStats
	// waiting mirrors len(list), for the lock-free check whether a waiter
	// may poll its own ring (see solo).
	waiting atomic.Int32
	// soloSpinners counts waiters polling their own ring (at most one).
	soloSpinners atomic.Int32
	page         *wakePage // this process's wake page, while running

	// Deferred doorbells (see deferRing), under pmu.
	pmu      sync.Mutex
	active   bool        // the poller polls: rings can wait for its next round
	pending  []*wakePage // peers' pages to ring
	npending atomic.Int32
}

// deferRing takes over the ring of peer page q (whose poller sleeps) when
// this process's poller is polling, and reports whether it did; the
// caller must ring at once otherwise. The poller rings after its current
// round, when the goroutines it woke have run: a process that answers
// many connections at once then wakes its peer once, after the whole
// batch, instead of once for the first answer, which on a shared core
// would preempt it after every message.
func (p *poller) deferRing(q *wakePage) bool {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	if !p.active {
		return false
	}
	if !q.deferred {
		q.deferred = true
		p.pending = append(p.pending, q)
		p.npending.Add(1)
	}
	return true
}

// setActive records whether the poller polls; when it stops, it rings
// what it was handed first.
func (p *poller) setActive(on bool) {
	p.pmu.Lock()
	p.active = on
	if !on {
		p.flushLocked()
	}
	p.pmu.Unlock()
}

// flush rings every deferred doorbell.
func (p *poller) flush() {
	if p.npending.Load() == 0 {
		return
	}
	p.pmu.Lock()
	p.flushLocked()
	p.pmu.Unlock()
}

func (p *poller) flushLocked() {
	for i, q := range p.pending {
		q.deferred = false
		q.ring()
		p.pending[i] = nil
	}
	p.pending = p.pending[:0]
	p.npending.Store(0)
}

// forget rings q now if its ring was deferred, so that it can be unmapped.
func (p *poller) forget(q *wakePage) {
	p.pmu.Lock()
	defer p.pmu.Unlock()
	if !q.deferred {
		return
	}
	q.deferred = false
	q.ring()
	i := slices.Index(p.pending, q)
	p.pending = slices.Delete(p.pending, i, i+1)
	p.npending.Add(-1)
}

// pollerLinger is how long the poller goroutine stays when no waiter is
// registered before it exits.
const pollerLinger = 10 * time.Millisecond

func newPoller() *poller { return &poller{} }

// solo reports whether a waiter may poll its own ring: no other waiter of
// the process is registered or polling. On true the caller must call
// soloDone when it stops.
func (p *poller) solo() bool {
	return p.waiting.Load() == 0 && p.soloSpinners.CompareAndSwap(0, 1)
}

func (p *poller) soloDone() { p.soloSpinners.Store(0) }

// add registers w, starting the poller goroutine if needed.
func (p *poller) add(w *waiter) {
	p.mu.Lock()
	w.idx = len(p.list)
	p.list = append(p.list, w)
	p.waiting.Store(int32(len(p.list)))
	switch {
	case !p.running:
		// w's connection holds a reference to the wake page: this one
		// cannot fail.
		page, _, _ := acquireWake()
		p.running, p.page = true, page
		noteProcs()
		go p.run(page, ownWake.bell)
	case p.sleeping:
		p.page.wakeUp()
	}
	p.mu.Unlock()
}

// remove unregisters w if it is registered.
func (p *poller) remove(w *waiter) {
	p.mu.Lock()
	p.unlist(w)
	p.mu.Unlock()
}

// unlist takes w out of the list (mu held).
func (p *poller) unlist(w *waiter) {
	i := w.idx
	if i < 0 {
		return
	}
	last := len(p.list) - 1
	p.list[i] = p.list[last]
	p.list[i].idx = i
	p.list[last] = nil
	p.list = p.list[:last]
	w.idx = -1
	p.waiting.Store(int32(len(p.list)))
}

// scan wakes and unregisters every waiter whose ring is ready (mu held)
// and reports whether there was one.
func (p *poller) scan() bool {
	woke := false
	for i := 0; i < len(p.list); {
		w := p.list[i]
		if !w.ready() {
			i++
			continue
		}
		p.unlist(w) // moves the last waiter to i
		w.signal()
		woke = true
	}
	return woke
}

// budget returns how long the poller polls before it sleeps (mu held):
// the largest spin budget among the registered waiters, times their
// number up to pollerSpinScale (and at most spinIdle); 0 while the
// adaptive calibration says to sleep at once (see spinStats, which also
// says when a run of such rounds ends), or when the other process of the
// first registered connection last waited on the CPU this thread runs
// on: then spinning only keeps that process from running. The CPUs are
// the ones the waits record (noteCPU); when either is unknown, the
// calibration decides alone. wait=spin waiters keep their whole budget.
//
// The budget is a connection's, and the poller spends it on behalf of
// every waiter it polls for: n waiters that each polled alone would spin
// n budgets, so the poller may spin n times one budget for the same
// processor time per connection. Dividing it instead (down to 2 µs at 16
// connections) put the poller to sleep between the other process's
// batches, and every batch then paid a doorbell (results/shm-fanin-notes.md,
// third round, has the profile and the before/after runs). One budget,
// undivided and unmultiplied, was still too short on a host whose system
// calls and wake-ups are dear and whose two CPUs each process shares with
// the other: there the other process is often off its CPU for longer
// than one budget (20 µs by default), the poller's spins ran out, the calibration backed off, and
// every batch paid a doorbell again (results/shm-fanin-notes.md, seventh
// round: unpinned at 4, 16 and 64 connections, 1.2–1.5× the msg/s at
// 75–86 % of the CPU per message).
func (p *poller) budget() time.Duration {
	var b time.Duration
	for _, w := range p.list {
		b = max(b, w.budget)
	}
	if b >= spinIdle || b == 0 {
		return b
	}
	own, peer := cpuNow(), p.list[0].c.rx.ctl.writerCPU.Load()
	if p.st.sleepAtOnce(own, peer, monoNow) || own != 0 && own == peer {
		return 0
	}
	return min(b*time.Duration(min(len(p.list), pollerSpinScale)), spinIdle)
}

// pollerSpinScale bounds how many waiters' budgets the poller spends in
// one spin (see budget).
const pollerSpinScale = 8

// run is the poller goroutine. It holds a reference to this process's
// wake page while it runs, and sleeps reading its doorbell.
func (p *poller) run(page *wakePage, bell *os.File) {
	defer releaseWake()
	word := &page.h.sleeping
	var buf [8]byte
	p.mu.Lock()
	// sleep parks the poller for at most d, unless a peer or add rings
	// the doorbell first; the caller announced (set the word) and
	// re-checked.
	sleep := func(d time.Duration) {
		p.sleeping = true
		p.setActive(false)
		p.mu.Unlock()
		bell.SetReadDeadline(time.Now().Add(d))
		bell.Read(buf[:]) // a ring (the counter, reset), or the deadline
		p.mu.Lock()
		p.sleeping = false
		p.setActive(true)
		word.Store(0)
	}
	p.setActive(true)
	woke := false // the poller slept since its last scan
	for {
		if len(p.list) == 0 {
			word.Store(1)
			sleep(pollerLinger)
			woke = true
			if len(p.list) == 0 {
				p.running = false
				p.page = nil
				p.setActive(false)
				p.mu.Unlock()
				return
			}
		}
		// Poll for the budget.
		budget := p.budget()
		var start time.Time
		won := false
		for i := 0; ; i++ {
			if p.scan() {
				// A ring ready after polling, or made ready by the other
				// process while this one ran without sleeping, is a spin
				// that paid off. One ready at the first look after a
				// sleep says nothing about spinning: it is what the
				// doorbell rang for. Counted as a win, it cleared the
				// spins lost before, and a poller whose other process
				// shares its core (and cannot answer while it spins)
				// spun its whole budget after every batch: at 2 to 8
				// connections on one core, 1.7–2.0× the CPU per message
				// of wait=futex.
				if i > 0 || !woke {
					p.st.won()
				}
				won = true
				break
			}
			if len(p.list) == 0 || budget == 0 {
				break
			}
			if i%spinCheckEvery == 0 {
				if i == 0 {
					start = time.Now()
				} else if time.Since(start) >= budget {
					break
				}
			}
			p.mu.Unlock()
			runtime.Gosched()
			p.flush()
			p.mu.Lock()
		}
		woke = false
		if won {
			p.mu.Unlock()
			runtime.Gosched() // let the woken goroutines run, then ring for them
			p.flush()
			p.mu.Lock()
			continue
		}
		if len(p.list) == 0 {
			continue
		}
		if budget > 0 {
			p.st.lost()
		}
		// Announce, re-check, sleep.
		word.Store(1)
		if p.scan() {
			word.Store(0)
			continue
		}
		sleep(dataWaitSlice)
		woke = true
	}
}
