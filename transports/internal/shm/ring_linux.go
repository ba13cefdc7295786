package shm

import (
	"io"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ipcbench/ipcbench/transports"
)

// The lock-free ring (Kind Ring).
//
// Each ring has one producer (the side that writes it) and one consumer.
// In the ring control block (see layout_linux.go) the producer owns wpos,
// the head: the count of bytes it has ever written, free-running, never
// masked. The consumer owns rpos, the tail: the count it has ever taken.
// They sit on separate cache lines. The bytes in the ring are head-tail;
// byte number i lives at data[i & mask]. The producer fills free space a
// publish chunk at a time (see chunk), publishing the new head with an
// atomic store after each piece; the consumer reads the head with an
// atomic load, copies the bytes out (a chunk at a time too) and then
// publishes the new tail — lazily: after taking a quarter of the ring, and
// always before it waits for data (see consumed). The producer's view of
// the free space so lags by less than a quarter ring, and a producer
// waiting for space waits on a consumer that is either still taking bytes
// (and publishes within a quarter ring) or about to wait itself (and
// publishes first). Go's atomics are sequentially consistent, so a store
// of head happens after the bytes it covers were written (release) and a
// load that sees it sees them too (acquire). The lock word and used are unused (0).
//
// Every operation validates what it reads: the other side's counter must be
// within one ring of its own (0 <= head-tail <= capacity), and its own
// counter must be where it left it; anything else is transports.ErrCorrupt.
// Indices are masked, so no value in the mapping can move an access outside
// it.
//
// # Short laps
//
// A lap is one pass of the counters over the ring (capacity bytes from a
// multiple of the capacity). The producer may end a lap early (see
// rewind): it stores the head it stops at, P, in the skip word, then
// moves the head to the start of the next lap, R. The bytes from P to R
// are no data; they count as used until the consumer passes them, so the
// producer can fill only as much of the new lap as the consumer has taken
// of the old one. A consumer whose head lies in a later lap than its tail
// reads the skip word (see avail): if it names a position in the rest of
// the tail's lap, the data end there, and a consumer at that position
// moves its tail to R. Because the producer stores the skip word before
// the head, a consumer that sees the new head sees the skip word too; and
// the producer skips only once the consumer's tail reached the start of
// its current lap, so that there is never more than one skip ahead of the
// consumer, and the data not yet taken and the skipped bytes fit in one
// ring; a producer whose consumer is still in an earlier lap does not
// skip, and fills the rest of the lap. One exception to "one ring": a
// consumer whose tail stands exactly at P has taken the whole lap, so
// the producer counts it as at R (see passed) and may fill a whole ring
// from R; such a consumer accepts a head up to one ring past R, and only
// it (see avail). Large Writes use short laps when the two sides share a
// core (see lapFor), and small Writes into a ring the consumer keeps
// drained stay near its start (see rewindHot).
//
// # Waiting without lost wake-ups
//
// A consumer that finds the ring empty waits according to the wait option
// (see await). Alone in its process, it polls the head for its spin budget
// and then sleeps itself: it (1) loads the futex word dataSeq, (2) stores
// readerWaiting = 1, (3) loads the head again, and sleeps with FUTEX_WAIT
// on dataSeq at the value from (1) only if the ring is still empty; a
// producer, after (a) storing a new head, (b) loads readerWaiting, and
// only if it is set swaps it to 0, bumps dataSeq and calls FUTEX_WAKE.
// Because all four accesses (2, 3, a, b) are sequentially consistent,
// either the consumer's (3) sees the producer's (a), and it does not
// sleep, or the producer's (b) sees the consumer's (2), and it bumps
// dataSeq — after (1) — so FUTEX_WAIT either finds the word changed and
// returns at once, or is woken.
//
// Any other waiter parks, and the process's poller (poller_linux.go) polls
// for it. To sleep, the poller (1) stores its process's "sleeping" word
// (wake page, wake_linux.go) = 1, (2) loads the head of every ring it
// polls for, and parks on its doorbell only if all are still empty. A
// producer, after (a) storing a new head, (b) loads the consumer process's
// "sleeping" word, and only if it is set swaps it to 0 and rings the
// doorbell; with the poller awake it makes no system call at all. Because
// all four accesses (1, 2, a, b) are sequentially consistent, either the
// poller's (2) sees the producer's (a), and it does not sleep, or the
// producer's (b) sees the poller's (1), and it rings, so the doorbell read
// returns at once or is woken. The producer waiting for space is the
// mirror image with the tail. Local events (Close, a deadline change, the
// peer's death) wake the parked goroutine directly, and every sleep is
// bounded by the deadline and dataWaitSlice. A producer so makes two
// loads after every Write (and Commit), readerWaiting and the other
// process's "sleeping", and a system call only when one of them is set. A
// Write that publishes in pieces makes (b) once, after its last (a) before
// it returns or waits for space: the argument holds for that last store,
// and a reader that slept on an earlier one is woken then.

const (
	// spinCheckEvery is how many polls a spinning waiter makes between
	// looks at the clock, Close and the peer's liveness.
	spinCheckEvery = 64
	// spinYieldEvery is how many polls a spin-mode waiter makes between
	// sched_yield calls, which let another thread (or the peer, when both
	// share a core) run.
	spinYieldEvery = 4096
	// spinIdle is how long a spin-mode waiter polls without progress
	// before it sleeps in the kernel like futex mode: a connection idle for
	// that long is not in a latency-bound exchange, and spinning on would
	// only burn a core.
	spinIdle = 100 * time.Millisecond
)

// avail returns the bytes the consumer can take, validating the counters.
func (r *ringView) avail() (uint64, error) {
	head := r.ctl.wpos.Load()
	if own := r.ctl.rpos.Load(); own != r.pub {
		return 0, corruptf("ring tail moved under its reader (%d, left at %d)", own, r.pub)
	}
	n := head - r.pos
	rest := r.mask + 1 - r.pos&r.mask
	// A head in a later lap may come after a skip (see rewind): the
	// bytes of this lap from the skip word's position on are no data.
	// The word is read once, after the head, so that what is validated is
	// what is used.
	var skip uint64
	if n >= rest {
		skip = r.ctl.skip.Load()
	}
	if n > r.mask+1 && (rest > r.mask || n-rest > r.mask+1 || skip != r.pos) {
		// Only a consumer standing at the skip (which never starts a
		// lap) may find the head up to one ring past the lap's end: the
		// producer counts the rest of the lap as taken (see passed).
		return 0, corruptf("ring head %d is not within one ring (%d bytes) of the tail %d", head, r.mask+1, r.pos)
	}
	if n >= rest {
		switch s := skip - r.pos; {
		case s >= rest || s == 0 && rest > r.mask:
			// no skip in the rest of this lap (a skip never starts a lap)
		case s == 0:
			r.pos += rest
			n -= rest
		default:
			n = s
		}
	}
	return n, nil
}

// free returns the bytes the producer can fill, at least want if the ring
// has that much room, validating the counters. It answers from the tail it
// last read when that shows want bytes free (the tail only moves forward),
// and reads the consumer's counter only otherwise.
func (r *ringView) free(want uint64) (uint64, error) {
	if err := r.ownHead(); err != nil {
		return 0, err
	}
	if used := r.pos - r.passed(r.tail); used <= r.mask+1 && r.mask+1-used >= want {
		return r.mask + 1 - used, nil
	}
	if err := r.loadTail(); err != nil {
		return 0, err
	}
	return r.mask + 1 - (r.pos - r.passed(r.tail)), nil
}

// passed returns, for the producer, the consumer's counter tail moved
// past the skipped rest of a lap when tail stands exactly where the
// producer last skipped from: the consumer has taken every byte of that
// lap and takes nothing more of it (see avail), so the whole ring after
// the skip is the producer's to fill. Otherwise it returns tail.
func (r *ringView) passed(tail uint64) uint64 {
	if tail == r.skipFrom && tail != 0 {
		return tail&^r.mask + r.mask + 1
	}
	return tail
}

// ownHead checks that the producer's counter in the mapping is where the
// producer left it.
func (r *ringView) ownHead() error {
	if own := r.ctl.wpos.Load(); own != r.pos {
		return corruptf("ring head moved under its writer (%d, left at %d)", own, r.pos)
	}
	return nil
}

// loadTail reads the consumer's counter into tail, validating it: within
// one ring of the head (counting from past the skip when it stands at the
// producer's last one, see passed), and not behind where it was last
// read nor ahead of the head.
func (r *ringView) loadTail() error {
	tail := r.ctl.rpos.Load()
	if r.pos-r.passed(tail) > r.mask+1 || tail-r.tail > r.pos-r.tail {
		return corruptf("ring tail %d is not between the tail last read (%d) and the head %d, within one ring (%d bytes) of the head", tail, r.tail, r.pos, r.mask+1)
	}
	r.tail = tail
	return nil
}

// readRing is Read for Kind Ring.
func (c *Conn) readRing(b []byte) (int, error) {
	n, err := c.ringData(len(b) == 0)
	if err != nil || n == 0 {
		return 0, err
	}
	r := &c.rx
	n = min(n, uint64(len(b)))
	// A chunk at a time, so that a large Read frees space (consumed
	// publishes every quarter ring) while it still copies.
	chunk := r.chunk()
	for i := uint64(0); i < n; {
		k := min(n-i, chunk)
		r.copyOut(r.pos&r.mask, b[i:i+k])
		c.consumed(k)
		i += k
	}
	return int(n), nil
}

// ringData waits, by the wait strategy, until the incoming ring holds
// bytes, and returns how many. It returns io.EOF once the writer closed and
// the ring is drained, and (0, nil) at once, after the closed and deadline
// checks, for a zero-length read (empty).
func (c *Conn) ringData(empty bool) (uint64, error) {
	r := &c.rx
	var spun time.Duration // time spent polling in this call
	for {
		if c.closed.Load() {
			return 0, net.ErrClosed
		}
		left, err := c.rdl.left(c.base)
		if err != nil {
			return 0, err
		}
		if empty {
			return 0, nil
		}
		// Load liveness and the closed flag before the head: a writer
		// publishes its last head before it sets writerClosed.
		writerDone, gone := c.peerEnd(&r.ctl.writerClosed)
		n, err := r.avail()
		if err != nil || n > 0 {
			return n, err
		}
		switch {
		case writerDone:
			return 0, io.EOF
		case gone:
			return 0, transports.ErrPeerGone
		}
		if r.pub != r.pos {
			c.publishTail() // before waiting: the writer may wait for this space
		}
		c.await(&spun, left, &c.rspin, &c.rwait)
	}
}

// consumed records that the reader took n more bytes. It publishes the new
// tail only once a quarter of the ring was taken since the last time (and
// ringData publishes before it waits): publishing is a sequentially
// consistent store to a line the writer reads, which stalls this core until
// the line comes back from the writer's, and in a request/response
// exchange the reader's next step, its reply, would wait for it.
func (c *Conn) consumed(n uint64) {
	r := &c.rx
	r.pos += n
	if r.pos-r.pub >= (r.mask+1)/tailPublishFraction {
		c.publishTail()
	}
}

// publishTailIdle publishes the incoming ring's tail before a Write waits
// for space, unless a Read is under way (it publishes before it waits).
// Without it two sides that each read a little and then write more than
// their ring holds waited for each other: each writer for space its
// reader had taken but not yet published (consumed publishes lazily).
func (c *Conn) publishTailIdle() {
	if !c.rmu.TryLock() {
		return
	}
	if c.rx.pub != c.rx.pos && !c.closed.Load() {
		c.publishTail()
	}
	c.rmu.Unlock()
}

// tailPublishFraction: the reader publishes its tail at the latest after
// taking 1/tailPublishFraction of the ring.
const tailPublishFraction = 4

// publishTail publishes the reader's tail, waking the writer only if it
// announced that it sleeps.
func (c *Conn) publishTail() {
	r := &c.rx
	r.pub = r.pos
	r.ctl.rpos.Store(r.pos)
	if r.ctl.writerWaiting.Load() != 0 && r.ctl.writerWaiting.Swap(0) != 0 {
		r.ctl.spaceSeq.Add(1)
		wakeAll(&r.ctl.spaceSeq)
	}
	c.peer.wakeUp()
}

// writeRing is Write for Kind Ring. It copies b in pieces of at most a
// publish chunk (see chunk) and publishes each piece as soon as it is in
// the ring, so that a reader that polls takes the first piece of a large
// Write while the writer still copies the rest. It wakes a reader that
// sleeps only once, when it returns or before it waits for space
// (wakeReader): a reader that sleeps shares the core, or is idle, and
// waking it for every piece cost a pair of context switches per piece
// when both sides ran on one core (the 1 MiB stream's CPU per message
// rose by ~10%). A large Write whose reader shares this core goes through
// the ring in short laps (see lapFor), and a small one whose reader took
// everything may go back to the ring's start first (see rewindHot).
func (c *Conn) writeRing(b []byte) (int, error) {
	w := &c.tx
	chunk := w.chunk()
	lap := c.lapFor(len(b))
	w.shortLaps = lap > 0
	if lap == 0 && uint64(len(b)) <= hotWrite && w.pos&w.mask >= hotLap && w.pos >= w.coldUntil {
		if err := c.rewindHot(); err != nil {
			return 0, err
		}
	}
	total := 0
	for {
		want := min(uint64(len(b)-total), chunk)
		var err error
		if lap > 0 && total < len(b) && w.pos&w.mask >= lap {
			_, err = c.rewind(0)
		}
		var free uint64
		if err == nil {
			free, err = c.ringSpace(want, total == len(b))
		}
		if err != nil || total == len(b) {
			w.shortLaps = false
			if w.unwoken {
				c.wakeReader()
			}
			return total, err
		}
		n := min(free, want)
		if i := w.pos & w.mask; i < lap {
			n = min(n, lap-i)
		}
		w.copyIn(w.pos&w.mask, b[total:total+int(n)])
		w.pos += n
		w.ctl.wpos.Store(w.pos)
		w.unwoken = true
		total += int(n)
	}
}

// maxChunk is the most a writer copies into the ring before it publishes
// its head. Publishing only once the free space was filled made the two
// sides take turns with messages as large as the ring: a 1 MiB message
// through a 1 MiB ring was copied in, then checked out, neither side ever
// working while the other did (cross-core the 1 MiB stream ran at 0.25–0.5×
// the 64 KiB one, in sittings not committed; results/shm-large-notes.md
// has them). A piece of 64 KiB costs a store to a shared line per ~5 µs of
// copying.
const maxChunk = 64 << 10

// shortLap is how much of the ring a large Write uses per lap when both
// sides share a core (see lapFor).
const shortLap = 256 << 10

// lapFor returns how much of each lap of the ring (see "Short laps"
// above) a Write of n bytes fills before it skips to the next lap (see
// rewind), or 0 for the whole lap. It is shortLap when n is at least half
// the ring, the ring is larger than shortLap, and the reader last waited
// (see noteCPU) on the CPU this side runs on. Two sides on one core take
// turns: the writer fills the ring, sleeps, and the reader takes it all.
// With 1 MiB messages through the default 1 MiB ring, what one turn
// touches, the caller's buffer and the whole ring, is 2 MiB, more than
// the core's cache (2 MiB of L2 on the machine measured) keeps, and the
// copy into the ring ran at half the speed it has with 64 KiB messages.
// Short laps bring the ring's part down to shortLap, so that the next
// turn finds its lines still cached, at the price of a turn per lap; the
// reader releases everything it took before it sleeps, so the writer's
// skips find the ring drained. Smaller Writes keep the whole ring: a
// 64 KiB message fits with it, and more turns would only cost.
func (c *Conn) lapFor(n int) uint64 {
	w := &c.tx
	if w.mask < shortLap || uint64(n) < (w.mask+1)/2 {
		return 0
	}
	if c.closed.Load() || c.wclosed.Load() {
		// Close may have unmapped the mapping before this Write took
		// the write lock, and after CloseWrite the head must not move;
		// the ring checks report either.
		return 0
	}
	if !c.otherSideHere() {
		return 0
	}
	return shortLap
}

// rewind skips the writer to the start of the next lap of the ring, if
// the reader took everything written before the start of this one (then
// what it has not taken yet and the skipped rest of this lap fit in one
// ring). It publishes the head it skips from in the skip word before the
// new head, so that a reader that sees the new head finds it (see avail);
// and, since the skipped bytes count as used until the reader passes
// them, it publishes no second skip before the reader passed the first.
//
// With need > 0 it skips only if the reader took at least need bytes of
// this lap. It reports whether it skipped.
func (c *Conn) rewind(need uint64) (bool, error) {
	w := &c.tx
	start := w.pos &^ w.mask
	if w.pos == start {
		return false, nil
	}
	// Check the head before storing over it, so that a peer that wrote
	// it is reported (as free does), not overwritten.
	if err := w.ownHead(); err != nil {
		return false, err
	}
	if w.tail < start || w.tail-start < need {
		if err := w.loadTail(); err != nil || w.tail < start || w.tail-start < need {
			return false, err
		}
	}
	w.ctl.skip.Store(w.pos)
	w.skipFrom = w.pos
	w.pos = start + w.mask + 1
	w.ctl.wpos.Store(w.pos)
	return true, nil
}

// Hot laps. A small Write into a ring the reader has drained goes back to
// the start of the ring (rewindHot) once the head is hotLap bytes into
// its lap, rather than going on round the whole ring: the ring's bytes
// it writes were then written and read a few messages ago, and are still
// in the two cores' caches. Going round a 1 MiB ring, each Write landed
// on lines last touched a lap ago, which many connections' rings (16 of
// them are 32 MiB) had long pushed out of the caches, and the store that
// publishes the head waited for those lines to come from memory: with 16
// connections of 1 KiB cross-core, an 8 KiB ring did 20 % more messages
// per second than the default 1 MiB one (results/shm-fanin-notes.md,
// fourth round). The reader having taken everything, the skip leaves the
// writer the whole ring (see passed), so a reader that then stops reading
// still has the ring's full size of buffer behind it.
const (
	// hotLap is how far into a lap a small Write goes before it tries to
	// go back to the start.
	hotLap = 8 << 10
	// hotWrite is the largest Write that does. Larger ones fill the
	// ring.
	hotWrite = hotLap / 2
)

// rewindHot skips the writer to the start of the next lap if the reader
// has published a tail at the head: it took everything, as a reader in an
// exchange does before it waits for the next message (see rewind). A
// reader behind that is in a stream, not an exchange; the writer goes on,
// and tries again hotLap bytes later, so that a reader that lags costs
// one look at its tail per hotLap bytes, not one per Write.
func (c *Conn) rewindHot() error {
	w := &c.tx
	if c.closed.Load() || c.wclosed.Load() {
		return nil // the ring checks report the close
	}
	skipped, err := c.rewind(w.pos & w.mask)
	if err == nil && !skipped {
		w.coldUntil = w.pos + hotLap
	}
	return err
}

// chunk returns the publish chunk of ring r: maxChunk, or a quarter of a
// smaller ring, so that a large Write goes out in at least four pieces.
func (r *ringView) chunk() uint64 { return min(maxChunk, (r.mask+1)/tailPublishFraction) }

// ringSpace waits, by the wait strategy, until the outgoing ring has free
// space, and returns how much (at least want when the ring has that much
// room; see free). With done it returns (0, nil) at once after the
// closed, write-closed and deadline checks.
func (c *Conn) ringSpace(want uint64, done bool) (uint64, error) {
	w := &c.tx
	var spun time.Duration
	for {
		switch {
		case c.closed.Load():
			return 0, net.ErrClosed
		case c.wclosed.Load():
			return 0, syscall.EPIPE
		}
		left, err := c.wdl.left(c.base)
		if err != nil {
			return 0, err
		}
		if done {
			return 0, nil
		}
		switch readerDone, gone := c.peerEnd(&w.ctl.readerClosed); {
		case readerDone:
			return 0, syscall.EPIPE
		case gone:
			return 0, transports.ErrPeerGone
		}
		free, err := w.free(want)
		if err != nil || free > 0 {
			return free, err
		}
		if w.unwoken {
			c.wakeReader() // before waiting: the reader may wait for these bytes
		}
		c.publishTailIdle()
		c.await(&spun, left, &c.wspin, &c.wwait)
	}
}

// produced publishes n more bytes written, waking the reader only if it
// announced that it sleeps.
func (c *Conn) produced(n uint64) {
	w := &c.tx
	w.pos += n
	w.ctl.wpos.Store(w.pos)
	c.wakeReader()
}

// wakeReader wakes the reader if it announced that it sleeps, after the
// writer published its head.
func (c *Conn) wakeReader() {
	w := &c.tx
	w.unwoken = false
	if w.ctl.readerWaiting.Load() != 0 && w.ctl.readerWaiting.Swap(0) != 0 {
		w.ctl.dataSeq.Add(1)
		wakeAll(&w.ctl.dataSeq)
	}
	c.peer.wakeUp()
}

// await waits, by the connection's wait strategy, until w's ring is ready,
// a local event (Close, a deadline change, the peer's death) signals w, or
// left passes; the caller then re-checks everything. *spun carries the
// polling time already spent in this call across rounds; st is the
// adaptive spin's record for this direction (see spinStats). Only a
// waiter alone in its process polls its own ring; others park at once
// and leave the polling to the process's poller (see poller_linux.go).
func (c *Conn) await(spun *time.Duration, left time.Duration, st *spinStats, w *waiter) {
	if w.ready() { // the common case when busy
		st.won()
		return
	}
	budget := c.spinBudget(st, w)
	w.budget = budget
	if mayWaitSolo() && thePoller.solo() {
		won := *spun < budget && c.spin(spun, &left, budget, st, w)
		if !won && left > 0 && thePoller.waiting.Load() == 0 && c.sleepSolo(w, left) {
			thePoller.soloDone()
			return
		}
		thePoller.soloDone()
		if won || left <= 0 {
			return // ready, or the deadline passed while polling: the caller sees which
		}
	}
	if c.closed.Load() || c.peerGone.Load() {
		return
	}
	w.park(left)
}

// spinBudget returns how long a waiter that found its ring not ready
// polls before it sleeps, by the connection's wait strategy; st is the
// adaptive spin's record for w's direction.
func (c *Conn) spinBudget(st *spinStats, w *waiter) time.Duration {
	switch c.set.wait {
	case WaitFutex:
		return 0
	case WaitSpin:
		return spinIdle
	case WaitAdaptive:
		own, peer := c.noteCPU()
		if st.sleepAtOnce(own, peer, monoNow) {
			return 0
		}
		if w.write && c.tx.shortLaps && own == peer {
			// A Write in short laps began with the reader on this
			// core: space comes only once this side sleeps. Polling
			// cost the 1 MiB stream 15 % of its time on one core. A
			// reader seen on another CPU since then gets the budget
			// again for the rest of the Write.
			return 0
		}
	}
	return c.set.spin
}

// sleepSolo is the sleep of a waiter alone in its process: it announces
// itself in its connection's mapping (readerWaiting or writerWaiting),
// re-checks, and sleeps with FUTEX_WAIT on the connection's dataSeq or
// spaceSeq, which the other side bumps and wakes when it finds the flag
// set. A futex wake-up of a sleeping thread is the shortest way back to
// the waiting code when both sides share a core (about a quarter of the
// way through the poller and the network poller); the price, one blocked
// OS thread, is paid by one waiter per process at most. It reports false,
// without sleeping, when the waiter should park with the poller instead
// (see maySleepSolo).
func (c *Conn) sleepSolo(w *waiter, left time.Duration) bool {
	if !maySleepSolo() {
		return false
	}
	s := w.seq.Load()
	w.flag.Store(1)
	if w.ready() || c.closed.Load() || c.peerGone.Load() {
		w.flag.Store(0)
		return true
	}
	if w.takeWake() {
		// A local event (a deadline set, say) since the caller looked:
		// it bumped w.seq before s was read, so the futex would not
		// return for it. The caller looks again.
		w.flag.Store(0)
		return true
	}
	noteSleep(w, left)
	futexWait(w.seq, s, min(left, dataWaitSlice))
	return true
}

// spin polls w's ring for what is left of budget (and of *left), and
// reports whether it became ready. When it reports false it has taken the
// time it polled off *left (unless that is noTimeLimit), so that a sleep
// after it ends at the deadline, not as late as the poll was long.
func (c *Conn) spin(spun, left *time.Duration, budget time.Duration, st *spinStats, w *waiter) bool {
	start := time.Now()
	for i := 1; ; i++ {
		if w.ready() {
			st.won()
			return true
		}
		if i%spinCheckEvery == 0 {
			if c.closed.Load() || c.peerGone.Load() {
				return true // the caller finds out
			}
			if w.takeWake() {
				// A local event (a deadline moved, say): the caller
				// looks again. Spinning on until the budget ran out
				// kept a deadline set during the spin waiting for
				// it, up to spinIdle with wait=spin, and counted
				// the spin as lost: net/http's server aborts its
				// background read that way after every request.
				return true
			}
			if thePoller.waiting.Load() > 0 {
				// Others wait too: the poller polls for everybody, and
				// this goroutine's processor is better spent on them.
				spent(left, time.Since(start))
				return false
			}
			if i%soloYieldEvery == 0 && soleProc() {
				// Let the process's runnable goroutines run: with one
				// processor they wait for this spin.
				runtime.Gosched()
			}
			d := time.Since(start)
			if d >= *left || *spun+d >= budget {
				*spun += d
				if d < *left {
					st.lost()
				}
				spent(left, d)
				return false
			}
			if c.set.wait == WaitSpin && i%spinYieldEvery == 0 {
				osYield()
			}
		}
	}
}

// spent takes d off *left, the time to a deadline (noTimeLimit: none).
func spent(left *time.Duration, d time.Duration) {
	if *left != noTimeLimit {
		*left -= d
	}
}

// spinStats calibrates the adaptive wait to where the two processes run.
// Spinning pays when the other side runs on another core at the same
// time; when both share a core (pinned together, or scheduled so), the
// other side cannot run while this one spins, and every spin burns its
// whole budget before the futex sleep that lets the other side run, so a
// same-core round trip that spins at every wait pays the budget on every
// hop, where one that sleeps at once pays a wake-up on the same core
// (shm-ring[wait=futex], which sleeps at once, does a same-core 64 B round
// trip in 2.3 µs in results/floor.md). So after spinLossLimit waits in a
// row whose spin ran out, the next spinBackoffMin waits sleep at once;
// then one wait spins again as a probe, and each probe that runs out
// doubles the run of sleeping waits (up to spinBackoffMax). A spin that succeeds resets
// everything. One record per direction, used under that direction's lock.
//
// A run of sleeping waits rests on a premise, "the other side shares this
// core", that the scheduler can take away at any time for processes that
// are not pinned; and while both sides sleep at once, nothing shows it:
// every round trip pays two cross-core wake-ups (a cross-core 64 B round
// trip takes 53.3 µs for shm-ring[wait=futex] in results/floor.md, against
// 0.6 µs for shm-ring's adaptive wait, which spins), and a probe that
// happens to lose doubles the run, so the pair could stay slow for
// thousands of waits. So a sleeping wait looks again, two ways (see
// sleepAtOnce):
//
//   - Where the two sides are. Every adaptive wait that finds its ring not
//     ready records the CPU it runs on in the mapping, next to its ring's
//     head (writerCPU, written only when it changed, so the other side's
//     cache line is not disturbed), and a waiter about to sleep at once
//     compares its own CPU with the other side's. Once a back-off has seen
//     both on one CPU, finding them on different CPUs ends the premise:
//     the record is reset, and this wait spins. A back-off that has not
//     seen them together (the spins ran out because the other side, on
//     its own CPU, was preempted or slow) is left alone: spinning on would
//     not reach it sooner, and would take processor time from whatever
//     delays it. The CPU comes from RDPID or RDTSCP (4 and 16 ns here;
//     the getcpu system call took 210 ns, a fifth of a same-core hop), or
//     else from LSL of the kernel's per-CPU segment (19 ns on a VM whose
//     hypervisor hides the other two), so the look costs the same-core
//     path nothing measurable. Where it is
//     unknown (another architecture, or a hypervisor that hides it), only
//     the time limit applies.
//   - Time. A run of sleeping waits ends after spinBackoffTime at the
//     latest (the clock is read once every spinClockEvery sleeping waits,
//     each read no dearer than a time.Now: 35–42 ns, the clock_read_ns in
//     the headers of results/*.jsonl, all but shm-large.jsonl's 68, taken
//     with other work running), and the next wait probes. On a shared core
//     that is one lost spin budget per spinBackoffTime (20 µs per 5 ms,
//     0.4 %); where the CPU is unknown, or the other side's record is
//     stale (it has not waited since it moved), it bounds how long a
//     wrong premise lasts.
//
// The poller's record (poller_linux.go) counts wins and losses the same
// way and looks again the same two ways, with the CPU of the other process
// of its first registered connection: it waits for many connections at
// once, whose peers may run anywhere, so the time limit matters more to
// it. Without the limit, a poller whose back-off began while the two
// processes shared a core slept at once for up to 4096 rounds after they
// moved apart.
type spinStats struct {
	losses  int           // spins in a row that ran out, before backing off
	skip    int           // waits left that sleep at once
	backoff int           // the current run of sleeping waits; 0: not backing off
	looks   int           // sleeping waits since the clock was last read
	end     time.Duration // when the current run ends at the latest (monoNow); 0: not read yet
	// together: a sleeping wait of this back-off found both sides on
	// one CPU.
	together bool
}

const (
	spinLossLimit   = 4
	spinBackoffMin  = 16
	spinBackoffMax  = 4096
	spinBackoffTime = 5 * time.Millisecond
	spinClockEvery  = 64
)

// sleepAtOnce reports whether a wait that found its ring not ready should
// sleep at once (skip its spin), using up one of the run's sleeping waits.
// own and peer are the CPU this side runs on and the one the other side
// last waited on, each plus one, 0 when unknown; now reads a monotonic
// clock. The record's doc comment gives the rules.
func (s *spinStats) sleepAtOnce(own, peer uint32, now func() time.Duration) bool {
	if s.skip == 0 {
		return false
	}
	if own != 0 && peer != 0 {
		if own == peer {
			s.together = true
		} else if s.together {
			*s = spinStats{} // the sides no longer share a CPU: spin again
			return false
		}
	}
	if s.end == 0 {
		s.end = now() + spinBackoffTime
	} else if s.looks++; s.looks >= spinClockEvery {
		s.looks = 0
		if now() >= s.end {
			s.skip = 0 // the run lasted long enough: this wait probes
			return false
		}
	}
	s.skip--
	return true
}

// won records a spin that saw the other side in time.
func (s *spinStats) won() { *s = spinStats{} }

// lost records a spin that ran out of budget.
func (s *spinStats) lost() {
	s.looks, s.end = 0, 0 // a new run, if any, starts its clock afresh
	if s.backoff > 0 {
		s.backoff = min(2*s.backoff, spinBackoffMax)
		s.skip = s.backoff
		return
	}
	if s.losses++; s.losses >= spinLossLimit {
		s.losses, s.backoff, s.skip = 0, spinBackoffMin, spinBackoffMin
	}
}

// cpuNow returns the CPU this thread runs on, plus one, or 0 when unknown
// (a variable so that tests can stand in for the processor).
var cpuNow = currentCPU

// noteCPU records, for the other side's adaptive wait, the CPU this side
// runs on in the ring it writes, and returns it with the one the other
// side recorded in the ring it writes (see spinStats); 0 is unknown.
func (c *Conn) noteCPU() (own, peer uint32) {
	own = cpuNow()
	if own != 0 && c.tx.ctl.writerCPU.Load() != own {
		c.tx.ctl.writerCPU.Store(own)
	}
	return own, c.rx.ctl.writerCPU.Load()
}

// otherSideHere reports whether the other side last waited (see noteCPU)
// on the CPU this thread runs on; false when either CPU is unknown.
func (c *Conn) otherSideHere() bool {
	own := cpuNow()
	return own != 0 && own == c.rx.ctl.writerCPU.Load()
}

// monoBase is the origin of monoNow.
var monoBase = time.Now()

// monoNow reads the monotonic clock, as time since monoBase.
func monoNow() time.Duration { return time.Since(monoBase) }

// soloYieldEvery is how many polls a waiter alone in a process with one
// processor makes between yields of it to the process's other runnable
// goroutines (runtime.Gosched): a few microseconds of polling, longer than
// most cross-core round trips, so the one-connection exchange rarely pays
// for it. A multiple of spinCheckEvery.
const soloYieldEvery = 16 * spinCheckEvery

// soleProc reports whether the process runs its goroutines on one
// processor (GOMAXPROCS 1), as it does when pinned to one CPU. A waiter
// alone in its process that polls, or sleeps on a futex (a plain system
// call that keeps the processor), then holds the only processor, and the
// runnable goroutines behind it wait: for the spin, and for the sleep
// until the runtime's monitor retakes the processor (20 µs to 10 ms). With
// more processors an idle one takes them, and a yield would only move
// the waiter between threads.
//
// The answer is GOMAXPROCS as last read by noteProcs (when a connection
// is made, and when the poller starts): reading it takes the runtime's
// scheduler lock, too dear for every wait.
func soleProc() bool { return procs.Load() == 1 }

// procs is GOMAXPROCS as last read by noteProcs.
var procs atomic.Int32

// noteProcs reads GOMAXPROCS for soleProc.
func noteProcs() { procs.Store(int32(runtime.GOMAXPROCS(0))) }

// mayWaitSolo reports whether a waiter may wait alone, polling its own
// ring and sleeping on its futex, both holding its processor; false means
// park with the poller, which yields between its rounds and sleeps in the
// network poller, holding none. When the process has one processor (see
// soleProc) and more than one open connection, the answer is no: the
// goroutines of the other connections would wait behind the spin, and
// behind the sleep for the runtime's monitor. Waiting alone with the only
// processor was the dip of fanin at 4 connections with each process on
// its own CPU.
func mayWaitSolo() bool { return !soleProc() || openConns.Load() <= 1 }

// maySleepSolo reports whether a waiter alone in its process, about to
// sleep on its futex, still may: no waiter registered with the poller. With
// one processor it first lets the process's runnable goroutines run
// (runtime.Gosched); any of them that then waits registers.
func maySleepSolo() bool {
	if soleProc() {
		runtime.Gosched()
	}
	return thePoller.waiting.Load() == 0
}

// osYield gives up the processor (sched_yield), so that a thread waiting
// for it — possibly the peer, when both run on one core — can run.
func osYield() {
	unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
	runtime.Gosched()
}
